#include "apply/link.h"

#include "target/x86.h"

#include <dlfcn.h>
#include <elf.h>
#include <gelf.h>
#include <link.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "apply/module.h"
#include "common/member_facts_format.h"
#include "patch/relocation.h"
#include "target/handover.h"

namespace graft::link {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kStubBytes = 16;
uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
bool fits_int32(int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; }

bool uses_stub(uint32_t type) { return type == R_X86_64_PLT32; }  // calls and tail calls
bool uses_got(uint32_t type) {
  return relocation_is_got_load(type) ||
         type == R_X86_64_GOTTPOFF;  // its slot holds the thread-pointer offset, not an address
}

Indirections indirections(const Patch& patch) {
  Indirections out;
  for (const auto& piece : patch.pieces)
    for (const auto& r : piece.relocations) {
      const PatchSymbol& s = patch.symbols[r.symbol];
      if (uses_got(r.type)) out.got.emplace(r.symbol, 0);
      else if (s.piece < 0 && piece.kind == PieceKind::Text && uses_stub(r.type))
        out.stub.emplace(r.symbol, 0);
    }
  uint64_t at = 0;
  for (auto& [symbol, offset] : out.stub) offset = at, at += kStubBytes;
  at = 0;
  for (auto& [symbol, offset] : out.got) offset = at, at += 8;
  return out;
}

template <typename T>
void put(std::vector<uint8_t>& bytes, uint64_t at, T value) {
  std::memcpy(bytes.data() + at, &value, sizeof value);
}

}  // namespace

Resolver::Resolver(pid_t pid, uint64_t bias, bool executable, const std::map<std::string, Manifest::BaseSymbol>& base_symbols,
                   const std::map<std::string, uint64_t>& base_imports, const std::vector<registry::Record>& applied,
                   std::vector<MemoryMap> maps)
    : pid_(pid), bias_(bias), executable_(executable), base_symbols_(base_symbols), base_imports_(base_imports), applied_(applied),
      maps_(std::move(maps)) {}

std::optional<registry::Definition> Resolver::canonical(const std::string& identity) const {
  if (auto it = base_symbols_.find(identity); it != base_symbols_.end())
    return registry::Definition{bias_ + it->second.address, it->second.size, it->second.function};
  for (const auto& record : applied_)
    if (auto it = record.defines.find(identity); it != record.defines.end()) return it->second;
  return std::nullopt;
}

std::vector<registry::Definition> Resolver::versions(const std::string& identity) const {
  std::vector<registry::Definition> out;
  if (auto c = canonical(identity)) out.push_back(*c);
  for (const auto& record : applied_)
    if (auto it = record.defines.find(identity); it != record.defines.end() && it->second.address != out[0].address)
      out.push_back(it->second);
  return out;
}

void Resolver::load_libraries() {
  libraries_loaded_ = true;
  std::set<std::string> seen;
  for (const auto& m : maps_) {
    if (m.offset != 0 || m.path.empty() || m.path[0] != '/' || m.path.starts_with("/memfd:")) continue;
    if (!seen.insert(m.path).second) continue;
    auto elf = open_mapped_elf(pid_, m);
    if (!elf || elf.value()->dynamic_symbols().empty()) continue;
    const uint64_t bias = m.start - elf.value()->load_address();
    libraries_.push_back({std::move(elf).value(), bias});
  }
}

std::optional<registry::Definition> Resolver::current(const std::string& identity) const {
  auto all = versions(identity);
  if (all.empty()) return std::nullopt;
  return all.back();
}

Result<uint64_t> Resolver::slot_value(uint64_t slot) const {
  GRAFT_ASSIGN(const auto bytes, read_process_memory(pid_, LoadBias(bias_).at(LinkAddress(slot)), 8));
  uint64_t value = 0;
  std::memcpy(&value, bytes.data(), 8);
  return value;
}

std::optional<uint64_t> Resolver::interposed(const std::string& name) const {
  if (executable_) return std::nullopt;
  const auto slot_at = base_imports_.find(name);
  const auto own = base_symbols_.find(name);
  if (slot_at == base_imports_.end() || own == base_symbols_.end()) return std::nullopt;
  auto slot = slot_value(slot_at->second);
  if (!slot) return std::nullopt;
  const uint64_t value = *slot;
  // Bound to the library's own definition: the same. A lazy PLT slot not
  // bound yet leads to the library's PLT, which binds it as the library's
  // own calls would: the patch's calls go that way too.
  if (!value || value == bias_ + own->second.address) return std::nullopt;
  return value;
}

