#define VERSION 2
#include "entry.h"
