// Diff time: graft-cc's member facts, read and joined (see member_facts.h).
#include "data/member_facts.h"

#include "common/member_facts_format.h"

namespace graft {
namespace {

std::vector<std::string> split(std::string_view line) {
  std::vector<std::string> out;
  for (size_t start = 0;;) {
    const size_t tab = line.find('\t', start);
    out.emplace_back(line.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
    if (tab == std::string_view::npos) return out;
    start = tab + 1;
  }
}

std::optional<uint64_t> number(const std::string& text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoull(text);
}

}  // namespace

std::optional<MemberFacts> MemberFacts::read(const ElfFile& binary, const Variants& variants) {
  const ElfSection* section = binary.section(kMemberFactsSection);
  if (!section || section->data.empty()) return std::nullopt;
  return parse(std::string_view(reinterpret_cast<const char*>(section->data.data()), section->data.size()), variants);
}

namespace {

// The struct names in a record, as the unit's own: its variant where the unit
// defines one ("struct dict" -> "struct dict@async.c"). Which fields are
// names depends on the kind (member_facts_format.h); an ORIGIN's "type
// STRUCT" and "member CONTAINER OFFSET" name one too.
void qualify(std::vector<std::string>& fields, const std::map<std::string, std::string>& own) {
  auto name = [&](std::string& field) {
    if (auto it = own.find(field); it != own.end()) {
      field = it->second;
    } else if (field.starts_with("struct ") || field.starts_with("union ")) {
      // A typedef'd anonymous struct: the records say "struct THREAD", DWARF "THREAD".
      const size_t space = field.find(' ');
      if (auto bare = own.find(field.substr(space + 1)); bare != own.end())
        field = field.substr(0, space + 1) + bare->second;
    }
  };
  auto origin = [&](size_t at) {
    if (at + 1 < fields.size() && (fields[at] == "type" || fields[at] == "member")) name(fields[at + 1]);
  };
  const std::string& kind = fields[0];
  if (kind == "made" || kind == "kept" || kind == "castfrom" || kind == "tagged") {
    if (fields.size() > 1) name(fields[1]);
  } else if (kind == "interior") {
    if (fields.size() > 2) name(fields[1]), name(fields[2]);
  } else if (kind == "castof") {
    if (fields.size() > 3) name(fields[1]), origin(3);
  } else if (kind == "store") {
    if (fields.size() > 4 && !fields[1].starts_with("global ")) name(fields[1]);
    origin(4);
  } else if (kind == "within") {
    if (fields.size() > 9) {
      name(fields[4]);
      if (fields[5] == "member") name(fields[6]);
      origin(9);
    }
  } else if (kind == "return") {
    origin(2);
  } else if (kind == "arg") {
    origin(3);
  }
}

}  // namespace

MemberFacts MemberFacts::parse(std::string_view text, const Variants& variants) {
  MemberFacts facts;
  struct Interior {
    std::string enclosing, member, function;
  };
  std::vector<Interior> interior;
  const std::map<std::string, std::string>* own = nullptr;  // the variants of the unit being read
  // A line that does not parse (a newer graft-cc's record) is skipped.
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    auto fields = split(text.substr(start, end - start));
    start = end + 1;
    if (fields[0] == "begin" && fields.size() == 2) {
      auto it = variants.find(fields[1]);
      own = it == variants.end() ? nullptr : &it->second;
      facts.begun_units_.insert(fields[1]);
      continue;
    }
    if (own) qualify(fields, *own);
    const std::string& kind = fields[0];
    if (kind == "unit" && fields.size() == 2) {
      facts.units_.insert(fields[1]);
    } else if (kind == "instances" && fields.size() >= 2) {
      facts.instance_units_.insert(fields[1]);
      // "kept interior": a graft-cc that records pointers into the structs that hold others by value.
      if (fields.size() == 4 && fields[2] == "kept" && fields[3] == "interior") facts.kept_units_.insert(fields[1]);
    } else if (kind == "made" && fields.size() == 3) {
      facts.made_[fields[1]].insert(fields[2]);
    } else if (kind == "castfrom_unit" && fields.size() == 2) {
      facts.cast_units_.insert(fields[1]);
    } else if (kind == "heap_types" && fields.size() == 2) {
      facts.heap_units_.insert(fields[1]);
    } else if (kind == "tagged" && fields.size() == 5) {
      if (auto id = number(fields[2]); id && *id > 0 && *id <= 0xffff) {
        facts.tagged_[fields[1]].insert({static_cast<uint16_t>(*id), fields[3]});
        facts.tag_names_[static_cast<uint16_t>(*id)].insert(fields[1]);
      }
    } else if (kind == "fresh" && fields.size() == 2) {
      facts.fresh_.insert(fields[1]);
    } else if (kind == "slotfresh" && fields.size() == 4) {
      facts.slot_fresh_[fields[1]] = {fields[2], fields[3]};
    } else if (kind == "slot" && fields.size() == 4) {
      facts.slots_.insert({fields[1], fields[2]});
    } else if (kind == "writes" && fields.size() == 3) {
      facts.writers_[fields[1]].insert(fields[2]);
    } else if (kind == "refers" && fields.size() == 2) {
      facts.referred_.insert(fields[1]);
    } else if (kind == "castof" && fields.size() >= 5) {
      facts.cast_of_[{fields[1], fields[2]}].emplace_back(fields.begin() + 3, fields.end());
    } else if (kind == "castfrom" && fields.size() == 4) {
      facts.cast_from_[fields[1]].insert(fields[2]);
    } else if (kind == "kept" && fields.size() == 3) {
      facts.kept_[fields[1]].insert(fields[2]);
    } else if (kind == "interior" && fields.size() == 4) {
      interior.push_back({fields[1], fields[2], fields[3]});
    } else if (kind == "called" && fields.size() == 2) {
      facts.called_.insert(fields[1]);
    } else if (kind == "store" && fields.size() >= 6) {
      if (auto offset = number(fields[2]))
        facts.stores_[{fields[1], *offset}].push_back({fields[3], {fields.begin() + 4, fields.end()}});
      if (fields[4] == "type" && fields.size() == 6) facts.kept_untyped_.insert(fields[5]);
    } else if (kind == "within" && fields.size() >= 11) {
      Within w;
      w.pointee = fields[4];
      if (auto offset = number(fields[7]); offset && (fields[5] == "global" || fields[5] == "member") &&
                                           (fields[8] == "addr" || fields[8] == "load"))
        w.place = ContainerPlace{fields[5] == "global", fields[6], *offset, fields[8] == "load"};
      w.origin.assign(fields.begin() + 9, fields.end());
      facts.within_[{fields[1], fields[2], fields[3]}].push_back(std::move(w));
    } else if (kind == "returner" && fields.size() == 2) {
      facts.returners_.insert(fields[1]);
    } else if (kind == "return" && fields.size() >= 4) {
      facts.returns_[fields[1]].emplace_back(fields.begin() + 2, fields.end());
      if (fields[2] == "type" && fields.size() == 4) facts.kept_untyped_.insert(fields[3]);
    } else if (kind == "arg" && fields.size() >= 5) {
      facts.args_[{fields[1], fields[2]}].emplace_back(fields.begin() + 3, fields.end());
      // free() keeps nothing it is given.
      if (fields[3] == "type" && fields.size() == 5 && fields[1] != "free") facts.kept_untyped_.insert(fields[4]);
    }
  }
  // A pointer into a struct that holds another by value (&it->link), kept
  // as the member's struct is: the enclosing struct is kept too, and kept
  // untyped where the member's is. Joined until nothing changes (a member
  // may itself enclose another).
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& i : interior) {
      auto member = facts.kept_.find(i.member);
      if (member != facts.kept_.end() && !member->second.empty()) {
        const std::string why = fmt::format("a pointer to its {} (whose address {} takes) may be kept: {}", i.member,
                                            i.function, *member->second.begin());
        auto& kept = facts.kept_[i.enclosing];
        grew |= kept.empty() && kept.insert(why).second;
        facts.kept_inside_.emplace(i.enclosing, why);
      }
      if (facts.kept_untyped_.count(i.member)) grew |= facts.kept_untyped_.insert(i.enclosing).second;
    }
  }
  return facts;
}

