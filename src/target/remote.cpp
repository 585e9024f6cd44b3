#include "target/remote.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/kill_point.h"
#include "common/task_state.h"
#include "target/handover.h"
#include "target/x86.h"

namespace graft {
namespace {

// Any executable `syscall` instruction of the target: the vDSO's first, then libc's.
Result<RemoteAddress> find_syscall_instruction(pid_t pid) {
  GRAFT_ASSIGN(auto maps, read_maps(pid));
  std::stable_sort(maps.begin(), maps.end(), [](const MemoryMap& a, const MemoryMap& b) {
    return (a.path == "[vdso]") > (b.path == "[vdso]");
  });
  for (const auto& m : maps) {
    if (m.perms.size() < 3 || m.perms[0] != 'r' || m.perms[2] != 'x') continue;
    auto bytes = read_process_memory(pid, RemoteAddress(m.start), std::min<uint64_t>(m.end - m.start, 1 << 20));
    if (!bytes) continue;
    for (size_t i = 0; i + 1 < bytes->size(); ++i)
      if (x86::is_syscall(std::span(*bytes).subspan(i, 2))) return RemoteAddress(m.start + i);
  }
  return make_error("no system call instruction found in process {}", pid);
}

Status set_thread_registers(pid_t tid, const Registers& regs) {
  if (ptrace(PTRACE_SETREGS, tid, nullptr, static_cast<const user_regs_struct*>(&regs)) != 0)
    return errno_error(fmt::format("PTRACE_SETREGS of thread {}", tid), errno);
  return ok();
}

// A signal the program got while graft ran something in `t`: delivered when it resumes.
void keep_for_program(Thread& t, int status) {
  if (WIFSTOPPED(status) && (status >> 16) == 0 && WSTOPSIG(status) != SIGTRAP && !t.pending_signal)
    t.pending_signal = WSTOPSIG(status);
}

}  // namespace

// --- SavedRegisters ---

SavedRegisters::SavedRegisters(SavedRegisters&& other) noexcept
    : process_(other.process_), thread_(other.thread_), saved_(other.saved_), dirty_(other.dirty_) {
  other.dirty_ = false;
}

Status SavedRegisters::set(const Registers& regs) {
  if (process_->exec_seen()) return process_->exec_error();
  dirty_ = true;
  return set_thread_registers(thread_->tid, regs);
}

Status SavedRegisters::restore() {
  if (process_->exec_seen()) dirty_ = false;  // another program now: nothing of the old one's to put back
  if (!dirty_) return ok();
  GRAFT_TRY(set_thread_registers(thread_->tid, saved_));
  thread_->regs = saved_;
  dirty_ = false;
  return ok();
}

// --- RemoteSyscalls ---

namespace {

constexpr int kSyscallStop = SIGTRAP | 0x80;  // PTRACE_O_TRACESYSGOOD

// The registers of a thread stopped in a system call of its own, set to make
// that call again from its `syscall` instruction, as the kernel does when it
// restarts one; nullopt if it is in none (or one that completed).
std::optional<Registers> own_call_again(const TracedProcess& process, const Registers& own) {
  if (!own.in_system_call()) return std::nullopt;
  Registers again = own;
  const auto result = static_cast<int64_t>(own.rax);
  if (result == -512 || result == -513 || result == -514) {  // -ERESTARTSYS, -ERESTARTNOINTR, -ERESTARTNOHAND
    again.rax = own.orig_rax;
    again.rip -= 2;
  } else if (result == -516) {  // -ERESTART_RESTARTBLOCK
    again.rax = SYS_restart_syscall;
    again.rip -= 2;
  } else if (own.rax != own.orig_rax) {  // else TracedProcess::restart_interrupted_call set it so already
    return std::nullopt;
  }
  again.leave_system_call();
  auto code = process.read(again.pc(), 2);
  if (!code || !x86::is_syscall(*code)) return std::nullopt;
  return again;
}

// How long a thread graft resumed for one of its system calls may take to
// report: the calls graft makes return at once.
constexpr auto kSyscallReportLimit = std::chrono::seconds(10);

// The next report of `t`, which graft has just resumed. Never a blocking
// wait: a process that exits, or execs from another thread, while graft
// runs something in one of its threads ends `t`, and the kernel holds back
// the report of a main thread until graft has reaped the others (an exec
// waits for that too): graft would wait forever. So: polled, and given up
// as soon as `t` is on its way out, or after `limit`.
Result<int> wait_for_report(const TracedProcess& process, const Thread& t, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (unsigned polls = 1;; ++polls) {
    int status = 0;
    const pid_t got = waitpid(t.tid, &status, __WALL | WNOHANG);
    if (got == t.tid) return status;
    if (got < 0 && errno != EINTR) return make_error("thread {} of process {} is gone", t.tid, process.pid());
    if (polls % 32 == 0) {
      if (process_exited(process.pid())) return make_error("process {} exited during the update", process.pid());
      if (task_exiting(process.pid(), t.tid))
        return make_error("thread {} of process {} was ended by another thread (an execve?) during the update", t.tid,
                          process.pid());
      if (std::chrono::steady_clock::now() > deadline)
        return make_error("thread {} of process {} did not come back from a system call graft ran in it in {} s", t.tid,
                          process.pid(), std::chrono::duration_cast<std::chrono::seconds>(limit).count());
    }
    if (polls > 8) usleep(20);  // most calls are back after a few polls
  }
}

// Runs a stopped thread to its next system-call stop of the kind `op`
// (PTRACE_SYSCALL_INFO_ENTRY or _EXIT), keeping the signals it meets on the
// way for the program and adopting a thread it starts.
Status run_to_syscall_stop(TracedProcess& process, Thread& t, uint8_t op) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (ptrace(PTRACE_SYSCALL, t.tid, nullptr, nullptr) != 0)
      return errno_error(fmt::format("PTRACE_SYSCALL of thread {}", t.tid), errno);
    auto reported = wait_for_report(process, t, kSyscallReportLimit);
    if (!reported) {
      t.stopped = false;  // resumed, and not back
      return reported.error();
    }
    const int status = *reported;
    if (!WIFSTOPPED(status)) return make_error("thread {} died while running a system call for graft", t.tid);
    if ((status >> 16) == PTRACE_EVENT_EXEC) {  // another thread's execve took this thread's ID
      process.saw_exec();
      return process.exec_error();
    }
    if (WSTOPSIG(status) == kSyscallStop) {
      __ptrace_syscall_info info{};
      if (ptrace(PTRACE_GET_SYSCALL_INFO, t.tid, sizeof info, &info) > 0 && info.op == op) return ok();
      continue;
    }
    if ((status >> 16) == PTRACE_EVENT_CLONE) {
      unsigned long child = 0;
      ptrace(PTRACE_GETEVENTMSG, t.tid, nullptr, &child);
      process.adopt(static_cast<pid_t>(child));
      continue;
    }
    keep_for_program(t, status);  // a signal on its way out of the stop: the program's, later
  }
  return make_error("thread {} would not come to a system-call stop for graft", t.tid);
}

