// Running things inside a stopped target process: injected system calls,
// scratch memory, descriptors and mappings it holds for graft, and code run
// in a borrowed thread. Every object here undoes its effect on the target
// when it goes out of scope, on every exit (rr's AutoRemoteSyscalls and
// AutoRestoreMem, CRIU compel's infect/cure, in one room). Only a mapping
// that an update commits is kept, by saying so (RemoteMapping::keep).
//
// All of them need the TracedProcess to outlive them, and a thread of it
// stopped by graft (TracedProcess::injection_thread) while they act.
#pragma once
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "target/process.h"

namespace graft {

// A stopped thread's own registers, taken when graft borrows the thread and
// put back when the scope closes (or at restore()) if graft set others.
class SavedRegisters {
 public:
  SavedRegisters(TracedProcess& process, Thread& thread) : process_(&process), thread_(&thread), saved_(thread.regs) {}
  ~SavedRegisters() { (void)restore(); }
  SavedRegisters(SavedRegisters&& other) noexcept;
  SavedRegisters(const SavedRegisters&) = delete;
  SavedRegisters& operator=(const SavedRegisters&) = delete;
  SavedRegisters& operator=(SavedRegisters&&) = delete;

  // Gives the thread `regs`; they are its own again at restore().
  Status set(const Registers& regs);
  Status restore();
  // The thread ended or runs on: there is nothing to put back.
  void forget() { dirty_ = false; }
  const Registers& own() const { return saved_; }
  Thread& thread() const { return *thread_; }
  TracedProcess& process() const { return *process_; }

 private:
  TracedProcess* process_;
  Thread* thread_;
  Registers saved_;
  bool dirty_ = false;  // the thread's registers are not its own
};

// System calls run in one stopped thread of the target. The thread's
// registers are taken when the scope opens and are put back after every
// call and when it closes, so an interrupted system call of the thread's
// own restarts as before.
//
// Killed-graft safety: a call runs from a system-call stop (PTRACE_SYSCALL),
// never from a trap, and a thread waiting in a system call of its own runs
// graft's in place of that one: it is sent back to its own `syscall`
// instruction (as the kernel restarts a call), and graft swaps the number
// and arguments at the call's entry stop. From the entry stop until its
// registers are its own again the thread is held (TracedProcess::hold);
// before that, should graft die, it just makes its own call again. A thread
// not in a system call runs graft's at another `syscall` instruction (the
// vDSO's): there, from graft's resume to the entry stop (one instruction),
// graft's death would leave it with graft's registers.
class RemoteSyscalls {
 public:
  static Result<RemoteSyscalls> open(TracedProcess& process);
  RemoteSyscalls(RemoteSyscalls&& other) noexcept = default;
  RemoteSyscalls(const RemoteSyscalls&) = delete;
  RemoteSyscalls& operator=(const RemoteSyscalls&) = delete;
  RemoteSyscalls& operator=(RemoteSyscalls&&) = delete;

  // The raw result: a negative errno on failure.
  Result<int64_t> call(long number, std::array<uint64_t, 6> args);
  // `what` names the call in the error ("mmap 4096 bytes for the transformers").
  Result<uint64_t> checked(const std::string& what, long number, std::array<uint64_t, 6> args);
  TracedProcess& process() const { return registers_.process(); }
  const Thread& thread() const { return registers_.thread(); }

 private:
  RemoteSyscalls(TracedProcess& process, Thread& thread, RemoteAddress instruction, bool own_call)
      : registers_(process, thread), instruction_(instruction), own_call_(own_call) {}
  // Runs the thread to its next system-call stop of the kind `op`: the entry
  // stop of the call it makes from its registers, or the exit stop of the
  // one it entered (PTRACE_SYSCALL_INFO_ENTRY, _EXIT).
  Result<Registers> to_syscall_stop(uint8_t op);
  SavedRegisters registers_;
  RemoteAddress instruction_;  // an executable `syscall` in the target: the thread's own, or the vDSO's
  bool own_call_;              // the thread waits in a system call made at instruction_
};

// Runs `work` with system calls in a stopped thread: if none is, the first
// thread is stopped for it and let go again.
Status with_syscalls(TracedProcess& process, const std::function<Status(RemoteSyscalls&)>& work);

// Bytes written into the target's memory for the length of a scope (a
// path a system call reads, a header for injected code), put back as they
// were when it closes.
class RemoteScratch {
 public:
  // Below the stack pointer of `thread` (past the red zone), where the
  // thread's own code writes nothing while it is stopped.
  static Result<RemoteScratch> below_stack(TracedProcess& process, const Thread& thread, std::span<const uint8_t> bytes);
  ~RemoteScratch();
  RemoteScratch(RemoteScratch&& other) noexcept;
  RemoteScratch(const RemoteScratch&) = delete;
  RemoteScratch& operator=(const RemoteScratch&) = delete;
  RemoteScratch& operator=(RemoteScratch&&) = delete;
  RemoteAddress address() const { return address_; }

