#define VERSION 1
#include "tailbody.h"
