#define VERSION 2
#include "retyped.h"