void MemberFacts::add(const std::vector<std::string>& origin, const std::string& function, const ForeignCaller& foreign_caller,
                      MemberHolds& out, std::set<Key>& visiting, int depth) const {
  const std::string& kind = origin[0];
  if (kind == "type" && origin.size() == 2) {
    out.types.insert(origin[1]);
    out.stored_by[origin[1]].insert(function);
  } else if (kind == "member" && origin.size() == 3) {
    if (auto offset = number(origin[2])) collect({origin[1], *offset}, foreign_caller, out, visiting, depth + 1);
    else out.unknown.insert("a value of " + origin[1] + " in " + function);
  } else if (kind == "param" && origin.size() == 3) {
    const std::string& callee = origin[1];
    if (called_.count(callee)) {
      out.unknown.insert("a parameter of " + callee + ", which is called through a pointer");
    } else if (depth > 4) {
      out.unknown.insert("a parameter of " + callee + " passed on too many times");
    } else {
      if (foreign_caller(callee)) out.unknown.insert("a parameter of " + callee + ", which code not built with graft-cc may call");
      if (auto it = args_.find({callee, origin[2]}); it != args_.end())
        for (const auto& passed : it->second) add(passed, callee, foreign_caller, out, visiting, depth + 1);
    }
  } else if (kind == "result" && origin.size() == 3) {
    // A function of a unit with records returns what its return records say;
    // another's result is unknown, and so is that of a function a unit
    // without records names (it may define another of that name).
    const std::string& callee = origin[1];
    if (!returners_.count(callee) || foreign_caller(callee) || depth > 4) {
      out.unknown.insert(origin[2]);
    } else if (auto it = returns_.find(callee); it != returns_.end() && returning_.insert(callee).second) {
      for (const auto& returned : it->second) add(returned, callee, foreign_caller, out, visiting, depth + 1);
      returning_.erase(callee);
    }
  } else if (kind == "unknown" && origin.size() == 2) {
    out.unknown.insert(origin[1]);
  } else {
    out.unknown.insert("a record graft does not know in " + function);
  }
}

