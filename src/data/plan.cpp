// Diff time: which types and globals change layout, how each field maps,
// and which globals are the roots of the live data to transform.
#include <algorithm>
#include <map>
#include <set>

#include "graft/data.h"
#include "type_compare.h"

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

bool TypeComparison::convertible(int i, int j) const {
  if (i < 0 || j < 0) return i == j;
  const Type& a = old_.at(i);
  const Type& b = new_.at(j);
  auto number = [](TypeKind k) {
    return k == TypeKind::Signed || k == TypeKind::Unsigned || k == TypeKind::Bool || k == TypeKind::Enum ||
           k == TypeKind::Float;
  };
  if (number(a.kind) && number(b.kind)) return (a.kind != TypeKind::Float || a.size <= 8) && (b.kind != TypeKind::Float || b.size <= 8);
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
  return t.name.empty() ? -1 : new_.find(t.name);
}

int TypeComparison::changed(int old_index) const {
  const Type& t = old_.at(old_index);
  if ((t.kind != TypeKind::Struct && t.kind != TypeKind::Union) || t.name.empty()) return -1;
  const int j = counterpart(old_index);
  return j >= 0 && differs(old_index, j) ? j : -1;
}

std::vector<bool> TypeComparison::reaches_change() const {
  const int n = static_cast<int>(old_.types.size());
  std::vector<bool> out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) out[i] = changed(i) >= 0;
  // A fixed point: structs reach themselves through pointers.
  for (bool grew = true; grew;) {
    grew = false;
    for (int i = 0; i < n; ++i) {
      if (out[i]) continue;
      const Type& t = old_.at(i);
      bool now = (t.kind == TypeKind::Pointer || t.kind == TypeKind::Array) && t.target >= 0 && out[t.target];
      for (const auto& m : t.members) now = now || out[m.type];
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

class Planner {
 public:
  Planner(const TypeTable& o, const TypeTable& n, const std::function<std::string(const Variable&, bool)>& identity_of,
          const std::function<std::string(uint64_t)>& function_at)
      : old_(o), new_(n), compare_(o, n), identity_of_(identity_of), function_at_(function_at) {}

  Result<DataPlan> run() {
    for (const auto& [name, i] : old_.named) {
      const int j = new_.find(name);
      if (j < 0 || old_.at(i).incomplete || new_.at(j).incomplete || !compare_.differs(i, j)) continue;
      for (const auto& a : {&old_.ambiguous, &new_.ambiguous})
        if (std::find(a->begin(), a->end(), name) != a->end())
          return make_error("{} changed, and two source files define different types of that name: graft cannot "
                            "tell which objects are which; rename one of them", name);
      TypeChange change{name, i, j, {}};
      GRAFT_TRY(explain(i, j, name, change.details));
      changes_.push_back(std::move(change));
    }
    GRAFT_TRY(find_roots());
    if (changes_.empty() && roots_.empty()) return DataPlan{};
    GRAFT_TRY(check_reachable());
    DataPlan plan;
    std::vector<int*> old_refs, new_refs;
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
    plan.frame_holders = frame_holders();
    for (auto& h : plan.frame_holders)
      for (auto& local : h.locals) old_refs.push_back(&local.type);
    // The new counterparts of every old named aggregate the traversal may meet.
    std::vector<int> counterparts;
    for (const auto& [name, i] : old_.named)
      if (int j = new_.find(name); j >= 0) counterparts.push_back(j);
    for (auto& j : counterparts) new_refs.push_back(&j);
    plan.old_types = subset(old_, old_refs);
    plan.new_types = subset(new_, new_refs);
    plan.notes = notes_;
    return plan;
  }

 private:
  // Functions of the old build with a local that may lead to a changed
  // struct, where it is live (offsets from the entry) and where its value is
  // there (types in old_).
  std::vector<DataPlan::FrameHolder> frame_holders() const {
    std::vector<DataPlan::FrameHolder> out;
    for (const auto& f : old_.frames) {
      DataPlan::FrameHolder holder{function_at_(f.address), {}};
      for (const auto& local : f.locals) {
        if (local.type < 0 || !leads_[local.type]) continue;
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

  // The explain lines of one changed aggregate; refuses a change no default transformer can make.
  Status explain(int i, int j, const std::string& where, std::vector<std::string>& out) {
    const Type& a = old_.at(i);
    const Type& b = new_.at(j);
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
      if (!compare_.convertible(it->type, f.type))
        return make_error("{} changed: field {} goes from {} to {}, which no default transformer converts; "
                          "nothing was written", where, f.name, old_.spell(it->type), new_.spell(f.type));
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
    for (const auto& o : before)
      if (!o.name.empty() &&
          std::none_of(after.begin(), after.end(), [&](const Field& f) { return f.name == o.name; }))
        out.push_back(fmt::format("{}: removed, its value is dropped", o.name));
    return ok();
  }

  Status find_roots() {
    std::map<std::string, const Variable*> after;
    for (const auto& v : new_.variables) after.emplace(v.key, &v);
    leads_ = compare_.reaches_change();
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
    return ok();
  }

  // A changed type no global reaches can only have instances in frames of
  // functions the patch replaces (which no thread is in at the commit) or
  // behind untyped pointers: the second is said, since graft cannot see it.
  Status check_reachable() {
    std::set<int> reached;
    std::vector<int> stack;
    for (const auto& r : roots_) stack.push_back(r.old_type);
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
      if (t.target >= 0) stack.push_back(t.target);
      for (const auto& m : t.members) stack.push_back(m.type);
    }
    for (const auto& c : changes_)
      if (!reached.count(c.old_type))
        notes_.push_back(fmt::format("no global reaches {} through typed pointers: live instances are assumed to "
                                     "be only in frames of replaced functions (a void pointer to one would keep "
                                     "the old layout)", c.name));
    return ok();
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
};

}  // namespace

Result<DataPlan> plan_data_changes(const TypeTable& old_types, const TypeTable& new_types,
                                   const std::function<std::string(const Variable&, bool)>& identity_of,
                                   const std::function<std::string(uint64_t)>& function_at) {
  return Planner(old_types, new_types, identity_of, function_at).run();
}

}  // namespace graft
