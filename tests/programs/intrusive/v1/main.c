#define VERSION 1
#include "types.h"
#include "intrusive.h"
