#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "target/process.h"
#include "common/unique_fd.h"
#include "target/x86.h"

namespace graft {
namespace {

std::vector<pid_t> list_tasks(pid_t pid) {
  std::vector<pid_t> tids;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') tids.push_back(static_cast<pid_t>(std::stol(e->d_name)));
    closedir(d);
  }
  return tids;
}

std::string status_field(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) {
      auto value = line.substr(field.size() + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      return value;
    }
  return {};
}

bool is_job_control_stop(int sig) { return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU; }

// Whether a stopped thread has the SIGTRAP of an executed int3 queued but not
// yet delivered: the thread trapped just as graft's PTRACE_INTERRUPT arrived,
// and the kernel reported the interrupt first.
bool has_queued_trap(pid_t tid, bool of_int3) {
  __ptrace_peeksiginfo_args args{0, 0, 16};
  siginfo_t queued[16];
  const long n = ptrace(PTRACE_PEEKSIGINFO, tid, &args, queued);
  for (long i = 0; i < n; ++i)
    if (queued[i].si_signo == SIGTRAP && (!of_int3 || queued[i].si_code == SI_KERNEL)) return true;
  return false;
}
bool has_queued_int3_trap(pid_t tid) { return has_queued_trap(tid, true); }

}  // namespace

Error permission_denied(pid_t pid, const std::string& doing) {
  const std::string scope = [] {
    std::ifstream in("/proc/sys/kernel/yama/ptrace_scope");
    std::string value;
    return std::getline(in, value) ? ", now " + value : std::string();
  }();
  return make_error("permission denied {} process {}: run graft as root or as the process's user, and check "
                    "kernel.yama.ptrace_scope (0 lets a user trace its own processes{})", doing, pid, scope);
}

std::string Thread::name() const {
  std::ifstream in("/proc/" + std::to_string(tid) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

Result<std::vector<MemoryMap>> read_maps(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  if (!in) {
    if (errno == EACCES || errno == EPERM) return permission_denied(pid, "reading the memory map of");
    return make_error("cannot read the memory map of process {}: no such process", pid);
  }
  std::vector<MemoryMap> maps;
  std::string line;
  while (std::getline(in, line)) {
    MemoryMap m;
    std::istringstream fields(line);
    std::string range, dev, inode;
    fields >> range >> m.perms >> std::hex >> m.offset >> dev >> std::dec >> inode;
    const auto dash = range.find('-');
    m.start = std::stoull(range.substr(0, dash), nullptr, 16);
    m.end = std::stoull(range.substr(dash + 1), nullptr, 16);
    const auto colon = dev.find(':');
    m.device = makedev(std::stoul(dev.substr(0, colon), nullptr, 16), std::stoul(dev.substr(colon + 1), nullptr, 16));
    m.inode = std::stoull(inode);
    std::getline(fields, m.path);
    m.path.erase(0, m.path.find_first_not_of(' '));
    maps.push_back(std::move(m));
  }
  return maps;
}

Result<std::vector<uint8_t>> read_process_memory(pid_t pid, RemoteAddress at, size_t size) {
  const uint64_t address = at.value();
  std::vector<uint8_t> out(size);
  size_t done = 0;
  while (done < size) {
    iovec local{out.data() + done, size - done};
    iovec remote{reinterpret_cast<void*>(address + done), size - done};
    const ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n <= 0) return make_error("cannot read {} bytes at {:#x} in process {}: {}", size, address, pid,
                                  std::strerror(n < 0 ? errno : EFAULT));
    done += static_cast<size_t>(n);
  }
  return out;
}

Status check_attachable(pid_t pid) {
  if (pid <= 0) return make_error("{} is not a process ID", pid);
  if (pid == getpid()) return make_error("graft cannot update itself");
  if (kill(pid, 0) != 0 && errno == ESRCH) return make_error("no process with PID {}", pid);
  const std::string state = status_field(pid, "State");
  if (state.empty()) return make_error("no process with PID {}", pid);
  if (state[0] == 'Z' || state[0] == 'X') return make_error("process {} has exited (zombie)", pid);
  if (state[0] == 'T')
    return make_error("process {} is stopped (SIGSTOP or job control): graft leaves it as it is; continue it "
                      "with SIGCONT first", pid);
  const std::string tracer = status_field(pid, "TracerPid");
  if (!tracer.empty() && tracer != "0")
    return make_error("process {} is already traced by PID {} (a debugger?): detach it first", pid, tracer);
  return ok();
}

bool uses_shadow_stack(pid_t pid) {
  return status_field(pid, "x86_Thread_features").find("shstk") != std::string::npos;
}

Result<std::unique_ptr<TracedProcess>> TracedProcess::attach(pid_t pid) {
  GRAFT_TRY(check_attachable(pid));
  return seize_all(pid);
}

Result<std::unique_ptr<TracedProcess>> TracedProcess::attach_after_graft(pid_t pid, const std::set<RemoteAddress>& planted,
                                                                        std::chrono::milliseconds patience) {
  if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH)) return make_error("no process with PID {}", pid);
  // The dead graft's tracing ends a moment after its last descriptor closed.
  const auto deadline = std::chrono::steady_clock::now() + patience;
  for (;;) {
    const std::string tracer = status_field(pid, "TracerPid");
    if (tracer.empty()) return make_error("no process with PID {}", pid);
    if (tracer == "0") break;
    if (std::chrono::steady_clock::now() > deadline)
      return make_error("process {} is still traced by PID {}: is graft still running on it?", pid, tracer);
    usleep(200);
  }
  GRAFT_ASSIGN(auto process, seize_all(pid));
  process->ever_planted_ = planted;
  process->after_graft_ = true;
  return process;
}

