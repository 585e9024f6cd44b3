/* kvstore: the keyspace, a chained hash table of typed entries.
 * All functions except kv_init expect the caller to hold kv_lock(). */
#ifndef KV_TABLE_H
#define KV_TABLE_H

#include <stddef.h>
#include <stdint.h>

enum kv_type { KV_STRING = 1, KV_LIST = 2 };
enum kv_end { KV_HEAD = 0, KV_TAIL = 1 };

struct kv_node {
    struct kv_node *prev;
    struct kv_node *next;
    char *data;
    size_t len;
};

struct kv_list {
    struct kv_node *head;
    struct kv_node *tail;
    size_t len;
};

struct kv_entry {
    struct kv_entry *next;      /* hash chain */
    uint64_t hash;
    char *key;
    size_t klen;
    int64_t expire_at;          /* kv_mstime() deadline, 0: no expiry */
    enum kv_type type;
    char *str;                  /* KV_STRING value, NUL-terminated */
    size_t slen;
    struct kv_list *list;       /* KV_LIST value */
};

struct kv_table {
    struct kv_entry **buckets;
    size_t nbuckets;            /* a power of two */
    size_t count;
};

void kv_init(void);
void kv_lock(void);
void kv_unlock(void);
struct kv_entry *kv_find(const char *key, size_t klen);
struct kv_entry *kv_insert(const char *key, size_t klen, enum kv_type type);
struct kv_entry *kv_set(const char *key, size_t klen, const char *val, size_t vlen);
void kv_set_string(struct kv_entry *e, const char *val, size_t vlen);
int kv_delete(const char *key, size_t klen);
void kv_remove(struct kv_entry *e);
size_t kv_count(void);
void kv_flush(void);
size_t kv_expire_sweep(size_t nbuckets);

void kv_list_push(struct kv_list *l, const char *data, size_t len, enum kv_end end);
struct kv_node *kv_list_pop(struct kv_list *l, enum kv_end end);
void kv_node_free(struct kv_node *n);

#endif
