#define VERSION 3
#include "tailbody.h"
