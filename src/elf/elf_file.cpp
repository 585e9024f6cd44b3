#include "elf/elf_file.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cerrno>

namespace graft {
namespace {

Elf* as_elf(void* handle) { return static_cast<Elf*>(handle); }

std::string hex(std::span<const uint8_t> bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

std::optional<std::string> find_build_id(Elf* elf, const std::vector<ElfSection>& sections) {
  for (const auto& section : sections) {
    if (section.type != SHT_NOTE) continue;
    Elf_Scn* scn = elf_getscn(elf, section.index);
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data) continue;
    size_t offset = 0, name_offset = 0, desc_offset = 0;
    GElf_Nhdr note;
    while ((offset = gelf_getnote(data, offset, &note, &name_offset, &desc_offset)) > 0) {
      const char* name = static_cast<const char*>(data->d_buf) + name_offset;
      if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 && std::string_view(name, 3) == "GNU") {
        auto* desc = static_cast<const uint8_t*>(data->d_buf) + desc_offset;
        return hex({desc, note.n_descsz});
      }
    }
  }
  return std::nullopt;
}

}  // namespace

ElfFile::~ElfFile() {
  if (elf_) elf_end(as_elf(elf_));
  if (fd_ >= 0) close(fd_);
}

Result<std::unique_ptr<ElfFile>> ElfFile::open(const std::filesystem::path& path) {
  std::unique_ptr<ElfFile> file(new ElfFile());
  file->path_ = path;
  file->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file->fd_ < 0) return errno_error(path.string(), errno);
  elf_version(EV_CURRENT);
  file->elf_ = elf_begin(file->fd_, ELF_C_READ_MMAP, nullptr);
  if (!file->elf_ || elf_kind(as_elf(file->elf_)) != ELF_K_ELF)
    return make_error("{}: not an ELF file", path.string());
  GRAFT_TRY(file->load());
  return file;
}

Result<std::unique_ptr<ElfFile>> ElfFile::from_memory(std::vector<uint8_t> image, std::string label) {
  std::unique_ptr<ElfFile> file(new ElfFile());
  file->path_ = label;
  file->image_ = std::move(image);
  elf_version(EV_CURRENT);
  file->elf_ = elf_memory(reinterpret_cast<char*>(file->image_.data()), file->image_.size());
  if (!file->elf_ || elf_kind(as_elf(file->elf_)) != ELF_K_ELF) return make_error("{}: not an ELF file", label);
  GRAFT_TRY(file->load());
  return file;
}

