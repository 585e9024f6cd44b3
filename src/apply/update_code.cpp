#include "apply/update_code.h"

#include <sys/syscall.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <set>

#include "common/clock.h"
#include "target/remote.h"

// graft.h's internal section: struct graft_update_call, as the patch's runner reads it.
#define GRAFT_INTERNAL 1
#include <graft/graft.h>

namespace graft::apply {
namespace {

constexpr uint64_t kStackBytes = 1 << 20;  // the update-time code's stack: it may call deep into the program
constexpr uint64_t kHeaderBytes = 4096;    // struct graft_update_call, with room to spare
static_assert(sizeof(graft_update_call) <= kHeaderBytes);

// System calls a thread waits in while it is idle (for events, input, a
// child, a signal): such a thread holds no lock of the allocator.
// nanosleep and futex rank lower: a nanosleep's restart state is the
// thread's, which a call of the code could replace if it were interrupted
// itself; a futex wait may be one for a lock, inside code holding another.
const std::set<long> kWaiting = {SYS_read,        SYS_readv,          SYS_pread64,     SYS_recvfrom,
                                 SYS_recvmsg,     SYS_recvmmsg,       SYS_accept,      SYS_accept4,
                                 SYS_epoll_wait,  SYS_epoll_pwait,    SYS_epoll_pwait2, SYS_poll,
                                 SYS_ppoll,       SYS_select,         SYS_pselect6,    SYS_wait4,
                                 SYS_waitid,      SYS_pause,          SYS_rt_sigsuspend, SYS_rt_sigtimedwait,
                                 SYS_msgrcv,      SYS_semop,          SYS_semtimedop,  SYS_io_getevents,
                                 SYS_io_uring_enter};

// 0: waiting in one of kWaiting; 1: in another system call; 2: not in a system call.
int rank_of(long syscall) {
  if (syscall < 0) return 2;
  return kWaiting.count(syscall) ? 0 : 1;
}

// What /proc says the thread is doing, without stopping it: the number of
// the system call it is blocked in, -1 if it is blocked elsewhere or runs.
long blocked_in(pid_t pid, pid_t tid) {
  std::ifstream in(fmt::format("/proc/{}/task/{}/syscall", pid, tid));
  std::string first;
  if (!(in >> first) || first == "running") return -1;
  try {
    return std::stol(first);
  } catch (...) {
    return -1;
  }
}

// A graft_update_call as the target reads it: each member a 64-bit word at its offset in graft.h.
std::vector<uint8_t> encode_call(uint64_t function, uint64_t argument, uint64_t kind) {
  std::vector<uint8_t> bytes(sizeof(graft_update_call), 0);
  const auto put = [&](size_t offset, uint64_t word) { std::memcpy(bytes.data() + offset, &word, sizeof word); };
  static_assert(sizeof(graft_update_call::function) == 8 && sizeof(graft_update_call::argument) == 8 &&
                sizeof(graft_update_call::kind) == 8 && sizeof(graft_update_call::result) == 8 &&
                sizeof(graft_update_call::done) == 8);
  put(offsetof(graft_update_call, function), function);
  put(offsetof(graft_update_call, argument), argument);
  put(offsetof(graft_update_call, kind), kind);
  return bytes;
}

struct Call {
  std::string what;  // "GRAFT_INIT(custom_hdrs) (graft_init__custom_hdrs)"
  std::string function;
  std::string argument;  // an init's global, else ""
  uint64_t kind = GRAFT_UPDATE_CALL_INIT;
};

// Inits, then reruns, then the on-update function (graft.h's order).
std::vector<Call> calls_of(const UpdateCode& code) {
  std::vector<Call> out;
  for (const auto& i : code.inits)
    out.push_back({fmt::format("GRAFT_INIT({}) ({})", plain_name(i.global), i.function), i.function, i.global,
                   GRAFT_UPDATE_CALL_INIT});
  for (const auto& r : code.reruns)
    out.push_back({fmt::format("GRAFT_RERUN({}) ({})", plain_name(r), r), r, "", GRAFT_UPDATE_CALL_RERUN});
  if (!code.on_update.empty())
    out.push_back({fmt::format("GRAFT_ON_UPDATE ({})", code.on_update), code.on_update, "", GRAFT_UPDATE_CALL_ON_UPDATE});
  return out;
}

}  // namespace

Result<ChosenThread> stop_idle_thread(TracedProcess& process) {
  struct Candidate {
    pid_t tid;
    int rank;
  };
  std::vector<Candidate> candidates;
  for (const auto& t : process.threads())
    if (!t.group_stop) candidates.push_back({t.tid, rank_of(blocked_in(process.pid(), t.tid))});
  if (candidates.empty())
    return make_error("every thread of process {} is stopped by a signal (SIGSTOP?): continue it first", process.pid());
  std::stable_sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) { return a.rank < b.rank; });
  // A thread may have woken since /proc said so: stopped, it is checked
  // again from its registers (in a system call: orig_rax holds its number).
  for (const auto& c : candidates) {
    if (c.rank == 2) break;
    if (!process.stop_one(c.tid)) continue;  // gone meanwhile
    const Thread* t = process.find(c.tid);
    if (t && t->stopped && !t->group_stop && t->regs.in_system_call())
      return ChosenThread{c.tid, rank_of(static_cast<long>(t->regs.orig_rax)) == 0};
    (void)process.resume_one(c.tid);
  }
  for (const auto& c : candidates)
    if (process.stop_one(c.tid)) {
      const Thread* t = process.find(c.tid);
      if (t && t->stopped && !t->group_stop) return ChosenThread{c.tid, false};
      (void)process.resume_one(c.tid);
    }
  return make_error("no thread of process {} could be stopped to run the update-time code", process.pid());
}

