// A build as the patch generator sees it: the linked binary, the objects that
// went into it (from the graft store), and an index of identities.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "elf/elf_file.h"
#include "store/store.h"

namespace graft::diff {

struct SectionRef {
  int object = -1;
  size_t section = 0;
  auto operator<=>(const SectionRef&) const = default;
};

struct Definition {
  SectionRef section;
  size_t symbol = 0;
  bool function = false;
};

struct ObjectInfo {
  std::unique_ptr<ElfFile> elf;
  std::string tu;           // source path within the source tree
  std::string file_symbol;  // the object's STT_FILE name (to find its locals in the binary)
  bool exceptions = false;  // C++ with exception handling (uses __gxx_personality_v0)
};

class Build {
 public:
  static Result<std::unique_ptr<Build>> load(const std::filesystem::path& binary);

  const ElfFile& binary() const { return *binary_; }
  const std::string& build_id() const { return record_.build_id; }
  // Archive members linked in that graft-cc did not compile (not in objects()).
  const std::vector<ForeignMember>& foreign_members() const { return record_.foreign_members; }
  const std::vector<ObjectInfo>& objects() const { return objects_; }
  const ElfSection& section(SectionRef ref) const { return objects_[ref.object].elf->sections()[ref.section]; }
  const ElfSymbol& symbol(int object, size_t index) const { return objects_[object].elf->symbols()[index]; }
  const std::vector<ElfRelocation>& relocations(SectionRef ref) const {
    return objects_[ref.object].elf->relocations(ref.section);
  }
  std::string identity(int object, const ElfSymbol& symbol) const;
  const std::map<std::string, Definition>& definitions() const { return definitions_; }
  const Definition* find(const std::string& identity) const;
  // The named function or object that owns a section (its symbol), if any.
  const Definition* owner(SectionRef ref) const;
  const std::string* owner_identity(SectionRef ref) const;
  // The named definition an address of a section (its offset there) falls in:
  // a section may hold several (statics in one __attribute__((section))), and
  // each must be reached as itself, not as an offset from another whose place
  // may differ in the running binary. The one whose bytes hold the address,
  // else the nearest before it, else the section's first.
  const std::string* owner_identity(SectionRef ref, int64_t address) const;
  // The named definition that ends exactly at `address` while another begins
  // there (`&a[N]` or `&b`? The relocation cannot say), if any.
  const std::string* ending_at(SectionRef ref, int64_t address) const;
  bool holds_several(SectionRef ref) const;
  // Each identity's symbol in the linked binary (functions, objects and
  // thread-local variables, whose value is their offset in the TLS segment):
  // globals by name, statics by name within their object's file symbol.
  std::map<std::string, const ElfSymbol*> linked_symbols() const;
  // The deepest directory holding every source of the build.
  const std::filesystem::path& source_root() const { return source_root_; }
  // An object that is not part of the linked binary but whose code goes into
  // the patch like the build's own (a user's transformers): its definitions
  // join the index under `tu`, unless the build already defines the name.
  void add_object(std::unique_ptr<ElfFile> elf, std::string tu);

 private:
  void index_object(int object);

  std::unique_ptr<ElfFile> binary_;
  BuildRecord record_;
  std::vector<ObjectInfo> objects_;
  std::map<std::string, Definition> definitions_;
  std::map<SectionRef, std::string> owners_;
  struct Member {
    uint64_t value = 0, size = 0;
    std::string identity;
  };
  std::map<SectionRef, std::vector<Member>> members_;  // by address
  std::filesystem::path source_root_;
};

// A change graft cannot see is refused, never missed: an archive member that
// graft-cc did not compile (so it has no object in the store) must be the same
// in both builds. One line naming the member and what to do.
Status check_foreign_members(const Build& old_build, const Build& new_build);

// Data that is constant once the program runs: read-only sections, and
// .data.rel.ro (written only by the dynamic linker's relocation, then RELRO).
// Such data has no state: a changed copy is simply new data.
bool is_constant_data(const ElfSection& section);

// True for symbols that carry an identity between builds (functions, objects,
// thread-local variables; not .L temporaries,
// not section or file symbols).
bool is_named(const ElfSymbol& symbol);

}  // namespace graft::diff