Result<std::unique_ptr<TracedProcess>> TracedProcess::seize_all(pid_t pid) {
  std::unique_ptr<TracedProcess> process(new TracedProcess(pid));
  process->attached_ = true;
  // Threads may start while we attach: list until no new one appears.
  for (bool grew = true; grew;) {
    grew = false;
    for (pid_t tid : list_tasks(pid)) {
      if (process->find(tid)) continue;
      GRAFT_TRY(process->seize(tid));
      grew = true;
    }
  }
  if (process->threads_.empty()) return make_error("process {} has no threads left", pid);
  // Opened once the process is ours: its PID cannot name another process while graft traces it.
  process->mem_fd_ = open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDWR | O_CLOEXEC);
  if (process->mem_fd_ < 0) {
    if (errno == EACCES || errno == EPERM) return permission_denied(pid, "opening the memory of");
    return errno_error(fmt::format("cannot open the memory of process {}", pid), errno);
  }
  return process;
}

Status TracedProcess::seize(pid_t tid) {
  // TRACESYSGOOD: the system-call stops of injected calls (target/remote.h)
  // are told from traps; a thread at one when graft dies just goes on.
  constexpr long kOptions = PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC;
  if (ptrace(PTRACE_SEIZE, tid, nullptr, kOptions) != 0) {
    const int err = errno;
    if (err == ESRCH) return ok();  // the thread exited meanwhile
    if (err == EPERM) {
      const std::string tracer = status_field(tid, "TracerPid");
      // Cloned by a thread we had already seized: attached by PTRACE_O_TRACECLONE.
      if (tracer == std::to_string(getpid())) {
        threads_.push_back(Thread{tid});
        return ok();
      }
      // Exiting between the task list and the seize (the kernel refuses a
      // thread in its exit with EPERM): gone, as with ESRCH. A thread-spawning
      // program met this under load, and graft said "permission denied".
      const std::string state = status_field(tid, "State");
      const bool exiting = tracer.empty() || state.empty() || state[0] == 'Z' || state[0] == 'X';
      if (exiting && tid != pid_) return ok();
      if (exiting)
        return make_error("process {}'s main thread has exited (or the process is exiting): graft cannot update it; "
                          "nothing was changed", pid_);
      // Another tracer got there first (a second graft, a debugger): not a matter of privileges.
      if (tracer != "0")
        return make_error("process {} is being traced by PID {} (another graft or a debugger) that attached "
                          "first: wait until it is done, or detach it, and try again; nothing was changed",
                          pid_, tracer);
      return permission_denied(pid_, "attaching to");
    }
    return errno_error(fmt::format("cannot attach to thread {} of process {}", tid, pid_), err);
  }
  threads_.push_back(Thread{tid});
  return ok();
}

