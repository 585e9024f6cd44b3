#include "common/kill_point.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <fmt/format.h>

namespace graft {
namespace {

struct KillAt {
  std::string phase;  // "" : the hook is off
  long nth = 1;
  long seen = 0;
};

KillAt& kill_at() {
  static KillAt k = [] {
    KillAt parsed;
    const char* env = std::getenv("GRAFT_TEST_KILL_AT");
    if (!env || !*env) return parsed;
    std::string text = env;
    if (const auto colon = text.find(':'); colon != std::string::npos) {
      parsed.nth = std::max(1L, std::strtol(text.c_str() + colon + 1, nullptr, 10));
      text.resize(colon);
    }
    parsed.phase = text;
    return parsed;
  }();
  return k;
}

pid_t guardian_pid = 0;

}  // namespace

void set_kill_point_guardian(pid_t guardian) { guardian_pid = guardian; }

void disable_kill_points() { kill_at().phase.clear(); }

void kill_point(const char* phase) {
  KillAt& k = kill_at();
  if (k.phase.empty() || k.phase != phase || ++k.seen != k.nth) return;
  const std::string line = fmt::format("graft: GRAFT_TEST_KILL_AT: killed at {}:{} (guardian {})\n", phase, k.nth,
                                       guardian_pid);
  (void)!write(STDERR_FILENO, line.data(), line.size());
  raise(SIGKILL);
}

}  // namespace graft
