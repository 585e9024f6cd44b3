// Read-only access to ELF files through libelf: sections, symbols, relocations,
// the build-id. One ElfFile owns its fd and Elf handle (RAII).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"

namespace graft {

struct ElfSection {
  size_t index = 0;
  std::string name;
  uint32_t type = 0;    // SHT_*
  uint64_t flags = 0;   // SHF_*
  uint64_t addr = 0;
  uint64_t size = 0;
  uint64_t align = 1;
  uint64_t entsize = 0;
  uint32_t link = 0;
  uint32_t info = 0;
  std::span<const uint8_t> data;  // empty for SHT_NOBITS
};

struct ElfSymbol {
  size_t index = 0;
  std::string name;
  uint64_t value = 0;
  uint64_t size = 0;
  uint8_t type = 0;     // STT_*
  uint8_t bind = 0;     // STB_*
  uint8_t visibility = 0;
  uint16_t shndx = 0;   // SHN_UNDEF, SHN_ABS, or a section index
  std::string file;     // the STT_FILE symbol that precedes a local symbol ("" for globals)
};

struct ElfRelocation {
  uint64_t offset = 0;  // within the section (ET_REL) or virtual address (ET_EXEC/DYN)
  uint32_t type = 0;    // R_X86_64_*
  size_t symbol = 0;    // index into symbols()
  int64_t addend = 0;
};

class ElfFile {
 public:
  static Result<std::unique_ptr<ElfFile>> open(const std::filesystem::path& path);
  // Parses an in-memory image (kept alive by the ElfFile).
  static Result<std::unique_ptr<ElfFile>> from_memory(std::vector<uint8_t> image, std::string label);
  ~ElfFile();
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  uint16_t type() const { return type_; }  // ET_REL, ET_EXEC, ET_DYN
  const std::vector<ElfSection>& sections() const { return sections_; }
  const std::vector<ElfSymbol>& symbols() const { return symbols_; }         // .symtab
  const std::vector<ElfSymbol>& dynamic_symbols() const { return dynsyms_; } // .dynsym
  const ElfSection* section(std::string_view name) const;
  // Relocations that apply to section `index` (from its SHT_RELA section).
  const std::vector<ElfRelocation>& relocations(size_t index) const;
  // Dynamic relocations (.rela.dyn, .rela.plt); symbol indexes dynamic_symbols().
  const std::vector<ElfRelocation>& dynamic_relocations() const { return dynrelocs_; }
  // Lowest PT_LOAD address, page-aligned (0 for a relocatable object).
  uint64_t load_address() const { return load_address_; }
  std::optional<std::string> build_id() const;  // lowercase hex
  void* elf_handle() const { return elf_; }     // Elf*, for libdw

 private:
  ElfFile() = default;
  Status load();

  std::filesystem::path path_;
  int fd_ = -1;
  void* elf_ = nullptr;
  std::vector<uint8_t> image_;
  uint16_t type_ = 0;
  std::vector<ElfSection> sections_;
  std::vector<ElfSymbol> symbols_;
  std::vector<ElfSymbol> dynsyms_;
  std::vector<std::vector<ElfRelocation>> relocations_;
  std::vector<ElfRelocation> dynrelocs_;
  uint64_t load_address_ = 0;
  std::optional<std::string> build_id_;
};

// The build-id of an ELF file, read from its notes.
Result<std::string> read_build_id(const std::filesystem::path& path);

}  // namespace graft
