#!/bin/sh
# What heap type tags cost a program at run time (graft-cc
# --graft-heap-types=on): one C program, built with graft-cc -O2 with and
# without the tags, run side by side (alternating, RUNS times each):
#   churn   malloc + tag + free of a 48-byte struct, 10 million times (the
#           worst case: the tag's store and the free wrapper's load are all
#           the loop does besides the allocator)
#   list    a list of 1 million structs built, walked 20 times (casting
#           each node's void * value back), and freed
#   rss     the resident memory of 1 million live tagged structs (the
#           table's pages: 2 bytes per 16 bytes of heap that holds one)
# Prints each measure's median per build and their ratio.
#   bench/heap_types_bench.sh BUILD_DIR [RUNS]
set -eu
build=${1:?usage: bench/heap_types_bench.sh BUILD_DIR [RUNS]}
runs=${2:-5}
cc="$build/bin/graft-cc"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

cat > "$work/bench.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct item {
  long key;
  char name[32];
  struct item* next;
};
struct node {
  struct node* next;
  void* value;
};

struct item* volatile keep;  // what it allocates escapes: the compiler may not drop a malloc + free pair

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static long rss_kb(void) {
  FILE* f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
  if (f) fclose(f);
  return kb;
}

int main(int argc, char** argv) {
  const char* what = argc > 1 ? argv[1] : "churn";
  long sum = 0;
  if (strcmp(what, "churn") == 0) {
    const double start = now();
    for (long i = 0; i < 10000000; i++) {
      struct item* it = malloc(sizeof *it);
      it->key = i;
      keep = it;
      sum += keep->key;
      free(keep);
    }
    printf("%.2f\n", (now() - start) * 1e9 / 10000000);  // ns per malloc + free
  } else {
    const long n = 1000000;
    const long before = rss_kb();
    const double start = now();
    struct node* head = NULL;
    for (long i = 0; i < n; i++) {
      struct item* it = calloc(1, sizeof *it);
      it->key = i;
      struct node* node = malloc(sizeof *node);
      node->value = it;
      node->next = head;
      head = node;
    }
    const long held = rss_kb() - before;
    for (int round = 0; round < 20; round++)
      for (struct node* p = head; p; p = p->next) sum += ((struct item*)p->value)->key;
    while (head) {
      struct node* next = head->next;
      free(head->value);
      free(head);
      head = next;
    }
    if (strcmp(what, "rss") == 0) printf("%ld\n", held);  // kB for 1 million items and nodes
    else printf("%.2f\n", (now() - start) * 1e3);         // ms
  }
  return sum == 42 ? 1 : 0;
}
EOF

GRAFT_STORE="$work/store" "$cc" -O2 "$work/bench.c" -o "$work/plain"
GRAFT_STORE="$work/store" "$cc" -O2 --graft-heap-types=on "$work/bench.c" -o "$work/tagged"

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "measure plain tagged ratio (median of $runs runs each, alternating)"
for what in churn list rss; do
  : > "$work/plain.$what"
  : > "$work/tagged.$what"
  i=0
  while [ $i -lt "$runs" ]; do
    "$work/plain" $what >> "$work/plain.$what"
    "$work/tagged" $what >> "$work/tagged.$what"
    i=$((i + 1))
  done
  p=$(median < "$work/plain.$what")
  t=$(median < "$work/tagged.$what")
  case $what in
    churn) unit="ns per malloc+free" ;;
    list) unit="ms to build, walk 20x, free 1M" ;;
    rss) unit="kB resident for 1M items+nodes" ;;
  esac
  echo "$what ($unit) $p $t $(echo "scale=3; $t / $p" | bc)"
done
