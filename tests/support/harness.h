// Test support: build test programs with graft-cc, run real processes with a
// line protocol on their stdin/stdout, run the graft CLI. Every process is
// ended by its PID when its owner goes out of scope.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <string>
#include <vector>

namespace graft::test {

std::filesystem::path bin_dir();       // build/bin
std::filesystem::path programs_dir();  // tests/programs

// A fresh directory removed at destruction; GRAFT_STORE points into it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs argv (no shell) with a time limit; stdout and stderr captured apart.
CommandResult run(const std::vector<std::string>& argv, std::chrono::seconds limit = std::chrono::seconds(120));
CommandResult graft(const std::vector<std::string>& args);

// Compiles tests/programs/<name>/<version>/*.c (graft-cc) or *.cpp (graft-c++)
// into <name>-<version>/prog, once per content: the build is kept in the
// suite's cache (build/test-cache, see cache_dir()), keyed by a hash of the
// program's sources, the flags and graft-cc with its plugin, and shared by
// every test process; its build record is linked into dir's store, so `graft
// diff` finds it. Flags that name dir (a library built there) build into dir.
// The returned binary is shared: a test that changes it, or its store
// record, takes build_own_program.
std::filesystem::path build_program(const TempDir& dir, const std::string& name, const std::string& version,
                                    const std::vector<std::string>& flags = {});

// The same build, into dir (its own copy and its own store record).
std::filesystem::path build_own_program(const TempDir& dir, const std::string& name, const std::string& version,
                                        const std::vector<std::string>& flags = {});

// Which drivers build the test programs: "gcc" (graft-gcc, graft-g++) when
// GRAFT_TEST_COMPILER=gcc (ctest's gcc.* runs), else "clang" (graft-cc, graft-c++).
std::string test_compiler();

// build/test-cache: cached builds and patches, one directory per version of
// the graft tools (an older one is removed when the tools change).
std::filesystem::path cache_dir();

// `graft diff OLD NEW -o PATCH ARGS...`: the patch and what graft printed on
// stdout (--explain). When both binaries are cached builds, the patch is
// made once and cached too (keyed by them, ARGS, the contents of the files
// ARGS name, and graft); else it is written to dir/<name>. Throws if graft
// diff fails.
struct Diff {
  std::filesystem::path patch;
  std::string out;
};
Diff diff(const TempDir& dir, const std::filesystem::path& from, const std::filesystem::path& to, const std::string& name,
          const std::vector<std::string>& args = {});

// Versions v1 and v2 of a test program, and the patch between them (all cached).
struct Update {
  std::filesystem::path v1, v2, patch;
};
// `diff_args` go to graft diff (e.g. --allow-stuck-threads for a patch made to be refused at apply).
Update build_update(const TempDir& dir, const std::string& name, const std::vector<std::string>& flags = {},
                    const std::vector<std::string>& diff_args = {});

class Process {
 public:
  explicit Process(const std::vector<std::string>& argv);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  pid_t pid() const { return pid_; }
  // Sends a line and returns the reply line (throws on timeout or exit).
  std::string ask(const std::string& line, std::chrono::milliseconds limit = std::chrono::milliseconds(30000));
  std::string read_line(std::chrono::milliseconds limit = std::chrono::milliseconds(30000));
  bool alive() const;

 private:
  pid_t pid_ = -1;
  int to_child_ = -1, from_child_ = -1;
  std::string buffer_;
};

// The bytes of the named function's patchable entry (14-byte pad and 2-byte entry) in a live process.
std::vector<uint8_t> entry_bytes(pid_t pid, const std::filesystem::path& binary, const std::string& function);

// Where a function or global variable of the binary is in a live process.
uint64_t live_address(pid_t pid, const std::filesystem::path& binary, const std::string& symbol);

// The int value of a global variable in a live process.
int read_int(pid_t pid, const std::filesystem::path& binary, const std::string& variable);

// graft apply PID PATCH --json --timeout MS, run in the background.
std::future<CommandResult> apply_in_background(pid_t pid, const std::filesystem::path& patch, int timeout_ms);

// Waits until graft, running `apply`, has planted its checkpoint at the
// entry of `function` (an int3 over the entry's first byte: the update
// waits): true; false if `apply` finished first, or after 20 s.
bool checkpoint_planted(pid_t pid, const std::filesystem::path& binary, const std::string& function,
                        const std::future<CommandResult>& apply);

// Whether the process's code is byte for byte the binary's .text (no
// breakpoint, no jump left behind).
bool text_matches_binary(pid_t pid, const std::filesystem::path& binary);

// Whether `condition` holds within `limit`, asked again every few milliseconds
// (a condition waited for, never a sleep that hopes).
bool wait_until(const std::function<bool()>& condition, std::chrono::seconds limit = std::chrono::seconds(20));

}  // namespace graft::test
