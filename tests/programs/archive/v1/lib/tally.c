// libtally.a(tally.o): the scoring, counted in a struct in the heap.
#include <pthread.h>
#include <stdlib.h>

#include "tally.h"

struct tally {
  long calls;
  long total;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct tally* tally;

void tally_init(void) { tally = calloc(1, sizeof *tally); }

long score(long n) {
  pthread_mutex_lock(&lock);
  tally->calls++;
  tally->total += n;
  pthread_mutex_unlock(&lock);
  return 2 * n;
}

long tally_calls(void) {
  pthread_mutex_lock(&lock);
  const long calls = tally->calls;
  pthread_mutex_unlock(&lock);
  return calls;
}

long tally_largest(void) { return -1; }
