/* kvstore: the command table and the command implementations. Handlers run
 * with the keyspace lock held and append their reply to the connection. */
#define _GNU_SOURCE
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "kvstore.h"
#include "table.h"

typedef void command_fn(struct conn *c);

struct command {
    const char *name;
    command_fn *handler;
    int arity;              /* argc including the name; -N means at least N */
};

static const char wrongtype_msg[] =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
static const char notint_msg[] = "ERR value is not an integer or out of range";

/* APPEND calls since start, reported by INFO (guarded by the keyspace lock). */
static unsigned long long append_calls;

/* Is argument i equal to s, ignoring case? */
static int arg_is(const struct conn *c, int i, const char *s)
{
    return c->argl[i] == strlen(s) && strncasecmp(c->argv[i], s, c->argl[i]) == 0;
}

/* Counts a read lookup for INFO keyspace_hits/keyspace_misses. */
static void count_lookup(const struct kv_entry *e)
{
    if (e != NULL)
        STAT_INC(keyspace_hits);
    else
        STAT_INC(keyspace_misses);
}

static void reply_arity_error(struct conn *c)
{
    reply_errorf(c, "ERR wrong number of arguments for '%.*s' command",
                 (int)(c->argl[0] > 64 ? 64 : c->argl[0]), c->argv[0]);
}

/* Looks up a key that must hold a string (or be missing). */
static int lookup_string(struct conn *c, int i, struct kv_entry **out)
{
    struct kv_entry *e = kv_find(c->argv[i], c->argl[i]);

    if (e != NULL && e->type != KV_STRING) {
        reply_error(c, wrongtype_msg);
        return 0;
    }
    *out = e;
    return 1;
}

static int lookup_list(struct conn *c, int i, struct kv_entry **out)
{
    struct kv_entry *e = kv_find(c->argv[i], c->argl[i]);

    if (e != NULL && e->type != KV_LIST) {
        reply_error(c, wrongtype_msg);
        return 0;
    }
    *out = e;
    return 1;
}

static void cmd_ping(struct conn *c)
{
    if (c->argc > 2)
        reply_arity_error(c);
    else if (c->argc == 2)
        reply_bulk(c, c->argv[1], c->argl[1]);
    else
        reply_status(c, "PONG");
}

static void cmd_quit(struct conn *c)
{
    reply_status(c, "OK");
    c->closing = 1;
}

static void cmd_select(struct conn *c)
{
    if (arg_is(c, 1, "0"))
        reply_status(c, "OK");
    else
        reply_error(c, "ERR DB index is out of range");
}

static void cmd_get(struct conn *c)
{
    struct kv_entry *e;

    if (!lookup_string(c, 1, &e))
        return;
    count_lookup(e);
    if (e == NULL)
        reply_nil(c);
    else
        reply_bulk(c, e->str, e->slen);
}

static void cmd_set(struct conn *c)
{
    if (c->argc != 3) {
        reply_error(c, "ERR syntax error");
        return;
    }
    kv_set(c->argv[1], c->argl[1], c->argv[2], c->argl[2]);
    reply_status(c, "OK");
}

static void cmd_mset(struct conn *c)
{
    if (c->argc % 2 == 0) {
        reply_arity_error(c);
        return;
    }
    for (int i = 1; i < c->argc; i += 2)
        kv_set(c->argv[i], c->argl[i], c->argv[i + 1], c->argl[i + 1]);
    reply_status(c, "OK");
}

static void cmd_del(struct conn *c)
{
    long long n = 0;

    for (int i = 1; i < c->argc; i++)
        n += kv_delete(c->argv[i], c->argl[i]);
    reply_int(c, n);
}

static void cmd_exists(struct conn *c)
{
    long long n = 0;

    for (int i = 1; i < c->argc; i++) {
        struct kv_entry *e = kv_find(c->argv[i], c->argl[i]);
        count_lookup(e);
        if (e != NULL)
            n++;
    }
    reply_int(c, n);
}

static void cmd_incr(struct conn *c)
{
    struct kv_entry *e;
    long long v = 0;
    char buf[32];
    int n;

    if (!lookup_string(c, 1, &e))
        return;
    if (e != NULL && !string2ll(e->str, e->slen, &v)) {
        reply_error(c, notint_msg);
        return;
    }
    if (v == LLONG_MAX) {
        reply_error(c, "ERR increment or decrement would overflow");
        return;
    }
    v++;
    n = snprintf(buf, sizeof buf, "%lld", v);
    if (e == NULL)
        e = kv_insert(c->argv[1], c->argl[1], KV_STRING);
    kv_set_string(e, buf, (size_t)n);
    reply_int(c, v);
}

