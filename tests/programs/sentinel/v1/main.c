#define VERSION 1
#include "sentinel.h"