// A thread stopped inside a system call that has not returned (an event
// stop in clone, fork or exec: rax still -ENOSYS) finishes it first: its
// result would overwrite the registers graft gives it.
Status finish_call_in_progress(TracedProcess& process, Thread& t) {
  if (!t.regs.in_system_call() || static_cast<int64_t>(t.regs.rax) != -ENOSYS) return ok();
  GRAFT_TRY(run_to_syscall_stop(process, t, PTRACE_SYSCALL_INFO_EXIT));
  GRAFT_ASSIGN(t.regs, process.get_registers(t.tid));
  return ok();
}

}  // namespace

Result<RemoteSyscalls> RemoteSyscalls::open(TracedProcess& process) {
  Thread* t = process.injection_thread();
  if (!t)
    return make_error("every thread of process {} is stopped by a signal (SIGSTOP?) or running: continue it first",
                      process.pid());
  GRAFT_TRY(finish_call_in_progress(process, *t));
  if (auto again = own_call_again(process, t->regs)) return RemoteSyscalls(process, *t, again->pc(), true);
  GRAFT_ASSIGN(const RemoteAddress instruction, find_syscall_instruction(process.pid()));
  return RemoteSyscalls(process, *t, instruction, false);
}

Result<Registers> RemoteSyscalls::to_syscall_stop(uint8_t op) {
  Thread& t = registers_.thread();
  if (Status reached = run_to_syscall_stop(registers_.process(), t, op); !reached) {
    if (!t.stopped || kill(t.tid, 0) != 0) registers_.forget();
    return reached.error();
  }
  return registers_.process().get_registers(t.tid);
}

