#define VERSION 1
#include "homonyms.h"
