// Shared libraries built with graft-cc (issue 13): a module linked with
// -shared is recorded like an executable, `graft diff OLD.so NEW.so` makes
// its patch, and `graft apply PID` finds the module in the process by its
// build-id and patches its code and data while the program's threads call
// into it. A module not loaded yet, or unloaded and loaded again after the
// patch, is reported, never written into; `graft recover` drops the patch
// of a module that is gone.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../support/harness.h"
#include "elf/elf_file.h"

namespace graft::test {
namespace {
namespace fs = std::filesystem;

bool one_line(const std::string& text) { return !text.empty() && text.find('\n') == text.size() - 1; }

void must(const CommandResult& result, const std::string& what) {
  if (result.exit_code != 0) throw std::runtime_error(what + " failed: " + result.err);
}

class SharedLibraries : public ::testing::Test {
 protected:
  TempDir dir;
  fs::path host, v1, v2, patch;

  void SetUp() override {
    const fs::path sources = programs_dir() / "shlib";
    const std::string cc = (bin_dir() / "graft-cc").string();
    for (const std::string version : {"v1", "v2"}) {
      fs::create_directories(dir.path() / version);
      must(run({cc, "-O2", "-fPIC", "-shared", (sources / version / "mod.c").string(), "-o",
                (dir.path() / version / "libmod.so").string()}),
           "linking " + version + "/libmod.so");
    }
    v1 = dir.path() / "v1" / "libmod.so";
    v2 = dir.path() / "v2" / "libmod.so";
    host = dir.path() / "host";
    must(run({cc, "-O2", "-pthread", (sources / "v1" / "host.c").string(), "-o", host.string(), "-ldl"}), "linking host");
    patch = dir.path() / "mod.graft";
    must(graft({"diff", v1.string(), v2.string(), "-o", patch.string()}), "graft diff");
  }

  CommandResult apply(const Process& target) { return graft({"apply", std::to_string(target.pid()), patch.string()}); }
  CommandResult status(const Process& target) { return graft({"status", std::to_string(target.pid()), "--json"}); }
};

// The library's record names the object it was linked from; the patch
// replaces its functions and grows its heap struct; applied while two
// threads call into it, the entries already stored keep their values in the
// new layout, and the revert brings the old code and layout back.
TEST_F(SharedLibraries, AModuleAndItsDataAreUpdatedWhileTheProgramCallsIntoIt) {
  auto id = read_build_id(v1);
  ASSERT_TRUE(id) << id.error().message;
  std::ifstream in(dir.path() / "store" / *id / "build.json");
  ASSERT_TRUE(in) << "no build record for " << v1;
  const auto record = nlohmann::json::parse(in);
  ASSERT_EQ(record.at("objects").size(), 1u) << record.dump();
  EXPECT_EQ(fs::path(record.at("objects")[0].get<std::string>()).filename(), "0000-mod.o");
  const auto explain = graft({"diff", v1.string(), v2.string(), "--explain"});
  ASSERT_EQ(explain.exit_code, 0) << explain.err;
  EXPECT_NE(explain.out.find("struct entry"), std::string::npos) << explain.out;

  Process target({host.string(), v1.string()});
  EXPECT_EQ(target.ask("put 1 10"), "1");
  EXPECT_EQ(target.ask("put 17 170"), "2");  // the same bucket: a chain of two
  EXPECT_EQ(target.ask("get 17"), "v1 17=170");
  const auto applied = apply(target);
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("version"), "2");
  EXPECT_EQ(target.ask("get 17"), "v2 17=170 reads=1");
  EXPECT_EQ(target.ask("get 1"), "v2 1=10 reads=1");
  EXPECT_EQ(target.ask("get 1"), "v2 1=10 reads=2");
  EXPECT_EQ(target.ask("put 2 20"), "3");  // mod_stored, reached through the library's GOT, kept
  const auto listed = status(target);
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  const auto patches = nlohmann::json::parse(listed.out).at("patches");
  ASSERT_EQ(patches.size(), 1u);
  EXPECT_EQ(patches[0].at("library"), "libmod.so");
  EXPECT_TRUE(patches[0].at("lost").is_null());

