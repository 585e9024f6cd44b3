// Shared by every version: ../common/list_impl.h.
#include "list_impl.h"
