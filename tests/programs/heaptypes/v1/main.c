#define VERSION 1
#include "heaptypes.h"