Result<uint64_t> Resolver::resolve(const std::string& name) {
  // A library's symbol the dynamic linker bound elsewhere: what the
  // library's own code uses, so the patch's code uses it too.
  if (auto elsewhere = interposed(name)) return *elsewhere;
  // Code is reached through the canonical entry (later patches redirect it);
  // data lives where its newest definition is (a patch may move a global).
  if (auto c = canonical(name)) return c->function ? c->address : current(name)->address;
  if (auto it = base_imports_.find(name); it != base_imports_.end()) {
    // The binary imports it: its GOT slot holds the address the dynamic linker chose.
    GRAFT_ASSIGN(const uint64_t value, slot_value(it->second));
    if (value) return value;
  }
  if (!libraries_loaded_) load_libraries();
  for (const auto& lib : libraries_) {
    const ElfSection* versym = nullptr;
    for (const auto& s : lib.elf->sections())
      if (s.type == SHT_GNU_versym) versym = &s;
    const auto& syms = lib.elf->dynamic_symbols();
    for (const auto& s : syms) {
      if (s.name != name || s.shndx == SHN_UNDEF || s.bind == STB_LOCAL) continue;
      if (versym && versym->data.size() >= 2 * (s.index + 1)) {
        uint16_t v = 0;
        std::memcpy(&v, versym->data.data() + 2 * s.index, 2);
        if (v & 0x8000) continue;  // a hidden (old) version
      }
      if (s.type == STT_GNU_IFUNC) return resolve_indirect(lib, name);
      return lib.bias + s.value;
    }
  }
  return make_error("cannot find symbol {} in process {} or its libraries", name, pid_);
}

Result<Resolver::ExecutableTls> Resolver::executable_tls() {
  if (executable_tls_) return *executable_tls_;
  GRAFT_ASSIGN(auto exe, ElfFile::open(fmt::format("/proc/{}/exe", pid_)));
  Elf* elf = static_cast<Elf*>(exe->elf_handle());
  size_t count = 0;
  if (elf_getphdrnum(elf, &count) != 0) return make_error("cannot read the program headers of process {}'s executable", pid_);
  for (size_t i = 0; i < count; ++i) {
    GElf_Phdr tls{};
    if (!gelf_getphdr(elf, static_cast<int>(i), &tls) || tls.p_type != PT_TLS) continue;
    // glibc's _dl_determine_tlsoffset for x86-64 (TLS_TCB_AT_TP: the static
    // blocks end at the thread pointer), the executable's block first: it
    // ends at the thread pointer, rounded to p_align, and its first byte keeps
    // p_vaddr's misalignment (l_tls_firstbyte_offset).
    const uint64_t align = std::max<uint64_t>(tls.p_align, 1);
    const uint64_t firstbyte = (0 - (tls.p_vaddr & (align - 1))) & (align - 1);
    const uint64_t offset = round_up(tls.p_memsz - firstbyte, align) + firstbyte;
    executable_tls_ = ExecutableTls{offset, tls.p_memsz};
    return *executable_tls_;
  }
  return make_error("process {}'s executable has no thread-local storage (no PT_TLS segment)", pid_);
}

