// The item of v2: `extra` is new (in front: every other field moves), `value` is widened.
#pragma once

struct item {
  long long extra;
  struct item* next;
  long long value;
  int id;
  short junk;
  char name[24];  // 48 bytes in v1: malloc gives 56, room for v2 to grow in place
};
