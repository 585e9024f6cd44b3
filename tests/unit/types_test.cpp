// Types from DWARF and the generated transformer, on binaries built by both
// compilers graft meets (gcc and clang encode bit-fields differently).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "../support/harness.h"
#include "graft/data.h"
#include "graft/types.h"

namespace graft::test {
namespace {

constexpr const char* kSource = R"(
enum mode { OFF, ON, AUTO };
struct bits {
  unsigned a : 3;
  unsigned b : 5;
  int c : 9;
  unsigned char d;
  unsigned e : 20;
  enum mode m;
  short s;
  float f;
};
struct bits g = {5, 17, -100, 7, 123456, AUTO, -3, 2.5f};
int main(void) { return g.a; }
)";

// The same values as plain fields, and the enum renumbered: where the transformer must put them.
Type plain_int(const char* name, TypeKind kind, uint64_t size) { return {kind, name, size, -1, 0, false, {}, {}}; }

class Types : public ::testing::TestWithParam<const char*> {
 protected:
  TempDir dir;
};

TEST_P(Types, BitFieldsEnumsAndNumbersConvertFromEitherCompiler) {
  const auto source = dir.path() / "bits.c";
  std::ofstream(source) << kSource;
  const auto binary = dir.path() / "bits";
  std::vector<std::string> command;
  std::istringstream words(GetParam());
  for (std::string w; words >> w;) command.push_back(w);
  for (const std::string& a : {std::string("-O0"), std::string("-o"), binary.string(), source.string()})
    command.push_back(a);
  auto built = run(command);
  ASSERT_EQ(built.exit_code, 0) << built.err;
  auto elf = ElfFile::open(binary);
  ASSERT_TRUE(elf) << elf.error().message;
  auto table = read_type_table(*elf.value());
  ASSERT_TRUE(table) << table.error().message;
  const int bits = table->find("struct bits");
  ASSERT_GE(bits, 0);
  const Type& t = table->at(bits);
  ASSERT_EQ(t.members.size(), 8u);
  // Bit positions, normalised from DW_AT_data_bit_offset (clang, gcc 11+) or DW_AT_bit_offset (older gcc).
  EXPECT_EQ(t.members[0].offset * 8 + t.members[0].bit_offset, 0u);
  EXPECT_EQ(t.members[1].offset * 8 + t.members[1].bit_offset, 3u);
  EXPECT_EQ(t.members[2].offset * 8 + t.members[2].bit_offset, 8u);
  EXPECT_EQ(t.members[2].bit_size, 9u);

  // g's initial bytes, from the binary's .data.
  const Variable* g = nullptr;
  for (const auto& v : table->variables)
    if (v.key == "g") g = &v;
  ASSERT_NE(g, nullptr);
  std::vector<uint8_t> bytes;
  for (const auto& s : elf.value()->sections())
    if (s.addr && g->address >= s.addr && g->address + t.size <= s.addr + s.data.size())
      bytes.assign(s.data.begin() + static_cast<long>(g->address - s.addr),
                   s.data.begin() + static_cast<long>(g->address - s.addr + t.size));
  ASSERT_EQ(bytes.size(), t.size);

  // The new layout: every field plain, reordered, wider or narrower, the enum renumbered.
  TypeTable to;
  to.types.push_back(plain_int("int", TypeKind::Signed, 4));            // 0
  to.types.push_back(plain_int("unsigned long", TypeKind::Unsigned, 8));  // 1
  to.types.push_back(plain_int("double", TypeKind::Float, 8));          // 2
  Type mode{TypeKind::Enum, "enum mode", 4, 0, 0, false, {}, {{"AUTO", 10}, {"OFF", 11}, {"ON", 12}}};
  to.types.push_back(mode);                                             // 3
  Type plain{TypeKind::Struct, "struct bits", 56, -1, 0, false, {}, {}};
  plain.members = {{"e", 0, 0, 0, 1}, {"d", 8, 0, 0, 0}, {"c", 12, 0, 0, 0}, {"b", 16, 0, 0, 1},
                   {"a", 24, 0, 0, 0}, {"m", 28, 0, 0, 3}, {"s", 32, 0, 0, 2}, {"f", 40, 0, 0, 2}};
  to.types.push_back(plain);                                            // 4
  std::vector<uint8_t> out(56, 0);
  transform_value(*table, bits, bytes.data(), to, 4, out.data());
  auto at = [&](size_t offset, auto value) {
    std::memcpy(&value, out.data() + offset, sizeof value);
    return value;
  };
  EXPECT_EQ(at(0, uint64_t{}), 123456u);
  EXPECT_EQ(at(8, int32_t{}), 7);
  EXPECT_EQ(at(12, int32_t{}), -100);  // a signed bit-field, sign-extended
  EXPECT_EQ(at(16, uint64_t{}), 17u);
  EXPECT_EQ(at(24, int32_t{}), 5);
  EXPECT_EQ(at(28, int32_t{}), 10);    // AUTO, by name
  EXPECT_EQ(at(32, double{}), -3.0);   // short -> double
  EXPECT_EQ(at(40, double{}), 2.5);    // float -> double
}

// gcc 12 writes DW_AT_data_bit_offset; with DWARF 2 it writes the older DW_AT_bit_offset.
INSTANTIATE_TEST_SUITE_P(Compilers, Types, ::testing::Values("gcc -g", "gcc -gdwarf-2 -gstrict-dwarf", "clang-14 -g"),
                         [](const auto& info) {
                           const std::string p = info.param;
                           return p == "gcc -g" ? "gcc" : p.starts_with("gcc") ? "gcc_dwarf2" : "clang";
                         });

}  // namespace
}  // namespace graft::test