void TracedProcess::adopt(pid_t tid) {
  if (!find(tid)) threads_.push_back(Thread{tid});
}

Thread* TracedProcess::find(pid_t tid) {
  for (auto& t : threads_)
    if (t.tid == tid) return &t;
  return nullptr;
}

TracedProcess::~TracedProcess() {
  (void)detach();
  if (mem_fd_ >= 0) close(mem_fd_);
}

Status TracedProcess::stop_all() {
  for (auto& t : threads_)
    if (!t.stopped) ptrace(PTRACE_INTERRUPT, t.tid, nullptr, nullptr);
  return wait_for_stops();
}

// Collects stop reports until every known thread is stopped, following clones
// and exits, and remembering signals that must be delivered later.
Status TracedProcess::stop_one(pid_t tid) {
  Thread* t = find(tid);
  if (!t) return make_error("thread {} is not attached", tid);
  if (!t->stopped) ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr);
  return wait_for_stops(tid);
}

Status TracedProcess::resume_one(pid_t tid) {
  if (Thread* t = find(tid)) resume(*t);
  return ok();
}

Thread* TracedProcess::handle_report(pid_t tid, int status, bool* process_exited) {
  Thread* t = find(tid);
  if (WIFEXITED(status) || WIFSIGNALED(status)) {
    std::erase_if(threads_, [&](const Thread& x) { return x.tid == tid; });
    if (threads_.empty()) *process_exited = true;
    return nullptr;
  }
  if (!WIFSTOPPED(status)) return nullptr;
  if (!t) {
    // A forked child reporting its first stop before its parent's fork event.
    if (status_field(tid, "Tgid") != std::to_string(pid_)) {
      release_child(tid, true);
      return nullptr;
    }
    // A new thread reporting its first stop before its parent's clone event.
    threads_.push_back(Thread{tid});
    t = &threads_.back();
  }
  const int sig = WSTOPSIG(status);
  const int event = status >> 16;
  if (event == PTRACE_EVENT_CLONE) {
    unsigned long child = 0;
    ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &child);
    if (!find(static_cast<pid_t>(child))) threads_.push_back(Thread{static_cast<pid_t>(child)});
    t = find(tid);
  } else if (event == PTRACE_EVENT_FORK) {
    unsigned long child = 0;
    ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &child);
    release_child(static_cast<pid_t>(child), false);
  } else if (event == PTRACE_EVENT_EXEC) {
    exec_seen_ = true;  // the thread (with the main thread's ID now) stops here, at the new program's start
  } else if (event == PTRACE_EVENT_STOP) {
    t->group_stop = is_job_control_stop(sig);
  } else if (event == 0 && sig == SIGSTOP && (t->held || after_graft_)) {
    // graft's own hold, taken back (release_hold), or a dead graft's, taken
    // by its guardian attaching before the thread stopped on it: not the program's.
    t->held = false;
  } else if (event == 0 && sig != SIGTRAP) {
    t->pending_signal = sig;  // signal-delivery stop: deliver it when we resume
  }
  t->stopped = true;
  t->trapped_at = RemoteAddress();
  if (ptrace(PTRACE_GETREGS, tid, nullptr, static_cast<user_regs_struct*>(&t->regs)) != 0) {
    // Gone between its stop report and now (killed): its exit report follows.
    t->stopped = false;
    return nullptr;
  }
  if (event == PTRACE_EVENT_STOP && !t->group_stop) restart_interrupted_call(*t);
  if (event == 0 && sig == SIGTRAP) {
    if (ever_planted_.count(t->regs.pc() - 1)) {
      // One of our int3s: back to the breakpoint's address, as if it had not
      // run. Held while it waits there: the trap's SIGTRAP is in hand, and
      // would end the process if graft died before letting it go.
      hold(*t);
      t->regs.rip -= 1;
      (void)set_registers(*t);
      t->trapped_at = t->regs.pc();
    } else {
      t->pending_signal = SIGTRAP;  // the program's own
    }
  } else if (!t->group_stop && ever_planted_.count(t->regs.pc() - 1) && has_queued_int3_trap(tid)) {
    // It executed one of our int3s, but another stop was reported first, and
    // its SIGTRAP waits: left there, it would kill the process once graft
    // detaches. Let it take the signal now (it is the first the kernel
    // delivers: synchronous signals go first) and rewind it as above.
    return take_queued_trap(*t, process_exited);
  }
  return t;
}

