/* kvstore: RESP request parsing (multibulk and inline) and reply building. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kvstore.h"

#define RESP_MAX_INLINE (64 * 1024)
#define RESP_MAX_ARGS (1024 * 1024)
#define RESP_MAX_BULK (512LL * 1024 * 1024)
#define RESP_MAX_NUMLINE 32

static void args_reserve(struct conn *c, int n)
{
    int cap;

    if (n <= c->argcap)
        return;
    cap = c->argcap ? c->argcap : 8;
    while (cap < n)
        cap *= 2;
    c->argv = xrealloc(c->argv, (size_t)cap * sizeof *c->argv);
    c->argl = xrealloc(c->argl, (size_t)cap * sizeof *c->argl);
    c->argcap = cap;
}

/* Reads the number of a "<type><number>\r\n" line whose number starts at
 * buf[*pos]. Returns 1 and advances *pos past the line, 0 if the line is not
 * complete yet, -1 if it is malformed. */
static int parse_number_line(const char *buf, size_t len, size_t *pos, long long *out)
{
    const char *start = buf + *pos;
    const char *cr = memchr(start, '\r', len - *pos);

    if (cr == NULL)
        return len - *pos > RESP_MAX_NUMLINE ? -1 : 0;
    if ((size_t)(cr - buf) + 1 >= len)
        return 0;
    if (cr[1] != '\n' || !string2ll(start, (size_t)(cr - start), out))
        return -1;
    *pos = (size_t)(cr - buf) + 2;
    return 1;
}

static long parse_inline(struct conn *c, const char *buf, size_t len, const char **err)
{
    const char *nl = memchr(buf, '\n', len);
    size_t linelen, i = 0;

    if (nl == NULL) {
        if (len > RESP_MAX_INLINE) {
            *err = "Protocol error: too big inline request";
            return -1;
        }
        return 0;
    }
    linelen = (size_t)(nl - buf);
    if (linelen > 0 && buf[linelen - 1] == '\r')
        linelen--;
    while (i < linelen) {
        size_t start;
        while (i < linelen && (buf[i] == ' ' || buf[i] == '\t'))
            i++;
        if (i == linelen)
            break;
        start = i;
        while (i < linelen && buf[i] != ' ' && buf[i] != '\t')
            i++;
        args_reserve(c, c->argc + 1);
        c->argv[c->argc] = buf + start;
        c->argl[c->argc] = i - start;
        c->argc++;
    }
    return (long)(nl - buf) + 1;
}

/* Parses one request from buf[0..len) into c->argc/argv/argl. Returns the
 * number of bytes it used (argc may be 0 for an empty request), 0 if the
 * request is incomplete, -1 on a protocol error (*err says which). */
long resp_parse(struct conn *c, const char *buf, size_t len, const char **err)
{
    size_t pos = 1;
    long long n;
    int r;

    c->argc = 0;
    if (len == 0)
        return 0;
    if (buf[0] != '*')
        return parse_inline(c, buf, len, err);
    r = parse_number_line(buf, len, &pos, &n);
    if (r == 0)
        return 0;
    if (r < 0 || n > RESP_MAX_ARGS) {
        *err = "Protocol error: invalid multibulk length";
        return -1;
    }
    if (n <= 0)
        return (long)pos;
    args_reserve(c, (int)n);
    for (long long i = 0; i < n; i++) {
        long long blen;
        if (pos >= len)
            return 0;
        if (buf[pos] != '$') {
            *err = "Protocol error: expected '$'";
            return -1;
        }
        pos++;
        r = parse_number_line(buf, len, &pos, &blen);
        if (r == 0)
            return 0;
        if (r < 0 || blen < 0 || blen > RESP_MAX_BULK) {
            *err = "Protocol error: invalid bulk length";
            return -1;
        }
        if (len - pos < (size_t)blen + 2)
            return 0;
        if (buf[pos + blen] != '\r' || buf[pos + blen + 1] != '\n') {
            *err = "Protocol error: bulk string not terminated by CRLF";
            return -1;
        }
        c->argv[i] = buf + pos;
        c->argl[i] = (size_t)blen;
        pos += (size_t)blen + 2;
    }
    c->argc = (int)n;
    return (long)pos;
}

static void wbuf_reserve(struct conn *c, size_t n)
{
    size_t cap;

    if (c->wcap - c->wlen >= n)
        return;
    if (c->wpos > 0) {
        memmove(c->wbuf, c->wbuf + c->wpos, c->wlen - c->wpos);
        c->wlen -= c->wpos;
        c->wpos = 0;
        if (c->wcap - c->wlen >= n)
            return;
    }
    cap = c->wcap ? c->wcap : 16384;
    while (cap - c->wlen < n)
        cap *= 2;
    c->wbuf = xrealloc(c->wbuf, cap);
    c->wcap = cap;
}

void reply_raw(struct conn *c, const char *p, size_t n)
{
    wbuf_reserve(c, n);
    memcpy(c->wbuf + c->wlen, p, n);
    c->wlen += n;
}

void reply_status(struct conn *c, const char *s)
{
    reply_raw(c, "+", 1);
    reply_raw(c, s, strlen(s));
    reply_raw(c, "\r\n", 2);
}

void reply_error(struct conn *c, const char *s)
{
    STAT_INC(error_replies);
    reply_raw(c, "-", 1);
    reply_raw(c, s, strlen(s));
    reply_raw(c, "\r\n", 2);
}

void reply_errorf(struct conn *c, const char *fmt, ...)
{
    char buf[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (char *p = buf; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    reply_error(c, buf);
}

void reply_int(struct conn *c, long long v)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, ":%lld\r\n", v);
    reply_raw(c, buf, (size_t)n);
}

void reply_bulk(struct conn *c, const char *p, size_t n)
{
    char buf[32];
    int h = snprintf(buf, sizeof buf, "$%zu\r\n", n);
    wbuf_reserve(c, (size_t)h + n + 2);
    reply_raw(c, buf, (size_t)h);
    reply_raw(c, p, n);
    reply_raw(c, "\r\n", 2);
}

void reply_bulk_cstr(struct conn *c, const char *s)
{
    reply_bulk(c, s, strlen(s));
}

void reply_nil(struct conn *c)
{
    reply_raw(c, "$-1\r\n", 5);
}

void reply_null_array(struct conn *c)
{
    reply_raw(c, "*-1\r\n", 5);
}

void reply_array(struct conn *c, long long n)
{
    char buf[32];
    int h = snprintf(buf, sizeof buf, "*%lld\r\n", n);
    reply_raw(c, buf, (size_t)h);
}
