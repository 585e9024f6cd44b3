/* httpd: worker threads, connections, HTTP/1.1 parsing and responses. */
#include "httpd.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS      64
#define LOOP_TIMEOUT_MS 1000
#define CONN_TABLE_SIZE 16384
#define READ_CHUNK      16384
#define IDLE_TIMEOUT_S  60      /* default; HTTPD_IDLE_TIMEOUT overrides */

struct worker {
    int id;
    int epfd;
    pthread_t thread;
};

/* One client connection, owned by the worker whose epoll set holds it. */
struct conn {
    int fd;
    struct worker *owner;
    unsigned long nreq;     /* requests answered on this connection */
    long long last_active_ms; /* CLOCK_MONOTONIC of the last event (atomic) */
    struct buf in;          /* received, not yet consumed */
    struct buf out;         /* response bytes to send */
    size_t out_off;         /* bytes of out already sent */
    int file_fd;            /* file body to send after out, or -1 */
    off_t file_off;
    off_t file_end;
    uint32_t events;        /* epoll interest currently registered */
    int close_after;        /* close once everything is sent */
    int peer_closed;        /* read returned 0 */
    int sent_continue;      /* "100 Continue" sent for the current request */
};

struct stats g_stats;

static struct worker *workers;
static int nworkers;
static int listen_fd = -1;
static int wake_fd = -1;
static int stopping;

/* Every open connection by fd.  Entries are set and cleared under
 * conn_table_lock by the owning worker. */
static struct conn *conn_table[CONN_TABLE_SIZE];
static unsigned conn_count;
static pthread_mutex_t conn_table_lock = PTHREAD_MUTEX_INITIALIZER;

/* The idle-connection reaper, started by the first worker iteration. */
static pthread_once_t reaper_once = PTHREAD_ONCE_INIT;
static unsigned long reaped_total;

/* ---- buffers ---------------------------------------------------------- */

void buf_reserve(struct buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        fprintf(stderr, "httpd: out of memory\n");
        abort();
    }
    b->data = p;
    b->cap = cap;
}

void buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return;
    buf_reserve(b, (size_t)n + 1);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- responses -------------------------------------------------------- */

const char *status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default:  return "Unknown";
    }
}

void resp_header(struct response *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = sizeof r->headers - r->headers_len;
    int n = vsnprintf(r->headers + r->headers_len, room, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n + 2 < room) {
        r->headers_len += (size_t)n;
        memcpy(r->headers + r->headers_len, "\r\n", 2);
        r->headers_len += 2;
    }
    r->headers[r->headers_len < sizeof r->headers ? r->headers_len : 0] = '\0';
}

void resp_text(struct response *r, int status, const char *text)
{
    r->status = status;
    r->content_type = "text/plain; charset=utf-8";
    r->body.len = 0;
    buf_printf(&r->body, "%s\n", text);
}

void resp_json(struct response *r, int status, const char *fmt, ...)
{
    r->status = status;
    r->content_type = "application/json";
    r->body.len = 0;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&r->body, fmt, ap);
    va_end(ap);
    buf_append(&r->body, "\n", 1);
}

