#define VERSION 2
#include "selfsock.h"
