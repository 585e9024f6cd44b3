/* httpd: a small multi-threaded HTTP/1.1 server (graft evaluation corpus).
 *
 * One listening socket shared by a pool of worker threads, each running its
 * own epoll loop over the connections it accepted.  Serves static files from
 * a root directory and a small in-memory JSON API (counters, a key-value
 * store, statistics).
 */
#ifndef HTTPD_H
#define HTTPD_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

#define REQ_METHOD_MAX 16
#define REQ_TARGET_MAX 2048
#define REQ_HEAD_MAX   16384          /* request line + headers */
#define REQ_BODY_MAX   (1024 * 1024)  /* PUT/POST bodies */

/* A growable byte buffer. */
struct buf {
    char *data;
    size_t len;
    size_t cap;
};

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
void buf_consume(struct buf *b, size_t n);
void buf_free(struct buf *b);

/* One parsed request.  body points into the connection's input buffer. */
struct request {
    char method[REQ_METHOD_MAX];
    char target[REQ_TARGET_MAX];   /* as sent, NUL-terminated */
    char path[REQ_TARGET_MAX];     /* percent-decoded, query removed */
    int http_minor;                /* HTTP/1.x */
    int keep_alive;
    int expect_continue;
    size_t content_length;
    const char *body;
    size_t body_len;
};

/* The response a handler builds.  Either body holds the payload, or
 * file_fd >= 0 is a file of file_size bytes to send after the headers. */
struct response {
    int status;
    const char *content_type;
    struct buf body;
    char headers[512];             /* extra header lines, each CRLF-ended */
    size_t headers_len;
    int file_fd;
    off_t file_size;
};

void resp_header(struct response *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void resp_text(struct response *r, int status, const char *text);
void resp_json(struct response *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *status_text(int status);

/* Server-wide statistics, updated with atomic builtins. */
struct stats {
    unsigned long connections_accepted;
    unsigned long requests;
    unsigned long responses[6];     /* by status class: [2] is 2xx ... */
    unsigned long keepalive_reuses; /* requests after the first on a connection */
    unsigned long bytes_sent;
    unsigned long bad_requests;
};

extern struct stats g_stats;
extern const char httpd_version[];
extern const char *g_root;

/* server.c */
int server_start(int listen_fd, int nthreads);
void extra_header_setup(void);  /* HTTPD_EXTRA_HEADER -> the extra response header (v7) */
void server_stop(void);
void print_ready(int port);       /* "httpd vN ready on port P", flushed */
unsigned server_open_connections(void);

/* files.c */
const char *mime_type(const char *path);
void files_handle(const struct request *req, struct response *resp);

/* api.c */
int api_path(const char *path);
void api_handle(const struct request *req, struct response *resp);

#endif