Result<int64_t> RemoteSyscalls::call(long number, std::array<uint64_t, 6> args) {
  Thread& t = registers_.thread();
  TracedProcess& process = registers_.process();
  if (process.exec_seen()) return process.exec_error();
  if (!t.stopped) return make_error("internal: no stopped thread for a system call");
  // The thread may run its own code from where it is (its registers are its
  // own): the hold of the last call is taken back there.
  if (t.held) {
    GRAFT_TRY(registers_.restore());
    GRAFT_TRY(process.release_hold(t));
  }
  Registers go = registers_.own();
  if (own_call_) {
    go = *own_call_again(process, registers_.own());
  } else {
    go.rip = instruction_.value();
    go.rax = static_cast<uint64_t>(number);
    go.leave_system_call();  // no restart logic for an interrupted call underneath
  }
  process.journal().borrowed({t.tid, registers_.own(), instruction_.value(), number, 0, 0});
  kill_point("syscall");
  auto done = [&]() -> Result<int64_t> {
    GRAFT_TRY(registers_.set(go));
    GRAFT_ASSIGN(Registers entry, to_syscall_stop(PTRACE_SYSCALL_INFO_ENTRY));
    process.hold(t);  // graft's call from here on: held
    kill_point("syscall-entry");
    entry.orig_rax = static_cast<uint64_t>(number);
    entry.rdi = args[0];
    entry.rsi = args[1];
    entry.rdx = args[2];
    entry.r10 = args[3];
    entry.r8 = args[4];
    entry.r9 = args[5];
    GRAFT_TRY(registers_.set(entry));
    GRAFT_ASSIGN(const Registers exit, to_syscall_stop(PTRACE_SYSCALL_INFO_EXIT));
    kill_point("syscall-exit");
    return static_cast<int64_t>(exit.rax);
  }();
  // Its own registers again, at the exit stop (the kernel's restart of its
  // own call follows from them), or wherever it failed.
  if (Status restored = registers_.restore(); !restored && done) return restored.error();
  process.journal().returned(t.tid);
  return done;
}

Result<uint64_t> RemoteSyscalls::checked(const std::string& what, long number, std::array<uint64_t, 6> args) {
  GRAFT_ASSIGN(const int64_t r, call(number, args));
  if (r < 0 && r > -4096)
    return make_error("cannot {} in process {}: {}", what, process().pid(), std::strerror(static_cast<int>(-r)));
  return static_cast<uint64_t>(r);
}

// --- RemoteScratch ---

Result<RemoteScratch> RemoteScratch::below_stack(TracedProcess& process, const Thread& thread,
                                                 std::span<const uint8_t> bytes) {
  constexpr uint64_t kRedZone = 128, kGap = 4096;
  const RemoteAddress at = (thread.regs.sp() - kRedZone - kGap - bytes.size()).aligned_down(16);
  GRAFT_ASSIGN(auto previous, process.read(at, bytes.size()));
  GRAFT_TRY(process.write(at, bytes));
  return RemoteScratch(process, at, std::move(previous));
}

RemoteScratch::RemoteScratch(RemoteScratch&& other) noexcept
    : process_(other.process_), address_(other.address_), previous_(std::move(other.previous_)) {
  other.process_ = nullptr;
}

RemoteScratch::~RemoteScratch() {
  if (process_) (void)process_->write(address_, previous_);
}

// --- RemoteFd ---

RemoteFd::~RemoteFd() {
  if (fd_ >= 0) (void)syscalls_->call(SYS_close, {static_cast<uint64_t>(fd_), 0, 0, 0, 0, 0});
}

// --- RemoteMapping ---

