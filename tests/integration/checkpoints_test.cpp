// Reaching a safe moment in busy multi-threaded processes: dynamic
// checkpoints land updates that stopping and checking alone cannot.
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <gtest/gtest.h>

#include <thread>
#include <nlohmann/json.hpp>

#include "../support/harness.h"
#include "apply/recover.h"
#include "target/process.h"
#include "target/trap_handler.h"

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

  // The update that waited lands (within 60 s) once the threads move on; it
  // took more than one check, and threads reached its checkpoints.
  static void expect_landed_through_checkpoints(std::future<CommandResult>& applying) {
    ASSERT_EQ(applying.wait_for(std::chrono::seconds(60)), std::future_status::ready);
    const auto applied = applying.get();
    ASSERT_EQ(applied.exit_code, 0) << applied.err;
    const auto report = nlohmann::json::parse(applied.out);
    EXPECT_GE(report["arrivals"].get<int>(), 1) << report.dump();
    EXPECT_GE(report["attempts"].get<int>(), 2) << report.dump();
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

// Four workers call changed() back to back. They first wait inside it for
// the lock the main thread holds, so graft must wait, with its checkpoints
// planted and the update-point flag raised; released, they enter and leave
// changed() at a high rate, and pass update points (graft.h), until the
// update lands.
TEST_F(Checkpoints, ThreadsEnteringAndLeavingAtHighRate) {
  using namespace std::chrono_literals;
  Process target({v1.string(), "churn", "4"});
  ASSERT_EQ(target.ask("hold"), "holding");
  auto applying = apply_in_background(target.pid(), patch, 30000);
  EXPECT_TRUE(checkpoint_planted(target.pid(), v1, "changed", applying))
      << "graft did not wait for the workers inside changed()";
  // graft raises the flag that sends the workers to their update points
  // right after planting its checkpoints: waited for, not read once.
  int pending = 0;
  for (const auto until = std::chrono::steady_clock::now() + 10s;
       (pending = read_int(target.pid(), v1, "graft_update_pending")) != 1 && std::chrono::steady_clock::now() < until;)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(pending, 1) << "graft did not raise graft_update_pending";
  EXPECT_EQ(target.ask("release"), "released");
  expect_landed_through_checkpoints(applying);
  EXPECT_EQ(target.ask("v"), "2 1");
  // The flag that sent the workers to their update points is down again.
  EXPECT_EQ(read_int(target.pid(), v1, "graft_update_pending"), 0);
  ASSERT_EQ(graft({"revert", std::to_string(target.pid())}).exit_code, 0);
  EXPECT_EQ(target.ask("v"), "1 1");
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
}

// Short-lived threads call changed() and exit, back to back, while a
// parked thread inside changed_park() keeps the update waiting: threads
// begin and end while graft holds the process (it traces each from its
// start) and has its checkpoints planted. Unparked, the update lands.
TEST_F(Checkpoints, ThreadsCreatedAndExitingDuringTheUpdate) {
  using namespace std::chrono_literals;
  Process target({v1.string(), "spawn", "4"});
  ASSERT_EQ(target.ask("t"), "traced 0 0");
  ASSERT_EQ(target.ask("park"), "parked");
  auto applying = apply_in_background(target.pid(), patch, 30000);
  EXPECT_TRUE(checkpoint_planted(target.pid(), v1, "changed", applying))
      << "graft did not wait for the parked thread";
  long began = 0, ended = 0;
  for (const auto until = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < until;) {
    const std::string traced = target.ask("t");
    ASSERT_EQ(std::sscanf(traced.c_str(), "traced %ld %ld", &began, &ended), 2) << traced;
    if ((began > 0 && ended > 0) || applying.wait_for(5ms) == std::future_status::ready) break;
  }
  EXPECT_GT(began, 0) << "no thread began during the update";
  EXPECT_GT(ended, 0) << "no thread ended during the update";
  EXPECT_EQ(applying.wait_for(0s), std::future_status::timeout);
  EXPECT_EQ(target.ask("unpark"), "unparked");
  ASSERT_EQ(applying.wait_for(60s), std::future_status::ready);
  const auto applied = applying.get();
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(nlohmann::json::parse(applied.out)["ok"], true);
  EXPECT_EQ(target.ask("v"), "2 1");
  const auto reverted = graft({"revert", std::to_string(target.pid())});
  ASSERT_EQ(reverted.exit_code, 0) << reverted.err;
  EXPECT_EQ(target.ask("v"), "1 1");
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
}

// A thread runs changed() in its SIGUSR1 handler, and waits inside it for
// the lock the main thread holds: graft finds it there, through the signal
// frame, and waits with its checkpoints planted; released, the thread
// returns into the handler, reaches the checkpoint, and the update lands.
TEST_F(Checkpoints, ThreadInsideASignalHandler) {
  using namespace std::chrono_literals;
  Process target({v1.string(), "signal", "1"});
  ASSERT_EQ(target.ask("hold"), "holding");
  auto applying = apply_in_background(target.pid(), patch, 30000);
  EXPECT_TRUE(checkpoint_planted(target.pid(), v1, "changed", applying))
      << "graft did not wait for the thread inside changed()";
  EXPECT_EQ(applying.wait_for(0s), std::future_status::timeout);
  EXPECT_EQ(target.ask("v"), "1 1");
  EXPECT_EQ(target.ask("release"), "released");
  expect_landed_through_checkpoints(applying);
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
    // 1000 stops before it was handled), or 30 s on a loaded machine (other
    // tests' busy threads may leave these two little time to run).
    size_t trapped = 0, cycles = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
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

// What a graft killed with an int3 planted leaves for its guardian, made on
// purpose. A child process plays graft: it installs graft's SIGTRAP handler,
// plants an int3 at changed_timed's entry, lets one worker run into it (its
// trap's signal-delivery stop), and begins a group stop as graft's holds do
// (SIGSTOP, taken by the main thread). `then` takes the worker from there.
// Then the child ends as if killed, letting go of nothing. The guardian's
// part, recover(), gets what graft's journal would say.
struct DeadGraft {
  pid_t worker = 0;
  uint64_t page = 0;
  JournalState journal;
};
// The next report of traced thread `tid` (its wait status).
int next_report_of(pid_t tid) {
  int status = 0;
  while (waitpid(tid, &status, __WALL) < 0 && errno == EINTR) {
  }
  return status;
}
DeadGraft kill_graft_with_a_worker_trapped(const Process& target, RemoteAddress entry,
                                           const std::function<std::string(pid_t worker)>& then) {
  int report[2];
  if (pipe(report) != 0) throw std::runtime_error("pipe");
  const pid_t dying = fork();
  if (dying < 0) throw std::runtime_error("fork");
  if (dying == 0) {
    close(report[0]);
    auto step = [&](bool ok, const std::string& why) {
      if (ok) return;
      (void)!write(report[1], why.data(), why.size());
      _exit(1);
    };
    int status = 0;
    auto wait_for = [&](pid_t tid) {
      status = next_report_of(tid);
      return WIFSTOPPED(status);
    };
    auto attached = TracedProcess::attach(target.pid());
    step(attached && (*attached)->stop_all(), "attach");
    TracedProcess& process = **attached;
    auto original = process.read(entry, 1);
    auto handler = TrapHandler::install(process);
    step(original && handler && handler->add(entry, (*original)[0]) && process.plant_breakpoint(entry), "plant");
    // Every thread but the main one is a worker calling changed_timed.
    const pid_t worker = process.threads().back().tid;
    step(worker != target.pid(), "no worker");
    ptrace(PTRACE_CONT, worker, nullptr, nullptr);
    Registers regs;
    step(wait_for(worker) && WSTOPSIG(status) == SIGTRAP &&
             ptrace(PTRACE_GETREGS, worker, nullptr, static_cast<user_regs_struct*>(&regs)) == 0 &&
             regs.pc() == entry + 1,
         "the worker did not trap on the int3");
    kill(target.pid(), SIGSTOP);
    ptrace(PTRACE_CONT, target.pid(), nullptr, nullptr);
    step(wait_for(target.pid()) && WSTOPSIG(status) == SIGSTOP, "the main thread did not take the SIGSTOP");
    ptrace(PTRACE_CONT, target.pid(), nullptr, reinterpret_cast<void*>(static_cast<long>(SIGSTOP)));
    step(wait_for(target.pid()) && (status >> 16) == PTRACE_EVENT_STOP, "the group stop did not begin");
    const std::string failed = then(worker);
    step(failed.empty(), failed);
    const std::string said = fmt::format("{} {} {}", worker, handler->page().value(), (*original)[0]);
    (void)!write(report[1], said.data(), said.size());
    _exit(0);  // as if killed: nothing undone, the tracing ends with the process
  }
  close(report[1]);
  char said[256] = {};
  const ssize_t n = read(report[0], said, sizeof said - 1);
  close(report[0]);
  int status = 0;
  waitpid(dying, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || n <= 0)
    throw std::runtime_error("the dying graft failed: " + std::string(said, n > 0 ? n : 0));
  DeadGraft dead;
  unsigned original = 0;
  if (sscanf(said, "%d %lu %u", &dead.worker, &dead.page, &original) != 3) throw std::runtime_error(said);
  dead.journal.pid = target.pid();
  dead.journal.held = true;
  dead.journal.planted[entry.value()] = static_cast<uint8_t>(original);
  dead.journal.ever_planted.insert(entry.value());
  dead.journal.trap_handler = std::pair<uint64_t, uint64_t>(dead.page, 4096);
  return dead;
}

// After recover(): the target alive and running (the workers' call count
// moves), its code as built, graft's handler page gone.
void expect_put_right(Process& target, const std::filesystem::path& binary, const DeadGraft& dead,
                      const RecoveryReport& report) {
  std::string done;
  for (const auto& line : report.done) done += line + "\n";
  EXPECT_TRUE(report.continued) << done;
  const std::string calls = target.ask("c");
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (target.ask("c") == calls && std::chrono::steady_clock::now() < limit) usleep(1000);
  EXPECT_NE(target.ask("c"), calls) << done;
  EXPECT_TRUE(text_matches_binary(target.pid(), binary)) << done;
  const auto maps = read_maps(target.pid());
  ASSERT_TRUE(maps) << maps.error().message;
  EXPECT_FALSE(std::any_of(maps->begin(), maps->end(), [&](const MemoryMap& m) { return m.start == dead.page; })) << "graft's SIGTRAP handler page is still mapped\n" << done;
}

// The state a storm of kills found twice in 1,204 (docs/RELIABILITY.md,
// #115, #451, #472): the worker that ran into the int3 stops in the group
// stop before taking the trap's SIGTRAP (the stop comes first). The SIGTRAP
// must be taken before the program's own SIGTRAP action is put back: it
// ended the process, once continued.
TEST_F(Checkpoints, ATrapLeftQueuedUnderADeadGraftsGroupStopIsTakenBeforeTheProgramsActionIsBack) {
  Process target({v1.string(), "rate", "2", "0", "0", "spin"});
  const RemoteAddress entry(live_address(target.pid(), v1, "changed_timed"));
  const DeadGraft dead = kill_graft_with_a_worker_trapped(target, entry, [](pid_t worker) -> std::string {
    // The trap's SIGTRAP put back in the worker's queue (blocked as it is
    // given back, the kernel queues it again, as the int3 queued it); the
    // worker then joins the group stop.
    uint64_t mask = 0;
    ptrace(PTRACE_GETSIGMASK, worker, sizeof mask, &mask);
    const uint64_t with_trap = mask | (uint64_t{1} << (SIGTRAP - 1));
    ptrace(PTRACE_SETSIGMASK, worker, sizeof with_trap, &with_trap);
    ptrace(PTRACE_CONT, worker, nullptr, reinterpret_cast<void*>(static_cast<long>(SIGTRAP)));
    const int status = next_report_of(worker);
    ptrace(PTRACE_SETSIGMASK, worker, sizeof mask, &mask);
    return WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP ? "" : "the worker did not group-stop";
  });
  auto recovered = recover(target.pid(), &dead.journal);
  ASSERT_TRUE(recovered) << recovered.error().message;
  expect_put_right(target, v1, dead, *recovered);
}

// The worker took the trap's SIGTRAP into graft's handler and the group stop
// caught it there, at the handler's first instruction. The guardian lets it
// finish the handler (one instruction at a time) and takes the handler out;
// it used to leave the page for a later `graft recover` (kill.quick saw it).
TEST_F(Checkpoints, AThreadInsideADeadGraftsTrapHandlerFinishesItAndTheHandlerGoes) {
  Process target({v1.string(), "rate", "2", "0", "0", "spin"});
  const RemoteAddress entry(live_address(target.pid(), v1, "changed_timed"));
  const DeadGraft dead = kill_graft_with_a_worker_trapped(target, entry, [](pid_t worker) -> std::string {
    ptrace(PTRACE_CONT, worker, nullptr, reinterpret_cast<void*>(static_cast<long>(SIGTRAP)));
    const int status = next_report_of(worker);
    return WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP ? "" : "the worker did not group-stop";
  });
  auto recovered = recover(target.pid(), &dead.journal);
  ASSERT_TRUE(recovered) << recovered.error().message;
  for (const auto& line : recovered->done) EXPECT_EQ(line.find("still in"), std::string::npos) << line;
  expect_put_right(target, v1, dead, *recovered);
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
// Frames that may point to changed data (tests/programs/busyholder): a loop
// that never returns and, under load, keeps reaching a replaced function's
// entry from a frame where DWARF does not say where its pointer to a changed
// struct is. The update must land whenever a stop at some moment would find
// the loop elsewhere (housekeeping, read()), as polling does.
class FramesHoldingChangedData : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir = new TempDir();
    const Update update = build_update(*dir, "busyholder");
    v1 = update.v1;
    patch = update.patch;
  }
  static void TearDownTestSuite() { delete dir; }
  static TempDir* dir;
  static std::filesystem::path v1, patch;
};
TempDir* FramesHoldingChangedData::dir = nullptr;
std::filesystem::path FramesHoldingChangedData::v1, FramesHoldingChangedData::patch;

TEST_F(FramesHoldingChangedData, TheUpdateLandsUnderLoadWithDynamicCheckpoints) {
  Process target({v1.string()});
  ASSERT_EQ(target.ask("compact"), "compacting");  // keeps the first checks from landing
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--json", "--timeout", "30000"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report.value("objects_moved", 0), 4) << result.out;  // every conn grew out of its block
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("report"), "serving all-hit");  // the loop goes on, through the moved conns
}