/* ---- request parsing -------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode the path part of target into out; -1 if malformed. */
static int decode_path(const char *target, char *out, size_t outsz)
{
    size_t o = 0;
    for (const char *p = target; *p && *p != '?' && *p != '#'; p++) {
        int c = (unsigned char)*p;
        if (c == '%') {
            int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            if (c == 0)
                return -1;
            p += 2;
        }
        if (o + 1 >= outsz)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

static int token_in_list(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
            return 1;
    }
    return 0;
}

/* Parse the request head at the start of data.  Returns 0 if it is not
 * complete yet, -1 if it is malformed, -2 if it uses an unsupported
 * transfer coding, else the length of the head; fills *req. */
static long parse_request(const char *data, size_t len, struct request *req)
{
    const char *end = NULL;
    size_t head_len = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (data[i] != '\n')
            continue;
        if (data[i + 1] == '\n') {
            end = data + i + 1;
            head_len = i + 2;
            break;
        }
        if (data[i + 1] == '\r' && i + 2 < len && data[i + 2] == '\n') {
            end = data + i + 1;
            head_len = i + 3;
            break;
        }
    }
    if (!end)
        return 0;

    req->method[0] = req->target[0] = req->path[0] = '\0';
    req->http_minor = 0;
    req->keep_alive = 0;
    req->expect_continue = 0;
    req->content_length = 0;
    req->body = NULL;
    req->body_len = 0;

    /* Request line: METHOD SP TARGET SP HTTP/1.x */
    const char *p = data;
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    size_t ll = (size_t)(eol - p);
    if (ll && p[ll - 1] == '\r')
        ll--;
    size_t i = 0;
    while (i < ll && i < REQ_METHOD_MAX - 1 && isupper((unsigned char)p[i]))
        i++;
    if (i == 0 || i >= ll || p[i] != ' ')
        return -1;
    memcpy(req->method, p, i);
    req->method[i] = '\0';
    size_t ts = ++i;
    while (i < ll && p[i] != ' ')
        i++;
    if (i == ts || i >= ll || i - ts >= REQ_TARGET_MAX || p[ts] != '/')
        return -1;
    memcpy(req->target, p + ts, i - ts);
    req->target[i - ts] = '\0';
    for (size_t k = ts; k < i; k++)
        if ((unsigned char)p[k] <= ' ' || p[k] == 0x7f)
            return -1;
    i++;
    if (ll - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0 ||
        (p[i + 7] != '0' && p[i + 7] != '1'))
        return -1;
    req->http_minor = p[i + 7] - '0';
    req->keep_alive = req->http_minor == 1;
    if (decode_path(req->target, req->path, sizeof req->path) < 0)
        return -1;

    /* Header fields. */
    int seen_length = 0;
    p = eol + 1;
    while (p < end) {
        eol = memchr(p, '\n', (size_t)(end - p));
        size_t hl = (size_t)(eol - p);
        if (hl && p[hl - 1] == '\r')
            hl--;
        if (hl == 0)
            break;
        const char *colon = memchr(p, ':', hl);
        if (!colon || colon == p)
            return -1;
        size_t nl = (size_t)(colon - p);
        for (size_t k = 0; k < nl; k++)
            if (!isgraph((unsigned char)p[k]))
                return -1;
        const char *v = colon + 1;
        size_t vl = hl - nl - 1;
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;

        if (nl == 14 && strncasecmp(p, "Content-Length", nl) == 0) {
            size_t n = 0;
            if (vl == 0 || vl > 12)
                return -1;
            for (size_t k = 0; k < vl; k++) {
                if (!isdigit((unsigned char)v[k]))
                    return -1;
                n = n * 10 + (size_t)(v[k] - '0');
            }
            if (seen_length && n != req->content_length)
                return -1;
            seen_length = 1;
            req->content_length = n;
        } else if (nl == 17 && strncasecmp(p, "Transfer-Encoding", nl) == 0) {
            return -2;
        } else if (nl == 10 && strncasecmp(p, "Connection", nl) == 0) {
            if (token_in_list(v, vl, "close"))
                req->keep_alive = 0;
            else if (token_in_list(v, vl, "keep-alive"))
                req->keep_alive = 1;
        } else if (nl == 6 && strncasecmp(p, "Expect", nl) == 0) {
            if (vl == 12 && strncasecmp(v, "100-continue", 12) == 0)
                req->expect_continue = 1;
        }
        p = eol + 1;
    }
    return (long)head_len;
}

