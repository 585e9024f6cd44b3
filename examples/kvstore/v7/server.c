/* kvstore: a multi-threaded in-memory key-value server speaking RESP.
 *
 * Every worker thread has its own epoll set holding the listening socket
 * (EPOLLEXCLUSIVE) and the connections that worker accepted; a connection
 * stays with its worker for life. Connections are found by file descriptor
 * in conn_by_fd. The keyspace is shared and guarded by one lock (table.c).
 * A sweeper thread removes expired keys nobody reads again. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kvstore.h"
#include "table.h"

#define DEFAULT_PORT 7379
#define DEFAULT_THREADS 4
#define MAX_EVENTS 64
#define READ_CHUNK 16384
#define MAX_QUERY_BUF (1024UL * 1024 * 1024)
#define OUTPUT_SOFT_LIMIT (1024 * 1024)   /* stop reading above this much output */
#define BUF_KEEP (64 * 1024)              /* larger idle buffers are freed */
#define MAX_FDS 65536
#define SWEEP_INTERVAL_MS 100
#define SWEEP_BUCKETS 1024                /* buckets examined per sweep */

struct worker {
    pthread_t thread;
    int index;
    int epfd;
};

struct kv_stats kv_stats;
struct kv_server kv_server;

static struct worker *workers;
static int listen_fd = -1;
/* Indexed by socket; an entry is written by the worker that accepts or
 * closes that socket. Once a worker has closed a socket, another worker may
 * accept a new one with the same number: entries are accessed atomically. */
static struct conn **conn_by_fd;
static int conn_by_fd_size;
static uint64_t next_conn_id;
static pthread_once_t sweeper_once = PTHREAD_ONCE_INIT;

static struct conn *conn_new(int fd, struct worker *w)
{
    struct conn *c = xcalloc(1, sizeof *c);

    c->fd = fd;
    c->worker = w->index;
    c->id = __atomic_add_fetch(&next_conn_id, 1, __ATOMIC_RELAXED);
    c->events = EPOLLIN;
    return c;
}

static void conn_close(struct worker *w, struct conn *c)
{
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    __atomic_store_n(&conn_by_fd[c->fd], NULL, __ATOMIC_RELEASE);
    close(c->fd);
    free(c->rbuf);
    free(c->wbuf);
    free(c->argv);
    free(c->argl);
    free(c->name);
    free(c);
    STAT_DEC(connected_clients);
}

static void accept_client(struct worker *w)
{
    struct epoll_event ev;
    struct conn *c;
    int one = 1;
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd < 0)
        return;         /* another worker took it, or a transient error */
    if (fd >= conn_by_fd_size) {
        close(fd);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c = conn_new(fd, w);
    __atomic_store_n(&conn_by_fd[fd], c, __ATOMIC_RELEASE);
    STAT_INC(connections_received);
    STAT_INC(connected_clients);
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        conn_close(w, c);
}