Status ElfFile::load() {
  Elf* elf = as_elf(elf_);
  GElf_Ehdr ehdr;
  if (!gelf_getehdr(elf, &ehdr)) return make_error("{}: unreadable ELF header ({})", path_.string(), elf_errmsg(-1));
  if (ehdr.e_ident[EI_CLASS] != ELFCLASS64 || ehdr.e_machine != EM_X86_64)
    return make_error("{}: not an x86-64 ELF file (graft supports x86-64 only)", path_.string());
  type_ = ehdr.e_type;
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf, &shstrndx) != 0) return make_error("{}: no section name table", path_.string());
  size_t count = 0;
  if (elf_getshdrnum(elf, &count) != 0) return make_error("{}: unreadable section table", path_.string());
  sections_.resize(count);
  relocations_.resize(count);
  for (size_t i = 0; i < count; ++i) {
    Elf_Scn* scn = elf_getscn(elf, i);
    GElf_Shdr shdr;
    if (!scn || !gelf_getshdr(scn, &shdr)) return make_error("{}: unreadable section {}", path_.string(), i);
    ElfSection& s = sections_[i];
    s.index = i;
    const char* name = elf_strptr(elf, shstrndx, shdr.sh_name);
    s.name = name ? name : "";
    s.type = shdr.sh_type;
    s.flags = shdr.sh_flags;
    s.addr = shdr.sh_addr;
    s.size = shdr.sh_size;
    s.align = shdr.sh_addralign ? shdr.sh_addralign : 1;
    s.entsize = shdr.sh_entsize;
    s.link = shdr.sh_link;
    s.info = shdr.sh_info;
    if (shdr.sh_type != SHT_NOBITS && shdr.sh_size > 0) {
      Elf_Data* data = elf_rawdata(scn, nullptr);
      if (!data || data->d_size != shdr.sh_size)
        return make_error("{}: section {} lies outside the file (truncated?)", path_.string(), s.name);
      s.data = {static_cast<const uint8_t*>(data->d_buf), data->d_size};
    }
  }
  auto read_symbols = [&](const ElfSection& table, std::vector<ElfSymbol>& out) -> Status {
    Elf_Data* data = elf_getdata(elf_getscn(elf, table.index), nullptr);
    if (!data) return make_error("{}: unreadable symbol table {}", path_.string(), table.name);
    size_t n = table.entsize ? table.size / table.entsize : 0;
    out.resize(n);
    std::string file;
    for (size_t i = 0; i < n; ++i) {
      GElf_Sym sym;
      if (!gelf_getsym(data, i, &sym)) return make_error("{}: bad symbol {}", path_.string(), i);
      ElfSymbol& s = out[i];
      s.index = i;
      const char* name = elf_strptr(elf, table.link, sym.st_name);
      s.name = name ? name : "";
      s.value = sym.st_value;
      s.size = sym.st_size;
      s.type = GELF_ST_TYPE(sym.st_info);
      s.bind = GELF_ST_BIND(sym.st_info);
      s.visibility = GELF_ST_VISIBILITY(sym.st_other);
      s.shndx = sym.st_shndx;
      if (s.type == STT_FILE) file = s.name;
      if (s.bind == STB_LOCAL) s.file = file;
    }
    return ok();
  };
  for (const auto& s : sections_) {
    if (s.type == SHT_SYMTAB) GRAFT_TRY(read_symbols(s, symbols_));
    if (s.type == SHT_DYNSYM) GRAFT_TRY(read_symbols(s, dynsyms_));
  }
  for (const auto& s : sections_) {
    if (s.type != SHT_RELA || s.link >= count) continue;
    const bool dynamic = sections_[s.link].type == SHT_DYNSYM;
    if (!dynamic && s.info >= count) continue;
    Elf_Data* data = elf_getdata(elf_getscn(elf, s.index), nullptr);
    if (!data) return make_error("{}: unreadable relocations {}", path_.string(), s.name);
    size_t n = s.entsize ? s.size / s.entsize : 0;
    auto& out = dynamic ? dynrelocs_ : relocations_[s.info];
    for (size_t i = 0; i < n; ++i) {
      GElf_Rela rela;
      if (!gelf_getrela(data, i, &rela)) return make_error("{}: bad relocation in {}", path_.string(), s.name);
      out.push_back({rela.r_offset, static_cast<uint32_t>(GELF_R_TYPE(rela.r_info)),
                     static_cast<size_t>(GELF_R_SYM(rela.r_info)), rela.r_addend});
    }
  }
  build_id_ = find_build_id(elf, sections_);
  size_t phnum = 0;
  if (elf_getphdrnum(elf, &phnum) == 0) {
    bool first = true;
    for (size_t i = 0; i < phnum; ++i) {
      GElf_Phdr phdr;
      if (!gelf_getphdr(elf, static_cast<int>(i), &phdr) || phdr.p_type != PT_LOAD) continue;
      const uint64_t page = phdr.p_vaddr & ~uint64_t{0xfff};
      if (first || page < load_address_) load_address_ = page;
      first = false;
    }
  }
  return ok();
}

const ElfSection* ElfFile::section(std::string_view name) const {
  for (const auto& s : sections_)
    if (s.name == name) return &s;
  return nullptr;
}

const std::vector<ElfRelocation>& ElfFile::relocations(size_t index) const {
  static const std::vector<ElfRelocation> none;
  return index < relocations_.size() ? relocations_[index] : none;
}

std::optional<std::string> ElfFile::build_id() const { return build_id_; }

Result<std::string> read_build_id(const std::filesystem::path& path) {
  GRAFT_ASSIGN(auto file, ElfFile::open(path));
  auto id = file->build_id();
  if (!id) return make_error("{}: has no build-id (link with -Wl,--build-id, as graft-cc does)", path.string());
  return *id;
}

}  // namespace graft
