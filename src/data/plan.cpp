// Diff time: which types and globals change layout, how each field maps,
// and which globals are the roots of the live data to transform.
#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "data/plan.h"
#include "data/type_compare.h"

namespace graft {
namespace {

// The fields of a struct as a transformer matches them: anonymous struct
// members are looked through (their fields belong to the enclosing struct).
void flatten(const TypeTable& t, int type, uint64_t base, std::vector<Field>& out) {
  for (const auto& m : t.at(type).members) {
    const Type& mt = t.at(m.type);
    if (m.name.empty() && mt.kind == TypeKind::Struct) {
      flatten(t, m.type, base + m.offset, out);
      continue;
    }
    out.push_back({m.name, base + m.offset, m.bit_size, m.bit_offset, m.type});
  }
}

// Copies the types reachable from `roots` into a new table; `roots` are remapped.
TypeTable subset(const TypeTable& from, std::vector<int*> roots) {
  std::map<int, int> index;
  std::vector<int> order;
  std::vector<int> stack;
  for (int* r : roots)
    if (*r >= 0) stack.push_back(*r);
  while (!stack.empty()) {
    const int i = stack.back();
    stack.pop_back();
    if (i < 0 || index.count(i)) continue;
    index[i] = static_cast<int>(order.size());
    order.push_back(i);
    const Type& t = from.at(i);
    if (t.target >= 0) stack.push_back(t.target);
    for (const auto& m : t.members) stack.push_back(m.type);
  }
  TypeTable out;
  for (int i : order) {
    Type t = from.at(i);
    if (t.target >= 0) t.target = index.at(t.target);
    for (auto& m : t.members) m.type = index.at(m.type);
    if (!t.name.empty() && (t.kind == TypeKind::Struct || t.kind == TypeKind::Union || t.kind == TypeKind::Enum))
      out.named.emplace(t.name, static_cast<int>(out.types.size()));
    out.types.push_back(std::move(t));
  }
  for (int* r : roots)
    if (*r >= 0) *r = index.at(*r);
  return out;
}

}  // namespace

std::vector<Field> fields_of(const TypeTable& t, int type) {
  std::vector<Field> out;
  flatten(t, type, 0, out);
  return out;
}

const Member* sole_member(const TypeTable& types, int type) {
  if (type < 0) return nullptr;
  const Type& t = types.at(type);
  if (t.kind != TypeKind::Struct || t.members.size() != 1 || t.members[0].bit_size) return nullptr;
  return &t.members[0];
}

bool TypeComparison::convertible(int i, int j) const {
  if (i < 0 || j < 0) return i == j;
  const Type& a = old_.at(i);
  const Type& b = new_.at(j);
  if (numeric(a.kind) && numeric(b.kind)) return (a.kind != TypeKind::Float || a.size <= 8) && (b.kind != TypeKind::Float || b.size <= 8);
  if (const Member* m = sole_member(new_, j); m && numeric(a.kind)) return convertible(i, m->type);
  if (const Member* m = sole_member(old_, i); m && numeric(b.kind)) return convertible(m->type, j);
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case TypeKind::Pointer:
    case TypeKind::Struct:
      return true;  // struct: field by field, each checked where it is explained
    case TypeKind::Array:
      return convertible(a.target, b.target);
    default:
      return !differs(i, j);
  }
}

bool TypeComparison::differs(int i, int j) const {
  if (i < 0 || j < 0) return i != j;
  if (auto it = memo_.find({i, j}); it != memo_.end()) return it->second;
  memo_[{i, j}] = false;  // a cycle runs through pointers, which never differ
  const Type& a = old_.at(i);
  const Type& b = new_.at(j);
  bool result = a.kind != b.kind || a.size != b.size || a.incomplete != b.incomplete;
  if (!result) {
    switch (a.kind) {
      case TypeKind::Enum:
        for (const auto& [name, value] : a.enumerators)
          for (const auto& [other, other_value] : b.enumerators)
            if (name == other && value != other_value) result = true;
        break;
      case TypeKind::Array:
        result = a.count != b.count || differs(a.target, b.target);
        break;
      case TypeKind::Struct:
      case TypeKind::Union: {
        result = a.members.size() != b.members.size();
        for (size_t k = 0; !result && k < a.members.size(); ++k) {
          const Member& x = a.members[k];
          const Member& y = b.members[k];
          result = x.name != y.name || x.offset != y.offset || x.bit_size != y.bit_size || x.bit_offset != y.bit_offset ||
                   differs(x.type, y.type);
        }
        break;
      }
      default:
        break;  // pointers are 8 bytes whatever they point to
    }
  }
  memo_[{i, j}] = result;
  return result;
}

int TypeComparison::counterpart(int old_index) const {
  const Type& t = old_.at(old_index);
  if (t.name.empty()) return -1;
  if (renamed_)
    if (auto it = renamed_->find(t.name); it != renamed_->end()) return new_.find(it->second);
  return new_.find(t.name);
}

int TypeComparison::changed(int old_index) const {
  const Type& t = old_.at(old_index);
  if ((t.kind != TypeKind::Struct && t.kind != TypeKind::Union) || t.name.empty()) return -1;
  const int j = counterpart(old_index);
  return j >= 0 && differs(old_index, j) ? j : -1;
}

std::string records_name(const Type& t) {
  const bool tagged = t.name.starts_with("struct ") || t.name.starts_with("union ");
  return tagged ? t.name : (t.kind == TypeKind::Union ? "union " : "struct ") + t.name;
}

std::vector<int> untyped_array_types(const TypeTable& types) {
  std::vector<int> out;
  for (int i = 0; i < static_cast<int>(types.types.size()); ++i) {
    const Type& t = types.at(i);
    if (t.kind == TypeKind::Pointer && t.target >= 0 && types.at(t.target).kind == TypeKind::Pointer &&
        types.at(t.target).target < 0)
      out.push_back(i);
  }
  return out;
}

std::vector<bool> TypeComparison::reaches_change(const std::vector<std::pair<int, int>>& declared,
                                                 const std::vector<int>& seeds) const {
  std::vector<bool> targets(old_.types.size());
  for (size_t i = 0; i < targets.size(); ++i) targets[i] = changed(static_cast<int>(i)) >= 0;
  for (int i : seeds) targets[static_cast<size_t>(i)] = true;
  return reaches(std::move(targets), declared);
}

std::vector<bool> TypeComparison::reaches(std::vector<bool> out, const std::vector<std::pair<int, int>>& declared) const {
  const int n = static_cast<int>(old_.types.size());
  // A fixed point: structs reach themselves through pointers.
  for (bool grew = true; grew;) {
    grew = false;
    for (int i = 0; i < n; ++i) {
      if (out[i]) continue;
      const Type& t = old_.at(i);
      bool now = (t.kind == TypeKind::Pointer || t.kind == TypeKind::Array) && t.target >= 0 && out[t.target];
      for (const auto& m : t.members) now = now || out[m.type];
      for (const auto& [container, pointee] : declared) now = now || (container == i && out[pointee]);
      if (now) out[i] = grew = true;
    }
  }
  return out;
}

std::vector<std::pair<uint64_t, uint64_t>> DataPlan::FrameHolder::live(Places which) const {
  auto wanted = [which](const LocalPlace& place) {
    switch (which) {
      case Places::All: return true;
      case Places::Unknown: return place.kind == LocalPlace::Kind::Unknown;
      case Places::CallClobbered: return place.dead_across_calls();
      case Places::KeptOverCalls: return !place.dead_across_calls();
    }
    return true;
  };
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const auto& local : locals)
    for (const auto& range : local.live)
      if (wanted(range.place)) out.emplace_back(range.start, range.end);
  return out;
}

std::string DataDirective::text() const {
  std::string out = kind == Kind::PointsTo     ? "GRAFT_POINTS_TO("
                    : kind == Kind::PointsInto ? "GRAFT_POINTS_INTO("
                    : kind == Kind::Opaque     ? "GRAFT_OPAQUE("
                    : kind == Kind::GlobalPointsTo ? "GRAFT_GLOBAL_POINTS_TO("
                    : kind == Kind::GlobalOpaque   ? "GRAFT_GLOBAL_OPAQUE("
                    : kind == Kind::Tail           ? "GRAFT_TAIL("
                    : kind == Kind::FramesOnly     ? "GRAFT_FRAMES_ONLY("
                    : kind == Kind::Transform      ? "GRAFT_TRANSFORM("
                    : kind == Kind::Retypes        ? "GRAFT_RETYPES("
                                               : "GRAFT_UNION_MEMBER(";
  for (size_t k = 0; k < args.size(); ++k) out += (k ? ", " : "") + args[k];
  return out + ")";
}

std::vector<std::string> DataPlan::retyped_globals() const {
  std::vector<std::string> out;
  for (const auto& r : roots)
    if (r.new_type >= 0) out.push_back(r.identity);
  return out;
}

namespace {

// Where a stopped frame's local can be read whatever its depth: in memory
// at the CFA, or at or in a register the unwinder recovers in callers too
// (rsp and the callee-saved rbx, rbp, r12-r15). Only pointers are roots
// (a changed struct by value in a frame would have to be transformed there).
bool readable_in_every_frame(const LocalPlace& place) {
  if (place.kind == LocalPlace::Kind::AtCfaOffset) return true;
  const int r = place.reg;
  return place.known() && (r == 3 || r == 6 || r == 7 || (r >= 12 && r <= 15));
}

// The place graft keeps for a pointer local: where every frame can read it,
// a register that no frame waiting for a call still holds, or unknown.
LocalPlace place_for_frames(const LocalPlace& place, bool pointer) {
  if (pointer && readable_in_every_frame(place)) return place;
  if (place.kind == LocalPlace::Kind::InRegister && place.reg >= 0 && place.reg <= 11 && place.reg != 3 &&
      place.reg != 6 && place.reg != 7)
    return LocalPlace{LocalPlace::Kind::InCallClobberedRegister, place.reg, 0};
  return LocalPlace{};
}

// How the refusal of untyped members or globals points to the skeleton:
// up to kQuestionsInFull are said in full, more by name only.
constexpr const char* kQuestionsHint = "graft diff --questions FILE writes them as a file to edit";
constexpr const char* kQuestionsFile =
    "graft diff --questions FILE writes each with what the records say of it and the two lines that settle it";
constexpr size_t kQuestionsInFull = 4;
// What settles them with no declaration, for a later release: the running build must have been made with tags.
constexpr const char* kHeapTypesHint =
    " (untyped members need none where the running build was made with graft-cc --graft-heap-types=on: the heap's "
    "tags tell what they hold at the commit);";

class Planner {
 public:
  Planner(const TypeTable& o, const TypeTable& n, const std::function<std::string(const Variable&, bool)>& identity_of,
          const std::function<std::string(uint64_t)>& function_at, const std::vector<DataDirective>& directives,
          const MemberFacts* facts, DeclarationQuestions* questions)
      : old_(o), new_(n), compare_(o, n, &renamed_), identity_of_(identity_of), function_at_(function_at), directives_(directives),
        facts_(facts), questions_(questions) {}

  Result<DataPlan> run() {
    for (const auto& d : directives_)
      if (d.kind == DataDirective::Kind::Transform && !d.args.empty()) user_transformed_.insert("struct " + d.args[0]);
      else if (d.kind == DataDirective::Kind::Tail && d.args.size() == 2) tails_.insert({"struct " + d.args[0], d.args[1]});
    GRAFT_TRY(find_renamed_structs());
    GRAFT_TRY(check_homonyms_pair());
    for (const auto& [name, i] : old_.named) {
      const int j = compare_.counterpart(i);
      if (j < 0 || old_.at(i).incomplete || new_.at(j).incomplete || !compare_.differs(i, j)) continue;
      for (const auto& a : {&old_.ambiguous, &new_.ambiguous})
        if (std::find(a->begin(), a->end(), name) != a->end())
          return make_error("{} changed, and two source files define different types of that name: graft cannot "
                            "tell which objects are which; rename one of them", name);
      TypeChange change{name, i, j, {}};
      if (renamed_.count(name)) change.details.push_back("renamed " + renamed_.at(name) + " in the new version");
      GRAFT_TRY(explain(i, j, name, change.details));
      changes_.push_back(std::move(change));
    }
    GRAFT_TRY(resolve_directives());
    GRAFT_TRY(find_roots());
    if (changes_.empty() && roots_.empty()) return DataPlan{};
    GRAFT_TRY(check_reachable());
    DataPlan plan;
    std::vector<int*> old_refs, new_refs;
    for (auto& c : changes_) c.hides = hideable_changes().count(c.old_type) > 0;
    plan.changes = changes_;
    plan.roots = roots_;
    for (auto& c : plan.changes) {
      old_refs.push_back(&c.old_type);
      new_refs.push_back(&c.new_type);
    }
    for (auto& r : plan.roots) {
      old_refs.push_back(&r.old_type);
      new_refs.push_back(&r.new_type);
    }
    plan.number_members = number_members_;
    for (auto& [type, offset] : plan.number_members) old_refs.push_back(&type);
    plan.frame_holders = frame_holders();
    for (auto& h : plan.frame_holders)
      for (auto& local : h.locals) old_refs.push_back(&local.type);
    plan.declared_pointers = pointers_;
    for (auto& p : plan.declared_pointers) old_refs.insert(old_refs.end(), {&p.container, &p.pointee});
    plan.declared_union_members = union_members_;
    for (auto& u : plan.declared_union_members) old_refs.insert(old_refs.end(), {&u.container, &u.member_type});
    plan.untyped_globals = untyped_globals_;
    for (auto& g : plan.untyped_globals) old_refs.push_back(&g.pointee);
    std::tie(plan.kernel_data_pointee, plan.kernel_data_source) = kernel_data();
    if (plan.kernel_data_pointee >= 0) {
      old_refs.push_back(&plan.kernel_data_pointee);
      plan.notes.push_back(plan.kernel_data_source);
    }
    plan.tails.assign(tailed_.begin(), tailed_.end());
    for (auto& t : plan.tails) old_refs.push_back(&t);
    plan.untyped_arrays = untyped_arrays();
    plan.arrays_by_heap_type = arrays_by_heap_type();
    plan.heap_types = told_heap_types();
    for (auto& h : plan.heap_types) old_refs.push_back(&h.type);
    plan.untyped_members = untyped_;
    for (auto& u : plan.untyped_members) {
      old_refs.push_back(&u.container);
      for (auto& k : u.holds) old_refs.push_back(&k);
      for (auto& k : u.family) old_refs.push_back(&k);
      if (u.in_heap >= 0) old_refs.push_back(&u.in_heap);
      for (auto& c : u.per_container) {
        old_refs.push_back(&c.pointee);
        if (c.global.empty()) old_refs.push_back(&c.container);
      }
    }
    // The new counterparts of every old named aggregate the traversal may meet.
    std::vector<int> counterparts;
    for (const auto& [name, i] : old_.named)
      if (int j = compare_.counterpart(i); j >= 0) counterparts.push_back(j);
    for (auto& j : counterparts) new_refs.push_back(&j);
    plan.old_types = subset(old_, old_refs);
    plan.new_types = subset(new_, new_refs);
    plan.notes.insert(plan.notes.begin(), notes_.begin(), notes_.end());
    plan.renamed = renamed_;
    return plan;
  }

