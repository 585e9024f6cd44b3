#include "common/kill_point.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "common/task_state.h"

namespace graft {
namespace {

// A point named in an environment variable: <phase>[:<n>].
struct PointAt {
  std::string phase;  // "" : the hook is off
  long nth = 1;
  long seen = 0;

  explicit PointAt(const char* variable) {
    const char* env = std::getenv(variable);
    if (!env || !*env) return;
    std::string text = env;
    if (const auto colon = text.find(':'); colon != std::string::npos) {
      nth = std::max(1L, std::strtol(text.c_str() + colon + 1, nullptr, 10));
      text.resize(colon);
    }
    phase = text;
  }
  // Whether this pass of `at` is the one named.
  bool reached(const char* at) { return !phase.empty() && phase == at && ++seen == nth; }
};

PointAt& kill_at() {
  static PointAt k("GRAFT_TEST_KILL_AT");
  return k;
}
PointAt& trigger_at() {
  static PointAt t("GRAFT_TEST_TRIGGER_AT");
  return t;
}

pid_t guardian_pid = 0, target_pid = 0;

}  // namespace

void set_kill_point_guardian(pid_t guardian) { guardian_pid = guardian; }

void set_kill_point_target(pid_t target) { target_pid = target; }

void disable_kill_points() {
  kill_at().phase.clear();
  trigger_at().phase.clear();
}

void kill_point(const char* phase) {
  if (PointAt& t = trigger_at(); t.reached(phase)) {
    const char* path = std::getenv("GRAFT_TEST_TRIGGER");
    const std::string line = fmt::format("graft: GRAFT_TEST_TRIGGER_AT: {} created at {}:{}\n", path ? path : "(none)",
                                         phase, t.nth);
    (void)!write(STDERR_FILENO, line.data(), line.size());
    if (path) close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    for (const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
         target_pid > 0 && !any_task_exiting(target_pid) && std::chrono::steady_clock::now() < until;)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  PointAt& k = kill_at();
  if (!k.reached(phase)) return;
  const bool guardian_too = guardian_pid > 0 && std::getenv("GRAFT_TEST_KILL_GUARDIAN");
  const std::string line = fmt::format("graft: GRAFT_TEST_KILL_AT: killed at {}:{} (guardian {}{})\n", phase, k.nth,
                                       guardian_pid, guardian_too ? ", killed first" : "");
  (void)!write(STDERR_FILENO, line.data(), line.size());
  // SIGKILL is pending in the guardian once kill returns: it runs nothing more.
  if (guardian_too) kill(guardian_pid, SIGKILL);
  raise(SIGKILL);
}

}  // namespace graft
