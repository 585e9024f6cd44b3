#define VERSION 2
#include "tailbody.h"