// A thread that stays where its frame may point to changed data: refused in
// one line that names the frame and says why it keeps the update, nothing
// changed; once it leaves, the update lands.
TEST_F(FramesHoldingChangedData, ARefusalSaysTheFrameMayPointToChangedData) {
  Process target({v1.string()});
  ASSERT_EQ(target.ask("stall"), "stalled");
  auto refused = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "500"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
  EXPECT_NE(refused.err.find("is in stall (its frame may point to changed data) at main.c:"), std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("DWARF does not say where that pointer is"), std::string::npos) << refused.err;
  // Not the reason for stall; said only when the loop's thread was also caught executing handle (busy, under
  // load) at the last check, for that thread.
  if (refused.err.find("threads are blocked") == std::string::npos) {
    EXPECT_EQ(refused.err.find("never returns"), std::string::npos) << refused.err;
  }
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_EQ(target.ask("report"), "serving all-hit");
  ASSERT_EQ(target.ask("unstall"), "unstalled");
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "30000"});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("report"), "serving all-hit");
}

TEST(HardCases, BlockedSystemCallsSeeNoEintr) {
  TempDir dir;
  const auto [v1, v2, patch] = build_update(dir, "syscalls");
  Process target({v1.string()});
  EXPECT_EQ(target.ask("status"), "v1 read=waiting accept=waiting epoll=waiting futex=waiting sleep=waiting timed=waiting");
  // The timed receiver is in recvfrom (its system call number, 45, in /proc), where a stop fails it with EINTR.
  auto in_timed_recv = [&] {
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(target.pid()) + "/task")) {
      std::ifstream in(task.path() / "syscall");
      std::string number;
      if (in >> number && number == "45") return true;
    }
    return false;
  };
  ASSERT_TRUE(wait_until(in_timed_recv, std::chrono::seconds(20)));
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
  EXPECT_EQ(status, "v2 read=ok accept=ok epoll=ok futex=ok sleep=ok timed=ok");
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
  using namespace std::chrono_literals;
  TempDir dir;
  // stuck() never returns and has no place to move: graft diff refuses it unless told.
  const auto [v1, v2, patch] = build_update(dir, "forker", {}, {"--allow-stuck-threads", "stuck"});
  Process target({v1.string()});
  auto forks = [&] {
    long n = -1, bad = -1;
    const std::string status = target.ask("status");
    EXPECT_EQ(std::sscanf(status.c_str(), "forks=%ld bad=%ld", &n, &bad), 2) << status;
    EXPECT_EQ(bad, 0) << status;
    return n;
  };
  ASSERT_GT(forks(), 0);
  auto applying = apply_in_background(target.pid(), patch, 2000);
  // The checkpoint at changed()'s entry is planted; children forked from now on copy it.
  ASSERT_TRUE(checkpoint_planted(target.pid(), v1, "changed", applying)) << "graft planted no checkpoint at changed()";
  const long before = forks();
  long during = before;
  while (during == before && applying.wait_for(1ms) == std::future_status::timeout) during = forks();
  EXPECT_GT(during, before) << "no child was forked while the checkpoints were planted";
  ASSERT_EQ(applying.wait_for(60s), std::future_status::ready);
  const auto result = applying.get();
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("stuck"), std::string::npos) << result.err;
  EXPECT_GT(forks(), during);
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
}

}  // namespace
}  // namespace graft::test