/* ---- connections ------------------------------------------------------ */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_set_events(struct conn *c, uint32_t events)
{
    if (c->events == events)
        return;
    struct epoll_event ev = { .events = events, .data.fd = c->fd };
    if (epoll_ctl(c->owner->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->events = events;
}

static void conn_close(struct conn *c)
{
    pthread_mutex_lock(&conn_table_lock);
    conn_table[c->fd] = NULL;
    conn_count--;
    pthread_mutex_unlock(&conn_table_lock);
    epoll_ctl(c->owner->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->file_fd >= 0)
        close(c->file_fd);
    buf_free(&c->in);
    buf_free(&c->out);
    free(c);
}

static void conn_open(struct worker *w, int fd)
{
    if (fd >= CONN_TABLE_SIZE) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->owner = w;
    c->file_fd = -1;
    c->events = EPOLLIN;
    c->last_active_ms = now_ms();
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
    pthread_mutex_lock(&conn_table_lock);
    conn_table[fd] = c;
    conn_count++;
    pthread_mutex_unlock(&conn_table_lock);
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        conn_close(c);
        return;
    }
    __atomic_fetch_add(&g_stats.connections_accepted, 1, __ATOMIC_RELAXED);
}

unsigned server_open_connections(void)
{
    pthread_mutex_lock(&conn_table_lock);
    unsigned n = conn_count;
    pthread_mutex_unlock(&conn_table_lock);
    return n;
}

/* An extra header for every response, from the environment at start-up
 * (HTTPD_EXTRA_HEADER="Name: value"): the header line with its CRLF, or "". */
static char *extra_header;

void extra_header_setup(void)
{
    const char *h = getenv("HTTPD_EXTRA_HEADER");
    size_t n = h ? strlen(h) : 0;
    char *line = malloc(n + 3);
    if (!line)
        return;
    memcpy(line, h ? h : "", n);
    memcpy(line + n, n ? "\r\n" : "", n ? 3 : 1);
    extra_header = line;
}

/* Serialise resp into c's output.  HEAD keeps the length, drops the body. */
static void conn_respond(struct conn *c, const struct request *req,
                         struct response *resp)
{
    int head = strcmp(req->method, "HEAD") == 0;
    size_t length = resp->file_fd >= 0 ? (size_t)resp->file_size : resp->body.len;

    c->nreq++;
    buf_printf(&c->out,
               "HTTP/1.1 %d %s\r\n"
               "Server: graft-httpd/%s\r\n"
               "Content-Type: %s\r\n"
               "Content-Length: %zu\r\n"
               "Connection: %s\r\n"
               "X-Conn-Requests: %lu\r\n"
               "%s%s\r\n",
               resp->status, status_text(resp->status), httpd_version,
               resp->content_type ? resp->content_type : "text/plain",
               length, c->close_after ? "close" : "keep-alive",
               c->nreq, extra_header, resp->headers);
    if (!head)
        buf_append(&c->out, resp->body.data, resp->body.len);
    if (resp->file_fd >= 0) {
        if (head || resp->file_size == 0) {
            close(resp->file_fd);
        } else {
            c->file_fd = resp->file_fd;
            c->file_off = 0;
            c->file_end = resp->file_size;
        }
        resp->file_fd = -1;
    }
    __atomic_fetch_add(&g_stats.requests, 1, __ATOMIC_RELAXED);
    if (resp->status >= 100 && resp->status < 600)
        __atomic_fetch_add(&g_stats.responses[resp->status / 100], 1, __ATOMIC_RELAXED);
    if (c->nreq > 1)
        __atomic_fetch_add(&g_stats.keepalive_reuses, 1, __ATOMIC_RELAXED);
}

static void respond_error(struct conn *c, int status, const char *text)
{
    struct request req;
    struct response resp;
    memset(&resp, 0, sizeof resp);
    resp.file_fd = -1;
    strcpy(req.method, "GET");
    c->close_after = 1;
    resp_text(&resp, status, text);
    conn_respond(c, &req, &resp);
    buf_free(&resp.body);
    __atomic_fetch_add(&g_stats.bad_requests, 1, __ATOMIC_RELAXED);
}

static void handle_request(struct conn *c, const struct request *req)
{
    struct response resp;
    memset(&resp, 0, sizeof resp);
    resp.file_fd = -1;
    if (!req->keep_alive)
        c->close_after = 1;
    if (api_path(req->path))
        api_handle(req, &resp);
    else
        files_handle(req, &resp);
    conn_respond(c, req, &resp);
    buf_free(&resp.body);
}

/* Handle the next complete request in c->in, if any.  Returns 1 if a
 * response was queued, 0 if more input is needed. */
static int conn_handle_one(struct conn *c)
{
    struct request req;
    long head = parse_request(c->in.data, c->in.len, &req);
    if (head == 0) {
        if (c->in.len >= REQ_HEAD_MAX) {
            respond_error(c, 431, "request head too large");
            return 1;
        }
        return 0;
    }
    if (head == -1) {
        respond_error(c, 400, "malformed request");
        return 1;
    }
    if (head == -2) {
        respond_error(c, 501, "transfer codings are not supported");
        return 1;
    }
    if (req.content_length > REQ_BODY_MAX) {
        respond_error(c, 413, "request body too large");
        return 1;
    }
    if (c->in.len - (size_t)head < req.content_length) {
        if (req.expect_continue && !c->sent_continue) {
            buf_printf(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
            c->sent_continue = 1;
        }
        return 0;
    }
    req.body = c->in.data + head;
    req.body_len = req.content_length;
    handle_request(c, &req);
    buf_consume(&c->in, (size_t)head + req.content_length);
    c->sent_continue = 0;
    return 1;
}

/* Send what is pending.  Returns -1 on a connection error, else 0. */
static int conn_flush(struct conn *c)
{
    while (c->out_off < c->out.len) {
        int flags = MSG_NOSIGNAL | (c->file_fd >= 0 ? MSG_MORE : 0);
        ssize_t n = send(c->fd, c->out.data + c->out_off,
                         c->out.len - c->out_off, flags);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        c->out_off += (size_t)n;
        __atomic_fetch_add(&g_stats.bytes_sent, (unsigned long)n, __ATOMIC_RELAXED);
    }
    c->out.len = 0;
    c->out_off = 0;
    while (c->file_fd >= 0) {
        ssize_t n = sendfile(c->fd, c->file_fd, &c->file_off,
                             (size_t)(c->file_end - c->file_off));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        if (n == 0)
            return -1;      /* file shrank under us */
        __atomic_fetch_add(&g_stats.bytes_sent, (unsigned long)n, __ATOMIC_RELAXED);
        if (c->file_off >= c->file_end) {
            close(c->file_fd);
            c->file_fd = -1;
        }
    }
    return 0;
}

static int conn_pending(const struct conn *c)
{
    return c->out.len > c->out_off || c->file_fd >= 0;
}

/* Read what has arrived.  Returns -1 on a connection error. */
static int conn_read(struct conn *c)
{
    while (!c->peer_closed && c->in.len < REQ_HEAD_MAX + REQ_BODY_MAX) {
        buf_reserve(&c->in, READ_CHUNK);
        ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
        if (n > 0) {
            c->in.len += (size_t)n;
            continue;
        }
        if (n == 0) {
            c->peer_closed = 1;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        return -1;
    }
    return 0;
}

/* Make progress on c after epoll reported events. */
static void conn_event(struct conn *c, uint32_t events)
{
    __atomic_store_n(&c->last_active_ms, now_ms(), __ATOMIC_RELAXED);
    if (events & EPOLLERR) {
        conn_close(c);
        return;
    }
    if ((events & (EPOLLIN | EPOLLHUP)) && conn_read(c) < 0) {
        conn_close(c);
        return;
    }
    for (;;) {
        if (conn_flush(c) < 0) {
            conn_close(c);
            return;
        }
        if (conn_pending(c)) {
            conn_set_events(c, EPOLLOUT);
            return;
        }
        if (c->close_after) {
            conn_close(c);
            return;
        }
        if (!conn_handle_one(c))
            break;
    }
    if (conn_pending(c)) {          /* a "100 Continue" */
        if (conn_flush(c) < 0) {
            conn_close(c);
            return;
        }
        if (conn_pending(c)) {
            conn_set_events(c, EPOLLOUT);
            return;
        }
    }
    if (c->peer_closed) {
        conn_close(c);
        return;
    }
    conn_set_events(c, EPOLLIN);
}

static void accept_all(struct worker *w)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                perror("httpd: accept");
            return;
        }
        conn_open(w, fd);
    }
}

