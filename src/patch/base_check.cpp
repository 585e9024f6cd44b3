#include "patch/base_check.h"

#include <elf.h>

#include <unordered_map>

namespace graft {

std::map<std::string, uint64_t> imported_slots(const ElfFile& binary) {
  std::map<std::string, uint64_t> slots;
  for (const auto& r : binary.dynamic_relocations()) {
    if (r.symbol == 0 || r.symbol >= binary.dynamic_symbols().size()) continue;
    // A TPOFF64 slot holds a library thread-local's offset from the thread
    // pointer (initial-exec), written by the dynamic linker at start-up; it
    // is only ever read for a thread-local access (apply/link.cpp), as the
    // diff refuses any other relocation to a thread-local.
    if (r.type != R_X86_64_GLOB_DAT && r.type != R_X86_64_JUMP_SLOT && r.type != R_X86_64_64 &&
        r.type != R_X86_64_TPOFF64)
      continue;
    // A word holding sym+addend is the symbol's address only without an addend.
    if (r.type == R_X86_64_64 && r.addend != 0) continue;
    const auto& name = binary.dynamic_symbols()[r.symbol].name;
    if (!name.empty()) slots.emplace(name, r.offset);
  }
  return slots;
}

Status check_patch_base(const Manifest& m, const ElfFile& binary, const std::string& label) {
  const std::string what_to_do = "run graft diff against the binary this process runs";
  const auto id = binary.build_id();
  if (!id || *id != m.base_build_id)
    return make_error("{} was built for build-id {}, the process runs {}: {}", label, m.base_build_id,
                      id ? *id : "a binary with no build-id", what_to_do);
  auto mismatch = [&](const std::string& what) {
    return make_error("{} names {}, which the binary with build-id {} does not have (the patch was altered or made "
                      "from another binary): {}", label, what, *id, what_to_do);
  };
  if (m.base_pie != (binary.type() == ET_DYN) || m.base_load_address != binary.load_address())
    return mismatch(fmt::format("a {} binary loaded at {:#x}", m.base_pie ? "position-independent" : "fixed-address",
                                m.base_load_address));
  // A stripped copy of the binary (same build-id) has only its dynamic
  // symbols: what it has is checked, the rest rests on the build-id.
  const bool full_table = !binary.symbols().empty();
  std::unordered_multimap<std::string, const ElfSymbol*> by_name;
  for (const auto& s : full_table ? binary.symbols() : binary.dynamic_symbols())
    if (s.shndx != SHN_UNDEF) by_name.emplace(s.name, &s);
  for (const auto& [identity, base] : m.base_symbols) {
    const auto [first, last] = by_name.equal_range(plain_name(identity));
    if (first == last && !full_table) continue;
    bool found = false;
    for (auto it = first; it != last && !found; ++it)
      found = it->second->value == base.address && it->second->size == base.size;
    if (!found) return mismatch(fmt::format("{} at {:#x} ({} bytes)", identity, base.address, base.size));
  }
  const auto slots = imported_slots(binary);
  for (const auto& [name, slot] : m.base_imports) {
    auto it = slots.find(name);
    if (it == slots.end() || it->second != slot) return mismatch(fmt::format("the import {} at GOT slot {:#x}", name, slot));
  }
  return ok();
}

}  // namespace graft
