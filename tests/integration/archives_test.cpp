// Static archives (issue 13): members of a .a on the link line are recorded
// and diffed like any other object, as projects build them (ar rcs, ranlib,
// -L/-l, the archive rebuilt in place between versions); a member graft-cc
// did not compile is reported at link time and a change to it refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../support/harness.h"
#include "elf/elf_file.h"

namespace graft::test {
namespace {
namespace fs = std::filesystem;

bool one_line(const std::string& text) { return !text.empty() && text.find('\n') == text.size() - 1; }

std::string graft_cc() { return (bin_dir() / "graft-cc").string(); }

void must(const CommandResult& result, const std::string& what) {
  if (result.exit_code != 0) throw std::runtime_error(what + " failed: " + result.err);
}

class Archives : public ::testing::Test {
 protected:
  TempDir dir;
  fs::path src() const { return dir.path() / "src"; }

  // The project's one tree at a version: v1, and v2's changed files over it
  // (as a checkout moves from one release to the next).
  void check_out(const std::string& version) {
    for (const std::string& layer : version == "v1" ? std::vector<std::string>{"v1"} : std::vector<std::string>{"v1", version})
      fs::copy(programs_dir() / "archive" / layer, src(), fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  }

  // Compiles a member with graft-cc, or with plain clang when `foreign`.
  void compile(const std::string& source, bool foreign = false) {
    const fs::path c = src() / source;
    fs::path object = c;
    object.replace_extension(".o");
    std::vector<std::string> argv = {foreign ? "clang-14" : graft_cc(), "-O2", "-pthread", "-c", c.string(), "-o",
                                     object.string()};
    must(run(argv), "compiling " + source);
  }

  // ar rcs lib/libtally.a ... (replacing the members of an existing
  // archive, as make does), then ranlib; `thin` makes a thin archive.
  void archive(bool thin = false) {
    const fs::path lib = src() / "lib";
    std::vector<std::string> argv = {"ar", thin ? "rcsT" : "rcs", (lib / "libtally.a").string()};
    for (const char* member : {"tally.o", "names.o", "unused.o"}) argv.push_back((lib / member).string());
    must(run(argv), "ar");
    must(run({"ranlib", (lib / "libtally.a").string()}), "ranlib");
  }

  // Links main.o with the archive into <version>/prog; the warnings graft-cc printed.
  std::pair<fs::path, std::string> link(const std::string& version, const std::vector<std::string>& archive_args) {
    const fs::path prog = dir.path() / version / "prog";
    fs::create_directories(prog.parent_path());
    std::vector<std::string> argv = {graft_cc(), "-O2", "-pthread", (src() / "main.o").string()};
    argv.insert(argv.end(), archive_args.begin(), archive_args.end());
    argv.insert(argv.end(), {"-o", prog.string()});
    const CommandResult linked = run(argv);
    must(linked, "linking " + version);
    return {prog, linked.err};
  }

  // The objects the store recorded for a binary, by file name.
  std::vector<std::string> recorded_objects(const fs::path& binary) {
    auto id = read_build_id(binary);
    if (!id) throw std::runtime_error(id.error().message);
    std::ifstream in(dir.path() / "store" / *id / "build.json");
    const auto record = nlohmann::json::parse(in);
    std::vector<std::string> out;
    for (const auto& o : record.at("objects")) out.push_back(fs::path(o.get<std::string>()).filename().string());
    return out;
  }

  // Builds a version: every member with graft-cc except those in `foreign`.
  void build_members(const std::string& version, const std::vector<std::string>& foreign = {}) {
    check_out(version);
    compile("main.c");
    for (const char* member : {"lib/tally.c", "lib/names.c", "lib/unused.c"})
      compile(member, std::find(foreign.begin(), foreign.end(), member) != foreign.end());
  }
};

// The changed function and the changed heap struct live in an archive member;
// the archive is rebuilt in place between the versions, linked by path then
// by -L/-l. The update applies on the running workers and is seen in what
// the program answers; the tally counted before it is kept.
TEST_F(Archives, AMemberChangedInAnArchiveIsPatchedUnderLoad) {
  build_members("v1");
  archive();
  const auto [v1, v1_warnings] = link("v1", {(src() / "lib" / "libtally.a").string()});
  EXPECT_EQ(v1_warnings, "");
  const std::vector<std::string> linked = {"0000-main.o", "0001-tally.o", "0002-names.o"};
  EXPECT_EQ(recorded_objects(v1), linked);  // unused.o is not linked: not recorded
  build_members("v2");
  archive();
  const auto [v2, v2_warnings] = link("v2", {"-L" + (src() / "lib").string(), "-ltally"});
  EXPECT_EQ(v2_warnings, "");
  EXPECT_EQ(recorded_objects(v2), linked);

  const auto patch = dir.path() / "tally.graft";
  auto explain = graft({"diff", v1.string(), v2.string(), "--explain"});
  ASSERT_EQ(explain.exit_code, 0) << explain.err;
  EXPECT_NE(explain.out.find("score"), std::string::npos) << explain.out;
  EXPECT_NE(explain.out.find("tally"), std::string::npos) << explain.out;
  auto made = graft({"diff", v1.string(), v2.string(), "-o", patch.string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;

  Process target({v1.string()});
  EXPECT_EQ(target.ask("score 5"), "10");
  EXPECT_EQ(target.ask("largest"), "-1");
  EXPECT_EQ(target.ask("name"), "tally");
  // The workers are counting: wait until they have, so that keeping it shows.
  long before = 0;
  for (int i = 0; i < 2000 && before < 50; ++i) before = std::stol(target.ask("calls"));
  ASSERT_GE(before, 50);
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("score 7"), "21");
  EXPECT_EQ(target.ask("largest"), "7");
  EXPECT_EQ(target.ask("name"), "tally");
  EXPECT_GT(std::stol(target.ask("calls")), before);
  EXPECT_TRUE(target.alive());
}

// A thin archive (ar rcsT) and --whole-archive: the members are the objects
// the archive names, recorded as they were when linked.
TEST_F(Archives, ThinArchiveMembersAreRecorded) {
  build_members("v1");
  archive(/*thin=*/true);
  const auto [prog, warnings] =
      link("v1", {"-Wl,--whole-archive", (src() / "lib" / "libtally.a").string(), "-Wl,--no-whole-archive"});
  EXPECT_EQ(warnings, "");
  const std::vector<std::string> linked = {"0000-main.o", "0001-tally.o", "0002-names.o", "0003-unused.o"};
  EXPECT_EQ(recorded_objects(prog), linked);
  Process target({prog.string()});
  EXPECT_EQ(target.ask("score 5"), "10");
}

// A member not compiled by graft-cc is named at link time in one line; graft
// diff patches the rest while it is unchanged, and refuses a change to it.
TEST_F(Archives, AMemberNotCompiledByGraftIsReportedAndItsChangeRefused) {
  build_members("v1", {"lib/names.c"});
  archive();
  const auto [v1, warnings] = link("v1", {(src() / "lib" / "libtally.a").string()});
  EXPECT_TRUE(one_line(warnings)) << warnings;
  EXPECT_NE(warnings.find("names.o"), std::string::npos) << warnings;
  EXPECT_NE(warnings.find("not compiled by graft-cc"), std::string::npos) << warnings;
  EXPECT_NE(warnings.find("CC=graft-cc"), std::string::npos) << warnings;
  const std::vector<std::string> recorded = {"0000-main.o", "0001-tally.o"};
  EXPECT_EQ(recorded_objects(v1), recorded);

  build_members("v2", {"lib/names.c"});
  archive();
  const auto [v2, ignored] = link("v2", {(src() / "lib" / "libtally.a").string()});
  auto made = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "same.graft").string()});
  EXPECT_EQ(made.exit_code, 0) << made.err;

  // The foreign member changes: graft cannot see how, so it refuses.
  std::ofstream(src() / "lib" / "names.c") << "#include \"tally.h\"\nconst char* tally_name(void) { return \"tallies\"; }\n";
  compile("lib/names.c", /*foreign=*/true);
  archive();
  const auto [v3, ignored3] = link("v3", {(src() / "lib" / "libtally.a").string()});
  made = graft({"diff", v1.string(), v3.string(), "-o", (dir.path() / "changed.graft").string()});
  EXPECT_EQ(made.exit_code, 1);
  EXPECT_TRUE(one_line(made.err)) << made.err;
  EXPECT_NE(made.err.find("libtally.a(names.o) changed"), std::string::npos) << made.err;
  EXPECT_NE(made.err.find("graft-cc did not compile it"), std::string::npos) << made.err;
}

}  // namespace
}  // namespace graft::test
