// Linking a patch into a process: where every symbol it needs lives in the
// target, where the patch goes, and its relocated image.
#pragma once
#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "graft/elf_file.h"
#include "graft/patch.h"
#include "graft/target.h"
#include "registry.h"

namespace graft::link {

// Finds identities and imported names in the running process: the binary's
// own symbols (through the root record), earlier patches, its GOT, and the
// shared libraries it has loaded.
class Resolver {
 public:
  Resolver(pid_t pid, uint64_t bias, const std::map<std::string, Manifest::BaseSymbol>& base_symbols,
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

 private:
  struct Library {
    std::unique_ptr<ElfFile> elf;
    uint64_t bias = 0;
  };
  void load_libraries();
  Result<uint64_t> resolve_indirect(const Library& lib, const std::string& name);

  pid_t pid_;
  uint64_t bias_;
  const std::map<std::string, Manifest::BaseSymbol>& base_symbols_;
  const std::map<std::string, uint64_t>& base_imports_;
  const std::vector<registry::Record>& applied_;
  std::vector<MemoryMap> maps_;
  std::vector<Library> libraries_;
  bool libraries_loaded_ = false;
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
};

// Sizes every part of the region (the header reserved for `header_bytes`).
Image plan(const Patch& patch, uint64_t header_bytes);
// Picks a free address for the region within reach (+-2 GiB) of the binary.
Result<uint64_t> choose_address(const std::vector<MemoryMap>& maps, uint64_t binary_start, uint64_t binary_end,
                                uint64_t size, bool low_4g);
// Places the image at `image.base` and applies every relocation.
Status relocate(const Patch& patch, Image& image, Resolver& resolver);
// Whether any relocation needs the patch below 2 GiB (non-PIE absolute addressing).
bool needs_low_address(const Patch& patch);

}  // namespace graft::link
