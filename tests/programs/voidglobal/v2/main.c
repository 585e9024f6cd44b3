// Shared by every version: ../common/voidglobal.h.
#define VERSION 2
#include "voidglobal.h"