Thread* TracedProcess::take_queued_trap(Thread& t, bool* process_exited) {
  const pid_t tid = t.tid;
  if (ptrace(PTRACE_CONT, tid, nullptr, nullptr) != 0) return &t;
  t.stopped = false;
  int status = 0;
  pid_t got = 0;
  while ((got = waitpid(tid, &status, __WALL)) < 0 && errno == EINTR) {
  }
  if (got != tid) return find(tid);
  return handle_report(tid, status, process_exited);
}

// The next report of any traced thread: nullopt when there is none yet, or
// none can come any more (no children).
Result<std::optional<std::pair<pid_t, int>>> TracedProcess::next_report() {
  for (;;) {
    int status = 0;
    const pid_t tid = waitpid(-1, &status, __WALL | WNOHANG);
    if (tid > 0) return std::optional(std::make_pair(tid, status));
    if (tid == 0 || errno == ECHILD) return std::optional<std::pair<pid_t, int>>();
    if (errno != EINTR) return errno_error("waitpid", errno);
  }
}

// A few system calls fail with EINTR when a ptrace stop interrupts them,
// although no signal handler ran (signal(7), "Interruption of system calls
// and library functions by stop signals": epoll_wait, semop, sigtimedwait,
// and a socket's calls once it has a timeout, SO_RCVTIMEO or SO_SNDTIMEO,
// whichever of them reads or writes it: tinyproxy dropped a connection for
// each such stop). Our stop must be invisible: such a call is set to run
// again, as the kernel does itself for calls that return ERESTART*; its
// timeout starts again, as with SA_RESTART. Not when a signal waits to be
// delivered to the thread: its handler may expect the EINTR.
void TracedProcess::restart_interrupted_call(Thread& t) {
  static const std::set<long> fail_with_eintr = {
      SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_pwait2, SYS_semop,    SYS_semtimedop, SYS_rt_sigtimedwait,
      SYS_accept,     SYS_accept4,     SYS_connect,      SYS_recvfrom, SYS_recvmsg,    SYS_recvmmsg,
      SYS_sendto,     SYS_sendmsg,     SYS_sendmmsg,     SYS_read,     SYS_readv,      SYS_write,
      SYS_writev};
  if (static_cast<int64_t>(t.regs.rax) != -EINTR || !fail_with_eintr.count(static_cast<long>(t.regs.orig_rax))) return;
  if (signal_waiting(t.tid)) return;
  auto code = read(t.regs.pc() - 2, 2);
  if (!code || !x86::is_syscall(*code)) return;
  t.regs.rax = t.regs.orig_rax;
  t.regs.rip -= 2;
  (void)set_registers(t);
}

// Whether a signal the thread does not block is pending for it or for its
// process (/proc: SigPnd, ShdPnd, SigBlk). Unknown counts as waiting.
bool TracedProcess::signal_waiting(pid_t tid) const {
  const std::string pending = status_field(tid, "SigPnd"), shared = status_field(tid, "ShdPnd"),
                    blocked = status_field(tid, "SigBlk");
  if (pending.empty() || shared.empty() || blocked.empty()) return true;
  return ((std::stoull(pending, nullptr, 16) | std::stoull(shared, nullptr, 16)) & ~std::stoull(blocked, nullptr, 16)) != 0;
}

