/* cpuwork: a CPU-bound C program of many small functions spread over
 * several translation units, for measuring the steady-state cost of the
 * graft-cc policies (bench/run.sh). Output: one checksum line, identical
 * for every compiler and policy. */
#ifndef CPUWORK_H
#define CPUWORK_H
#include <stddef.h>
#include <stdint.h>

/* util.c */
uint64_t rng_next(uint64_t *state);
uint64_t mix64(uint64_t x);
uint64_t checksum_add(uint64_t sum, uint64_t value);
int64_t clamp64(int64_t x, int64_t lo, int64_t hi);

/* vm.c: a small stack machine */
enum op {
    OP_HALT, OP_PUSH, OP_LOAD, OP_STORE, OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD,
    OP_LT, OP_EQ, OP_JZ, OP_JMP, OP_DUP, OP_DROP, OP_SWAP, OP_HASH
};
struct insn { uint8_t op; int32_t arg; };
struct program { struct insn code[256]; int len; };
int64_t vm_run(const struct program *p, int64_t arg);

/* asm.c: builds the VM programs */
void asm_collatz(struct program *p);
void asm_gcdsum(struct program *p);

/* table.c: open-addressing hash table */
struct table;
struct table *table_new(size_t capacity_log2);
void table_free(struct table *t);
void table_put(struct table *t, uint64_t key, uint64_t value);
int table_get(const struct table *t, uint64_t key, uint64_t *value);
int table_del(struct table *t, uint64_t key);
size_t table_count(const struct table *t);
uint64_t table_fold(const struct table *t);

/* sort.c */
struct rec { uint64_t key; uint32_t value; uint32_t tag; };
typedef int (*rec_cmp)(const struct rec *, const struct rec *);
int rec_by_key(const struct rec *a, const struct rec *b);
int rec_by_value_then_key(const struct rec *a, const struct rec *b);
void rec_sort(struct rec *r, size_t n, rec_cmp cmp);
int rec_is_sorted(const struct rec *r, size_t n, rec_cmp cmp);

/* words.c: tokenizer and word counter over generated text */
size_t text_generate(char *buf, size_t cap, uint64_t *rng);
uint64_t words_count(const char *text, size_t len, struct table *counts);
#endif
