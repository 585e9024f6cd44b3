/* graft.h: update points for programs built with graft-cc.
 *
 * Call graft_update_point() where a thread is at a quiet moment: at the top
 * of an event loop or a worker's loop, holding no lock. While no update is
 * pending it costs one load and a branch. While graft waits for a safe moment
 * it sets graft_update_pending and plants a checkpoint on
 * graft_update_point_reached(): a thread passing an update point stops there
 * briefly, outside the code being replaced, and is re-checked with the others.
 *
 * Header-only (weak definitions merge at link time): nothing to link.
 *
 * Transformers (graft diff --transform FILE.c): in FILE.c, include the
 * program's headers (the new types) and the header graft writes with
 * `graft diff OLD NEW --transform-header OLD_TYPES.h` (the old layouts, as
 * struct graft_old_<tag>), then write, for a struct whose layout changed:
 *
 *   GRAFT_TRANSFORM(node, from, to) { to->weight = from->count * 10; }
 *
 * which defines void graft_transform__node(const struct graft_old_node *from,
 * struct node *to). `to` arrives filled by the generated default (fields
 * copied by name, numbers converted, new fields zero or their initialiser):
 * write only what differs. It runs inside the target at the commit, with
 * every other thread stopped, possibly holding locks: it must not call
 * malloc or free, take a lock, block or write anything but *to. A fault or
 * a time limit aborts the update and nothing is changed.
 */
#ifndef GRAFT_GRAFT_H
#define GRAFT_GRAFT_H

#ifdef __cplusplus
extern "C" {
#endif

#define GRAFT_TRANSFORM(type, from, to)                                                    \
  void graft_transform__##type(const struct graft_old_##type *from, struct type *to);      \
  __attribute__((used)) void graft_transform__##type(const struct graft_old_##type *from, \
                                                     struct type *to)

/* graft diff compiles transformer files with GRAFT_TRANSFORMER defined: they
 * must not carry a copy of the update-point definitions below. */
#ifndef GRAFT_TRANSFORMER
/* Set by the updater while an update waits; never written by the program. */
__attribute__((weak)) volatile int graft_update_pending;

/* Where a thread at an update point meets the updater. Found by name. */
__attribute__((weak, noinline, used)) void graft_update_point_reached(void) {
  __asm__ volatile("" ::: "memory");
}

static inline __attribute__((always_inline)) void graft_update_point(void) {
  if (__builtin_expect(graft_update_pending, 0)) graft_update_point_reached();
}
#endif /* GRAFT_TRANSFORMER */

#ifdef __cplusplus
}
#endif

#endif
