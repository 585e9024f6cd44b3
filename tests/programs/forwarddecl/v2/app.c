#define VERSION 2
#include "app.h"
