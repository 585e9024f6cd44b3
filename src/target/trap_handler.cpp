#include "target/trap_handler.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

#include "target/remote.h"
#include "target/x86.h"

extern "C" const uint8_t graft_trap_handler_start[], graft_trap_handler_end[];
extern "C" const uint64_t graft_trap_handler_layout[7];

namespace graft {
namespace {

constexpr uint64_t kPage = 4096;
enum Part { kHandler, kRestorer, kOldAction, kNewAction, kCount, kEntries, kName };
uint64_t offset(Part p) { return graft_trap_handler_layout[p]; }
uint64_t capacity() { return (kPage - offset(kEntries)) / 16; }
// In the old action's handler field until the kernel wrote the program's
// action there: nothing to put back.
constexpr uint64_t kNotYetInstalled = ~uint64_t{0};
constexpr uint64_t kSaRestorer = 0x04000000;  // the kernel's SA_RESTORER, which glibc does not export

// The program's own SIGTRAP action back, if the handler was installed.
Status restore_action(TracedProcess& process, RemoteSyscalls& syscalls, RemoteAddress page) {
  GRAFT_ASSIGN(auto old, process.read(page + offset(kOldAction), 8));
  uint64_t handler = 0;
  std::memcpy(&handler, old.data(), 8);
  if (handler == kNotYetInstalled) return ok();
  GRAFT_TRY(syscalls.checked("put the program's SIGTRAP action back", SYS_rt_sigaction,
                             {SIGTRAP, (page + offset(kOldAction)).value(), 0, 8, 0, 0}));
  return ok();
}

}  // namespace

bool is_trap_handler(pid_t pid, const MemoryMap& m) {
  if (m.path == kTrapHandlerName) return true;
  if (!m.path.empty() || m.inode != 0 || m.end - m.start != kPage || m.perms.find('x') == std::string::npos) return false;
  // The handler and its restorer come first; the actions and the table after them change.
  const size_t code = offset(kOldAction);
  auto bytes = read_process_memory(pid, RemoteAddress(m.start), code);
  return bytes && std::equal(bytes->begin(), bytes->end(), graft_trap_handler_start);
}

Result<TrapHandler> TrapHandler::install(TracedProcess& process) {
  RemoteAddress page;
  GRAFT_TRY(with_syscalls(process, [&](RemoteSyscalls& syscalls) -> Status {
    GRAFT_ASSIGN(auto mapping, RemoteMapping::anonymous(syscalls, kPage, "graft's SIGTRAP handler"));
    page = mapping.start();
    std::vector<uint8_t> bytes(graft_trap_handler_start, graft_trap_handler_end);
    bytes.resize(kPage, 0);
    const uint64_t action[4] = {(page + offset(kHandler)).value(), SA_SIGINFO | SA_RESTART | kSaRestorer,
                                (page + offset(kRestorer)).value(), 0};
    std::memcpy(bytes.data() + offset(kNewAction), action, sizeof action);
    std::memcpy(bytes.data() + offset(kOldAction), &kNotYetInstalled, 8);
    GRAFT_TRY(process.write(page, bytes));
    // Named, so that `graft recover` finds it (no name on kernels without CONFIG_ANON_VMA_NAME).
    (void)syscalls.call(SYS_prctl, {PR_SET_VMA, PR_SET_VMA_ANON_NAME, page.value(), kPage,
                                    (page + offset(kName)).value(), 0});
    process.journal().trap_handler(page, kPage);
    GRAFT_TRY(syscalls.checked("install graft's SIGTRAP handler", SYS_rt_sigaction,
                               {SIGTRAP, (page + offset(kNewAction)).value(), (page + offset(kOldAction)).value(), 8,
                                0, 0}));
    GRAFT_TRY(syscalls.checked("protect graft's SIGTRAP handler", SYS_mprotect,
                               {page.value(), kPage, PROT_READ | PROT_EXEC, 0, 0, 0}));
    mapping.keep();  // the TrapHandler's now
    return ok();
  }));
  return TrapHandler(process, page);
}

TrapHandler::TrapHandler(TrapHandler&& other) noexcept
    : process_(other.process_), page_(other.page_), count_(other.count_), added_(std::move(other.added_)) {
  other.process_ = nullptr;
}

bool TrapHandler::add(RemoteAddress address, uint8_t original) {
  if (!process_) return false;
  if (added_.count(address)) return true;
  if (count_ >= capacity()) return false;
  const uint64_t entry[2] = {address.value(), original};
  if (!process_->write(page_ + offset(kEntries) + 16 * count_, std::span(reinterpret_cast<const uint8_t*>(entry), 16)))
    return false;
  const uint64_t count = count_ + 1;  // the entry is whole before the handler may read it
  if (!process_->write(page_ + offset(kCount), std::span(reinterpret_cast<const uint8_t*>(&count), 8))) return false;
  count_ = count;
  added_.insert(address);
  return true;
}

Status TrapHandler::remove() {
  if (!process_) return ok();
  TracedProcess& process = *process_;
  process_ = nullptr;
  GRAFT_TRY(with_syscalls(process, [&](RemoteSyscalls& syscalls) -> Status {
    return restore_action(process, syscalls, page_);
  }));
  process.journal().trap_handler_removed();
  return RemoteMapping(process, page_, kPage).unmap();
}

Result<size_t> TrapHandler::remove_left(TracedProcess& process, RemoteAddress page, uint64_t size) {
  GRAFT_ASSIGN(auto count_bytes, process.read(page + offset(kCount), 8));
  uint64_t count = 0;
  std::memcpy(&count, count_bytes.data(), 8);
  size_t healed = 0;
  for (uint64_t i = 0; i < std::min(count, capacity()); ++i) {
    GRAFT_ASSIGN(auto entry, process.read(page + offset(kEntries) + 16 * i, 16));
    uint64_t address = 0, original = 0;
    std::memcpy(&address, entry.data(), 8);
    std::memcpy(&original, entry.data() + 8, 8);
    auto now = process.read(RemoteAddress(address), 1);
    if (!now || (*now)[0] != x86::kInt3) continue;
    const uint8_t byte = static_cast<uint8_t>(original);
    GRAFT_TRY(process.write(RemoteAddress(address), std::span(&byte, 1)));
    ++healed;
  }
  // A thread inside the handler finishes it (it heals its int3 and returns
  // to it), and one that took an int3's trap but not yet its SIGTRAP needs
  // the handler to: until then it keeps the handler, and the program's own
  // action stays in the handler's hands (it puts it back for any other trap).
  for (auto& t : process.threads()) {
    GRAFT_TRY(process.step_out_of(t, page, page + size));
    if (t.regs.rip >= page.value() && t.regs.rip < page.value() + size)
      return make_error("thread {} is still in graft's SIGTRAP handler; run graft recover {} again", t.tid,
                        process.pid());
    if (process.has_queued_trap(t.tid))
      return make_error("thread {} has yet to take the SIGTRAP of an int3 of graft's, and graft's SIGTRAP handler "
                        "stays for it; run graft recover {} again", t.tid, process.pid());
  }
  GRAFT_TRY(with_syscalls(process, [&](RemoteSyscalls& syscalls) -> Status {
    return restore_action(process, syscalls, page);
  }));
  GRAFT_TRY(RemoteMapping(process, page, size).unmap());
  return healed;
}

}  // namespace graft