namespace {

// Runs `calls` one after the other in the stopped thread `tid`, through the
// patch's runner on a stack of graft's; the first that does not return 0
// (or faults, or runs out of time) ends it with a one-line error.
Status run_calls(TracedProcess& process, pid_t tid, bool idle, const std::vector<Call>& calls,
                 const std::function<Result<uint64_t>(const std::string&)>& address_of, const UpdateCode& code,
                 std::chrono::milliseconds limit, const std::string& after, UpdateCodeReport& report) {
  GRAFT_ASSIGN(const uint64_t runner, address_of(code.runner));
  // Every address first: a name that does not resolve changes nothing.
  std::vector<std::pair<uint64_t, uint64_t>> addresses;
  for (const auto& c : calls) {
    GRAFT_ASSIGN(const uint64_t function, address_of(c.function));
    uint64_t argument = 0;
    if (!c.argument.empty()) {
      GRAFT_ASSIGN(argument, address_of(c.argument));
    }
    addresses.emplace_back(function, argument);
  }
  // The stack comes first: code that overflows it runs off the bottom of
  // the mapping and faults, instead of overwriting anything.
  GRAFT_ASSIGN(auto syscalls, RemoteSyscalls::open(process));
  GRAFT_ASSIGN(auto scratch, RemoteMapping::anonymous(syscalls, kStackBytes + kHeaderBytes, "the update-time code"));
  GRAFT_ASSIGN(auto borrowed, BorrowedThread::take(process, tid));
  const RemoteAddress header = scratch.start() + kStackBytes;
  for (size_t i = 0; i < calls.size(); ++i) {
    const Call& c = calls[i];
    GRAFT_TRY(process.write(header, encode_call(addresses[i].first, addresses[i].second, c.kind)));
    GRAFT_ASSIGN(const BorrowedRun run, borrowed.call(RemoteAddress(runner), header.value(), header, limit));
    GRAFT_ASSIGN(const auto words, process.read(header + offsetof(graft_update_call, result), 16));
    int64_t result = 0;
    uint64_t done = 0;
    std::memcpy(&result, words.data(), 8);
    std::memcpy(&done, words.data() + 8, 8);
    const std::string file = code.file.empty() ? "" : code.file + ": ";
    const std::string in = fmt::format("thread {}{}", tid, idle ? "" : ", which was not idle in a system call");
    switch (run.outcome) {
      case BorrowedRun::Trapped:
        if (done != 1)
          return make_error("{}the update-time code {} ended on a trap of its own (pc {:#x}): {}", file, c.what, run.pc,
                            after);
        if (result != 0 && c.kind != GRAFT_UPDATE_CALL_RERUN)
          return make_error("{}the update-time code {} returned {}: {}", file, c.what, static_cast<int>(result), after);
        break;
      case BorrowedRun::Faulted:
        return make_error("{}the update-time code {} faulted with {} (address {:#x}, pc {:#x}) in {}: {}", file, c.what,
                          signal_name(run.signal), run.fault_address, run.pc, in, after);
      case BorrowedRun::TimedOut:
        return make_error("{}the update-time code {} did not finish within {} ms (a loop, or a lock? it ran in {}): {}",
                          file, c.what, limit.count(), in, after);
      case BorrowedRun::Stopped:
        return make_error("{}the update-time code {} stopped unexpectedly ({}): {}", file, c.what,
                          signal_name(run.signal), after);
    }
    ++report.calls;
  }
  return ok();
}

}  // namespace

Status run_update_code(TracedProcess& process, const UpdateCode& code,
                       const std::function<Result<uint64_t>(const std::string&)>& address_of,
                       std::chrono::milliseconds limit, UpdateCodeReport& report) {
  const auto calls = calls_of(code);
  if (calls.empty()) return ok();
  const auto started = std::chrono::steady_clock::now();
  GRAFT_ASSIGN(const ChosenThread chosen, stop_idle_thread(process));
  report.thread = chosen.tid;
  report.idle = chosen.idle;
  Status ran = run_calls(process, chosen.tid, chosen.idle, calls, address_of, code, limit,
                         "the update was abandoned and nothing was changed; the program runs on the old version", report);
  (void)process.resume_one(chosen.tid);
  report.run_us = micros_since(started);
  return ran;
}

Status run_at_commit(TracedProcess& process, const UpdateCode& code,
                     const std::function<Result<uint64_t>(const std::string&)>& address_of,
                     std::chrono::milliseconds limit, UpdateCodeReport& report) {
  if (code.at_commit.empty()) return ok();
  if (process.threads().empty()) return make_error("internal: no thread to run the commit-time code in");
  const auto started = std::chrono::steady_clock::now();
  const std::vector<Call> calls = {
      {fmt::format("GRAFT_AT_COMMIT ({})", code.at_commit), code.at_commit, "", GRAFT_UPDATE_CALL_AT_COMMIT}};
  Status ran = run_calls(process, process.threads().front().tid, false, calls, address_of, code, limit,
                         "the commit was rolled back and nothing was changed; the program runs on the old version",
                         report);
  report.run_us += micros_since(started);
  return ran;
}

}  // namespace graft::apply
