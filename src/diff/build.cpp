#include "diff/build.h"

#include <elf.h>

#include <algorithm>

#include "elf/dwarf.h"

namespace graft::diff {
namespace fs = std::filesystem;

bool is_named(const ElfSymbol& s) {
  return (s.type == STT_FUNC || s.type == STT_OBJECT || s.type == STT_TLS) && !s.name.empty() && !s.name.starts_with(".L") &&
         s.shndx != SHN_UNDEF && s.shndx < SHN_LORESERVE;
}

bool is_constant_data(const ElfSection& s) {
  if (!(s.flags & SHF_ALLOC) || (s.flags & SHF_EXECINSTR)) return false;
  return !(s.flags & SHF_WRITE) || s.name == ".data.rel.ro" || s.name.starts_with(".data.rel.ro.");
}

namespace {

// The deepest directory holding every source of the build: TUs are matched
// between two builds by their path below it, never by absolute path.
fs::path common_root(const std::vector<fs::path>& sources) {
  if (sources.empty()) return {};
  fs::path root = sources.front().parent_path();
  for (const auto& s : sources) {
    fs::path common;
    auto a = root.begin(), b = s.begin();
    for (; a != root.end() && b != s.end() && *a == *b; ++a, ++b) common /= *a;
    root = common;
  }
  return root;
}

// No code and no data: no allocated section with a byte in it.
bool holds_nothing(const ElfFile& object) {
  return std::none_of(object.sections().begin(), object.sections().end(),
                      [](const ElfSection& s) { return (s.flags & SHF_ALLOC) && s.size > 0; });
}

}  // namespace

Result<std::unique_ptr<Build>> Build::load(const fs::path& binary) {
  auto build = std::make_unique<Build>();
  GRAFT_ASSIGN(build->binary_, ElfFile::open(binary));
  auto id = build->binary_->build_id();
  if (!id) return make_error("{}: has no build-id: build it with graft-cc", binary.string());
  GRAFT_ASSIGN(build->record_, load_build(*id));
  if (!build->binary_->section(".debug_info"))
    return make_error("was stripped of its debug information after graft-cc built it, and graft diff reads it: "
                      "give graft diff the unstripped binary, and ship a stripped copy instead "
                      "(objcopy --strip-debug {} {}.stripped)",
                      binary.string(), binary.string());
  // The objects' code goes into patches root applies: they must be what
  // graft-cc linked into this very executable.
  GRAFT_TRY(verify_build(build->record_, binary));
  std::vector<fs::path> sources;
  for (const auto& path : build->record_.objects) {
    ObjectInfo info;
    GRAFT_ASSIGN(info.elf, ElfFile::open(path));
    auto source = object_source(path);
    // A unit that compiles to nothing (all under #ifdef _WIN32) has no
    // DWARF unit, and nothing to patch either.
    if (!source && holds_nothing(*info.elf)) continue;
    if (!source) return source.error().context("reading the build record of " + binary.string());
    sources.push_back(source->path);
    for (const auto& s : info.elf->symbols()) {
      if (s.type == STT_FILE && info.file_symbol.empty()) info.file_symbol = s.name;
      if (s.name == "__gxx_personality_v0") info.exceptions = true;
    }
    build->objects_.push_back(std::move(info));
  }
  build->source_root_ = common_root(sources);
  for (size_t i = 0; i < sources.size(); ++i)
    build->objects_[i].tu = sources[i].lexically_relative(build->source_root_).string();
  for (int o = 0; o < static_cast<int>(build->objects_.size()); ++o) build->index_object(o);
  return build;
}

void Build::index_object(int o) {
  const auto& elf = *objects_[o].elf;
  for (const auto& s : elf.symbols()) {
    if (!is_named(s)) continue;
    const SectionRef ref{o, s.shndx};
    const std::string id = identity(o, s);
    // The first definition wins, as with the linker (COMDAT, weak).
    if (!definitions_.emplace(id, Definition{ref, s.index, s.type == STT_FUNC}).second) continue;
    owners_.emplace(ref, id);
    members_[ref].push_back({s.value, s.size, id});
  }
  for (auto it = members_.lower_bound({o, 0}); it != members_.end() && it->first.object == o; ++it)
    std::stable_sort(it->second.begin(), it->second.end(),
                     [](const Member& a, const Member& b) { return a.value < b.value; });
}

void Build::add_object(std::unique_ptr<ElfFile> elf, std::string tu) {
  ObjectInfo info;
  info.elf = std::move(elf);
  info.tu = std::move(tu);
  for (const auto& s : info.elf->symbols())
    if (s.type == STT_FILE && info.file_symbol.empty()) info.file_symbol = s.name;
  objects_.push_back(std::move(info));
  index_object(static_cast<int>(objects_.size()) - 1);
}

std::string Build::identity(int object, const ElfSymbol& symbol) const {
  if (symbol.bind == STB_LOCAL) return objects_[object].tu + "::" + symbol.name;
  return symbol.name;
}

const Definition* Build::find(const std::string& identity) const {
  auto it = definitions_.find(identity);
  return it == definitions_.end() ? nullptr : &it->second;
}

const std::string* Build::owner_identity(SectionRef ref) const {
  auto it = owners_.find(ref);
  return it == owners_.end() ? nullptr : &it->second;
}

const std::string* Build::owner_identity(SectionRef ref, int64_t address) const {
  auto it = members_.find(ref);
  if (it == members_.end()) return nullptr;
  const std::vector<Member>& members = it->second;
  const Member* before = nullptr;
  for (const Member& m : members) {
    if (static_cast<int64_t>(m.value) > address) break;
    if (address < static_cast<int64_t>(m.value + std::max<uint64_t>(m.size, 1))) return &m.identity;
    before = &m;
  }
  return before ? &before->identity : &members.front().identity;
}

bool Build::holds_several(SectionRef ref) const {
  auto it = members_.find(ref);
  return it != members_.end() && it->second.size() > 1;
}

const std::string* Build::ending_at(SectionRef ref, int64_t address) const {
  auto it = members_.find(ref);
  if (it == members_.end()) return nullptr;
  bool begins = false;
  const std::string* ends = nullptr;
  for (const Member& m : it->second) {
    if (m.size && static_cast<int64_t>(m.value + m.size) == address) ends = &m.identity;
    if (static_cast<int64_t>(m.value) == address) begins = true;
  }
  return begins ? ends : nullptr;
}

std::map<std::string, const ElfSymbol*> Build::linked_symbols() const {
  std::map<std::string, const ElfSymbol*> globals;
  std::multimap<std::string, const ElfSymbol*> locals;
  for (const auto& s : binary_->symbols()) {
    if ((s.type != STT_FUNC && s.type != STT_OBJECT && s.type != STT_TLS) || s.shndx == SHN_UNDEF) continue;
    if (s.bind == STB_LOCAL) locals.emplace(s.name, &s);
    else globals.emplace(s.name, &s);
  }
  std::map<std::string, const ElfSymbol*> out = globals;
  for (const auto& [id, def] : definitions_) {
    const ElfSymbol& s = symbol(def.section.object, def.symbol);
    if (s.bind != STB_LOCAL) continue;
    std::vector<const ElfSymbol*> found;
    auto [lo, hi] = locals.equal_range(s.name);
    for (auto it = lo; it != hi; ++it)
      if (it->second->file == objects_[def.section.object].file_symbol && it->second->type == s.type)
        found.push_back(it->second);
    if (found.size() > 1) std::erase_if(found, [&](const ElfSymbol* c) { return c->size != s.size; });
    if (found.size() == 1) out[id] = found[0];
  }
  return out;
}

Status check_foreign_members(const Build& old_build, const Build& new_build) {
  std::map<std::string, std::string> old_digests;
  for (const ForeignMember& m : old_build.foreign_members()) old_digests.emplace(m.name, m.digest);
  for (const ForeignMember& m : new_build.foreign_members()) {
    const auto old = old_digests.find(m.name);
    if (old != old_digests.end() && old->second == m.digest) continue;
    return make_error("{} {} in the new build, and graft-cc did not compile it, so its code cannot be compared or "
                      "patched: build the archive from objects compiled with graft-cc (CC=graft-cc) for both versions",
                      m.name, old == old_digests.end() ? "is new" : "changed");
  }
  return ok();
}

const Definition* Build::owner(SectionRef ref) const {
  const std::string* id = owner_identity(ref);
  return id ? find(*id) : nullptr;
}

}  // namespace graft::diff