static void cmd_append(struct conn *c)
{
    struct kv_entry *e;
    char *s;

    append_calls++;
    if (!lookup_string(c, 1, &e))
        return;
    if (e == NULL)
        e = kv_insert(c->argv[1], c->argl[1], KV_STRING);
    s = xrealloc(e->str, e->slen + c->argl[2] + 1);
    memcpy(s + e->slen, c->argv[2], c->argl[2]);
    e->slen += c->argl[2];
    s[e->slen] = '\0';
    e->str = s;
    reply_int(c, (long long)e->slen);
}

static void push_generic(struct conn *c, enum kv_end end)
{
    struct kv_entry *e;

    if (!lookup_list(c, 1, &e))
        return;
    if (e == NULL)
        e = kv_insert(c->argv[1], c->argl[1], KV_LIST);
    for (int i = 2; i < c->argc; i++)
        kv_list_push(e->list, c->argv[i], c->argl[i], end);
    reply_int(c, (long long)e->list->len);
}

static void cmd_lpush(struct conn *c)
{
    push_generic(c, KV_HEAD);
}

static void cmd_rpush(struct conn *c)
{
    push_generic(c, KV_TAIL);
}

/* LPOP/RPOP key [count] */
static void pop_generic(struct conn *c, enum kv_end end)
{
    struct kv_entry *e;
    struct kv_node *n;
    long long count = -1;

    if (c->argc > 3) {
        reply_arity_error(c);
        return;
    }
    if (c->argc == 3 && (!string2ll(c->argv[2], c->argl[2], &count) || count < 0)) {
        reply_error(c, "ERR value is out of range, must be positive");
        return;
    }
    if (!lookup_list(c, 1, &e))
        return;
    if (e == NULL) {
        if (count < 0)
            reply_nil(c);
        else
            reply_null_array(c);
        return;
    }
    if (count < 0) {
        n = kv_list_pop(e->list, end);
        reply_bulk(c, n->data, n->len);
        kv_node_free(n);
    } else {
        if (count > (long long)e->list->len)
            count = (long long)e->list->len;
        reply_array(c, count);
        for (long long i = 0; i < count; i++) {
            n = kv_list_pop(e->list, end);
            reply_bulk(c, n->data, n->len);
            kv_node_free(n);
        }
    }
    if (e->list->len == 0)
        kv_remove(e);
}

static void cmd_lpop(struct conn *c)
{
    pop_generic(c, KV_HEAD);
}

static void cmd_rpop(struct conn *c)
{
    pop_generic(c, KV_TAIL);
}

static void cmd_lrange(struct conn *c)
{
    struct kv_entry *e;
    struct kv_node *n;
    long long start, stop, len, i;

    if (!string2ll(c->argv[2], c->argl[2], &start) ||
        !string2ll(c->argv[3], c->argl[3], &stop)) {
        reply_error(c, notint_msg);
        return;
    }
    if (!lookup_list(c, 1, &e))
        return;
    count_lookup(e);
    if (e == NULL) {
        reply_array(c, 0);
        return;
    }
    len = (long long)e->list->len;
    if (start < 0)
        start = len + start;
    if (stop < 0)
        stop = len + stop;
    if (start < 0)
        start = 0;
    if (start > stop || start >= len) {
        reply_array(c, 0);
        return;
    }
    if (stop >= len)
        stop = len - 1;
    reply_array(c, stop - start + 1);
    if (start <= len / 2) {
        for (n = e->list->head, i = 0; i < start; i++)
            n = n->next;
    } else {
        for (n = e->list->tail, i = len - 1; i > start; i--)
            n = n->prev;
    }
    for (i = start; i <= stop; i++, n = n->next)
        reply_bulk(c, n->data, n->len);
}

/* EXPIRE key seconds / PEXPIRE key milliseconds (unit 1000 / 1). */
static void expire_generic(struct conn *c, long long unit)
{
    struct kv_entry *e;
    long long t;
    int64_t now;

    if (!string2ll(c->argv[2], c->argl[2], &t)) {
        reply_error(c, notint_msg);
        return;
    }
    now = kv_mstime();
    if (t > (LLONG_MAX - now) / unit || t < LLONG_MIN / unit) {
        reply_errorf(c, "ERR invalid expire time in '%.*s' command",
                     (int)(c->argl[0] > 64 ? 64 : c->argl[0]), c->argv[0]);
        return;
    }
    e = kv_find(c->argv[1], c->argl[1]);
    if (e == NULL) {
        reply_int(c, 0);
        return;
    }
    if (t <= 0)
        kv_remove(e);
    else
        e->expire_at = now + t * unit;
    reply_int(c, 1);
}

