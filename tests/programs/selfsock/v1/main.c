#define VERSION 1
#include "selfsock.h"