  const auto reverted = graft({"revert", std::to_string(target.pid())});
  ASSERT_EQ(reverted.exit_code, 0) << reverted.err;
  EXPECT_EQ(target.ask("version"), "1");
  EXPECT_EQ(target.ask("get 1"), "v1 1=10");
  EXPECT_EQ(target.ask("get 2"), "v1 2=20");
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
  EXPECT_TRUE(text_matches_binary(target.pid(), host));
}

// Not loaded: refused in one line that says to apply once it is; loaded
// later (dlopen), the same patch applies.
TEST_F(SharedLibraries, AModuleLoadedAfterTheApplyIsPatchedOnceItIsLoaded) {
  Process target({host.string(), "-"});
  const auto early = apply(target);
  EXPECT_EQ(early.exit_code, 1);
  EXPECT_TRUE(one_line(early.err)) << early.err;
  EXPECT_NE(early.err.find("(libmod.so)"), std::string::npos) << early.err;
  EXPECT_NE(early.err.find("apply once it is loaded"), std::string::npos) << early.err;
  EXPECT_EQ(target.ask("load " + v1.string()), "loaded");
  EXPECT_EQ(target.ask("put 5 50"), "1");
  const auto applied = apply(target);
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("get 5"), "v2 5=50 reads=1");
}

// Unloaded (dlclose) and loaded again after the patch: the fresh copy runs
// the old code with fresh data. status says the patch is not in effect,
// apply and revert refuse and say so, nothing is written into the new copy;
// graft recover drops the patch, and the patch applies to the new copy.
TEST_F(SharedLibraries, AModuleUnloadedAfterThePatchIsReportedAndRecoverDropsThePatch) {
  Process target({host.string(), v1.string()});
  EXPECT_EQ(target.ask("put 1 10"), "1");
  const auto applied = apply(target);
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("get 1"), "v2 1=10 reads=1");
  EXPECT_EQ(target.ask("unload"), "unloaded");
  const auto gone = status(target);
  ASSERT_EQ(gone.exit_code, 0) << gone.err;
  const std::string lost = nlohmann::json::parse(gone.out).at("patches").at(0).at("lost").get<std::string>();
  EXPECT_NE(lost.find("was unloaded"), std::string::npos) << lost;
  EXPECT_NE(lost.find("graft recover"), std::string::npos) << lost;

  EXPECT_EQ(target.ask("load " + v1.string()), "loaded");
  EXPECT_EQ(target.ask("put 1 11"), "1");
  for (const auto& refused : {apply(target), graft({"revert", std::to_string(target.pid())})}) {
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_TRUE(one_line(refused.err)) << refused.err;
    EXPECT_NE(refused.err.find("loaded again unpatched"), std::string::npos) << refused.err;
  }
  EXPECT_EQ(target.ask("get 1"), "v1 1=11");  // the new copy untouched
  EXPECT_EQ(target.ask("version"), "1");

  const auto recovered = graft({"recover", std::to_string(target.pid())});
  ASSERT_EQ(recovered.exit_code, 0) << recovered.err;
  EXPECT_NE(recovered.out.find("dropped patch #1"), std::string::npos) << recovered.out;
  const auto after = status(target);
  EXPECT_TRUE(nlohmann::json::parse(after.out).at("patches").empty()) << after.out;
  const auto again = apply(target);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(target.ask("get 1"), "v2 1=11 reads=1");
}

// A library the program is linked against, whose exported counter the
// program reads itself: a copy relocation puts the live counter in the
// program, and the library's code uses it through its GOT. The patch's code
// must use that copy too, not the library's own, which nothing reads.
TEST_F(SharedLibraries, ASymbolTheDynamicLinkerBoundElsewhereIsUsedWhereItWasBound) {
  const fs::path linked = dir.path() / "linked";
  must(run({(bin_dir() / "graft-cc").string(), "-O2", "-fno-pic", "-no-pie",
            (programs_dir() / "shlib" / "v1" / "linked.c").string(), "-o", linked.string(),
            "-L" + v1.parent_path().string(), "-Wl,-rpath," + v1.parent_path().string(), "-lmod"}),
       "linking the program against v1/libmod.so");
  Process target({linked.string()});
  EXPECT_EQ(target.ask("put 1 10"), "1");
  EXPECT_EQ(target.ask("stored"), "1");
  const auto applied = apply(target);
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("version"), "2");
  EXPECT_EQ(target.ask("put 2 20"), "2");  // the new mod_put counts in the program's copy
  EXPECT_EQ(target.ask("stored"), "2");
  EXPECT_EQ(target.ask("get 1"), "v2 1=10 reads=1");
}

