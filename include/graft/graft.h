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
 *
 * In the same file, one line each, declare what graft cannot see in the
 * types (the traversal that finds live objects follows typed pointers only).
 * A program built with graft-cc rarely needs them for void * and integer
 * members: graft-cc records what the program stores into each (in a
 * section that is not loaded), and graft diff follows, dismisses, or asks
 * for exactly these lines, all at once, where the records cannot tell (a
 * value of unknown origin, several structs, code not built with graft-cc).
 * A line written here always wins over the records.
 *
 * A struct is named by its tag, or by its typedef name if it has none
 * (typedef struct { ... } THREAD;).
 *
 *   GRAFT_POINTS_TO(slot, value, item);
 *     member `value` of struct slot (a void *, or any pointer-sized pointer
 *     or integer; a path such as u.ptr too) holds NULL or the address of
 *     the start of a struct item (or of an array of them, sized by its
 *     allocation): it is followed, transformed and, if the item moves,
 *     rewritten like a struct item *.
 *   GRAFT_UNION_MEMBER(msg, body, kind, MSG_ITEM, item);
 *     while msg.kind == MSG_ITEM (an integer or an enumerator of the old
 *     version), member `item` of the union msg.body is the live one. One
 *     line per tag value; a value no line names refuses the update.
 *
 *   GRAFT_POINTS_INTO(list_head, next, item, link);
 *     an intrusive container: list_head.next holds NULL, the address of the
 *     member `link` (a struct list_head) inside a struct item, which is
 *     followed and transformed like a struct item *, or the address of a
 *     struct list_head that is inside no item (the list's head). If such an
 *     item must move, the update is refused.
 *   GRAFT_OPAQUE(buffer, data);
 *     the void * member `data` of struct buffer never holds a struct whose
 *     layout changes. Every void * member of a struct that no line covers is
 *     checked at the commit: one holding a heap block the traversal did not
 *     reach, of a size a changed struct could have, refuses the update.
 *   GRAFT_OPAQUE(_rio, io);
 *     the union member `io` of struct _rio never holds (or points to) a
 *     struct whose layout changes: graft does not look inside it. This is
 *     the way past a union whose live member no tag says (one chosen by
 *     function pointers), which GRAFT_UNION_MEMBER cannot describe.
 *   GRAFT_FRAMES_ONLY(load_ctx);
 *     every live struct load_ctx is a local of a running function, or
 *     reached from one through typed pointers, though its address goes where
 *     graft cannot follow (kept elsewhere only while that function runs):
 *     graft finds them through the threads' frames.
 *
 * Each expands to a static assertion checked against the new headers; graft
 * diff checks it against the old types. A file may hold only directives.
 *
 * Update-time code, in the same file: state the new version sets up at
 * start-up (which ran long ago, in the old version) gets its value during
 * the update. It runs inside the target after the patch is mapped and before
 * graft waits for the safe moment, in one thread of the program borrowed
 * for it (one idle in a system call if there is one, on a stack of graft's)
 * while the other threads run on: it may call malloc, strdup, open files
 * and the program's non-static functions. Until the commit the program runs
 * the old version: a function the patch replaces is still the old one when
 * called from here (a function the new version adds runs its new code).
 *
 *   GRAFT_INIT(custom_hdrs, char *, value) {
 *     *value = strdup("");
 *     return *value ? 0 : 1;
 *   }
 *     defines int graft_init__custom_hdrs(char **value): `value` points to
 *     the storage of the new global custom_hdrs in the patch (static or not:
 *     a static of the program is found by its name; a name two files use is
 *     refused). The global must be one the new version adds, and `type` as
 *     large as the new build says it is. Nothing reads it before the commit.
 *   GRAFT_RERUN(setup_table);
 *     one line: calls the new version's setup_table (static or not; it must
 *     take no parameters) once, to re-run start-up code on purpose.
 *   GRAFT_ON_UPDATE() { register_handlers(); return 0; }
 *     free code run once per update (at most one per file).
 *   GRAFT_AT_COMMIT() { total_items = count_items(); return 0; }
 *     code run at the commit (at most one per file), once every thread is
 *     stopped and the data is transformed, for a value computed from data
 *     that keeps changing while the program runs. It runs under the
 *     transformers' rules: the other threads are stopped, possibly holding
 *     locks, so it must not allocate, lock or block; it writes only what the
 *     new version adds. A nonzero return, a fault or apply's
 *     --transformer-timeout rolls the whole commit back: nothing changed.
 *
 * They run in this order: every GRAFT_INIT in file order, then every
 * GRAFT_RERUN in file order, then GRAFT_ON_UPDATE. A nonzero return, a fault
 * or apply's --update-code-timeout abandons the update with nothing changed
 * (the patch is unmapped); what the code allocated or opened meanwhile, and
 * what a rerun or GRAFT_ON_UPDATE wrote to the program's existing state,
 * stays: memory is leaked, not freed. A GRAFT_INIT whose global is set at
 * start-up in the new version is what a patch adding it needs (or a
 * GRAFT_RERUN of the function that sets it).
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

/* The size of the type, kept in the object for graft diff to compare with
 * the new global's (a static assertion cannot know it). */
#define GRAFT_INIT(name, type, value)                                                  \
  __attribute__((used)) static const unsigned long graft_init_size__##name =          \
      sizeof(__typeof__(type));                                                       \
  int graft_init__##name(__typeof__(type) *value);                                    \
  __attribute__((used, noinline)) int graft_init__##name(__typeof__(type) *value)

#define GRAFT_ON_UPDATE()                       \
  int graft_on_update(void);                    \
  __attribute__((used, noinline)) int graft_on_update(void)

#define GRAFT_AT_COMMIT()                       \
  int graft_at_commit(void);                    \
  __attribute__((used, noinline)) int graft_at_commit(void)

#define GRAFT_RERUN(function) \
  _Static_assert(sizeof(#function) > 1, "GRAFT_RERUN: name a function of the new version")

/* The declarations name a struct by its tag, or by its typedef name if it has
 * no tag (typedef struct { ... } THREAD;), so the compiler cannot check
 * them: graft diff checks each against the old version's types. */
#define GRAFT_POINTS_TO(container, field, pointee) \
  _Static_assert(sizeof(#container) > 1 && sizeof(#field) > 1 && sizeof(#pointee) > 1, "GRAFT_POINTS_TO")

#define GRAFT_POINTS_INTO(container, field, pointee, member)                                      \
  _Static_assert(sizeof(#container) > 1 && sizeof(#field) > 1 && sizeof(#pointee) > 1 && \
                     sizeof(#member) > 1,                                                         \
                 "GRAFT_POINTS_INTO")

#define GRAFT_OPAQUE(container, field) \
  _Static_assert(sizeof(#container) > 1 && sizeof(#field) > 1, "GRAFT_OPAQUE")

/* The same for a global that is itself a void * (or an integer holding an
 * address): void *keep; holds a struct eng, or never a changed struct. A
 * static is named by its own name. */
#define GRAFT_GLOBAL_POINTS_TO(global, pointee) \
  _Static_assert(sizeof(#global) > 1 && sizeof(#pointee) > 1, "GRAFT_GLOBAL_POINTS_TO")

#define GRAFT_GLOBAL_OPAQUE(global) _Static_assert(sizeof(#global) > 1, "GRAFT_GLOBAL_OPAQUE")

/* Every live instance of a struct is a local of a running function, or
 * reached from one through typed pointers (a context made on the stack whose
 * address is kept elsewhere only while its function runs, as redis's
 * loadCtx in Lua's registry): graft finds them through the threads' frames,
 * as for a struct graft-cc's records show is never kept in memory. */
#define GRAFT_FRAMES_ONLY(name) _Static_assert(sizeof(#name) > 1, "GRAFT_FRAMES_ONLY")

/* The release makes the flexible array member `member` of struct `name`
 * (`char body[];`) a pointer to the same bytes kept right after the struct,
 * in the same allocation (`j = malloc(sizeof *j + n); j->body = (char *)(j + 1)`):
 * graft moves each live one's elements with it and sets the pointer. Write
 * it only if the new code allocates and frees them that way. */
#define GRAFT_TAIL(name, member) _Static_assert(sizeof(#name) > 1 && sizeof(#member) > 1, "GRAFT_TAIL")

/* With heap type tags (graft-cc --graft-heap-types=on): the casts to struct
 * `name` in `function` only re-type a pointer to an instance made (and
 * tagged) elsewhere, never make one of raw memory, though graft-cc's records
 * show the value may come from elsewhere on some path (redis's RM_LoadString
 * returns what rdbGenericLoadStringObject returns, an object unless asked for
 * a plain buffer, which it never asks for). Check the function's code. */
#define GRAFT_RETYPES(function, name) _Static_assert(sizeof(#function) > 1 && sizeof(#name) > 1, "GRAFT_RETYPES")

#define GRAFT_UNION_MEMBER(container, union_field, tag_field, tag_value, member)                    \
  _Static_assert(sizeof(#container) > 1 && sizeof(#union_field) > 1 && sizeof(#tag_field) > 1 &&   \
                     sizeof(#tag_value) > 1 && sizeof(#member) > 1,                                 \
                 "GRAFT_UNION_MEMBER")

/* Internal to graft, not for programs: the batch of objects graft apply
 * hands the transformer runner (graft_transform_run) that graft diff
 * compiles into a patch. The runner reads it (compiled with
 * GRAFT_TRANSFORMER), graft apply writes it (GRAFT_INTERNAL): both from this
 * one declaration. */
#if defined(GRAFT_TRANSFORMER) || defined(GRAFT_INTERNAL)
struct graft_transform_batch {
  void (*transform)(const void *from, void *to);
  const char *from;
  unsigned long from_size;
  char *to;
  unsigned long to_size;
  unsigned long count;
  volatile unsigned long done; /* objects finished; count once the batch is done */
};

/* One call of update-time code (GRAFT_INIT, GRAFT_RERUN, GRAFT_ON_UPDATE),
 * made by the patch's graft_update_run, which ends on pause(2). */
struct graft_update_call {
  void *function;      /* int (*)(void *) for an init, void (*)(void) for a rerun, int (*)(void) */
  void *argument;      /* an init's global, else unused */
  unsigned long kind;  /* GRAFT_UPDATE_CALL_* */
  volatile long result;
  volatile unsigned long done; /* 1 once the function returned */
};
#define GRAFT_UPDATE_CALL_INIT 0
#define GRAFT_UPDATE_CALL_RERUN 1
#define GRAFT_UPDATE_CALL_ON_UPDATE 2
#define GRAFT_UPDATE_CALL_AT_COMMIT 3
#endif

/* graft diff compiles transformer files with GRAFT_TRANSFORMER defined: they
 * must not carry a copy of the update-point definitions below, and neither
 * may graft itself (GRAFT_INTERNAL). */
#if !defined(GRAFT_TRANSFORMER) && !defined(GRAFT_INTERNAL)
/* Set by the updater while an update waits; never written by the program. */
__attribute__((weak)) volatile int graft_update_pending;

/* Where a thread at an update point meets the updater. Found by name. */
__attribute__((weak, noinline, used)) void graft_update_point_reached(void) {
  __asm__ volatile("" ::: "memory");
}

static inline __attribute__((always_inline)) void graft_update_point(void) {
  if (__builtin_expect(graft_update_pending, 0)) graft_update_point_reached();
}

/* An update point with a name (a string literal): graft diff pairs a
 * function's update points in the old and the new code by name first, and
 * only the unnamed ones by order, so a point keeps its place when others are
 * added, removed or moved. The name goes into the section
 * .graft.update_points, which is not loaded (no cost at run time). */
#define GRAFT_UPDATE_POINT(name)                                                          \
  do {                                                                                    \
    if (__builtin_expect(graft_update_pending, 0)) {                                      \
      __asm__ volatile(".pushsection .graft.update_points,\"\",@progbits\n\t.quad 1f\n\t" \
                       ".asciz \"" name "\"\n\t.popsection\n1:");                         \
      graft_update_point_reached();                                                       \
    }                                                                                     \
  } while (0)
#endif /* GRAFT_TRANSFORMER */

#ifdef __cplusplus
}
#endif

#endif