Result<RemoteMapping> RemoteMapping::anonymous(RemoteSyscalls& syscalls, uint64_t size, const std::string& purpose,
                                               int prot) {
  GRAFT_ASSIGN(const uint64_t at, syscalls.checked(fmt::format("map {} bytes for {}", size, purpose), SYS_mmap,
                                                   {0, size, static_cast<uint64_t>(prot), MAP_PRIVATE | MAP_ANONYMOUS,
                                                    ~uint64_t{0}, 0}));
  syscalls.process().journal().mapped(RemoteAddress(at), size);
  return RemoteMapping(syscalls.process(), RemoteAddress(at), size);
}

RemoteMapping::RemoteMapping(RemoteMapping&& other) noexcept
    : process_(other.process_), start_(other.start_), size_(other.size_) {
  other.process_ = nullptr;
}

RemoteMapping& RemoteMapping::operator=(RemoteMapping&& other) noexcept {
  if (this != &other) {
    (void)unmap();
    process_ = other.process_;
    start_ = other.start_;
    size_ = other.size_;
    other.process_ = nullptr;
  }
  return *this;
}

RemoteMapping::~RemoteMapping() { (void)unmap(); }

Status with_syscalls(TracedProcess& process, const std::function<Status(RemoteSyscalls&)>& work) {
  pid_t stopped_here = 0;
  if (!process.injection_thread()) {
    if (process.threads().empty()) return make_error("process {} has no threads left", process.pid());
    stopped_here = process.threads().front().tid;
    GRAFT_TRY(process.stop_one(stopped_here));
  }
  Status done = [&]() -> Status {
    GRAFT_ASSIGN(auto syscalls, RemoteSyscalls::open(process));
    return work(syscalls);
  }();
  if (stopped_here) (void)process.resume_one(stopped_here);
  return done;
}

Status RemoteMapping::unmap() {
  if (!process_ || !size_) return ok();
  TracedProcess& process = *process_;
  process_ = nullptr;
  return with_syscalls(process, [&](RemoteSyscalls& syscalls) -> Status {
    GRAFT_TRY(syscalls.checked(fmt::format("unmap {:#x}", start_), SYS_munmap, {start_.value(), size_, 0, 0, 0, 0}));
    process.journal().unmapped(start_);
    kill_point("unmapped");
    return ok();
  });
}

// --- BorrowedThread ---

Result<BorrowedThread> BorrowedThread::take(TracedProcess& process) {
  Thread* t = process.injection_thread();
  if (!t) return make_error("no stopped thread to run code in process {}", process.pid());
  return BorrowedThread(process, *t);
}

Result<BorrowedThread> BorrowedThread::take(TracedProcess& process, pid_t tid) {
  Thread* t = process.find(tid);
  if (!t || !t->stopped || t->group_stop) return make_error("internal: thread {} is not stopped by graft", tid);
  return BorrowedThread(process, *t);
}

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : fmt::format("signal {}", sig);
}