Result<int64_t> Resolver::thread_pointer_offset(const std::string& name) {
  if (auto it = thread_locals_.find(name); it != thread_locals_.end()) return it->second.offset;
  ThreadLocal found{name, 0, 0};
  if (auto it = base_symbols_.find(name); it != base_symbols_.end()) {
    if (!executable_)
      return make_error("the patch uses {}, a thread-local variable of the shared library it patches: graft cannot "
                        "place a library's own thread-locals yet; keep the change out of code that uses them", name);
    // The executable's own: its symbol value is its offset in the TLS segment.
    GRAFT_ASSIGN(const ExecutableTls tls, executable_tls());
    if (it->second.function || it->second.address + it->second.size > tls.size)
      return make_error("{} is not a thread-local variable of process {}'s executable", name, pid_);
    found.offset = static_cast<int64_t>(it->second.address) - static_cast<int64_t>(tls.block_offset);
    found.size = it->second.size;
  } else if (auto imported = base_imports_.find(name); imported != base_imports_.end()) {
    // A library's, reached by the running binary through an initial-exec GOT slot.
    GRAFT_ASSIGN(const uint64_t value, slot_value(imported->second));
    found.offset = static_cast<int64_t>(value);
    if (found.offset >= 0)
      return make_error("the GOT slot of thread-local {} in process {} holds {}, not an offset below the thread "
                        "pointer", name, pid_, found.offset);
  } else {
    return make_error("cannot find thread-local variable {} in process {}", name, pid_);
  }
  thread_locals_.emplace(name, found);
  return found.offset;
}

Status Resolver::verify_thread_locals(uint64_t fs_base) const {
  if (thread_locals_.empty()) return ok();
  auto refuse = [&](const std::string& why) {
    return make_error("cannot verify where thread-local variables are in process {}: {}; nothing was written", pid_, why);
  };
  // glibc's tcbhead_t at the thread pointer: {tcb (itself), dtv, self}.
  auto tcb = read_process_memory(pid_, RemoteAddress(fs_base), 24);
  if (!tcb) return refuse(fmt::format("cannot read the thread control block at {:#x}", fs_base));
  uint64_t words[3];
  std::memcpy(words, tcb->data(), sizeof words);
  if (words[0] != fs_base || words[2] != fs_base)
    return refuse(fmt::format("no glibc thread control block at the thread pointer {:#x}", fs_base));
  if (executable_tls_) {
    // dtv[1] (module 1, the executable) points to its block in this thread.
    auto entry = read_process_memory(pid_, RemoteAddress(words[1] + 16), 8);
    uint64_t block = 0;
    if (entry) std::memcpy(&block, entry->data(), 8);
    if (!entry || block != fs_base - executable_tls_->block_offset)
      return refuse(fmt::format("the executable's TLS block is at {:#x} by its DTV, not at the thread pointer - {} "
                                "as computed from its PT_TLS segment", block, executable_tls_->block_offset));
  }
  GRAFT_ASSIGN(const auto maps, read_maps(pid_));
  const auto area = std::find_if(maps.begin(), maps.end(), [&](const MemoryMap& m) { return m.contains(fs_base - 1); });
  for (const auto& [name, tls] : thread_locals_) {
    const uint64_t start = fs_base + static_cast<uint64_t>(tls.offset);
    if (area == maps.end() || area->perms.substr(0, 2) != "rw" || !area->contains(start) ||
        !area->contains(start + std::max<uint64_t>(tls.size, 1) - 1) || start >= fs_base)
      return refuse(fmt::format("{} would be at {:#x}, outside the static TLS area below the thread pointer {:#x}", name,
                                start, fs_base));
  }
  return ok();
}

namespace {

struct CloseLibrary {
  void operator()(void* handle) const { dlclose(handle); }
};
using LibraryHandle = std::unique_ptr<void, CloseLibrary>;

// The build-id of a module loaded in graft, from its notes in memory
// (lowercase hex, as ElfFile gives it), or "".
std::string loaded_build_id(const dl_phdr_info& module) {
  for (int i = 0; i < module.dlpi_phnum; ++i) {
    const ElfW(Phdr)& phdr = module.dlpi_phdr[i];
    if (phdr.p_type != PT_NOTE) continue;
    const uint64_t align = phdr.p_align == 8 ? 8 : 4;
    const auto* at = reinterpret_cast<const uint8_t*>(module.dlpi_addr + phdr.p_vaddr);
    const uint8_t* end = at + phdr.p_memsz;
    while (at + sizeof(ElfW(Nhdr)) <= end) {
      ElfW(Nhdr) note;
      std::memcpy(&note, at, sizeof note);
      const uint8_t* name = at + sizeof note;
      const uint8_t* desc = name + round_up(note.n_namesz, align);
      if (desc + note.n_descsz > end) break;
      if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
        std::string hex;
        for (uint32_t b = 0; b < note.n_descsz; ++b) hex += fmt::format("{:02x}", desc[b]);
        return hex;
      }
      at = desc + round_up(note.n_descsz, align);
    }
  }
  return "";
}

