// The data plan as a patch stores it (JSON in its .graft.data section).
#include <algorithm>
#include <nlohmann/json.hpp>

#include "data/plan.h"

namespace graft {
namespace {

using nlohmann::json;

json table_to_json(const TypeTable& t) {
  json types = json::array();
  for (const auto& type : t.types) {
    json members = json::array();
    for (const auto& m : type.members) members.push_back({m.name, m.offset, m.bit_size, m.bit_offset, m.type});
    json enumerators = json::array();
    for (const auto& [name, value] : type.enumerators) enumerators.push_back({name, value});
    types.push_back({{"kind", static_cast<int>(type.kind)}, {"name", type.name}, {"size", type.size},
                     {"target", type.target}, {"count", type.count}, {"incomplete", type.incomplete},
                     {"members", members}, {"enumerators", enumerators}});
  }
  return types;
}

TypeTable table_from_json(const json& j) {
  TypeTable t;
  const int n = static_cast<int>(j.size());
  auto index = [&](const json& v) {
    const int i = v.get<int>();
    if (i < -1 || i >= n) throw std::runtime_error(fmt::format("type index {} out of range", i));
    return i;
  };
  for (const auto& e : j) {
    Type type;
    const int kind = e.at("kind").get<int>();
    if (kind < 0 || kind > static_cast<int>(TypeKind::Unknown)) throw std::runtime_error("bad type kind");
    type.kind = static_cast<TypeKind>(kind);
    type.name = e.at("name").get<std::string>();
    type.size = e.at("size").get<uint64_t>();
    type.target = index(e.at("target"));
    type.count = e.at("count").get<uint64_t>();
    type.incomplete = e.at("incomplete").get<bool>();
    for (const auto& m : e.at("members")) {
      Member member{m.at(0).get<std::string>(), m.at(1).get<uint64_t>(), m.at(2).get<uint32_t>(),
                    m.at(3).get<uint32_t>(), index(m.at(4))};
      if (member.type < 0) throw std::runtime_error("member without a type");
      type.members.push_back(std::move(member));
    }
    for (const auto& en : e.at("enumerators")) type.enumerators.emplace_back(en.at(0).get<std::string>(), en.at(1).get<int64_t>());
    if (!type.name.empty() && (type.kind == TypeKind::Struct || type.kind == TypeKind::Union || type.kind == TypeKind::Enum))
      t.named.emplace(type.name, static_cast<int>(t.types.size()));
    t.types.push_back(std::move(type));
  }
  return t;
}

}  // namespace

std::string encode_data_plan(const DataPlan& plan) {
  json changes = json::array();
  for (const auto& c : plan.changes)
    changes.push_back({{"name", c.name}, {"old", c.old_type}, {"new", c.new_type}, {"details", c.details}, {"hides", c.hides}});
  json holders = json::array();
  for (const auto& h : plan.frame_holders) {
    json locals = json::array();
    for (const auto& local : h.locals) {
      json live = json::array();
      for (const auto& r : local.live)
        live.push_back({r.start, r.end, static_cast<int>(r.place.kind), r.place.reg, r.place.offset});
      locals.push_back({{"name", local.name}, {"type", local.type}, {"live", live}});
    }
    holders.push_back({{"identity", h.identity}, {"locals", locals}});
  }
  json roots = json::array();
  for (const auto& r : plan.roots)
    roots.push_back({{"identity", r.identity}, {"variable", r.variable}, {"old", r.old_type}, {"new", r.new_type}});
  json pointers = json::array();
  for (const auto& p : plan.declared_pointers)
    pointers.push_back({{"container", p.container}, {"offset", p.offset}, {"pointee", p.pointee}, {"source", p.source},
                        {"into", p.into}, {"interior", p.interior}, {"recorded", p.recorded}, {"by_tag", p.by_tag}});
  json union_members = json::array();
  for (const auto& u : plan.declared_union_members)
    union_members.push_back({{"container", u.container}, {"union_offset", u.union_offset}, {"tag_offset", u.tag_offset},
                             {"tag_size", u.tag_size}, {"tag_signed", u.tag_signed}, {"tag_value", u.tag_value},
                             {"member_offset", u.member_offset}, {"member_type", u.member_type},
                             {"member", u.member}, {"source", u.source}});
  json untyped = json::array();
  for (const auto& u : plan.untyped_members) {
    json places = json::array();
    for (const auto& c : u.per_container)
      places.push_back({{"global", c.global}, {"container", c.container}, {"offset", c.offset},
                        {"pointer", c.pointer}, {"pointee", c.pointee}, {"text", c.text}});
    untyped.push_back({{"container", u.container}, {"offset", u.offset}, {"name", u.name}, {"holds", u.holds},
                       {"per_container", places}, {"family", u.family}, {"in_heap", u.in_heap},
                       {"by_heap_type", u.by_heap_type}});
  }
  json heap_types = json::array();
  for (const auto& h : plan.heap_types) heap_types.push_back({{"id", h.id}, {"type", h.type}});
  json globals = json::array();
  for (const auto& g : plan.untyped_globals)
    globals.push_back({{"identity", g.identity}, {"variable", g.variable}, {"pointee", g.pointee},
                       {"source", g.source}, {"recorded", g.recorded}});
  json out{{"old_types", table_to_json(plan.old_types)}, {"new_types", table_to_json(plan.new_types)},
           {"changes", changes}, {"roots", roots}, {"notes", plan.notes}, {"frame_holders", holders},
           {"user_transformers", plan.user_transformers}, {"user_transformer_file", plan.user_transformer_file},
           {"user_transformer_runner", plan.user_transformer_runner}, {"declared_pointers", pointers},
           {"declared_union_members", union_members}, {"untyped_members", untyped},
           {"untyped_globals", globals}, {"heap_types", heap_types}, {"untyped_arrays", plan.untyped_arrays},
           {"arrays_by_heap_type", plan.arrays_by_heap_type}, {"tails", plan.tails}};
  if (!plan.number_members.empty()) {
    json numbers = json::array();
    for (const auto& [type, offset] : plan.number_members) numbers.push_back({type, offset});
    out["number_members"] = numbers;
  }
  // The way back (absent from patches made before graft planned one).
  if (plan.inverse) out["inverse"] = json::parse(encode_data_plan(*plan.inverse));
  if (!plan.irreversible.empty()) out["irreversible"] = plan.irreversible;
  if (plan.exact) out["exact"] = true;
  if (!plan.set_at_commit.empty()) out["set_at_commit"] = plan.set_at_commit;
  if (!plan.renamed.empty()) out["renamed"] = plan.renamed;
  if (plan.kernel_data_pointee >= 0) {
    out["kernel_data_pointee"] = plan.kernel_data_pointee;
    out["kernel_data_source"] = plan.kernel_data_source;
  }
  return out.dump();
}

Result<DataPlan> decode_data_plan(const std::string& text) {
  try {
    const json j = json::parse(text);
    DataPlan plan;
    plan.old_types = table_from_json(j.at("old_types"));
    plan.new_types = table_from_json(j.at("new_types"));
    auto check = [](const TypeTable& t, int i, bool optional) {
      if ((i < 0 && !optional) || i >= static_cast<int>(t.types.size()))
        throw std::runtime_error(fmt::format("type index {} out of range", i));
      return i;
    };
    for (const auto& c : j.at("changes"))
      plan.changes.push_back({c.at("name").get<std::string>(), check(plan.old_types, c.at("old").get<int>(), false),
                              check(plan.new_types, c.at("new").get<int>(), false),
                              c.at("details").get<std::vector<std::string>>(), c.value("hides", true)});
    for (const auto& r : j.at("roots"))
      plan.roots.push_back({r.at("identity").get<std::string>(), r.at("variable").get<std::string>(),
                            check(plan.old_types, r.at("old").get<int>(), false),
                            check(plan.new_types, r.at("new").get<int>(), true)});
    plan.notes = j.at("notes").get<std::vector<std::string>>();
    for (const auto& h : j.at("frame_holders")) {
      DataPlan::FrameHolder holder{h.at("identity").get<std::string>(), {}};
      for (const auto& l : h.at("locals")) {
        DataPlan::FrameHolder::Local local{l.at("name").get<std::string>(),
                                           check(plan.old_types, l.at("type").get<int>(), false), {}};
        for (const auto& r : l.at("live")) {
          const int kind = r.at(2).get<int>();
          if (kind < 0 || kind > static_cast<int>(LocalPlace::Kind::InCallClobberedRegister)) throw std::runtime_error("bad local place");
          const int reg = r.at(3).get<int>();
          if (reg < -1 || reg >= 16) throw std::runtime_error("bad register number");
          local.live.push_back({r.at(0).get<uint64_t>(), r.at(1).get<uint64_t>(),
                                {static_cast<LocalPlace::Kind>(kind), reg, r.at(4).get<int64_t>()}});
        }
        holder.locals.push_back(std::move(local));
      }
      plan.frame_holders.push_back(std::move(holder));
    }
    if (j.contains("user_transformers")) {
      plan.user_transformers = j.at("user_transformers").get<std::map<std::string, std::string>>();
      plan.user_transformer_file = j.at("user_transformer_file").get<std::string>();
      plan.user_transformer_runner = j.at("user_transformer_runner").get<std::string>();
      for (const auto& named : plan.user_transformers)
        if (!plan.transformable(named.first) || plan.user_transformer_runner.empty())
          throw std::runtime_error("a transformer for " + named.first + ", which the plan does not change");
    }
    // Declared members lie inside their container; what they lead to is a struct.
    auto inside = [&](int container, uint64_t offset, uint64_t size) {
      const uint64_t whole = plan.old_types.at(container).size;
      if (plan.old_types.at(container).kind != TypeKind::Struct || offset > whole || size > whole - offset)
        throw std::runtime_error("a declared member outside its struct");
    };
    if (j.contains("declared_pointers"))
      for (const auto& p : j.at("declared_pointers")) {
        DeclaredPointer d{check(plan.old_types, p.at("container").get<int>(), false), p.at("offset").get<uint64_t>(),
                          check(plan.old_types, p.at("pointee").get<int>(), false), p.at("source").get<std::string>()};
        inside(d.container, d.offset, 8);
        d.into = p.value("into", uint64_t{0});
        d.interior = p.value("interior", false);
        d.recorded = p.value("recorded", false);
        d.by_tag = p.value("by_tag", false);
        if (d.interior) inside(d.pointee, d.into, plan.old_types.at(d.container).size);
        if (plan.old_types.at(d.pointee).kind != TypeKind::Struct) throw std::runtime_error("a declared pointee that is no struct");
        plan.declared_pointers.push_back(std::move(d));
      }
    if (j.contains("declared_union_members"))
      for (const auto& u : j.at("declared_union_members")) {
        DeclaredUnionMember d;
        d.container = check(plan.old_types, u.at("container").get<int>(), false);
        d.union_offset = u.at("union_offset").get<uint64_t>();
        d.tag_offset = u.at("tag_offset").get<uint64_t>();
        d.tag_size = u.at("tag_size").get<uint32_t>();
        d.tag_signed = u.at("tag_signed").get<bool>();
        d.tag_value = u.at("tag_value").get<int64_t>();
        d.member_offset = u.at("member_offset").get<uint64_t>();
        d.member_type = check(plan.old_types, u.at("member_type").get<int>(), false);
        d.member = u.at("member").get<std::string>();
        d.source = u.at("source").get<std::string>();
        if (d.tag_size != 1 && d.tag_size != 2 && d.tag_size != 4 && d.tag_size != 8) throw std::runtime_error("bad tag size");
        inside(d.container, d.tag_offset, d.tag_size);
        inside(d.container, d.member_offset, plan.old_types.at(d.member_type).size);
        plan.declared_union_members.push_back(std::move(d));
      }
    if (j.contains("untyped_members"))
      for (const auto& u : j.at("untyped_members")) {
        UntypedMember m{check(plan.old_types, u.at("container").get<int>(), false), u.at("offset").get<uint64_t>(),
                        u.at("name").get<std::string>(), {}, {}, {}};
        inside(m.container, m.offset, 8);
        if (u.contains("holds"))
          for (const auto& k : u.at("holds")) m.holds.push_back(check(plan.old_types, k.get<int>(), false));
        if (u.contains("per_container"))
          for (const auto& c : u.at("per_container")) {
            ContainerHolds place{c.at("global").get<std::string>(), c.at("container").get<int>(),
                                 c.at("offset").get<uint64_t>(), c.at("pointer").get<bool>(),
                                 check(plan.old_types, c.at("pointee").get<int>(), false), c.at("text").get<std::string>()};
            if (place.global.empty()) {
              place.container = check(plan.old_types, place.container, false);
              inside(place.container, place.offset, 1);
            }
            m.per_container.push_back(std::move(place));
          }
        if (u.contains("family"))
          for (const auto& k : u.at("family")) m.family.push_back(check(plan.old_types, k.get<int>(), false));
        m.in_heap = check(plan.old_types, u.value("in_heap", -1), true);
        m.by_heap_type = u.value("by_heap_type", false);
        plan.untyped_members.push_back(std::move(m));
      }
    if (j.contains("untyped_globals"))
      for (const auto& g : j.at("untyped_globals"))
        plan.untyped_globals.push_back({g.at("identity").get<std::string>(), g.at("variable").get<std::string>(),
                                        check(plan.old_types, g.at("pointee").get<int>(), false),
                                        g.at("source").get<std::string>(), g.value("recorded", false)});
    if (j.contains("heap_types"))
      for (const auto& h : j.at("heap_types")) {
        const auto id = h.at("id").get<uint32_t>();
        if (id == 0 || id > 0xffff) throw std::runtime_error("bad heap type id");
        plan.heap_types.push_back({static_cast<uint16_t>(id), check(plan.old_types, h.at("type").get<int>(), false)});
      }
    if (j.contains("number_members"))
      for (const auto& n : j.at("number_members"))
        plan.number_members.emplace_back(check(plan.old_types, n.at(0).get<int>(), false), n.at(1).get<uint64_t>());
    plan.untyped_arrays = j.value("untyped_arrays", false);
    plan.arrays_by_heap_type = j.value("arrays_by_heap_type", false);
    if (j.contains("tails"))
      for (const auto& t : j.at("tails")) plan.tails.push_back(check(plan.old_types, t.get<int>(), false));
    plan.irreversible = j.value("irreversible", std::string());
    plan.exact = j.value("exact", false);
    plan.set_at_commit = j.value("set_at_commit", std::vector<std::string>());
    plan.renamed = j.value("renamed", std::map<std::string, std::string>());
    if (j.contains("kernel_data_pointee")) {
      plan.kernel_data_pointee = check(plan.old_types, j.at("kernel_data_pointee").get<int>(), false);
      plan.kernel_data_source = j.value("kernel_data_source", std::string());
    }
    if (j.contains("inverse")) {
      auto inverse = decode_data_plan(j.at("inverse").dump());
      if (!inverse) throw std::runtime_error("its inverse: " + inverse.error().message);
      if (!inverse->exact) throw std::runtime_error("an inverse whose conversions are not checked");
      plan.inverse = std::make_shared<const DataPlan>(std::move(inverse.value()));
    }
    return plan;
  } catch (const std::exception& e) {
    return make_error("the patch's data plan is damaged ({})", e.what());
  }
}

}  // namespace graft
