// The in-target registry: every applied patch lives in its own mapping of a
// memfd named "graft:<seq>:<patch-id>", whose first pages hold this record.
// `graft status` reads it without stopping the process.
#pragma once
#include <sys/types.h>

#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "apply/apply.h"
#include "patch/patch.h"

namespace graft::registry {

inline constexpr char kMagic[8] = {'G', 'R', 'A', 'F', 'T', 'R', 'E', 'G'};
inline constexpr uint32_t kVersion = 1;
// Staged: mapped by an apply that has not committed (yet, or ever: a killed
// one); Applied: committed; Reverting: a revert committed (the code and data
// are back as before the patch) and the region is about to be unmapped.
// Only Applied records are patches in the process; the others are leftovers
// of a graft that died, which `graft recover` unmaps.
enum State : uint32_t { Staged = 1, Applied = 2, Reverting = 3 };
inline constexpr uint64_t kStateOffset = 12;  // u32 after magic and version
inline constexpr uint64_t kHeaderBytes = 24;  // magic, version, state, json length (u64)

struct Entry {           // one redirected function entry
  std::string identity;
  uint64_t address = 0;  // the canonical entry (the symbol, after the 14-byte pad)
  std::string old_bytes; // 16 bytes from address-14, hex
  std::string new_bytes;
  // Return addresses where frames continued from the version it replaced
  // into this patch's copy (absolute: old -> new); revert maps them back.
  std::vector<std::pair<uint64_t, uint64_t>> continues;
};

struct Definition {
  uint64_t address = 0, size = 0;
  bool function = false;
};

// What a commit did to live data, kept so that a revert can decide what
// undoing it takes. Absent from records written before graft kept it
// (`recorded` false): then only `Record::objects_transformed` is known.
struct DataWork {
  bool recorded = false;
  std::map<std::string, size_t> transformed;  // objects outside globals transformed, per struct ("struct node")
  size_t moved = 0;       // of them, moved to new storage (they outgrew their allocation)
  size_t references = 0;  // typed pointers (and registers) rewritten to moved objects
  // A global of the running program the patch gave storage of its own: a
  // retyped one (writable; filled from the old value at the commit) or a
  // changed read-only one (a new copy). Its old storage is left as it was.
  struct Storage {
    std::string identity;
    uint64_t from = 0, to = 0;  // the storage it had, the patch's
    bool writable = false;
  };
  std::vector<Storage> storage;
  std::vector<std::string> user_transformers;  // structs a user's transformer rewrote
  std::string inverse;       // the data plan back to the old layouts (JSON, data/plan.h), "" if none is needed
  std::string irreversible;  // why the data cannot go back, one line; "" if it can
};

struct Record {
  int sequence = 0;
  std::string patch_id, base_build_id, result_build_id, applied_at;
  uint64_t region_start = 0, region_end = 0, text_start = 0, text_end = 0;
  std::vector<Entry> entries;
  std::map<std::string, Definition> defines;  // what this patch defines, placed
  // The shared library this patch's stack patches (the build-id it was
  // loaded from, and its file name); both empty: the executable's stack.
  std::string library, library_name;
  // Only in the first patch of a stack: where the running binary's own symbols are.
  bool has_root = false;
  uint64_t bias = 0;
  std::map<std::string, Manifest::BaseSymbol> base_symbols;
  std::map<std::string, uint64_t> base_imports;
  State state = Staged;
  size_t objects_transformed = 0;  // live data rewritten at commit (every record has it)
  DataWork data;
};

std::string encode(const Record& record);   // header + JSON
// What encode wrote, read back; `address` (where it lies in the target)
// names it in errors. The header alone says how many bytes of JSON follow it.
Result<uint64_t> json_length(std::span<const uint8_t> header, uint64_t address);
Result<Record> decode(std::span<const uint8_t> bytes, uint64_t address);
Result<std::vector<Record>> read_all(pid_t pid);  // applied records, oldest first

// A region of graft's in the process that holds no applied patch: what a
// killed apply or revert left (its record Staged or Reverting, or unreadable).
struct Leftover {
  uint64_t start = 0, end = 0;  // every mapping of the region's memfd
  std::string name;             // the memfd's name
  std::string why;              // "an apply that did not commit", ...
  std::optional<Record> record; // its record, if it can be read
};
Result<std::vector<Leftover>> leftovers(pid_t pid);
std::string memfd_name(int sequence, const std::string& patch_id);

// An entry's bytes as records keep them (hex), and back.
std::string hex(std::span<const uint8_t> bytes);
std::vector<uint8_t> unhex(const std::string& text);

}  // namespace graft::registry