void MemberFacts::collect(const Key& key, const ForeignCaller& foreign_caller, MemberHolds& out, std::set<Key>& visiting,
                          int depth) const {
  if (!visiting.insert(key).second) return;  // a member copied from itself adds nothing
  auto it = stores_.find(key);
  if (it == stores_.end()) return;
  for (const auto& store : it->second) {
    out.stored = true;
    out.functions.insert(store.function);
    add(store.origin, store.function, foreign_caller, out, visiting, depth);
  }
}

namespace {
const std::set<std::string>& reasons(const std::map<std::string, std::set<std::string>>& records,
                                     const std::string& aggregate) {
  static const std::set<std::string> kNowhere;
  auto it = records.find(aggregate);
  return it == records.end() ? kNowhere : it->second;
}
}  // namespace

const std::set<std::string>& MemberFacts::made(const std::string& aggregate) const { return reasons(made_, aggregate); }
const std::set<std::string>& MemberFacts::kept(const std::string& aggregate) const { return reasons(kept_, aggregate); }
const std::set<std::string>& MemberFacts::cast_from(const std::string& aggregate) const {
  return reasons(cast_from_, aggregate);
}

const std::set<std::pair<uint16_t, std::string>>& MemberFacts::tagged(const std::string& aggregate) const {
  static const std::set<std::pair<uint16_t, std::string>> kNone;
  auto it = tagged_.find(aggregate);
  return it == tagged_.end() ? kNone : it->second;
}
const std::vector<std::vector<std::string>>* MemberFacts::cast_of(const std::string& aggregate,
                                                                   const std::string& function) const {
  auto it = cast_of_.find({aggregate, function});
  return it == cast_of_.end() ? nullptr : &it->second;
}
const std::vector<std::vector<std::string>>* MemberFacts::returns(const std::string& function) const {
  static const std::vector<std::vector<std::string>> kNothing;
  if (!returners_.count(function)) return nullptr;
  auto it = returns_.find(function);
  return it == returns_.end() ? &kNothing : &it->second;
}
const std::vector<std::vector<std::string>>& MemberFacts::args(const std::string& callee, size_t k) const {
  static const std::vector<std::vector<std::string>> kNone;
  auto it = args_.find({callee, std::to_string(k)});
  return it == args_.end() ? kNone : it->second;
}
bool MemberFacts::tags_fire(const std::string& callee) const {
  for (const char* f : kHeapTypesAllocators)
    if (callee == f) return true;
  if (fresh_.count(callee)) return true;
  // Through an allocator table's slot: the initializer holds one of malloc's
  // family there, and whatever writes the table never runs (no unit calls it
  // or takes its address).
  auto slot = slot_fresh_.find(callee);
  if (slot == slot_fresh_.end() || !slots_.count(slot->second)) return false;
  auto writers = writers_.find(slot->second.first);
  return writers == writers_.end() ||
         std::none_of(writers->second.begin(), writers->second.end(), [&](const auto& w) { return referred_.count(w); });
}
const std::set<std::string>& MemberFacts::tag_names(uint16_t id) const {
  static const std::set<std::string> kNone;
  auto it = tag_names_.find(id);
  return it == tag_names_.end() ? kNone : it->second;
}