// graft's own copy of a library, found by build-id among those graft has
// loaded (RTLD_NOLOAD: nothing is ever loaded for a target), or null.
LibraryHandle own_copy_of(const std::string& build_id) {
  struct Search {
    const std::string& build_id;
    std::string path;
  } search{build_id, {}};
  dl_iterate_phdr(
      [](dl_phdr_info* module, size_t, void* data) {
        auto& s = *static_cast<Search*>(data);
        if (!module->dlpi_name || module->dlpi_name[0] != '/' || loaded_build_id(*module) != s.build_id) return 0;
        s.path = module->dlpi_name;
        return 1;
      },
      &search);
  if (search.path.empty()) return nullptr;
  return LibraryHandle(dlopen(search.path.c_str(), RTLD_LAZY | RTLD_NOLOAD));
}

}  // namespace

// An IFUNC picks its implementation by CPU features. graft runs on the same
// machine, so the target's resolver would choose what graft's own copy of the
// same library chooses: ask the dynamic linker here (dlsym runs resolvers) and
// translate the answer into the target by its offset in the same module (the
// library, or the vDSO, which is one kernel image for every process). The
// name is looked up in that library's own scope, not graft's global one,
// where a preloaded library (or ASan's interceptors) may define it first.
Result<uint64_t> Resolver::resolve_indirect(const Library& lib, const std::string& name) {
  auto refuse = [&](const std::string& why) {
    return make_error("the new code uses {}, an indirect function the running binary never imported, and {}", name, why);
  };
  const auto build_id = lib.elf->build_id();
  const LibraryHandle own_library = build_id ? own_copy_of(*build_id) : nullptr;
  if (!own_library) return refuse("graft's own process has not loaded the target's copy of the library defining it");
  void* here = dlsym(own_library.get(), name.c_str());
  Dl_info info{};
  if (!here || dladdr(here, &info) == 0 || !info.dli_fname) return refuse("graft's own process cannot resolve it");
  const uint64_t offset = reinterpret_cast<uint64_t>(here) - reinterpret_cast<uint64_t>(info.dli_fbase);
  const std::string module = info.dli_fname;
  if (module.find("vdso") != std::string::npos) {
    for (const auto& m : maps_)
      if (m.path == "[vdso]") return m.start + offset;
    return refuse("process has no vDSO");
  }
  auto mine = ElfFile::open(module);
  if (!mine || mine.value()->build_id() != lib.elf->build_id())
    return refuse(fmt::format("graft's {} is not the target's copy of that library", module));
  return lib.bias + lib.elf->load_address() + offset;  // dli_fbase is where the first segment is mapped
}

Image plan(const Patch& patch, uint64_t header_bytes, uint64_t generated_code_bytes) {
  Image image;
  image.header_capacity = round_up(header_bytes, kPage);
  image.indirections = indirections(patch);
  const Indirections& ind = image.indirections;
  image.piece_address.assign(patch.pieces.size(), 0);
  uint64_t at = image.header_capacity;
  image.segments.push_back({0, image.header_capacity, PROT_READ});
  auto segment = [&](std::initializer_list<PieceKind> kinds, uint64_t extra, int prot) {
    const uint64_t start = at;
    for (size_t i = 0; i < patch.pieces.size(); ++i) {
      if (std::find(kinds.begin(), kinds.end(), patch.pieces[i].kind) == kinds.end()) continue;
      at = round_up(at, patch.pieces[i].align);
      image.piece_address[i] = at;  // an offset until relocate() adds the base
      at += patch.pieces[i].size;
    }
    at = round_up(at, 16) + extra;
    at = round_up(std::max(at, start + 1), kPage);
    image.segments.push_back({start, at - start, prot});
  };
  // After the text: call stubs, then code generated at apply time (16-byte aligned).
  segment({PieceKind::Text}, ind.stub.size() * kStubBytes + (generated_code_bytes ? 16 + generated_code_bytes : 0),
          PROT_READ | PROT_EXEC);
  segment({PieceKind::ReadOnly}, ind.got.size() * 8, PROT_READ);
  segment({PieceKind::Data, PieceKind::Bss}, 0, PROT_READ | PROT_WRITE);
  image.bytes.assign(at, 0);
  return image;
}

