// Diff time: what graft-cc's plugin recorded about the values a build
// stores into the untyped members of its structs (void *, an integer
// holding an address), read back from the binary's non-loaded section
// (common/member_facts_format.h), with the records joined: a value passed
// to a generic function (list_add(list, item)) is what that function's
// parameter holds when it stores it (node->value = value); a value copied
// from another untyped member holds what that member holds.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "elf/elf_file.h"

namespace graft {

// What one member may hold, as far as the records tell.
struct MemberHolds {
  bool stored = false;                 // some record stores into it (besides NULL)
  std::set<std::string> types;         // "struct job", "struct THREAD" (a typedef'd anonymous struct)
  std::set<std::string> unknown;       // why graft cannot tell, each "returned by malloc in main"
  std::set<std::string> functions;     // where the stores are
  std::map<std::string, std::set<std::string>> stored_by;  // each of `types`: the functions that store it
};

// Where a container lives, as graft-cc names it: a global (by its
// compiler's name, an offset into it) or a member of a struct.
struct ContainerPlace {
  bool global = false;
  std::string name;     // "conns", or "struct server" for a member
  uint64_t offset = 0;  // into the global, or of the member
  bool loaded = false;  // the place holds a pointer to the container (server.clients), not the container (&conns)
  auto operator<=>(const ContainerPlace&) const = default;
};

// What a generic container's untyped member holds, per container: every
// value stored there is a parameter of a function (list_add(list, value))
// that every call gives one struct per container (list_add(&jobs, j),
// list_add(&conns, c)). `container` is the parameter's struct ("struct list").
struct PerContainer {
  std::string container;
  std::map<ContainerPlace, std::string> holds;  // place -> "struct conn"
  std::set<std::string> calls;                 // "list_add", for messages
};

class MemberFacts {
 public:
  // The records of `binary`, or nothing when it has none (built before
  // graft-cc recorded them, or with GRAFT_MEMBER_FACTS=off).
  // `variants` (TypeTable::variants): a unit's own struct where two units
  // define different structs of one name; the records of that unit are
  // read as about it ("struct dict@async.c").
  using Variants = std::map<std::string, std::map<std::string, std::string>>;
  static std::optional<MemberFacts> read(const ElfFile& binary, const Variants& variants = {});
  static MemberFacts parse(std::string_view text, const Variants& variants = {});

  // What the member at `offset` of `container` (DWARF's spelling: "struct
  // conn", or "THREAD" for an anonymous struct a typedef names) may hold.
  // `foreign_caller(F)`: whether code not built with the records may call
  // F (a function whose parameter a member receives).
  using ForeignCaller = std::function<bool(const std::string& function)>;
  MemberHolds holds(const std::string& container, uint64_t offset, const ForeignCaller& foreign_caller) const;

  // The member's values per container, when graft-cc's records show each
  // container holds one struct ("within" records); nothing when they do not
  // (a value of unknown origin, a call that gives a container graft-cc
  // cannot place, or two structs in one container).
  std::optional<PerContainer> per_container(const std::string& container, uint64_t offset,
                                            const ForeignCaller& foreign_caller) const;

