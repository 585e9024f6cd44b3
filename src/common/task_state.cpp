#include "common/task_state.h"

#include <sys/syscall.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>

namespace graft {
namespace {

bool stat_says_exiting(const std::filesystem::path& stat_path) {
  std::ifstream in(stat_path);
  std::string stat;
  if (!std::getline(in, stat)) return true;
  std::istringstream fields(stat.substr(stat.rfind(')') + 1));  // after the name, which may hold anything
  std::string state;
  int64_t ppid = 0, group = 0, session = 0, tty = 0, terminal_group = 0;
  uint64_t flags = 0;
  fields >> state >> ppid >> group >> session >> tty >> terminal_group >> flags;
  constexpr uint64_t kExiting = 0x4;  // PF_EXITING
  return state == "Z" || state == "X" || (flags & kExiting);
}

// Whether `exiting` holds for any (want_all false) or every (true) thread.
bool tasks_exiting(pid_t pid, bool want_all) {
  std::error_code error;
  std::filesystem::directory_iterator tasks(fmt::format("/proc/{}/task", pid), error);
  if (error) return true;
  for (const auto& task : tasks)
    if (stat_says_exiting(task.path() / "stat") != want_all) return !want_all;
  return want_all;
}

}  // namespace

bool task_exiting(pid_t pid, pid_t tid) { return stat_says_exiting(fmt::format("/proc/{}/task/{}/stat", pid, tid)); }

bool any_task_exiting(pid_t pid) { return tasks_exiting(pid, false); }

bool every_task_exiting(pid_t pid) { return tasks_exiting(pid, true); }

bool task_in_execve(pid_t pid) {
  std::error_code error;
  std::filesystem::directory_iterator tasks(fmt::format("/proc/{}/task", pid), error);
  if (error) return false;
  for (const auto& task : tasks) {
    if (stat_says_exiting(task.path() / "stat")) continue;
    // "NR args... sp pc" while it is blocked in a call, "running" otherwise.
    std::ifstream in(task.path() / "syscall");
    long number = -1;
    if (in >> number && (number == SYS_execve || number == SYS_execveat)) return true;
  }
  return false;
}

}  // namespace graft