 private:
  // Functions of the old build with a local that may lead to a changed
  // struct, where it is live (offsets from the entry) and where its value is
  // there (types in old_). A changed struct reached only from frames
  // (frame_only) is reached by a local that holds it or points to it, not
  // through memory: a frame whose locals lead to it only through members
  // (main's cycle) holds none.
  std::vector<DataPlan::FrameHolder> frame_holders() {
    std::vector<bool> frame_only_type(old_.types.size()), targets(old_.types.size());
    bool any_frame_only = false;
    for (size_t i = 0; i < old_.types.size(); ++i) {
      if (compare_.changed(static_cast<int>(i)) < 0) continue;
      frame_only_type[i] = frame_only(static_cast<int>(i));
      any_frame_only |= frame_only_type[i];
      targets[i] = !frame_only_type[i];
    }
    for (int i : untyped_containers()) targets[static_cast<size_t>(i)] = true;
    const std::vector<bool> leads = any_frame_only ? compare_.reaches(std::move(targets), declared_edges()) : leads_;
    auto holds_directly = [&](int type) {
      for (int depth = 0; type >= 0 && depth < 16; ++depth) {
        if (frame_only_type[static_cast<size_t>(type)]) return true;
        const Type& t = old_.at(type);
        if (t.kind != TypeKind::Pointer && t.kind != TypeKind::Array) return false;
        type = t.target;
      }
      return false;
    };
    std::vector<DataPlan::FrameHolder> out;
    for (const auto& f : old_.frames) {
      DataPlan::FrameHolder holder{function_at_(f.address), {}};
      for (const auto& local : f.locals) {
        if (local.type < 0 || !(leads[local.type] || (any_frame_only && holds_directly(local.type)))) continue;
        DataPlan::FrameHolder::Local held{local.name, local.type, {}};
        const bool pointer = old_.at(local.type).kind == TypeKind::Pointer;
        for (const auto& range : local.live)
          if (range.start >= f.address && range.end > range.start)
            held.live.push_back({range.start - f.address, range.end - f.address,
                                 place_for_frames(range.place, pointer)});
        if (!held.live.empty()) holder.locals.push_back(std::move(held));
      }
      if (!holder.identity.empty() && !holder.locals.empty()) out.push_back(std::move(holder));
    }
    return out;
  }

  // What epoll's data words hold, which the kernel keeps and hands back as
  // given (beanstalkd's Socket *, nginx's connection): graft-cc's records
  // of every store into struct epoll_event.data, when some change can hide
  // at all. One struct, and every unit that uses struct epoll_event
  // recorded: that struct's old type, and why; else -1 (the words are then
  // only mapped and checked at the commit, migrate.cpp's kernel_word_moves).
  const std::pair<int, std::string>& kernel_data() {
    if (!kernel_data_) kernel_data_ = settle_kernel_data();
    return *kernel_data_;
  }
  std::pair<int, std::string> settle_kernel_data() {
    if (!facts_ || hideable_changes().empty()) return {-1, ""};
    const auto epoll_event = indices_of("struct epoll_event");
    if (epoll_event.empty()) return {-1, ""};
    for (int i : epoll_event)
      if (unit_lacking(i, &MemberFacts::recorded)) return {-1, ""};
    MemberHolds holds = facts_->holds("struct epoll_event", 4, foreign_callers());
    const std::set<int> types = recorded_types(holds);
    if (!holds.unknown.empty() || types.size() != 1) return {-1, ""};
    return {*types.begin(), recorded_to_hold("epoll's data words (struct epoll_event.data)", *types.begin(), holds) +
                                ": followed at the commit from every watch, and set to the new address where "
                                "what it points to moves"};
  }

  // A pointer whose pointee's tag changed (beanstalkd 1.12: `struct tube *`
  // -> `struct Tube *`), as a member of a struct both versions name or a
  // global both define: graft pairs old and new structs by name, so such a
  // struct is paired with its new name (renamed_), its instances converted
  // member by member, when the old name is gone from the new version, the
  // new one was not in the old, and no other pointer pairs either
  // differently. Else, if the layouts differ, refused: the objects would
  // keep the old layout under the new code. (A struct held by value is
  // compared member by member and converted, whatever its tag.)
  Status find_renamed_structs() {
    std::map<std::string, std::string> pairs, back;  // old name -> new, new -> old
    std::set<std::pair<int, int>> seen;
    std::vector<std::tuple<int, int, std::string>> found;  // old, new, where
    auto check = [&](int old_type, int new_type, const std::string& where) {
      const int from = pointee_struct(old_, old_type), to = pointee_struct(new_, new_type);
      if (from < 0 || to < 0) return;
      const Type& a = old_.at(from);
      const Type& b = new_.at(to);
      if (a.name.empty() || b.name.empty() || a.name == b.name || a.incomplete || b.incomplete) return;
      if (seen.insert({from, to}).second) found.emplace_back(from, to, where);
    };
    for (const auto& [name, i] : old_.named) {
      const int j = new_.find(name);
      if (j < 0 || old_.at(i).kind != TypeKind::Struct || new_.at(j).kind != TypeKind::Struct) continue;
      for (const auto& x : old_.at(i).members)
        for (const auto& y : new_.at(j).members)
          if (!x.name.empty() && x.name == y.name) check(x.type, y.type, fmt::format("{}.{}", old_.spell(i), x.name));
    }
    std::map<std::string, int> after;
    for (const auto& v : new_.variables) after.emplace(v.key, v.type);
    for (const auto& v : old_.variables)
      if (auto it = after.find(v.key); it != after.end() && v.type >= 0 && it->second >= 0)
        check(v.type, it->second, "global " + v.key);
    std::set<std::string> conflicting;
    for (const auto& [from, to, where] : found) {
      const std::string& a = old_.at(from).name;
      const std::string& b = new_.at(to).name;
      const bool gone = new_.find(a) < 0 && old_.find(b) < 0;
      auto [paired, added] = pairs.emplace(a, b);
      auto [reverse, fresh] = back.emplace(b, a);
      if (!gone || paired->second != b || reverse->second != a) conflicting.insert(a);
    }
    for (const auto& [from, to, where] : found) {
      const Type& a = old_.at(from);
      const Type& b = new_.at(to);
      if (!conflicting.count(a.name)) continue;
      if (!compare_.differs(from, to)) continue;  // read alike under either name
      return make_error("{} pointed to a {} and now points to a {}, whose layout differs ({}), and graft cannot pair "
                        "them as a renamed struct (one of the names is in both versions, or pointers pair them "
                        "differently): the objects it points to would keep the old layout under the new code; such "
                        "a release needs a restart; nothing was written",
                        where, old_.spell(from), new_.spell(to),
                        a.size != b.size ? fmt::format("{} -> {} bytes", a.size, b.size) : std::string("its members"));
    }
    for (const auto& [a, b] : pairs)
      if (!conflicting.count(a)) renamed_[a] = b;
    return ok();
  }
  // The struct a pointer leads to (through arrays and pointers to pointers),
  // or -1: a struct held by value is not a pointee.
  static int pointee_struct(const TypeTable& types, int i) {
    bool through_pointer = false;
    for (int hops = 0; i >= 0 && hops < 8; ++hops) {
      const Type& t = types.at(i);
      if (t.kind == TypeKind::Struct) return through_pointer ? i : -1;
      if (t.kind != TypeKind::Pointer && t.kind != TypeKind::Array) return -1;
      through_pointer = through_pointer || t.kind == TypeKind::Pointer;
      i = t.target;
    }
    return -1;
  }

  // The explain lines of one changed aggregate; refuses a change no default transformer can make.
  Status explain(int i, int j, const std::string& where, std::vector<std::string>& out) {
    const Type& a = old_.at(i);
    const Type& b = new_.at(j);
    // A transformer of the user's goes by the struct's new name (a renamed one's differs).
    const std::string new_name = renamed_.count(where) ? renamed_.at(where) : where;
    if (a.kind == TypeKind::Union)
      return make_error("{} changed: a union's live member cannot be known, so no transformer can be generated; "
                        "nothing was written", where);
    if (a.size != b.size) out.push_back(fmt::format("size {} -> {} bytes", a.size, b.size));
    const auto before = fields_of(old_, i);
    const auto after = fields_of(new_, j);
    for (const auto& f : after) {
      auto it = std::find_if(before.begin(), before.end(), [&](const Field& o) { return o.name == f.name && !f.name.empty(); });
      if (it == before.end()) {
        out.push_back(fmt::format("{}: added at offset {} ({}), set to zero", f.name.empty() ? "<anonymous>" : f.name,
                                  f.offset, new_.spell(f.type)));
        continue;
      }
      const Type& was = old_.at(it->type);
      // A flexible array member that becomes a pointer (GRAFT_TAIL's case).
      const bool flexible_to_pointer =
          was.kind == TypeKind::Array && was.count == 0 && new_.at(f.type).kind == TypeKind::Pointer;
      if (flexible_to_pointer && (tails_.count({where, f.name}) || tails_.count({new_name, f.name}))) {
        out.push_back(fmt::format("{}: the flexible array becomes a pointer to its elements, kept right after the "
                                  "struct (GRAFT_TAIL): graft moves them with each one and sets it", f.name));
        tailed_.insert(i);
        continue;
      }
      if (!compare_.convertible(it->type, f.type)) {
        // The user's transformer for it (by its new name, if renamed) sets what the default cannot.
        if (user_transformed_.count(where) || user_transformed_.count(new_name)) {
          out.push_back(fmt::format("{}: {} -> {}, which no default transformer converts: left zero for your "
                                    "transformer to set", f.name, old_.spell(it->type), new_.spell(f.type)));
          continue;
        }
        const std::string tag = transformable_tag(new_name);
        return make_error("{} changed: field {} goes from {} to {}, which no default transformer converts; {}{}"
                          "nothing was written", where, f.name, old_.spell(it->type), new_.spell(f.type),
                          flexible_to_pointer && !tag.empty()
                              ? fmt::format("if the new version keeps the elements right after the struct and points "
                                            "{} to them, declare so in a --transform file: GRAFT_TAIL({}, {}); else ",
                                            f.name, transformable_tag(where), f.name)
                              : std::string(),
                          tag.empty() ? std::string()
                                      : fmt::format("set it in a transformer of yours (GRAFT_TRANSFORM({}, from, to) "
                                                    "in a --transform file; graft diff --transform-header writes the "
                                                    "old layout it reads); ", tag));
      }
      std::vector<std::string> what;
      if (it->offset != f.offset || it->bit_offset != f.bit_offset)
        what.push_back(fmt::format("moves from offset {} to {}", it->offset, f.offset));
      if (compare_.differs(it->type, f.type) || it->bit_size != f.bit_size) {
        const std::string from = old_.spell(it->type) + (it->bit_size ? fmt::format(":{}", it->bit_size) : "");
        const std::string to = new_.spell(f.type) + (f.bit_size ? fmt::format(":{}", f.bit_size) : "");
        const Type& ft = new_.at(f.type);
        what.push_back(from == to && ft.kind == TypeKind::Struct ? "its type " + to + " changed: transformed field by field"
                       : from == to && ft.kind == TypeKind::Enum ? "enumerators renumbered: mapped by name"
                       : fmt::format("retyped {} -> {}: converted", from, to));
        if (ft.kind == TypeKind::Union)
          return make_error("{} changed: field {} is a union that changed; no transformer can be generated; "
                            "nothing was written", where, f.name);
      }
      if (!what.empty()) {
        std::string line = f.name + ": ";
        for (size_t k = 0; k < what.size(); ++k) line += (k ? ", " : "") + what[k];
        out.push_back(line);
      }
    }
    for (const auto& o : before) {
      if (o.name.empty() || std::any_of(after.begin(), after.end(), [&](const Field& f) { return f.name == o.name; }))
        continue;
      // A new member of the same type in its place (the same rank among the members): perhaps the same one
      // renamed, whose value would be lost.
      const auto rank = &o - before.data();
      auto renamed = rank < static_cast<long>(after.size()) ? after.begin() + rank : after.end();
      // Of one type: spelled alike, or a struct the release renames (struct ms -> struct Ms).
      auto same_type = [&](int a, int b) {
        const std::string was = old_.spell(a), now = new_.spell(b);
        return was == now || (renamed_.count(was) && renamed_.at(was) == now);
      };
      if (renamed != after.end() &&
          (renamed->bit_size || o.bit_size || !same_type(o.type, renamed->type) ||
           std::any_of(before.begin(), before.end(), [&](const Field& b) { return b.name == renamed->name; })))
        renamed = after.end();
      if (renamed == after.end()) {
        out.push_back(fmt::format("{}: removed, its value is dropped", o.name));
        continue;
      }
      const auto tag = transformable_tag(new_name);
      out.push_back(fmt::format("{}: removed, its value is dropped; {} ({}) is new in its place: if the release "
                                "renamed {} to {}, the value is lost (the new one starts at zero){}",
                                o.name, renamed->name, new_.spell(renamed->type), o.name, renamed->name,
                                tag.empty() ? std::string()
                                            : fmt::format(": carry it in a transformer, GRAFT_TRANSFORM({}, from, to) "
                                                          "{{ to->{} = from->{}; }}", tag, renamed->name, o.name)));
    }
    return ok();
  }

  // A member named by a path ("value", "u.ptr") in an aggregate of old_,
  // anonymous members looked through.
  struct Located {
    uint64_t offset = 0;
    int type = -1;
    uint32_t bit_size = 0;
  };
  std::optional<Located> find_member(int type, const std::string& name) const {
    const Type& t = old_.at(type);
    if (t.kind != TypeKind::Struct && t.kind != TypeKind::Union) return std::nullopt;
    for (const auto& m : t.members) {
      if (!name.empty() && m.name == name) return Located{m.offset, m.type, m.bit_size};
      if (m.name.empty())
        if (auto inner = find_member(m.type, name)) return Located{m.offset + inner->offset, inner->type, inner->bit_size};
    }
    return std::nullopt;
  }
  Result<Located> member_at(const DataDirective& d, int container, const std::string& path, const char* role) const {
    Located at{0, container, 0};
    for (size_t start = 0;;) {
      const size_t dot = path.find('.', start);
      const std::string name = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      auto found = find_member(at.type, name);
      if (!found)
        return refuse(d, "{} has no member {} (the {}); name one of its members as the old version declares them",
                      old_.spell(at.type), name, role);
      at = {at.offset + found->offset, found->type, found->bit_size};
      if (dot == std::string::npos) return at;
      start = dot + 1;
    }
  }
  // A struct of the old version, named by its tag, or by its typedef name
  // if it has no tag (typedef struct { ... } THREAD;).
  Result<int> struct_named(const DataDirective& d, const std::string& tag, const char* role) const {
    int i = old_.find("struct " + tag);
    if (i < 0) i = old_.find(tag);
    if (i < 0 || old_.at(i).kind != TypeKind::Struct || old_.at(i).incomplete)
      return refuse(d, "the old version defines no struct {} (the {}); write the tag of a struct it defines (or the "
                    "typedef name of one without a tag)",
                    tag, role);
    return i;
  }
  template <typename... Args>
  Error refuse(const DataDirective& d, fmt::format_string<Args...> format, Args&&... args) const {
    return make_error(format, std::forward<Args>(args)...).context(d.where + ": " + d.text());
  }

