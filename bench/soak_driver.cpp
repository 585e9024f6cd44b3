// The soak benchmark's driver (bench/soak.sh): applies and reverts one patch
// CYCLES times from one long-lived process, through the same library calls
// as `graft apply` and `graft revert`, so that whatever graft itself leaks
// per update (descriptors, heap) accumulates where it can be seen.
//
//   soak_driver PID PATCH CYCLES [TIMEOUT_MS]
//
// Prints progress on stderr and, at the end, one JSON object on stdout:
// cycles run, failed applies and reverts (with the first few messages), the
// time per apply and revert, and this process's descriptors, resident memory
// and heap in use after the first cycle and after the last.
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apply/apply.h"
#include "patch/patch.h"

namespace {

struct Usage {
  size_t descriptors = 0;
  uint64_t rss_kib = 0;
  uint64_t heap_bytes = 0;
};

Usage own_usage() {
  Usage u;
  for ([[maybe_unused]] const auto& fd : std::filesystem::directory_iterator("/proc/self/fd")) ++u.descriptors;
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("VmRSS:")) u.rss_kib = std::stoull(line.substr(6));
  u.heap_bytes = mallinfo2().uordblks;
  return u;
}

nlohmann::json to_json(const Usage& u) {
  return {{"descriptors", u.descriptors}, {"rss_kib", u.rss_kib}, {"heap_bytes", u.heap_bytes}};
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: soak_driver PID PATCH CYCLES [TIMEOUT_MS]\n";
    return 2;
  }
  const pid_t pid = static_cast<pid_t>(std::stol(argv[1]));
  const int cycles = std::stoi(argv[3]);
  graft::ApplyOptions options;
  if (argc > 4) options.timeout = std::chrono::milliseconds(std::stol(argv[4]));
  auto patch = graft::read_patch(argv[2]);
  if (!patch) {
    std::cerr << "soak_driver: " << patch.error().message << "\n";
    return 2;
  }
  int failed_applies = 0, failed_reverts = 0, failed_cycles = 0;
  std::vector<std::string> errors;
  std::vector<double> apply_ms, revert_ms;
  Usage first, last;
  auto note = [&](const std::string& what, const graft::Error& e) {
    if (errors.size() < 10) errors.push_back(what + ": " + e.message);
  };
  for (int cycle = 1; cycle <= cycles; ++cycle) {
    bool failed = false;
    auto applied = graft::apply_patch(pid, *patch, options);
    if (applied) {
      apply_ms.push_back(applied->total_ms);
      // A revert refused (no safe moment in time) is tried again: the patch must not stay.
      bool reverted = false;
      for (int attempt = 0; attempt < 3 && !reverted; ++attempt) {
        auto r = graft::revert_latest(pid, options);
        if (r) {
          revert_ms.push_back(r->total_ms);
          reverted = true;
        } else {
          ++failed_reverts;
          note(fmt::format("cycle {} revert", cycle), r.error());
          failed = true;
        }
      }
      if (!reverted) {
        std::cerr << "soak_driver: the patch could not be reverted at cycle " << cycle << "; stopping\n";
        failed_cycles += failed;
        break;
      }
    } else {
      ++failed_applies;
      note(fmt::format("cycle {} apply", cycle), applied.error());
      failed = true;
    }
    failed_cycles += failed;
    if (cycle == 1) first = own_usage();
    if (cycle % 100 == 0)
      std::cerr << "soak_driver: " << cycle << " cycles, " << failed_cycles << " failed, heap in use "
                << own_usage().heap_bytes << " bytes\n";
    if (auto left = graft::list_applied(pid); left && !left->empty()) {
      std::cerr << "soak_driver: a patch is still applied after cycle " << cycle << "; stopping\n";
      ++failed_cycles;
      break;
    }
  }
  last = own_usage();
  nlohmann::json out = {{"cycles", cycles},
                        {"failed_cycles", failed_cycles},
                        {"failed_applies", failed_applies},
                        {"failed_reverts", failed_reverts},
                        {"errors", errors},
                        {"apply_ms_median", median(apply_ms)},
                        {"revert_ms_median", median(revert_ms)},
                        {"graft_after_first_cycle", to_json(first)},
                        {"graft_after_last_cycle", to_json(last)}};
  std::cout << out.dump(2) << std::endl;
  return failed_cycles == 0 ? 0 : 1;
}
