#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fmt/format.h>
#include <fstream>
#include <functional>
#include <iterator>
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

namespace {

// FNV-1a, 64 bits: a content key for the cache (not a defence against anyone).
class Hasher {
 public:
  Hasher& add(std::string_view bytes) {
    for (const char c : bytes) h_ = (h_ ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
    // Each part's length too, so that ("ab", "c") and ("a", "bc") differ.
    const uint64_t size = bytes.size();
    for (int i = 0; i < 8; ++i) h_ = (h_ ^ ((size >> (8 * i)) & 0xff)) * 0x100000001b3ull;
    return *this;
  }
  Hasher& add_file(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + file.string());
    return add(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
  }
  // Every regular file below `root` (sorted, by relative name and content) for which `take` holds.
  Hasher& add_tree(const fs::path& root, const std::function<bool(const fs::path&)>& take) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(root))
      if (entry.is_regular_file() && take(entry.path().lexically_relative(root))) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) add(f.lexically_relative(root).string()).add_file(f);
    return *this;
  }
  std::string hex() const { return fmt::format("{:016x}", h_); }

 private:
  uint64_t h_ = 0xcbf29ce484222325ull;
};

// An exclusive flock(2) on `file`, held for the object's life (and dropped by
// the kernel if the process dies).
class FileLock {
 public:
  explicit FileLock(const fs::path& file) : fd_(open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    if (fd_ < 0) throw std::runtime_error("cannot open " + file.string() + ": " + std::strerror(errno));
    while (flock(fd_, LOCK_EX) != 0)
      if (errno != EINTR) throw std::runtime_error("cannot lock " + file.string() + ": " + std::strerror(errno));
  }
  ~FileLock() { close(fd_); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

// What the cached builds depend on besides their sources: the drivers, the
// plugin, graft.h as they find it, and the compilers.
std::string tools_hash() {
  static const std::string hash = [] {
    Hasher h;
    const fs::path prefix = bin_dir().parent_path();
    for (const fs::path& f : {bin_dir() / "graft-cc", bin_dir() / "graft-c++", bin_dir() / "graft-gcc",
                              bin_dir() / "graft-g++", prefix / "lib" / "graft-pass.so",
                              prefix / "include" / "graft" / "graft.h"})
      h.add(f.string()).add_file(f);
    for (const char* compiler : {"/usr/bin/clang-14", "/usr/bin/gcc-12", "/usr/bin/g++-12"}) {
      std::error_code ec;
      const fs::path path = fs::canonical(compiler, ec);
      if (!ec) h.add(path.string()).add(std::to_string(fs::file_size(path, ec)));
    }
    return h.hex();
  }();
  return hash;
}

const std::string& graft_hash() {
  static const std::string hash = Hasher().add_file(bin_dir() / "graft").hex();
  return hash;
}

// The cache entry `key` (a directory under cache_dir()), made by `make` the
// first time. Test processes run concurrently: one makes an entry while the
// others wait on its lock; an entry is complete once its "done" file exists
// (written last, by a rename), and one a killed maker left half-made is made
// again from scratch. Builds stay where they were made: the store records and
// the binaries' debug information name their paths.
fs::path cached(const std::string& key, const std::function<void(const fs::path&)>& make) {
  const fs::path entry = cache_dir() / key;
  if (fs::exists(entry / "done")) return entry;
  FileLock lock(entry.string() + ".lock");
  if (fs::exists(entry / "done")) return entry;
  fs::remove_all(entry);
  fs::create_directories(entry);
  make(entry);
  std::ofstream(entry / "done.tmp") << key << "\n";
  fs::rename(entry / "done.tmp", entry / "done");
  return entry;
}

bool inside(const fs::path& path, const fs::path& dir) {
  const std::string p = path.lexically_normal().string(), d = dir.lexically_normal().string() + "/";
  return p.rfind(d, 0) == 0;
}

// Copies the sources of tests/programs/<name>/<version> into <out>/<name>-<version>
// (each version its own source tree, as two release tarballs are) and
// compiles them there with graft-cc, recording the build in `store`.
fs::path compile(const fs::path& out_dir, const std::string& name, const std::string& version,
                 const std::vector<std::string>& flags, const fs::path& store) {
  const fs::path source = programs_dir() / name / version;
  const fs::path out = out_dir / (name + "-" + version);
  fs::create_directories(out);
  for (const auto& entry : fs::directory_iterator(source)) fs::copy_file(entry.path(), out / entry.path().filename());
  std::vector<std::string> sources;
  bool cxx = false;
  for (const auto& entry : fs::directory_iterator(out)) {
    const auto ext = entry.path().extension();
    if (ext == ".c" || ext == ".cpp") sources.push_back(entry.path().string());
    cxx |= ext == ".cpp";
  }
  std::sort(sources.begin(), sources.end());
  const bool gcc = test_compiler() == "gcc";
  const std::string driver = gcc ? (cxx ? "graft-g++" : "graft-gcc") : (cxx ? "graft-c++" : "graft-cc");
  std::vector<std::string> argv = {"/usr/bin/env", "GRAFT_STORE=" + store.string(), (bin_dir() / driver).string(),
                                   "-O2", "-pthread"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(), sources.begin(), sources.end());
  argv.push_back("-o");
  argv.push_back((out / "prog").string());
  auto result = run(argv);
  if (result.exit_code != 0) throw std::runtime_error(driver + " failed for " + name + "/" + version + ": " + result.err);
  return out / "prog";
}

fs::path store_of(const TempDir& dir) { return dir.path() / "store"; }

}  // namespace

std::string test_compiler() {
  const char* env = std::getenv("GRAFT_TEST_COMPILER");
  return env && std::string(env) == "gcc" ? "gcc" : "clang";
}

fs::path cache_dir() {
  static const fs::path dir = [] {
    const fs::path root = GRAFT_TEST_CACHE_DIR;
    const fs::path mine = root / tools_hash();
    if (fs::exists(mine)) return mine;
    fs::create_directories(root);
    FileLock lock(root / "tools.lock");
    // The tools changed: what was built with the old ones goes.
    for (const auto& entry : fs::directory_iterator(root))
      if (entry.is_directory() && entry.path() != mine) fs::remove_all(entry.path());
    fs::create_directories(mine);
    return mine;
  }();
  return dir;
}

fs::path build_own_program(const TempDir& dir, const std::string& name, const std::string& version,
                           const std::vector<std::string>& flags) {
  return compile(dir.path(), name, version, flags, store_of(dir));
}

fs::path build_program(const TempDir& dir, const std::string& name, const std::string& version,
                       const std::vector<std::string>& flags) {
  for (const auto& f : flags)
    if (f.find(dir.path().string()) != std::string::npos) return build_own_program(dir, name, version, flags);
  // The version's sources and whatever else the program keeps beside its versions (shared headers).
  const fs::path program = programs_dir() / name;
  Hasher key;
  key.add(name).add(version).add(test_compiler());
  for (const auto& f : flags) key.add(f);
  key.add_tree(program, [&](const fs::path& relative) {
    const std::string top = relative.begin()->string();
    const bool a_version = top.size() > 1 && top[0] == 'v' && std::all_of(top.begin() + 1, top.end(), ::isdigit);
    return !a_version || top == version;
  });
  const fs::path entry = cached("prog-" + name + "-" + version + "-" + key.hex(), [&](const fs::path& out) {
    compile(out, name, version, flags, out / "store");
  });
  // Its build record, for graft diff in this test.
  fs::create_directories(store_of(dir));
  for (const auto& record : fs::directory_iterator(entry / "store")) {
    const fs::path link = store_of(dir) / record.path().filename();
    std::error_code exists;
    fs::create_directory_symlink(record.path(), link, exists);
  }
  return entry / (name + "-" + version) / "prog";
}

Diff diff(const TempDir& dir, const fs::path& from, const fs::path& to, const std::string& name,
          const std::vector<std::string>& args) {
  auto make = [&](const fs::path& patch) {
    std::vector<std::string> argv = {"diff", from.string(), to.string(), "-o", patch.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto result = graft(argv);
    if (result.exit_code != 0) throw std::runtime_error("graft diff " + from.string() + " " + to.string() + ": " + result.err);
    return result.out;
  };
  if (!inside(from, cache_dir()) || !inside(to, cache_dir())) {
    const fs::path patch = dir.path() / name;
    return {patch, make(patch)};
  }
  Hasher key;
  key.add(from.string()).add(to.string()).add(graft_hash());
  for (const auto& a : args) {
    key.add(a);
    std::error_code ec;
    if (fs::is_regular_file(a, ec)) key.add_file(a);
  }
  const fs::path entry = cached("patch-" + key.hex(), [&](const fs::path& out) {
    std::ofstream(out / "stdout") << make(out / "patch.graft");
  });
  std::ifstream in(entry / "stdout");
  return {entry / "patch.graft", std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>())};
}

Update build_update(const TempDir& dir, const std::string& name, const std::vector<std::string>& flags,
                    const std::vector<std::string>& diff_args) {
  const fs::path v1 = build_program(dir, name, "v1", flags), v2 = build_program(dir, name, "v2", flags);
  return {v1, v2, diff(dir, v1, v2, name + ".graft", diff_args).patch};
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
  // A target that died fails the test; its closed pipe must not end the test with SIGPIPE.
  sigset_t pipe_signal, before;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, &before);
  const ssize_t n = write(to_child_, text.data(), text.size());
  const int err = errno;
  if (n < 0 && err == EPIPE) {
    const timespec now{};
    sigtimedwait(&pipe_signal, nullptr, &now);
  }
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
  if (n != static_cast<ssize_t>(text.size()))
    throw std::runtime_error(err == EPIPE ? "the target has exited" : "cannot write to the target");
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

std::future<CommandResult> apply_in_background(pid_t pid, const fs::path& patch, int timeout_ms) {
  return std::async(std::launch::async, [=] {
    return graft({"apply", std::to_string(pid), patch.string(), "--json", "--timeout", std::to_string(timeout_ms)});
  });
}

bool checkpoint_planted(pid_t pid, const fs::path& binary, const std::string& function,
                        const std::future<CommandResult>& apply) {
  for (const auto until = Clock::now() + std::chrono::seconds(20); Clock::now() < until;) {
    if (entry_bytes(pid, binary, function)[14] == 0xcc) return true;
    if (apply.wait_for(std::chrono::milliseconds(2)) == std::future_status::ready) return false;
  }
  return false;
}

std::vector<uint8_t> entry_bytes(pid_t pid, const fs::path& binary, const std::string& function) {
  auto bytes = read_process_memory(pid, RemoteAddress(live_address(pid, binary, function) - 14), 16);
  if (!bytes) throw std::runtime_error(bytes.error().message);
  return bytes.value();
}

bool wait_until(const std::function<bool()>& condition, std::chrono::seconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace graft::test