/* ---- idle connections ------------------------------------------------- */

static long long idle_timeout_ms(void)
{
    const char *s = getenv("HTTPD_IDLE_TIMEOUT");
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || end == s || *end || v <= 0 || v > 86400)
        v = IDLE_TIMEOUT_S;
    return (long long)v * 1000;
}

/* Shut down connections with no event for the idle timeout; their owners
 * see the hang-up and close them. */
static void *reaper_main(void *arg)
{
    (void)arg;
    long long timeout = idle_timeout_ms();
    long long interval = timeout / 4 < 100 ? 100 : timeout / 4 > 1000 ? 1000 : timeout / 4;
    struct timespec pause = { interval / 1000, (interval % 1000) * 1000000 };

    while (!__atomic_load_n(&stopping, __ATOMIC_ACQUIRE)) {
        nanosleep(&pause, NULL);
        long long now = now_ms();
        unsigned long reaped = 0;
        pthread_mutex_lock(&conn_table_lock);
        for (int fd = 0; fd < CONN_TABLE_SIZE; fd++) {
            struct conn *c = conn_table[fd];
            if (c && now - __atomic_load_n(&c->last_active_ms, __ATOMIC_RELAXED) >= timeout) {
                shutdown(fd, SHUT_RDWR);
                __atomic_store_n(&c->last_active_ms, now, __ATOMIC_RELAXED);
                reaped++;
            }
        }
        pthread_mutex_unlock(&conn_table_lock);
        if (reaped) {
            reaped_total += reaped;
            fprintf(stderr, "httpd: closed %lu idle connection(s), %lu in all\n",
                    reaped, reaped_total);
        }
    }
    return NULL;
}