bool needs_low_address(const Patch& patch) {
  for (const auto& piece : patch.pieces)
    for (const auto& r : piece.relocations)
      if (r.type == R_X86_64_32 || r.type == R_X86_64_32S) return true;
  return false;
}

Result<uint64_t> choose_address(const std::vector<MemoryMap>& maps, uint64_t binary_start, uint64_t binary_end,
                                uint64_t size, bool low_4g) {
  constexpr uint64_t kReach = (1ull << 31) - (64ull << 20);
  constexpr uint64_t kMinAddress = 1ull << 20;
  constexpr uint64_t kHeapRoom = 1ull << 30;  // leave the heap room to grow after [heap]
  std::vector<std::pair<uint64_t, uint64_t>> used;
  for (const auto& m : maps) {
    uint64_t end = m.end;
    if (m.path == "[heap]") end += kHeapRoom;
    used.emplace_back(m.start, end);
  }
  if (binary_end) used.emplace_back(binary_end, binary_end + kHeapRoom);  // brk starts after the binary
  std::sort(used.begin(), used.end());
  const uint64_t lo = binary_end > kReach ? binary_end - kReach : kMinAddress;
  const uint64_t hi = std::min<uint64_t>(binary_start + kReach, low_4g ? (1ull << 31) : ~0ull);
  // Holes between mappings, closest to the binary first; below it before above it.
  std::vector<uint64_t> candidates;
  uint64_t previous_end = kMinAddress;
  for (const auto& [start, end] : used) {
    if (start > previous_end && start - previous_end >= size + 2 * kPage) {
      candidates.push_back(start - size - kPage);          // top of the hole
      candidates.push_back(previous_end + kPage);          // bottom of the hole
    }
    previous_end = std::max(previous_end, end);
  }
  candidates.push_back(previous_end + kPage);
  std::sort(candidates.begin(), candidates.end(), [&](uint64_t a, uint64_t b) {
    auto distance = [&](uint64_t x) { return x < binary_start ? binary_start - x : x - binary_start; };
    return distance(a) < distance(b);
  });
  for (uint64_t c : candidates) {
    c &= ~(kPage - 1);
    if (c < lo || c + size > hi || c < kMinAddress) continue;
    return c;
  }
  return make_error("no free address within 2 GiB of the binary for a {}-byte patch", size);
}

