#define VERSION 1
#include "app.h"
