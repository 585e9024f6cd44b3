#define VERSION 2
#include "wrapped.h"
