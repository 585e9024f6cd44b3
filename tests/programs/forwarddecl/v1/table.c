#define VERSION 1
#include "entry.h"