  // Each directive of the --transform file, checked against the old types
  // (what is in memory) and resolved to offsets and types.
  Status resolve_directives() {
    for (const auto& d : directives_) {
      if (d.kind == DataDirective::Kind::Transform) continue;  // user_transformed_
      if (d.kind == DataDirective::Kind::Retypes) {
        if (d.args.size() != 2) return refuse(d, "write GRAFT_RETYPES(function, struct) on one line");
        GRAFT_ASSIGN(const int i, struct_named(d, d.args[1], "struct"));
        const std::string key = records_name(i);
        if (!facts_ || (!facts_->made(key).count("a cast to it in " + d.args[0]) && !facts_->returns(d.args[0])))
          return refuse(d, "graft-cc's records show no cast to {} in {}, and no value {} returns; write the function "
                        "the refusal names", old_.spell(i), d.args[0], d.args[0]);
        retypes_[{key, d.args[0]}] = d.text() + " at " + d.where;
        continue;
      }
      if (d.kind == DataDirective::Kind::Tail) {
        if (d.args.size() != 2) return refuse(d, "write GRAFT_TAIL(struct, member) on one line");
        const auto used = std::find_if(changes_.begin(), changes_.end(), [&](const TypeChange& c) {
          const std::string named = "struct " + d.args[0];
          return tailed_.count(c.old_type) &&
                 (c.name == named || (renamed_.count(c.name) && renamed_.at(c.name) == named));
        });
        if (used == changes_.end())
          return refuse(d, "no struct {} of the release turns a flexible array member {}[] into a pointer {}: it "
                           "applies to such a member only", d.args[0], d.args[1], d.args[1]);
        continue;
      }
      if (d.kind == DataDirective::Kind::FramesOnly) {
        if (d.args.size() != 1) return refuse(d, "write GRAFT_FRAMES_ONLY(struct) on one line");
        GRAFT_ASSIGN(const int i, struct_named(d, d.args[0], "struct"));
        declared_frames_only_[records_name(i)] = d.text() + " at " + d.where;
        continue;
      }
      if (d.kind == DataDirective::Kind::GlobalPointsTo || d.kind == DataDirective::Kind::GlobalOpaque) {
        const bool opaque = d.kind == DataDirective::Kind::GlobalOpaque;
        if (d.args.size() != (opaque ? 1u : 2u))
          return refuse(d, "write {} on one line",
                        opaque ? "GRAFT_GLOBAL_OPAQUE(global)" : "GRAFT_GLOBAL_POINTS_TO(global, pointee)");
        const Variable* global = untyped_global_named(d.args[0]);
        if (!global)
          return refuse(d, "the old version has no global {} that is a void * or an 8-byte integer", d.args[0]);
        int pointee = -1;
        if (!opaque) {
          GRAFT_ASSIGN(pointee, struct_named(d, d.args[1], "pointee"));
        }
        declared_globals_[global->key] = {pointee, d.text() + " at " + d.where};
        continue;
      }
      if (d.kind == DataDirective::Kind::Opaque) {
        if (d.args.size() != 2) return refuse(d, "write GRAFT_OPAQUE(container, field) on one line");
        GRAFT_ASSIGN(const int container, struct_named(d, d.args[0], "container"));
        GRAFT_ASSIGN(Located field, member_at(d, container, d.args[1], "field"));
        // A pointer graft does not follow, or a union it does not look into
        // (one whose live member no tag says, as its refusal suggests).
        const TypeKind kind = old_.at(field.type).kind;
        if (kind != TypeKind::Pointer && kind != TypeKind::Union)
          return refuse(d, "{}.{} is {}, neither a pointer nor a union", old_.spell(container), d.args[1],
                        old_.spell(field.type));
        opaque_.emplace(std::pair{container, field.offset}, d.text() + " at " + d.where);
        continue;
      }
      if (d.kind == DataDirective::Kind::PointsTo || d.kind == DataDirective::Kind::PointsInto) {
        const bool into = d.kind == DataDirective::Kind::PointsInto;
        if (d.args.size() != (into ? 4u : 3u))
          return refuse(d, "write {} on one line",
                        into ? "GRAFT_POINTS_INTO(container, field, pointee, member)" : "GRAFT_POINTS_TO(container, field, pointee)");
        DeclaredPointer p;
        GRAFT_ASSIGN(p.container, struct_named(d, d.args[0], "container"));
        GRAFT_ASSIGN(Located field, member_at(d, p.container, d.args[1], "field"));
        const Type& ft = old_.at(field.type);
        const bool word = ft.kind == TypeKind::Pointer ||
                          ((ft.kind == TypeKind::Signed || ft.kind == TypeKind::Unsigned) && ft.size == 8);
        if (!word || field.bit_size)
          return refuse(d, "{}.{} is {} ({} bytes), not a pointer-sized member: the field must hold an address "
                        "(void *, another pointer, uintptr_t)", old_.spell(p.container), d.args[1], old_.spell(field.type),
                        ft.size);
        p.offset = field.offset;
        GRAFT_ASSIGN(p.pointee, struct_named(d, d.args[2], "pointee"));
        if (into) {
          GRAFT_ASSIGN(Located member, member_at(d, p.pointee, d.args[3], "member of the pointee"));
          if (member.type != p.container)
            return refuse(d, "{}.{} is {}, not {}: the field points to such a member inside a {}",
                          old_.spell(p.pointee), d.args[3], old_.spell(member.type), old_.spell(p.container),
                          old_.spell(p.pointee));
          p.into = member.offset;
          p.interior = true;
          // The pointers into it follow the member where it moves (the
          // commit rewrites them); a member the release drops has nowhere to go.
          if (const int j = compare_.changed(p.pointee); j >= 0)
            if (std::none_of(new_.at(j).members.begin(), new_.at(j).members.end(),
                             [&](const Member& m) { return m.name == d.args[3]; }))
              return refuse(d, "the new version drops {}.{}: the pointers into it would lead nowhere; a release that "
                            "takes {} out of this list needs a restart", old_.spell(p.pointee), d.args[3],
                            old_.spell(p.pointee));
        }
        p.source = d.text() + " at " + d.where;
        pointers_.push_back(std::move(p));
        continue;
      }
      if (d.args.size() != 5)
        return refuse(d, "write GRAFT_UNION_MEMBER(container, union_field, tag_field, tag_value, member) on one line");
      DeclaredUnionMember u;
      GRAFT_ASSIGN(u.container, struct_named(d, d.args[0], "container"));
      GRAFT_ASSIGN(Located field, member_at(d, u.container, d.args[1], "union field"));
      if (old_.at(field.type).kind != TypeKind::Union)
        return refuse(d, "{}.{} is {}, not a union", old_.spell(u.container), d.args[1], old_.spell(field.type));
      u.union_offset = field.offset;
      GRAFT_ASSIGN(Located tag, member_at(d, u.container, d.args[2], "tag field"));
      const Type& tt = old_.at(tag.type);
      const bool integer = tt.kind == TypeKind::Signed || tt.kind == TypeKind::Unsigned || tt.kind == TypeKind::Bool ||
                           tt.kind == TypeKind::Enum;
      if (!integer || tag.bit_size || (tt.size != 1 && tt.size != 2 && tt.size != 4 && tt.size != 8))
        return refuse(d, "{}.{} is {}: the tag must be an integer or enum member (not a bit-field)",
                      old_.spell(u.container), d.args[2], old_.spell(tag.type));
      u.tag_offset = tag.offset;
      u.tag_size = static_cast<uint32_t>(tt.size);
      u.tag_signed = tt.kind == TypeKind::Signed || tt.kind == TypeKind::Enum;
      GRAFT_ASSIGN(u.tag_value, tag_value(d, tag.type, d.args[3]));
      GRAFT_ASSIGN(Located member, member_at(d, field.type, d.args[4], "live member"));
      u.member_offset = u.union_offset + member.offset;
      u.member_type = member.type;
      u.member = d.args[1] + "." + d.args[4];
      u.source = d.text() + " at " + d.where;
      for (const auto& other : union_members_) {
        if (other.container != u.container || other.union_offset != u.union_offset) continue;
        if (other.tag_offset != u.tag_offset)
          return refuse(d, "{} names another tag for the same union: one tag field decides its live member",
                        other.source);
        if (other.tag_value == u.tag_value && other.member_offset != u.member_offset)
          return refuse(d, "{} names another live member for the same tag value", other.source);
      }
      union_members_.push_back(std::move(u));
    }
    return ok();
  }

  // A tag value as written: an integer literal, or an enumerator of the old version.
  Result<int64_t> tag_value(const DataDirective& d, int tag_type, const std::string& text) const {
    std::string digits = text;
    while (!digits.empty() && (digits.back() == 'u' || digits.back() == 'U' || digits.back() == 'l' || digits.back() == 'L'))
      digits.pop_back();
    try {
      size_t used = 0;
      const int64_t v = std::stoll(digits, &used, 0);
      if (used == digits.size()) return v;
    } catch (const std::exception&) {
    }
    std::optional<int64_t> found;
    auto search = [&](const Type& t) -> Status {
      for (const auto& [name, value] : t.enumerators)
        if (name == text) {
          if (found && *found != value)
            return refuse(d, "{} names enumerators of different values in the old version; write the number", text);
          found = value;
        }
      return ok();
    };
    if (old_.at(tag_type).kind == TypeKind::Enum) GRAFT_TRY(search(old_.at(tag_type)));
    if (!found)
      for (const auto& t : old_.types)
        if (t.kind == TypeKind::Enum) GRAFT_TRY(search(t));
    if (!found)
      return refuse(d, "the tag value {} is neither an integer nor an enumerator of the old version", text);
    return *found;
  }

  std::vector<std::pair<int, int>> declared_edges() const {
    std::vector<std::pair<int, int>> out;
    for (const auto& p : pointers_) out.emplace_back(p.container, p.pointee);
    return out;
  }

  // The changed structs whose instances may be somewhere other than a
  // global of their type, with why (graft-cc's records of the old build:
  // made by a cast from another type, such as a malloc result, or as a
  // local, or in a unit that did not record it). Only those can hide behind
  // an untyped member: a global is a root, always found. Every changed
  // struct without records, or without a tag the records can name, is one.
  const std::map<int, std::string>& hideable_changes() {
    if (hideable_) return *hideable_;
    std::map<int, std::string>& out = hideable_.emplace();
    for (int i = 0; i < static_cast<int>(old_.types.size()); ++i) {
      const Type& t = old_.at(i);
      if (compare_.changed(i) < 0) continue;
      if (!facts_ || t.name.empty() || (t.kind != TypeKind::Struct && t.kind != TypeKind::Union)) {
        out[i] = "graft-cc's records cannot name it";
        continue;
      }
      if (frame_only(i)) continue;  // no pointer to one is kept in memory: nothing can hide one
      const std::string key = records_name(i);
      if (facts_->kept_untyped(key)) {
        out[i] = "its address is kept in an untyped member, argument or return value";
        continue;
      }
      if (const auto& made = facts_->made(key); !made.empty()) {
        out[i] = *made.begin() + (made.size() > 1 ? fmt::format(" and {} more", made.size() - 1) : "");
        continue;
      }
      if (!old_.defined_in.count(i)) {
        out[i] = "graft cannot tell which units use it";
        continue;
      }
      if (const std::string* unit = unit_lacking(i, &MemberFacts::instances_recorded))
        out[i] = file_name(*unit) + " was built without graft-cc's instance records";
    }
    return out;
  }

  // How graft-cc's records name an old struct or union: "struct conn", "union u", "struct THREAD".
  std::string records_name(int i) const { return graft::records_name(old_.at(i)); }
  // Whether another file defines a different struct of old type `i`'s name (TypeTable::variants).
  bool homonym(int i) const {
    const std::string name = source_name(old_.at(i).name);
    return std::any_of(old_.variants.begin(), old_.variants.end(),
                       [&](const auto& unit) { return unit.second.count(name) != 0; });
  }
  // Structs of one name that units define differently are told apart by
  // the first unit that defines each (TypeTable::variants): two builds that
  // meet them in another order would pair one build's with the other's.
  // Each pair must share a unit that defines it.
  Status check_homonyms_pair() const {
    std::set<std::string> homonyms;
    for (const auto* table : {&old_, &new_})
      for (const auto& [unit, own] : table->variants)
        for (const auto& [name, variant] : own) homonyms.insert(name);
    auto files = [](const TypeTable& table, int i) {
      std::set<std::string> out;
      if (auto it = table.defined_in.find(i); it != table.defined_in.end())
        for (const auto& unit : it->second) out.insert(file_name(unit));
      return out;
    };
    for (const auto& [name, i] : old_.named) {
      if (!homonyms.count(source_name(name)) || old_.at(i).incomplete) continue;
      const int j = compare_.counterpart(i);
      if (j < 0 || new_.at(j).incomplete) continue;
      const auto before = files(old_, i), after = files(new_, j);
      std::vector<std::string> shared;
      std::set_intersection(before.begin(), before.end(), after.begin(), after.end(), std::back_inserter(shared));
      if (shared.empty())
        return make_error("{} is defined differently by several source files, and the two builds name them in a "
                          "different order ({} in the old one, {} in the new): graft cannot pair them; link the "
                          "files in the same order in both, or rename one of the structs; nothing was written",
                          source_name(name), fmt::join(before, ", "), fmt::join(after, ", "));
    }
    return ok();
  }
  // The first unit that uses old type `i` (defined_in) whose records lack
  // what `recorded` asks (graft-cc's records at all, its instance, kept or
  // cast records), or nullptr: also when no unit is known, which the callers
  // that need one check for themselves.
  const std::string* unit_lacking(int i, bool (MemberFacts::*recorded)(const std::string&) const) const {
    auto units = old_.defined_in.find(i);
    if (units == old_.defined_in.end()) return nullptr;
    for (const auto& unit : units->second)
      if (!(facts_->*recorded)(unit)) return &unit;
    return nullptr;
  }
  static std::string file_name(const std::string& unit) { return std::filesystem::path(unit).filename().string(); }