 private:
  RemoteScratch(TracedProcess& process, RemoteAddress address, std::vector<uint8_t> previous)
      : process_(&process), address_(address), previous_(std::move(previous)) {}
  TracedProcess* process_;
  RemoteAddress address_;
  std::vector<uint8_t> previous_;
};

// A file descriptor open in the target for graft, closed when the scope closes.
class RemoteFd {
 public:
  RemoteFd(RemoteSyscalls& syscalls, int fd) : syscalls_(&syscalls), fd_(fd) {}
  ~RemoteFd();
  RemoteFd(RemoteFd&& other) noexcept : syscalls_(other.syscalls_), fd_(other.fd_) { other.fd_ = -1; }
  RemoteFd(const RemoteFd&) = delete;
  RemoteFd& operator=(const RemoteFd&) = delete;
  RemoteFd& operator=(RemoteFd&&) = delete;
  int number() const { return fd_; }

 private:
  RemoteSyscalls* syscalls_;
  int fd_;
};

// Memory mapped in the target by graft: unmapped when the scope closes,
// unless the update that needs it committed (keep). Unmapping needs a
// stopped thread: if none is, one is stopped for it and let go again.
class RemoteMapping {
 public:
  RemoteMapping() = default;
  RemoteMapping(TracedProcess& process, RemoteAddress start, uint64_t size)
      : process_(&process), start_(start), size_(size) {}
  // Fresh zeroed read-write memory anywhere in the target.
  static Result<RemoteMapping> anonymous(RemoteSyscalls& syscalls, uint64_t size, const std::string& purpose,
                                         int prot = PROT_READ | PROT_WRITE);
  ~RemoteMapping();
  RemoteMapping(RemoteMapping&& other) noexcept;
  RemoteMapping& operator=(RemoteMapping&& other) noexcept;
  RemoteMapping(const RemoteMapping&) = delete;
  RemoteMapping& operator=(const RemoteMapping&) = delete;

  RemoteAddress start() const { return start_; }
  uint64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void keep() { process_ = nullptr; }  // committed: the target owns it now
  void extend_to(uint64_t size) { size_ = std::max(size_, size); }  // more was mapped right after it
  // Unmaps it now (the destructor's work), reporting what went wrong.
  Status unmap();

 private:
  TracedProcess* process_ = nullptr;
  RemoteAddress start_;
  uint64_t size_ = 0;
};

// Where code run in a borrowed thread ended.
struct BorrowedRun {
  enum Outcome { Trapped, Faulted, Stopped, TimedOut } outcome = Trapped;
  int signal = 0;              // Faulted: SIGSEGV, SIGBUS, SIGFPE, SIGILL, ...
  RemoteAddress fault_address; // Faulted: the address the signal names
  RemoteAddress pc;            // where it ended
};

// "SIGSEGV" (or "signal N"), for the messages of code run in a borrowed thread.
std::string signal_name(int sig);

// A stopped thread lent to graft to run code of the patch (the user's
// transformers) while every other thread stays stopped. Its registers are
// put back after each run and when the scope closes, and a fault's signal is
// discarded: the thread goes on as if nothing had run. Signals that arrive
// meanwhile for the program are kept for its resumption.
class BorrowedThread {
 public:
  static Result<BorrowedThread> take(TracedProcess& process);
  // `tid`, which graft stopped (the others may run meanwhile).
  static Result<BorrowedThread> take(TracedProcess& process, pid_t tid);
  BorrowedThread(BorrowedThread&& other) noexcept = default;
  BorrowedThread(const BorrowedThread&) = delete;
  BorrowedThread& operator=(const BorrowedThread&) = delete;
  BorrowedThread& operator=(BorrowedThread&&) = delete;

  const Registers& own_registers() const { return registers_.own(); }
  // Runs from `start` until the code executes an int3, faults, stops for
  // anything else or `limit` passes. Code that ends on an int3 and never on
  // the runners' `pause` may run without a stop at each of its system
  // calls (`system_call_stops` false): a ptrace round trip fewer per call.
  Result<BorrowedRun> run(const Registers& start, std::chrono::milliseconds limit, bool system_call_stops = true);
  // Runs `function(argument)` on graft's stack ending at `stack_end`
  // (16-byte aligned), as if called there with a return address of 0
  // (returning faults: the function must end on an int3, like a runner).
  Result<BorrowedRun> call(RemoteAddress function, uint64_t argument, RemoteAddress stack_end,
                           std::chrono::milliseconds limit, bool system_call_stops = true);

 private:
  BorrowedThread(TracedProcess& process, Thread& thread) : registers_(process, thread) {}
  // The code ended on the runners' closing `pause` (include/graft/graft.h):
  // the call is skipped, and the thread taken to its exit stop.
  Status skip_closing_call();
  SavedRegisters registers_;
  uint64_t stack_start_ = 0, stack_end_ = 0;  // graft's stack for the code (call), for the journal
};

// The patch's image put into the target: a memfd named `name` (so the
// mapping shows as the patch in /proc/PID/maps), made and sealed by graft,
// handed to the target (target/handover.h), mapped segment by segment at
// `base`, and checked to be mapped from that file.
struct RemoteSegment {
  uint64_t offset = 0, size = 0;  // within the image
  int prot = 0;
};
Result<RemoteMapping> map_image(RemoteSyscalls& syscalls, RemoteAddress base, std::span<const uint8_t> image,
                                const std::vector<RemoteSegment>& segments, const std::string& name);

}  // namespace graft