/* Reads what is available. Returns -1 if the connection is to be closed. */
static int conn_read(struct conn *c)
{
    ssize_t n;

    if (c->rcap - c->rlen < READ_CHUNK) {
        size_t cap = c->rcap ? c->rcap : READ_CHUNK;
        while (cap - c->rlen < READ_CHUNK)
            cap *= 2;
        if (cap > MAX_QUERY_BUF)
            return -1;
        c->rbuf = xrealloc(c->rbuf, cap);
        c->rcap = cap;
    }
    n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
    if (n > 0) {
        c->rlen += (size_t)n;
        return 0;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    return -1;
}

/* Executes the complete requests in the input buffer, stopping early while
 * OUTPUT_SOFT_LIMIT bytes of output are pending. Returns 1 if it stopped
 * early with input left. */
static int process_input(struct conn *c)
{
    size_t pos = 0;
    int blocked = 0;

    while (!c->closing && pos < c->rlen) {
        const char *err = NULL;
        long used;

        if (c->wlen - c->wpos >= OUTPUT_SOFT_LIMIT) {
            blocked = 1;
            break;
        }
        used = resp_parse(c, c->rbuf + pos, c->rlen - pos, &err);
        if (used < 0) {
            reply_errorf(c, "ERR %s", err);
            c->closing = 1;
            break;
        }
        if (used == 0)
            break;
        pos += (size_t)used;
        if (c->argc > 0)
            command_dispatch(c);
    }
    if (pos > 0) {
        memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
        c->rlen -= pos;
    }
    if (c->rlen == 0 && c->rcap > BUF_KEEP) {
        free(c->rbuf);
        c->rbuf = NULL;
        c->rcap = 0;
    }
    return blocked;
}

/* Writes pending output. Returns -1 if the connection is to be closed. */
static int conn_flush(struct conn *c)
{
    while (c->wpos < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->wpos, c->wlen - c->wpos, MSG_NOSIGNAL);
        if (n > 0) {
            c->wpos += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        return -1;
    }
    if (c->wpos == c->wlen) {
        c->wpos = c->wlen = 0;
        if (c->wcap > BUF_KEEP) {
            free(c->wbuf);
            c->wbuf = NULL;
            c->wcap = 0;
        }
    }
    return 0;
}

/* Executes pending requests and writes their replies, for as long as the
 * socket takes them. Returns -1 if the connection is to be closed. */
static int conn_serve(struct conn *c)
{
    for (;;) {
        int blocked = process_input(c);
        if (conn_flush(c) < 0)
            return -1;
        if (!blocked || c->wpos < c->wlen)
            return 0;
    }
}

/* Watches for input unless too much output is pending, and for output
 * while some is pending. */
static void conn_update_events(struct worker *w, struct conn *c)
{
    size_t pending = c->wlen - c->wpos;
    uint32_t want = 0;

    if (!c->closing && pending < OUTPUT_SOFT_LIMIT)
        want |= EPOLLIN;
    if (pending > 0)
        want |= EPOLLOUT;
    if (want != c->events) {
        struct epoll_event ev;
        memset(&ev, 0, sizeof ev);
        ev.events = want;
        ev.data.fd = c->fd;
        if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
            c->events = want;
    }
}

/* Active expiry, SWEEP_BUCKETS buckets every SWEEP_INTERVAL_MS. */
static void *sweeper_main(void *arg)
{
    struct timespec interval = {0, SWEEP_INTERVAL_MS * 1000000L};

    (void)arg;
    pthread_setname_np(pthread_self(), "kv-sweeper");
    for (;;) {
        size_t n;

        nanosleep(&interval, NULL);
        kv_lock();
        n = kv_expire_sweep(SWEEP_BUCKETS);
        kv_unlock();
        if (n > 0)
            __atomic_add_fetch(&kv_stats.expired_keys, n, __ATOMIC_RELAXED);
    }
    return NULL;
}

/* Runs once (pthread_once), from the first worker going round its loop: at
 * start-up, or in a process that started as an older version. main does not
 * start it, so that main is the same in every version. */
static void sweeper_spawn(void)
{
    pthread_attr_t attr;
    pthread_t thread;
    int err;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    err = pthread_create(&thread, &attr, sweeper_main, NULL);
    if (err != 0)
        fprintf(stderr, "kvstore: cannot start the expiry sweeper: %s\n", strerror(err));
    pthread_attr_destroy(&attr);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event events[MAX_EVENTS];
    struct conn *ready[MAX_EVENTS];
    char name[16];

    snprintf(name, sizeof name, "kv-worker-%d", w->index);
    pthread_setname_np(pthread_self(), name);
    for (;;) {
        int n, nready = 0;

        pthread_once(&sweeper_once, sweeper_spawn);
        n = epoll_wait(w->epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("kvstore: epoll_wait");
            exit(1);
        }
        /* First execute the requests of every readable connection, then
         * write all the replies of this wakeup in one pass. */
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            uint32_t ev = events[i].events;
            struct conn *c;

            if (fd == listen_fd) {
                accept_client(w);
                continue;
            }
            c = __atomic_load_n(&conn_by_fd[fd], __ATOMIC_ACQUIRE);
            if (c == NULL)
                continue;
            if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (conn_read(c) < 0) {
                    conn_close(w, c);
                    continue;
                }
                process_input(c);
            }
            ready[nready++] = c;
        }
        for (int i = 0; i < nready; i++) {
            struct conn *c = ready[i];

            if (conn_serve(c) < 0 || (c->closing && c->wpos == c->wlen)) {
                conn_close(w, c);
                continue;
            }
            conn_update_events(w, c);
        }
    }
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: kvstore [--port N] [--threads N]\n");
    exit(2);
}

