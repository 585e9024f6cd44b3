#include "work.h"

int rec_by_key(const struct rec *a, const struct rec *b)
{
    return (a->key > b->key) - (a->key < b->key);
}

int rec_by_value_then_key(const struct rec *a, const struct rec *b)
{
    if (a->value != b->value) return a->value < b->value ? -1 : 1;
    return rec_by_key(a, b);
}

static void swap(struct rec *a, struct rec *b) { struct rec t = *a; *a = *b; *b = t; }
static int less(rec_cmp cmp, const struct rec *a, const struct rec *b) { return cmp(a, b) < 0; }

static void insertion_sort(struct rec *r, size_t n, rec_cmp cmp)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && less(cmp, &r[j], &r[j - 1]); j--) swap(&r[j], &r[j - 1]);
}

static size_t median3(struct rec *r, size_t n, rec_cmp cmp)
{
    size_t a = 0, b = n / 2, c = n - 1;
    if (less(cmp, &r[b], &r[a])) { size_t t = a; a = b; b = t; }
    if (less(cmp, &r[c], &r[b])) { size_t t = b; b = c; c = t; }
    if (less(cmp, &r[b], &r[a])) { size_t t = a; a = b; b = t; }
    return b;
}

static size_t partition(struct rec *r, size_t n, rec_cmp cmp)
{
    swap(&r[median3(r, n, cmp)], &r[n - 1]);
    size_t store = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (less(cmp, &r[i], &r[n - 1])) swap(&r[i], &r[store++]);
    swap(&r[store], &r[n - 1]);
    return store;
}

void rec_sort(struct rec *r, size_t n, rec_cmp cmp)
{
    while (n > 16) {
        size_t p = partition(r, n, cmp);
        if (p < n - p - 1) { rec_sort(r, p, cmp); r += p + 1; n -= p + 1; }
        else { rec_sort(r + p + 1, n - p - 1, cmp); n = p; }
    }
    insertion_sort(r, n, cmp);
}

int rec_is_sorted(const struct rec *r, size_t n, rec_cmp cmp)
{
    for (size_t i = 1; i < n; i++)
        if (less(cmp, &r[i], &r[i - 1])) return 0;
    return 1;
}
