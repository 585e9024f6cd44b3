#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>

#include "elf/elf_file.h"
#include "patch/patch.h"
#include "patch/relocation.h"

namespace graft {
namespace {

constexpr const char* kManifestSection = ".graft.manifest";
constexpr const char* kDataPlanSection = ".graft.data";  // JSON, only in patches that change data

constexpr std::array<uint8_t, 8> kSealMagic = {'G', 'R', 'A', 'F', 'T', 'S', 'L', 0x04};
constexpr std::string_view kOlderFormatHint = "re-run graft diff with this graft to make the patch again";

// Appends values to a byte string, for the content id.
struct ByteSink {
  std::vector<uint8_t> bytes;
  void raw(const void* data, size_t n) {
    auto* p = static_cast<const uint8_t*>(data);
    bytes.insert(bytes.end(), p, p + n);
  }
  template <typename T>
  void value(T v) { raw(&v, sizeof v); }
  void text(const std::string& s) { value(s.size()); raw(s.data(), s.size()); }
};

void put_le64(uint8_t* at, uint64_t v) {
  for (int i = 0; i < 8; ++i) at[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t get_le64(const uint8_t* at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | at[i];
  return v;
}

nlohmann::json value_to_json(const TransferValue& v) { return {static_cast<int>(v.kind), v.reg, v.offset}; }
TransferValue value_from_json(const nlohmann::json& j) {
  const int kind = j.at(0).get<int>();
  if (kind < 0 || kind > static_cast<int>(TransferValue::Kind::CodeAddress))
    throw std::runtime_error(fmt::format("a frame transfer names an unknown kind of value {}", kind));
  return {static_cast<TransferValue::Kind>(kind), j.at(1).get<int>(), j.at(2).get<int64_t>()};
}

nlohmann::json transfers_to_json(const Continuation& c) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : c.transfers) {
    nlohmann::json moves = nlohmann::json::array();
    for (const auto& mv : t.moves) {
      nlohmann::json move = {value_to_json(mv.from), value_to_json(mv.to), mv.size, mv.what};
      if (mv.from_size) move.push_back({mv.from_size, mv.sign_extend});
      moves.push_back(std::move(move));
    }
    out.push_back({{"old_return", t.old_return}, {"new_return", t.new_return}, {"old_frame", t.old_frame},
                   {"new_frame", t.new_frame}, {"at", t.at}, {"moves", moves}});
  }
  return out;
}

void transfers_from_json(const nlohmann::json& c, Continuation& out) {
  out.not_transferable = c.value("not_transferable", std::vector<std::string>{});
  out.calls = c.value("calls", std::vector<std::string>{});
  if (!c.contains("transfers")) return;
  for (const auto& t : c.at("transfers")) {
    FrameTransfer ft{t.at("old_return").get<uint64_t>(), t.at("new_return").get<uint64_t>(),
                     t.at("old_frame").get<int64_t>(), t.at("new_frame").get<int64_t>(), t.at("at").get<std::string>(), {}};
    for (const auto& mv : t.at("moves")) {
      TransferMove move{value_from_json(mv.at(0)), value_from_json(mv.at(1)), mv.at(2).get<uint64_t>(),
                        mv.at(3).get<std::string>()};
      if (mv.size() > 4) {
        move.from_size = mv.at(4).at(0).get<uint64_t>();
        move.sign_extend = mv.at(4).at(1).get<bool>();
      }
      ft.moves.push_back(std::move(move));
    }
    out.transfers.push_back(std::move(ft));
  }
}

nlohmann::json update_code_to_json(const UpdateCode& u) {
  nlohmann::json inits = nlohmann::json::array();
  for (const auto& i : u.inits) inits.push_back({i.global, i.function});
  return {{"inits", inits}, {"reruns", u.reruns}, {"on_update", u.on_update}, {"at_commit", u.at_commit}, {"runner", u.runner}, {"file", u.file}};
}

UpdateCode update_code_from_json(const nlohmann::json& j) {
  UpdateCode u;
  for (const auto& i : j.at("inits")) u.inits.push_back({i.at(0).get<std::string>(), i.at(1).get<std::string>()});
  u.reruns = j.at("reruns").get<std::vector<std::string>>();
  u.on_update = j.at("on_update").get<std::string>();
  u.at_commit = j.value("at_commit", std::string());
  u.runner = j.at("runner").get<std::string>();
  u.file = j.at("file").get<std::string>();
  return u;
}

nlohmann::json manifest_to_json(const Manifest& m) {
  nlohmann::json functions = nlohmann::json::array();
  for (const auto& f : m.functions)
    functions.push_back({{"identity", f.identity}, {"reason", f.reason}, {"symbol", f.symbol}, {"replaces", f.replaces},
                         {"continuation", {{"continuable", f.continuation.continuable},
                                           {"reason", f.continuation.reason},
                                           {"returns", f.continuation.returns},
                                           {"transfers", transfers_to_json(f.continuation)},
                                           {"not_transferable", f.continuation.not_transferable},
                                           {"calls", f.continuation.calls}}}});
  nlohmann::json base = nlohmann::json::object();
  for (const auto& [name, s] : m.base_symbols) base[name] = {s.address, s.size, s.function};
  return {{"format_version", m.format_version}, {"patch_id", m.patch_id},
          {"base_build_id", m.base_build_id}, {"result_build_id", m.result_build_id},
          {"base_binary", m.base_binary}, {"result_binary", m.result_binary},
          {"created", m.created}, {"functions", functions}, {"added_data", m.added_data},
          {"removed_functions", m.removed_functions}, {"notes", m.notes},
          {"update_code", update_code_to_json(m.update_code)}, {"base_symbols", base}, {"base_imports", m.base_imports}, {"base_pie", m.base_pie},
          {"base_load_address", m.base_load_address}};
}

Manifest manifest_from_json(const nlohmann::json& j) {
  Manifest m;
  m.format_version = j.at("format_version").get<int>();
  if (m.format_version < kPatchFormatVersion)
    throw std::runtime_error(fmt::format("patch format version {} is older than this graft reads ({}): {}",
                                         m.format_version, kPatchFormatVersion, kOlderFormatHint));
  if (m.format_version != kPatchFormatVersion)
    throw std::runtime_error(fmt::format("patch format version {} is not supported (this graft reads version {}): "
                                         "use the graft that made it", m.format_version, kPatchFormatVersion));
  m.patch_id = j.at("patch_id").get<std::string>();
  m.base_build_id = j.at("base_build_id").get<std::string>();
  m.result_build_id = j.at("result_build_id").get<std::string>();
  m.base_binary = j.at("base_binary").get<std::string>();
  m.result_binary = j.at("result_binary").get<std::string>();
  m.created = j.at("created").get<std::string>();
  for (const auto& f : j.at("functions")) {
    const auto& c = f.at("continuation");
    m.functions.push_back({f.at("identity").get<std::string>(), f.at("reason").get<std::string>(),
                           f.at("symbol").get<uint32_t>(), f.at("replaces").get<bool>(),
                           {c.at("continuable").get<bool>(), c.at("reason").get<std::string>(),
                            c.at("returns").get<std::vector<std::pair<uint64_t, uint64_t>>>(), {}, {}, {}}});
    transfers_from_json(c, m.functions.back().continuation);
  }
  m.added_data = j.at("added_data").get<std::vector<std::string>>();
  m.removed_functions = j.at("removed_functions").get<std::vector<std::string>>();
  m.notes = j.at("notes").get<std::vector<std::string>>();
  m.update_code = update_code_from_json(j.at("update_code"));
  for (const auto& [name, s] : j.at("base_symbols").items())
    m.base_symbols[name] = {s.at(0).get<uint64_t>(), s.at(1).get<uint64_t>(), s.at(2).get<bool>()};
  m.base_imports = j.at("base_imports").get<std::map<std::string, uint64_t>>();
  m.base_pie = j.at("base_pie").get<bool>();
  m.base_load_address = j.at("base_load_address").get<uint64_t>();
  return m;
}

PieceKind kind_of(const ElfSection& s) {
  if (s.flags & SHF_EXECINSTR) return PieceKind::Text;
  if (s.type == SHT_NOBITS) return PieceKind::Bss;
  if (s.flags & SHF_WRITE) return PieceKind::Data;
  return PieceKind::ReadOnly;
}

uint64_t flags_of(PieceKind kind) {
  switch (kind) {
    case PieceKind::Text: return SHF_ALLOC | SHF_EXECINSTR;
    case PieceKind::ReadOnly: return SHF_ALLOC;
    case PieceKind::Data:
    case PieceKind::Bss: return SHF_ALLOC | SHF_WRITE;
  }
  return SHF_ALLOC;
}

// A string table built as sections and symbols are added.
struct StringTable {
  std::string data{'\0'};
  uint32_t add(const std::string& s) {
    uint32_t at = static_cast<uint32_t>(data.size());
    data += s;
    data += '\0';
    return at;
  }
};

struct ElfWriter {
  Elf* elf = nullptr;
  int fd = -1;
  ~ElfWriter() {
    if (elf) elf_end(elf);
    if (fd >= 0) close(fd);
  }
  Elf_Scn* add(uint32_t name, uint32_t type, uint64_t flags, const void* buf, size_t size, Elf_Type dtype,
               uint64_t align, uint64_t entsize = 0) {
    Elf_Scn* scn = elf_newscn(elf);
    Elf64_Shdr* shdr = elf64_getshdr(scn);
    shdr->sh_name = name;
    shdr->sh_type = type;
    shdr->sh_flags = flags;
    shdr->sh_addralign = align;
    shdr->sh_entsize = entsize;
    Elf_Data* data = elf_newdata(scn);
    data->d_buf = const_cast<void*>(buf);
    data->d_size = size;
    data->d_type = dtype;
    data->d_align = align;
    return scn;
  }
};

}  // namespace

const char* piece_kind_name(PieceKind kind) {
  switch (kind) {
    case PieceKind::Text: return "text";
    case PieceKind::ReadOnly: return "rodata";
    case PieceKind::Data: return "data";
    case PieceKind::Bss: return "bss";
  }
  return "?";
}

std::string patch_content_id(const Patch& patch) {
  Manifest m = patch.manifest;
  m.patch_id.clear();
  m.created.clear();
  ByteSink sink;
  sink.text(manifest_to_json(m).dump());
  for (const auto& p : patch.pieces) {
    sink.text(p.name);
    sink.value(static_cast<int>(p.kind));
    sink.value(p.align);
    sink.value(p.size);
    sink.value(p.bytes.size());
    sink.raw(p.bytes.data(), p.bytes.size());
    for (const auto& r : p.relocations) {
      sink.value(r.offset);
      sink.value(r.type);
      sink.value(r.symbol);
      sink.value(r.addend);
    }
  }
  for (const auto& s : patch.symbols) {
    sink.text(s.name);
    sink.value(s.piece);
    sink.value(s.offset);
    sink.value(s.size);
    sink.value(s.function);
  }
  sink.text(patch.data_plan);
  const crypto::Digest d = crypto::digest_of(sink.bytes);
  return crypto::to_hex(std::span<const uint8_t>(d.data(), 8));
}

std::vector<uint8_t> seal_patch_image(std::vector<uint8_t> image, const crypto::SecretKey* sign_with) {
  std::array<uint8_t, kPatchSealBytes> seal{};
  std::copy(kSealMagic.begin(), kSealMagic.end(), seal.begin());
  put_le64(seal.data() + 8, image.size());
  const crypto::Digest digest = crypto::digest_of(image);
  std::copy(digest.begin(), digest.end(), seal.begin() + 16);
  if (sign_with) {
    const crypto::PublicKey key = crypto::public_key_of(*sign_with);
    const crypto::Signature signature = crypto::sign_digest(*sign_with, digest);
    std::copy(key.begin(), key.end(), seal.begin() + 48);
    std::copy(signature.begin(), signature.end(), seal.begin() + 80);
  }
  image.insert(image.end(), seal.begin(), seal.end());
  return image;
}

Status write_patch(const Patch& patch, const std::filesystem::path& path, const crypto::SecretKey* sign_with) {
  elf_version(EV_CURRENT);
  const std::string temp = path.string() + ".tmp";
  ElfWriter w;
  w.fd = ::open(temp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);  // read back for the seal
  if (w.fd < 0) return errno_error(temp, errno);
  w.elf = elf_begin(w.fd, ELF_C_WRITE, nullptr);
  if (!w.elf) return make_error("{}: {}", temp, elf_errmsg(-1));
  Elf64_Ehdr* ehdr = elf64_newehdr(w.elf);
  ehdr->e_ident[EI_CLASS] = ELFCLASS64;
  ehdr->e_ident[EI_DATA] = ELFDATA2LSB;
  ehdr->e_ident[EI_OSABI] = ELFOSABI_NONE;
  ehdr->e_type = ET_REL;
  ehdr->e_machine = EM_X86_64;
  ehdr->e_version = EV_CURRENT;

  StringTable shstr, str;
  // Section indices: 1..n pieces, then relocation sections, symtab, strtab, manifest, shstrtab.
  std::vector<size_t> piece_section(patch.pieces.size());
  for (size_t i = 0; i < patch.pieces.size(); ++i) {
    const auto& p = patch.pieces[i];
    const bool bss = p.kind == PieceKind::Bss;
    Elf_Scn* scn = w.add(shstr.add(p.name), bss ? SHT_NOBITS : SHT_PROGBITS, flags_of(p.kind),
                         bss ? nullptr : p.bytes.data(), bss ? p.size : p.bytes.size(), ELF_T_BYTE, p.align);
    piece_section[i] = elf_ndxscn(scn);
  }
  std::vector<Elf64_Sym> syms(1 + patch.symbols.size());
  syms[0] = {};
  for (size_t i = 0; i < patch.symbols.size(); ++i) {
    const auto& s = patch.symbols[i];
    Elf64_Sym& e = syms[i + 1];
    e.st_name = str.add(s.name);
    e.st_value = s.offset;
    e.st_size = s.size;
    e.st_info = ELF64_ST_INFO(STB_GLOBAL, s.function ? STT_FUNC : (s.piece >= 0 ? STT_OBJECT : STT_NOTYPE));
    e.st_shndx = s.piece >= 0 ? static_cast<uint16_t>(piece_section[s.piece]) : SHN_UNDEF;
  }
  std::vector<std::vector<Elf64_Rela>> relas(patch.pieces.size());
  std::vector<Elf_Scn*> rela_scns(patch.pieces.size(), nullptr);
  for (size_t i = 0; i < patch.pieces.size(); ++i) {
    for (const auto& r : patch.pieces[i].relocations)
      relas[i].push_back({r.offset, ELF64_R_INFO(r.symbol + 1, r.type), r.addend});
    if (relas[i].empty()) continue;
    rela_scns[i] = w.add(shstr.add(".rela" + patch.pieces[i].name), SHT_RELA, SHF_INFO_LINK, relas[i].data(),
                         relas[i].size() * sizeof(Elf64_Rela), ELF_T_RELA, 8, sizeof(Elf64_Rela));
  }
  Elf_Scn* symtab = w.add(shstr.add(".symtab"), SHT_SYMTAB, 0, syms.data(), syms.size() * sizeof(Elf64_Sym),
                          ELF_T_SYM, 8, sizeof(Elf64_Sym));
  const std::string manifest = manifest_to_json(patch.manifest).dump(1) + "\n";
  const uint32_t strtab_name = shstr.add(".strtab");
  const uint32_t manifest_name = shstr.add(kManifestSection);
  const uint32_t data_plan_name = patch.data_plan.empty() ? 0 : shstr.add(kDataPlanSection);
  const uint32_t shstrtab_name = shstr.add(".shstrtab");
  Elf_Scn* strtab = w.add(strtab_name, SHT_STRTAB, 0, str.data.data(), str.data.size(), ELF_T_BYTE, 1);
  w.add(manifest_name, SHT_PROGBITS, 0, manifest.data(), manifest.size(), ELF_T_BYTE, 1);
  if (!patch.data_plan.empty())
    w.add(data_plan_name, SHT_PROGBITS, 0, patch.data_plan.data(), patch.data_plan.size(), ELF_T_BYTE, 1);
  Elf_Scn* shstrtab = w.add(shstrtab_name, SHT_STRTAB, 0, shstr.data.data(), shstr.data.size(), ELF_T_BYTE, 1);
  elf64_getshdr(symtab)->sh_link = static_cast<uint32_t>(elf_ndxscn(strtab));
  elf64_getshdr(symtab)->sh_info = 1;  // one local symbol: the null one
  for (size_t i = 0; i < patch.pieces.size(); ++i) {
    if (!rela_scns[i]) continue;
    Elf64_Shdr* shdr = elf64_getshdr(rela_scns[i]);
    shdr->sh_link = static_cast<uint32_t>(elf_ndxscn(symtab));
    shdr->sh_info = static_cast<uint32_t>(piece_section[i]);
  }
  ehdr->e_shstrndx = static_cast<uint16_t>(elf_ndxscn(shstrtab));
  if (elf_update(w.elf, ELF_C_WRITE) < 0) return make_error("{}: cannot write ELF ({})", temp, elf_errmsg(-1));
  elf_end(w.elf);
  w.elf = nullptr;
  // The seal: the digest of the image as written, signed if asked.
  const off_t image_size = ::lseek(w.fd, 0, SEEK_END);
  if (image_size < 0) return errno_error(temp, errno);
  std::vector<uint8_t> image(static_cast<size_t>(image_size));
  if (::pread(w.fd, image.data(), image.size(), 0) != image_size) return errno_error(temp, errno);
  const std::vector<uint8_t> sealed = seal_patch_image(std::move(image), sign_with);
  const size_t seal_size = sealed.size() - static_cast<size_t>(image_size);
  if (::pwrite(w.fd, sealed.data() + image_size, seal_size, image_size) != static_cast<ssize_t>(seal_size))
    return errno_error(temp, errno);
  if (fsync(w.fd) != 0) return errno_error(temp, errno);
  close(w.fd);
  w.fd = -1;
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) return make_error("{}: {}", path.string(), ec.message());
  return ok();
}