Status TracedProcess::wait_for_stops(pid_t only) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto all_stopped = [&] {
    for (const auto& t : threads_)
      if (!t.stopped && (only < 0 || t.tid == only)) return false;
    return true;
  };
  unsigned idle_polls = 0;
  while (!all_stopped()) {
    if (exec_seen_) return exec_error();  // threads of the old program never report again
    GRAFT_ASSIGN(auto report, next_report());
    if (!report) {
      if (std::chrono::steady_clock::now() > deadline)
        return make_error("threads of process {} did not stop within 10 s", pid_);
      // Now and then, forget threads that vanished without a report (exited under another thread's exec).
      if (++idle_polls % 512 == 0)
        std::erase_if(threads_, [](const Thread& t) { return !t.stopped && kill(t.tid, 0) != 0 && errno == ESRCH; });
      usleep(20);
      continue;
    }
    bool exited = false;
    handle_report(report->first, report->second, &exited);
    if (exited) return make_error("process {} exited during the update", pid_);
    if (exec_seen_) return exec_error();
  }
  return ok();
}

Error TracedProcess::exec_error() const {
  return make_error("process {} started another program (execve) during the update", pid_);
}

Result<std::vector<pid_t>> TracedProcess::wait_for_traps(std::chrono::microseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::vector<pid_t> trapped;
  while (trapped.empty() && std::chrono::steady_clock::now() < deadline) {
    GRAFT_ASSIGN(auto report, next_report());
    if (!report) {
      usleep(20);
      continue;
    }
    bool exited = false;
    Thread* t = handle_report(report->first, report->second, &exited);
    if (exited) return make_error("process {} exited during the update", pid_);
    if (exec_seen_) return exec_error();
    if (!t) continue;
    if (t->trapped_at) trapped.push_back(t->tid);
    else if (!t->group_stop) resume(*t);  // a signal or a stale stop: it runs on, nothing is held
  }
  return trapped;
}

Status TracedProcess::set_registers(const Thread& t) {
  if (ptrace(PTRACE_SETREGS, t.tid, nullptr, static_cast<const user_regs_struct*>(&t.regs)) != 0)
    return errno_error(fmt::format("PTRACE_SETREGS of thread {}", t.tid), errno);
  return ok();
}

Status TracedProcess::plant_breakpoint(RemoteAddress address) {
  if (planted_.count(address)) return ok();
  GRAFT_ASSIGN(const auto original, read(address, 1));
  // Known before it is written: a thread may hit it at once.
  ever_planted_.insert(address);
  journal_->planted(address, original[0]);
  GRAFT_TRY(write(address, std::span(&x86::kInt3, 1)));
  planted_[address] = original[0];
  return ok();
}

void TracedProcess::remove_breakpoint(RemoteAddress address) {
  auto it = planted_.find(address);
  if (it == planted_.end()) return;
  if (write(address, std::span(&it->second, 1))) journal_->removed(address);
  planted_.erase(it);
}

void TracedProcess::remove_all_breakpoints() {
  while (!planted_.empty()) remove_breakpoint(planted_.begin()->first);
}

std::optional<uint8_t> TracedProcess::breakpoint_original(RemoteAddress address) const {
  auto it = planted_.find(address);
  return it == planted_.end() ? std::nullopt : std::optional(it->second);
}

Result<Registers> TracedProcess::get_registers(pid_t tid) const {
  Registers regs;
  if (ptrace(PTRACE_GETREGS, tid, nullptr, static_cast<user_regs_struct*>(&regs)) != 0)
    return errno_error(fmt::format("PTRACE_GETREGS of thread {}", tid), errno);
  return regs;
}