MemberHolds MemberFacts::results_of(const std::string& callee, const ForeignCaller& foreign_caller) const {
  MemberHolds out;
  std::set<Key> visiting;
  add({"result", callee, "returned by " + callee}, callee, foreign_caller, out, visiting, 0);
  return out;
}

std::optional<PerContainer> MemberFacts::per_container(const std::string& container, uint64_t offset,
                                                       const ForeignCaller& foreign_caller) const {
  const bool tagged = container.starts_with("struct ") || container.starts_with("union ");
  auto stores = stores_.find({tagged ? container : "struct " + container, offset});
  if (stores == stores_.end()) return std::nullopt;
  // Every value stored is a parameter of a function only this build's recorded code calls.
  std::set<std::pair<std::string, std::string>> parameters;
  for (const auto& store : stores->second) {
    if (store.origin.size() != 3 || store.origin[0] != "param") return std::nullopt;
    const std::string& callee = store.origin[1];
    if (called_.count(callee) || foreign_caller(callee) || !args_.count({callee, store.origin[2]})) return std::nullopt;
    parameters.insert({callee, store.origin[2]});
  }
  std::optional<PerContainer> out;
  for (const auto& [callee, k] : parameters) {
    // The other parameter whose every call names a place and one struct per place.
    std::optional<PerContainer> found;
    for (auto it = within_.lower_bound({callee, k, ""}); it != within_.end() && std::get<0>(it->first) == callee &&
                                                         std::get<1>(it->first) == k && !found;
         ++it) {
      PerContainer candidate;
      bool fits = true;
      for (const auto& w : it->second) {
        if (!w.place || w.pointee == "-" || w.origin.size() != 2 || w.origin[0] != "type" ||
            (!candidate.container.empty() && candidate.container != w.pointee)) {
          fits = false;
          break;
        }
        candidate.container = w.pointee;
        auto [held, added] = candidate.holds.emplace(*w.place, w.origin[1]);
        if (!added && held->second != w.origin[1]) {
          fits = false;
          break;
        }
      }
      if (fits && !candidate.holds.empty()) found = std::move(candidate);
    }
    if (!found) return std::nullopt;
    // Every value passed must be a struct's address (the "arg" records count every call).
    for (const auto& passed : args_.at({callee, k}))
      if (passed.size() != 2 || passed[0] != "type") return std::nullopt;
    if (!out) {
      out = PerContainer{found->container, {}, {}};
    } else if (out->container != found->container) {
      return std::nullopt;
    }
    for (const auto& [place, type] : found->holds) {
      auto [held, added] = out->holds.emplace(place, type);
      if (!added && held->second != type) return std::nullopt;
    }
    out->calls.insert(callee);
  }
  return out;
}

MemberHolds MemberFacts::holds(const std::string& container, uint64_t offset, const ForeignCaller& foreign_caller) const {
  MemberHolds out;
  std::set<Key> visiting;
  // The plugin names an anonymous struct a typedef names as clang does (%struct.THREAD).
  const bool tagged = container.starts_with("struct ") || container.starts_with("union ") ||
                     container.starts_with("global ");
  collect({tagged ? container : "struct " + container, offset}, foreign_caller, out, visiting, 0);
  return out;
}

}  // namespace graft