// Killed-graft safety: the code runs from graft's resume (PTRACE_SYSCALL, so
// that the runners' closing `pause` is seen at its entry) to a stop, and the
// thread is held from that stop until its registers are its own again. The
// journal names the thread and graft's stack for it: a guardian finding it
// on that stack after graft died puts its own registers back.
Result<BorrowedRun> BorrowedThread::run(const Registers& start_regs, std::chrono::milliseconds limit,
                                        bool system_call_stops) {
  Thread& t = registers_.thread();
  TracedProcess& process = registers_.process();
  if (!t.stopped || (t.group_stop && !process.after_graft()))
    return make_error("internal: thread {} is not stopped by graft", t.tid);
  // The hold of the last run is taken back while its registers are its own.
  GRAFT_TRY(registers_.restore());
  GRAFT_TRY(process.release_hold(t));
  Registers start = start_regs;
  start.leave_system_call();  // no restart of a call the thread was in
  process.journal().borrowed({t.tid, registers_.own(), 0, -1, stack_start_, stack_end_});
  GRAFT_TRY(registers_.set(start));
  BorrowedRun run;
  auto finish = [&](BorrowedRun::Outcome outcome) -> Result<BorrowedRun> {
    process.hold(t);
    GRAFT_ASSIGN(const Registers end, process.get_registers(t.tid));
    run.outcome = outcome;
    run.pc = end.pc();
    if (outcome == BorrowedRun::Trapped && static_cast<long>(end.orig_rax) == SYS_pause)
      GRAFT_TRY(skip_closing_call());
    GRAFT_TRY(registers_.restore());
    process.journal().returned(t.tid);
    return run;
  };
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int deliver = 0;  // 0: the thread runs on without a signal
  kill_point("borrowed");
  for (;;) {
    if (ptrace(system_call_stops ? PTRACE_SYSCALL : PTRACE_CONT, t.tid, nullptr,
               reinterpret_cast<void*>(static_cast<long>(deliver))) != 0) {
      const int err = errno;
      (void)registers_.restore();
      return errno_error(system_call_stops ? "PTRACE_SYSCALL" : "PTRACE_CONT", err);
    }
    int status = 0;
    pid_t got = 0;
    for (unsigned polls = 1; (got = waitpid(t.tid, &status, __WALL | WNOHANG)) == 0; ++polls) {
      // Killed meanwhile (the code itself may kill it): the thread reports
      // nothing until graft reaps the others, so it is not waited for.
      if (polls % 256 == 0 && process_exited(process.pid())) {
        registers_.forget();
        t.stopped = false;
        return make_error("process {} exited while thread {} ran code for graft", process.pid(), t.tid);
      }
      if (std::chrono::steady_clock::now() > deadline) {
        // A loop, or a wait on a lock a stopped thread holds: take the thread back.
        ptrace(PTRACE_INTERRUPT, t.tid, nullptr, nullptr);
        for (const auto stop_by = std::chrono::steady_clock::now() + std::chrono::seconds(5);
             (got = waitpid(t.tid, &status, __WALL | WNOHANG)) == 0 && std::chrono::steady_clock::now() < stop_by;)
          usleep(20);
        if (got != t.tid) {
          registers_.forget();  // running: its registers cannot be put back
          t.stopped = false;
          return make_error("thread {} would not stop after running code for graft", t.tid);
        }
        keep_for_program(t, status);  // a signal that beat the interrupt
        return finish(BorrowedRun::TimedOut);
      }
      usleep(20);
    }
    if (got < 0) return errno_error("waitpid", errno);
    if (!WIFSTOPPED(status)) {
      registers_.forget();
      return make_error("thread {} ended while running code for graft", t.tid);
    }
    const int sig = WSTOPSIG(status);
    const int event = status >> 16;
    deliver = 0;
    if (sig == (SIGTRAP | 0x80)) {
      // A system call of the code: its entry and exit stops. The runners end
      // on `pause`, which the code itself never calls.
      GRAFT_ASSIGN(const Registers at, process.get_registers(t.tid));
      if (static_cast<long>(at.orig_rax) == SYS_pause && static_cast<int64_t>(at.rax) == -ENOSYS)
        return finish(BorrowedRun::Trapped);
      continue;
    }
    if (event == 0 && sig == SIGTRAP) return finish(BorrowedRun::Trapped);  // a runner of an older graft: int3
    if (event == 0) {
      siginfo_t info{};
      ptrace(PTRACE_GETSIGINFO, t.tid, nullptr, &info);
      const bool fault = sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGABRT || sig == SIGSYS;
      // A fault the code caused (the kernel's), not one sent by kill: the run is over.
      if (fault && (info.si_code > 0 || sig == SIGABRT)) {
        run.signal = sig;
        run.fault_address = RemoteAddress(reinterpret_cast<uint64_t>(info.si_addr));
        return finish(BorrowedRun::Faulted);
      }
      if (!t.pending_signal) t.pending_signal = sig;  // the program's: delivered when it resumes
      continue;
    }
    if (event == PTRACE_EVENT_EXEC) {  // another thread's execve took this thread's ID: not ours any more
      registers_.forget();
      process.saw_exec();
      return process.exec_error();
    }
    unsigned long child = 0;
    if (event == PTRACE_EVENT_CLONE) ptrace(PTRACE_GETEVENTMSG, t.tid, nullptr, &child);
    run.signal = sig;
    auto result = finish(BorrowedRun::Stopped);
    if (child) process.adopt(static_cast<pid_t>(child));  // the code started a thread: the program's now
    return result;
  }
}

