/* kvstore: the keyspace. One chained hash table guarded by one mutex; the
 * table doubles when it holds more entries than buckets. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kvstore.h"
#include "table.h"

#define KV_INITIAL_BUCKETS 1024

static struct kv_table table;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t sweep_cursor;     /* next bucket kv_expire_sweep looks at */

/* FNV-1a, 64 bit. */
static uint64_t kv_hash(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void kv_init(void)
{
    table.nbuckets = KV_INITIAL_BUCKETS;
    table.buckets = xcalloc(table.nbuckets, sizeof *table.buckets);
    table.count = 0;
}

void kv_lock(void)
{
    pthread_mutex_lock(&table_lock);
}

void kv_unlock(void)
{
    pthread_mutex_unlock(&table_lock);
}

static void kv_list_free(struct kv_list *l)
{
    struct kv_node *n = l->head;
    while (n != NULL) {
        struct kv_node *next = n->next;
        kv_node_free(n);
        n = next;
    }
    free(l);
}

static void kv_entry_free(struct kv_entry *e)
{
    free(e->key);
    free(e->str);
    if (e->list != NULL)
        kv_list_free(e->list);
    free(e);
}

/* Finds a key; a key past its expiry time is removed on the way (lazy
 * expiry) and reported missing. */
struct kv_entry *kv_find(const char *key, size_t klen)
{
    uint64_t h = kv_hash(key, klen);
    struct kv_entry *e = table.buckets[h & (table.nbuckets - 1)];

    for (; e != NULL; e = e->next)
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) {
            if (e->expire_at != 0 && e->expire_at <= kv_mstime()) {
                kv_remove(e);
                STAT_INC(expired_keys);
                return NULL;
            }
            return e;
        }
    return NULL;
}

static void kv_grow(void)
{
    size_t n = table.nbuckets * 2;
    struct kv_entry **b = xcalloc(n, sizeof *b);

    for (size_t i = 0; i < table.nbuckets; i++) {
        struct kv_entry *e = table.buckets[i];
        while (e != NULL) {
            struct kv_entry *next = e->next;
            size_t j = e->hash & (n - 1);
            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    free(table.buckets);
    table.buckets = b;
    table.nbuckets = n;
}

/* Adds a new, empty entry; the key must not be present. */
struct kv_entry *kv_insert(const char *key, size_t klen, enum kv_type type)
{
    struct kv_entry *e;
    size_t b;

    if (table.count >= table.nbuckets)
        kv_grow();
    e = xcalloc(1, sizeof *e);
    e->hash = kv_hash(key, klen);
    e->key = xmemdup(key, klen);
    e->klen = klen;
    e->type = type;
    if (type == KV_LIST)
        e->list = xcalloc(1, sizeof *e->list);
    else
        e->str = xmemdup("", 0);
    b = e->hash & (table.nbuckets - 1);
    e->next = table.buckets[b];
    table.buckets[b] = e;
    table.count++;
    return e;
}

/* Makes e a string holding val, whatever it held before. */
void kv_set_string(struct kv_entry *e, const char *val, size_t vlen)
{
    if (e->list != NULL) {
        kv_list_free(e->list);
        e->list = NULL;
    }
    free(e->str);
    e->type = KV_STRING;
    e->str = xmemdup(val, vlen);
    e->slen = vlen;
}

/* SET semantics: create or overwrite, and forget any expiry time. */
struct kv_entry *kv_set(const char *key, size_t klen, const char *val, size_t vlen)
{
    struct kv_entry *e = kv_find(key, klen);

    if (e == NULL)
        e = kv_insert(key, klen, KV_STRING);
    kv_set_string(e, val, vlen);
    e->expire_at = 0;
    return e;
}

static struct kv_entry **kv_link_of(struct kv_entry *e)
{
    struct kv_entry **link = &table.buckets[e->hash & (table.nbuckets - 1)];

    while (*link != NULL && *link != e)
        link = &(*link)->next;
    return link;
}

void kv_remove(struct kv_entry *e)
{
    struct kv_entry **link = kv_link_of(e);

    if (*link == NULL)
        return;
    *link = e->next;
    table.count--;
    kv_entry_free(e);
}

int kv_delete(const char *key, size_t klen)
{
    struct kv_entry *e = kv_find(key, klen);

    if (e == NULL)
        return 0;
    kv_remove(e);
    return 1;
}

size_t kv_count(void)
{
    return table.count;
}

void kv_flush(void)
{
    for (size_t i = 0; i < table.nbuckets; i++) {
        struct kv_entry *e = table.buckets[i];
        while (e != NULL) {
            struct kv_entry *next = e->next;
            kv_entry_free(e);
            e = next;
        }
    }
    free(table.buckets);
    kv_init();
}

/* Active expiry: removes the expired entries of the next nbuckets buckets
 * and returns how many it removed. */
size_t kv_expire_sweep(size_t nbuckets)
{
    int64_t now = kv_mstime();
    size_t removed = 0;

    if (nbuckets > table.nbuckets)
        nbuckets = table.nbuckets;
    for (size_t i = 0; i < nbuckets; i++) {
        struct kv_entry **link = &table.buckets[sweep_cursor++ & (table.nbuckets - 1)];
        while (*link != NULL) {
            struct kv_entry *e = *link;
            if (e->expire_at != 0 && e->expire_at <= now) {
                *link = e->next;
                table.count--;
                kv_entry_free(e);
                removed++;
            } else {
                link = &e->next;
            }
        }
    }
    return removed;
}

void kv_list_push(struct kv_list *l, const char *data, size_t len, enum kv_end end)
{
    struct kv_node *n = xcalloc(1, sizeof *n);

    n->data = xmemdup(data, len);
    n->len = len;
    if (end == KV_HEAD) {
        n->next = l->head;
        if (l->head != NULL)
            l->head->prev = n;
        else
            l->tail = n;
        l->head = n;
    } else {
        n->prev = l->tail;
        if (l->tail != NULL)
            l->tail->next = n;
        else
            l->head = n;
        l->tail = n;
    }
    l->len++;
}

/* Unlinks and returns the node at one end, or NULL if the list is empty. */
struct kv_node *kv_list_pop(struct kv_list *l, enum kv_end end)
{
    struct kv_node *n = end == KV_HEAD ? l->head : l->tail;

    if (n == NULL)
        return NULL;
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
    l->len--;
    return n;
}

void kv_node_free(struct kv_node *n)
{
    free(n->data);
    free(n);
}
