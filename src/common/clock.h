// Wall-clock time as graft writes it into patches and the in-target registry.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace graft {

std::string utc_timestamp();  // ISO 8601, e.g. "2026-11-22T02:49:04Z"

// Durations graft reports (pause_us, total_ms), on the steady clock.
inline uint64_t micros_since(std::chrono::steady_clock::time_point since) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - since).count());
}
inline double millis_since(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace graft
