// The old layouts as C, for transformers written by the user: every changed
// struct, and every aggregate it holds by value, declared as
// `struct graft_old_<tag>` with the exact offsets DWARF gives (packed, with
// explicit padding and bit positions), checked by static assertions.
#include <algorithm>
#include <cctype>
#include <set>

#include "data/plan.h"

namespace graft {
namespace {

std::string identifier(std::string text) {
  for (char& c : text)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return text;
}

// The natural alignment of a type, as the compiler of the old build chose it.
uint64_t alignment(const TypeTable& t, int index, int depth = 0) {
  const Type& type = t.at(index);
  switch (type.kind) {
    case TypeKind::Array:
      return type.target >= 0 && depth < 32 ? alignment(t, type.target, depth + 1) : 1;
    case TypeKind::Struct:
    case TypeKind::Union: {
      uint64_t a = 1;
      for (const auto& m : type.members) a = std::max(a, depth < 32 ? alignment(t, m.type, depth + 1) : 1);
      return a;
    }
    case TypeKind::Pointer:
      return 8;
    default:
      return type.size && type.size <= 16 && !(type.size & (type.size - 1)) ? type.size : 1;
  }
}

class HeaderWriter {
 public:
  explicit HeaderWriter(const TypeTable& types) : t_(types) {}

  // The tag graft gives an old aggregate: struct graft_old_node, struct graft_old_anon_12.
  std::string tag(int index) const {
    const Type& type = t_.at(index);
    const char* keyword = type.kind == TypeKind::Union ? "union" : "struct";
    const auto space = type.name.find(' ');
    const std::string base = type.name.empty() || space == std::string::npos
                                 ? fmt::format("anon_{}", index)
                                 : identifier(type.name.substr(space + 1));
    return fmt::format("{} graft_old_{}", keyword, base);
  }

  // A declaration of `name` with type `index`, as C spells it.
  std::string declare(int index, const std::string& name) const {
    if (index < 0) return "void " + name;
    const Type& type = t_.at(index);
    switch (type.kind) {
      case TypeKind::Void:
        return "void " + name;
      case TypeKind::Pointer: {
        if (type.target < 0) return "void *" + name;
        const TypeKind to = t_.at(type.target).kind;
        if (to == TypeKind::Function || to == TypeKind::Array || to == TypeKind::Unknown) return "void *" + name;
        return declare(type.target, "*" + name);
      }
      case TypeKind::Array:
        return declare(type.target, fmt::format("{}[{}]", name, type.count));
      case TypeKind::Struct:
      case TypeKind::Union:
        return tag(index) + " " + name;
      case TypeKind::Signed:
      case TypeKind::Unsigned:
      case TypeKind::Bool:
      case TypeKind::Enum:
      case TypeKind::Float:
        return scalar(type) + " " + name;
      default:
        return fmt::format("unsigned char {}[{}]", name, type.size);
    }
  }

  // Emits an aggregate after everything it holds by value.
  void emit(int index) {
    if (!done_.insert(index).second) return;
    const Type& type = t_.at(index);
    for (const auto& m : type.members) {
      int inner = m.type;
      while (inner >= 0 && t_.at(inner).kind == TypeKind::Array) inner = t_.at(inner).target;
      if (inner >= 0 && (t_.at(inner).kind == TypeKind::Struct || t_.at(inner).kind == TypeKind::Union)) emit(inner);
    }
    if (type.incomplete) {
      out_ += tag(index) + ";\n\n";
      return;
    }
    uint64_t align = alignment(t_, index);
    while (align > 1 && type.size % align) align /= 2;
    out_ += fmt::format("/* {}: {} bytes in the old build */\n{} {{\n", type.name.empty() ? "(anonymous)" : type.name,
                        type.size, tag(index));
    std::vector<std::string> checks;
    if (type.kind == TypeKind::Union) {
      for (const auto& m : type.members) out_ += "  " + member(m) + "\n";
      out_ += fmt::format("  unsigned char graft_size[{}];\n", type.size);
    } else {
      body(index, checks);
    }
    out_ += fmt::format("}} __attribute__((packed, aligned({})));\n", align);
    out_ += fmt::format("_Static_assert(sizeof({}) == {}, \"graft: the layout of {} differs from the old build\");\n",
                        tag(index), type.size, tag(index));
    for (const auto& c : checks) out_ += c;
    out_ += "\n";
  }

  std::string text() const { return out_; }

 private:
  static std::string scalar(const Type& type) {
    if (type.kind == TypeKind::Float) return type.size == 4 ? "float" : type.size == 8 ? "double" : "long double";
    if (type.kind == TypeKind::Bool) return "_Bool";
    if (type.name == "char") return "char";
    const bool is_signed = type.kind == TypeKind::Signed ||
                           (type.kind == TypeKind::Enum && std::any_of(type.enumerators.begin(), type.enumerators.end(),
                                                                       [](const auto& e) { return e.second < 0; }));
    const char* base = type.size == 1 ? "char" : type.size == 2 ? "short" : type.size == 4 ? "int"
                       : type.size == 16                        ? "__int128"
                                                                : "long long";
    return fmt::format("{} {}", is_signed ? "signed" : "unsigned", base);
  }