  // A changed struct no pointer to which (or into which) is ever kept in
  // memory, as graft-cc's records of every unit that uses it say: only the
  // frames that hold one reach it (a request's script engine in nginx, on
  // the stack or from a pool, held in locals only).
  bool frame_only(int i) const {
    const Type& t = old_.at(i);
    if (t.name.empty() || (t.kind != TypeKind::Struct && t.kind != TypeKind::Union)) return false;
    const std::string key = records_name(i);
    if (declared_frames_only_.count(key)) return true;  // GRAFT_FRAMES_ONLY: the user's word
    if (!facts_) return false;
    if (!facts_->kept(key).empty() || !old_.defined_in.count(i)) return false;
    return !unit_lacking(i, &MemberFacts::kept_recorded);
  }

  // Every `void *` member of a struct that no directive covers: where a
  // changed struct may hide from the typed traversal. With graft-cc's
  // records of the old build, each such member (and each 8-byte integer
  // member, which may hold an address too) is settled by what the program
  // stores there: only one struct's address, followed like a typed pointer;
  // nothing but NULL (or a number), or only structs that lead to no change,
  // dismissed; a library's struct (FILE's _lock), never asked about: checked
  // at the commit; several known structs one of which leads to a change:
  // checked at the commit, value by value. What the records cannot settle
  // (a value of unknown origin, a store by code not built with graft-cc) is
  // refused, every member at once, each with the directive that settles it,
  // and only when some changed struct can hide at all (hideable_changes).
  // Without records: checked at the commit.
  Status find_untyped_members() {
    if (changes_.empty()) return ok();
    // No changed struct can be anywhere but in its globals: no untyped
    // member can hide one, and none needs a word from the user.
    if (facts_) {
      if (hideable_changes().empty()) {
        notes_.push_back("untyped members (void *, an integer that may hold an address) are neither asked about nor "
                         "checked: graft-cc's records show every changed struct lives only in globals of its type, "
                         "which graft finds and transforms, or only in the frames that hold it, so none can hide "
                         "behind one");
        return ok();
      }
    }
    std::set<std::pair<int, uint64_t>> declared;
    for (const auto& [member, source] : opaque_) declared.insert(member);
    for (const auto& p : pointers_) declared.insert({p.container, p.offset});
    const MemberFacts::ForeignCaller foreign_caller = foreign_callers();
    struct Unsettled {
      int container = -1;
      uint64_t offset = 0;
      std::string field;
      std::set<int> types;
      MemberHolds holds;
    };
    std::vector<Unsettled> unsettled;
    for (int i = 0; i < static_cast<int>(old_.types.size()); ++i) {
      const Type& t = old_.at(i);
      if (t.kind != TypeKind::Struct || t.incomplete) continue;
      for (const auto& m : t.members) {
        // A union of a void * and numbers (redis's dictEntry.v: val, u64, s64, d) holds what its void * does.
        const Member* word = union_word(m.type);
        if (!word && !untyped_word(m.type)) continue;
        if (m.bit_size || declared.count({i, m.offset}) || (word && old_.system_types.count(i))) continue;
        const bool void_pointer = word || old_.at(m.type).kind == TypeKind::Pointer, address_integer = !void_pointer;
        const std::string field = word ? m.name + "." + word->name : m.name;  // v.val, as a directive names it
        // A library's struct (glibc's FILE): the library's own code stores
        // into it, and may store what the program hands it (libevent's
        // event_assign keeps its void * argument in struct event): no record
        // can tell, and asking would be noise, so it is checked at the
        // commit, as without records.
        if (!facts_ || t.name.empty() || m.name.empty() || old_.system_types.count(i)) {
          if (void_pointer)
            untyped_.push_back({i, m.offset, fmt::format("{}.{}", old_.spell(i), field.empty() ? "?" : field), {}, {}, {}});
          continue;
        }
        MemberHolds holds = facts_->holds(t.name, m.offset, foreign_caller);
        if (auto units = old_.defined_in.find(i); units != old_.defined_in.end()) {
          for (const auto& unit : units->second)
            if (!facts_->recorded(unit))
              holds.unknown.insert(fmt::format("{} uses {} and was not built with graft-cc",
                                               file_name(unit), old_.spell(i)));
        }
        std::set<int> types = recorded_types(holds);
        if (address_integer && types.empty()) {  // a number
          number_members_.emplace_back(i, m.offset);
          continue;
        }
        if (holds.unknown.empty() && types.empty()) continue;  // never anything but NULL
        if (holds.unknown.empty() && types.size() == 1) {
          DeclaredPointer p;
          p.container = i;
          p.offset = m.offset;
          p.pointee = *types.begin();
          p.recorded = true;
          p.source = recorded_to_hold(fmt::format("{}.{}", old_.spell(i), field), p.pointee, holds);
          pointers_.push_back(std::move(p));
          continue;
        }
        unsettled.push_back({i, m.offset, field, std::move(types), std::move(holds)});
      }
    }
    if (unsettled.empty()) return ok();
    // Several structs lead somewhere only if they lead to a change that can hide.
    const auto leads = leading_to_hiding();
    std::vector<std::pair<std::string, std::string>> asked;  // name, and the question in full
    std::optional<std::vector<bool>> reaching;  // told_by_tags', once
    for (const auto& u : unsettled) {
      if (u.holds.unknown.empty() &&
          std::none_of(u.types.begin(), u.types.end(), [&](int k) { return leads[static_cast<size_t>(k)]; }))
        continue;  // several structs, none of which leads to a change
      std::optional<std::string> untold;  // why the heap's type tags cannot tell what it holds
      if (facts_->any_heap_typed()) {
        if (!reaching) reaching = reaching_through_untyped(unsettled);
        const std::string subject = fmt::format("{}.{}", old_.spell(u.container), u.field);
        untold = not_told_by_tags(u.types, !u.holds.unknown.empty(), *reaching);
        if (!untold) {
          UntypedMember member{u.container, u.offset, subject, {u.types.begin(), u.types.end()}, {}, {}};
          member.by_heap_type = true;
          notes_.push_back(told_by_tags_note(subject));
          untyped_.push_back(std::move(member));
          continue;
        }
      }
      if (u.holds.unknown.empty()) {
        // Several structs, known: each value is checked at the commit to be
        // an object the typed traversal reached as one of them (beanstalkd's
        // Socket.x, its own Conn or the Server), else the update is refused.
        UntypedMember member{u.container, u.offset, fmt::format("{}.{}", old_.spell(u.container), u.field),
                             {u.types.begin(), u.types.end()}, {}, {}};
        std::string which;
        for (int k : u.types) which += (which.empty() ? "" : " or ") + old_.spell(k);
        if (per_container(member, foreign_caller)) {
          untyped_.push_back(std::move(member));
          continue;
        }
        member.in_heap = only_outside_globals(u.types);
        notes_.push_back(fmt::format("{} holds {}, as graft-cc's records say: checked at the commit, value by value, "
                                     "to be one the typed pointers reach (one that is not refuses the update){}",
                                     member.name, which,
                                     member.in_heap < 0 ? std::string()
                                                        : fmt::format("; a value in the heap is followed as a {}: the "
                                                                      "others live only in globals of their type",
                                                                      old_.spell(member.in_heap))));
        untyped_.push_back(std::move(member));
        continue;
      }
      const std::string subject = fmt::format("{}.{}", old_.spell(u.container), u.field);
      if (auto why = beyond_declarations(u.types, u.holds, leads)) {
        if (untold) *why += "; the heap's type tags cannot tell either: " + *untold;
        unanswerable_.push_back({subject, *why});
        ask(subject, u.holds, u.types, {});
        continue;
      }
      std::string what = what_it_holds(u.types, u.holds);
      if (untold) what += "; the heap's type tags cannot tell: " + *untold;
      const std::string name = directive_name(old_.at(u.container).name);
      asked.push_back({subject, fmt::format("{} ({}): GRAFT_POINTS_TO({}, {}, STRUCT); or, if it never holds a changed "
                                            "struct, GRAFT_OPAQUE({}, {});",
                                            subject, what, name, u.field, name, u.field)});
      ask(subject, u.holds, u.types,
          {fmt::format("GRAFT_POINTS_TO({}, {}, STRUCT);", name, u.field), fmt::format("GRAFT_OPAQUE({}, {});", name, u.field)});
    }
    asked_members_ = std::move(asked);
    if (facts_->any_heap_typed()) notes_.push_back(heap_types_summary());
    return ok();
  }
  // For every old type: whether it leads to a changed struct that can hide,
  // counting every untyped member as leading (what it holds may): a value
  // an untyped member holds must be told by its tag if it is one of these.
  template <typename Members>
  std::vector<bool> reaching_through_untyped(const Members& unsettled) {
    std::vector<bool> targets(old_.types.size());
    for (const auto& [i, why] : hideable_changes()) targets[static_cast<size_t>(i)] = true;
    for (const auto& u : unsettled) targets[static_cast<size_t>(u.container)] = true;
    for (const auto& u : untyped_) targets[static_cast<size_t>(u.container)] = true;
    return compare_.reaches(std::move(targets), declared_edges());
  }
  // Why the heap's type tags cannot tell what a member holds, or nullopt:
  // some struct it may hold (`types`; any struct, with values the records
  // cannot follow) leads to a change and is not tagged wherever the heap
  // holds one (untagged_why).
  std::optional<std::string> not_told_by_tags(const std::set<int>& types, bool anything, const std::vector<bool>& reaching) {
    const auto& why = untagged_why();
    auto untold = [&](int k) {
      return reaching[static_cast<size_t>(k)] && !why[static_cast<size_t>(k)].empty() && !lives_only_in_globals(k);
    };
    for (int k : types)
      if (untold(k)) return fmt::format("{} ({})", old_.spell(k), why[static_cast<size_t>(k)]);
    if (anything)
      for (int k = 0; k < static_cast<int>(old_.types.size()); ++k) {
        const Type& t = old_.at(k);
        // A value the records cannot follow is an address made untyped somewhere: of a struct whose
        // address the records show kept untyped (one inside another: the other's, whose tag tells).
        if ((t.kind == TypeKind::Struct || t.kind == TypeKind::Union) && !t.incomplete && !t.name.empty() &&
            facts_->kept_untyped(records_name(k)) && untold(k))
          return fmt::format("it may hold anything the records cannot follow, and {} leads to a change ({})",
                             old_.spell(k), why[static_cast<size_t>(k)]);
      }
    return std::nullopt;
  }
  // For --explain: how many of the structs the old build tags are told by
  // their tags, and why the first few are not.
  std::string heap_types_summary() {
    const auto& why = untagged_why();
    size_t told = 0;
    std::vector<std::string> untold;
    std::set<std::string> seen;
    for (int i = 0; i < static_cast<int>(old_.types.size()); ++i) {
      const Type& t = old_.at(i);
      if ((t.kind != TypeKind::Struct && t.kind != TypeKind::Union) || t.name.empty() ||
          facts_->tagged(records_name(i)).empty() || !seen.insert(records_name(i)).second)
        continue;
      if (why[static_cast<size_t>(i)].empty()) ++told;
      else untold.push_back(fmt::format("{} ({})", old_.spell(i), why[static_cast<size_t>(i)]));
    }
    std::string out = fmt::format("heap type tags: the old build tags {} structs, {} of them told by their tags "
                                  "wherever the heap holds one", told + untold.size(), told);
    if (!untold.empty()) {
      const auto shown = untold.begin() + static_cast<long>(std::min<size_t>(untold.size(), 3));
      out += fmt::format("; not told: {}{}", fmt::join(untold.begin(), shown, "; "),
                         untold.size() > 3 ? fmt::format(" and {} more", untold.size() - 3) : std::string());
    }
    return out;
  }

  // The tagged structs a by_heap_type member's value may be followed as.
  // Once the untyped members are settled (find_untyped_members).
  const std::vector<HeapType>& told_heap_types() {
    if (told_) return *told_;
    static const std::vector<HeapType> kNone;
    // Nothing told by the tags yet (a union met later may be): not kept.
    if (std::none_of(untyped_.begin(), untyped_.end(), [](const UntypedMember& u) { return u.by_heap_type; }) &&
        std::none_of(pointers_.begin(), pointers_.end(), [](const DeclaredPointer& p) { return p.by_tag; }) &&
        !arrays_by_heap_type())
      return kNone;
    std::vector<HeapType>& out = told_.emplace();
    const auto& why = untagged_why();
    std::set<uint16_t> seen;
    for (int i = 0; i < static_cast<int>(old_.types.size()); ++i) {
      const Type& t = old_.at(i);
      if ((t.kind != TypeKind::Struct && t.kind != TypeKind::Union) || t.name.empty() || t.incomplete ||
          !why[static_cast<size_t>(i)].empty())
        continue;
      for (const auto& [id, callee] : facts_->tagged(records_name(i)))
        if (seen.insert(id).second) out.push_back({id, i});
    }
    return out;
  }

