// Relocation and linking of a patch, without a process: the relocation types
// graft handles, the region's layout, where it may go, and every relocation
// applied in the image (near, through a call stub, through the GOT, absolute),
// or refused when its target is out of reach.
#include <elf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>

#include "apply/link.h"
#include "patch/relocation.h"

namespace graft {
namespace {

TEST(Relocation, TypesGraftHandles) {
  EXPECT_EQ(relocation_width(R_X86_64_64), 8u);
  EXPECT_EQ(relocation_width(R_X86_64_PC64), 8u);
  for (uint32_t t : {R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_32, R_X86_64_32S, R_X86_64_GOTPCREL,
                     R_X86_64_GOTPCRELX, R_X86_64_REX_GOTPCRELX, R_X86_64_TPOFF32, R_X86_64_GOTTPOFF})
    EXPECT_EQ(relocation_width(t), 4u) << relocation_name(t);
  EXPECT_EQ(relocation_width(R_X86_64_TLSGD), std::nullopt);  // -fPIC thread-locals: refused
  EXPECT_EQ(relocation_width(R_X86_64_COPY), std::nullopt);
  for (uint32_t t : {R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_PC64, R_X86_64_GOTPCREL, R_X86_64_REX_GOTPCRELX})
    EXPECT_TRUE(relocation_is_pc_relative(t)) << relocation_name(t);
  for (uint32_t t : {R_X86_64_64, R_X86_64_32, R_X86_64_32S, R_X86_64_TPOFF32})
    EXPECT_FALSE(relocation_is_pc_relative(t)) << relocation_name(t);
  EXPECT_TRUE(relocation_is_thread_local(R_X86_64_TPOFF32));
  EXPECT_TRUE(relocation_is_thread_local(R_X86_64_GOTTPOFF));
  EXPECT_FALSE(relocation_is_thread_local(R_X86_64_PC32));
  EXPECT_STREQ(relocation_name(R_X86_64_PLT32), "R_X86_64_PLT32");
}

constexpr uint64_t kBias = 0x555555554000;  // where the running binary is
constexpr uint64_t kBase = 0x555555600000;  // where the patch goes, near it

// A patch of one function, `patched`, whose code calls and reads:
//   near_function  a function of the binary (a call: PLT32)
//   far_function   a function 3 GiB away (a library's: through a call stub)
//   counter        a global of the binary, through the GOT (REX_GOTPCRELX)
//   table          the patch's own data, by address (R_X86_64_64) and pc-relative (PC32)
struct Fixture {
  Patch patch;
  std::map<std::string, Manifest::BaseSymbol> base{{"near_function", {0x1140, 40, true}},
                                                    {"counter", {0x4010, 8, false}}};
  std::map<std::string, uint64_t> imports;
  std::vector<registry::Record> applied;