// A program that defines a function the library exports and calls itself:
// the library's calls go to the program's definition, before the patch and
// after. The patch replaces the library's copy all the same, and apply says
// that it is not what runs, so that nobody waits for it to.
// The module is built as gcc builds by default (-fsemantic-interposition;
// clang calls a function of the same unit directly otherwise), so that its
// own calls to mod_version go through its PLT.
TEST_F(SharedLibraries, ALibraryFunctionTheProgramInterposesIsReportedAsNotRunning) {
  const std::string cc = (bin_dir() / "graft-cc").string();
  for (const std::string version : {"v1", "v2"}) {
    fs::create_directories(dir.path() / ("si-" + version));
    must(run({cc, "-O2", "-fPIC", "-fsemantic-interposition", "-shared",
              (programs_dir() / "shlib" / version / "mod.c").string(), "-o",
              (dir.path() / ("si-" + version) / "libmod.so").string()}),
         "linking si-" + version + "/libmod.so");
  }
  const fs::path module = dir.path() / "si-v1" / "libmod.so";
  const fs::path module_patch = dir.path() / "si.graft";
  must(graft({"diff", module.string(), (dir.path() / "si-v2" / "libmod.so").string(), "-o", module_patch.string()}),
       "graft diff");
  const fs::path interposer = dir.path() / "interposer";
  must(run({cc, "-O2", "-fno-pic", "-no-pie", "-DINTERPOSE", (programs_dir() / "shlib" / "v1" / "linked.c").string(),
            "-o", interposer.string(), "-L" + module.parent_path().string(),
            "-Wl,-rpath," + module.parent_path().string(), "-lmod"}),
       "linking the interposer against si-v1/libmod.so");
  Process target({interposer.string()});
  EXPECT_EQ(target.ask("put 5 50"), "1");
  EXPECT_EQ(target.ask("get 5"), "v7 5=50");
  const auto applied = graft({"apply", std::to_string(target.pid()), module_patch.string(), "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  const auto notes = nlohmann::json::parse(applied.out).at("notes");
  ASSERT_EQ(notes.size(), 1u) << applied.out;
  EXPECT_NE(notes[0].get<std::string>().find("mod_version of libmod.so is replaced, but the library's calls to it go "
                                             "to another definition"), std::string::npos) << notes[0];
  EXPECT_EQ(target.ask("get 5"), "v7 5=50 reads=1");  // the new mod_get, calling the program's mod_version
}

// Two files of one build loaded (a copy under another name): patching one
// would leave the other's callers on the old code, so neither is patched.
TEST_F(SharedLibraries, TwoLoadedCopiesOfOneBuildAreRefused) {
  const fs::path copy = dir.path() / "libmod-copy.so";
  fs::copy_file(v1, copy);
  Process target({host.string(), v1.string()});
  EXPECT_EQ(target.ask("also " + copy.string()), "loaded");
  const auto refused = apply(target);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(one_line(refused.err)) << refused.err;
  EXPECT_NE(refused.err.find("two copies of build-id"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("libmod-copy.so"), std::string::npos) << refused.err;
  EXPECT_EQ(target.ask("version"), "1");
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
}

// The executable and a library each have their own stack of patches in
// one process: both apply (numbered in the order they came), status names
// the library's, and revert takes back the newest first, whichever binary
// it patched.
TEST_F(SharedLibraries, TheExecutableAndALibraryArePatchedSideBySide) {
  const std::string cc = (bin_dir() / "graft-cc").string();
  const fs::path host2 = dir.path() / "v2" / "host";
  must(run({cc, "-O2", "-pthread", (programs_dir() / "shlib" / "v2" / "host.c").string(), "-o", host2.string(), "-ldl"}),
       "linking v2/host");
  const fs::path host_patch = dir.path() / "host.graft";
  must(graft({"diff", host.string(), host2.string(), "-o", host_patch.string()}), "graft diff of the host");

  Process target({host.string(), v1.string()});
  EXPECT_EQ(target.ask("put 3 30"), "1");
  const auto library_applied = apply(target);
  ASSERT_EQ(library_applied.exit_code, 0) << library_applied.err;
  const auto host_applied = graft({"apply", std::to_string(target.pid()), host_patch.string()});
  ASSERT_EQ(host_applied.exit_code, 0) << host_applied.err;
  EXPECT_EQ(target.ask("hello"), "host v2");
  EXPECT_EQ(target.ask("get 3"), "v2 3=30 reads=1");
  const auto listed = status(target);
  const auto patches = nlohmann::json::parse(listed.out).at("patches");
  ASSERT_EQ(patches.size(), 2u) << listed.out;
  EXPECT_EQ(patches[0].at("sequence"), 1);
  EXPECT_EQ(patches[0].at("library"), "libmod.so");
  EXPECT_EQ(patches[1].at("sequence"), 2);
  EXPECT_TRUE(patches[1].at("library").is_null());
  // The same library patch again: already applied, whatever the executable's stack holds.
  const auto twice = apply(target);
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_NE(twice.err.find("is already applied"), std::string::npos) << twice.err;

  const auto first = graft({"revert", std::to_string(target.pid())});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(target.ask("hello"), "host v1");
  EXPECT_EQ(target.ask("get 3"), "v2 3=30 reads=2");
  const auto second = graft({"revert", std::to_string(target.pid())});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(target.ask("get 3"), "v1 3=30");
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
  EXPECT_TRUE(text_matches_binary(target.pid(), host));
}

}  // namespace
}  // namespace graft::test
