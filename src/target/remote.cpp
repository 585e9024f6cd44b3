#include "target/remote.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

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
  dirty_ = true;
  return set_thread_registers(thread_->tid, regs);
}

Status SavedRegisters::restore() {
  if (!dirty_) return ok();
  GRAFT_TRY(set_thread_registers(thread_->tid, saved_));
  thread_->regs = saved_;
  dirty_ = false;
  return ok();
}

// --- RemoteSyscalls ---

Result<RemoteSyscalls> RemoteSyscalls::open(TracedProcess& process) {
  Thread* t = process.injection_thread();
  if (!t)
    return make_error("every thread of process {} is stopped by a signal (SIGSTOP?) or running: continue it first",
                      process.pid());
  GRAFT_ASSIGN(const RemoteAddress instruction, find_syscall_instruction(process.pid()));
  return RemoteSyscalls(process, *t, instruction);
}

Result<int64_t> RemoteSyscalls::call(long number, std::array<uint64_t, 6> args) {
  Thread& t = registers_.thread();
  if (!t.stopped) return make_error("internal: no stopped thread for a system call");
  Registers regs = registers_.own();
  regs.rax = static_cast<uint64_t>(number);
  regs.leave_system_call();  // no restart logic for an interrupted call underneath
  regs.rdi = args[0];
  regs.rsi = args[1];
  regs.rdx = args[2];
  regs.r10 = args[3];
  regs.r8 = args[4];
  regs.r9 = args[5];
  regs.rip = instruction_.value();
  GRAFT_TRY(registers_.set(regs));
  for (int attempt = 0;; ++attempt) {
    if (ptrace(PTRACE_SINGLESTEP, t.tid, nullptr, nullptr) != 0) {
      const int err = errno;
      (void)registers_.restore();
      return errno_error(fmt::format("PTRACE_SINGLESTEP of thread {}", t.tid), err);
    }
    int status = 0;
    if (waitpid(t.tid, &status, __WALL) != t.tid || !WIFSTOPPED(status)) {
      registers_.forget();
      return make_error("thread {} died while running a system call for graft", t.tid);
    }
    GRAFT_ASSIGN(const Registers after, registers_.process().get_registers(t.tid));
    if (WSTOPSIG(status) == SIGTRAP && (status >> 16) == 0 && after.pc() == instruction_ + 2) {
      GRAFT_TRY(registers_.restore());
      return static_cast<int64_t>(after.rax);
    }
    keep_for_program(t, status);
    if (attempt > 100) {
      (void)registers_.restore();
      return make_error("thread {} would not run an injected system call", t.tid);
    }
  }
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

Result<RemoteMapping> RemoteMapping::anonymous(RemoteSyscalls& syscalls, uint64_t size, const std::string& purpose) {
  GRAFT_ASSIGN(const uint64_t at, syscalls.checked(fmt::format("map {} bytes for {}", size, purpose), SYS_mmap,
                                                   {0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                                    ~uint64_t{0}, 0}));
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

Status RemoteMapping::unmap() {
  if (!process_ || !size_) return ok();
  TracedProcess& process = *process_;
  process_ = nullptr;
  // A stopped thread to run munmap in; if all run, one is stopped for it.
  pid_t stopped_here = 0;
  if (!process.injection_thread()) {
    if (process.threads().empty()) return make_error("process {} has no threads left", process.pid());
    stopped_here = process.threads().front().tid;
    GRAFT_TRY(process.stop_one(stopped_here));
  }
  Status done = [&]() -> Status {
    GRAFT_ASSIGN(auto syscalls, RemoteSyscalls::open(process));
    GRAFT_ASSIGN(const uint64_t r, syscalls.checked(fmt::format("unmap {:#x}", start_), SYS_munmap,
                                                    {start_.value(), size_, 0, 0, 0, 0}));
    (void)r;
    return ok();
  }();
  if (stopped_here) (void)process.resume_one(stopped_here);
  return done;
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

Result<BorrowedRun> BorrowedThread::run(const Registers& start_regs, std::chrono::milliseconds limit) {
  Thread& t = registers_.thread();
  TracedProcess& process = registers_.process();
  if (!t.stopped || t.group_stop) return make_error("internal: thread {} is not stopped by graft", t.tid);
  Registers start = start_regs;
  start.leave_system_call();  // no restart of a call the thread was in
  GRAFT_TRY(registers_.set(start));
  BorrowedRun run;
  auto finish = [&](BorrowedRun::Outcome outcome) -> Result<BorrowedRun> {
    GRAFT_ASSIGN(const Registers end, process.get_registers(t.tid));
    run.outcome = outcome;
    run.pc = end.pc();
    GRAFT_TRY(registers_.restore());
    return run;
  };
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int deliver = 0;  // 0: the thread runs on without a signal
  for (;;) {
    if (ptrace(PTRACE_CONT, t.tid, nullptr, reinterpret_cast<void*>(static_cast<long>(deliver))) != 0) {
      const int err = errno;
      (void)registers_.restore();
      return errno_error("PTRACE_CONT", err);
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
    if (event == 0 && sig == SIGTRAP) return finish(BorrowedRun::Trapped);
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
    unsigned long child = 0;
    if (event == PTRACE_EVENT_CLONE) ptrace(PTRACE_GETEVENTMSG, t.tid, nullptr, &child);
    run.signal = sig;
    auto result = finish(BorrowedRun::Stopped);
    if (child) process.adopt(static_cast<pid_t>(child));  // the code started a thread: the program's now
    return result;
  }
}

Result<BorrowedRun> BorrowedThread::call(RemoteAddress function, uint64_t argument, RemoteAddress stack_end,
                                         std::chrono::milliseconds limit) {
  GRAFT_TRY(registers_.process().write(stack_end - 8, std::vector<uint8_t>(8, 0)));  // the return address
  Registers regs = registers_.own();
  regs.rip = function.value();
  regs.rdi = argument;
  regs.rsp = (stack_end - 8).value();  // as after a call: rsp + 8 is 16-byte aligned
  regs.rax = 0;
  regs.eflags &= ~uint64_t{0x500};  // direction and trap flags clear, as the ABI expects
  return run(regs, limit);
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
  }
  // The number may have named another file by the time mmap ran.
  for (const auto& seg : segments)
    GRAFT_TRY(check_mapped_from(process.pid(), (base + seg.offset).value(), seg.size, seg.offset, file, "the patch"));
  return mapped;
}

}  // namespace graft
