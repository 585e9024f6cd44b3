// Shared by every version: ../common/voidglobal.h.
#define VERSION 1
#include "voidglobal.h"
