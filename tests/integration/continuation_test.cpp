// Frames that continue in new code: worker threads that never leave their
// loop function (blocked in read() on a pipe) take an update that replaces
// it, when its new code is equivalent for continuation; their return
// addresses move into the new code at the commit. When it is not, the update
// waits and is refused at the deadline, the target untouched.
#include <dirent.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <cstdio>
#include <set>

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
                             std::string* explain = nullptr) {
    const auto made = graft::test::diff(dir, from, to, name + ".graft", {"--explain"});
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
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "500", "--json"});
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

}  // namespace
}  // namespace graft::test
