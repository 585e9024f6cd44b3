// Test support: build test programs with graft-cc, run real processes with a
// line protocol on their stdin/stdout, run the graft CLI. Every process is
// ended by its PID when its owner goes out of scope.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <filesystem>
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

// Compiles tests/programs/<name>/<version>/*.c (graft-cc) or *.cpp (graft-c++) into <out>/<name>-<version>/prog.
std::filesystem::path build_program(const TempDir& dir, const std::string& name, const std::string& version,
                                    const std::vector<std::string>& flags = {});

// Versions v1 and v2 of a test program, and the patch between them.
struct Update {
  std::filesystem::path v1, v2, patch;
};
Update build_update(const TempDir& dir, const std::string& name, const std::vector<std::string>& flags = {});

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

// Whether the process's code is byte for byte the binary's .text (no
// breakpoint, no jump left behind).
bool text_matches_binary(pid_t pid, const std::filesystem::path& binary);

}  // namespace graft::test
