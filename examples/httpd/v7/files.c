/* httpd: static files under the root directory. */
#include "httpd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define INLINE_FILE_MAX (64 * 1024)   /* smaller files are copied into the response */

struct mime {
    const char *ext;
    const char *type;
};

static const struct mime mime_types[] = {
    { "html", "text/html; charset=utf-8" },
    { "htm",  "text/html; charset=utf-8" },
    { "css",  "text/css; charset=utf-8" },
    { "js",   "text/javascript; charset=utf-8" },
    { "json", "application/json" },
    { "txt",  "text/plain; charset=utf-8" },
    { "xml",  "application/xml" },
    { "svg",  "image/svg+xml" },
    { "png",  "image/png" },
    { "jpg",  "image/jpeg" },
    { "jpeg", "image/jpeg" },
    { "gif",  "image/gif" },
    { "ico",  "image/x-icon" },
    { "wasm", "application/wasm" },
    { "pdf",  "application/pdf" },
};

/* Content-Type for a file name, from its extension. */
const char *mime_type(const char *path)
{
    const char *base = strrchr(path, '/');
    const char *ext = strrchr(base ? base : path, '.');
    if (ext) {
        for (size_t i = 0; i < sizeof mime_types / sizeof mime_types[0]; i++)
            if (strcasecmp(ext + 1, mime_types[i].ext) == 0)
                return mime_types[i].type;
    }
    return "application/octet-stream";
}

/* 1 if the decoded path has a ".." segment. */
static int escapes_root(const char *path)
{
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        const char *s = p;
        while (*p && *p != '/')
            p++;
        if (p - s == 2 && s[0] == '.' && s[1] == '.')
            return 1;
    }
    return 0;
}

void files_handle(const struct request *req, struct response *resp)
{
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        resp_text(resp, 405, "method not allowed");
        resp_header(resp, "Allow: GET, HEAD");
        return;
    }
    if (escapes_root(req->path)) {
        resp_text(resp, 403, "forbidden");
        return;
    }

    char file[REQ_TARGET_MAX + 4096];
    size_t pl = strlen(req->path);
    int n = snprintf(file, sizeof file, "%s%s%s", g_root, req->path,
                     req->path[pl - 1] == '/' ? "index.html" : "");
    if (n < 0 || (size_t)n >= sizeof file) {
        resp_text(resp, 404, "not found");
        return;
    }

    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        resp_text(resp, errno == EACCES ? 403 : 404,
                  errno == EACCES ? "forbidden" : "not found");
        return;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
        close(fd);
        resp_text(resp, 404, "not found");
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        /* A directory named without its trailing slash. */
        close(fd);
        resp_text(resp, 301, "moved");
        resp_header(resp, "Location: %s/", req->path);
        return;
    }

    resp->status = 200;
    resp->content_type = mime_type(file);
    if (st.st_size <= INLINE_FILE_MAX) {
        buf_reserve(&resp->body, (size_t)st.st_size);
        ssize_t got = 0;
        while (got < st.st_size) {
            ssize_t r = pread(fd, resp->body.data + got, (size_t)(st.st_size - got), got);
            if (r <= 0)
                break;
            got += r;
        }
        close(fd);
        if (got != st.st_size) {
            resp_text(resp, 500, "read error");
            return;
        }
        resp->body.len = (size_t)got;
    } else {
        resp->file_fd = fd;
        resp->file_size = st.st_size;
    }
}