Status relocate(const Patch& patch, Image& image, Resolver& resolver) {
  const Indirections& ind = image.indirections;
  for (auto& a : image.piece_address) a += image.base;
  const Segment& text = image.segments[1];
  const Segment& rodata = image.segments[2];
  image.text_start = image.base + text.offset;
  image.text_end = image.base + text.offset + text.size;
  uint64_t text_used = 0, rodata_used = 0;
  for (size_t i = 0; i < patch.pieces.size(); ++i) {
    const auto& p = patch.pieces[i];
    const uint64_t end = image.piece_address[i] - image.base + p.size;
    if (p.kind == PieceKind::Text) text_used = std::max(text_used, end);
    if (p.kind == PieceKind::ReadOnly) rodata_used = std::max(rodata_used, end);
    if (!p.bytes.empty()) std::memcpy(image.bytes.data() + (image.piece_address[i] - image.base), p.bytes.data(), p.bytes.size());
  }
  const uint64_t stub_base = round_up(std::max(text_used, text.offset), 16);
  const uint64_t got_base = round_up(std::max(rodata_used, rodata.offset), 16);
  image.generated_code = image.base + round_up(stub_base + ind.stub.size() * kStubBytes, 16);

  // A thread-local variable's "address" is its offset from the thread pointer.
  std::set<uint32_t> thread_local_symbols;
  for (const auto& piece : patch.pieces)
    for (const auto& r : piece.relocations)
      if (relocation_is_thread_local(r.type)) thread_local_symbols.insert(r.symbol);
  std::vector<std::optional<uint64_t>> address(patch.symbols.size());
  auto symbol_address = [&](uint32_t index) -> Result<uint64_t> {
    if (address[index]) return *address[index];
    const PatchSymbol& s = patch.symbols[index];
    uint64_t value = 0;
    if (thread_local_symbols.count(index)) {
      if (s.piece >= 0) return make_error("the patch defines thread-local {}, which running threads have no storage for", s.name);
      GRAFT_ASSIGN(const int64_t offset, resolver.thread_pointer_offset(s.name));
      value = static_cast<uint64_t>(offset);
    } else if (s.piece >= 0) value = image.piece_address[s.piece] + s.offset;
    else {
      auto resolved = resolver.resolve(s.name);
      // A heap type tag's flag graft-cc references weakly (the callee's unit
      // defines it only if the callee returns fresh memory): one the new
      // build defines is in the patch (diff links it there); absent, it is 0,
      // as the static linker made it.
      if (!resolved && heap_types_flag(s.name)) resolved = uint64_t{0};
      if (!resolved) return resolved.error();
      value = *resolved;
    }
    address[index] = value;
    return value;
  };
  for (const auto& [symbol, offset] : ind.stub) {
    GRAFT_ASSIGN(uint64_t target, symbol_address(symbol));
    const uint64_t at = stub_base + offset;
    const auto jump = x86::absolute_jump(target);
    std::memcpy(image.bytes.data() + at, jump.data(), jump.size());
  }
  for (const auto& [symbol, offset] : ind.got) {
    GRAFT_ASSIGN(uint64_t target, symbol_address(symbol));
    put<uint64_t>(image.bytes, got_base + offset, target);
  }
  for (size_t i = 0; i < patch.pieces.size(); ++i) {
    const auto& piece = patch.pieces[i];
    for (const auto& r : piece.relocations) {
      const uint64_t place = image.piece_address[i] + r.offset;
      const uint64_t at = place - image.base;
      GRAFT_ASSIGN(uint64_t target, symbol_address(r.symbol));
      const int64_t value = static_cast<int64_t>(target) + r.addend;
      auto out_of_reach = [&](const char* what) {
        return make_error("{} from {} to {} is out of reach ({})", relocation_name(r.type), piece.name,
                          patch.symbols[r.symbol].name, what);
      };
      switch (r.type) {
        case R_X86_64_64:
          put<uint64_t>(image.bytes, at, static_cast<uint64_t>(value));
          break;
        case R_X86_64_PC64:
          put<int64_t>(image.bytes, at, value - static_cast<int64_t>(place));
          break;
        case R_X86_64_PC32:
        case R_X86_64_PLT32: {
          int64_t rel = value - static_cast<int64_t>(place);
          if (!fits_int32(rel) && ind.stub.count(r.symbol))
            rel = static_cast<int64_t>(image.base + stub_base + ind.stub.at(r.symbol)) + r.addend - static_cast<int64_t>(place);
          if (!fits_int32(rel)) return out_of_reach("more than 2 GiB away");
          put<int32_t>(image.bytes, at, static_cast<int32_t>(rel));
          break;
        }
        case R_X86_64_32:
          if (value < 0 || value > UINT32_MAX) return out_of_reach("not below 4 GiB");
          put<uint32_t>(image.bytes, at, static_cast<uint32_t>(value));
          break;
        case R_X86_64_32S:
          if (!fits_int32(value)) return out_of_reach("not below 2 GiB");
          put<int32_t>(image.bytes, at, static_cast<int32_t>(value));
          break;
        case R_X86_64_TPOFF32:  // %fs:X@tpoff
          if (!fits_int32(value)) return out_of_reach("thread-pointer offset");
          put<int32_t>(image.bytes, at, static_cast<int32_t>(value));
          break;
        case R_X86_64_GOTPCREL:
        case R_X86_64_GOTPCRELX:
        case R_X86_64_REX_GOTPCRELX:
        case R_X86_64_GOTTPOFF: {
          const int64_t slot = static_cast<int64_t>(image.base + got_base + ind.got.at(r.symbol));
          const int64_t rel = slot + r.addend - static_cast<int64_t>(place);
          if (!fits_int32(rel)) return out_of_reach("GOT slot");
          put<int32_t>(image.bytes, at, static_cast<int32_t>(rel));
          break;
        }
        default:
          return make_error("unsupported relocation {} in {}", relocation_name(r.type), piece.name);
      }
    }
  }
  return ok();
}

}  // namespace graft::link
