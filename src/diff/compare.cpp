#include "diff/compare.h"

#include <elf.h>

#include <cstring>

#include "diff/continuation.h"
#include "patch/relocation.h"

namespace graft::diff {
namespace {

// The bytes a PC-relative reference actually points at: its addend counts from
// the end of a 4-byte field, as in the usual `lea sym(%rip)`.
int64_t pointed_offset(const Target& t, uint32_t type) {
  return t.offset + (relocation_is_pc_relative(type) ? 4 : 0);
}

std::string merged_piece(const ElfSection& s, int64_t at) {
  if (at < 0 || static_cast<uint64_t>(at) >= s.data.size()) return {};
  if (s.flags & SHF_STRINGS) {
    const auto* begin = s.data.data() + at;
    const auto* end = static_cast<const uint8_t*>(std::memchr(begin, 0, s.data.size() - at));
    return std::string(begin, end ? end : s.data.data() + s.data.size());
  }
  const uint64_t size = s.entsize ? s.entsize : 1;
  const uint64_t start = static_cast<uint64_t>(at) / size * size;
  return std::string(reinterpret_cast<const char*>(s.data.data() + start),
                     std::min<uint64_t>(size, s.data.size() - start));
}

// What a relocated field names: how far past the field the address lies (a
// pc-relative field in code counts from the end of its instruction: `lea
// x(%rip)` and `cmpl $1, x(%rip)` differ; a field in data from itself), and
// whether the instruction reads or writes there (then it cannot mean the end
// of the object before: only an address taken or compared can).
struct FieldUse {
  int64_t correction = 0;
  bool accesses = false;
};

FieldUse field_use(const Build& build, SectionRef from, const ElfRelocation& r) {
  const ElfSection& code = build.section(from);
  if (!(code.flags & SHF_EXECINSTR)) return {};
  const FieldUse plain{relocation_is_pc_relative(r.type) ? 4 : 0, false};  // a field that ends its instruction
  const std::string* function = build.owner_identity(from, static_cast<int64_t>(r.offset));
  const Definition* def = function ? build.find(*function) : nullptr;
  if (!def || def->section != from) return plain;
  const ElfSymbol& f = build.symbol(def->section.object, def->symbol);
  auto instructions = decode(code, f.value, f.size);
  if (!instructions) return plain;
  for (const Instruction& i : *instructions) {
    if (r.offset < i.offset || r.offset >= i.offset + i.ins.length) continue;
    FieldUse use{relocation_is_pc_relative(r.type) ? static_cast<int64_t>(i.offset + i.ins.length - r.offset) : 0, false};
    for (uint8_t o = 0; o < i.ins.operand_count_visible; ++o)
      use.accesses |= i.ops[o].type == ZYDIS_OPERAND_TYPE_MEMORY && i.ins.mnemonic != ZYDIS_MNEMONIC_LEA;
    return use;
  }
  return plain;
}

}  // namespace

Result<Target> resolve_target(const Build& build, SectionRef from, const ElfRelocation& r) {
  const ElfSymbol& s = build.symbol(from.object, r.symbol);
  if (s.shndx == SHN_UNDEF) {
    // Defined by another object of the same build: compare it as what it is.
    if (const Definition* def = build.find(s.name))
      return Target{Target::Named, s.name, def->section, r.addend, {}};
    return Target{Target::External, s.name, {}, r.addend, {}};
  }
  if (s.shndx >= SHN_LORESERVE)
    return make_error("a reference to the special symbol '{}' (section index {:#x}) cannot be patched", s.name, s.shndx);
  const SectionRef section{from.object, s.shndx};
  if (is_named(s)) {
    const std::string id = build.identity(from.object, s);
    const Definition* def = build.find(id);
    return Target{Target::Named, id, def ? def->section : section, r.addend, {}};
  }
  // Through the section's symbol (a static the assembler names by its place):
  // the definition at the address named, when the section holds several.
  const int64_t named = static_cast<int64_t>(s.value) + r.addend;
  const FieldUse use = build.holds_several(section) ? field_use(build, from, r) : FieldUse{};
  const int64_t address = named + use.correction;
  if (const std::string* id = build.owner_identity(section, address)) {
    const Definition* owner = build.find(*id);
    const ElfSymbol& o = build.symbol(owner->section.object, owner->symbol);
    Target t{Target::Named, *id, section, named - static_cast<int64_t>(o.value), {}};
    if (const std::string* end = use.accesses ? nullptr : build.ending_at(section, address)) t.or_end_of = *end;
    return t;
  }
  return Target{Target::Anonymous, {}, section, static_cast<int64_t>(s.value) + r.addend, {}};
}

bool Comparator::same_section(SectionRef a, SectionRef b, std::string* reason) {
  const auto key = std::make_pair(a, b);
  if (auto it = memo_.find(key); it != memo_.end() && !reason) return it->second;
  memo_[key] = true;  // a cycle of references compares equal unless something else differs
  const bool same = compare(a, b, reason);
  memo_[key] = same;
  return same;
}

bool Comparator::compare(SectionRef a, SectionRef b, std::string* reason) {
  const ElfSection& sa = old_.section(a);
  const ElfSection& sb = new_.section(b);
  auto differ = [&](std::string why) {
    if (reason) *reason = std::move(why);
    return false;
  };
  constexpr uint64_t kFlags = SHF_WRITE | SHF_EXECINSTR | SHF_MERGE | SHF_STRINGS | SHF_ALLOC;
  if (sa.size != sb.size || sa.type != sb.type || (sa.flags & kFlags) != (sb.flags & kFlags))
    return differ("its machine code changed");
  const auto& ra = old_.relocations(a);
  const auto& rb = new_.relocations(b);
  if (ra.size() != rb.size()) return differ("its machine code changed");
  std::vector<uint8_t> bytes_a(sa.data.begin(), sa.data.end()), bytes_b(sb.data.begin(), sb.data.end());
  for (size_t i = 0; i < ra.size(); ++i) {
    if (ra[i].offset != rb[i].offset || ra[i].type != rb[i].type) return differ("its machine code changed");
    const unsigned width = relocation_width(ra[i].type).value_or(4);
    if (ra[i].offset + width <= bytes_a.size()) {
      std::memset(bytes_a.data() + ra[i].offset, 0, width);
      std::memset(bytes_b.data() + rb[i].offset, 0, width);
    }
  }
  if (bytes_a != bytes_b) return differ("its machine code changed");
  for (size_t i = 0; i < ra.size(); ++i) {
    auto ta = resolve_target(old_, a, ra[i]);
    auto tb = resolve_target(new_, b, rb[i]);
    if (!ta || !tb) return differ(!ta ? ta.error().message : tb.error().message);
    if (!same_target(*ta, *tb, ra[i].type, reason)) return false;
  }
  return true;
}

bool Comparator::same_target(const Target& a, const Target& b, uint32_t type, std::string* reason) {
  auto differ = [&](std::string why) {
    if (reason) *reason = std::move(why);
    return false;
  };
  if (a.kind != b.kind) return differ("it refers to " + (b.name.empty() ? std::string("other data") : b.name));
  switch (a.kind) {
    case Target::External:
      if (a.name != b.name || a.offset != b.offset) return differ("it calls or uses " + b.name);
      return true;
    case Target::Named: {
      if (a.name != b.name || a.offset != b.offset) return differ("it refers to " + b.name);
      if (is_constant_data(new_.section(b.section)) && !same_section(a.section, b.section))
        return differ("the read-only data " + b.name + " it uses changed");
      return true;
    }
    case Target::Anonymous: {
      const ElfSection& sa = old_.section(a.section);
      const ElfSection& sb = new_.section(b.section);
      if ((sa.flags & SHF_MERGE) && (sb.flags & SHF_MERGE)) {
        if (merged_piece(sa, pointed_offset(a, type)) != merged_piece(sb, pointed_offset(b, type)))
          return differ((sb.flags & SHF_STRINGS) ? "a string literal it uses changed" : "a constant it uses changed");
        return true;
      }
      if (a.offset != b.offset || !same_section(a.section, b.section))
        return differ("read-only data it uses (" + sb.name + ") changed");
      return true;
    }
  }
  return true;
}

}  // namespace graft::diff