  // A member's declaration; an enum's old values in a comment (its constants
  // are the new version's, perhaps renumbered).
  std::string member(const Member& m) const {
    const std::string name = m.name.empty() ? fmt::format("graft_anon_{}", m.offset) : m.name;
    std::string out = declare(m.type, name) + (m.bit_size ? fmt::format(" : {}", m.bit_size) : "") + ";";
    if (const Type& type = t_.at(m.type); type.kind == TypeKind::Enum) {
      std::string values;
      for (const auto& [enumerator, value] : type.enumerators)
        values += fmt::format("{}{} = {}", values.empty() ? "" : ", ", enumerator, value);
      out += fmt::format("  /* {}, old values: {} */", type.name.empty() ? "enum" : type.name, values);
    }
    return out;
  }

  // Members in the order of their bits, with explicit padding between them:
  // in a packed struct, nothing else moves them.
  void body(int index, std::vector<std::string>& checks) {
    const Type& type = t_.at(index);
    std::vector<const Member*> members;
    for (const auto& m : type.members) members.push_back(&m);
    auto bit = [](const Member* m) { return m->offset * 8 + m->bit_offset; };
    std::stable_sort(members.begin(), members.end(), [&](auto* a, auto* b) { return bit(a) < bit(b); });
    uint64_t cursor = 0;  // in bits
    int pad = 0;
    for (const Member* m : members) {
      const uint64_t at = bit(m);
      if (at < cursor) continue;  // overlapping (never from a C compiler): the first one stands
      if (m->bit_size) {
        for (uint64_t gap = at - cursor; gap;) {
          const uint64_t n = std::min<uint64_t>(gap, 64);
          out_ += fmt::format("  unsigned long long : {};\n", n);
          gap -= n;
        }
        out_ += "  " + member(*m) + "\n";
        cursor = at + m->bit_size;
        continue;
      }
      cursor = (cursor + 7) / 8 * 8;  // a member that is not a bit-field starts on a byte
      if (at > cursor) out_ += fmt::format("  unsigned char graft_pad{}[{}];\n", pad++, (at - cursor) / 8);
      out_ += "  " + member(*m) + "\n";
      cursor = at + t_.at(m->type).size * 8;
      if (!m->name.empty())
        checks.push_back(fmt::format("_Static_assert(__builtin_offsetof({}, {}) == {}, \"graft: offset of {}\");\n",
                                     tag(index), m->name, m->offset, m->name));
    }
    cursor = (cursor + 7) / 8 * 8;
    if (type.size * 8 > cursor) out_ += fmt::format("  unsigned char graft_pad{}[{}];\n", pad, (type.size * 8 - cursor) / 8);
  }

  const TypeTable& t_;
  std::set<int> done_;
  std::string out_;
};

}  // namespace

std::string transformable_tag(const std::string& type_name) {
  if (!type_name.starts_with("struct ")) return "";
  const std::string tag = type_name.substr(7);
  if (tag.empty() || std::any_of(tag.begin(), tag.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)) && c != '_'; }))
    return "";
  return tag;
}

std::string user_transformer_name(const std::string& tag) { return "graft_transform__" + tag; }

std::string user_transformer_signature(const std::string& tag) {
  return fmt::format("void {}(const struct graft_old_{} *from, struct {} *to)", user_transformer_name(tag), tag, tag);
}

std::string old_types_header(const DataPlan& plan, const std::string& old_binary) {
  HeaderWriter writer(plan.old_types);
  std::string usage, aliases;
  for (int i : plan.transformable_structs()) {
    const std::string& name = plan.old_types.at(i).name;
    std::string tag = transformable_tag(name);
    if (tag.empty()) continue;
    writer.emit(i);
    // A renamed struct's transformer goes by its new name: its old layout under that name too.
    if (const std::string renamed = plan.new_name_of(name); renamed != name)
      if (const std::string to = transformable_tag(renamed); !to.empty() && to != tag) {
        aliases += fmt::format("#define graft_old_{} graft_old_{}  /* {} is {} in the new version */\n", to, tag,
                               name, renamed);
        tag = to;
      }
    usage += fmt::format(" *   GRAFT_TRANSFORM({}, from, to) {{ ... }}\n *     = {}\n", tag, user_transformer_signature(tag));
  }
  return fmt::format(
      "/* Generated by graft diff from the debug information of {}:\n"
      " * the old layout of every struct the new version changes, byte for byte.\n"
      " *\n"
      " * In your transformer file (graft diff OLD NEW --transform FILE.c), include\n"
      " * <graft/graft.h>, the program's own headers (the new types) and this one,\n"
      " * then define a transformer for any of:\n"
      " *\n{} *\n"
      " * `to` arrives filled by the generated default: write only what differs.\n"
      " * A transformer runs inside the target at the commit, while every other\n"
      " * thread is stopped, perhaps holding a lock: do not call malloc or free,\n"
      " * take locks or block; read from `from` (and, carefully, what it points\n"
      " * to: still in the old layout), write only `to`. A fault or the time limit\n"
      " * aborts the update, and the program goes on unchanged.\n"
      " */\n"
      "#ifndef GRAFT_OLD_TYPES_H\n#define GRAFT_OLD_TYPES_H\n\n{}{}#endif\n",
      old_binary, usage, writer.text(), aliases.empty() ? "" : aliases + "\n");
}

}  // namespace graft
