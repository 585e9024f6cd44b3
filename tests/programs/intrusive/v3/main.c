#define VERSION 3
#include "types.h"
#include "intrusive.h"
