// Frames that continue in new code: worker threads that never leave their
// loop function (blocked in read() on a pipe) take an update that replaces
// it, when its new code is equivalent for continuation; their return
// addresses move into the new code at the commit. When it is not, the update
// waits and is refused at the deadline, the target untouched.
#include <dirent.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <atomic>
#include <cstdio>
#include <set>
#include <thread>

#include "../support/harness.h"

namespace graft::test {
namespace {

std::set<std::string> threads_of(pid_t pid) {
  std::set<std::string> tids;
  DIR* dir = opendir(fmt::format("/proc/{}/task", pid).c_str());
  if (!dir) return tids;
  while (dirent* e = readdir(dir))
    if (e->d_name[0] != '.') tids.insert(e->d_name);
  closedir(dir);
  return tids;
}

class Continuation : public ::testing::Test {
 protected:
  TempDir dir;

  std::filesystem::path diff(const std::filesystem::path& from, const std::filesystem::path& to, const std::string& name,
                             std::string* explain = nullptr, std::vector<std::string> args = {}) {
    args.push_back("--explain");
    const auto made = graft::test::diff(dir, from, to, name + ".graft", args);
    if (explain) *explain = made.out;
    return made.patch;
  }

  static nlohmann::json apply(pid_t pid, const std::filesystem::path& patch) {
    auto result = graft({"apply", std::to_string(pid), patch.string(), "--json", "--timeout", "5000"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return nlohmann::json::parse(result.out.empty() ? "{}" : result.out);
  }

  static nlohmann::json revert(pid_t pid) {
    auto result = graft({"revert", std::to_string(pid), "--json", "--timeout", "5000"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return nlohmann::json::parse(result.out.empty() ? "{}" : result.out);
  }

  // Each worker takes one request; returns the stats line after. Every
  // worker has taken as many as the others, and answers with its own count,
  // kept in a struct only its frame points to.
  static std::string poke_all(Process& target) {
    std::vector<std::string> answers;
    for (int w = 0; w < 3; ++w) answers.push_back(target.ask(fmt::format("poke {}", w)));
    const std::string stats = target.ask("stats");
    long reads = 0;
    EXPECT_EQ(std::sscanf(stats.c_str(), "reads=%ld", &reads), 1) << stats;
    for (const auto& a : answers) EXPECT_EQ(a, fmt::format("poked {}", reads / 3)) << stats;
    return stats;
  }
};

TEST_F(Continuation, DiffSaysWhetherAThreadMayStayInside) {
  const auto v1 = build_program(dir, "loop", "v1");
  std::string explain;
  diff(v1, build_program(dir, "loop", "v2"), "data", &explain);
  const auto loop = explain.find("main.c::worker_loop");
  ASSERT_NE(loop, std::string::npos) << explain;
  EXPECT_NE(explain.find("continuable: a thread may stay inside it; its frames continue in the new code", loop),
            std::string::npos) << explain;
  diff(v1, build_program(dir, "loop", "v3"), "body", &explain);
  EXPECT_NE(explain.find("not continuable: its code changes length"), std::string::npos) << explain;
}

// v2 moves the field the loop reads and gives the global it counts in new
// storage: only the new code can count 3 more reads and add step + 10. Each
// worker's job, which only its continued frame points to, is transformed:
// the new code finds its count at the new offset.
TEST_F(Continuation, BlockedWorkersContinueInTheNewCodeOfTheirLoop) {
  const auto v1 = build_program(dir, "loop", "v1");
  const auto patch = diff(v1, build_program(dir, "loop", "v2"), "data");
  Process target({v1.string()});
  ASSERT_EQ(poke_all(target), "reads=3 sum=45");
  const auto threads = threads_of(target.pid());
  ASSERT_EQ(threads.size(), 4u);

  const auto report = apply(target.pid(), patch);
  EXPECT_EQ(report.value("frames_continued", 0), 3) << report.dump();  // one per worker, blocked in read()
  EXPECT_EQ(report.value("objects", 0), 5) << report.dump();  // *config and 3 jobs in place, stats into new storage
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(threads_of(target.pid()), threads);  // no thread restarted or left
  EXPECT_EQ(target.ask("stats"), "reads=3 sum=45");
  // The old loop would read `step` at its old offset (now `flags`, zero) and
  // count in the old storage, which the new report no longer reads.
  EXPECT_EQ(poke_all(target), "reads=6 sum=90");
  EXPECT_EQ(poke_all(target), "reads=9 sum=135");
}

TEST_F(Continuation, ALoopWhoseCodeIsNotEquivalentKeepsTheUpdateWaiting) {
  const auto v1 = build_program(dir, "loop", "v1");
  const auto patch = diff(v1, build_program(dir, "loop", "v3"), "body");
  Process target({v1.string()});
  ASSERT_EQ(poke_all(target), "reads=3 sum=45");
  // Continuation alone (transfer points, which would move the idle workers, off).
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "500", "--json",
                       "--no-transfer-frames"});
  EXPECT_EQ(result.exit_code, 1);
  const auto json = nlohmann::json::parse(result.out);
  ASSERT_EQ(json["blocking"].size(), 3u) << result.out;  // the three workers, by thread id
  for (const auto& b : json["blocking"]) {
    EXPECT_GT(b["tid"].get<int>(), target.pid());
    ASSERT_FALSE(b["frames"].empty());
    EXPECT_EQ(b["frames"][0]["function"], "main.c::worker_loop") << result.out;
    EXPECT_FALSE(b["frames"][0]["executing"].get<bool>());
  }
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_EQ(poke_all(target), "reads=6 sum=90");
}

// Code only: the frames move into patch 1, then into patch 2 (from patch 1's
// copy), and back the same way on each revert.
TEST_F(Continuation, StackedPatchesMoveFramesForwardAndRevertMovesThemBack) {
  const auto v1 = build_program(dir, "loop", "v1");
  const auto v4 = build_program(dir, "loop", "v4");
  const auto first = diff(v1, v4, "v4");
  const auto second = diff(v4, build_program(dir, "loop", "v5"), "v5");
  Process target({v1.string()});
  ASSERT_EQ(poke_all(target), "reads=3 sum=45");  // 3 x (5 + 10)
  const auto threads = threads_of(target.pid());

  EXPECT_EQ(apply(target.pid(), first).value("frames_continued", 0), 3);
  EXPECT_EQ(poke_all(target), "reads=6 sum=120");  // + 3 x (5 + 20)
  EXPECT_EQ(apply(target.pid(), second).value("frames_continued", 0), 3);
  EXPECT_EQ(poke_all(target), "reads=9 sum=225");  // + 3 x (5 + 30)
  EXPECT_EQ(target.ask("v"), "5");

  EXPECT_EQ(revert(target.pid()).value("frames_continued", 0), 3);
  EXPECT_EQ(target.ask("v"), "4");
  EXPECT_EQ(poke_all(target), "reads=12 sum=300");  // patch 1's code again
  EXPECT_EQ(revert(target.pid()).value("frames_continued", 0), 3);
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_EQ(poke_all(target), "reads=15 sum=345");  // the binary's own code
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
  EXPECT_EQ(threads_of(target.pid()), threads);
}

// A release whose only change to `main` is its version string (tests/programs/
// release): its start-up keeps the old version in a frame slot and its error
// paths keep the GOT-loaded stderr in one, but nothing after the waiting
// fgets() reads them before writing them again, so main continues there
// (before the rule looked at what is live across each call, the whole of main
// was refused: "at +0x1d a value ... is kept in its frame").
TEST_F(Continuation, MainWhoseReleaseChangesOnlyItsVersionContinuesAtItsWaitingCalls) {
  const auto v1 = build_program(dir, "release", "v1");
  std::string explain;
  const auto patch = diff(v1, build_program(dir, "release", "v2"), "release", &explain);
  const auto main_at = explain.find("replace  main ");
  ASSERT_NE(main_at, std::string::npos) << explain;
  const std::string main_part = explain.substr(main_at);
  EXPECT_NE(main_part.find("continuable: a thread may stay inside it"), std::string::npos) << explain;
  for (const char* waiting : {"the call to fgets at main.c:77", "the call to read at main.c:81", "the call to usleep at main.c:88"}) {
    EXPECT_NE(main_part.find(waiting), std::string::npos) << waiting << "\n" << explain;
    for (size_t at = main_part.find(waiting); at != std::string::npos; at = main_part.find(waiting, at + 1)) {
      const std::string line = main_part.substr(at, main_part.find('\n', at) - at);
      EXPECT_NE(line.find(" continues"), std::string::npos) << line;
    }
  }
  // Calls given the old version string do not continue, each with its line.
  EXPECT_NE(main_part.find("the call to fprintf at main.c:97"), std::string::npos) << explain;
  EXPECT_NE(main_part.find("does not continue: it passes in rsi a value computed at"), std::string::npos) << explain;

  Process target({v1.string(), "3"});
  ASSERT_EQ(target.ask("version"), "release 1.0");
  ASSERT_EQ(target.ask("poke"), "poked 3");
  const auto threads = threads_of(target.pid());
  ASSERT_EQ(threads.size(), 5u);  // main, the ticker, three workers

  // Under activity: main serves pokes (write/read with the workers) while the
  // update is applied; the ticker counts throughout.
  std::atomic<bool> stop{false}, failed{false};
  std::atomic<int> pokes{0};
  std::string bad_answer;  // read only once the client has ended
  std::thread client([&] {
    try {
      while (!stop) {
        const std::string answer = target.ask("poke", std::chrono::milliseconds(10000));
        if (answer != "poked 3") throw std::runtime_error("answer: " + answer);
        ++pokes;
      }
    } catch (const std::exception& e) {
      bad_answer = e.what();
      failed = true;
    }
  });
  while (pokes < 20 && !failed) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto report = apply(target.pid(), patch);
  const int before = pokes;
  while (pokes < before + 20 && !failed) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  stop = true;
  client.join();
  EXPECT_EQ(bad_answer, "");
  EXPECT_EQ(report.value("ok", false), true) << report.dump();
  EXPECT_EQ(report.value("frames_continued", 0), 1) << report.dump();  // main, waiting in fgets, write or read

  // The new code answers, with every thread still there and every count kept.
  EXPECT_EQ(target.ask("version"), "release 2.0");
  EXPECT_EQ(target.ask("bogus"), "error");
  EXPECT_EQ(target.ask("served"), fmt::format("served {} ticking 1", 3 * (pokes.load() + 1)));
  EXPECT_EQ(threads_of(target.pid()), threads);
}

// v3 changes the banner main picks before its loop and keeps in a frame slot
// that the code after fgets() reads: that call may not continue, and says
// which line computed the value. main continues at its start-up calls, but
// its thread is in fgets(): graft diff refuses, naming that call. Written
// anyway (--allow-stuck-threads), the update waits for main and is refused
// at the deadline, the target untouched.
TEST_F(Continuation, AValueOfTheOldCodeLiveAcrossTheWaitingCallKeepsItRefused) {
  const auto v1 = build_program(dir, "release", "v1"), v3 = build_program(dir, "release", "v3");
  auto refused = graft({"diff", v1.string(), v3.string(), "-o", (dir.path() / "stuck.graft").string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.err.find('\n'), refused.err.size() - 1) << refused.err;
  EXPECT_NE(refused.err.find("main never returns (the program's main) and is replaced, but its threads have no place to "
                             "move into the new code: its frames do not continue at the call"), std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("it serves at (the call to fgets at main.c:77"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--allow-stuck-threads main"), std::string::npos) << refused.err;
  std::string explain;
  const auto patch = diff(v1, v3, "banner", &explain, {"--allow-stuck-threads", "main"});
  const auto fgets_at = explain.find("the call to fgets at main.c:77 (+");  // its verdict, not its transfer
  ASSERT_NE(fgets_at, std::string::npos) << explain;
  const std::string line = explain.substr(fgets_at, explain.find('\n', fgets_at) - fgets_at);
  EXPECT_NE(line.find("does not continue: its frame keeps at CFA"), std::string::npos) << line;
  EXPECT_NE(line.find("and the code after the call reads it; blocked by main.c:58"), std::string::npos) << line;

  Process target({v1.string(), "2"});
  ASSERT_EQ(target.ask("banner"), "hello");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "500", "--json"});
  EXPECT_EQ(result.exit_code, 1) << result.out << result.err;
  const auto json = nlohmann::json::parse(result.out.empty() ? "{}" : result.out);
  ASSERT_EQ(json["blocking"].size(), 1u) << result.out;
  EXPECT_EQ(json["blocking"][0]["tid"].get<int>(), target.pid());
  EXPECT_EQ(json["blocking"][0]["frames"].back()["function"], "main") << result.out;
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
  EXPECT_EQ(target.ask("banner"), "hello");
  EXPECT_EQ(target.ask("poke"), "poked 2");
}

}  // namespace
}  // namespace graft::test