static void reaper_start(void)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int err = pthread_create(&t, &attr, reaper_main, NULL);
    if (err)
        fprintf(stderr, "httpd: reaper: pthread_create: %s\n", strerror(err));
    pthread_attr_destroy(&attr);
}

/* ---- workers ---------------------------------------------------------- */

static void worker_loop(struct worker *w)
{
    struct epoll_event events[MAX_EVENTS];

    while (!__atomic_load_n(&stopping, __ATOMIC_ACQUIRE)) {
        pthread_once(&reaper_once, reaper_start);
        int n = epoll_wait(w->epfd, events, MAX_EVENTS, LOOP_TIMEOUT_MS);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("httpd: epoll_wait");
            break;
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == listen_fd) {
                accept_all(w);
            } else if (fd == wake_fd) {
                continue;
            } else {
                struct conn *c = conn_table[fd];
                if (!c)
                    continue;
                if (events[i].events & (EPOLLHUP | EPOLLERR))
                    conn_close(c);      /* reaped, reset or fully shut down */
                else
                    conn_event(c, events[i].events);
            }
        }
    }
}

static void *worker_main(void *arg)
{
    worker_loop(arg);
    return NULL;
}

/* The ready line (flushed) that scripts wait for. Kept out of main, which
 * never returns: main stays the same in every version, and only this
 * function changes with httpd_version. */
void print_ready(int port)
{
    printf("httpd %s ready on port %d\n", httpd_version, port);
    fflush(stdout);
}

int server_start(int lfd, int nthreads)
{
    extra_header_setup();
    if (!extra_header)
        return -1;
    listen_fd = lfd;
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0) {
        perror("httpd: eventfd");
        return -1;
    }
    workers = calloc((size_t)nthreads, sizeof *workers);
    if (!workers)
        return -1;
    for (int i = 0; i < nthreads; i++) {
        struct worker *w = &workers[i];
        w->id = i;
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (w->epfd < 0) {
            perror("httpd: epoll_create1");
            return -1;
        }
        struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = lfd };
        struct epoll_event wev = { .events = EPOLLIN, .data.fd = wake_fd };
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, lfd, &ev) < 0 ||
            epoll_ctl(w->epfd, EPOLL_CTL_ADD, wake_fd, &wev) < 0) {
            perror("httpd: epoll_ctl");
            return -1;
        }
    }
    for (int i = 0; i < nthreads; i++) {
        int err = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
        if (err) {
            fprintf(stderr, "httpd: pthread_create: %s\n", strerror(err));
            return -1;
        }
        nworkers++;
    }
    return 0;
}

void server_stop(void)
{
    __atomic_store_n(&stopping, 1, __ATOMIC_RELEASE);
    uint64_t one = 1;
    if (write(wake_fd, &one, sizeof one) < 0)
        perror("httpd: wake");
    for (int i = 0; i < nworkers; i++)
        pthread_join(workers[i].thread, NULL);
}
