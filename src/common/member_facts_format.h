// What graft-cc's plugin records about the values a program stores into its
// untyped members (void *, an integer holding an address), and graft diff
// reads back from the binary. Header-only, no dependencies (the plugin
// includes it).
//
// Each object built by graft-cc carries, in the section below (not loaded:
// no cost at run time; the linker concatenates the objects' pieces), one
// record per line, fields separated by tabs:
//
//   begin   FILE                        the first line of a unit's records: the lines up to the
//                                       next "begin" are FILE's (graft-cc after 6 December 2026;
//                                       a struct's name in them is the one FILE defines, which may
//                                       not be another unit's struct of that name)
//   unit    FILE                        this unit was built with the records (DWARF's
//                                       DW_AT_name, made absolute with DW_AT_comp_dir)
//   store   CONTAINER OFFSET FUNCTION ORIGIN...
//                                       FUNCTION stores into the member at OFFSET of
//                                       CONTAINER ("struct conn", "THREAD") a value of ORIGIN;
//                                       CONTAINER "global NAME", OFFSET 0: into the global NAME,
//                                       itself an untyped word (void *keep)
//   arg     CALLEE K ORIGIN...          a call passes a value of ORIGIN as CALLEE's parameter K
//   within  CALLEE K J STRUCT KIND NAME OFFSET HOW ORIGIN...
//                                       the same call passes, as CALLEE's parameter J, a STRUCT *
//                                       ("-" if J is not a pointer to a named struct) that lives at a
//                                       place: KIND "global" (NAME a global, OFFSET into it) or
//                                       "member" (NAME a struct, OFFSET of its member), HOW "addr"
//                                       (the argument is the place's address, &conns) or "load" (read
//                                       from the place, server.clients); "unknown - 0 -" if graft-cc
//                                       cannot tell (then STRUCT "-" and ORIGIN "unknown -": J names
//                                       no place at some call). One line per call, parameter J and
//                                       origin, any origin but a struct's address written "unknown -":
//                                       what a generic container holds, per container
//   returner FUNCTION                   FUNCTION returns an untyped word (void *, an integer): what
//                                       it returns is in its "return" records (none: only NULL or
//                                       numbers)
//   return  FUNCTION ORIGIN...          FUNCTION returns a value of ORIGIN
//   called  FUNCTION                    FUNCTION's address is taken: it may be called through a
//                                       pointer, with arguments no record shows
//   instances FILE [kept interior]      this unit also records where its structs' instances are
//                                       made (the "made" records below), and with "kept interior"
//                                       where pointers to or into them are kept (the "kept" and
//                                       "interior" records); a unit without it was built by a
//                                       graft-cc that did not (one with "kept" alone did not
//                                       record pointers into the structs that hold others)
//   made    STRUCT WHY                  an instance of STRUCT ("struct conn", "union u") may be
//                                       somewhere other than a global of that type: "a cast to it
//                                       in make_conn" (a malloc result, container_of), "an integer
//                                       made a pointer to it in F", "a local in F", "its pointers
//                                       written through another type in F"
//   kept    STRUCT WHY                  a pointer to (or into) a STRUCT is kept in memory: "stored
//                                       in F" (anywhere but a local whose address goes nowhere),
//                                       "passed as another type in F" (void *), "made an integer in
//                                       F", "the initializer of G"; a STRUCT with none is reached
//                                       only from the frames that hold it
//   interior STRUCT MEMBER FUNCTION     FUNCTION takes the address of a MEMBER (a struct) that
//                                       STRUCT holds by value (&it->link) and keeps it as a MEMBER *
//                                       (passes it on, holds it in a frame): STRUCT is kept wherever
//                                       MEMBER is ("kept" records); used any other way, STRUCT gets a
//                                       "kept" record of its own
//   castfrom STRUCT CALLEE FUNCTION    FUNCTION makes a STRUCT * by a cast from what CALLEE
//                                       returns ("-": a call through a pointer)
//   castfrom_unit FILE                  this unit records its casts from call results (graft-cc
//                                       after 6 December 2026)
//   heap_types FILE                     this unit was built with heap type tags (graft-cc
//                                       --graft-heap-types=on): below
//   tagged  STRUCT ID CALLEE FUNCTION   FUNCTION makes a STRUCT * by a cast from what CALLEE
//                                       returns and tags the block with ID (heap_type_id) at
//                                       run time: always where CALLEE is glibc's allocator or a
//                                       "fresh" function of the same unit, else only if CALLEE's
//                                       unit says it is "fresh"; its "made" record says "a
//                                       tagged cast to it in FUNCTION"
//   fresh   FUNCTION                    (with heap_types) FUNCTION returns only fresh memory of
//                                       glibc's malloc family (zmalloc)
//   slotfresh FUNCTION GLOBAL OFFSET    (with heap_types) FUNCTION returns only what calls through
//                                       the function pointer at OFFSET of GLOBAL return (hiredis's
//                                       hi_malloc): fresh memory while that pointer is malloc's kin
//   slot    GLOBAL OFFSET ALLOCATOR     (with heap_types) GLOBAL's initializer holds ALLOCATOR (of
//                                       malloc's family) at OFFSET
//   writes  GLOBAL FUNCTION             (with heap_types) FUNCTION writes GLOBAL, a global holding
//                                       function pointers (or lets its address go elsewhere)
//   refers  FUNCTION                    (with heap_types) the unit calls FUNCTION or takes its
//                                       address: a function no unit refers to never runs
//   castof  STRUCT FUNCTION ORIGIN...   (with heap_types) FUNCTION makes a STRUCT * by a cast it
//                                       does not tag, from a value of ORIGIN: a pointer to an
//                                       instance made elsewhere (a void * member's value), or
//                                       memory that would hold one with no tag
//   union   CONTAINER OFFSET FUNCTION TYPE
//                                       FUNCTION writes the union member at OFFSET of
//                                       CONTAINER as TYPE (LLVM's spelling): for the record;
//                                       one written as an untyped word (epoll_event.data.ptr)
//                                       has "store" records too, under the same CONTAINER OFFSET
//
// where ORIGIN is one of
//
//   type    STRUCT                      the address of a STRUCT (the pointer's type said so)
//   param   FUNCTION K                  what FUNCTION's parameter K receives ("arg" records)
//   member  CONTAINER OFFSET            a value loaded from that untyped member ("store" records)
//   result  FUNCTION WHY                what FUNCTION returns (its "return" records); WHY if it has
//                                       none (a library's function: "returned by malloc in init")
//   unknown WHY                         graft cannot tell ("returned by a call through a pointer in
//                                       run", "address arithmetic in parse", "copied in by memcpy in
//                                       load")
//
// A NULL or zero stored is not recorded, nor what memset writes (a byte
// repeated, never an address), a library's handle (dlopen's), a function's
// address or read-only data's (a string literal).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace graft {

