/* Update-time code for the step v6 -> v7 (graft diff --transform).
 *
 * v7 reads KVSTORE_INSTANCE when it starts (print_ready, which main calls
 * once before it waits for its workers): a process updated live started
 * long ago, as v6, and never ran that, so kv_instance would stay NULL and
 * INFO would report "(null)". graft diff refuses the step without this
 * file; with it, the update gives kv_instance its value in the process,
 * before the switch, from the environment the process started with. */
#include <graft/graft.h>
#include <stdlib.h>
#include <string.h>

GRAFT_INIT(kv_instance, char *, value)
{
    const char *name = getenv("KVSTORE_INSTANCE");
    *value = strdup(name ? name : "");
    return *value ? 0 : 1;
}
