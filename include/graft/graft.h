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
 */
#ifndef GRAFT_GRAFT_H
#define GRAFT_GRAFT_H

#ifdef __cplusplus
extern "C" {
#endif

/* Set by the updater while an update waits; never written by the program. */
__attribute__((weak)) volatile int graft_update_pending;

/* Where a thread at an update point meets the updater. Found by name. */
__attribute__((weak, noinline, used)) void graft_update_point_reached(void) {
  __asm__ volatile("" ::: "memory");
}

static inline __attribute__((always_inline)) void graft_update_point(void) {
  if (__builtin_expect(graft_update_pending, 0)) graft_update_point_reached();
}

#ifdef __cplusplus
}
#endif

#endif
