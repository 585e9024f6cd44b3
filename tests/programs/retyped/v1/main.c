#define VERSION 1
#include "retyped.h"