Status BorrowedThread::skip_closing_call() {
  Thread& t = registers_.thread();
  TracedProcess& process = registers_.process();
  GRAFT_ASSIGN(Registers at, process.get_registers(t.tid));
  at.leave_system_call();  // no call is made; the exit stop follows
  GRAFT_TRY(registers_.set(at));
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (ptrace(PTRACE_SYSCALL, t.tid, nullptr, nullptr) != 0) return errno_error("PTRACE_SYSCALL", errno);
    auto status = wait_for_report(process, t, kSyscallReportLimit);
    if (!status || !WIFSTOPPED(*status)) {
      registers_.forget();
      return status ? make_error("thread {} ended while running code for graft", t.tid) : status.error();
    }
    if ((*status >> 16) == PTRACE_EVENT_EXEC) {
      registers_.forget();
      process.saw_exec();
      return process.exec_error();
    }
    if (WSTOPSIG(*status) == (SIGTRAP | 0x80)) return ok();
    keep_for_program(t, *status);
  }
  return make_error("thread {} would not leave the code graft ran in it", t.tid);
}

Result<BorrowedRun> BorrowedThread::call(RemoteAddress function, uint64_t argument, RemoteAddress stack_end,
                                         std::chrono::milliseconds limit, bool system_call_stops) {
  if (auto maps = read_maps(registers_.process().pid()))
    for (const auto& m : *maps)
      if (m.contains(stack_end - 8)) {
        stack_start_ = m.start;
        stack_end_ = m.end;
      }
  GRAFT_TRY(registers_.process().write(stack_end - 8, std::vector<uint8_t>(8, 0)));  // the return address
  Registers regs = registers_.own();
  regs.rip = function.value();
  regs.rdi = argument;
  regs.rsp = (stack_end - 8).value();  // as after a call: rsp + 8 is 16-byte aligned
  regs.rax = 0;
  regs.eflags &= ~uint64_t{0x500};  // direction and trap flags clear, as the ABI expects
  return run(regs, limit, system_call_stops);
}

// --- map_image ---

Result<RemoteMapping> map_image(RemoteSyscalls& syscalls, RemoteAddress base, std::span<const uint8_t> image,
                                const std::vector<RemoteSegment>& segments, const std::string& name) {
  TracedProcess& process = syscalls.process();
  // graft's own sealed file, handed over: nothing of the target's is opened (target/handover.h).
  GRAFT_ASSIGN(const UniqueFd memfd, sealed_memfd(name, image));
  GRAFT_ASSIGN(const FileId file, file_id(memfd.get()));
  GRAFT_ASSIGN(const RemoteFd fd, hand_over(syscalls, memfd.get(), "the patch's memory"));
  const uint64_t fd_number = static_cast<uint64_t>(fd.number());
  RemoteMapping mapped(process, base, 0);  // grows with each segment; unmapped if a later one fails
  for (const auto& seg : segments) {
    const RemoteAddress at = base + seg.offset;
    GRAFT_ASSIGN(const int64_t r, syscalls.call(SYS_mmap, {at.value(), seg.size, static_cast<uint64_t>(seg.prot),
                                                           MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd_number, seg.offset}));
    if (r != static_cast<int64_t>(at.value())) {
      if (r > 0) (void)RemoteMapping(process, RemoteAddress(static_cast<uint64_t>(r)), seg.size).unmap();  // placed elsewhere
      return make_error("cannot map the patch at {:#x} in process {}: {}; nothing was changed", at, process.pid(),
                        r == -EBADF ? "a thread of the process closed graft's descriptor"
                        : r < 0     ? std::strerror(static_cast<int>(-r))
                                    : "placed elsewhere");
    }
    mapped.extend_to(seg.offset + seg.size);
    process.journal().mapped(base, mapped.size());
    kill_point("mapped");
  }
  // The number may have named another file by the time mmap ran.
  for (const auto& seg : segments)
    GRAFT_TRY(check_mapped_from(process.pid(), (base + seg.offset).value(), seg.size, seg.offset, file, "the patch"));
  return mapped;
}

}  // namespace graft