  Fixture() {
    PatchPiece text{".text.patched", PieceKind::Text, 16, 64, std::vector<uint8_t>(64, 0x90), {}};
    text.relocations = {{1, R_X86_64_PLT32, 1, -4},          // call near_function
                        {6, R_X86_64_PLT32, 2, -4},          // call far_function
                        {13, R_X86_64_REX_GOTPCRELX, 3, -4}, // mov counter@GOTPCREL(%rip), %rax
                        {20, R_X86_64_PC32, 4, -4},          // lea table(%rip)
                        {32, R_X86_64_64, 4, 8}};            // .quad table + 8
    patch.pieces.push_back(text);
    patch.pieces.push_back({".data.table", PieceKind::Data, 8, 32, std::vector<uint8_t>(32, 0), {}});
    patch.symbols = {{"patched", 0, 0, 64, true},
                     {"near_function", -1, 0, 0, true},
                     {"far_function", -1, 0, 0, true},
                     {"counter", -1, 0, 0, false},
                     {"table", 1, 0, 32, false}};
    applied.push_back({});
    applied.back().defines["far_function"] = {kBias + (3ull << 30), 16, true};
  }
  link::Resolver resolver() { return link::Resolver(getpid(), kBias, true, base, imports, applied, {}); }
};

template <typename T>
T at(const link::Image& image, uint64_t address) {
  T value{};
  std::memcpy(&value, image.bytes.data() + (address - image.base), sizeof value);
  return value;
}

TEST(Link, TheRegionIsLaidOutInPagesByProtection) {
  Fixture f;
  const link::Image image = link::plan(f.patch, 100);
  EXPECT_EQ(image.header_capacity, 4096u);
  ASSERT_EQ(image.segments.size(), 4u);  // header, text (+ stubs), rodata (+ GOT), data
  EXPECT_EQ(image.segments[1].prot, PROT_READ | PROT_EXEC);
  EXPECT_EQ(image.segments[2].prot, PROT_READ);
  EXPECT_EQ(image.segments[3].prot, PROT_READ | PROT_WRITE);
  for (size_t i = 1; i < image.segments.size(); ++i) {
    EXPECT_EQ(image.segments[i].offset % 4096, 0u);
    EXPECT_EQ(image.segments[i].offset, image.segments[i - 1].offset + image.segments[i - 1].size);
  }
  EXPECT_EQ(image.piece_address[0], image.segments[1].offset);
  EXPECT_EQ(image.piece_address[1], image.segments[3].offset);
  EXPECT_EQ(image.bytes.size(), image.segments[3].offset + image.segments[3].size);
  // A call stub for each function outside the patch the code calls (either
  // may turn out out of reach), a GOT slot for counter.
  EXPECT_EQ(image.indirections.stub.size(), 2u);
  EXPECT_EQ(image.indirections.got.size(), 1u);
  EXPECT_FALSE(link::needs_low_address(f.patch));
}

TEST(Link, EveryRelocationIsAppliedInTheImage) {
  Fixture f;
  link::Image image = link::plan(f.patch, 100);
  image.base = kBase;
  auto resolver = f.resolver();
  auto relocated = link::relocate(f.patch, image, resolver);
  ASSERT_TRUE(relocated) << relocated.error().message;
  const uint64_t code = kBase + image.segments[1].offset, table = kBase + image.segments[3].offset;
  EXPECT_EQ(image.text_start, code);
  EXPECT_EQ(image.piece_address[0], code);
  // The code's own bytes are copied, around the relocated fields.
  EXPECT_EQ(at<uint8_t>(image, code), 0x90);
  // Near: straight to the binary's function.
  EXPECT_EQ(code + 1 + 4 + at<int32_t>(image, code + 1), kBias + 0x1140);
  // Far: to a stub in the text segment, `jmp *0(%rip)` and the 8-byte target.
  const uint64_t stub = code + 6 + 4 + static_cast<uint64_t>(static_cast<int64_t>(at<int32_t>(image, code + 6)));
  EXPECT_GE(stub, code + 64);
  EXPECT_LT(stub, code + image.segments[1].size);
  EXPECT_EQ(at<uint16_t>(image, stub), 0x25ff);
  EXPECT_EQ(at<uint32_t>(image, stub + 2), 0u);
  EXPECT_EQ(at<uint64_t>(image, stub + 6), kBias + (3ull << 30));
  // Through the GOT: a slot in the read-only segment holding counter's address.
  const uint64_t slot = code + 13 + 4 + static_cast<uint64_t>(static_cast<int64_t>(at<int32_t>(image, code + 13)));
  EXPECT_GE(slot, kBase + image.segments[2].offset);
  EXPECT_LT(slot, kBase + image.segments[2].offset + image.segments[2].size);
  EXPECT_EQ(at<uint64_t>(image, slot), kBias + 0x4010);
  // The patch's own data: pc-relative and absolute, with the addend.
  EXPECT_EQ(code + 20 + 4 + at<int32_t>(image, code + 20), table);
  EXPECT_EQ(at<uint64_t>(image, code + 32), table + 8);
}

// Why relocating f's patch at kBase fails ("" if it does not).
std::string refusal(Fixture& f) {
  link::Image image = link::plan(f.patch, 100);
  image.base = kBase;
  auto resolver = f.resolver();
  auto relocated = link::relocate(f.patch, image, resolver);
  return relocated ? "" : relocated.error().message;
}

TEST(Link, TargetsOutOfReachAreRefused) {
  {
    // An absolute 32-bit signed address to data above 2 GiB (non-PIE code in a PIE's place).
    Fixture f;
    f.patch.pieces[0].relocations = {{1, R_X86_64_32S, 3, 0}};
    EXPECT_TRUE(link::needs_low_address(f.patch));
    const std::string refused = refusal(f);
    EXPECT_NE(refused.find("R_X86_64_32S from .text.patched to counter is out of reach (not below 2 GiB)"),
              std::string::npos) << refused;
  }
  {
    // pc-relative data access 3 GiB away: no stub can help.
    Fixture f;
    f.base["counter"] = {3ull << 30, 8, false};
    f.patch.pieces[0].relocations = {{1, R_X86_64_PC32, 3, -4}};
    const std::string refused = refusal(f);
    EXPECT_NE(refused.find("more than 2 GiB away"), std::string::npos) << refused;
  }
  {
    // A relocation type graft does not handle.
    Fixture f;
    f.patch.pieces[0].relocations = {{1, R_X86_64_GOTOFF64, 3, 0}};
    const std::string refused = refusal(f);
    EXPECT_NE(refused.find("unsupported relocation"), std::string::npos) << refused;
  }
}

TEST(Link, TheRegionGoesInAFreeHoleWithinReachOfTheBinary) {
  const uint64_t binary_start = 0x555555554000, binary_end = 0x555555560000;
  const std::vector<MemoryMap> maps = {{binary_start, binary_end, 0, "r-xp", "/bin/prog"},
                                       {0x555555560000, 0x555555580000, 0, "rw-p", "[heap]"},
                                       {0x7ffff7dd0000, 0x7ffff7ff0000, 0, "r-xp", "/lib/libc.so.6"}};
  auto address = link::choose_address(maps, binary_start, binary_end, 0x10000, false);
  ASSERT_TRUE(address) << address.error().message;
  EXPECT_EQ(*address % 4096, 0u);
  for (const auto& m : maps) EXPECT_TRUE(*address + 0x10000 <= m.start || *address >= m.end) << m.path;
  const uint64_t distance = *address > binary_start ? *address + 0x10000 - binary_start : binary_end - *address;
  EXPECT_LT(distance, 1ull << 31);
  // The heap keeps 1 GiB after it to grow.
  EXPECT_FALSE(*address >= 0x555555580000 && *address < 0x555555580000 + (1ull << 30));

  // Non-PIE absolute addressing: below 2 GiB.
  const std::vector<MemoryMap> low = {{0x400000, 0x480000, 0, "r-xp", "/bin/prog"}};
  auto below = link::choose_address(low, 0x400000, 0x480000, 0x10000, true);
  ASSERT_TRUE(below) << below.error().message;
  EXPECT_LT(*below + 0x10000, 1ull << 31);

  // No hole within reach: refused.
  const std::vector<MemoryMap> full = {{0x100000, 0x7fffffffffff, 0, "rw-p", ""}};
  auto none = link::choose_address(full, 0x555555554000, 0x555555560000, 0x10000, false);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("no free address within 2 GiB"), std::string::npos) << none.error().message;
}

}  // namespace
}  // namespace graft