namespace {

// The format version an unsealed file's manifest claims, if it has one: to
// tell a patch of an older graft from a damaged file.
std::optional<int> claimed_format_version(const std::vector<uint8_t>& image) {
  auto parsed = ElfFile::from_memory(image, "patch");
  if (!parsed) return std::nullopt;
  const ElfSection* manifest = parsed.value()->section(kManifestSection);
  if (!manifest) return std::nullopt;
  const auto j = nlohmann::json::parse(manifest->data.begin(), manifest->data.end(), nullptr, false);
  if (!j.is_object() || !j.contains("format_version") || !j["format_version"].is_number_integer()) return std::nullopt;
  return j["format_version"].get<int>();
}

// Every number of a manifest is an integer; a fraction would be converted
// to one with undefined behaviour when out of range. (A walk with its own
// stack: the nesting is the file's to choose.)
bool holds_a_fraction(const nlohmann::json& root) {
  std::vector<const nlohmann::json*> pending = {&root};
  while (!pending.empty()) {
    const nlohmann::json* j = pending.back();
    pending.pop_back();
    if (j->is_number_float()) return true;
    if (j->is_structured())
      for (const auto& child : *j) pending.push_back(&child);
  }
  return false;
}

// Checks the seal at the end of `image` and cuts it off, leaving the ELF
// image; the digest and signer go into `patch`.
Status unseal(std::vector<uint8_t>& image, const std::string& label, Patch& patch) {
  const uint8_t* seal = image.data() + image.size() - kPatchSealBytes;
  if (!std::equal(kSealMagic.begin(), kSealMagic.end(), seal)) {
    if (auto version = claimed_format_version(image); version && *version < kPatchFormatVersion)
      return make_error("{}: patch format version {} is older than this graft reads ({}), which seals every byte: {}",
                        label, *version, kPatchFormatVersion, kOlderFormatHint);
    return make_error("{}: not a valid graft patch: it has no seal at its end (truncated, or not a patch made by "
                      "graft diff)", label);
  }
  const size_t image_size = image.size() - kPatchSealBytes;
  if (get_le64(seal + 8) != image_size)
    return make_error("{}: not a valid graft patch: its seal is for {} bytes, the file has {} before it (truncated "
                      "or extended)", label, get_le64(seal + 8), image_size);
  std::copy(seal + 16, seal + 48, patch.digest.begin());
  const crypto::Digest actual = crypto::digest_of(std::span<const uint8_t>(image.data(), image_size));
  if (actual != patch.digest)
    return make_error("{}: not a valid graft patch: its digest does not match its contents (the file is corrupt or "
                      "was modified after graft diff wrote it)", label);
  crypto::PublicKey key{};
  crypto::Signature signature{};
  std::copy(seal + 48, seal + 80, key.begin());
  std::copy(seal + 80, seal + 144, signature.begin());
  const bool key_zero = std::all_of(key.begin(), key.end(), [](uint8_t b) { return b == 0; });
  const bool signature_zero = std::all_of(signature.begin(), signature.end(), [](uint8_t b) { return b == 0; });
  if (!key_zero || !signature_zero) {
    // A signature is checked whenever there is one: trust (whose key) is the apply policy's.
    if (key_zero || !crypto::verify_digest(key, patch.digest, signature))
      return make_error("{}: not a valid graft patch: its signature does not verify (the file is corrupt or was "
                        "modified after it was signed)", label);
    patch.signer = key;
  }
  image.resize(image_size);
  return ok();
}

}  // namespace

