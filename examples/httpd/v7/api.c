/* httpd: the in-memory JSON API (counters, key-value store, statistics). */
#include "httpd.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NAME_MAX_LEN    63
#define COUNTER_BUCKETS 256
#define KV_BUCKETS      1024

struct counter {
    struct counter *next;
    char name[NAME_MAX_LEN + 1];
    long long value;
};

struct kv_entry {
    struct kv_entry *next;
    char *key;
    char *value;
    size_t value_len;
    time_t mtime;           /* last PUT */
};

static struct counter *counters[COUNTER_BUCKETS];
static size_t counter_count;
static pthread_mutex_t counters_lock = PTHREAD_MUTEX_INITIALIZER;

static struct kv_entry *kv_table[KV_BUCKETS];
static size_t kv_count;
static unsigned long kv_version = 1;    /* bumped by every PUT and DELETE */
static pthread_mutex_t kv_lock = PTHREAD_MUTEX_INITIALIZER;

typedef void (*route_fn)(const struct request *req, const char *name,
                         struct response *resp);

/* A path is prefix NAME suffix; suffix NULL means the path is just prefix. */
struct route {
    const char *method;
    const char *prefix;
    const char *suffix;
    route_fn fn;
};

static unsigned long hash_name(const char *s)
{
    unsigned long h = 1469598103934665603UL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211UL;
    }
    return h;
}

static int valid_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("-._~", *s))
            return 0;
    return 1;
}

/* ---- counters --------------------------------------------------------- */

static struct counter *counter_find(const char *name, int create)
{
    struct counter **head = &counters[hash_name(name) % COUNTER_BUCKETS];
    for (struct counter *c = *head; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    if (!create)
        return NULL;
    struct counter *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->next = *head;
    *head = c;
    counter_count++;
    return c;
}

/* The amount in a request body: empty means 1. */
static int parse_delta(const struct request *req, long long *out)
{
    char tmp[32];
    size_t n = req->body_len;
    while (n && isspace((unsigned char)req->body[n - 1]))
        n--;
    if (n == 0) {
        *out = 1;
        return 0;
    }
    if (n >= sizeof tmp)
        return -1;
    memcpy(tmp, req->body, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno || end == tmp || *end)
        return -1;
    *out = v;
    return 0;
}

static void counter_get(const struct request *req, const char *name,
                        struct response *resp)
{
    (void)req;
    pthread_mutex_lock(&counters_lock);
    struct counter *c = counter_find(name, 0);
    long long value = c ? c->value : 0;
    pthread_mutex_unlock(&counters_lock);
    if (!c)
        resp_json(resp, 404, "{\"error\":\"no such counter\",\"name\":\"%s\"}", name);
    else
        resp_json(resp, 200, "{\"name\":\"%s\",\"value\":%lld}", name, value);
}

static void counter_incr(const struct request *req, const char *name,
                         struct response *resp)
{
    long long delta, value = 0;
    int overflow = 0;
    if (parse_delta(req, &delta) < 0) {
        resp_json(resp, 400, "{\"error\":\"body must be an integer\"}");
        return;
    }
    pthread_mutex_lock(&counters_lock);
    struct counter *c = counter_find(name, 1);
    if (c) {
        overflow = __builtin_add_overflow(c->value, delta, &value);
        if (!overflow)
            c->value = value;
    }
    pthread_mutex_unlock(&counters_lock);
    if (!c)
        resp_json(resp, 500, "{\"error\":\"out of memory\"}");
    else if (overflow)
        resp_json(resp, 409, "{\"error\":\"overflow\",\"name\":\"%s\"}", name);
    else
        resp_json(resp, 200, "{\"name\":\"%s\",\"value\":%lld}", name, value);
}

static void counter_decr(const struct request *req, const char *name,
                         struct response *resp)
{
    long long delta, value = 0;
    int overflow = 0;
    if (parse_delta(req, &delta) < 0) {
        resp_json(resp, 400, "{\"error\":\"body must be an integer\"}");
        return;
    }
    pthread_mutex_lock(&counters_lock);
    struct counter *c = counter_find(name, 1);
    if (c) {
        overflow = __builtin_sub_overflow(c->value, delta, &value);
        if (!overflow)
            c->value = value;
    }
    pthread_mutex_unlock(&counters_lock);
    if (!c)
        resp_json(resp, 500, "{\"error\":\"out of memory\"}");
    else if (overflow)
        resp_json(resp, 409, "{\"error\":\"overflow\",\"name\":\"%s\"}", name);
    else
        resp_json(resp, 200, "{\"name\":\"%s\",\"value\":%lld}", name, value);
}

/* ---- key-value store -------------------------------------------------- */

static struct kv_entry **kv_slot(const char *key)
{
    struct kv_entry **pp = &kv_table[hash_name(key) % KV_BUCKETS];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void kv_get(const struct request *req, const char *key,
                   struct response *resp)
{
    (void)req;
    pthread_mutex_lock(&kv_lock);
    struct kv_entry *e = *kv_slot(key);
    if (e) {
        resp->status = 200;
        resp->content_type = "application/octet-stream";
        buf_append(&resp->body, e->value, e->value_len);
        if (e->mtime) {
            struct tm tm;
            char date[64];
            gmtime_r(&e->mtime, &tm);
            strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
            resp_header(resp, "Last-Modified: %s", date);
        }
    }
    pthread_mutex_unlock(&kv_lock);
    if (!e)
        resp_json(resp, 404, "{\"error\":\"no such key\",\"key\":\"%s\"}", key);
}

static void kv_put(const struct request *req, const char *key,
                   struct response *resp)
{
    char *value = malloc(req->body_len ? req->body_len : 1);
    if (!value) {
        resp_json(resp, 500, "{\"error\":\"out of memory\"}");
        return;
    }
    memcpy(value, req->body, req->body_len);