static void cmd_expire(struct conn *c)
{
    expire_generic(c, 1000);
}

static void cmd_pexpire(struct conn *c)
{
    expire_generic(c, 1);
}

/* TTL key / PTTL key: -2 if missing, -1 if it does not expire. */
static void ttl_generic(struct conn *c, long long unit)
{
    struct kv_entry *e = kv_find(c->argv[1], c->argl[1]);
    long long ms;

    if (e == NULL) {
        reply_int(c, -2);
        return;
    }
    if (e->expire_at == 0) {
        reply_int(c, -1);
        return;
    }
    ms = e->expire_at - kv_mstime();
    if (ms < 0)
        ms = 0;
    reply_int(c, unit == 1 ? ms : (ms + unit / 2) / unit);
}

static void cmd_ttl(struct conn *c)
{
    ttl_generic(c, 1000);
}

static void cmd_pttl(struct conn *c)
{
    ttl_generic(c, 1);
}

static void cmd_persist(struct conn *c)
{
    struct kv_entry *e = kv_find(c->argv[1], c->argl[1]);

    if (e == NULL || e->expire_at == 0) {
        reply_int(c, 0);
        return;
    }
    e->expire_at = 0;
    reply_int(c, 1);
}

static void cmd_dbsize(struct conn *c)
{
    reply_int(c, (long long)kv_count());
}

static void cmd_flushall(struct conn *c)
{
    if (c->argc > 2 || (c->argc == 2 && !arg_is(c, 1, "SYNC") && !arg_is(c, 1, "ASYNC"))) {
        reply_error(c, "ERR syntax error");
        return;
    }
    kv_flush();
    reply_status(c, "OK");
}

