/* httpd: command line, listening socket, signals, start and stop. */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

const char *g_root = "./www";

static void usage(FILE *f)
{
    fprintf(f, "usage: httpd [--root DIR] [--port N] [--threads N]\n"
               "  --root DIR    directory served (default ./www)\n"
               "  --port N      TCP port on 127.0.0.1 (default 8080, 0 = any)\n"
               "  --threads N   worker threads (default 4)\n");
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("httpd: socket");
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fprintf(stderr, "httpd: bind 127.0.0.1:%d: %s\n", port, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, 1024) < 0) {
        perror("httpd: listen");
        close(fd);
        return -1;
    }
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        return -1;
    return ntohs(sa.sin_port);
}

int main(int argc, char **argv)
{
    long port = 8080, threads = 4;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--root")) {
            g_root = argv[++i];
        } else if (!strcmp(a, "--port")) {
            if (parse_int(argv[++i], 0, 65535, &port) < 0) {
                fprintf(stderr, "httpd: bad port '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--threads")) {
            if (parse_int(argv[++i], 1, 256, &threads) < 0) {
                fprintf(stderr, "httpd: bad thread count '%s'\n", argv[i]);
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
    }

    struct stat st;
    if (stat(g_root, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "httpd: root '%s' is not a directory\n", g_root);
        return 2;
    }

    /* Workers inherit this mask: only main takes SIGINT/SIGTERM. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    int lfd = listen_on((int)port);
    if (lfd < 0)
        return 1;
    if (server_start(lfd, (int)threads) < 0)
        return 1;

    print_ready(bound_port(lfd));

    int sig = 0;
    sigwait(&stop_signals, &sig);
    server_stop();
    fprintf(stderr, "httpd: signal %d, stopped after %lu requests on %lu connections\n",
            sig, g_stats.requests, g_stats.connections_accepted);
    close(lfd);
    return 0;
}
