// The binary a stack of patches belongs to, as the process maps it: the
// executable, or a shared library (linked or dlopen'ed) found by its
// build-id. Each module has its own stack of patches in the registry; a
// library's records name it by the build-id of the file it was loaded from.
#pragma once
#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "apply/registry.h"
#include "common/error.h"
#include "elf/elf_file.h"
#include "patch/patch.h"
#include "target/process.h"

namespace graft {

struct Module {
  std::string library;        // a shared library's build-id (as loaded); empty: the executable
  std::string name;           // in messages: "the executable" or the library's file name
  MemoryMap first;            // its mapping at file offset 0
  uint64_t start = 0, end = 0;  // all of its mappings: [start, end)

  bool is_executable() const { return library.empty(); }
  // Its ELF file, the very file mapped (never a path the target may have
  // swapped: /proc/PID/exe, or the mapping's file checked by identity).
  Result<std::unique_ptr<ElfFile>> open(pid_t pid) const;
  // A path that names the mapped file, for source lines in messages.
  std::string source_path(pid_t pid) const;
};

// The ELF file a mapping of the target maps, the very file mapped
// (open_mapped_file: never what a hostile program put at its path since).
Result<std::unique_ptr<ElfFile>> open_mapped_elf(pid_t pid, const MemoryMap& mapping);

// The process's executable as mapped.
Result<Module> executable_module(pid_t pid, const std::vector<MemoryMap>& maps);

// The mapped file whose build-id is `build_id`: the executable or a shared
// library; nullopt if none is mapped.
Result<std::optional<Module>> module_with_build_id(pid_t pid, const std::vector<MemoryMap>& maps,
                                                   const std::string& build_id);

// The module a stack of applied records patches, still mapped where its
// first patch was linked (its root's bias); an error naming the patches if
// the library was unloaded since (dlclose), or loaded again elsewhere.
Result<Module> module_of_stack(pid_t pid, const std::vector<MemoryMap>& maps, const std::vector<registry::Record>& stack);

// The libraries whose stacks are no longer in effect (module_of_stack
// fails: unloaded, or loaded again unpatched), each with why and what to do.
std::map<std::string, std::string> lost_libraries(pid_t pid, const std::vector<MemoryMap>& maps,
                                                  const std::vector<registry::Record>& applied);

// The records of one module's stack (the executable's: library ""), oldest first.
std::vector<registry::Record> stack_of(const std::vector<registry::Record>& all, const std::string& library);

// Where a patch goes: the module whose stack's newest patch made the build
// this patch was made from, or the module mapped from that build. An error
// that says what to do when neither is in the process.
struct PatchTarget {
  Module module;
  std::vector<registry::Record> stack;  // the patches already applied to it, oldest first
};
Result<PatchTarget> find_patch_target(pid_t pid, const std::vector<MemoryMap>& maps,
                                      const std::vector<registry::Record>& all, const Manifest& manifest);

}  // namespace graft
