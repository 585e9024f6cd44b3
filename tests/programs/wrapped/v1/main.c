#define VERSION 1
#include "wrapped.h"
