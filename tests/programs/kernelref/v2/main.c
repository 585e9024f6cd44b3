#define VERSION 2
#include "kernelref.h"