// A child forked while graft is attached copied the parent's memory, our int3s
// included: they are taken out of its copy and the child is let go, untraced.
void TracedProcess::release_child(pid_t child, bool stopped) {
  if (!released_children_.insert(child).second) return;  // its stop came first: already let go
  if (!stopped) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    int status = 0;
    pid_t got = 0;
    while ((got = waitpid(child, &status, __WALL | WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
      usleep(20);
    if (got != child || !WIFSTOPPED(status)) return;
  }
  if (!planted_.empty()) {
    const int fd = open(fmt::format("/proc/{}/mem", child).c_str(), O_RDWR | O_CLOEXEC);
    for (const auto& [address, original] : planted_)
      if (fd >= 0) (void)!pwrite(fd, &original, 1, static_cast<off_t>(address.value()));
    if (fd >= 0) close(fd);
  }
  ptrace(PTRACE_DETACH, child, nullptr, nullptr);
}

void TracedProcess::hold(Thread& t) {
  // After graft died, the guardian holds nothing: the process is group-stopped or not, as graft left it.
  if (!t.stopped || t.group_stop || t.held || after_graft_) return;
  if (syscall(SYS_tgkill, pid_, t.tid, SIGSTOP) != 0) return;
  if (!held_any_) journal_->held();
  held_any_ = true;
  t.held = true;
}

void TracedProcess::hold_all() {
  for (auto& t : threads_) hold(t);
}

Status TracedProcess::release_hold(Thread& t) {
  // After an execve the thread with this ID is the new program's, and the
  // SIGSTOP went with the thread graft held.
  if (exec_seen_) t.held = false;
  for (int round = 0; t.held && t.stopped; ++round) {
    // It takes its signals on the way out of the stop; graft's SIGSTOP is
    // discarded (handle_report), another signal is kept for the program.
    if (round > 64 || ptrace(PTRACE_CONT, t.tid, nullptr, nullptr) != 0) {
      t.held = false;
      return make_error("thread {} did not take graft's SIGSTOP back", t.tid);
    }
    t.stopped = false;
    GRAFT_TRY(wait_for_stops(t.tid));
  }
  return ok();
}

void TracedProcess::resume(Thread& t) {
  if (!t.stopped) return;
  (void)release_hold(t);
  if (!t.stopped) return;
  if (t.group_stop) ptrace(PTRACE_LISTEN, t.tid, nullptr, nullptr);
  else ptrace(PTRACE_CONT, t.tid, nullptr, reinterpret_cast<void*>(static_cast<long>(t.pending_signal)));
  t.pending_signal = 0;
  t.stopped = false;
}

Status TracedProcess::resume_all() {
  for (auto& t : threads_) resume(t);
  return ok();
}

Status TracedProcess::detach() {
  if (!attached_) return ok();
  // PTRACE_DETACH needs a stopped tracee; stop whatever runs (nothing, when
  // called right after a commit with every thread stopped), then let go,
  // with no int3 of graft's left behind.
  auto stopped = stop_all();
  remove_all_breakpoints();
  for (auto& t : threads_) (void)release_hold(t);
  for (auto& t : threads_)
    ptrace(PTRACE_DETACH, t.tid, nullptr, reinterpret_cast<void*>(static_cast<long>(t.pending_signal)));
  threads_.clear();
  attached_ = false;
  return stopped;
}

Result<std::vector<uint8_t>> TracedProcess::read(RemoteAddress address, size_t size) const {
  return read_process_memory(pid_, address, size);
}

Result<std::vector<std::vector<uint8_t>>> TracedProcess::read_each(std::span<const RemoteAddress> addresses,
                                                                    size_t size) const {
  constexpr size_t kBatch = 1024;  // IOV_MAX
  std::vector<std::vector<uint8_t>> out(addresses.size(), std::vector<uint8_t>(size));
  std::vector<iovec> remote;
  for (size_t first = 0; first < addresses.size(); first += kBatch) {
    const size_t count = std::min(kBatch, addresses.size() - first);
    std::vector<uint8_t> bytes(count * size);
    remote.clear();
    for (size_t k = 0; k < count; ++k)
      remote.push_back({reinterpret_cast<void*>(addresses[first + k].value()), size});
    iovec local{bytes.data(), bytes.size()};
    const ssize_t n = process_vm_readv(pid_, &local, 1, remote.data(), count, 0);
    // Short (an address the kernel would not give): each of the rest alone, for its own error.
    const size_t whole = n > 0 ? static_cast<size_t>(n) / size : 0;
    for (size_t k = 0; k < count; ++k) {
      if (k < whole) {
        std::copy_n(bytes.begin() + static_cast<long>(k * size), size, out[first + k].begin());
        continue;
      }
      GRAFT_ASSIGN(out[first + k], read(addresses[first + k], size));
    }
  }
  return out;
}

Status TracedProcess::write(RemoteAddress at, std::span<const uint8_t> bytes) const {
  const uint64_t address = at.value();
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = pwrite(mem_fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(address + done));
    if (n <= 0) return errno_error(fmt::format("cannot write {} bytes at {:#x} in process {}", bytes.size(), address, pid_),
                                   n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
  }
  return ok();
}

Thread* TracedProcess::injection_thread() {
  for (auto& candidate : threads_)
    if (candidate.stopped && (!candidate.group_stop || after_graft_)) return &candidate;
  return nullptr;
}

Status TracedProcess::discard_queued_trap(Thread& t) {
  // Synchronous signals are taken first, but a stop the thread owes (a
  // notification, a group stop still in effect) comes before any signal:
  // a few rounds, until the SIGTRAP has gone.
  for (int round = 0; t.stopped && has_queued_trap(t.tid); ++round) {
    if (round == 8) return make_error("thread {} would not take the SIGTRAP of graft's int3 it hit", t.tid);
    if (ptrace(PTRACE_CONT, t.tid, nullptr, nullptr) != 0) return errno_error("PTRACE_CONT", errno);
    t.stopped = false;
    GRAFT_TRY(wait_for_stops(t.tid));
    if (t.pending_signal == SIGTRAP) t.pending_signal = 0;
  }
  return ok();
}

bool TracedProcess::has_queued_trap(pid_t tid) const { return graft::has_queued_trap(tid, false); }

Status TracedProcess::step_out_of(Thread& t, RemoteAddress start, RemoteAddress end) {
  constexpr int kMostSteps = 100000, kMostOtherStops = 16;
  int other_stops = 0;
  for (int step = 0; t.stopped && t.regs.rip >= start.value() && t.regs.rip < end.value(); ++step) {
    if (step == kMostSteps) return make_error("thread {} did not leave {:#x}-{:#x}", t.tid, start.value(), end.value());
    if (ptrace(PTRACE_SINGLESTEP, t.tid, nullptr, nullptr) != 0) return errno_error("PTRACE_SINGLESTEP", errno);
    t.stopped = false;
    int status = 0;
    pid_t got = 0;
    while ((got = waitpid(t.tid, &status, __WALL)) < 0 && errno == EINTR) {
    }
    if (got != t.tid || !WIFSTOPPED(status)) return make_error("thread {} ended while graft stepped it", t.tid);
    t.stopped = true;
    // A signal met on the way is the program's, delivered when it is let go;
    // the step's own trap is not.
    siginfo_t info{};
    const int sig = WSTOPSIG(status);
    const bool step_trap = sig == SIGTRAP && (status >> 16) == 0 &&
                           ptrace(PTRACE_GETSIGINFO, t.tid, nullptr, &info) == 0 && info.si_code == TRAP_TRACE;
    if (!step_trap && ++other_stops > kMostOtherStops)  // a group stop in effect, say
      return make_error("thread {} keeps stopping while graft steps it", t.tid);
    if ((status >> 16) == 0 && !step_trap && sig != SIGTRAP && !t.pending_signal) t.pending_signal = sig;
    GRAFT_ASSIGN(t.regs, get_registers(t.tid));
  }
  return ok();
}

}  // namespace graft
