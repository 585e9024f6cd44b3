/* Update-time code for the step v6 -> v7 (graft diff --transform).
 *
 * v7 reads HTTPD_EXTRA_HEADER when it starts (extra_header_setup, called by
 * server_start before main waits): a process updated live started long ago,
 * as v6, and never ran it, so extra_header would stay NULL and every
 * response would carry "(null)". graft diff refuses the step without this
 * file; with it, the update runs v7's own set-up once, in the process,
 * before the switch (the process's environment is the one it started with). */
#include <graft/graft.h>

GRAFT_RERUN(extra_header_setup);