static void cmd_info(struct conn *c)
{
    char buf[2048];
    int n;

    n = snprintf(buf, sizeof buf,
                 "# Server\r\n"
                 "redis_version:7.0.0\r\n"
                 "kvstore_version:%s\r\n"
                 "instance:%s\r\n"
                 "process_id:%ld\r\n"
                 "tcp_port:%d\r\n"
                 "uptime_in_seconds:%lld\r\n"
                 "worker_threads:%d\r\n"
                 "\r\n"
                 "# Clients\r\n"
                 "connected_clients:%llu\r\n"
                 "\r\n"
                 "# Stats\r\n"
                 "total_connections_received:%llu\r\n"
                 "total_commands_processed:%llu\r\n"
                 "total_error_replies:%llu\r\n"
                 "keyspace_hits:%llu\r\n"
                 "keyspace_misses:%llu\r\n"
                 "expired_keys:%llu\r\n"
                 "append_calls:%llu\r\n"
                 "\r\n"
                 "# Keyspace\r\n"
                 "db0:keys=%zu\r\n",
                 kv_version, kv_instance, (long)getpid(), kv_server.port,
                 (long long)(time(NULL) - kv_server.start_time), kv_server.nthreads,
                 (unsigned long long)STAT_GET(connected_clients),
                 (unsigned long long)STAT_GET(connections_received),
                 (unsigned long long)STAT_GET(commands_processed),
                 (unsigned long long)STAT_GET(error_replies),
                 (unsigned long long)STAT_GET(keyspace_hits),
                 (unsigned long long)STAT_GET(keyspace_misses),
                 (unsigned long long)STAT_GET(expired_keys),
                 append_calls,
                 kv_count());
    reply_bulk(c, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* CONFIG GET pattern [pattern ...]: a few read-only parameters, enough for
 * redis-benchmark (save, appendonly) and for curious clients. */
static void cmd_config(struct conn *c)
{
    char port[16], threads[16];
    const char *params[][2] = {
        {"save", ""},
        {"appendonly", "no"},
        {"databases", "1"},
        {"maxmemory", "0"},
        {"port", port},
        {"io-threads", threads},
    };
    const size_t nparams = sizeof params / sizeof params[0];
    int match[sizeof params / sizeof params[0]] = {0};
    long long nmatch = 0;

    if (!arg_is(c, 1, "GET")) {
        reply_errorf(c, "ERR unknown subcommand '%.*s'",
                     (int)(c->argl[1] > 64 ? 64 : c->argl[1]), c->argv[1]);
        return;
    }
    if (c->argc < 3) {
        reply_arity_error(c);
        return;
    }
    snprintf(port, sizeof port, "%d", kv_server.port);
    snprintf(threads, sizeof threads, "%d", kv_server.nthreads);
    for (int i = 2; i < c->argc; i++) {
        char pat[128];
        size_t n = c->argl[i] < sizeof pat - 1 ? c->argl[i] : sizeof pat - 1;
        memcpy(pat, c->argv[i], n);
        pat[n] = '\0';
        for (size_t j = 0; j < nparams; j++)
            if (!match[j] && fnmatch(pat, params[j][0], FNM_CASEFOLD) == 0) {
                match[j] = 1;
                nmatch++;
            }
    }
    reply_array(c, nmatch * 2);
    for (size_t j = 0; j < nparams; j++)
        if (match[j]) {
            reply_bulk_cstr(c, params[j][0]);
            reply_bulk_cstr(c, params[j][1]);
        }
}

/* COMMAND, COMMAND DOCS, COMMAND COUNT ...: no introspection, an empty
 * array keeps redis-cli happy. */
static void cmd_command(struct conn *c)
{
    reply_array(c, 0);
}

static void cmd_client(struct conn *c)
{
    if (arg_is(c, 1, "SETNAME") && c->argc == 3) {
        for (size_t i = 0; i < c->argl[2]; i++)
            if (c->argv[2][i] <= ' ' || c->argv[2][i] > '~') {
                reply_error(c, "ERR Client names cannot contain spaces, newlines or special characters.");
                return;
            }
        free(c->name);
        c->name = c->argl[2] ? xmemdup(c->argv[2], c->argl[2]) : NULL;
        reply_status(c, "OK");
    } else if (arg_is(c, 1, "GETNAME") && c->argc == 2) {
        if (c->name != NULL)
            reply_bulk_cstr(c, c->name);
        else
            reply_nil(c);
    } else if (arg_is(c, 1, "ID") && c->argc == 2) {
        reply_int(c, (long long)c->id);
    } else if (arg_is(c, 1, "INFO") && c->argc == 2) {
        char buf[512];
        int n = snprintf(buf, sizeof buf, "id=%llu fd=%d name=%s db=0 worker=%d cmds=%llu\n",
                         (unsigned long long)c->id, c->fd, c->name ? c->name : "",
                         c->worker, (unsigned long long)c->ncommands);
        reply_bulk(c, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    } else {
        reply_errorf(c, "ERR unknown subcommand or wrong number of arguments for '%.*s'",
                     (int)(c->argl[1] > 64 ? 64 : c->argl[1]), c->argv[1]);
    }
}

static const struct command commands[] = {
    {"PING", cmd_ping, -1},
    {"QUIT", cmd_quit, -1},
    {"SELECT", cmd_select, 2},
    {"GET", cmd_get, 2},
    {"SET", cmd_set, -3},
    {"MSET", cmd_mset, -3},
    {"DEL", cmd_del, -2},
    {"EXISTS", cmd_exists, -2},
    {"INCR", cmd_incr, 2},
    {"APPEND", cmd_append, 3},
    {"LPUSH", cmd_lpush, -3},
    {"RPUSH", cmd_rpush, -3},
    {"LPOP", cmd_lpop, -2},
    {"RPOP", cmd_rpop, -2},
    {"LRANGE", cmd_lrange, 4},
    {"EXPIRE", cmd_expire, 3},
    {"PEXPIRE", cmd_pexpire, 3},
    {"TTL", cmd_ttl, 2},
    {"PTTL", cmd_pttl, 2},
    {"PERSIST", cmd_persist, 2},
    {"DBSIZE", cmd_dbsize, 1},
    {"FLUSHALL", cmd_flushall, -1},
    {"INFO", cmd_info, -1},
    {"CONFIG", cmd_config, -2},
    {"COMMAND", cmd_command, -1},
    {"CLIENT", cmd_client, -2},
};

static const struct command *command_lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strlen(commands[i].name) == len && strncasecmp(commands[i].name, name, len) == 0)
            return &commands[i];
    return NULL;
}

/* Executes the parsed request c->argv[0..argc). */
void command_dispatch(struct conn *c)
{
    const struct command *cmd = command_lookup(c->argv[0], c->argl[0]);

    STAT_INC(commands_processed);
    c->ncommands++;
    if (cmd == NULL) {
        reply_errorf(c, "ERR unknown command '%.*s'",
                     (int)(c->argl[0] > 64 ? 64 : c->argl[0]), c->argv[0]);
        return;
    }
    if ((cmd->arity > 0 && c->argc != cmd->arity) ||
        (cmd->arity < 0 && c->argc < -cmd->arity)) {
        reply_arity_error(c);
        return;
    }
    kv_lock();
    cmd->handler(c);
    kv_unlock();
}