static int int_arg(const char *s, int lo, int hi)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        usage();
    return (int)v;
}

static int open_listener(int port)
{
    struct sockaddr_in sa;
    socklen_t salen = sizeof sa;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        perror("kvstore: socket");
        exit(1);
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fprintf(stderr, "kvstore: bind 127.0.0.1:%d: %s\n", port, strerror(errno));
        exit(1);
    }
    if (listen(fd, 511) < 0) {
        perror("kvstore: listen");
        exit(1);
    }
    if (getsockname(fd, (struct sockaddr *)&sa, &salen) == 0)
        kv_server.port = ntohs(sa.sin_port);
    return fd;
}

/* The instance name INFO reports, from KVSTORE_INSTANCE when the server
 * starts ("" if unset). */
char *kv_instance;

static void instance_setup(void)
{
    const char *name = getenv("KVSTORE_INSTANCE");
    kv_instance = strdup(name ? name : "");
    if (!kv_instance) {
        perror("kvstore: strdup");
        exit(1);
    }
}

/* The ready line (flushed) that scripts wait for. Kept out of main, which
 * never returns: main stays the same in every version, and only this
 * function changes with kv_version (and, in v7, the start-up work it adds). */
void print_ready(int port)
{
    instance_setup();
    printf("kvstore %s ready on port %d\n", kv_version, port);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct rlimit rl;
    int port = DEFAULT_PORT, nthreads = DEFAULT_THREADS;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = int_arg(argv[++i], 0, 65535);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            nthreads = int_arg(argv[++i], 1, 256);
        else
            usage();
    }
    signal(SIGPIPE, SIG_IGN);

    conn_by_fd_size = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < MAX_FDS && rl.rlim_max > rl.rlim_cur) {
            rl.rlim_cur = rl.rlim_max < MAX_FDS ? rl.rlim_max : MAX_FDS;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        conn_by_fd_size = rl.rlim_cur < MAX_FDS ? (int)rl.rlim_cur : MAX_FDS;
    }
    conn_by_fd = xcalloc((size_t)conn_by_fd_size, sizeof *conn_by_fd);

    kv_init();
    kv_server.nthreads = nthreads;
    kv_server.start_time = time(NULL);
    listen_fd = open_listener(port);

    workers = xcalloc((size_t)nthreads, sizeof *workers);
    for (int i = 0; i < nthreads; i++) {
        struct worker *w = &workers[i];
        struct epoll_event ev;
        int err;

        w->index = i;
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (w->epfd < 0) {
            perror("kvstore: epoll_create1");
            return 1;
        }
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN | EPOLLEXCLUSIVE;
        ev.data.fd = listen_fd;
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
            perror("kvstore: epoll_ctl");
            return 1;
        }
        err = pthread_create(&w->thread, NULL, worker_main, w);
        if (err != 0) {
            fprintf(stderr, "kvstore: pthread_create: %s\n", strerror(err));
            return 1;
        }
    }

    print_ready(kv_server.port);

    for (int i = 0; i < nthreads; i++)
        pthread_join(workers[i].thread, NULL);
    return 0;
}