  // A function a unit not built with graft-cc names in its DWARF (its own,
  // or one its call sites call): such code may call it with anything.
  bool foreign_caller_of(const std::string& function) const {
    for (const auto& [unit, functions] : old_.unit_functions)
      if (!facts_->recorded(unit) && functions.count(function)) return true;
    return false;
  }
  // foreign_caller_of, as the records' queries take it.
  MemberFacts::ForeignCaller foreign_callers() const {
    return [this](const std::string& f) { return foreign_caller_of(f); };
  }
  // How a member, global or word the records settle on one struct is
  // explained: "SUBJECT, recorded by graft-cc to hold only T * (stored in F, G)".
  std::string recorded_to_hold(const std::string& subject, int type, const MemberHolds& holds) const {
    return fmt::format("{}, recorded by graft-cc to hold only {} * (stored in {})", subject, old_.spell(type),
                       fmt::join(holds.functions, ", "));
  }
  // For every old type: whether it leads to a changed struct that can hide,
  // through typed and declared pointers as they are now.
  std::vector<bool> leading_to_hiding() {
    std::vector<bool> targets(old_.types.size());
    for (const auto& [i, why] : hideable_changes()) targets[static_cast<size_t>(i)] = true;
    return compare_.reaches(std::move(targets), declared_edges());
  }
  // What find_untyped_members and find_untyped_globals could not settle,
  // refused at once, every member and global with the lines that settle it.
  Status refuse_unsettled() {
    if (unanswerable_.empty() && asked_members_.empty() && asked_globals_.empty()) return ok();
    std::string hiding;
    for (const auto& [i, why] : hideable_changes()) {
      if (hiding.size() > 400) {
        hiding += ", ...";
        break;
      }
      hiding += fmt::format("{}{} ({})", hiding.empty() ? "" : ", ", old_.spell(i), why);
    }
    if (questions_) {
      questions_->hiding = hiding;
      questions_->settleable = unanswerable_.empty();
    }
    const size_t total = asked_members_.size() + asked_globals_.size();
    if (!unanswerable_.empty()) {
      // Nothing the user can write makes the update safe: say that first,
      // not a list of questions whose answers could only be wrong.
      std::string which;
      for (size_t n = 0; n < unanswerable_.size(); ++n) {
        if (n == kQuestionsInFull) {
          which += fmt::format("; and {} more", unanswerable_.size() - n);
          break;
        }
        which += fmt::format("{}{} {}", n ? "; " : "", unanswerable_[n].first, unanswerable_[n].second);
      }
      return make_error("graft cannot build this update: no declaration can make it safe: {}; the running process "
                        "cannot take this release (restart it into the new build){}; nothing was written",
                        which,
                        total ? fmt::format(" ({} other untyped member{} or global{} {} asked about too: graft diff "
                                            "--questions FILE writes them all)",
                                            total, total == 1 ? "" : "s", total == 1 ? "" : "s", total == 1 ? "is" : "are")
                              : "");
    }
    // A few are said in full; many, by name (the line would run to kilobytes), with where to read them.
    std::string all;
    for (const auto* asked : {&asked_members_, &asked_globals_})
      for (const auto& [subject, text] : *asked)
        all += total <= kQuestionsInFull ? " " + text : (all.empty() ? " " : ", ") + subject;
    if (total > kQuestionsInFull) all += ";";
    auto count = [](size_t n, const char* what) {
      return n ? fmt::format("{} untyped {}{}", n, what, n == 1 ? "" : "s") : std::string();
    };
    const std::string members = count(asked_members_.size(), "member"), globals = count(asked_globals_.size(), "global");
    return make_error("graft-cc's records do not tell what {}{}{} hold{}, and a changed struct may be there ({}): "
                      "declare each in the --transform file ({}):{}{} nothing was written",
                      members, members.empty() || globals.empty() ? "" : " and ", globals, total == 1 ? "s" : "", hiding,
                      total <= kQuestionsInFull ? kQuestionsHint : kQuestionsFile, all,
                      facts_ && !facts_->any_heap_typed() && !asked_members_.empty() ? kHeapTypesHint : "");
  }
  // Every index of the struct or union graft-cc's records name ("struct
  // list", "union u", or "struct THREAD" for a typedef's anonymous struct).
  std::vector<int> indices_of(const std::string& name) {
    if (aggregates_.empty())
      for (int i = 0; i < static_cast<int>(old_.types.size()); ++i) {
        const Type& t = old_.at(i);
        if ((t.kind == TypeKind::Struct || t.kind == TypeKind::Union) && !t.incomplete && !t.name.empty())
          aggregates_[t.name].push_back(i);
      }
    auto named = [this](const std::string& key) {
      auto it = aggregates_.find(key);
      return it == aggregates_.end() ? std::vector<int>{} : it->second;
    };
    std::vector<int> out = named(name);
    if (!name.starts_with("struct ")) return out;
    const std::vector<int> bare = named(name.substr(7));  // a typedef's anonymous struct
    out.insert(out.end(), bare.begin(), bare.end());
    std::sort(out.begin(), out.end());
    return out;
  }
  // The structs on the typed paths from a `from` to a `to` (by value, through
  // pointers and arrays): a generic container's own (struct list, struct lnode).
  std::set<std::string> structs_between(const std::vector<int>& from, int to) {
    std::vector<bool> targets(old_.types.size());
    for (int k : indices_of(old_.at(to).name)) targets[static_cast<size_t>(k)] = true;
    const auto reaches_to = compare_.reaches(std::move(targets), {});
    std::set<std::string> out;
    std::set<int> seen;
    std::vector<int> stack(from.begin(), from.end());
    while (!stack.empty()) {
      const int i = stack.back();
      stack.pop_back();
      if (i < 0 || !seen.insert(i).second || !reaches_to[static_cast<size_t>(i)]) continue;
      const Type& t = old_.at(i);
      if (t.kind == TypeKind::Struct && !t.name.empty()) out.insert(t.name);
      if (t.kind == TypeKind::Pointer || t.kind == TypeKind::Array) stack.push_back(t.target);
      if (t.kind == TypeKind::Struct)
        for (const auto& m : t.members) stack.push_back(m.type);
    }
    return out;
  }
  // A member that holds several structs, one per container as graft-cc's
  // records say (every value a parameter of list_add, every call naming its
  // list and one struct per list): its places, or false when the records do
  // not show it (then each value is checked at the commit, as before, and
  // `member` is left as it was).
  bool per_container(UntypedMember& member, const MemberFacts::ForeignCaller& foreign_caller) {
    auto found = facts_->per_container(records_name(member.container), member.offset, foreign_caller);
    if (!found) return false;
    const std::vector<int> containers = indices_of(found->container);
    if (containers.empty()) return false;
    const std::set<std::string> family = structs_between(containers, member.container);
    if (!family.count(old_.at(member.container).name)) return false;
    std::vector<int> family_types;
    for (const auto& name : family)
      for (int k : indices_of(name)) {
        // A container whose own structs change would be visited once per place: not per container.
        if (compare_.changed(k) >= 0) return false;
        family_types.push_back(k);
      }
    std::vector<ContainerHolds> places;
    std::string where;
    for (const auto& [place, held] : found->holds) {
      ContainerHolds c;
      const std::vector<int> pointee = indices_of(held);
      if (pointee.empty()) return false;
      c.pointee = pointee.front();
      c.offset = place.offset;
      c.pointer = place.loaded;
      if (place.global) {
        c.global = place.name;  // the compiler's name: find_roots makes it a root's identity
        c.text = global_place_text(place.name, place.offset, place.loaded);
      } else {
        // The member must be the container, or a pointer to it, as the call said.
        const std::vector<int> holders = indices_of(place.name);
        if (holders.empty()) return false;
        c.container = holders.front();
        const Member* m = nullptr;
        for (const auto& candidate : old_.at(c.container).members)
          if (candidate.offset == place.offset && !candidate.bit_size) m = &candidate;
        if (!m) return false;
        const Type& mt = old_.at(m->type);
        const int held_type = place.loaded ? (mt.kind == TypeKind::Pointer ? mt.target : -1) : m->type;
        if (held_type < 0 || old_.at(held_type).name != old_.at(containers.front()).name) return false;
        c.text = fmt::format("{}.{}", old_.spell(c.container), m->name);
      }
      where += fmt::format("{}{} holds {}", where.empty() ? "" : ", ", c.text, old_.spell(c.pointee));
      places.push_back(std::move(c));
    }
    member.family = std::move(family_types);
    member.per_container = std::move(places);
    std::string calls;
    for (const auto& f : found->calls) calls += (calls.empty() ? "" : ", ") + f;
    notes_.push_back(fmt::format("{} holds one struct per {}, as graft-cc's records of every call of {} say: {}; "
                                 "followed as that struct from there, and every value checked at the commit to be one "
                                 "of these", member.name, old_.spell(containers.front()), calls, where));
    return true;
  }
  // A global's name as the records and directives spell it: its key without the unit ("main.c::keep" -> "keep").
  static std::string own_name(const std::string& key) {
    const size_t colons = key.rfind("::");
    return colons == std::string::npos ? key : key.substr(colons + 2);
  }
  // Whether a global's key or identity ("conns", "main.c::conns",
  // "main.c::f.count") is what the compiler and the user call `name`.
  static bool global_named(const std::string& key, const std::string& name) {
    return key == name || key.ends_with("::" + name);
  }
  // "srv.conns" for the member at `offset` of global `name` (`loaded`: the
  // member points to the container), "jobs" for the global itself, else "srv+8".
  std::string global_place_text(const std::string& name, uint64_t offset, bool loaded) const {
    if (!offset && !loaded) return name;
    for (const auto& v : old_.variables) {
      if (!global_named(v.key, name)) continue;
      if (v.type < 0 || old_.at(v.type).kind != TypeKind::Struct) break;
      for (const auto& m : old_.at(v.type).members)
        if (m.offset == offset && !m.name.empty()) return name + "." + m.name;
      break;
    }
    return offset ? fmt::format("{}+{}", name, offset) : name;
  }
  // A global place (the compiler's name) made the identity of the root that holds it.
  Status resolve_container_places() {
    for (auto& u : untyped_) {
      std::vector<ContainerHolds> kept;
      for (auto& c : u.per_container) {
        if (c.global.empty()) {
          kept.push_back(std::move(c));
          continue;
        }
        const DataRoot* found = nullptr;
        int matches = 0;
        for (const auto& r : roots_)
          if (global_named(r.identity, c.global) || r.variable == c.global) {
            found = &r;
            ++matches;
          }
        // Not a root (it leads to no change), or two statics of that name: no context there, each value checked.
        if (matches != 1) continue;
        c.global = found->identity;
        kept.push_back(std::move(c));
      }
      u.per_container = std::move(kept);
    }
    return ok();
  }

  static std::string told_by_tags_note(const std::string& subject) {
    return fmt::format("{} is told at the commit by the heap's type tags: a value in a block tagged as a struct that "
                       "leads to a change is followed as it; every such struct is tagged wherever the heap holds one, "
                       "so an untagged value is none of them (assumed: no such struct is made by a cast of raw memory "
                       "first kept untyped, a pointer read from memory being one made and tagged elsewhere)",
                       subject);
  }
  // The words of union member `m` of struct `container` that may point to a
  // struct leading to a change, each as a pointer followed where the heap's
  // type tag at its value says it is that struct (DeclaredPointer::by_tag):
  // the word may hold another member (a number, a string) at the time. Every
  // such struct must be told by its tags and carry its own; nullopt, with
  // why in `untold`, when one is not (or a void * word may lead anywhere).
  std::optional<std::vector<DeclaredPointer>> union_words_told_by_tags(int container, const Member& m,
                                                                       std::string& untold) {
    if (!facts_ || !facts_->any_heap_typed()) return std::nullopt;
    const auto& why = untagged_why();
    std::vector<DeclaredPointer> out;
    std::vector<UntypedMember> union_untyped;
    std::set<std::pair<uint64_t, int>> seen;
    std::function<bool(int, uint64_t, int)> words = [&](int type, uint64_t at, int depth) {
      const Type& t = old_.at(type);
      if (depth > 8) return true;
      if (t.kind == TypeKind::Pointer) {
        if (t.target < 0) {
          // A void *: any struct the tags tell, as an untyped member told by them (UntypedMember::by_heap_type).
          const std::string subject = fmt::format("{}.{} (a union's void * at offset {})", old_.spell(container), m.name,
                                                  at - m.offset);
          if (!reaching_untyped_) reaching_untyped_ = reaching_through_untyped(std::vector<UntypedMember>{});
          if (auto why_not = not_told_by_tags({}, true, *reaching_untyped_)) {
            untold = fmt::format("{} may hold anything, and {}", subject, *why_not);
            return false;
          }
          if (seen.insert({at, -1}).second) {
            UntypedMember member{container, at, subject, {}, {}, {}};
            member.by_heap_type = true;
            union_untyped.push_back(std::move(member));
          }
          return true;
        }
        // A library's struct (glibc's FILE): only the library writes it, never the program's data.
        if (!leads_[t.target] || old_.system_types.count(t.target)) return true;
        const Type& pointee = old_.at(t.target);
        if (pointee.kind != TypeKind::Struct || pointee.name.empty()) {
          untold = fmt::format("{} is no named struct", old_.spell(type));
          return false;
        }
        if (!why[static_cast<size_t>(t.target)].empty()) {
          untold = fmt::format("{} ({})", old_.spell(t.target), why[static_cast<size_t>(t.target)]);
          return false;
        }
        if (facts_->tagged(records_name(t.target)).empty()) {
          untold = fmt::format("{} is never tagged itself", old_.spell(t.target));
          return false;
        }
        if (seen.insert({at, t.target}).second) {
          DeclaredPointer p;
          p.container = container;
          p.offset = at;
          p.pointee = t.target;
          p.by_tag = true;
          p.source = fmt::format("{}.{} (a union), told by the heap's type tags", old_.spell(container), m.name);
          out.push_back(std::move(p));
        }
        return true;
      }
      if (t.kind == TypeKind::Struct || t.kind == TypeKind::Union) {
        for (const auto& inner : t.members)
          if (!inner.bit_size && !words(inner.type, at + inner.offset, depth + 1)) return false;
        return true;
      }
      if (t.kind == TypeKind::Array && t.target >= 0 && leads_[t.target]) {
        const uint64_t size = old_.at(t.target).size;
        if (!t.count || t.count > 16 || !size) {
          untold = fmt::format("{} in {}.{} is too long an array", old_.spell(type), old_.spell(container), m.name);
          return false;
        }
        for (uint64_t k = 0; k < t.count; ++k)
          if (!words(t.target, at + k * size, depth + 1)) return false;
      }
      return true;
    };
    if (!words(m.type, m.offset, 0) || (out.empty() && union_untyped.empty())) return std::nullopt;
    for (auto& u : union_untyped) {
      notes_.push_back(told_by_tags_note(u.name));
      untyped_.push_back(std::move(u));
    }
    return out;
  }

  // The void * of a union whose other members are numbers, at its start:
  // a word that is an address or a number. nullptr for any other type.
  const Member* union_word(int type) const {
    const Type& t = old_.at(type);
    if (t.kind != TypeKind::Union || t.size != 8) return nullptr;
    const Member* word = nullptr;
    for (const auto& m : t.members) {
      const Type& mt = old_.at(m.type);
      if (mt.kind == TypeKind::Pointer && mt.target < 0 && m.offset == 0 && !m.bit_size && !word) word = &m;
      else if (!numeric(mt.kind)) return nullptr;
    }
    return word;
  }
  // A global that is itself an untyped word: a void * or an 8-byte integer.
  bool untyped_word(int type) const {
    const Type& t = old_.at(type);
    return (t.kind == TypeKind::Pointer && (t.target < 0 || old_.at(t.target).kind == TypeKind::Void)) ||
           ((t.kind == TypeKind::Signed || t.kind == TypeKind::Unsigned) && t.size == 8);
  }
  // The untyped global a directive names: an external one by its name, a static by its own.
  const Variable* untyped_global_named(const std::string& name) const {
    const Variable* found = nullptr;
    for (const auto& v : old_.variables)
      if (!v.constant && !v.thread_local_storage && v.type >= 0 && untyped_word(v.type) &&
          global_named(v.key, name)) {
        if (found) return nullptr;  // two statics of that name
        found = &v;
      }
    return found;
  }
  // Every global that is itself a void * or an 8-byte integer, when some
  // struct changes: declared by the user (GRAFT_GLOBAL_POINTS_TO or
  // GRAFT_GLOBAL_OPAQUE), or settled by graft-cc's records as members are
  // (only one struct's address: followed like a typed pointer; nothing a
  // changed struct could be: dismissed); what they cannot settle, when a
  // changed struct can hide at all, is refused at once, each with the
  // directive that settles it. Without records, as before: not followed
  // (check_reachable's note says so).
  Status find_untyped_globals() {
    if (changes_.empty()) return ok();
    std::string unrecorded;
    if (facts_)
      for (const auto& [unit, functions] : old_.unit_functions)
        if (!facts_->recorded(unit)) unrecorded = file_name(unit);
    std::vector<bool> leads;
    std::vector<std::pair<std::string, std::string>> asked;  // name, and the question in full
    for (const auto& v : old_.variables) {
      if (v.constant || v.thread_local_storage || v.type < 0 || !untyped_word(v.type)) continue;
      const std::string identity = identity_of_(v, false);
      if (identity.empty()) continue;
      const std::string name = own_name(v.key);
      if (auto declared = declared_globals_.find(v.key); declared != declared_globals_.end()) {
        if (declared->second.first >= 0)
          untyped_globals_.push_back({identity, v.key, declared->second.first, declared->second.second, false});
        continue;
      }
      if (!facts_ || hideable_changes().empty()) continue;
      MemberHolds holds =
          facts_->holds("global " + name, 0, foreign_callers());
      if (!unrecorded.empty()) holds.unknown.insert(unrecorded + " was not built with graft-cc and may store into it");
      const std::set<int> types = recorded_types(holds);
      const bool pointer = old_.at(v.type).kind == TypeKind::Pointer;
      if (!pointer && types.empty()) continue;             // a number
      if (holds.unknown.empty() && types.empty()) continue;  // never anything but NULL
      if (holds.unknown.empty() && types.size() == 1) {
        untyped_globals_.push_back(
            {identity, v.key, *types.begin(), recorded_to_hold("global " + v.key, *types.begin(), holds), true});
        continue;
      }
      if (leads.empty()) leads = leading_to_hiding();
      if (holds.unknown.empty() &&
          std::none_of(types.begin(), types.end(), [&](int k) { return leads[static_cast<size_t>(k)]; }))
        continue;
      if (auto why = beyond_declarations(types, holds, leads)) {
        unanswerable_.push_back({"global " + v.key, *why});
        ask("global " + v.key, holds, types, {});
        continue;
      }
      const std::string what = what_it_holds(types, holds);
      asked.push_back({"global " + v.key, fmt::format("global {} ({}): GRAFT_GLOBAL_POINTS_TO({}, STRUCT); or, if it "
                                                     "never holds a changed struct, GRAFT_GLOBAL_OPAQUE({});",
                                                     v.key, what, name, name)});
      ask("global " + v.key, holds, types,
          {fmt::format("GRAFT_GLOBAL_POINTS_TO({}, STRUCT);", name), fmt::format("GRAFT_GLOBAL_OPAQUE({});", name)});
    }
    asked_globals_ = std::move(asked);
    return ok();
  }

