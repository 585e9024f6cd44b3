#define VERSION 1
#include "kernelref.h"
