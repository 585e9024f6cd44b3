// Shared by every version: ../common/perlist.h.
#define VERSION 2
#include "perlist.h"