  // The old types of the structs graft-cc's records name (a typedef's
  // anonymous struct by its typedef name); one the old build does not
  // define is a reason graft cannot tell.
  std::set<int> recorded_types(MemberHolds& holds) {
    std::set<int> types;
    for (const auto& name : holds.types) {
      const auto found = indices_of(name);
      if (found.empty()) holds.unknown.insert(name + ", which the old build does not define");
      else types.insert(found.front());
    }
    return types;
  }
  // What an unsettled member or global holds, for the refusal: its known
  // structs, and the first two reasons graft cannot tell.
  std::string what_it_holds(const std::set<int>& types, const MemberHolds& holds) const {
    std::string what;
    for (int k : types) what += (what.empty() ? "holds " : " or ") + old_.spell(k);
    if (!types.empty() && holds.unknown.empty()) what += ", graft cannot tell which per object";
    size_t shown = 0;
    for (const auto& why : holds.unknown) {
      if (shown == 2) {
        what += fmt::format(" and {} more", holds.unknown.size() - 2);
        break;
      }
      what += (what.empty() ? "" : shown ? ", " : "; ") + why;
      ++shown;
    }
    return what;
  }

  // Why no declaration can settle an untyped member or global, if none can:
  // the records show it holds several structs, one of which leads to a
  // change (so GRAFT_POINTS_TO, one struct, and GRAFT_OPAQUE, none that
  // leads to a change, would both be false), and values they cannot follow
  // too (so they cannot be checked value by value at the commit either).
  std::optional<std::string> beyond_declarations(const std::set<int>& types, const MemberHolds& holds,
                                                 const std::vector<bool>& leads) {
    if (holds.unknown.empty() || types.size() < 2) return std::nullopt;
    std::vector<int> leading;
    for (int k : types)
      if (leads[static_cast<size_t>(k)]) leading.push_back(k);
    if (leading.empty()) return std::nullopt;
    std::string named;
    for (size_t n = 0; n < leading.size() && n < 3; ++n)
      named += fmt::format("{}{} ({})", n ? ", " : "", old_.spell(leading[n]),
                           hideable_changes().count(leading[n]) ? "which changes" : "which leads to a changed struct");
    if (leading.size() > 3) named += fmt::format(" and {} more that lead to one", leading.size() - 3);
    return fmt::format("holds {} among {} structs graft-cc's records show stored there, and values they cannot follow "
                       "({}{}): GRAFT_POINTS_TO would name one struct of several, GRAFT_OPAQUE would hide a changed "
                       "one, and nothing at run time tells which struct a value is{}",
                       named, types.size(), *holds.unknown.begin(),
                       holds.unknown.size() > 1 ? fmt::format(" and {} more", holds.unknown.size() - 1) : "",
                       facts_->any_heap_typed() ? "" : " (a build made with graft-cc --graft-heap-types=on tells)");
  }

  // A declaration graft-cc's records contradict would apply and break the
  // program: GRAFT_POINTS_TO naming one struct where the program stores
  // another too (that one would be transformed as the declared struct), or
  // GRAFT_OPAQUE on a member the program stores a struct into that leads to
  // a changed one (which would then be missed). Refused, naming the stores.
  Status check_declarations_against_records() {
    if (!facts_) return ok();
    const MemberFacts::ForeignCaller foreign_caller = foreign_callers();
    std::optional<std::vector<bool>> leads;
    auto check = [&](const std::string& source, const std::string& subject, const MemberHolds& holds,
                     int pointee) -> Status {
      for (const auto& [name, functions] : holds.stored_by) {
        const auto found = indices_of(name);
        if (found.empty()) continue;
        const int k = found.front();
        const std::string where = fmt::format("{}", fmt::join(functions, ", "));
        if (pointee >= 0 && records_name(k) != records_name(pointee))
          return make_error("{} is contradicted by graft-cc's records: {} also store{} a {} into {}, and a value "
                            "followed as the wrong struct would be transformed as one: remove the line (graft diff "
                            "then settles {} from the records, or says why it cannot); nothing was written",
                            source, where, functions.size() == 1 ? "s" : "", old_.spell(k), subject, subject);
        if (pointee >= 0) continue;
        if (!leads) leads = leading_to_hiding();
        if (!(*leads)[static_cast<size_t>(k)]) continue;
        return make_error("{} is contradicted by graft-cc's records: {} store{} a {} into {}, {}, which the update "
                          "must find: remove the line (graft diff then settles {} from the records, or says why it "
                          "cannot); nothing was written",
                          source, where, functions.size() == 1 ? "s" : "", old_.spell(k), subject,
                          hideable_changes().count(k) ? "a struct that changes" : "a struct that leads to a changed one",
                          subject);
      }
      return ok();
    };
    auto member_holds = [&](int container, uint64_t offset) -> std::optional<MemberHolds> {
      const Type& t = old_.at(container);
      if (t.name.empty() || old_.system_types.count(container)) return std::nullopt;  // a library's: no records
      const bool untyped = std::any_of(t.members.begin(), t.members.end(), [&](const Member& m) {
        return m.offset == offset && !m.bit_size && untyped_word(m.type);
      });
      if (!untyped) return std::nullopt;
      return facts_->holds(t.name, offset, foreign_caller);
    };
    for (const auto& p : pointers_) {
      if (p.recorded || p.interior || p.by_tag) continue;
      if (auto holds = member_holds(p.container, p.offset))
        GRAFT_TRY(check(p.source, fmt::format("{} at offset {}", old_.spell(p.container), p.offset), *holds, p.pointee));
    }
    for (const auto& [member, source] : opaque_)
      if (auto holds = member_holds(member.first, member.second))
        GRAFT_TRY(check(source, fmt::format("{} at offset {}", old_.spell(member.first), member.second), *holds, -1));
    for (const auto& v : old_.variables) {
      auto declared = declared_globals_.find(v.key);
      if (declared == declared_globals_.end()) continue;
      const std::string name = own_name(v.key);
      GRAFT_TRY(check(declared->second.second, "global " + v.key, facts_->holds("global " + name, 0, foreign_caller),
                      declared->second.first));
    }
    return ok();
  }

  // One question for graft diff --questions: what the records say of it, in full.
  void ask(std::string subject, const MemberHolds& holds, const std::set<int>& types, std::vector<std::string> directives) {
    if (!questions_) return;
    std::string why;
    for (int k : types) why += (why.empty() ? "holds " : " or ") + old_.spell(k);
    for (const auto& reason : holds.unknown) why += (why.empty() ? "" : "; ") + reason;
    questions_->asked.push_back({std::move(subject), std::move(why), std::move(directives)});
  }

  // How a directive names a struct: its tag, or the typedef name of one without.
  static std::string directive_name(const std::string& name) {
    return name.starts_with("struct ") ? name.substr(7) : name;
  }
  std::vector<int> untyped_containers() {
    std::vector<int> out;
    for (const auto& u : untyped_) out.push_back(u.container);
    if (untyped_arrays()) {
      const auto more = untyped_array_types(old_);
      out.insert(out.end(), more.begin(), more.end());
    }
    return out;
  }
  // Whether the arrays `void **` pointers lead to are scanned (DataPlan::untyped_arrays).
  bool untyped_arrays() { return !changes_.empty() && !hideable_changes().empty(); }
  // Whether the heap's tags tell their elements (DataPlan::arrays_by_heap_type):
  // every struct whose address is kept untyped that reaches a change is told.
  bool arrays_by_heap_type() {
    if (arrays_told_) return *arrays_told_;
    bool& told = arrays_told_.emplace(false);
    if (!untyped_arrays() || !facts_ || !facts_->any_heap_typed()) return told;
    std::vector<UntypedMember> none;
    told = !not_told_by_tags({}, true, reaching_through_untyped(none));
    return told;
  }

  Status find_roots() {
    std::map<std::string, const Variable*> after;
    for (const auto& v : new_.variables) after.emplace(v.key, &v);
    // What the user must declare is asked first, all at once (members and
    // globals), once what the user declared is checked against the records.
    GRAFT_TRY(check_declarations_against_records());
    GRAFT_TRY(find_untyped_members());
    GRAFT_TRY(find_untyped_globals());
    GRAFT_TRY(refuse_unsettled());
    leads_ = compare_.reaches_change(declared_edges(), untyped_containers());
    for (const auto& v : old_.variables) {
      if (v.constant || v.type < 0) continue;
      auto it = after.find(v.key);
      const bool retyped = it != after.end() && it->second->type >= 0 && compare_.differs(v.type, it->second->type);
      if (v.thread_local_storage) {
        if (retyped)
          return make_error("thread-local variable {} changed type ({} -> {}): every thread has its own copy, and "
                            "graft cannot transform thread-local storage yet; nothing was written",
                            v.key, old_.spell(v.type), new_.spell(it->second->type));
        if (leads_[v.type])
          notes_.push_back(fmt::format("thread-local {} may point to changed data: thread-local storage is not "
                                       "searched, so such objects would keep their old layout", v.key));
        continue;
      }
      if (!retyped && !leads_[v.type]) continue;
      DataRoot root;
      root.variable = v.key;
      root.identity = identity_of_(v, false);
      root.old_type = v.type;
      if (root.identity.empty())
        return make_error("global {} holds changed data but has no symbol in the running binary; nothing was written",
                          v.key);
      if (retyped) {
        if (!compare_.convertible(v.type, it->second->type))
          return make_error("global {} changes from {} to {}, which no default transformer converts; nothing was "
                            "written", v.key, old_.spell(v.type), new_.spell(it->second->type));
        if (identity_of_(*it->second, true) != root.identity)
          return make_error("global {} changed type, but its symbol in the new build is not {}; nothing was written",
                            v.key, root.identity);
        root.new_type = it->second->type;
        const Type& nt = new_.at(root.new_type);
        if (nt.kind == TypeKind::Struct && nt.name.empty()) {
          std::vector<std::string> details;
          GRAFT_TRY(explain(v.type, root.new_type, "global " + v.key, details));
        }
      }
      roots_.push_back(std::move(root));
    }
    return resolve_container_places();
  }

