// Shared by every version: ../common/perlist.h.
#define VERSION 1
#include "perlist.h"
