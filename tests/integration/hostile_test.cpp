// Nothing the target controls is trusted: a hostile program racing graft's
// descriptors gains nothing. And the messages of a process graft may not or
// can no longer update say what happened.
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <gtest/gtest.h>

#include "../support/harness.h"

namespace graft::test {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool one_line(const std::string& text) { return !text.empty() && text.find('\n') == text.size() - 1; }

// Runs argv as nobody (uid and gid 65534, no groups), as an unprivileged user's program runs.
std::vector<std::string> as_nobody(std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"});
  return argv;
}

class Hostile : public ::testing::Test {
 protected:
  TempDir dir;
  // A directory the unprivileged target may enter, holding root's decoy.
  fs::path open_dir() {
    const fs::path d = dir.path() / "shared";
    fs::create_directories(d);
    chmod(dir.path().c_str(), 0755);
    chmod(d.c_str(), 0755);
    return d;
  }
};

// A thread of the target keeps putting a root-owned file it may read over
// the descriptor numbers graft's injected calls get next. graft never opens
// a descriptor of the target's: the decoy is never written, never left
// mapped, and an update either goes through whole or is refused with nothing
// changed.
TEST_F(Hostile, ADescriptorSwappingThreadGainsNothing) {
  const auto [v1, v2, patch] = build_update(dir, "hostile");
  const fs::path decoy = open_dir() / "decoy";
  std::string content(20000, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>('a' + i % 26);
  std::ofstream(decoy, std::ios::binary) << content;
  chmod(decoy.c_str(), 0644);

  Process target(as_nobody({v1.string(), decoy.string()}));
  ASSERT_EQ(target.ask("v"), "1");
  ASSERT_EQ(target.ask("attack"), "attacking");
  const std::string maps_path = "/proc/" + std::to_string(target.pid()) + "/maps";
  int applied = 0, refused = 0;
  for (int attempt = 0; attempt < 50; ++attempt) {
    auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "5000"});
    const std::string now = read_text(decoy);
    ASSERT_TRUE(now == content) << "graft wrote into the decoy at attempt " << attempt << ": it starts with "
                                << now.substr(0, 8) << " and holds " << now.size() << " bytes";
    if (result.exit_code == 0) {
      ++applied;
      EXPECT_EQ(target.ask("v"), "2") << "attempt " << attempt;
      const auto reverted = graft({"revert", std::to_string(target.pid())});
      ASSERT_EQ(reverted.exit_code, 0) << reverted.err;
    } else {
      ++refused;
      EXPECT_EQ(result.exit_code, 1) << result.err;
      EXPECT_TRUE(one_line(result.err)) << result.err;
      EXPECT_NE(result.err.find("nothing was changed"), std::string::npos) << result.err;
    }
    EXPECT_EQ(target.ask("v"), "1") << "attempt " << attempt;
    const std::string maps = read_text(maps_path);
    EXPECT_EQ(maps.find(decoy.string()), std::string::npos) << "the decoy is mapped after attempt " << attempt;
    EXPECT_EQ(maps.find("graft:"), std::string::npos) << "a patch region was left behind at attempt " << attempt;
  }
  ASSERT_EQ(target.ask("stop"), "stopped");
  const std::string seen = target.ask("seen");  // "<times the decoy was seen mapped> <whether it swapped>"
  EXPECT_EQ(seen.substr(seen.find(' ')), " 1") << "the swapper never ran";
  RecordProperty("applied", applied);
  RecordProperty("refused", refused);
  RecordProperty("decoy_seen_mapped", seen.substr(0, seen.find(' ')));
  std::cout << "applied " << applied << ", refused " << refused << ", decoy seen mapped (transiently) "
            << seen.substr(0, seen.find(' ')) << " times\n";
  EXPECT_TRUE(read_text(decoy) == content);
  struct stat st {};
  ASSERT_EQ(stat(decoy.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(content.size()));
  EXPECT_EQ(st.st_mode & 07777, 0644u);
}

// An unprivileged user's graft against root's process: the kernel refuses,
// and graft says so and what to do.
TEST_F(Hostile, PermissionDeniedSaysSoAndWhatToDo) {
  const auto [v1, v2, patch] = build_update(dir, "hostile");
  const fs::path decoy = open_dir() / "decoy";
  std::ofstream(decoy) << "decoy\n";
  const fs::path readable = open_dir() / "p.graft";
  fs::copy_file(patch, readable);
  chmod(readable.c_str(), 0644);
  Process target({v1.string(), decoy.string()});
  auto result = run(as_nobody({(bin_dir() / "graft").string(), "apply", std::to_string(target.pid()), readable.string()}));
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_TRUE(one_line(result.err)) << result.err;
  EXPECT_NE(result.err.find("permission denied"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("run graft as root or as the process's user"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("kernel.yama.ptrace_scope"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("no such process"), std::string::npos) << result.err;
  EXPECT_EQ(target.ask("v"), "1");
}

// Another tracer (a second graft that attached first, a debugger) holds one
// thread: graft names it instead of asking for privileges it has.
TEST_F(Hostile, AnotherTracerIsNamed) {
  const auto [v1, v2, patch] = build_update(dir, "hostile");
  const fs::path decoy = open_dir() / "decoy";
  std::ofstream(decoy) << "decoy\n";
  Process target({v1.string(), decoy.string()});
  // A thread other than the main one: what a graft that won the race to attach holds while the loser lists threads.
  pid_t held = 0;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(target.pid()) + "/task"))
    if (const pid_t tid = static_cast<pid_t>(std::stol(task.path().filename().string())); tid != target.pid()) held = tid;
  ASSERT_NE(held, 0);
  ASSERT_EQ(ptrace(PTRACE_SEIZE, held, nullptr, nullptr), 0);
  auto result = graft({"apply", std::to_string(target.pid()), patch.string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(one_line(result.err)) << result.err;
  EXPECT_NE(result.err.find("is being traced by PID " + std::to_string(getpid())), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("another graft or a debugger"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("permission denied"), std::string::npos) << result.err;
  ASSERT_EQ(ptrace(PTRACE_INTERRUPT, held, nullptr, nullptr), 0);
  waitpid(held, nullptr, __WALL);
  ASSERT_EQ(ptrace(PTRACE_DETACH, held, nullptr, nullptr), 0);
  EXPECT_EQ(target.ask("v"), "1");
  EXPECT_EQ(graft({"apply", std::to_string(target.pid()), patch.string()}).exit_code, 0);
  EXPECT_EQ(target.ask("v"), "2");
}

// The target dies in the middle of the commit (its commit-time code kills
// it): graft says the process exited, not that an update was rolled back.
TEST_F(Hostile, ATargetKilledMidCommitIsSaidToHaveExited) {
  const auto v1 = build_program(dir, "hostile", "v1");
  const auto v2 = build_program(dir, "hostile", "v2");
  const auto file = (programs_dir() / "hostile" / "update" / "killed_at_commit.c").string();
  const auto patch = diff(dir, v1, v2, "killed.graft", {"--transform", file}).patch;
  const fs::path decoy = open_dir() / "decoy";
  std::ofstream(decoy) << "decoy\n";
  Process target({v1.string(), decoy.string()});
  auto result = graft({"apply", std::to_string(target.pid()), patch.string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(one_line(result.err)) << result.err;
  EXPECT_NE(result.err.find("process " + std::to_string(target.pid()) + " exited during the update"),
            std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("rolled back"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("Input/output error"), std::string::npos) << result.err;
  EXPECT_FALSE(target.alive());
}


// tests/programs/leaver: a watcher thread exits the process or execs
// /bin/sleep once its trigger file exists; graft's test hook
// GRAFT_TEST_TRIGGER_AT creates the file at a named point of the update
// (and waits until a thread of the target is on its way out).
class TargetLeaves : public Hostile {
 protected:
  fs::path trigger() const { return dir.path() / "trigger"; }
  CommandResult apply_triggered(pid_t pid, const fs::path& patch, const std::string& point) {
    setenv("GRAFT_TEST_TRIGGER_AT", point.c_str(), 1);
    setenv("GRAFT_TEST_TRIGGER", trigger().c_str(), 1);
    auto result = run({(bin_dir() / "graft").string(), "apply", std::to_string(pid), patch.string(), "--timeout", "5000"},
                      std::chrono::seconds(60));
    unsetenv("GRAFT_TEST_TRIGGER_AT");
    unsetenv("GRAFT_TEST_TRIGGER");
    fs::remove(trigger());
    return result;
  }
  // graft's error, without the hook's own line.
  static std::string error_lines(const std::string& err) {
    std::string out;
    std::istringstream lines(err);
    for (std::string line; std::getline(lines, line);)
      if (line.find("GRAFT_TEST_TRIGGER_AT") == std::string::npos) out += line + "\n";
    return out;
  }
};

// A thread of the target exits the process (exit_group) while graft runs a
// system call in its main thread, held at the call's entry stop: the main
// thread's end is not reported until graft reaps the others, and a blocking
// wait on it never returned. graft says the process exited, in one line.
TEST_F(TargetLeaves, AnExitFromAnotherThreadWhileGraftInjectsIsSaidToBeAnExit) {
  const auto [v1, v2, patch] = build_update(dir, "leaver", {}, {"--allow-stuck-threads", "stuck"});
  Process target({v1.string(), trigger().string(), "exit"});
  const auto result = apply_triggered(target.pid(), patch, "syscall-entry:2");
  EXPECT_EQ(result.exit_code, 1) << result.err;
  const std::string error = error_lines(result.err);
  EXPECT_TRUE(one_line(error)) << result.err;
  EXPECT_NE(error.find("process " + std::to_string(target.pid()) + " exited during the update"), std::string::npos)
      << result.err;
  EXPECT_FALSE(target.alive());
}

// A thread of the target calls execve while graft works on it: while graft
// injects the patch's mapping (one thread stopped, the others running), at
// an injected call's entry stop, and while the update waits at its
// checkpoints (every thread running, int3s planted). graft says so in one
// line, and the new program has nothing of graft's: untraced, no region,
// no SIGTRAP handler, running.
TEST_F(TargetLeaves, AnExecveFromAnotherThreadIsReportedAndLeavesNothing) {
  const auto [v1, v2, patch] = build_update(dir, "leaver", {}, {"--allow-stuck-threads", "stuck"});
  for (const std::string point : {"mapped:1", "syscall-entry:2", "wait:1"}) {
    SCOPED_TRACE(point);
    Process target({v1.string(), trigger().string(), "exec", "stuck"});
    const auto result = apply_triggered(target.pid(), patch, point);
    EXPECT_EQ(result.exit_code, 1) << result.err;
    const std::string error = error_lines(result.err);
    EXPECT_TRUE(one_line(error)) << result.err;
    EXPECT_NE(error.find("process " + std::to_string(target.pid()) + " started another program (execve)"),
              std::string::npos) << result.err;
    ASSERT_TRUE(target.alive());
    const std::string proc = "/proc/" + std::to_string(target.pid());
    EXPECT_EQ(fs::read_symlink(proc + "/exe").filename(), "sleep");
    const std::string status = read_text(proc + "/status");
    EXPECT_NE(status.find("TracerPid:\t0\n"), std::string::npos) << status;
    EXPECT_EQ(status.find("State:\tt"), std::string::npos) << status;
    EXPECT_EQ(status.find("State:\tT"), std::string::npos) << status;
    const std::string maps = read_text(proc + "/maps");
    EXPECT_EQ(maps.find("graft"), std::string::npos) << maps;
  }
}

}  // namespace
}  // namespace graft::test
