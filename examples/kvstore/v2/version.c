#include "kvstore.h"

const char kv_version[] = "v2";
