#include "apply/module.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "target/handover.h"
#include "target/x86.h"

namespace graft {
namespace {

// Every mapping of the file `first` maps, from `first` on: [start, end).
std::pair<uint64_t, uint64_t> extent(const std::vector<MemoryMap>& maps, const MemoryMap& first) {
  uint64_t end = first.end;
  for (const auto& m : maps)
    if (m.start >= first.start && m.device == first.device && m.inode == first.inode) end = std::max(end, m.end);
  return {first.start, end};
}

std::string file_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

// The mappings at file offset 0 of regular files other than the executable
// (and graft's own regions): one per loaded library, where it begins.
std::vector<const MemoryMap*> library_starts(const std::vector<MemoryMap>& maps, const FileId& executable) {
  std::vector<const MemoryMap*> out;
  for (const auto& m : maps) {
    if (m.offset != 0 || !m.inode || (m.device == executable.device && m.inode == executable.inode)) continue;
    if (m.path.starts_with("/memfd:") || m.path.starts_with("/dev/")) continue;
    out.push_back(&m);
  }
  return out;
}

Module library_module(const std::vector<MemoryMap>& maps, const MemoryMap& first, const std::string& build_id) {
  Module module;
  module.library = build_id;
  module.name = file_name(first.path);
  module.first = first;
  std::tie(module.start, module.end) = extent(maps, first);
  return module;
}

std::string names_of(const std::vector<registry::Record>& stack) {
  std::string out;
  for (const auto& r : stack) out += fmt::format("{}#{} (patch {})", out.empty() ? "" : ", ", r.sequence, r.patch_id);
  return out;
}

}  // namespace

Result<std::unique_ptr<ElfFile>> open_mapped_elf(pid_t pid, const MemoryMap& mapping) {
  GRAFT_ASSIGN(auto file, open_mapped_file(pid, mapping));
  return ElfFile::open(fmt::format("/proc/self/fd/{}", file.get()));
}

Result<std::unique_ptr<ElfFile>> Module::open(pid_t pid) const {
  if (is_executable()) return ElfFile::open(fmt::format("/proc/{}/exe", pid));
  return open_mapped_elf(pid, first);
}

std::string Module::source_path(pid_t pid) const {
  if (is_executable()) return fmt::format("/proc/{}/exe", pid);
  return fmt::format("/proc/{}/map_files/{:x}-{:x}", pid, first.start, first.end);
}

Result<Module> executable_module(pid_t pid, const std::vector<MemoryMap>& maps) {
  // Found by the file mapped, not by the name the maps print (a name the
  // program may give another file).
  GRAFT_ASSIGN(const FileId exe, executable_id(pid));
  for (const auto& m : maps)
    if (m.device == exe.device && m.inode == exe.inode && m.offset == 0) {
      Module module;
      module.name = "the executable";
      module.first = m;
      std::tie(module.start, module.end) = extent(maps, m);
      return module;
    }
  return make_error("cannot find the executable's mapping in process {}", pid);
}

Result<std::optional<Module>> module_with_build_id(pid_t pid, const std::vector<MemoryMap>& maps,
                                                   const std::string& build_id) {
  GRAFT_ASSIGN(Module executable, executable_module(pid, maps));
  GRAFT_ASSIGN(const auto exe_elf, executable.open(pid));
  if (exe_elf->build_id() == build_id) return std::optional<Module>(std::move(executable));
  std::set<std::pair<uint64_t, uint64_t>> seen;
  std::optional<Module> found;
  for (const MemoryMap* m : library_starts(maps, FileId{executable.first.device, executable.first.inode})) {
    if (!seen.insert({m->device, m->inode}).second) continue;
    // Unmapped since, or not a regular file: not a library.
    auto elf = open_mapped_elf(pid, *m);
    if (!elf || elf.value()->build_id() != build_id) continue;
    // Two files of one build loaded (copies under two names): patching one
    // would leave the other's callers on the old code.
    if (found)
      return make_error("process {} has two copies of build-id {} loaded ({} at {:#x}, {} at {:#x}): graft patches one "
                        "copy of a library, and the other would keep running the old code; load one copy only",
                        pid, build_id, found->first.path, found->start, m->path, m->start);
    found = library_module(maps, *m, build_id);
  }
  return found;
}

std::vector<registry::Record> stack_of(const std::vector<registry::Record>& all, const std::string& library) {
  std::vector<registry::Record> out;
  for (const auto& r : all)
    if (r.library == library) out.push_back(r);
  return out;
}

Result<Module> module_of_stack(pid_t pid, const std::vector<MemoryMap>& maps, const std::vector<registry::Record>& stack) {
  const registry::Record& root = stack.front();
  if (root.library.empty()) return executable_module(pid, maps);
  GRAFT_ASSIGN(const auto found, module_with_build_id(pid, maps, root.library));
  const std::string lost = fmt::format(
      "{} of process {} was unloaded since patch{} {} {} applied to it (dlclose): the patched code is gone", root.library_name,
      pid, stack.size() > 1 ? "es" : "", names_of(stack), stack.size() > 1 ? "were" : "was");
  if (!found) return make_error("{}; run graft recover {} to drop {}", lost, pid, stack.size() > 1 ? "them" : "it");
  GRAFT_ASSIGN(const auto elf, found->open(pid));
  auto loaded_again = [&](const std::string& where) {
    return make_error("{}, and it is loaded again{} unpatched (dlopen); run graft recover {} to drop {}, then apply "
                      "again", lost, where, pid, stack.size() > 1 ? "them" : "it");
  };
  if (found->start - elf->load_address() != root.bias) return loaded_again(fmt::format(" at {:#x}", found->start));
  // Loaded again where it was: then none of the entries the stack
  // redirected leads into a patch (a commit killed half-way leaves some).
  std::map<uint64_t, std::string> expected;
  for (const auto& r : stack)
    for (const auto& e : r.entries) expected[e.address] = e.new_bytes;
  size_t redirected = 0;
  for (const auto& [address, bytes] : expected) {
    auto now = read_process_memory(pid, RemoteAddress(address - x86::kEntryPad), x86::kEntryBytes);
    if (now && registry::hex(*now) == bytes) ++redirected;
  }
  if (!expected.empty() && !redirected) return loaded_again("");
  return *found;
}

std::map<std::string, std::string> lost_libraries(pid_t pid, const std::vector<MemoryMap>& maps,
                                                  const std::vector<registry::Record>& applied) {
  std::map<std::string, std::string> lost;
  for (const auto& r : applied)
    if (!r.library.empty() && !lost.count(r.library))
      if (auto module = module_of_stack(pid, maps, stack_of(applied, r.library)); !module)
        lost[r.library] = module.error().message;
  return lost;
}

Result<PatchTarget> find_patch_target(pid_t pid, const std::vector<MemoryMap>& maps,
                                      const std::vector<registry::Record>& all, const Manifest& manifest) {
  std::set<std::string> libraries;
  for (const auto& r : all) libraries.insert(r.library);
  for (const std::string& library : libraries) {
    auto stack = stack_of(all, library);
    const bool on_top = stack.back().result_build_id == manifest.base_build_id;
    if (!on_top && stack.front().base_build_id != manifest.base_build_id) continue;
    // This module's: a library unloaded since says so first.
    GRAFT_ASSIGN(Module module, module_of_stack(pid, maps, stack));
    if (on_top) return PatchTarget{std::move(module), std::move(stack)};
    {
      const auto& top = stack.back();
      return make_error("patch {} was built for build-id {}, process {} runs {} (as patched by #{}, patch {}): run graft "
                        "diff against the version it runs now, or revert first",
                        manifest.patch_id, manifest.base_build_id, pid, top.result_build_id, top.sequence, top.patch_id);
    }
  }
  GRAFT_ASSIGN(auto found, module_with_build_id(pid, maps, manifest.base_build_id));
  if (!found) {
    GRAFT_ASSIGN(const Module executable, executable_module(pid, maps));
    GRAFT_ASSIGN(const auto elf, executable.open(pid));
    const auto id = elf->build_id();
    const std::string made_from = file_name(manifest.base_binary);
    return make_error("patch {} was built for build-id {} ({}), the process runs {} and maps no library with that "
                      "build-id: run graft diff against the binary this process runs, or, for a library the program "
                      "loads later (dlopen), apply once it is loaded",
                      manifest.patch_id, manifest.base_build_id, made_from.empty() ? "no name" : made_from,
                      id ? *id : "a binary with no build-id");
  }
  return PatchTarget{std::move(found).value(), {}};
}

}  // namespace graft
