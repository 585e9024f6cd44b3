#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "elf/elf_file.h"
#include "target/process.h"

extern char** environ;

namespace graft::test {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

fs::path bin_dir() { return GRAFT_TEST_BIN_DIR; }
fs::path programs_dir() { return GRAFT_TEST_PROGRAMS_DIR; }

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "graft-test-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
  setenv("GRAFT_STORE", (path_ / "store").c_str(), 1);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

namespace {

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

void drain(int fd, std::string& into) {
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) into.append(buf, static_cast<size_t>(n));
}

}  // namespace

CommandResult run(const std::vector<std::string>& argv, std::chrono::seconds limit) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = -1;
  auto args = c_argv(argv);
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  close(err[1]);
  CommandResult result;
  if (rc != 0) {
    close(out[0]);
    close(err[0]);
    result.err = "cannot run " + argv[0] + ": " + std::strerror(rc);
    return result;
  }
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(err[0], F_SETFL, O_NONBLOCK);
  const auto deadline = Clock::now() + limit;
  int status = 0;
  for (;;) {
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    poll(fds, 2, 50);
    drain(out[0], result.out);
    drain(err[0], result.err);
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    if (Clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.err += "\n(test harness: killed after the time limit)";
      break;
    }
  }
  drain(out[0], result.out);
  drain(err[0], result.err);
  close(out[0]);
  close(err[0]);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

CommandResult graft(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {(bin_dir() / "graft").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

fs::path build_program(const TempDir& dir, const std::string& name, const std::string& version,
                       const std::vector<std::string>& flags) {
  const fs::path source = programs_dir() / name / version;
  const fs::path out = dir.path() / (name + "-" + version);
  fs::create_directories(out);
  // Copy the sources so each version is its own source tree, as two release tarballs are.
  for (const auto& entry : fs::directory_iterator(source)) fs::copy_file(entry.path(), out / entry.path().filename());
  std::vector<std::string> sources;
  bool cxx = false;
  for (const auto& entry : fs::directory_iterator(out)) {
    const auto ext = entry.path().extension();
    if (ext == ".c" || ext == ".cpp") sources.push_back(entry.path().string());
    cxx |= ext == ".cpp";
  }
  std::vector<std::string> argv = {(bin_dir() / (cxx ? "graft-c++" : "graft-cc")).string(), "-O2", "-pthread"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(), sources.begin(), sources.end());
  argv.push_back("-o");
  argv.push_back((out / "prog").string());
  auto result = run(argv);
  if (result.exit_code != 0) throw std::runtime_error("graft-cc failed for " + name + "/" + version + ": " + result.err);
  return out / "prog";
}

Update build_update(const TempDir& dir, const std::string& name, const std::vector<std::string>& flags) {
  Update update{build_program(dir, name, "v1", flags), build_program(dir, name, "v2", flags),
                dir.path() / (name + ".graft")};
  auto diff = graft({"diff", update.v1.string(), update.v2.string(), "-o", update.patch.string()});
  if (diff.exit_code != 0) throw std::runtime_error("graft diff failed for " + name + ": " + diff.err);
  return update;
}

Process::Process(const std::vector<std::string>& argv) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  auto args = c_argv(argv);
  const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]);
  close(out[1]);
  to_child_ = in[1];
  from_child_ = out[0];
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0]);
  const std::string ready = read_line();
  if (ready.rfind("ready", 0) != 0) throw std::runtime_error("unexpected first line: " + ready);
}

Process::~Process() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    // A test that traced the process itself may hold its threads' exits:
    // reap those too (the leader's exit waits for them), within 10 s.
    const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (waitpid(pid_, nullptr, WNOHANG) == 0 && std::chrono::steady_clock::now() < limit) {
      std::error_code gone;
      for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid_) + "/task", gone))
        waitpid(static_cast<pid_t>(std::stol(task.path().filename().string())), nullptr, __WALL | WNOHANG);
      usleep(1000);
    }
  }
  close(to_child_);
  close(from_child_);
}

bool Process::alive() const {
  int status = 0;
  return waitpid(pid_, &status, WNOHANG) == 0;
}

std::string Process::read_line(std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  for (;;) {
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) throw std::runtime_error("no reply from the target within the time limit");
    pollfd p{from_child_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    const ssize_t n = read(from_child_, buf, sizeof buf);
    if (n <= 0) throw std::runtime_error("the target closed its output (did it crash?)");
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

std::string Process::ask(const std::string& line, std::chrono::milliseconds limit) {
  const std::string text = line + "\n";
  if (write(to_child_, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    throw std::runtime_error("cannot write to the target");
  return read_line(limit);
}

namespace {

uint64_t load_bias(pid_t pid, const ElfFile& elf, const fs::path& binary) {
  if (elf.type() != 3 /* ET_DYN */) return 0;
  auto maps = read_maps(pid);
  for (const auto& m : maps.value())
    if (m.offset == 0 && fs::path(m.path) == fs::canonical(binary)) return m.start - elf.load_address();
  throw std::runtime_error("the binary is not mapped in process " + std::to_string(pid));
}

}  // namespace

uint64_t live_address(pid_t pid, const fs::path& binary, const std::string& symbol) {
  auto elf = ElfFile::open(binary);
  if (!elf) throw std::runtime_error(elf.error().message);
  for (const auto& s : elf.value()->symbols())
    if (s.name == symbol && (s.type == 1 /* STT_OBJECT */ || s.type == 2 /* STT_FUNC */) && s.value)
      return load_bias(pid, *elf.value(), binary) + s.value;
  throw std::runtime_error("no symbol " + symbol + " in " + binary.string());
}

int read_int(pid_t pid, const fs::path& binary, const std::string& variable) {
  auto bytes = read_process_memory(pid, RemoteAddress(live_address(pid, binary, variable)), sizeof(int));
  if (!bytes) throw std::runtime_error(bytes.error().message);
  int value = 0;
  std::memcpy(&value, bytes->data(), sizeof value);
  return value;
}

bool text_matches_binary(pid_t pid, const fs::path& binary) {
  auto elf = ElfFile::open(binary);
  if (!elf) throw std::runtime_error(elf.error().message);
  const ElfSection* text = elf.value()->section(".text");
  if (!text) throw std::runtime_error("no .text in " + binary.string());
  auto live = read_process_memory(pid, RemoteAddress(load_bias(pid, *elf.value(), binary) + text->addr), text->size);
  if (!live) throw std::runtime_error(live.error().message);
  return std::equal(text->data.begin(), text->data.end(), live->begin(), live->end());
}

std::vector<uint8_t> entry_bytes(pid_t pid, const fs::path& binary, const std::string& function) {
  auto bytes = read_process_memory(pid, RemoteAddress(live_address(pid, binary, function) - 14), 16);
  if (!bytes) throw std::runtime_error(bytes.error().message);
  return bytes.value();
}

}  // namespace graft::test
