// Start-up state: graft diff refuses new state that the new version sets in
// code the running process will not run again, says where and how to get
// past it, and accepts state set by code that runs again (which then works
// live).
#include <gtest/gtest.h>

#include <fstream>

#include "../support/harness.h"

namespace graft::test {
namespace {

bool one_line(const std::string& text) { return !text.empty() && text.find('\n') == text.size() - 1; }

// Every way graft knows: a new member set by a setup function main calls
// before its loop, a new global set by main itself, one set by a thread
// before its loop, one behind a once-flag the old version already set, one
// set by a constructor, one by a pthread_once routine.
const std::vector<std::string> kStartupState = {"cfg.verbose", "greeting",   "worker_slots",
                                                "lazy_size",   "ctor_value", "once_value"};

TEST(StartupState, EachNewValueSetAtStartUpIsRefusedInOneLine) {
  TempDir dir;
  const auto v1 = build_program(dir, "startup", "v1");
  const auto v2 = build_program(dir, "startup", "v2");
  const auto patch = dir.path() / "p.graft";
  auto result = graft({"diff", v1.string(), v2.string(), "-o", patch.string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(one_line(result.err)) << result.err;
  EXPECT_FALSE(std::filesystem::exists(patch));
  // The first names what sets it, where, and why that does not run again, and both ways out.
  EXPECT_NE(result.err.find("new member main.c::cfg.verbose is set by main.c::setup (main.c:"), std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("called from main before its service loop), which the running process will not run again"),
            std::string::npos) << result.err;
  EXPECT_NE(result.err.find("GRAFT_TRANSFORM(config, from, to) { to->verbose = ...; }"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("--accept-static-value cfg.verbose"), std::string::npos) << result.err;
  for (const auto& name : kStartupState) EXPECT_NE(result.err.find(name), std::string::npos) << name << ": " << result.err;

  // Said right, each is listed with how it is set.
  std::vector<std::string> args = {"diff", v1.string(), v2.string(), "--explain"};
  for (const auto& name : kStartupState) args.insert(args.end(), {"--accept-static-value", name});
  result = graft(args);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  for (const auto& how : {"main.c::greeting is set by main (main.c:", "main before its service loop",
                          "main.c::ctor_value is set by main.c::early (main.c:", "a constructor",
                          "main.c::lazy_size is set by main.c::lazy_init (main.c:",
                          "behind the once-flag main.c::lazy_done, already set in the running process",
                          "main.c::once_value is set by main.c::init_once (main.c:", "run once through pthread_once in main.c::worker, whose control main.c::once is already done",
                          "main.c::worker_slots is set by main.c::worker (main.c:",
                          "main.c::worker before its service loop (a thread started by main)",
                          "it keeps its static value (--accept-static-value)",
                          // A changed function that only start-up runs: said, not refused.
                          "start-up code changed: main.c::setup runs only at start-up (called from main before its "
                          "service loop); what it does differently now does not happen in the running process",
                          // Changed read-only data start-up code read: said, not refused.
                          "start-up code read the changed read-only main.c::product: main (main.c:",
                          "main before its service loop) ran with the old value"})
    EXPECT_NE(result.out.find(how), std::string::npos) << how << "\n" << result.out;

  // Some of them said right is still a refusal, naming the rest.
  result = graft({"diff", v1.string(), v2.string(), "--explain", "--accept-static-value", "cfg.verbose"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("new global main.c::ctor_value"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("GRAFT_INIT(ctor_value, int, value)"), std::string::npos) << result.err;
}

// A counter the worker's loop keeps and a table it allocates on first use
// (its own NULL is the flag): the new code sets both after the update.
TEST(StartupState, StateSetByCodeThatRunsAgainIsAcceptedAndWorksLive) {
  TempDir dir;
  const auto v1 = build_program(dir, "startup", "v1");
  const auto v3 = build_program(dir, "startup", "v3");
  const auto d = diff(dir, v1, v3, "p13.graft", {"--explain"});
  EXPECT_EQ(d.out.find("start-up state"), std::string::npos) << d.out;
  Process target({v1.string()});
  EXPECT_EQ(target.ask("v"), "1 8080");
  EXPECT_EQ(target.ask("wake"), "woken");
  auto applied = graft({"apply", std::to_string(target.pid()), d.patch.string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("v"), "3 8080 0 -1");
  EXPECT_EQ(target.ask("wake"), "woken");
  EXPECT_EQ(target.ask("wake"), "woken");
  EXPECT_EQ(target.ask("v"), "3 8080 2 2");
}

}  // namespace
// A flag the code sets and clears every call (redis's activeExpireCycle and
// its timelimit_exit) is no once-flag: a new member set by that code is set
// again at the next call, and graft diff has nothing to refuse. (It said
// "behind the once-flag main.c::limit_hit, already set in the running
// process" and refused.)
TEST(StartupState, AFlagClearedAgainIsNotAOnceFlag) {
  TempDir dir;
  const auto v1 = build_program(dir, "resetflag", "v1"), v2 = build_program(dir, "resetflag", "v2");
  auto result = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "p.graft").string(), "--explain"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out.find("once-flag"), std::string::npos) << result.out;
  EXPECT_EQ(result.err.find("once-flag"), std::string::npos) << result.err;
}

// The service function's own start-up, before its loop, through the address
// main passes it (beanstalkd 1.12's srvserve(&srv) sets the new
// srv.conns.setpos so): the running process is in that loop already and
// never sets it. The member is new in a struct inside the global (srv.conns
// is a Heap), which graft did not watch either. graft diff accepted this
// patch without a word, and the new code called a null function pointer.
TEST(StartupState, ANewMemberTheServiceFunctionSetsBeforeItsLoopIsRefused) {
  TempDir dir;
  const auto v1 = build_program(dir, "servesetup", "v1"), v2 = build_program(dir, "servesetup", "v2");
  const auto patch = dir.path() / "p.graft";
  auto result = graft({"diff", v1.string(), v2.string(), "-o", patch.string()});
  EXPECT_EQ(result.exit_code, 1) << result.out;
  EXPECT_TRUE(one_line(result.err)) << result.err;
  EXPECT_FALSE(std::filesystem::exists(patch));
  EXPECT_NE(result.err.find("new member main.c::srv.c.answer is set by serve (main.c:"), std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("serve before its service loop, through the address main passes it"),
            std::string::npos) << result.err;
  EXPECT_NE(result.err.find("--accept-static-value srv.c.answer"), std::string::npos) << result.err;
}

// A writable global whose initial value changed and that no code of the
// patch uses (nginx's Server: header) keeps its running value, as every
// global does: --explain says so, where it said nothing, and the update
// lands with the old value in place.
TEST(StartupState, AChangedInitialValueNoPatchedCodeUsesIsSaidToBeKept) {
  TempDir dir;
  const auto v1 = build_program(dir, "keptinit", "v1"), v2 = build_program(dir, "keptinit", "v2");
  const auto d = diff(dir, v1, v2, "p.graft", {"--explain"});
  EXPECT_NE(d.out.find("state kept: main.c::server_header keeps its running value; its initial value changed in the "
                       "new version"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("no code of the patch uses it"), std::string::npos) << d.out;
  Process target({v1.string()});
  auto applied = graft({"apply", std::to_string(target.pid()), d.patch.string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("h"), "Server: keptinit/1");
}

// A global whose struct the release renames by value (beanstalkd 1.12's
// tubes: struct ms -> struct Ms, `used` renamed `len`, a new `cap` set at
// start-up): converted as a retyped global, by name, so `len` would start at
// zero and `cap` keep its static value. The refusal offers a transformer of
// the user's for it (by its new name), which now exists for the struct of a
// global that gets new storage: it carries `used` into `len` and gives `cap`
// its value, and the program reads 3 where the by-name conversion gives 0.
// (First it offered GRAFT_TRANSFORM, which graft then refused; then the
// commit-time code, which cannot read the old `used`.)
TEST(StartupState, ANewMemberOfARenamedGlobalStructIsTheUsersTransformersToSet) {
  TempDir dir;
  const auto v1 = build_program(dir, "renamedglobal", "v1"), v2 = build_program(dir, "renamedglobal", "v2");
  const auto patch = dir.path() / "p.graft";
  auto result = graft({"diff", v1.string(), v2.string(), "-o", patch.string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(one_line(result.err)) << result.err;
  EXPECT_NE(result.err.find("new member tubes.cap is set by main (main.c:"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("GRAFT_TRANSFORM(Ms, from, to) { to->cap = ...; }"), std::string::npos) << result.err;
  const auto transformer = dir.path() / "ms.c";
  std::ofstream(transformer) << "#include <graft/graft.h>\n#include \"graft_old_types.h\"\n"
                                "struct Ms { int len; int cap; };\n"
                                "GRAFT_TRANSFORM(Ms, from, to) { to->len = from->used; to->cap = 4; }\n";
  auto made = graft({"diff", v1.string(), v2.string(), "-o", patch.string(), "--transform", transformer.string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  Process target({v1.string()});
  EXPECT_EQ(target.ask("r"), "3");
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("r"), "3");  // 0 without the user's line: `len` is not `used` by name
}

}  // namespace graft::test
