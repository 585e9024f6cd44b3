// Shared by every version: ../common/facts.h, which needs this version's types.h first.
#include "types.h"
#include "facts.h"
