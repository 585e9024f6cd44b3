#define VERSION 1
#include "keptaway.h"