namespace {

// A refusal names what the file holds (section and symbol names, the
// manifest's strings): any bytes at all. Shown as one printable line of
// bounded length, whatever they are.
Error printable_refusal(const Error& error) {
  constexpr size_t kLongest = 600;
  std::string out;
  for (const unsigned char c : error.message) {
    if (out.size() >= kLongest) {
      out += "...";
      break;
    }
    if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  return Error{out};
}

Result<Patch> parse_sealed_patch(std::vector<uint8_t> image, const std::string& label) {
  auto refuse = [&](const std::string& why) {
    return make_error("{}: not a valid graft patch: {}", label, why);
  };
  if (image.size() < 64 + kPatchSealBytes || image[0] != 0x7f || image[1] != 'E' || image[2] != 'L' || image[3] != 'F')
    return refuse("no ELF header (truncated, or not a patch made by graft diff)");
  Patch patch;
  GRAFT_TRY(unseal(image, label, patch));
  auto parsed = ElfFile::from_memory(std::move(image), label);
  if (!parsed) return refuse(parsed.error().message);
  const ElfFile& elf = *parsed.value();
  if (elf.type() != ET_REL) return refuse("not an ELF relocatable object");
  const ElfSection* manifest_section = elf.section(kManifestSection);
  if (!manifest_section) return refuse("it has no .graft.manifest section");
  try {
    auto j = nlohmann::json::parse(manifest_section->data.begin(), manifest_section->data.end());
    if (holds_a_fraction(j)) return refuse("bad manifest (a number that is not an integer)");
    patch.manifest = manifest_from_json(j);
  } catch (const std::exception& e) {
    return refuse(fmt::format("bad manifest ({})", e.what()));
  }
  if (const ElfSection* data = elf.section(kDataPlanSection)) patch.data_plan.assign(data->data.begin(), data->data.end());
  std::map<size_t, int> piece_of_section;
  for (const auto& s : elf.sections()) {
    if (!(s.flags & SHF_ALLOC)) continue;
    PatchPiece p;
    p.name = s.name;
    p.kind = kind_of(s);
    p.align = s.align;
    p.size = s.size;
    if (s.align == 0 || (s.align & (s.align - 1)) || s.align > 4096) return refuse("bad alignment in " + s.name);
    if (p.kind != PieceKind::Bss) p.bytes.assign(s.data.begin(), s.data.end());
    piece_of_section[s.index] = static_cast<int>(patch.pieces.size());
    patch.pieces.push_back(std::move(p));
  }
  const auto& syms = elf.symbols();
  if (syms.empty()) return refuse("it has no symbol table");
  for (size_t i = 1; i < syms.size(); ++i) {
    const auto& s = syms[i];
    PatchSymbol ps;
    ps.name = s.name;
    ps.offset = s.value;
    ps.size = s.size;
    ps.function = s.type == STT_FUNC;
    if (s.shndx != SHN_UNDEF) {
      auto it = piece_of_section.find(s.shndx);
      if (it == piece_of_section.end()) return refuse("symbol " + s.name + " is defined outside the patch's pieces");
      ps.piece = it->second;
      const uint64_t piece_size = patch.pieces[ps.piece].size;  // (no sum that could wrap around)
      if (ps.offset > piece_size || ps.size > piece_size - ps.offset)
        return refuse("symbol " + s.name + " lies outside its piece");
    }
    if (ps.name.empty()) return refuse("a symbol has no name");
    patch.symbols.push_back(std::move(ps));
  }
  for (const auto& [section, piece] : piece_of_section) {
    auto& p = patch.pieces[piece];
    for (const auto& r : elf.relocations(section)) {
      auto width = relocation_width(r.type);
      if (!width) return refuse(fmt::format("unsupported relocation type {} in {}", r.type, p.name));
      if (r.symbol == 0 || r.symbol > patch.symbols.size()) return refuse("relocation with a bad symbol in " + p.name);
      if (p.kind == PieceKind::Bss || *width > p.size || r.offset > p.size - *width)
        return refuse("relocation outside " + p.name);
      p.relocations.push_back({r.offset, r.type, static_cast<uint32_t>(r.symbol - 1), r.addend});
    }
  }
  for (const auto& f : patch.manifest.functions) {
    if (f.symbol >= patch.symbols.size() || patch.symbols[f.symbol].piece < 0 || !patch.symbols[f.symbol].function)
      return refuse("manifest names function " + f.identity + " that the patch does not define");
    const auto& c = f.continuation;
    if (!c.returns.empty() && (!f.replaces || !c.continuable))
      return refuse("function " + f.identity + " has continuation addresses but is not continuable");
    // A return address follows a call: never the entry, never past the new code.
    for (const auto& [from, to] : c.returns)
      if (from == 0 || to == 0 || to > patch.symbols[f.symbol].size)
        return refuse(fmt::format("function {} continues at offset {:#x} -> {:#x}, outside its code", f.identity, from, to));
    if (!c.transfers.empty() && (!f.replaces || c.continuable))
      return refuse("function " + f.identity + " has frame transfers but is continuable or not replaced");
    for (const auto& t : c.transfers)
      if (const std::string wrong = malformed_transfer(t, patch.symbols[f.symbol].size); !wrong.empty())
        return refuse(fmt::format("function {} has a malformed frame transfer at {:#x}: {}", f.identity, t.old_return,
                                  wrong));
  }
  // Update-time code: functions the patch defines, on globals it adds.
  const UpdateCode& u = patch.manifest.update_code;
  auto defines = [&](const std::string& name, bool function) {
    return std::any_of(patch.symbols.begin(), patch.symbols.end(),
                       [&](const PatchSymbol& s) { return s.name == name && s.piece >= 0 && s.function == function; });
  };
  if (!u.empty() && !defines(u.runner, true)) return refuse("its update-time code has no runner in the patch");
  for (const auto& i : u.inits)
    if (!defines(i.function, true) || !defines(i.global, false) ||
        std::find(patch.manifest.added_data.begin(), patch.manifest.added_data.end(), i.global) ==
            patch.manifest.added_data.end())
      return refuse("update-time code " + i.function + " initialises " + i.global + ", which the patch does not add");
  if (!u.on_update.empty() && !defines(u.on_update, true))
    return refuse("update-time code " + u.on_update + " is not defined by the patch");
  if (!u.at_commit.empty() && !defines(u.at_commit, true))
    return refuse("commit-time code " + u.at_commit + " is not defined by the patch");
  for (const auto& r : u.reruns)
    if (!defines(r, true) && !(patch.manifest.base_symbols.count(r) && patch.manifest.base_symbols.at(r).function))
      return refuse("update-time code re-runs " + r + ", which neither the patch nor the base binary defines");
  return patch;
}

}  // namespace

std::string malformed_transfer(const FrameTransfer& t, uint64_t code_size) {
  if (t.old_return == 0 || t.new_return == 0 || t.new_return >= code_size || t.old_frame < 8 || t.new_frame < 8)
    return fmt::format("{:#x} -> {:#x} is outside its code", t.old_return, t.new_return);
  for (const auto& mv : t.moves) {
    const bool to_ok = (mv.to.kind == TransferValue::Kind::Register && mv.to.reg >= 0 && mv.to.reg <= 15 &&
                        mv.to.reg != 7) ||
                       (mv.to.kind == TransferValue::Kind::Frame && mv.to.offset < 0 && mv.to.offset >= -t.new_frame);
    if (!to_ok) return "a move to a place that is neither a general register nor the new frame";
    if (mv.from.kind == TransferValue::Kind::Register && (mv.from.reg < 0 || mv.from.reg > 15))
      return "a move from a register that is not a general one";
    if (mv.size == 0 || mv.size > 4096) return fmt::format("a move of {} bytes", mv.size);
    if (mv.from_size &&
        (mv.size > 8 || (mv.from_size != 1 && mv.from_size != 2 && mv.from_size != 4 && mv.from_size != 8)))
      return fmt::format("a conversion from {} to {} bytes", mv.from_size, mv.size);
  }
  return "";
}

Result<Patch> parse_patch(std::vector<uint8_t> image, const std::string& label) {
  auto parsed = parse_sealed_patch(std::move(image), label);
  if (!parsed) return printable_refusal(parsed.error());
  return parsed;
}

Result<Patch> read_patch(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return errno_error(path.string(), errno);
  std::vector<uint8_t> image((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_patch(std::move(image), path.string());
}

}  // namespace graft