  // Whether a unit (DWARF's DW_AT_name, made absolute with DW_AT_comp_dir) was built with the records.
  bool recorded(const std::string& unit) const { return units_.count(unit) != 0; }
  // Whether its records open with a "begin" line (graft-cc after 6 December
  // 2026): only then can they tell its struct from another file's of the same name.
  bool begun(const std::string& unit) const { return begun_units_.count(unit) != 0; }
  // Whether it also recorded where instances of its structs are made
  // ("made" records: graft-cc after 5 December 2026).
  bool instances_recorded(const std::string& unit) const { return instance_units_.count(unit) != 0; }
  // Whether it also recorded where pointers to its structs are kept ("kept" records).
  bool kept_recorded(const std::string& unit) const { return kept_units_.count(unit) != 0; }
  // Why an instance of `aggregate` ("struct conn", "union u", "struct THREAD")
  // may be somewhere other than a global of that type: "a cast to it in
  // make_conn", "a local in main"; empty if nowhere.
  const std::set<std::string>& made(const std::string& aggregate) const;
  // Where a pointer to (or into) an instance of `aggregate` is kept in
  // memory ("stored in make_request", "passed as another type in run"):
  // empty if only frames ever hold one.
  const std::set<std::string>& kept(const std::string& aggregate) const;
  // Whether some record stores the address of an `aggregate` into an
  // untyped member or passes it as an untyped argument (a global's too).
  bool kept_untyped(const std::string& aggregate) const { return kept_untyped_.count(aggregate) != 0; }
  // Why pointers into an `aggregate` are kept only as pointers to a struct
  // it holds by value (&it->link kept as a struct list_head *), if they are:
  // a typed traversal meets the member, never the struct around it.
  const std::string* kept_inside(const std::string& aggregate) const {
    auto it = kept_inside_.find(aggregate);
    return it == kept_inside_.end() ? nullptr : &it->second;
  }
  // The functions whose results an `aggregate` is made from by a cast
  // ("castfrom" records; "-" for a call through a pointer).
  const std::set<std::string>& cast_from(const std::string& aggregate) const;
  // Whether `unit` recorded them ("castfrom_unit": graft-cc after 6 December 2026).
  bool casts_recorded(const std::string& unit) const { return cast_units_.count(unit) != 0; }
  // Heap type tags (graft-cc --graft-heap-types=on): whether `unit` was
  // built with them; the tags an `aggregate`'s allocations get, each with
  // the function whose result is tagged ("-": a call through a pointer);
  // and the structs an ID is given to (two names may share one).
  bool heap_typed(const std::string& unit) const { return heap_units_.count(unit) != 0; }
  bool any_heap_typed() const { return !heap_units_.empty(); }
  const std::set<std::pair<uint16_t, std::string>>& tagged(const std::string& aggregate) const;
  const std::set<std::string>& tag_names(uint16_t id) const;
  // Whether a tagged cast of `callee`'s result tags at run time: glibc's
  // allocator, a function its unit found returns only its memory ("fresh"),
  // or one that returns only what an allocator table's slot returns, where
  // the table holds one of malloc's family and nothing that runs writes it
  // ("slotfresh", "slot", "writes", "refers": hiredis's hi_malloc).
  bool tags_fire(const std::string& callee) const;
  // The origins of the values `function` casts to an `aggregate` pointer
  // without a tag ("castof" records), each ORIGIN's fields; nullptr if the
  // records have none (a unit without tags, or no such cast).
  const std::vector<std::vector<std::string>>* cast_of(const std::string& aggregate, const std::string& function) const;
  // What `function` returns ("return" records), each ORIGIN's fields; nullptr
  // for a function no recorded unit defines as returning an untyped word.
  const std::vector<std::vector<std::string>>* returns(const std::string& function) const;
  // What the calls pass as `callee`'s parameter `k` ("arg" records), each ORIGIN's fields.
  const std::vector<std::vector<std::string>>& args(const std::string& callee, size_t k) const;
  // What a call of `callee` returns, as its return records say (unknown
  // for a function no recorded unit defines).
  MemberHolds results_of(const std::string& callee, const ForeignCaller& foreign_caller) const;

 private:
  using Key = std::pair<std::string, uint64_t>;  // container, offset
  struct Store {
    std::string function;
    std::vector<std::string> origin;  // "type" STRUCT | "param" F K | "member" C OFFSET | "unknown" WHY
  };
  void add(const std::vector<std::string>& origin, const std::string& function, const ForeignCaller& foreign_caller,
           MemberHolds& out, std::set<Key>& visiting, int depth) const;
  void collect(const Key& key, const ForeignCaller& foreign_caller, MemberHolds& out, std::set<Key>& visiting,
               int depth) const;

  std::set<std::string> units_;
  std::set<std::string> instance_units_;
  std::set<std::string> kept_units_;
  std::map<std::string, std::set<std::string>> made_;
  std::set<std::string> kept_untyped_;
  std::map<std::string, std::string> kept_inside_;
  std::map<std::string, std::set<std::string>> kept_;
  std::map<std::string, std::set<std::string>> cast_from_;
  std::set<std::string> cast_units_;
  std::set<std::string> heap_units_;
  std::set<std::string> fresh_;
  std::set<std::string> begun_units_;
  std::map<std::string, std::pair<std::string, std::string>> slot_fresh_;  // function -> global, offset
  std::set<std::pair<std::string, std::string>> slots_;                   // global, offset holding an allocator
  std::map<std::string, std::set<std::string>> writers_;                  // global -> the functions that write it
  std::set<std::string> referred_;                                        // functions some unit calls or takes
  std::map<std::pair<std::string, std::string>, std::vector<std::vector<std::string>>> cast_of_;  // (struct, function)
  std::map<std::string, std::set<std::pair<uint16_t, std::string>>> tagged_;
  std::map<uint16_t, std::set<std::string>> tag_names_;
  std::map<Key, std::vector<Store>> stores_;
  std::map<std::pair<std::string, std::string>, std::vector<std::vector<std::string>>> args_;  // (callee, K) -> origins
  std::set<std::string> called_;  // functions called through a pointer
  std::set<std::string> returners_;  // functions of recorded units that return an untyped word
  std::map<std::string, std::vector<std::vector<std::string>>> returns_;  // function -> origins returned
  mutable std::set<std::string> returning_;  // results being joined (a recursive function adds nothing twice)
  struct Within {
    std::string pointee;  // the container's struct, "-" if not a pointer to one
    std::optional<ContainerPlace> place;
    std::vector<std::string> origin;
  };
  std::map<std::tuple<std::string, std::string, std::string>, std::vector<Within>> within_;  // (callee, K, J)
};

}  // namespace graft
