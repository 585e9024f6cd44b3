#include <stdio.h>
#include <stdlib.h>
#include "work.h"

#define NREC 20000
#define TEXT 65536

static struct rec recs[NREC];
static char text[TEXT];

static uint64_t round_vm(uint64_t sum, const struct program *collatz, const struct program *gcd, uint64_t *rng)
{
    for (int i = 0; i < 300; i++) {
        int64_t n = clamp64((int64_t)(rng_next(rng) % 5000), 2, 4999);
        sum = checksum_add(sum, (uint64_t)vm_run(collatz, n));
    }
    sum = checksum_add(sum, (uint64_t)vm_run(gcd, 1500 + (int64_t)(rng_next(rng) % 500)));
    return sum;
}

static uint64_t round_table(uint64_t sum, uint64_t *rng)
{
    struct table *t = table_new(15);
    for (int i = 0; i < 12000; i++) table_put(t, rng_next(rng) % 20000, (uint64_t)i);
    uint64_t v, hits = 0;
    for (int i = 0; i < 12000; i++) hits += table_get(t, (uint64_t)i, &v) ? v : 0;
    for (int i = 0; i < 4000; i++) table_del(t, (uint64_t)i * 3);
    sum = checksum_add(sum, hits + table_count(t) + table_fold(t));
    table_free(t);
    return sum;
}

static uint64_t round_sort(uint64_t sum, uint64_t *rng)
{
    for (int i = 0; i < NREC; i++) {
        recs[i].key = rng_next(rng);
        recs[i].value = (uint32_t)(rng_next(rng) % 1000);
        recs[i].tag = (uint32_t)i;
    }
    rec_sort(recs, NREC, rec_by_value_then_key);
    if (!rec_is_sorted(recs, NREC, rec_by_value_then_key)) abort();
    rec_sort(recs, NREC / 4, rec_by_key);
    return checksum_add(sum, recs[NREC / 2].key ^ recs[7].tag);
}

static uint64_t round_words(uint64_t sum, uint64_t *rng)
{
    size_t len = text_generate(text, TEXT, rng);
    struct table *counts = table_new(14);
    uint64_t words = words_count(text, len, counts);
    sum = checksum_add(sum, words + table_count(counts) + table_fold(counts));
    table_free(counts);
    return sum;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 100;
    struct program collatz, gcd;
    asm_collatz(&collatz);
    asm_gcdsum(&gcd);
    uint64_t rng = 0x2545f4914f6cdd1dULL, sum = 0;
    for (int r = 0; r < rounds; r++) {
        sum = round_vm(sum, &collatz, &gcd, &rng);
        sum = round_table(sum, &rng);
        sum = round_sort(sum, &rng);
        sum = round_words(sum, &rng);
    }
    printf("cpuwork %d rounds: checksum %016llx\n", rounds, (unsigned long long)sum);
    return 0;
}
