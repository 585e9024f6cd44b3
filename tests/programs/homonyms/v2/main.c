#define VERSION 2
#include "homonyms.h"
