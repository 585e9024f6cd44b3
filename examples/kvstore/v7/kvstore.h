/* kvstore: shared declarations of the server, the protocol layer and the
 * command layer. */
#ifndef KVSTORE_H
#define KVSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* One client connection. Owned by the worker thread whose epoll set holds
 * its socket; only that thread touches it. */
struct conn {
    int fd;
    int worker;             /* index of the owning worker */
    uint64_t id;            /* CLIENT ID */
    uint64_t ncommands;     /* commands served on this connection */
    uint32_t events;        /* epoll events currently registered */
    int closing;            /* close once the output buffer is flushed */
    char *rbuf;             /* unparsed input */
    size_t rlen;
    size_t rcap;
    char *wbuf;             /* pending output: wbuf[wpos..wlen) */
    size_t wpos;
    size_t wlen;
    size_t wcap;
    int argc;               /* the request being executed; argv points */
    int argcap;             /* into rbuf */
    const char **argv;
    size_t *argl;
    char *name;             /* CLIENT SETNAME, or NULL */
};

/* Server-wide counters, updated with atomic builtins. */
struct kv_stats {
    uint64_t connections_received;
    uint64_t connected_clients;
    uint64_t commands_processed;
    uint64_t keyspace_hits;
    uint64_t keyspace_misses;
    uint64_t expired_keys;
    uint64_t error_replies;
};

struct kv_server {
    int port;
    int nthreads;
    time_t start_time;
};

extern struct kv_stats kv_stats;
extern struct kv_server kv_server;
extern const char kv_version[];
extern char *kv_instance; /* KVSTORE_INSTANCE at start-up (v7) */

#define STAT_INC(field) __atomic_add_fetch(&kv_stats.field, 1, __ATOMIC_RELAXED)
#define STAT_DEC(field) __atomic_sub_fetch(&kv_stats.field, 1, __ATOMIC_RELAXED)
#define STAT_GET(field) __atomic_load_n(&kv_stats.field, __ATOMIC_RELAXED)

/* util.c */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xmemdup(const char *s, size_t n);
int string2ll(const char *s, size_t len, long long *out);
int64_t kv_mstime(void);

/* resp.c: request parsing and reply building */
long resp_parse(struct conn *c, const char *buf, size_t len, const char **err);
void reply_raw(struct conn *c, const char *p, size_t n);
void reply_status(struct conn *c, const char *s);
void reply_error(struct conn *c, const char *s);
void reply_errorf(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void reply_int(struct conn *c, long long v);
void reply_bulk(struct conn *c, const char *p, size_t n);
void reply_bulk_cstr(struct conn *c, const char *s);
void reply_nil(struct conn *c);
void reply_null_array(struct conn *c);
void reply_array(struct conn *c, long long n);

/* server.c */
void print_ready(int port);

/* commands.c */
void command_dispatch(struct conn *c);

#endif