  // A changed type no global reaches can only have instances in frames of
  // functions the patch replaces (which no thread is in at the commit) or
  // behind untyped pointers: the second is said, with the directive that
  // would let graft follow them, since graft cannot see it.
  Status check_reachable() {
    std::set<int> reached;
    std::vector<int> stack;
    for (const auto& r : roots_) stack.push_back(r.old_type);
    for (const auto& g : untyped_globals_) stack.push_back(g.pointee);
    // epoll's data words, followed at the commit where the records settle
    // them (and checked there where they cannot be followed).
    if (const int kernel = kernel_data().first; kernel >= 0) stack.push_back(kernel);
    while (!stack.empty()) {
      const int i = stack.back();
      stack.pop_back();
      if (i < 0 || !reached.insert(i).second) continue;
      const Type& t = old_.at(i);
      if (t.kind == TypeKind::Union && leads_[i])
        return make_error("{} holds data of a changed type inside a union: graft cannot tell which member is live; "
                          "nothing was written", t.name.empty() ? old_.spell(i) : t.name);
      if (t.kind == TypeKind::Pointer && t.target >= 0 && old_.at(t.target).incomplete)
        continue;
      // A void ** array's elements, told by the heap's tags.
      if (t.kind == TypeKind::Pointer && t.target >= 0 && old_.at(t.target).kind == TypeKind::Pointer &&
          old_.at(t.target).target < 0 && arrays_by_heap_type())
        for (const auto& h : told_heap_types()) stack.push_back(h.type);
      if (t.target >= 0) stack.push_back(t.target);
      for (const auto& m : t.members) {
        std::vector<int> live;
        for (const auto& u : union_members_)
          if (u.container == i && u.union_offset == m.offset) live.push_back(u.member_type);
        if (!live.empty()) {
          stack.insert(stack.end(), live.begin(), live.end());  // the declared members only
          continue;
        }
        const Type& mt = old_.at(m.type);
        if (mt.kind == TypeKind::Union && opaque_.count({i, m.offset})) continue;  // GRAFT_OPAQUE: the user's word
        if (t.kind == TypeKind::Struct && mt.kind == TypeKind::Union && leads_[m.type]) {
          // With heap type tags, each word of the union that may point to a struct that leads to a change
          // is followed where the block it points to is tagged as that struct.
          std::string untold;
          if (auto words = union_words_told_by_tags(i, m, untold)) {
            for (auto& w : *words) {
              stack.push_back(w.pointee);
              pointers_.push_back(std::move(w));
            }
            continue;
          }
          // A tag is an integer or enum member beside the union; with none
          // (a union chosen by function pointers, libevent's struct event),
          // only GRAFT_OPAQUE can be written.
          const bool tag_possible = std::any_of(t.members.begin(), t.members.end(), [&](const Member& o) {
            const TypeKind k = old_.at(o.type).kind;
            return &o != &m && (k == TypeKind::Signed || k == TypeKind::Unsigned || k == TypeKind::Enum);
          });
          const std::string tag = directive_name(t.name);  // a typedef name too (zsetopsrc)
          const std::string opaque = fmt::format("GRAFT_OPAQUE({}, {}) if it never holds the changed data", tag, m.name);
          if (!untold.empty()) untold = " (the heap's type tags cannot tell: " + untold + ")";
          if (!tag_possible)
            return make_error("{}.{} is a union holding data of a changed type, and {} has no integer or enum member "
                              "that could say which member is live: graft cannot tell{}; declare in the --transform "
                              "file {}; nothing was written",
                              t.name, m.name, t.name, untold, opaque);
          return make_error("{}.{} is a union holding data of a changed type: graft cannot tell which member is "
                            "live{}; declare it in the --transform file, one line per tag value: "
                            "GRAFT_UNION_MEMBER({}, {}, TAG_FIELD, TAG_VALUE, MEMBER), or, if no member says which "
                            "is live, {}; nothing was written",
                            t.name, m.name, untold, tag, m.name, opaque);
        }
        stack.push_back(m.type);
      }
      for (const auto& p : pointers_)
        if (p.container == i) stack.push_back(p.pointee);
      for (const auto& u : untyped_)
        if (u.container == i) {
          for (const auto& c : u.per_container) stack.push_back(c.pointee);
          if (u.in_heap >= 0) stack.push_back(u.in_heap);
          // Told by the heap's tags: any tagged struct.
          if (u.by_heap_type)
            for (const auto& h : told_heap_types()) stack.push_back(h.type);
        }
    }
    std::vector<std::string> untyped, lost;
    for (const auto& c : changes_) {
      if (reached.count(c.old_type)) continue;
      if (auto declared = declared_frames_only_.find(records_name(c.old_type)); declared != declared_frames_only_.end()) {
        notes_.push_back(fmt::format("no global reaches {}, and {} says live instances are only in frames (or reached "
                                     "from them): found through the frames that hold them", c.name, declared->second));
        continue;
      }
      if (frame_only(c.old_type)) {
        notes_.push_back(fmt::format("no global reaches {}, and graft-cc's records show no pointer to one is ever kept "
                                     "in memory: live instances are only in the frames that hold them (of replaced "
                                     "functions, which no thread is in at the commit, or read through DWARF), so no "
                                     "other frame needs waiting for", c.name));
        continue;
      }
      // graft-cc's records show one may be kept in memory (or made from
      // memory another owner keeps, as Lua's userdata): frames do not account
      // for it, and an instance no global reaches would be left behind.
      if (facts_ && (hideable_changes().count(c.old_type) || facts_->kept_inside(records_name(c.old_type))))
        if (auto why = kept_beyond_frames(c.old_type)) {
          lost.push_back(fmt::format("{} ({})", c.name, *why));
          continue;
        }
      if (untyped.empty()) untyped = untyped_members();
      std::string hint;
      if (const std::string tag = transformable_tag(c.name); !tag.empty()) {
        hint = fmt::format("; if a void * or an integer holds one, declare it in the --transform file: "
                           "GRAFT_POINTS_TO(CONTAINER, FIELD, {});", tag);
        for (size_t k = 0; k < untyped.size() && k < 4; ++k)
          hint += fmt::format("{} GRAFT_POINTS_TO({}, {}, {});", k ? "" : " void * members the globals reach:",
                              untyped[k].substr(0, untyped[k].find('.')), untyped[k].substr(untyped[k].find('.') + 1), tag);
      }
      notes_.push_back(fmt::format("no global reaches {} through typed or declared pointers: live instances are "
                                   "assumed to be only in frames of replaced functions (one behind a void pointer "
                                   "would keep the old layout){}", c.name, hint));
    }
    if (lost.empty()) return ok();
    std::string names, tags;
    for (const auto& l : lost) names += (names.empty() ? "" : ", ") + l;
    for (const auto& c : changes_)
      if (!reached.count(c.old_type) && !frame_only(c.old_type) &&
          (hideable_changes().count(c.old_type) || facts_->kept_inside(records_name(c.old_type))) &&
          kept_beyond_frames(c.old_type))
        tags += (tags.empty() ? "" : ", ") + fmt::format("GRAFT_FRAMES_ONLY({})", directive_name(c.name));
    return make_error("graft cannot find the live instances of {}: no global reaches {} through typed, declared or "
                      "recorded pointers, and graft-cc's records show {} may be kept where no frame accounts for "
                      "{}, so live ones would keep the old layout under the new code; if a void * holds one, declare "
                      "it (GRAFT_POINTS_TO); if every one lives only while the function that made it runs (a local "
                      "whose address is kept only meanwhile), declare so ({}); else the running process cannot take "
                      "this release (restart it into the new build); nothing was written",
                      names, lost.size() == 1 ? "it" : "them", lost.size() == 1 ? "one" : "each",
                      lost.size() == 1 ? "it" : "them", tags);
  }

  // Of several structs a member holds, the one whose instances can be
  // outside globals, if only one can: the others are never made by a cast
  // or as a local (graft-cc's "made" records) and no struct or array holds
  // them by value, so each of theirs is a global of its type. -1 otherwise.
  int only_outside_globals(const std::set<int>& types) {
    int found = -1;
    for (int k : types) {
      if (lives_only_in_globals(k)) continue;
      if (found >= 0) return -1;
      found = k;
    }
    return found;
  }
  // A struct never made by a cast or as a local (graft-cc's "made" records)
  // that no struct or array holds by value: each instance is a global of its type.
  bool lives_only_in_globals(int k) const {
    const Type& t = old_.at(k);
    bool global_only = t.kind == TypeKind::Struct && !t.name.empty() && facts_ && facts_->made(records_name(k)).empty() &&
                       old_.defined_in.count(k) && !unit_lacking(k, &MemberFacts::instances_recorded);
    for (size_t i = 0; global_only && i < old_.types.size(); ++i) {
      const Type& holder = old_.types[i];
      if (holder.kind == TypeKind::Array && holder.target >= 0 && old_.at(holder.target).name == t.name) global_only = false;
      for (const auto& m : holder.members)
        if (m.type >= 0 && old_.at(m.type).kind == TypeKind::Struct && old_.at(m.type).name == t.name) global_only = false;
    }
    return global_only;
  }

  // Why the frames that hold a changed struct do not account for all its
  // instances, by graft-cc's records, or nullopt: its address is kept
  // untyped (in memory graft cannot follow: Lua's registry), or it is made
  // from memory a call returns that is not fresh (Lua's lua_newuserdata
  // returns memory its collector keeps). Made from malloc's memory and kept
  // only in typed pointers, every one is reached from a frame or a global.
  std::optional<std::string> kept_beyond_frames(int i) const {
    const std::string key = records_name(i);
    if (facts_->kept_untyped(key)) return "its address is kept in an untyped member, argument or return value";
    if (const std::string* inside = facts_->kept_inside(key))
      return fmt::format("{}; where pointers of that type lead into it, declare so: GRAFT_POINTS_INTO(STRUCT, FIELD, "
                         "{}, MEMBER)", *inside, directive_name(old_.at(i).name));
    // A unit of an older graft-cc did not say what its casts are made from.
    const auto& made = facts_->made(key);
    if (std::any_of(made.begin(), made.end(), [](const std::string& why) { return why.starts_with("a cast to it"); }))
      if (const std::string* unit = unit_lacking(i, &MemberFacts::casts_recorded))
        return fmt::format("made by a cast in {}, whose origin an older graft-cc did not record", file_name(*unit));
    for (const auto& callee : facts_->cast_from(key)) {
      if (callee == "-") return std::string("made from what a call through a pointer returns");
      if (auto why = not_fresh(callee))
        return fmt::format("made from what {} returns, which is not fresh memory: {}", callee, *why);
    }
    return std::nullopt;
  }
  // Why what `callee` returns is not fresh memory (malloc's, or a wrapper's
  // that returns only malloc's), or nullopt.
  std::optional<std::string> not_fresh(const std::string& callee) const {
    auto allocator = [](std::string name) {
      static const std::set<std::string> kFresh = {"malloc", "calloc", "realloc", "reallocarray", "aligned_alloc",
                                                   "memalign", "valloc", "pvalloc", "mmap", "mallocx", "rallocx"};
      for (const char* prefix : {"je_", "tc_", "__libc_"})
        if (name.starts_with(prefix)) name = name.substr(std::string_view(prefix).size());
      return kFresh.count(name) > 0 || name.starts_with("_Znw") || name.starts_with("_Zna");
    };
    if (allocator(callee)) return std::nullopt;
    const MemberHolds results = facts_->results_of(callee, foreign_callers());
    const bool fresh = results.types.empty() && !results.unknown.empty() &&
                       std::all_of(results.unknown.begin(), results.unknown.end(), [&](const std::string& why) {
                         if (!why.starts_with("returned by ")) return false;
                         const std::string rest = why.substr(12);
                         return allocator(rest.substr(0, rest.find(' ')));
                       });
    if (fresh) return std::nullopt;
    return results.unknown.empty() ? std::string("a struct's address") : *results.unknown.begin();
  }

  // Why a cast to `aggregate` from a value of `origin` (a "castof" record's
  // ORIGIN fields) may make an instance in memory no tag marks, or nullopt
  // where it only re-types a pointer to one made elsewhere: the value of an
  // untyped member, a callback's argument, a parameter every call gives such
  // a value or an `aggregate` *. Made from fresh memory first kept untyped (a
  // malloc result in a local), the middle of a buffer, another struct, or
  // what a call through a pointer returns: untagged.
  // `returned_by`: set to the outermost function that returns an instance
  // on some path and, on another, the origin that makes it untagged (where
  // GRAFT_RETYPES can speak for all its callers' casts).
  std::optional<std::string> makes_untagged(const std::string& aggregate, const std::vector<std::string>& origin,
                                            std::string* returned_by = nullptr, int depth = 0) const {
    const std::string& kind = origin.front();
    if (depth > 8) return std::string("values passed on too many times to follow");
    // A pointer read from memory (an untyped member's value, an element of a
    // void * array, a union's member): re-typed, pointing to an instance made
    // where its own cast tagged it. The assumption tags make (said in
    // --explain): the program does not allocate raw memory, keep it untyped,
    // and make it a struct by a later cast.
    if (kind == "member" || (kind == "unknown" && origin.size() == 2 && origin[1].starts_with("a value read from memory")))
      return std::nullopt;
    // The address of an instance of a struct (this one, or another chosen by
    // an event's number, as a void * payload): re-typed. An instance held
    // inside another's block is told by that block's tag (the containers).
    // Not a down-cast, though: a block allocated as the struct it starts
    // with and made this one later would carry the other's tag.
    if (kind == "type" && origin.size() == 2) {
      if (starts_with_struct(aggregate, origin[1]))
        return fmt::format("made from a {} it starts with (a block tagged as that)", origin[1]);
      return std::nullopt;
    }
    if (kind == "unknown" && origin.size() == 2 && origin[1].starts_with("a parameter of ") &&
        origin[1].ends_with("which is called through a pointer"))
      return std::nullopt;  // a callback's argument: what the program registered with it
    if (kind == "param" && origin.size() == 3) {
      size_t k = 0;
      if (std::from_chars(origin[2].data(), origin[2].data() + origin[2].size(), k).ec != std::errc()) return "?";
      for (const auto& arg : facts_->args(origin[1], k))
        if (auto why = makes_untagged(aggregate, arg, returned_by, depth + 1)) return why;
      return std::nullopt;
    }
    if (kind == "result" && origin.size() >= 2) {
      if (retypes_.count({aggregate, origin[1]})) return std::nullopt;  // GRAFT_RETYPES: the user's word
      const auto* returned = facts_->returns(origin[1]);
      if (!returned) return fmt::format("made from what {} returns", origin[1]);
      std::optional<std::string> first;
      bool some_told = false;  // some path returns one made elsewhere
      for (const auto& r : *returned) {
        auto why = makes_untagged(aggregate, r, returned_by, depth + 1);
        if (!why) some_told = true;
        else if (!first) first = std::move(why);
      }
      // A function that returns one made elsewhere on some path and other memory on another (by a flag).
      if (first && some_told && returned_by) *returned_by = origin[1];  // the outermost: it speaks for the most casts
      return first;
    }
    return fmt::format("made from {}", fmt::join(std::vector<std::string>(origin.begin() + 1, origin.end()), " "));
  }

  // Whether the struct graft-cc's records name `outer` holds one named `inner` at its start (by value, nested).
  bool starts_with_struct(const std::string& outer, const std::string& inner) const {
    for (int i = 0; i < static_cast<int>(old_.types.size()); ++i) {
      const Type& t = old_.at(i);
      if ((t.kind != TypeKind::Struct && t.kind != TypeKind::Union) || t.name.empty() || records_name(i) != outer) continue;
      for (int type = i, depth = 0; type >= 0 && depth < 16; ++depth) {
        const Type& at = old_.at(type);
        if (at.kind == TypeKind::Array) {
          type = at.target;
          continue;
        }
        if (at.kind != TypeKind::Struct && at.kind != TypeKind::Union) break;
        if (type != i && !at.name.empty() && records_name(type) == inner) return true;
        auto first = std::find_if(at.members.begin(), at.members.end(), [](const Member& m) { return m.offset == 0; });
        if (first == at.members.end()) break;
        type = first->type;
      }
    }
    return false;
  }