    pthread_mutex_lock(&kv_lock);
    struct kv_entry **pp = kv_slot(key);
    struct kv_entry *e = *pp;
    int created = 0;
    if (!e) {
        e = calloc(1, sizeof *e);
        char *k = strdup(key);
        if (!e || !k) {
            pthread_mutex_unlock(&kv_lock);
            free(e);
            free(k);
            free(value);
            resp_json(resp, 500, "{\"error\":\"out of memory\"}");
            return;
        }
        e->key = k;
        *pp = e;
        kv_count++;
        created = 1;
    }
    free(e->value);
    e->value = value;
    e->value_len = req->body_len;
    e->mtime = time(NULL);
    kv_version++;
    pthread_mutex_unlock(&kv_lock);

    resp_json(resp, created ? 201 : 200, "{\"key\":\"%s\",\"size\":%zu}",
              key, req->body_len);
}

static void kv_delete(const struct request *req, const char *key,
                      struct response *resp)
{
    (void)req;
    pthread_mutex_lock(&kv_lock);
    struct kv_entry **pp = kv_slot(key);
    struct kv_entry *e = *pp;
    if (e) {
        *pp = e->next;
        kv_count--;
        kv_version++;
    }
    pthread_mutex_unlock(&kv_lock);
    if (!e) {
        resp_json(resp, 404, "{\"error\":\"no such key\",\"key\":\"%s\"}", key);
        return;
    }
    free(e->key);
    free(e->value);
    free(e);
    resp_json(resp, 200, "{\"deleted\":\"%s\"}", key);
}

static void kv_list(const struct request *req, const char *name,
                    struct response *resp)
{
    (void)req;
    (void)name;
    resp->status = 200;
    resp->content_type = "application/json";
    pthread_mutex_lock(&kv_lock);
    buf_printf(&resp->body, "{\"version\":%lu,\"count\":%zu,\"keys\":[",
               kv_version, kv_count);
    const char *sep = "";
    for (size_t i = 0; i < KV_BUCKETS; i++) {
        for (struct kv_entry *e = kv_table[i]; e; e = e->next) {
            buf_printf(&resp->body, "%s\"%s\"", sep, e->key);
            sep = ",";
        }
    }
    pthread_mutex_unlock(&kv_lock);
    buf_printf(&resp->body, "]}\n");
}

/* ---- statistics ------------------------------------------------------- */

static void stats_get(const struct request *req, const char *name,
                      struct response *resp)
{
    (void)req;
    (void)name;
    pthread_mutex_lock(&counters_lock);
    size_t ncounters = counter_count;
    pthread_mutex_unlock(&counters_lock);
    pthread_mutex_lock(&kv_lock);
    size_t nkeys = kv_count;
    pthread_mutex_unlock(&kv_lock);
    resp_json(resp, 200,
              "{\"version\":\"%s\",\"requests\":%lu,\"connections_accepted\":%lu,"
              "\"connections_open\":%u,\"bytes_sent\":%lu,\"bad_requests\":%lu,"
              "\"responses\":{\"1xx\":%lu,\"2xx\":%lu,\"3xx\":%lu,\"4xx\":%lu,\"5xx\":%lu},"
              "\"keepalive_reuses\":%lu,\"counters\":%zu,\"keys\":%zu}",
              httpd_version,
              __atomic_load_n(&g_stats.requests, __ATOMIC_RELAXED),
              __atomic_load_n(&g_stats.connections_accepted, __ATOMIC_RELAXED),
              server_open_connections(),
              __atomic_load_n(&g_stats.bytes_sent, __ATOMIC_RELAXED),
              __atomic_load_n(&g_stats.bad_requests, __ATOMIC_RELAXED),
              __atomic_load_n(&g_stats.responses[1], __ATOMIC_RELAXED),
              __atomic_load_n(&g_stats.responses[2], __ATOMIC_RELAXED),
              __atomic_load_n(&g_stats.responses[3], __ATOMIC_RELAXED),
              __atomic_load_n(&g_stats.responses[4], __ATOMIC_RELAXED),
              __atomic_load_n(&g_stats.responses[5], __ATOMIC_RELAXED),
              __atomic_load_n(&g_stats.keepalive_reuses, __ATOMIC_RELAXED),
              ncounters, nkeys);
}

/* ---- routing ---------------------------------------------------------- */

static const struct route routes[] = {
    { "GET",    "/api/counters/", "",      counter_get },
    { "POST",   "/api/counters/", "/incr", counter_incr },
    { "POST",   "/api/counters/", "/decr", counter_decr },
    { "GET",    "/api/kv/",       "",      kv_get },
    { "PUT",    "/api/kv/",       "",      kv_put },
    { "DELETE", "/api/kv/",       "",      kv_delete },
    { "GET",    "/api/kv",        NULL,    kv_list },
    { "GET",    "/api/stats",     NULL,    stats_get },
};

/* 1 if path fits r; the NAME part goes to name ("" if too long). */
static int route_match(const struct route *r, const char *path, char *name)
{
    size_t pl = strlen(r->prefix), len = strlen(path);
    name[0] = '\0';
    if (strncmp(path, r->prefix, pl) != 0)
        return 0;
    if (!r->suffix)
        return len == pl;
    size_t sl = strlen(r->suffix);
    if (len < pl + sl + 1 || strcmp(path + len - sl, r->suffix) != 0)
        return 0;
    size_t nl = len - pl - sl;
    if (memchr(path + pl, '/', nl))
        return 0;
    if (nl <= NAME_MAX_LEN) {
        memcpy(name, path + pl, nl);
        name[nl] = '\0';
    }
    return 1;
}

int api_path(const char *path)
{
    return strncmp(path, "/api/", 5) == 0 || strcmp(path, "/api") == 0;
}

void api_handle(const struct request *req, struct response *resp)
{
    const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    char name[NAME_MAX_LEN + 1];
    char allow[64] = "";
    size_t allow_len = 0;

    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct route *r = &routes[i];
        if (!route_match(r, req->path, name))
            continue;
        if (strcmp(r->method, method) != 0) {
            int n = snprintf(allow + allow_len, sizeof allow - allow_len, "%s%s%s",
                             allow_len ? ", " : "", r->method,
                             strcmp(r->method, "GET") == 0 ? ", HEAD" : "");
            if (n > 0 && (size_t)n < sizeof allow - allow_len)
                allow_len += (size_t)n;
            continue;
        }
        if (r->suffix && !valid_name(name)) {
            resp_json(resp, 400, "{\"error\":\"invalid name\"}");
            return;
        }
        r->fn(req, name, resp);
        return;
    }
    if (allow_len) {
        resp_json(resp, 405, "{\"error\":\"method not allowed\"}");
        resp_header(resp, "Allow: %s", allow);
        return;
    }
    resp_json(resp, 404, "{\"error\":\"no such endpoint\"}");
}
