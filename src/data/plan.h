// Data changes, diff time: what a patch must do to the live data of a
// process whose types change.
//
// The two builds' type tables are compared (plan_data_changes): every
// struct, union, enum and global whose layout changed, how each field maps,
// and the typed roots (globals) from which live instances are found. The
// plan travels in the patch (encode_data_plan); the default transformer and
// the old layouts as C serve both the diff and the commit. Nothing here
// touches a live process: that is migrate/migrate.h, at the commit.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "data/member_facts.h"
#include "elf/types.h"

namespace graft {

struct TypeChange {
  std::string name;                  // "struct kv_entry"
  int old_type = -1, new_type = -1;  // in DataPlan::old_types / new_types
  std::vector<std::string> details;  // for --explain, one line each: "expire_at: added at offset 24, zeroed"
  // Its instances may be where no typed pointer leads (graft-cc's records
  // do not show it lives only in globals or in frames): what only the kernel
  // remembers (epoll's data) may be one. True when unknown (older patches).
  bool hides = true;
};

struct DataRoot {
  std::string identity;  // the global's identity, as symbols have it ("kv_stats", "table.c::table")
  std::string variable;  // its DWARF key, for messages
  int old_type = -1;     // in old_types
  int new_type = -1;     // in new_types if its type changed: the patch defines new storage for it, filled at commit
};

// What the user declares about data the traversal cannot type, one line in
// a --transform file (graft.h's macros): `GRAFT_POINTS_TO(container, field,
// pointee);`, `GRAFT_UNION_MEMBER(container, union_field, tag_field,
// tag_value, member);` and `GRAFT_OPAQUE(container, field);`, read by graft
// diff and checked against the old types.
struct DataDirective {
  // Transform: GRAFT_TRANSFORM(tag, from, to), the user's transformer for a
  // struct, known to the planner by name only (its fields the default cannot
  // convert are the transformer's to set).
  // Tail: GRAFT_TAIL(struct, member), a flexible array member that becomes
  // a pointer to the elements kept after the struct.
  // Retypes: GRAFT_RETYPES(function, struct), the casts to the struct in the
  // function make no instance (the heap's type tags tell those made elsewhere).
  enum class Kind : uint8_t {
    PointsTo, UnionMember, Opaque, PointsInto, GlobalPointsTo, GlobalOpaque, FramesOnly, Transform, Tail, Retypes
  };
  Kind kind = Kind::PointsTo;
  std::vector<std::string> args;  // as written
  std::string where;              // "FILE.c:12", for messages
  std::string text() const;       // "GRAFT_POINTS_TO(slot, value, item)"
};

// A member the user declared to hold NULL or the start of a `pointee` (or an
// array of them, sized by its allocation): followed like a typed pointer.
struct DeclaredPointer {
  int container = -1;   // a struct, in old_types
  uint64_t offset = 0;  // of the member, from the container's start
  int pointee = -1;     // a struct, in old_types
  std::string source;   // "GRAFT_POINTS_TO(slot, value, item) at items.c:3"
  // GRAFT_POINTS_INTO: the member holds the address of this member of the
  // pointee (an intrusive link, container_of), or of a container outside
  // any pointee (a list's head): the pointee starts this many bytes before.
  uint64_t into = 0;
  bool interior = false;
  // Not written by the user: graft-cc recorded that every store into the
  // member is of a `pointee` (data/member_facts.h). It speaks of one build
  // only, so a revert uses the other build's records, not this.
  bool recorded = false;
  // A word of a union (graft-cc --graft-heap-types=on): it may hold another
  // member at the time (a number, a string), so it is followed only where
  // the heap's type tag at its value says it is the start of a `pointee`.
  bool by_tag = false;
};

// A union member the user declared live while a tag of its container has a value.
struct DeclaredUnionMember {
  int container = -1;          // a struct, in old_types
  uint64_t union_offset = 0;   // of the union in the container
  uint64_t tag_offset = 0;     // of the tag in the container
  uint32_t tag_size = 0;       // 1, 2, 4 or 8 bytes
  bool tag_signed = false;
  int64_t tag_value = 0;
  uint64_t member_offset = 0;  // of the live member in the container
  int member_type = -1;        // in old_types
  std::string member;          // its name, for messages
  std::string source;
};

// Where a generic container lives, and the one struct an untyped member
// of its nodes holds there (UntypedMember::per_container): the jobs list
// holds jobs, the connections list connections.
struct ContainerHolds {
  std::string global;    // a root's identity: the container is in it, `offset` bytes in
  int container = -1;    // else a struct (old_types) whose member at `offset` holds it
  uint64_t offset = 0;
  bool pointer = false;  // the place holds a pointer to the container (server.clients), not the container (&conns)
  int pointee = -1;      // what the untyped member holds there (old_types)
  std::string text;      // "conns", "struct server.clients", for messages
};

// A `void *` member nothing declares: what it points to is checked at the
// commit (an unvisited heap block that could hold a changed struct refuses).
struct UntypedMember {
  int container = -1;   // a struct, in old_types
  uint64_t offset = 0;  // of the member, from the container's start
  std::string name;     // "struct slot.value", for messages
  // The structs graft-cc's records say it holds, several of them (in
  // old_types): each value must be one the typed traversal reached as one
  // of these. Empty: what it holds is not known (a binary without records,
  // a library's struct), and a value is checked against the heap instead.
  std::vector<int> holds;
  // What it holds per container, as graft-cc's records say (list_add(&jobs,
  // j), list_add(&conns, c)): reached from one of these places through the
  // container's own structs (`family`: struct list, struct lnode, each of
  // its indices in old_types), a value is followed as that place's struct.
  std::vector<ContainerHolds> per_container;
  std::vector<int> family;
  // The one struct of `holds` whose instances can be outside globals (the
  // others, by graft-cc's records, live only in globals of their type and in
  // no other struct): a value in the heap is followed as it (beanstalkd's
  // Socket.x, its own Conn or the Server). -1: none, or several.
  int in_heap = -1;
  // Told by the heap's type tags (graft-cc --graft-heap-types=on): a value
  // in a block tagged as one of DataPlan::heap_types is followed as that
  // struct; an untagged one is none of the structs that lead to a change
  // (each of those is tagged wherever the heap holds one), unless it points
  // into a thread's stack, which refuses. Takes the place of the rest.
  bool by_heap_type = false;
};

// A struct whose every heap instance carries a tag (graft-cc's records of
// the old build: each is made by a tagged cast of fresh memory from malloc's
// family, and no struct it can be held inside is made otherwise), with the
// ID its blocks are tagged with (no other tagged struct has it).
struct HeapType {
  uint16_t id = 0;
  int type = -1;  // in old_types
};

// A global that is itself an untyped word (void *keep) and holds NULL or
// the start of a struct: graft-cc's records say so, or the user
// (GRAFT_GLOBAL_POINTS_TO). Followed at the commit like a typed pointer.
struct UntypedGlobal {
  std::string identity;  // the global's, as symbols have it
  std::string variable;  // its DWARF key, for messages
  int pointee = -1;      // a struct, in old_types
  std::string source;    // "global keep, recorded by graft-cc ...", "GRAFT_GLOBAL_POINTS_TO(keep, eng) at t.c:3"
  bool recorded = false;  // graft-cc's records said it, not the user (as DeclaredPointer::recorded)
};

// How graft-cc's records name a struct or union ("struct conn", "union u",
// "struct THREAD" for a typedef's anonymous struct): also its heap type
// tag's name (heap_type_id).
std::string records_name(const Type& t);

// The only member of a struct of one member, not a bit-field, or nullptr:
// a number the new version wraps in such a struct (unsigned long ->
// struct { unsigned long value; } aligned to a cache line) keeps its value
// in it, and one it unwraps takes the member's.
const Member* sole_member(const TypeTable& types, int type);

// Every `void **` type of a table (a pointer to untyped words): where
// DataPlan::untyped_arrays leads.
std::vector<int> untyped_array_types(const TypeTable& types);

struct DataPlan {
  TypeTable old_types, new_types;  // only what the plan refers to
  std::vector<TypeChange> changes;
  std::vector<DataRoot> roots;
  std::vector<std::string> notes;  // for --explain
  // Functions whose frames may hold pointers to changed data: each such
  // local, with the pcs where it is live (offsets from the function's entry)
  // and where its value is there. At the commit, a frame at a pc where the
  // local's place is known is a typed root (plan_migration); where it is not,
  // no thread may be at the commit, as for replaced functions.
  struct FrameHolder {
    struct Local {
      std::string name;
      int type = -1;                // in old_types
      std::vector<LiveRange> live;  // offsets from the entry
    };
    std::string identity;
    std::vector<Local> locals;
    enum class Places {
      All,
      Unknown,        // DWARF does not say where
      CallClobbered,  // only in a register a call clobbers: unknown for a thread executing there,
                      // nothing for a frame waiting for a call
      KeptOverCalls,  // every place but CallClobbered: what a frame waiting for a call may hold
    };
    // Where some local is live, at a place of that kind: [start, end) offsets from the entry.
    std::vector<std::pair<uint64_t, uint64_t>> live(Places which = Places::All) const;
  };
  std::vector<FrameHolder> frame_holders;
  // Transformers written by the user (graft diff --transform FILE.c): changed
  // struct ("struct node") -> its function in the patch
  // ("graft_transform__node"), run in the target after the default.
  std::map<std::string, std::string> user_transformers;
  std::string user_transformer_file;    // FILE.c, for messages
  std::string user_transformer_runner;  // the patch's loop that calls them a batch at a time
  // What the user declared about members the traversal cannot type (directives in the --transform file).
  std::vector<DeclaredPointer> declared_pointers;
  std::vector<DeclaredUnionMember> declared_union_members;
  // `void *` members of structs no directive covers (GRAFT_POINTS_TO or
  // GRAFT_OPAQUE), when some struct changes: the traversal scans every struct
  // that can reach one, and refuses if one points to a heap block it did not
  // reach that could hold a changed struct.
  std::vector<UntypedMember> untyped_members;
  std::vector<UntypedGlobal> untyped_globals;
  // 8-byte integer members graft-cc's records show only numbers stored in
  // (struct, offset; in old_types): a value there that equals an address is
  // garbage the block was never cleared of (redis's client.repldboff), not
  // a pointer the commit must follow (prepare_moves).
  std::vector<std::pair<int, uint64_t>> number_members;
  // The tagged structs a value of a by_heap_type member may be followed as.
  std::vector<HeapType> heap_types;
  // GRAFT_TAIL: changed structs (in old_types) whose flexible array member
  // becomes a pointer (of that name) to its elements, kept right after the
  // struct in the new block.
  std::vector<int> tails;
  // A changed struct may hide where no typed pointer leads: the arrays a
  // `void **` points to (beanstalkd's ms.items) are scanned too, each
  // element an untyped word, told by the heap's tags where the plan has
  // them (heap_types), else checked against the heap (check_untyped_members).
  bool untyped_arrays = false;
  bool arrays_by_heap_type = false;  // their elements told by the heap's tags
  // What epoll's data words hold (the kernel keeps them and hands them back
  // as given): one struct (in old_types), as graft-cc's records of every
  // store into struct epoll_event.data say, or -1 when they do not settle
  // it. Each watch's word is followed at the commit like a typed pointer.
  int kernel_data_pointee = -1;
  std::string kernel_data_source;  // for --explain
  // The way back, for `graft revert` (made at diff time from the same two
  // builds, swapped: plan_inverse): the plan from the new layouts to the old
  // ones, or, when the forward change loses values (a field removed or
  // narrowed, a user's transformer, a directive), why there is none.
  std::shared_ptr<const DataPlan> inverse;
  std::string irreversible;  // one line: "it removes struct node.junk, whose values ..."
  // Globals with new storage that the --transform file's commit-time code
  // (GRAFT_AT_COMMIT) names: it gives them their value after the migration,
  // so a string their new size cuts is no loss there.
  std::vector<std::string> set_at_commit;
  // Structs the new version renames ("struct tube" -> "struct Tube",
  // beanstalkd 1.12): their instances are converted into the renamed struct,
  // member by member by name, as if the name had stayed.
  std::map<std::string, std::string> renamed;
  // Every conversion must keep its value (an inverse narrows what the patch
  // widened): a value that does not fit refuses the migration, naming the field and the object.
  bool exact = false;
  bool empty() const { return changes.empty() && roots.empty(); }
  // Globals that get new storage (their type changed): every function that refers to one is patched.
  std::vector<std::string> retyped_globals() const;
  // The structs a transformer of the user's may be written for (old_types
  // indices, each once): every changed struct, and the struct of every global
  // that gets new storage (converted by name: a renamed struct of the same
  // layout, beanstalkd's `struct ms tubes` -> `struct Ms`, is no change, but its
  // members may need the user's word).
  std::vector<int> transformable_structs() const;
  // Whether a transformer of the user's may be written for `old_name` ("struct node"): one of those.
  bool transformable(const std::string& old_name) const;
  // A struct's name in the other version, where the release renames it
  // (`renamed`, or the struct of a global held by value: struct ms tubes ->
  // struct Ms tubes); else the name itself. A transformer of the user's goes
  // by the new name; the plan knows structs by the old one.
  std::string new_name_of(const std::string& old_name) const;
  std::string old_name_of(const std::string& new_name) const;
};

// What graft diff asks the user to declare, when graft-cc's records cannot
// settle an untyped member or global: for a --transform skeleton.
struct DeclarationQuestion {
  std::string subject;                  // "struct listNode.value", "global spare"
  std::string why;                      // "holds struct client or ...; returned by malloc in init"
  std::vector<std::string> directives;  // the lines that would settle it, one of which to keep (none: no line can)
};
struct DeclarationQuestions {
  std::string hiding;  // the changed structs that may hide, with why
  std::vector<DeclarationQuestion> asked;
  bool settleable = true;  // false: some question has no answer that makes the update safe
};

// Compares the types of two builds. `identity_of(variable, new_build)` maps a
// DWARF variable to the identity of its symbol ("" if it has none), and
// `function_at(address)` a function of the old build to its identity.
// `directives` (checked against the old types: a wrong one refuses, naming
// its place) add the edges the traversal follows besides typed pointers.
// Refuses, naming the type and the place, what it cannot transform safely.
// `facts` (the old build's, if graft-cc recorded them) settle the untyped
// members no directive covers: one whose every store is of one struct is
// followed like a typed pointer, one that never holds a changed struct is
// dismissed, and what they cannot settle is refused, every member at once,
// with the directive that fits. Without them, untyped members are checked at
// the commit (DataPlan::untyped_members).
Result<DataPlan> plan_data_changes(const TypeTable& old_types, const TypeTable& new_types,
                                   const std::function<std::string(const Variable&, bool new_build)>& identity_of,
                                   const std::function<std::string(uint64_t address)>& function_at,
                                   const std::vector<DataDirective>& directives = {},
                                   const MemberFacts* facts = nullptr, DeclarationQuestions* questions = nullptr);

// Why the change from `forward.old_types` to `forward.new_types` cannot be
// undone by generated transformers ("" if it can): a field removed or
// narrowed (its old values are gone), an enumerator removed, a user's
// transformer (graft cannot invert the user's code), a directive (it speaks
// of the old types only). A widened field can be narrowed back, checked per value.
std::string why_irreversible(const DataPlan& forward);

// Sets `forward.inverse` (the plan from the new build back to the old one,
// the same comparison with the builds swapped, checked at every conversion)
// or `forward.irreversible`. The arguments are plan_data_changes's for the
// swapped builds: `identity_of(variable, new_build)` where new_build is the
// build the inverse goes to (the old one), `function_at` over the new build.
// `new_facts`: the new build's records (what the way back starts from).
// `directives`: the user's for the forward plan, which speak of the program
// (GRAFT_FRAMES_ONLY, what a member holds) and so of the way back too, read
// against the new build's types and checked against its records; one that
// does not fit the new build (a member the release removed) makes the
// forward plan irreversible, with the reason.
void plan_inverse(DataPlan& forward, const TypeTable& old_types, const TypeTable& new_types,
                  const std::function<std::string(const Variable&, bool new_build)>& identity_of,
                  const std::function<std::string(uint64_t address)>& new_function_at,
                  const MemberFacts* new_facts = nullptr, const std::vector<DataDirective>& directives = {});

// Inline: the patch parser (its fuzzer links plan_json.cpp alone) checks a plan with them.
inline std::vector<int> DataPlan::transformable_structs() const {
  std::vector<int> out;
  std::set<std::string> seen;
  auto add = [&](int i) {
    if (i < 0 || old_types.at(i).kind != TypeKind::Struct || !seen.insert(old_types.at(i).name).second) return;
    out.push_back(i);
  };
  for (const auto& c : changes) add(c.old_type);
  for (const auto& r : roots)
    if (r.new_type >= 0) add(r.old_type);
  return out;
}

inline bool DataPlan::transformable(const std::string& old_name) const {
  const auto structs = transformable_structs();
  return std::any_of(structs.begin(), structs.end(), [&](int i) { return old_types.at(i).name == old_name; });
}

inline std::string DataPlan::new_name_of(const std::string& old_name) const {
  if (auto it = renamed.find(old_name); it != renamed.end()) return it->second;
  for (const auto& r : roots)
    if (r.new_type >= 0 && old_types.at(r.old_type).kind == TypeKind::Struct && old_types.at(r.old_type).name == old_name &&
        new_types.at(r.new_type).kind == TypeKind::Struct)
      return new_types.at(r.new_type).name;
  return old_name;
}

inline std::string DataPlan::old_name_of(const std::string& new_name) const {
  for (const auto& [from, to] : renamed)
    if (to == new_name) return from;
  for (const auto& r : roots)
    if (r.new_type >= 0 && new_types.at(r.new_type).kind == TypeKind::Struct && new_types.at(r.new_type).name == new_name &&
        old_types.at(r.old_type).kind == TypeKind::Struct)
      return old_types.at(r.old_type).name;
  return new_name;
}

std::string encode_data_plan(const DataPlan& plan);  // JSON
Result<DataPlan> decode_data_plan(const std::string& text);

// The tag of a changed struct a user may write a transformer for ("struct
// node" -> "node"), or "" (unions, enums, anonymous types).
std::string transformable_tag(const std::string& type_name);
std::string user_transformer_name(const std::string& tag);       // "graft_transform__node"
std::string user_transformer_signature(const std::string& tag);  // the C prototype to write
// A C header declaring the old layout of every changed struct (and what they
// hold by value) as `struct graft_old_<tag>`, byte for byte, checked by
// static assertions: what a user's transformer reads its `from` through.
std::string old_types_header(const DataPlan& plan, const std::string& old_binary);

// Default transformer: the value of `from` (old layout) in `to`'s layout.
// `to` holds the default value on entry (zeros, or the new initialiser):
// fields are copied by name, numbers converted, enumerators mapped by name.
class Transformer {
 public:
  Transformer(const TypeTable& from_types, const TypeTable& to_types);
  ~Transformer();
  void operator()(int from, const uint8_t* from_bytes, int to, uint8_t* to_bytes);
  // Exact mode: a number that does not survive its conversion (it does not
  // fit the new type) is noted; the first since the last call of lost() is
  // returned, with the field's path in the value ("count", "inner.level").
  // Also noted in either mode (`cut`): a string in a char array that
  // shrinks which would lose its end (no zero byte in what is kept, and
  // something other than zeros in what is not).
  struct Loss {
    std::string field, value, type;  // "count", "5000000000", "int"
    bool cut = false;
  };
  void set_exact(bool exact);
  std::optional<Loss> lost();
  // The structs inside a value of `from` (itself included) whose old type
  // `wanted` picks, paired with their new places as the default pairs fields.
  struct Nested {
    int from = -1, to = -1;
    uint64_t from_offset = 0, to_offset = 0;
    int depth = 0;  // 0: the value itself
  };
  std::vector<Nested> nested(int from, int to, const std::function<bool(int old_type)>& wanted);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};
void transform_value(const TypeTable& from_types, int from, const uint8_t* from_bytes, const TypeTable& to_types,
                     int to, uint8_t* to_bytes);

}  // namespace graft
