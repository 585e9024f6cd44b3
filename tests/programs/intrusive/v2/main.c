#define VERSION 2
#include "types.h"
#include "intrusive.h"
