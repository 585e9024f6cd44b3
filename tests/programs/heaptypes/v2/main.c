#define VERSION 2
#include "heaptypes.h"