inline constexpr const char* kMemberFactsSection = ".graft.member_facts";
// The environment variable that turns the recording off (GRAFT_MEMBER_FACTS=off),
// for a build compared with an older one, or for measuring what it costs.
inline constexpr const char* kMemberFactsVariable = "GRAFT_MEMBER_FACTS";


// Heap type tags (graft-cc --graft-heap-types=on). Where a unit casts what
// an allocation call returns to a struct pointer (client *c =
// zmalloc(sizeof *c)), it writes the struct's ID into a table beside the
// heap: 2 bytes per 16-byte granule, at kHeapTypesBase's value + (address >> 4) * 2,
// in a reservation of 16 TiB made at the first tag (MAP_NORESERVE: only the
// pages written cost memory). Every free() and realloc() of the unit clears
// the block's entry first (reallocarray's too). graft reads the table at the commit: a value in
// an untyped member whose block carries a struct's ID is that struct. The
// table's address is in this global of the executable (NULL before the
// first tag, kHeapTypesUnavailable if the reservation failed).
inline constexpr const char* kHeapTypesBase = "__graft_heap_types";
inline constexpr uint64_t kHeapTypesUnavailable = 1;
inline constexpr uint64_t kHeapTypesBytes = uint64_t{1} << 44;   // covers 2^47 bytes of address space
inline constexpr int kHeapTypesGranuleShift = 4;                 // one entry per 16 bytes (malloc's alignment)
inline constexpr const char* kHeapTypesVariable = "GRAFT_HEAP_TYPES";  // "on": the plugin tags
// The allocators whose blocks are tagged where a cast of their result makes
// a struct (their free() and realloc() are the ones wrapped), and the flag a
// unit defines for each function of its own that returns only their memory
// (zmalloc): a cast of that function's result in another unit is tagged
// only if the flag is linked in ("fresh" records say which).
inline constexpr const char* kHeapTypesAllocators[] = {"malloc",        "calloc",   "realloc", "reallocarray",
                                                       "aligned_alloc", "memalign", "valloc",  "pvalloc"};
inline constexpr const char* kHeapTypesFreshFlag = "__graft_fresh.";
// The flag the unit defining a global initialized with an allocator of
// malloc's family at an offset defines for that slot ("__graft_slot.G.OFFSET"):
// a cast of what a function returning only calls through that slot returns
// (hiredis's hi_malloc) is tagged where it is linked in.
inline constexpr const char* kHeapTypesSlotFlag = "__graft_slot.";
inline std::string heap_types_slot_flag(std::string_view global, uint64_t offset) {
  return std::string(kHeapTypesSlotFlag) + std::string(global) + "." + std::to_string(offset);
}
// Whether a symbol is one of those flags (a fresh function's or a slot's).
constexpr bool heap_types_flag(std::string_view name) {
  return name.substr(0, std::string_view(kHeapTypesFreshFlag).size()) == kHeapTypesFreshFlag ||
         name.substr(0, std::string_view(kHeapTypesSlotFlag).size()) == kHeapTypesSlotFlag;
}

// A struct's ID: FNV-1a of graft-cc's name for it ("struct client") and its
// shape (its size in bytes, then " NAME@BITS" for each member, its offset in
// bits, in order, as the debug information says), folded to 16 bits; never
// 0, which is "no tag".
// The shape tells two structs of one name in two files apart (hiredis's
// struct dict beside redis's), and gives a struct a release changes a new
// ID (the commit retags its instances). Two structs may still share one:
// graft diff trusts an ID only where one tagged struct has it.
constexpr uint16_t heap_type_id(std::string_view name, std::string_view shape) {
  uint32_t hash = 2166136261u;
  auto add = [&](std::string_view text) {
    for (const char c : text) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 16777619u;
    }
  };
  add(name);
  add("\n");
  add(shape);
  const auto id = static_cast<uint16_t>((hash >> 16) ^ (hash & 0xffff));
  return id ? id : 1;
}

}  // namespace graft

