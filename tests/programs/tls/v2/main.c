// Shared by every version: ../common/program.h (workers, main, shared_ticks).
#include "program.h"
