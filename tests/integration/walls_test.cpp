// Walls real projects hit before any hard problem (issue 13): units that
// compile to nothing, stripped links, anonymous typedef'd structs, block
// statics of one name, frames at line 0. Each on a small program.
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <gtest/gtest.h>

#include "../support/harness.h"
#include "elf/dwarf.h"

namespace graft::test {
namespace {

bool one_line(const std::string& text) { return !text.empty() && text.find('\n') == text.size() - 1; }

class Walls : public ::testing::Test {
 protected:
  TempDir dir;
};

// The link-time addresses the binary's line table gives line 0 (instructions
// the compiler made, or merged from several lines).
std::vector<uint64_t> line_zero_addresses(const std::filesystem::path& binary) {
  std::vector<uint64_t> out;
  const int fd = open(binary.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  Dwarf* dwarf = dwarf_begin(fd, DWARF_C_READ);
  Dwarf_Off offset = 0, next = 0;
  size_t header_size = 0;
  while (dwarf && dwarf_nextcu(dwarf, offset, &next, &header_size, nullptr, nullptr, nullptr) == 0) {
    Dwarf_Die cu;
    Dwarf_Lines* lines = nullptr;
    size_t count = 0;
    if (dwarf_offdie(dwarf, offset + header_size, &cu) && dwarf_getsrclines(&cu, &lines, &count) == 0)
      for (size_t i = 0; i < count; ++i) {
        Dwarf_Line* line = dwarf_onesrcline(lines, i);
        Dwarf_Addr address = 0;
        int number = -1;
        bool end = false;
        if (dwarf_lineaddr(line, &address) == 0 && dwarf_lineno(line, &number) == 0 &&
            dwarf_lineendsequence(line, &end) == 0 && number == 0 && !end)
          out.push_back(address);
      }
    offset = next;
  }
  if (dwarf) dwarf_end(dwarf);
  close(fd);
  return out;
}

// (e) A frame at an instruction of line 0 is reported at the nearest line
// before it that is not 0.
TEST_F(Walls, AnInstructionOfLineZeroIsReportedAtTheLineBefore) {
  const auto binary = build_program(dir, "linezero", "v1");
  const auto addresses = line_zero_addresses(binary);
  ASSERT_FALSE(addresses.empty()) << "clang gave no instruction of " << binary << " line 0";
  for (uint64_t address : addresses) {
    const std::string where = source_line(binary, address);
    EXPECT_TRUE(where.starts_with("main.c:")) << std::hex << address << ": " << where;
    EXPECT_FALSE(where.ends_with(":0")) << std::hex << address << ": " << where;
  }
}

// (a) A unit that compiles to nothing (all under #ifdef _WIN32) has no DWARF
// unit: it holds nothing to patch, and the rest of the binary updates.
TEST_F(Walls, AUnitThatCompilesToNothingIsSkipped) {
  const auto v1 = build_program(dir, "emptytu", "v1"), v2 = build_program(dir, "emptytu", "v2");
  const auto patch = dir.path() / "emptytu.graft";
  auto made = graft({"diff", v1.string(), v2.string(), "-o", patch.string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  Process target({v1.string()});
  EXPECT_EQ(target.ask("?"), "1");
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("?"), "2");
}

// (b) graft-cc keeps the DWARF a stripping link flag would drop, and says so;
// a binary stripped after the build is named as such by graft diff.
TEST_F(Walls, StrippingLinkFlagsAreDroppedAndAStrippedBinaryIsNamed) {
  const auto v1 = build_own_program(dir, "emptytu", "v1", {"-Wl,-s"});
  const auto v2 = build_own_program(dir, "emptytu", "v2", {"-s"});
  auto made = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "kept.graft").string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  // Shipped stripped: the copy has no DWARF, the store still has the build.
  const auto shipped = dir.path() / "shipped";
  ASSERT_EQ(run({"objcopy", "--strip-debug", v2.string(), shipped.string()}).exit_code, 0);
  made = graft({"diff", v1.string(), shipped.string(), "-o", (dir.path() / "stripped.graft").string()});
  EXPECT_EQ(made.exit_code, 1);
  EXPECT_TRUE(one_line(made.err)) << made.err;
  EXPECT_NE(made.err.find("was stripped of its debug information after graft-cc built it"), std::string::npos)
      << made.err;
  EXPECT_NE(made.err.find("objcopy --strip-debug"), std::string::npos) << made.err;
  EXPECT_EQ(made.err.find("build with graft-cc"), std::string::npos) << made.err;
}

// (c) An anonymous struct known by its typedef name is named by it: in
// directives, and in what graft prints.
TEST_F(Walls, AnAnonymousStructIsNamedByItsTypedef) {
  const auto v1 = build_program(dir, "anontypedef", "v1"), v2 = build_program(dir, "anontypedef", "v2");
  const auto directives = programs_dir() / "anontypedef" / "directives";
  auto explain = graft({"diff", v1.string(), v2.string(), "--explain", "--transform", (directives / "opaque.c").string()});
  ASSERT_EQ(explain.exit_code, 0) << explain.err;
  EXPECT_NE(explain.out.find("THREAD"), std::string::npos) << explain.out;
  EXPECT_EQ(explain.out.find("{...}"), std::string::npos) << explain.out;
  auto refused = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "refused.graft").string(),
                        "--transform", (directives / "misspelt.c").string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(one_line(refused.err)) << refused.err;
  EXPECT_NE(refused.err.find("THREAD has no member context"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.err.find("{...}"), std::string::npos) << refused.err;
  // A transformer names a struct by its tag, which THREAD does not have.
  refused = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "refused.graft").string(), "--transform",
                   (directives / "transform.c").string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(one_line(refused.err)) << refused.err;
  EXPECT_NE(refused.err.find("a transformer for THREAD, a struct without a tag that only a typedef names"),
            std::string::npos) << refused.err;

  const auto patch = dir.path() / "threads.graft";
  auto made = graft({"diff", v1.string(), v2.string(), "-o", patch.string(), "--transform",
                     (directives / "opaque.c").string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  Process target({v1.string()});
  EXPECT_EQ(target.ask("next"), "1 0");
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("next"), "2 1");  // the ids kept, the new member zero
}

// (d) Two block-scope statics of one name in one function are two variables,
// named the same way in two builds of the same source: nothing changed in
// their file, and they keep their values.
TEST_F(Walls, BlockStaticsOfOneNameAreDistinct) {
  const auto v1 = build_program(dir, "blockstatics", "v1"), v2 = build_program(dir, "blockstatics", "v2");
  auto explain = graft({"diff", v1.string(), v2.string(), "--explain"});
  ASSERT_EQ(explain.exit_code, 0) << explain.err;
  EXPECT_EQ(explain.out.find("laddr"), std::string::npos) << explain.out;
  const auto patch = dir.path() / "statics.graft";
  auto made = graft({"diff", v1.string(), v2.string(), "-o", patch.string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  Process target({v1.string()});
  EXPECT_EQ(target.ask("note 5"), "5");
  EXPECT_EQ(target.ask("note -1"), "-1");
  EXPECT_EQ(target.ask("?"), "1");
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("?"), "2");
  EXPECT_EQ(target.ask("note 7"), "12");
  EXPECT_EQ(target.ask("note -1"), "-2");
}

// (f) A struct ending in a flexible array member, allocated with room for
// its elements: the header is scanned once and the rest of the allocation
// as elements of the array, so the items they point to are found and
// transformed (they were read as more headers, and missed). A change to the
// array's element type is refused in one line, the target as it was.
TEST_F(Walls, AFlexibleArrayMemberIsScannedAsItsElements) {
  const auto [v1, v2, patch] = build_update(dir, "flexarray");
  Process target({v1.string()});
  ASSERT_EQ(target.ask("make 5"), "made");
  ASSERT_EQ(target.ask("make 3"), "made");
  ASSERT_EQ(target.ask("sum"), "130");  // 10 * (0+1+2+3+4) + 10 * (0+1+2)
  EXPECT_EQ(target.ask("extra"), "-1");
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("sum"), "130");  // every item found: its value moved behind the new member
  EXPECT_EQ(target.ask("extra"), "0");
  ASSERT_EQ(target.ask("make 2"), "made");
  EXPECT_EQ(target.ask("sum"), "140");

  const auto v3 = build_program(dir, "flexarray", "v3");
  const auto refused_patch = diff(dir, v1, v3, "flexarray-v3.graft");
  Process other({v1.string()});
  ASSERT_EQ(other.ask("make 4"), "made");
  auto refused = graft({"apply", std::to_string(other.pid()), refused_patch.patch.string()});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_TRUE(one_line(refused.err)) << refused.err;
  EXPECT_NE(refused.err.find("flexible array member r[]"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("nothing was changed"), std::string::npos) << refused.err;
  EXPECT_EQ(other.ask("sum"), "60");
  EXPECT_TRUE(text_matches_binary(other.pid(), v1));
}

// (g) A project that builds with gcc -Werror builds with graft-cc: the
// warnings clang gives where gcc does not stay warnings (an implicit enum
// conversion, gcc's own -Wlogical-op unknown to clang); one the user makes
// an error by name stays an error.
TEST_F(Walls, ClangOnlyWarningsAreNotErrorsUnderWerror) {
  const auto binary = build_own_program(dir, "enumconv", "v1", {"-Wall", "-Werror", "-Wlogical-op"});
  Process target({binary.string()});
  EXPECT_EQ(target.ask("green"), "1");
  const auto source = programs_dir() / "enumconv" / "v1" / "main.c";
  auto strict = run({(bin_dir() / "graft-cc").string(), "-Werror", "-Werror=enum-conversion", "-c", source.string(),
                     "-o", (dir.path() / "strict.o").string()});
  EXPECT_NE(strict.exit_code, 0);
  EXPECT_NE(strict.err.find("-Wenum-conversion"), std::string::npos) << strict.err;
}

}  // namespace
}  // namespace graft::test
