// Patched code using thread-local variables of the running program: every
// thread, the main one included, keeps its own value across the update.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../support/harness.h"

namespace graft::test {
namespace {

constexpr int kWorkers = 3;

// Every version includes the shared driver of the program (common/program.h).
const std::string kCommon = "-I" + (programs_dir() / "tls" / "common").string();

// step() answers local * 1000 + shared, the calling thread's two counters.
long expected(long local, long shared) { return local * 1000 + shared; }

TEST(ThreadLocals, UnchangedThreadLocalsKeepEachThreadsValueInNewCode) {
  TempDir dir;
  const auto v1 = build_program(dir, "tls", "v1", {kCommon});
  const auto v2 = build_program(dir, "tls", "v2", {kCommon});
  const auto [patch, explain] = diff(dir, v1, v2, "tls.graft", {"--explain"});
  EXPECT_NE(explain.find("thread-local shared_ticks"), std::string::npos) << explain;
  EXPECT_NE(explain.find("thread-local tls.c::local_ticks"), std::string::npos) << explain;

  Process target({v1.string(), std::to_string(kWorkers)});
  // Worker k steps k + 1 times, the main thread twice: each thread's counters differ.
  std::vector<long> steps(kWorkers);
  for (int k = 0; k < kWorkers; ++k)
    for (long j = 1; j <= k + 1; ++j) {
      ASSERT_EQ(std::stol(target.ask("step " + std::to_string(k))), expected(j, j));
      steps[k] = j;
    }
  ASSERT_EQ(std::stol(target.ask("step main")), expected(1, 1));
  ASSERT_EQ(std::stol(target.ask("step main")), expected(2, 2));

  auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(nlohmann::json::parse(applied.out)["threads"], kWorkers + 1);

  // v2 counts shared by ten: each thread continues from its own values, in the new code.
  for (int k = 0; k < kWorkers; ++k) {
    const long n = steps[k];
    EXPECT_EQ(std::stol(target.ask("step " + std::to_string(k))), expected(n + 1, n + 10)) << "worker " << k;
    EXPECT_EQ(std::stol(target.ask("step " + std::to_string(k))), expected(n + 2, n + 20)) << "worker " << k;
  }
  EXPECT_EQ(std::stol(target.ask("step main")), expected(3, 12));

  // Back to v1's code, the values still each thread's own.
  auto reverted = graft({"revert", std::to_string(target.pid())});
  ASSERT_EQ(reverted.exit_code, 0) << reverted.err;
  EXPECT_EQ(std::stol(target.ask("step 0")), expected(steps[0] + 3, steps[0] + 21));
  EXPECT_EQ(std::stol(target.ask("step main")), expected(4, 13));
  EXPECT_TRUE(target.alive());
}

TEST(ThreadLocals, SharedLibraryThreadLocalThroughTheRunningBinarysGotEntry) {
  TempDir dir;
  const auto library = dir.path() / "libticks.so";
  auto built = run({"clang-14", "-O2", "-fPIC", "-shared", (programs_dir() / "tls" / "library" / "ticks.c").string(),
                    "-o", library.string()});
  ASSERT_EQ(built.exit_code, 0) << built.err;
  const std::vector<std::string> flags = {kCommon, "-DLIBRARY_TICKS", "-L" + dir.path().string(), "-lticks",
                                          "-Wl,-rpath," + dir.path().string()};
  const auto v1 = build_program(dir, "tls", "v1", flags);
  const auto v2 = build_program(dir, "tls", "v2", flags);
  const auto [patch, explain] = diff(dir, v1, v2, "tls.graft", {"--explain"});
  EXPECT_NE(explain.find("thread-local library_ticks of a shared library"), std::string::npos) << explain;

  // v1 adds 1 to the library's counter per step, v2 adds 5: library * 100000 + local * 1000 + shared.
  Process target({v1.string(), "2"});
  ASSERT_EQ(std::stol(target.ask("step 0")), 100000 + expected(1, 1));
  ASSERT_EQ(std::stol(target.ask("step 0")), 200000 + expected(2, 2));
  ASSERT_EQ(std::stol(target.ask("step main")), 100000 + expected(1, 1));
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(std::stol(target.ask("step 0")), 700000 + expected(3, 12));
  EXPECT_EQ(std::stol(target.ask("step 1")), 500000 + expected(1, 10));
  EXPECT_EQ(std::stol(target.ask("step main")), 600000 + expected(2, 11));
}

TEST(ThreadLocals, NewThreadLocalIsRefusedAndNothingIsWritten) {
  TempDir dir;
  const auto v1 = build_program(dir, "tls", "v1", {kCommon});
  const auto v3 = build_program(dir, "tls", "v3", {kCommon});
  const auto patch = dir.path() / "new-tls.graft";
  auto diff = graft({"diff", v1.string(), v3.string(), "-o", patch.string()});
  EXPECT_NE(diff.exit_code, 0);
  EXPECT_NE(diff.err.find("thread-local variable tls.c::added_ticks is new: existing threads have no storage for it"),
            std::string::npos)
      << diff.err;
  EXPECT_EQ(std::count(diff.err.begin(), diff.err.end(), '\n'), 1) << diff.err;  // one line
  EXPECT_FALSE(std::filesystem::exists(patch));
}

}  // namespace
}  // namespace graft::test