  // Heap type tags (graft-cc --graft-heap-types=on): for every old type, why
  // not every instance of it the heap may hold carries its tag, or "" when
  // every one does (then a value tagged with its ID is one, and an untagged
  // value is none). Each instance must be made by a tagged cast of fresh
  // memory from glibc's malloc family (whose free and realloc clear the tag),
  // or as a local (which the commit tells by its stack), under an ID no other
  // tagged struct has; one held by value inside another struct is told by
  // the tag of the one around it, so that one must be told too.
  // Whether some cast tags a block with `id` as `aggregate` at run time.
  bool tags_with(const std::string& aggregate, uint16_t id) const {
    const auto& tagged = facts_->tagged(aggregate);
    return std::any_of(tagged.begin(), tagged.end(),
                       [&](const auto& t) { return t.first == id && facts_->tags_fire(t.second); });
  }
  const std::vector<std::string>& untagged_why() {
    if (untagged_) return *untagged_;
    std::vector<std::string>& why = untagged_.emplace(old_.types.size());
    std::string everywhere;
    if (!facts_ || !facts_->any_heap_typed())
      everywhere = "the old build has no heap type tags (graft-cc --graft-heap-types=on)";
    else
      for (const auto& [unit, functions] : old_.unit_functions)
        if (!facts_->heap_typed(unit)) {
          everywhere = file_name(unit) + " was built without heap type tags";
          break;
        }
    for (int i = 0; i < static_cast<int>(old_.types.size()); ++i) {
      const Type& t = old_.at(i);
      if (t.kind != TypeKind::Struct && t.kind != TypeKind::Union) continue;
      std::string& reason = why[static_cast<size_t>(i)];
      if (!everywhere.empty()) {
        reason = everywhere;
        continue;
      }
      // One no name can be cast to: a global, a local, or held inside another (the containers decide, below).
      if (t.name.empty()) continue;
      const std::string key = records_name(i);
      // Of a name two files define differently: records that cannot say which file's they are tell neither.
      if (homonym(i))
        if (const std::string* unit = unit_lacking(i, &MemberFacts::begun)) {
          reason = file_name(*unit) + "'s records do not tell it from another file's struct of that name (graft-cc "
                   "before 6 December 2026: rebuild)";
          continue;
        }
      for (const auto& made : facts_->made(key)) {
        if (made.starts_with("a tagged cast to it in ") || made.starts_with("a local in ") ||
            made.starts_with("its pointers written through another type"))
          continue;
        constexpr std::string_view kCast = "a cast to it in ";
        if (made.starts_with(kCast) && retypes_.count({key, made.substr(kCast.size())})) continue;  // the user's word
        if (made.starts_with(kCast))
          if (const auto* casts = facts_->cast_of(key, made.substr(kCast.size()))) {
            for (const auto& origin : *casts) {
              std::string returned_by;
              if (auto untagged = makes_untagged(key, origin, &returned_by)) {
                reason = returned_by.empty()
                             ? fmt::format("{}, {}; if that cast only re-types one made elsewhere, GRAFT_RETYPES({}, "
                                           "{}); says so", made, *untagged, made.substr(kCast.size()),
                                           directive_name(t.name))
                             : fmt::format("{}, {} (among what {} returns); if what {} returns is always one made "
                                           "elsewhere where it is cast to {}, GRAFT_RETYPES({}, {}); says so for every "
                                           "caller", made, *untagged, returned_by, returned_by, old_.spell(i),
                                           returned_by, directive_name(t.name));
                break;
              }
            }
            if (reason.empty()) continue;  // only pointers to instances made elsewhere, re-typed
            break;
          }
        reason = "made untagged: " + made;
        break;
      }
      if (!reason.empty()) continue;
      for (const auto& [id, callee] : facts_->tagged(key)) {
        if (!facts_->tags_fire(callee)) {
          // Not fresh memory after all (list_pop's value): untagged, a re-typed pointer if it is one.
          if (auto untagged = makes_untagged(key, {"result", callee}))
            reason = fmt::format("a cast to it of what {} returns, {}", callee, *untagged);
        } else {
          // Another struct's tag with this ID counts where it is written at run time: a cast that
          // never tags (of what a function that is not fresh returns) writes nothing.
          for (const auto& other : facts_->tag_names(id))
            if (other != key && tags_with(other, id)) {
              reason = fmt::format("its tag ID {} is also {}'s", id, other);
              break;
            }
        }
        if (!reason.empty()) break;
      }
    }
    // Held by value inside a struct whose instances are not all tagged: not told either.
    auto element = [&](int type) {
      while (type >= 0 && old_.at(type).kind == TypeKind::Array) type = old_.at(type).target;
      return type;
    };
    for (bool grew = true; grew;) {
      grew = false;
      for (int i = 0; i < static_cast<int>(old_.types.size()); ++i) {
        const Type& holder = old_.at(i);
        if (holder.kind != TypeKind::Struct && holder.kind != TypeKind::Union) continue;
        if (why[static_cast<size_t>(i)].empty() || lives_only_in_globals(i)) continue;
        for (const auto& m : holder.members) {
          const int inner = element(m.type);
          if (inner < 0 || !why[static_cast<size_t>(inner)].empty()) continue;
          const Type& it = old_.at(inner);
          if (it.kind != TypeKind::Struct && it.kind != TypeKind::Union) continue;
          why[static_cast<size_t>(inner)] =
              fmt::format("held inside {}, which is not told by its tag ({})", old_.spell(i), why[static_cast<size_t>(i)]);
          grew = true;
        }
      }
    }
    return why;
  }

  // The void * members of the named structs any writable global reaches
  // ("slot.value"): where a pointer graft cannot follow may be.
  std::vector<std::string> untyped_members() const {
    std::set<int> seen;
    std::set<std::string> out;
    std::vector<int> stack;
    for (const auto& v : old_.variables)
      if (!v.constant && !v.thread_local_storage) stack.push_back(v.type);
    while (!stack.empty()) {
      const int i = stack.back();
      stack.pop_back();
      if (i < 0 || !seen.insert(i).second) continue;
      const Type& t = old_.at(i);
      if (t.target >= 0) stack.push_back(t.target);
      for (const auto& m : t.members) {
        const Type& mt = old_.at(m.type);
        if (t.kind == TypeKind::Struct && !t.name.empty() && !m.name.empty() && mt.kind == TypeKind::Pointer &&
            mt.target < 0)
          out.insert(transformable_tag(t.name) + "." + m.name);
        stack.push_back(m.type);
      }
    }
    return {out.begin(), out.end()};
  }

  const TypeTable& old_;
  const TypeTable& new_;
  TypeComparison compare_;
  const std::function<std::string(const Variable&, bool)>& identity_of_;
  const std::function<std::string(uint64_t)>& function_at_;
  std::vector<TypeChange> changes_;
  std::vector<DataRoot> roots_;
  std::vector<std::string> notes_;
  std::vector<bool> leads_;  // per old type: it can lead to a changed struct
  const std::vector<DataDirective>& directives_;
  std::vector<DeclaredPointer> pointers_;
  std::vector<DeclaredUnionMember> union_members_;
  std::map<std::pair<int, uint64_t>, std::string> opaque_;  // GRAFT_OPAQUE: container, offset -> source
  std::vector<UntypedMember> untyped_;
  std::map<std::string, std::pair<int, std::string>> declared_globals_;  // GRAFT_GLOBAL_*: key -> pointee (-1: opaque), source
  std::map<std::string, std::string> declared_frames_only_;  // GRAFT_FRAMES_ONLY: records' name -> source
  std::map<std::string, std::string> renamed_;  // find_renamed_structs: old struct name -> its new name
  std::set<std::string> user_transformed_;      // GRAFT_TRANSFORM: "struct node", by the name the user gives
  std::set<std::pair<std::string, std::string>> tails_;  // GRAFT_TAIL: "struct job", member, as the user names them
  std::set<int> tailed_;                        // the changed structs (old) a GRAFT_TAIL applies to
  std::map<std::pair<std::string, std::string>, std::string> retypes_;  // GRAFT_RETYPES: records' name, function -> source
  std::vector<UntypedGlobal> untyped_globals_;
  std::vector<std::pair<int, uint64_t>> number_members_;  // DataPlan::number_members
  const MemberFacts* facts_;
  DeclarationQuestions* questions_ = nullptr;  // filled when graft diff asks (--questions)
  std::optional<std::map<int, std::string>> hideable_;  // hideable_changes(), once
  std::optional<std::vector<std::string>> untagged_;     // untagged_why(), once
  std::optional<std::vector<HeapType>> told_;            // told_heap_types(), once
  std::optional<bool> arrays_told_;                      // arrays_by_heap_type(), once
  std::optional<std::vector<bool>> reaching_untyped_;    // for a union's void *, once
  std::optional<std::pair<int, std::string>> kernel_data_;  // kernel_data(), once
  std::map<std::string, std::vector<int>> aggregates_;  // indices_of: the complete structs and unions by name
  // What the records cannot settle: its name, and it with the lines that do.
  std::vector<std::pair<std::string, std::string>> asked_members_, asked_globals_;
  // What no declaration can settle: its name, and why.
  std::vector<std::pair<std::string, std::string>> unanswerable_;
};

}  // namespace

Result<DataPlan> plan_data_changes(const TypeTable& old_types, const TypeTable& new_types,
                                   const std::function<std::string(const Variable&, bool)>& identity_of,
                                   const std::function<std::string(uint64_t)>& function_at,
                                   const std::vector<DataDirective>& directives, const MemberFacts* facts,
                                   DeclarationQuestions* questions) {
  return Planner(old_types, new_types, identity_of, function_at, directives, facts, questions).run();
}

}  // namespace graft

namespace graft {
namespace {

bool is_integer(TypeKind k) {
  return k == TypeKind::Signed || k == TypeKind::Unsigned || k == TypeKind::Bool || k == TypeKind::Enum;
}

// Why some value of old field `a` would not survive the default's conversion
// to new field `b` ("" if every value does): what a revert could not bring back.
class LossFinder {
 public:
  LossFinder(const TypeTable& o, const TypeTable& n) : old_(o), new_(n), compare_(o, n) {}

  std::string field(const Field& a, const Field& b) const {
    if (!a.bit_size && !b.bit_size && !compare_.differs(a.type, b.type)) return "";
    const Type& x = old_.at(a.type);
    const Type& y = new_.at(b.type);
    const std::string from = old_.spell(a.type) + (a.bit_size ? fmt::format(":{}", a.bit_size) : "");
    const std::string to = new_.spell(b.type) + (b.bit_size ? fmt::format(":{}", b.bit_size) : "");
    if (x.kind == TypeKind::Pointer && y.kind == TypeKind::Pointer) return "";
    if (x.kind == TypeKind::Struct && y.kind == TypeKind::Struct)
      return x.name.empty() ? structure(a.type, b.type) : "";  // a named struct answers for itself
    if (x.kind == TypeKind::Array && y.kind == TypeKind::Array) {
      if (y.count < x.count) return fmt::format("shrinks from {} to {} elements", x.count, y.count);
      return field({"", 0, 0, 0, x.target}, {"", 0, 0, 0, y.target});
    }
    if (x.kind == TypeKind::Enum && y.kind == TypeKind::Enum) return enumerators(a.type, b.type);
    if (x.kind == TypeKind::Float && y.kind == TypeKind::Float)
      return y.size >= x.size ? "" : fmt::format("is narrowed ({} -> {})", from, to);
    const auto width = [](const Type& t, uint32_t bits) { return bits ? bits : static_cast<uint32_t>(t.size * 8); };
    const uint32_t wa = width(x, a.bit_size), wb = width(y, b.bit_size);
    const bool sa = signed_type(old_, x), sb = signed_type(new_, y);
    bool keeps = false;
    if (is_integer(x.kind) && y.kind == TypeKind::Float)
      keeps = wa <= (y.size == 4 ? 24u : 53u);
    else if (is_integer(x.kind) && is_integer(y.kind))
      keeps = x.kind == TypeKind::Bool || (y.kind != TypeKind::Bool && (sa ? sb && wb >= wa : sb ? wb > wa : wb >= wa));
    if (keeps) return "";
    // Said as what the update's conversion loses, which the revert cannot bring back.
    if (is_integer(y.kind) && wb >= wa && sa && !sb)
      return fmt::format("loses its sign ({} -> {}: a negative value does not survive the update)", from, to);
    if (is_integer(y.kind) && wb >= wa && !sa && sb)
      return fmt::format("becomes signed at the same width ({} -> {}: a value above its signed maximum does not "
                         "survive the update)", from, to);
    return fmt::format("is narrowed ({} -> {})", from, to);
  }

  // A struct's fields: one removed, or one whose values may not survive.
  std::string structure(int i, int j) const {
    const auto before = fields_of(old_, i);
    const auto after = fields_of(new_, j);
    for (const auto& o : before) {
      if (o.name.empty()) continue;
      auto it = std::find_if(after.begin(), after.end(), [&](const Field& f) { return f.name == o.name; });
      if (it == after.end()) return "removes " + o.name;
      if (std::string why = field(o, *it); !why.empty()) return o.name + " " + why;
    }
    return "";
  }

  std::string enumerators(int i, int j) const {
    for (const auto& [name, value] : old_.at(i).enumerators) {
      const auto& others = new_.at(j).enumerators;
      if (std::none_of(others.begin(), others.end(), [&](const auto& e) { return e.first == name; }))
        return "removes the enumerator " + name;
    }
    return "";
  }

 private:
  static bool signed_type(const TypeTable& t, const Type& type) {
    if (type.kind == TypeKind::Signed) return true;
    if (type.kind != TypeKind::Enum) return false;
    if (type.target >= 0) return t.at(type.target).kind == TypeKind::Signed;
    return std::any_of(type.enumerators.begin(), type.enumerators.end(), [](const auto& e) { return e.second < 0; });
  }

  const TypeTable& old_;
  const TypeTable& new_;
  TypeComparison compare_;
};

}  // namespace

std::string why_irreversible(const DataPlan& forward) {
  for (const auto& [type, function] : forward.user_transformers)
    return fmt::format("the user's transformer for {} ({} in {}) ran, and graft cannot invert the user's code", type,
                       function, forward.user_transformer_file);
  // A global's old storage keeps its old value (the patch gave it new
  // storage), so only the changed types say what a revert cannot bring back.
  const LossFinder losses(forward.old_types, forward.new_types);
  for (const auto& c : forward.changes) {
    const TypeKind kind = forward.old_types.at(c.old_type).kind;
    const std::string why = kind == TypeKind::Enum ? losses.enumerators(c.old_type, c.new_type)
                            : kind == TypeKind::Struct ? losses.structure(c.old_type, c.new_type)
                                                       : std::string("changes");
    if (why.empty()) continue;
    if (why.starts_with("removes the enumerator"))
      return fmt::format("it {} of {}: a value holding it could not be brought back", why, c.name);
    if (why.starts_with("removes "))
      return fmt::format("it removes {}.{}, whose values are gone from the live objects", c.name, why.substr(8));
    return fmt::format("{}.{}: values it held may not have survived", c.name, why);
  }
  return "";
}

void plan_inverse(DataPlan& forward, const TypeTable& old_types, const TypeTable& new_types,
                  const std::function<std::string(const Variable&, bool)>& identity_of,
                  const std::function<std::string(uint64_t)>& new_function_at, const MemberFacts* new_facts,
                  const std::vector<DataDirective>& directives) {
  forward.inverse.reset();
  forward.irreversible.clear();
  if (forward.empty()) return;
  if (std::string why = why_irreversible(forward); !why.empty()) {
    forward.irreversible = std::move(why);
    return;
  }
  auto back_identity = [&](const Variable& v, bool to_old_build) { return identity_of(v, !to_old_build); };
  // The user's directives speak of the program, and so of the way back too
  // (read against the new build, checked against its records). One that does
  // not fit the new build refuses the way back: planned without it, the
  // revert could leave what it declared in the new layout.
  // (A transformer of the user's is the forward's alone: why_irreversible refuses the way back then.)
  std::vector<DataDirective> back;
  for (const auto& d : directives)
    if (d.kind != DataDirective::Kind::Transform) back.push_back(d);
  auto inverse = plan_data_changes(new_types, old_types, back_identity, new_function_at, back, new_facts);
  if (!inverse) {
    forward.irreversible = "graft cannot plan the way back (" + inverse.error().message + ")";
    return;
  }
  inverse->exact = true;
  forward.inverse = std::make_shared<const DataPlan>(std::move(inverse.value()));
}

}  // namespace graft
