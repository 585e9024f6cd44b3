#include "kvstore.h"

const char kv_version[] = "v7";
