// Update-time code (graft diff --transform with GRAFT_INIT, GRAFT_RERUN,
// GRAFT_ON_UPDATE): state the new version's start-up sets gets its value
// during the live update, run in a borrowed thread of the program while the
// others run; code that fails abandons the update with nothing changed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "../support/harness.h"

namespace graft::test {
namespace {

std::string update_file(const std::string& name) {
  return (programs_dir() / "initcode" / "update" / (name + ".c")).string();
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The system call a thread is blocked in, from /proc ("0" read, "43" accept; "running").
std::string blocked_in(pid_t pid, pid_t tid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall");
  std::string first;
  in >> first;
  return first;
}

class UpdateCode : public ::testing::Test {
 protected:
  void SetUp() override {
    v1 = build_program(dir, "initcode", "v1");
    v2 = build_program(dir, "initcode", "v2");
    std::ofstream(settings) << "X-Name: alice\n";
  }

  // good.c gives every value v2 sets at start-up; the files that fail on
  // purpose give at most custom_hdrs, and say the static values of the rest
  // are right (graft diff refuses start-up state otherwise; loop.c gives none).
  std::filesystem::path patch_with(const std::string& name) {
    std::vector<std::string> args = {"--transform", update_file(name)};
    if (name != "good" && name != "commit" && name != "commit_fails")
      for (const char* rest : {"custom_hdrs", "last_event", "squares", "table_ready", "ticks"})
        args.insert(args.end(), {"--accept-static-value", rest});
    return diff(dir, v1, v2, name + ".graft", args).patch;
  }

  // A refused update: one line saying why, and the process on v1 exactly as before.
  void expect_abandoned(Process& target, const CommandResult& result, const std::string& why) {
    EXPECT_EQ(result.exit_code, 1) << result.out;
    EXPECT_NE(result.err.find(why), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("the update was abandoned and nothing was changed"), std::string::npos) << result.err;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    EXPECT_EQ(target.ask("describe"), "v1");
    EXPECT_TRUE(text_matches_binary(target.pid(), v1));
    EXPECT_EQ(read_text("/proc/" + std::to_string(target.pid()) + "/maps").find("graft"), std::string::npos)
        << "the patch is still mapped";
    auto status = graft({"status", std::to_string(target.pid())});
    EXPECT_NE(status.out.find("no graft patches applied"), std::string::npos) << status.out;
    // Its idle threads were never disturbed: each of their calls ends normally.
    EXPECT_EQ(target.ask("wake"), "woken");
    EXPECT_EQ(target.ask("connect"), "connected");
    EXPECT_TRUE(wait_until([&] { return target.ask("jobs") == "read 1 ok accept 1 ok"; })) << target.ask("jobs");
  }

  // What v2 shows once start-up state has its value: the file argv[1]
  // names, the table setup_table fills, the event GRAFT_ON_UPDATE logs.
  static constexpr const char* kUpdated = "v2 hdrs=X-Name: alice squares=49 ready=1 event=live-updated#1";

  TempDir dir;
  std::filesystem::path v1, v2;
  std::filesystem::path settings = dir.path() / "settings";
};

TEST_F(UpdateCode, InitsRerunsAndOnUpdateGiveTheStateStartUpSetsItsValue) {
  // graft diff lists what runs, in the order it runs.
  auto explain = graft({"diff", v1.string(), v2.string(), "--explain", "--transform", update_file("good")});
  ASSERT_EQ(explain.exit_code, 0) << explain.err;
  const size_t init = explain.out.find("init     main.c::custom_hdrs"), rerun = explain.out.find("rerun    main.c::setup_table"),
               run = explain.out.find("run      graft_on_update");
  EXPECT_TRUE(init != std::string::npos && rerun != std::string::npos && run != std::string::npos) << explain.out;
  EXPECT_TRUE(init < rerun && rerun < run) << explain.out;
  EXPECT_NE(explain.out.find("add      main.c::custom_hdrs"), std::string::npos) << explain.out;

  // A fresh v2 is what the update must reach.
  {
    Process fresh({v2.string(), settings.string()});
    EXPECT_EQ(fresh.ask("describe"), "v2 hdrs=X-Name: alice squares=49 ready=1 event=started#1");
  }
  Process target({v1.string(), settings.string()});
  EXPECT_EQ(target.ask("describe"), "v1");
  // Every thread idle: main in read() on stdin, the acceptor in accept(), the reader in read() on a pipe.
  std::map<pid_t, std::string> before;
  ASSERT_TRUE(wait_until([&] {
    before.clear();
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(target.pid()) + "/task")) {
      const pid_t tid = std::stoi(task.path().filename().string());
      before[tid] = blocked_in(target.pid(), tid);
    }
    return before.size() == 3 && std::all_of(before.begin(), before.end(), [](const auto& t) {
             return t.second == "0" || t.second == "43";
           });
  }));
  auto result = graft({"apply", std::to_string(target.pid()), patch_with("good").string(), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report["update_calls"], 3) << result.out;
  EXPECT_TRUE(report["update_thread_idle"].get<bool>()) << result.out;
  // One of them ran the code, and is back in its call as before (no EINTR: the call would end its loop).
  const pid_t borrowed = report["update_thread"].get<pid_t>();
  ASSERT_TRUE(before.count(borrowed)) << result.out;
  EXPECT_TRUE(wait_until([&] { return blocked_in(target.pid(), borrowed) == before[borrowed]; }));
  EXPECT_EQ(target.ask("describe"), kUpdated);
  EXPECT_EQ(target.ask("describe"), kUpdated);
  EXPECT_EQ(target.ask("wake"), "woken");
  EXPECT_EQ(target.ask("connect"), "connected");
  EXPECT_TRUE(wait_until([&] { return target.ask("jobs") == "read 1 ok accept 1 ok"; })) << target.ask("jobs");
  // graft info says what the patch runs.
  auto info = graft({"info", patch_with("good").string(), "--json"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  const auto code = nlohmann::json::parse(info.out)["update_code"];
  EXPECT_EQ(code["inits"][0]["global"], "main.c::custom_hdrs") << info.out;
  EXPECT_EQ(code["reruns"][0], "main.c::setup_table") << info.out;
  EXPECT_EQ(code["on_update"], "graft_on_update") << info.out;
}

TEST_F(UpdateCode, ABlockedAcceptInTheBorrowedThreadSeesNoEintr) {
  const auto patch = patch_with("good");
  Process target({v1.string(), settings.string()});
  // The main thread busy while the file exists: the code runs in an idle worker.
  const auto busy = dir.path() / "busy";
  std::ofstream(busy) << "";
  ASSERT_EQ(target.ask("spin " + busy.string()), "spinning");
  ASSERT_TRUE(wait_until([&] { return blocked_in(target.pid(), target.pid()) == "running"; }));
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
  std::filesystem::remove(busy);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto report = nlohmann::json::parse(result.out);
  const pid_t borrowed = report["update_thread"].get<pid_t>();
  EXPECT_NE(borrowed, target.pid()) << result.out;
  EXPECT_TRUE(report["update_thread_idle"].get<bool>()) << result.out;
  // The acceptor (the first idle thread) lent itself, and is back in accept().
  EXPECT_TRUE(wait_until([&] { return blocked_in(target.pid(), borrowed) == "43"; })) << blocked_in(target.pid(), borrowed);
  EXPECT_EQ(target.ask("connect"), "connected");
  EXPECT_TRUE(wait_until([&] { return target.ask("jobs") == "read 0 waiting accept 1 ok"; })) << target.ask("jobs");
  EXPECT_EQ(target.ask("describe"), kUpdated);
}

// The update code calls memset, an indirect function (IFUNC) v1 never
// imported: graft asks its own copy of the target's libc which
// implementation it picks. A library preloaded into graft that defines
// memset first (as ASan's runtime does in graft's sanitized build) is not
// that copy and must not be taken for it.
TEST_F(UpdateCode, AnIndirectFunctionComesFromTheTargetsLibraryNotWhatGraftPreloads) {
  const auto source = dir.path() / "own_memset.c", library = dir.path() / "libown_memset.so";
  std::ofstream(source) << "#include <stddef.h>\n"
                           "void *memset(void *to, int c, size_t n) {\n"
                           "  for (size_t i = 0; i < n; ++i) ((volatile unsigned char *)to)[i] = (unsigned char)c;\n"
                           "  return to;\n"
                           "}\n";
  const auto built = run({"cc", "-O0", "-shared", "-fPIC", "-o", library.string(), source.string()});
  ASSERT_EQ(built.exit_code, 0) << built.err;
  const auto patch = patch_with("good");
  Process target({v1.string(), settings.string()});
  // ASan (scripts/sanitize.sh) wants its runtime first; here it is second on purpose.
  const char* asan = std::getenv("ASAN_OPTIONS");
  auto result = run({"env", "LD_PRELOAD=" + library.string(),
                     "ASAN_OPTIONS=" + std::string(asan ? asan : "") + ":verify_asan_link_order=0",
                     (bin_dir() / "graft").string(), "apply", std::to_string(target.pid()), patch.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(target.ask("describe"), kUpdated);
}

TEST_F(UpdateCode, AnInitThatReturnsNonzeroAbandonsTheUpdate) {
  Process target({v1.string(), settings.string()});
  auto result = graft({"apply", std::to_string(target.pid()), patch_with("refuses").string()});
  expect_abandoned(target, result, "refuses.c: the update-time code GRAFT_INIT(custom_hdrs) (graft_init__custom_hdrs) returned 1");
  // A good patch still applies afterwards.
  auto applied = graft({"apply", std::to_string(target.pid()), patch_with("good").string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_NE(applied.out.find("update-time code: 3 functions run in thread"), std::string::npos) << applied.out;
  EXPECT_EQ(target.ask("describe"), kUpdated);
}

TEST_F(UpdateCode, AFaultingInitAbandonsTheUpdate) {
  Process target({v1.string(), settings.string()});
  auto result = graft({"apply", std::to_string(target.pid()), patch_with("fault").string()});
  expect_abandoned(target, result, "fault.c: the update-time code GRAFT_INIT(custom_hdrs) (graft_init__custom_hdrs) faulted with SIGSEGV (address 0x0, pc 0x");
}

// GRAFT_AT_COMMIT runs at the commit, every thread stopped, after the
// update-time code and the commit's writes: it sees what GRAFT_ON_UPDATE logged.
TEST_F(UpdateCode, CommitTimeCodeRunsOnceTheCommitIsIn) {
  auto explain = graft({"diff", v1.string(), v2.string(), "--explain", "--transform", update_file("commit")});
  ASSERT_EQ(explain.exit_code, 0) << explain.err;
  EXPECT_NE(explain.out.find("commit   graft_at_commit"), std::string::npos) << explain.out;
  Process target({v1.string(), settings.string()});
  auto result = graft({"apply", std::to_string(target.pid()), patch_with("commit").string(), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report["update_calls"], 4) << result.out;
  EXPECT_GT(report["at_commit_us"].get<uint64_t>(), 0u) << result.out;
  EXPECT_EQ(target.ask("describe"), std::string(kUpdated) + "+c");
  EXPECT_EQ(target.ask("wake"), "woken");
}

// A nonzero return at the commit rolls it back: the entries, the data, the
// registry; the process runs v1 exactly as before, and a good patch applies.
TEST_F(UpdateCode, CommitTimeCodeThatFailsRollsTheCommitBack) {
  Process target({v1.string(), settings.string()});
  auto result = graft({"apply", std::to_string(target.pid()), patch_with("commit_fails").string()});
  EXPECT_EQ(result.exit_code, 1) << result.out;
  EXPECT_NE(result.err.find("commit_fails.c: the update-time code GRAFT_AT_COMMIT (graft_at_commit) returned 7: the "
                            "commit was rolled back and nothing was changed"),
            std::string::npos) << result.err;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  EXPECT_EQ(target.ask("describe"), "v1");
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
  EXPECT_EQ(read_text("/proc/" + std::to_string(target.pid()) + "/maps").find("graft"), std::string::npos)
      << "the patch is still mapped";
  EXPECT_NE(graft({"status", std::to_string(target.pid())}).out.find("no graft patches"), std::string::npos);
  auto applied = graft({"apply", std::to_string(target.pid()), patch_with("good").string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("describe"), kUpdated);
}

TEST_F(UpdateCode, UpdateCodeThatNeverFinishesIsStoppedByTheTimeLimit) {
  Process target({v1.string(), settings.string()});
  auto result = graft({"apply", std::to_string(target.pid()), patch_with("loop").string(), "--update-code-timeout", "200"});
  expect_abandoned(target, result, "loop.c: the update-time code GRAFT_ON_UPDATE (graft_on_update) did not finish within 200 ms");
}

TEST_F(UpdateCode, UpdateCodeThatCannotWorkIsRefusedByDiff) {
  auto refused = [&](const std::string& name, const std::string& text) {
    const auto file = dir.path() / name;
    std::ofstream(file) << "#include <graft/graft.h>\n" << text;
    auto result = graft({"diff", v1.string(), v2.string(), "-o", (dir.path() / "refused.graft").string(), "--transform",
                         file.string()});
    EXPECT_EQ(result.exit_code, 1) << name;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "refused.graft"));
    return result.err;
  };
  std::string err = refused("size.c", "GRAFT_INIT(custom_hdrs, int, value) { *value = 1; return 0; }\n");
  EXPECT_NE(err.find("size.c:2: GRAFT_INIT(custom_hdrs, ...): the type given is 4 bytes, but main.c::custom_hdrs is 8 bytes"),
            std::string::npos) << err;
  err = refused("kept.c", "GRAFT_INIT(jobs, int, value) { *value = 1; return 0; }\n");
  EXPECT_NE(err.find("main.c::jobs is in the running version too"), std::string::npos) << err;
  err = refused("ambiguous.c", "GRAFT_INIT(ticks, int, value) { *value = 1; return 0; }\n");
  EXPECT_NE(err.find("ticks is ambiguous, the new version has 2 globals of that name (main.c::ticks, util.c::ticks)"),
            std::string::npos) << err;
  err = refused("unknown.c", "GRAFT_INIT(nosuch, int, value) { *value = 1; return 0; }\n");
  EXPECT_NE(err.find("the new version has no global named nosuch"), std::string::npos) << err;
  err = refused("params.c", "GRAFT_RERUN(log_event);\n");
  EXPECT_NE(err.find("params.c:2: GRAFT_RERUN(log_event): log_event takes 1 parameter, and a rerun passes none: "
                     "write GRAFT_ON_UPDATE()"),
            std::string::npos) << err;
  err = refused("static.c", "void setup_table(void);\nGRAFT_ON_UPDATE() { setup_table(); return 0; }\n");
  EXPECT_NE(err.find("uses setup_table, which is static in the program (main.c::setup_table)"), std::string::npos) << err;
  err = refused("empty.c", "/* GRAFT_RERUN(setup_table); */\n");
  EXPECT_NE(err.find("empty.c defines no update-time code, and the two versions change no struct layout"),
            std::string::npos) << err;
}

}  // namespace
}  // namespace graft::test
