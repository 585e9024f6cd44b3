#define VERSION 2
#include "sentinel.h"
