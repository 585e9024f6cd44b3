// Linking a patch into a process: where every symbol it needs lives in the
// target, where the patch goes, and its relocated image.
#pragma once
#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "elf/elf_file.h"
#include "patch/patch.h"
#include "target/process.h"
#include "apply/registry.h"

namespace graft::link {

// Finds identities and imported names in the running process: the binary's
// own symbols (through the root record), earlier patches, its GOT, and the
// shared libraries it has loaded.
class Resolver {
 public:
  // `executable`: the base is the process's executable (else a shared library,
  // whose own thread-locals a patch cannot reach yet).
  Resolver(pid_t pid, uint64_t bias, bool executable, const std::map<std::string, Manifest::BaseSymbol>& base_symbols,
           const std::map<std::string, uint64_t>& base_imports, const std::vector<registry::Record>& applied,
           std::vector<MemoryMap> maps);
  // The canonical definition of an identity: the oldest one, whose entry every
  // later version is reached through.
  std::optional<registry::Definition> canonical(const std::string& identity) const;
  // Every placed version of a function, oldest first (for the safety check).
  std::vector<registry::Definition> versions(const std::string& identity) const;
  // The newest definition: where a global's value lives now.
  std::optional<registry::Definition> current(const std::string& identity) const;
  Result<uint64_t> resolve(const std::string& name);
  // A shared library's own exported symbol that the dynamic linker bound
  // elsewhere for the library's own code (the executable's definition, or a
  // copy relocation of a variable into the executable), or not yet (a lazy
  // PLT slot): where its GOT slot points, which is what the library's code
  // calls or reads. nullopt when the base is the executable (never
  // interposed) or the slot points to the library's own definition.
  std::optional<uint64_t> interposed(const std::string& name) const;
  // Where a thread-local variable the patch uses is, as an offset from the
  // thread pointer (the same in every thread): the executable's own from its
  // PT_TLS segment by glibc's rule, a library's from the initial-exec GOT slot
  // the dynamic linker filled in the running binary. Kept for the check below.
  Result<int64_t> thread_pointer_offset(const std::string& name);
  // Checks every offset given out against a stopped thread of the process
  // (its thread pointer `fs_base`): glibc's TCB is there, the executable's
  // TLS block is where the thread's DTV says, and each variable lies in the
  // thread's static TLS area. Before anything is written into the process.
  Status verify_thread_locals(uint64_t fs_base) const;

 private:
  struct ThreadLocal {
    std::string name;
    int64_t offset = 0;
    uint64_t size = 0;
  };
  // The running executable's TLS block, from its PT_TLS segment.
  struct ExecutableTls {
    uint64_t block_offset = 0;  // the block starts at the thread pointer minus this
    uint64_t size = 0;          // p_memsz
  };
  Result<ExecutableTls> executable_tls();
  struct Library {
    std::unique_ptr<ElfFile> elf;
    uint64_t bias = 0;
  };
  void load_libraries();
  // The 8 bytes at link-time address `slot` of the base binary in the target (a GOT slot).
  Result<uint64_t> slot_value(uint64_t slot) const;
  Result<uint64_t> resolve_indirect(const Library& lib, const std::string& name);

  pid_t pid_;
  uint64_t bias_;
  bool executable_;
  const std::map<std::string, Manifest::BaseSymbol>& base_symbols_;
  const std::map<std::string, uint64_t>& base_imports_;
  const std::vector<registry::Record>& applied_;
  std::vector<MemoryMap> maps_;
  std::vector<Library> libraries_;
  bool libraries_loaded_ = false;
  std::optional<ExecutableTls> executable_tls_;
  std::map<std::string, ThreadLocal> thread_locals_;  // offsets given out, by name
};

// Symbols reached through a stub (calls that may be out of reach) or a GOT slot.
struct Indirections {
  std::map<uint32_t, uint64_t> stub, got;  // symbol -> offset within its segment
};

struct Segment {
  uint64_t offset = 0, size = 0;  // within the region, page-aligned
  int prot = 0;
};

struct Image {
  uint64_t base = 0;
  std::vector<uint8_t> bytes;          // the whole region, header included
  std::vector<Segment> segments;       // header, text, rodata, data
  std::vector<uint64_t> piece_address;
  Indirections indirections;           // sized by plan(), filled by relocate()
  uint64_t text_start = 0, text_end = 0;
  uint64_t header_capacity = 0;
  uint64_t generated_code = 0;         // where code generated at apply time goes (relocate() sets it)
};

// Sizes every part of the region (the header reserved for `header_bytes`,
// room after the text for `generated_code_bytes` of code made at apply time).
Image plan(const Patch& patch, uint64_t header_bytes, uint64_t generated_code_bytes = 0);
// Picks a free address for the region within reach (+-2 GiB) of the binary.
Result<uint64_t> choose_address(const std::vector<MemoryMap>& maps, uint64_t binary_start, uint64_t binary_end,
                                uint64_t size, bool low_4g);
// Places the image at `image.base` and applies every relocation.
Status relocate(const Patch& patch, Image& image, Resolver& resolver);
// Whether any relocation needs the patch below 2 GiB (non-PIE absolute addressing).
bool needs_low_address(const Patch& patch);

}  // namespace graft::link
