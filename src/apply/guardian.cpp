#include "apply/guardian.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "apply/recover.h"
#include "common/kill_point.h"

namespace graft {
namespace {

void say(const std::string& line) {
  const std::string text = "graft-guardian: " + line + "\n";
  (void)!write(STDERR_FILENO, text.data(), text.size());
}

// Every descriptor but these is closed: the guardian must not keep graft's
// pipes (or the target's) open.
void close_all_but(std::initializer_list<int> keep) {
  std::vector<int> open_fds;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') open_fds.push_back(std::atoi(e->d_name));
    closedir(d);
  }
  for (int fd : open_fds)
    if (fd > STDERR_FILENO && std::find(keep.begin(), keep.end(), fd) == keep.end()) close(fd);
}

// The guardian's life: wait for the end of the update (EOF on `done_fd`); if
// the journal does not say it finished, graft died: put the target right.
[[noreturn]] void guard(int journal_fd, int done_fd, int graft_pidfd, pid_t graft, pid_t target) {
  pollfd p{done_fd, POLLIN, 0};
  while (poll(&p, 1, -1) < 0 && errno == EINTR) {
  }
  auto state = Journal::read(journal_fd);
  if (state && state->finished) _exit(0);
  // graft is gone (or going): wait until it has exited, so that its tracing has ended.
  pollfd g{graft_pidfd, POLLIN, 0};
  while (poll(&g, 1, 10000) < 0 && errno == EINTR) {
  }
  state = Journal::read(journal_fd);  // its last records
  if (!state) {
    say(fmt::format("graft (PID {}) died during an update of process {}, and its journal cannot be read: {}; run "
                    "graft recover {}", graft, target, state.error().message, target));
    _exit(1);
  }
  if (state->finished) _exit(0);
  auto report = recover(target, &state.value());
  if (!report) {
    say(fmt::format("graft (PID {}) died during an update of process {}; putting it right failed: {}", graft, target,
                    report.error().message));
    _exit(1);
  }
  say(fmt::format("graft (PID {}) died during an update of process {}: {}", graft, target,
                  report->done.empty() ? "nothing to undo" : "put right"));
  for (const auto& line : report->done) say("  " + line);
  _exit(0);
}

}  // namespace

Result<Guardian> Guardian::start(const Journal& journal, pid_t target) {
  int done[2], ready[2];
  if (pipe2(done, O_CLOEXEC) != 0) return errno_error("cannot start the update's guardian", errno);
  if (pipe2(ready, O_CLOEXEC) != 0) {
    close(done[0]);
    close(done[1]);
    return errno_error("cannot start the update's guardian", errno);
  }
  const pid_t graft = getpid();
  const int graft_pidfd = static_cast<int>(syscall(SYS_pidfd_open, graft, 0));
  const pid_t middle = fork();
  if (middle < 0) return errno_error("cannot start the update's guardian", errno);
  if (middle == 0) {
    // Not graft's child (its waitpid(-1) is for the target's threads), and in
    // a session of its own: a kill of graft's process group spares it.
    setsid();
    const pid_t guardian = fork();
    if (guardian != 0) _exit(guardian < 0 ? 1 : 0);
    signal(SIGPIPE, SIG_IGN);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) signal(s, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    prctl(PR_SET_NAME, "graft-guardian");
    disable_kill_points();
    const int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, STDIN_FILENO);
      dup2(null, STDOUT_FILENO);
    }
    close(done[1]);
    close(ready[0]);
    close_all_but({journal.fd(), done[0], ready[1], graft_pidfd});
    const pid_t self = getpid();
    (void)!write(ready[1], &self, sizeof self);
    close(ready[1]);
    guard(journal.fd(), done[0], graft_pidfd, graft, target);
  }
  close(done[0]);
  close(ready[1]);
  if (graft_pidfd >= 0) close(graft_pidfd);
  int status = 0;
  while (waitpid(middle, &status, 0) < 0 && errno == EINTR) {
  }
  pid_t guardian = 0;
  const ssize_t n = read(ready[0], &guardian, sizeof guardian);
  close(ready[0]);
  if (n != sizeof guardian) {
    close(done[1]);
    return make_error("the update's guardian did not start");
  }
  set_kill_point_guardian(guardian);
  set_kill_point_target(target);
  return Guardian(guardian, done[1]);
}

Guardian::~Guardian() {
  if (done_fd_ < 0) return;  // moved from
  close(done_fd_);
  set_kill_point_guardian(0);
  set_kill_point_target(0);
}

}  // namespace graft
