#define VERSION 2
#include "keptaway.h"
