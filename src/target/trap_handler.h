// A SIGTRAP handler in the target for as long as graft has int3s planted
// (src/target/trap_handler.S): should graft die, a thread reaching one of
// its int3s heals it and runs on, instead of the process ending with
// SIGTRAP. Installed in a page of its own ([anon:graft-trap-handler] in
// /proc/PID/maps), which also holds the program's own SIGTRAP action and
// the table of planted int3s with their original bytes, so that `graft
// recover` finds both without graft's journal. Removed (the program's
// action back, the page unmapped) before graft lets go of the process.
#pragma once
#include <cstdint>
#include <optional>
#include <set>

#include "target/process.h"

namespace graft {

inline constexpr char kTrapHandlerName[] = "[anon:graft-trap-handler]";

// Whether the mapping `m` of process `pid` is graft's SIGTRAP handler page:
// by its name where the kernel names anonymous memory, else (kernels
// without CONFIG_ANON_VMA_NAME, which leave it nameless) by what it holds:
// one anonymous executable page that begins with the handler's code. What
// `graft recover` and `graft status` find with no journal to say where it is.
bool is_trap_handler(pid_t pid, const MemoryMap& m);

class TrapHandler {
 public:
  // Needs a stopped thread (target/remote.h RemoteSyscalls).
  static Result<TrapHandler> install(TracedProcess& process);
  ~TrapHandler() { (void)remove(); }
  TrapHandler(TrapHandler&& other) noexcept;
  TrapHandler(const TrapHandler&) = delete;
  TrapHandler& operator=(const TrapHandler&) = delete;
  TrapHandler& operator=(TrapHandler&&) = delete;

  // The int3 about to be planted at `address` over `original`; false when
  // the table is full (the caller plants no more).
  bool add(RemoteAddress address, uint8_t original);
  RemoteAddress page() const { return page_; }
  // The program's action back, the page unmapped (a stopped thread needed).
  Status remove();

  // What a dead graft left: the handler page at `page` (size bytes) taken
  // out of the process (the program's action back, every int3 in its table
  // healed, the page unmapped), through an attachment made after graft.
  // Returns how many int3s it healed.
  static Result<size_t> remove_left(TracedProcess& process, RemoteAddress page, uint64_t size);

 private:
  TrapHandler(TracedProcess& process, RemoteAddress page) : process_(&process), page_(page) {}
  TracedProcess* process_;
  RemoteAddress page_;
  uint64_t count_ = 0;
  std::set<RemoteAddress> added_;  // in the table (an int3 removed and planted again is there once)
};

}  // namespace graft
