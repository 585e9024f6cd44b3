// Reaching a safe moment in busy multi-threaded processes: dynamic
// checkpoints land updates that stopping and checking alone cannot.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../support/harness.h"

namespace graft::test {
namespace {

class Checkpoints : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir = new TempDir();
    v1 = build_program(*dir, "checkpoints", "v1");
    v2 = build_program(*dir, "checkpoints", "v2");
    patch = dir->path() / "p.graft";
    auto diff = graft({"diff", v1.string(), v2.string(), "-o", patch.string()});
    ASSERT_EQ(diff.exit_code, 0) << diff.err;
  }
  static void TearDownTestSuite() { delete dir; }

  nlohmann::json apply(const Process& target, const std::string& timeout_ms) {
    auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--json", "--timeout", timeout_ms});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return nlohmann::json::parse(result.out);
  }

  static TempDir* dir;
  static std::filesystem::path v1, v2, patch;
};
TempDir* Checkpoints::dir = nullptr;
std::filesystem::path Checkpoints::v1, Checkpoints::v2, Checkpoints::patch;

// A holder keeps the mutex in unchanged code most of the time; four workers
// sit inside the changed function, blocked on it. Polling never finds them
// all outside; checkpoints at their return addresses and at the entry do.
TEST_F(Checkpoints, DeadlockTrapLands) {
  Process target({v1.string(), "trap", "4"});
  EXPECT_EQ(target.ask("v"), "1 1");
  auto report = apply(target, "10000");
  EXPECT_EQ(report["ok"], true);
  EXPECT_GE(report["arrivals"].get<int>() + (report["attempts"].get<int>() == 1 ? 1 : 0), 1) << report.dump();
  EXPECT_EQ(target.ask("v"), "2 1");
  // The target runs on: the patched function still takes the lock and returns.
  EXPECT_EQ(target.ask("v"), "2 1");
}

TEST_F(Checkpoints, ThreadsEnteringAndLeavingAtHighRate) {
  Process target({v1.string(), "churn", "4"});
  auto report = apply(target, "10000");
  EXPECT_EQ(report["ok"], true);
  EXPECT_EQ(target.ask("v"), "2 1");
  ASSERT_EQ(graft({"revert", std::to_string(target.pid())}).exit_code, 0);
  EXPECT_EQ(target.ask("v"), "1 1");
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
}

TEST_F(Checkpoints, ManyBusyThreadsInUnchangedCode) {
  Process target({v1.string(), "busy", "256"});
  auto report = apply(target, "30000");
  EXPECT_EQ(report["ok"], true);
  EXPECT_EQ(report["threads"], 257);
  EXPECT_EQ(target.ask("v"), "2 1");
}

}  // namespace
}  // namespace graft::test
