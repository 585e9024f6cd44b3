// Control of a live target process through ptrace: attach to every thread,
// stop and resume them, read and write memory, run system calls inside it.
// A TracedProcess is an RAII attachment: its destructor resumes and detaches
// every thread, whatever happened in between.
#pragma once
#include <sys/types.h>
#include <sys/user.h>

#include <array>
#include <chrono>
#include <set>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <list>

#include "common/error.h"
#include "target/address.h"
#include "target/journal.h"
#include "target/registers.h"

namespace graft {

struct MemoryMap {
  uint64_t start = 0, end = 0, offset = 0;
  std::string perms;  // "r-xp"
  std::string path;   // file, "[stack]", "/memfd:graft... (deleted)", or "": the target's to choose, never trusted
  uint64_t device = 0, inode = 0;  // the mapped file as the kernel knows it (st_dev, st_ino), 0 if anonymous
  bool contains(uint64_t address) const { return address >= start && address < end; }
  bool contains(RemoteAddress address) const { return contains(address.value()); }
};

Result<std::vector<MemoryMap>> read_maps(pid_t pid);



// Reads another process's memory without stopping it (process_vm_readv).
Result<std::vector<uint8_t>> read_process_memory(pid_t pid, RemoteAddress address, size_t size);

// What graft says when the kernel refuses it process `pid` while `doing`
// ("attaching to"): permission denied, and what to do.
Error permission_denied(pid_t pid, const std::string& doing);

// Why a process cannot be attached, checked before touching it: it does not
// exist, is a zombie, is ourselves, or is traced by another process.
Status check_attachable(pid_t pid);

// Whether the process runs with a hardware shadow stack (x86 CET, "shstk" in
// /proc/PID/status): return addresses then also live where graft cannot
// rewrite them, so no frame may be moved into new code.
bool uses_shadow_stack(pid_t pid);

struct Thread {
  Thread() = default;
  explicit Thread(pid_t id) : tid(id) {}
  pid_t tid = 0;
  Registers regs;
  bool stopped = false;
  bool group_stop = false;   // stopped by job control (SIGSTOP): stays stopped after graft
  int pending_signal = 0;    // intercepted while stopping it; delivered again on resume
  RemoteAddress trapped_at;  // the breakpoint it stopped at (its rip, already rewound), or null
  // A SIGSTOP of graft's is queued to it (TracedProcess::hold): should graft
  // die, the thread group-stops before it runs another instruction.
  bool held = false;
  std::string name() const;  // from /proc/PID/task/TID/comm
};

class TracedProcess {
 public:
  // Seizes every thread (and threads created later). Nothing is stopped yet.
  static Result<std::unique_ptr<TracedProcess>> attach(pid_t pid);
  // For cleaning up after a graft that died (apply/recover.h): a process
  // stopped by job control (graft's holds) is attached too, once the dead
  // graft's tracing has ended (up to `patience`); `planted` are the int3s it
  // left, so that a thread trapped on one is rewound like under graft.
  static Result<std::unique_ptr<TracedProcess>> attach_after_graft(pid_t pid, const std::set<RemoteAddress>& planted,
                                                                   std::chrono::milliseconds patience);
  ~TracedProcess();
  TracedProcess(const TracedProcess&) = delete;
  TracedProcess& operator=(const TracedProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Stops every thread and reads its registers. Threads created meanwhile are stopped too.
  Status stop_all();
  // Resumes every thread, delivering any signal that arrived while it was stopped.
  Status resume_all();
  // Stops (or resumes) one thread only, the others run on: for work in the
  // target that needs no global stop, such as mapping a patch.
  Status stop_one(pid_t tid);
  Status resume_one(pid_t tid);
  // Resumes and detaches every thread; the destructor calls it too.
  Status detach();

  // Holds: a thread-directed SIGSTOP queued to a stopped thread. While graft
  // lives it discards it when the thread next runs (a resume costs one more
  // stop); if graft dies, the kernel lets its threads go, and a held one
  // takes the SIGSTOP before it returns to its code, stopping the whole
  // process until the guardian has put things right (apply/guardian.h).
  // Holds are for moments when the target is not as the program left it:
  // a thread with graft's registers, half a commit.
  void hold(Thread& t);
  void hold_all();
  // Takes back the hold of `t` (stopped and held): it stops once more, on
  // its SIGSTOP, which is discarded; it stays stopped. Its registers must be
  // such that it may run its own code from there, should graft die now.
  Status release_hold(Thread& t);
  // Where the records of what graft does to the target go (a journal no one
  // reads unless set). The journal must outlive this object.
  void set_journal(Journal& journal) { journal_ = &journal; }
  Journal& journal() const { return *journal_; }
  // Attached by attach_after_graft: its group-stopped threads are driven too.
  bool after_graft() const { return after_graft_; }
  std::list<Thread>& threads() { return threads_; }
  Thread* find(pid_t tid);
  void resume(Thread& t);
  Status set_registers(const Thread& t);  // writes t.regs to the stopped thread
  Result<Registers> get_registers(pid_t tid) const;

  // Breakpoints: every int3 graft plants is planted and removed here, so that
  // a thread stopping on one is rewound to its address, whenever that
  // happens (even after the int3 was removed), instead of being given
  // SIGTRAP; a child forked meanwhile gets the original bytes back and is
  // let go; and detaching takes out whatever is still planted.
  Status plant_breakpoint(RemoteAddress address);  // planting one already there is a no-op
  void remove_breakpoint(RemoteAddress address);
  void remove_all_breakpoints();
  // The byte an int3 replaced, while it is planted.
  std::optional<uint8_t> breakpoint_original(RemoteAddress address) const;
  // Lets running threads run until one stops at a breakpoint, up to `limit`.
  // Threads stopped by anything else are resumed at once (signals delivered).
  Result<std::vector<pid_t>> wait_for_traps(std::chrono::microseconds limit);

  Result<std::vector<uint8_t>> read(RemoteAddress address, size_t size) const;
  // `size` bytes at each address, in as few system calls as the kernel
  // allows (one per 1024 addresses): the entries a commit redirects are
  // read inside the pause.
  Result<std::vector<std::vector<uint8_t>>> read_each(std::span<const RemoteAddress> addresses, size_t size) const;
  // Writes through /proc/PID/mem, which may write read-only (private) mappings such as code.
  Status write(RemoteAddress address, std::span<const uint8_t> bytes) const;

  // The thread that code graft runs in the target borrows (target/remote.h):
  // the first stopped one not held by job control (after graft died, when
  // every thread may be group-stopped by its holds, any stopped one).
  Thread* injection_thread();
  // A SIGTRAP of graft's queued to a thread (an int3 it planted, which a
  // thread hit as graft died) is taken and discarded, the thread rewound to
  // the int3's address; the thread stays stopped. It cannot be taken while
  // the process is group-stopped: continue it first.
  Status discard_queued_trap(Thread& t);
  // Whether a SIGTRAP waits in the thread's own queue.
  bool has_queued_trap(pid_t tid) const;
  // Runs a stopped thread one instruction at a time until it leaves
  // [start, end) (a thread inside graft's SIGTRAP handler finishing it).
  Status step_out_of(Thread& t, RemoteAddress start, RemoteAddress end);
  // A thread the program started while graft ran code in one of its threads:
  // traced since (PTRACE_O_TRACECLONE), and the program's from now on.
  void adopt(pid_t tid);

  // A thread of the process called execve (PTRACE_O_TRACEEXEC): the process
  // is another program, which has nothing of graft's and must get nothing:
  // no system call, no register, no wait for it goes on (each says so with
  // exec_error()), and the detach lets it run as it is.
  bool exec_seen() const { return exec_seen_; }
  void saw_exec() { exec_seen_ = true; }
  Error exec_error() const;

 private:
  explicit TracedProcess(pid_t pid) : pid_(pid) {}
  Status seize(pid_t tid);
  Status wait_for_stops(pid_t only = -1);
  Thread* handle_report(pid_t tid, int status, bool* process_exited);
  Thread* take_queued_trap(Thread& t, bool* process_exited);
  void restart_interrupted_call(Thread& t);
  bool signal_waiting(pid_t tid) const;
  void release_child(pid_t child, bool stopped);
  Result<std::optional<std::pair<pid_t, int>>> next_report();
  static Result<std::unique_ptr<TracedProcess>> seize_all(pid_t pid);

  pid_t pid_;
  int mem_fd_ = -1;
  bool attached_ = false;
  std::list<Thread> threads_;  // a list: a Thread* stays valid while threads come and go
  std::set<RemoteAddress> ever_planted_;         // a trap at one of these is graft's
  std::map<RemoteAddress, uint8_t> planted_;     // planted now: address -> original byte
  std::set<pid_t> released_children_;
  Journal* journal_ = &no_journal_;
  bool held_any_ = false;
  bool after_graft_ = false;
  bool exec_seen_ = false;  // attach_after_graft: group-stopped threads are driven too
  static inline Journal no_journal_;
};

}  // namespace graft
