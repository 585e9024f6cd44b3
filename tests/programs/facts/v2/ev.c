// Shared by every version: ../common/ev_impl.h.
#include "ev_impl.h"
