// Reaching a safe moment in busy multi-threaded processes: dynamic
// checkpoints land updates that stopping and checking alone cannot.
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../support/harness.h"
#include "target/process.h"

namespace graft::test {
namespace {

class Checkpoints : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir = new TempDir();
    // strict: changed() stays a function of its own (balanced would inline it
    // into the workers, and no thread would ever be inside it).
    const Update update = build_update(*dir, "checkpoints", {"--graft-policy=strict"});
    v1 = update.v1;
    v2 = update.v2;
    patch = update.patch;
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
  // The workers were inside changed(): the update needed checkpoints to land.
  EXPECT_GE(report["arrivals"].get<int>(), 1) << report.dump();
  EXPECT_GE(report["attempts"].get<int>(), 2) << report.dump();
  EXPECT_EQ(target.ask("v"), "2 1");
  // The target runs on: the patched function still takes the lock and returns.
  EXPECT_EQ(target.ask("v"), "2 1");
}

TEST_F(Checkpoints, ThreadsEnteringAndLeavingAtHighRate) {
  Process target({v1.string(), "churn", "4"});
  auto report = apply(target, "10000");
  EXPECT_EQ(report["ok"], true);
  EXPECT_EQ(target.ask("v"), "2 1");
  // The workers pass update points (graft.h): the flag that sent them there is down again.
  EXPECT_EQ(read_int(target.pid(), v1, "graft_update_pending"), 0);
  ASSERT_EQ(graft({"revert", std::to_string(target.pid())}).exit_code, 0);
  EXPECT_EQ(target.ask("v"), "1 1");
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
}

TEST_F(Checkpoints, ThreadsCreatedAndExitingDuringTheUpdate) {
  Process target({v1.string(), "spawn", "4"});
  auto report = apply(target, "10000");
  EXPECT_EQ(report["ok"], true);
  EXPECT_EQ(target.ask("v"), "2 1");
  ASSERT_EQ(graft({"revert", std::to_string(target.pid())}).exit_code, 0);
  EXPECT_EQ(target.ask("v"), "1 1");
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
}

TEST_F(Checkpoints, ThreadInsideASignalHandler) {
  Process target({v1.string(), "signal", "1"});
  auto report = apply(target, "10000");
  EXPECT_EQ(report["ok"], true);
  EXPECT_EQ(target.ask("v"), "2 1");
  ASSERT_EQ(graft({"revert", std::to_string(target.pid())}).exit_code, 0);
  EXPECT_EQ(target.ask("v"), "1 1");
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
}

// A thread that executes one of graft's int3s just as graft's stop request
// arrives is reported stopped by the request, past the int3, its SIGTRAP
// still queued; if graft detached then, the SIGTRAP would kill the process.
// Here two threads run into an int3 at changed_timed's entry again and again
// (each resume re-executes it) while graft stops them at once, thousands of
// times: the race happens, and every stop must show the thread rewound to the
// breakpoint, never past it; then graft leaves, and the target lives.
TEST_F(Checkpoints, ABreakpointHitAsTheStopArrivesIsRewound) {
  Process target({v1.string(), "rate", "2", "0", "0", "spin"});
  const RemoteAddress entry(live_address(target.pid(), v1, "changed_timed"));
  {
    auto attached = TracedProcess::attach(target.pid());
    ASSERT_TRUE(attached) << attached.error().message;
    TracedProcess& process = **attached;
    ASSERT_TRUE(process.stop_all());
    ASSERT_TRUE(process.plant_breakpoint(entry));
    // Until the threads have trapped 2000 times (the race came within about
    // 1000 stops before it was handled), or 8 s on a loaded machine.
    size_t trapped = 0, cycles = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(8);
    for (; trapped < 2000 && std::chrono::steady_clock::now() < until; ++cycles) {
      ASSERT_TRUE(process.resume_all());
      ASSERT_TRUE(process.stop_all());
      for (const auto& t : process.threads()) {
        ASSERT_NE(t.regs.pc(), entry + 1) << "thread " << t.tid << " left past graft's int3 after " << cycles << " stops";
        trapped += t.trapped_at == entry;
      }
    }
    EXPECT_GE(trapped, 100u) << "the threads hardly ran into the breakpoint in " << cycles << " stops";
    process.remove_breakpoint(entry);
    ASSERT_TRUE(process.detach());
  }
  // The workers run on: their call count moves (asked until it does, for a loaded machine).
  const std::string calls = target.ask("c");
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (target.ask("c") == calls && std::chrono::steady_clock::now() < limit) usleep(1000);
  EXPECT_NE(target.ask("c"), calls) << "the workers stopped calling";
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

namespace graft::test {
namespace {

// Threads blocked in read, accept, epoll_wait, a futex and nanosleep, and the
// main thread in read() where graft injects its system calls: after an
// update and a revert, every call ends as it would have without graft.
TEST(HardCases, BlockedSystemCallsSeeNoEintr) {
  TempDir dir;
  const auto [v1, v2, patch] = build_update(dir, "syscalls");
  Process target({v1.string()});
  EXPECT_EQ(target.ask("status"), "v1 read=waiting accept=waiting epoll=waiting futex=waiting sleep=waiting");
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string()});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  ASSERT_EQ(graft({"revert", std::to_string(target.pid())}).exit_code, 0);
  ASSERT_EQ(graft({"apply", std::to_string(target.pid()), patch.string()}).exit_code, 0);
  EXPECT_EQ(target.ask("wake"), "woken");
  // The sleeper's 400 ms run out by themselves; wait for every outcome.
  std::string status;
  for (int i = 0; i < 200; ++i) {
    status = target.ask("status");
    if (status.find("waiting") == std::string::npos) break;
    usleep(10000);
  }
  EXPECT_EQ(status, "v2 read=ok accept=ok epoll=ok futex=ok sleep=ok");
}

// A process stopped by SIGSTOP stays stopped: graft refuses (it cannot run
// anything in it) and leaves it as it was; SIGCONT lets it go on.
TEST(HardCases, StoppedProcessStaysStopped) {
  TempDir dir;
  const auto [v1, v2, patch] = build_update(dir, "syscalls");
  Process target({v1.string()});
  ASSERT_EQ(kill(target.pid(), SIGSTOP), 0);
  auto state = [&] {
    std::ifstream in("/proc/" + std::to_string(target.pid()) + "/stat");
    std::string pid, comm, s;
    in >> pid >> comm >> s;
    return s;
  };
  for (int i = 0; i < 500 && state() != "T"; ++i) usleep(1000);
  ASSERT_EQ(state(), "T");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "500"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("SIGSTOP"), std::string::npos) << result.err;
  EXPECT_EQ(state(), "T");  // still stopped after graft left
  ASSERT_EQ(kill(target.pid(), SIGCONT), 0);
  // epoll_wait itself fails with EINTR after SIGSTOP/SIGCONT (signal(7)): not compared here.
  const std::string status = target.ask("status");
  EXPECT_EQ(status.substr(0, 31), "v1 read=waiting accept=waiting ") << status;
  EXPECT_NE(status.find("futex=waiting sleep="), std::string::npos) << status;
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
}

}  // namespace
}  // namespace graft::test

namespace graft::test {
namespace {

// While graft's checkpoints are planted (here until the deadline: one thread
// never leaves the changed code), the target forks children that run the
// changed function: their copies of memory must not hold graft's int3s.
TEST(HardCases, ForkedChildrenAreNotCorrupted) {
  TempDir dir;
  const auto [v1, v2, patch] = build_update(dir, "forker");
  Process target({v1.string()});
  EXPECT_EQ(target.ask("status"), "forks=1 bad=0");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "1000"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("stuck"), std::string::npos) << result.err;
  EXPECT_EQ(target.ask("status"), "forks=1 bad=0");
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
}

}  // namespace
}  // namespace graft::test
