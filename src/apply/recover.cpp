#include "apply/recover.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "apply/module.h"
#include "apply/registry.h"
#include "target/process.h"
#include "target/remote.h"
#include "target/trap_handler.h"
#include "target/x86.h"

namespace graft {
namespace {

// Whether a thread the journal says graft was running something in is still
// in graft's hands: at the end of graft's system call (with its number), or
// on graft's stack. Else it went back to its own code before graft died.
bool still_borrowed(const BorrowedThreadRecord& r, const Registers& now) {
  if (r.syscall_at && now.rip == r.syscall_at + 2 && static_cast<long>(now.orig_rax) == r.syscall_number) return true;
  return r.stack_end && now.rsp >= r.stack_start && now.rsp < r.stack_end;
}

bool is_empty(const JournalState& j) {
  return j.planted.empty() && j.borrowed.empty() && !j.flag && j.mapped.empty() && !j.commit_begun && !j.trap_handler &&
         !(j.commit_done && !j.unmap_after_commit.empty()) && !j.held;
}

// Any thread of the process stopped by job control, or about to be (a SIGSTOP pending).
bool any_thread_stopped(pid_t pid) {
  constexpr uint64_t kSigstopBit = uint64_t{1} << (SIGSTOP - 1);
  const std::string dir = fmt::format("/proc/{}/task", pid);
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(dir, ec)) {
    std::ifstream in(task.path() / "status");
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("State:") && line.find('T') != std::string::npos) return true;
      if ((line.starts_with("SigPnd:") || line.starts_with("ShdPnd:")) &&
          (std::stoull(line.substr(7), nullptr, 16) & kSigstopBit))
        return true;
    }
  }
  return false;
}

// What the entry of each function an applied patch redirects holds: the
// newest such patch's redirect (`applied` is oldest first).
std::map<uint64_t, std::vector<uint8_t>> applied_entries(const std::vector<registry::Record>& applied) {
  std::map<uint64_t, std::vector<uint8_t>> entries;
  for (const auto& r : applied)
    for (const auto& e : r.entries) entries[e.address] = registry::unhex(e.new_bytes);
  return entries;
}

// A commit killed with its guardian (no journal left) may have switched some
// entries and not others: an apply's redirected into a region that is then
// unmapped, a revert's put back while its patch stays applied. Each entry at
// `addresses` that does not hold what the applied patches say (`expected`,
// else graft-cc's unpatched entry; the callers give every entry's own
// bytes) is given it, the jump first.
Result<size_t> put_back_entries(TracedProcess& process, const std::vector<uint64_t>& addresses,
                                const std::map<uint64_t, std::vector<uint8_t>>& expected) {
  size_t put_back = 0;
  for (const uint64_t address : addresses) {
    std::vector<uint8_t> want(x86::kUnpatchedEntry.begin(), x86::kUnpatchedEntry.end());
    if (auto it = expected.find(address); it != expected.end()) want = it->second;
    const RemoteAddress pad(address - x86::kEntryPad);
    GRAFT_ASSIGN(const auto now, process.read(pad, x86::kEntryBytes));
    if (want.size() != x86::kEntryBytes || now == want) continue;
    GRAFT_TRY(process.write(RemoteAddress(address), std::span(want).subspan(x86::kEntryPad)));
    GRAFT_TRY(process.write(pad, std::span(want).first(x86::kEntryPad)));
    ++put_back;
  }
  return put_back;
}

// A thread that runs in [start, end), or whose stack holds an address in it
// (a frame the commit rebuilt to return there): the region must stay. The
// stack is read from the thread's stack pointer to the end of its mapping.
std::optional<pid_t> thread_using(TracedProcess& process, const std::vector<MemoryMap>& maps, uint64_t start,
                                  uint64_t end) {
  for (const auto& t : process.threads()) {
    if (t.regs.rip >= start && t.regs.rip < end) return t.tid;
    const uint64_t sp = t.regs.rsp;
    auto stack = std::find_if(maps.begin(), maps.end(), [&](const MemoryMap& m) { return m.contains(sp); });
    if (stack == maps.end()) continue;
    auto words = process.read(RemoteAddress(sp), stack->end - sp);
    if (!words) continue;
    for (size_t i = 0; i + 8 <= words->size(); i += 8) {
      uint64_t word = 0;
      std::memcpy(&word, words->data() + i, 8);
      if (word >= start && word < end) return t.tid;
    }
  }
  return std::nullopt;
}

}  // namespace

Result<RecoveryReport> recover(pid_t pid, const JournalState* journal) {
  RecoveryReport report;
  GRAFT_ASSIGN(auto leftovers, registry::leftovers(pid));
  GRAFT_ASSIGN(const auto maps_before, read_maps(pid));
  const bool handler_left = std::any_of(maps_before.begin(), maps_before.end(),
                                        [&](const MemoryMap& m) { return is_trap_handler(pid, m); });
  // Without a journal (graft and its guardian both killed), a process
  // stopped by graft's holds shows nothing but the stop: `graft recover`
  // continues it.
  const bool stopped_without_journal = !journal && any_thread_stopped(pid);
  // Patches of a library the process unloaded since: their code is gone
  // (and a copy loaded again runs unpatched); their regions are dropped.
  GRAFT_ASSIGN(const auto applied_before, registry::read_all(pid));
  const auto lost = lost_libraries(pid, maps_before, applied_before);
  if ((!journal || is_empty(*journal)) && leftovers.empty() && !handler_left && !stopped_without_journal && lost.empty())
    return report;
  std::set<RemoteAddress> planted;
  if (journal)
    for (uint64_t address : journal->ever_planted) planted.insert(RemoteAddress(address));
  // graft's holds may have stopped the process, or begun to (a group stop in
  // progress, SIGSTOPs pending): SIGCONT ends all of it (the kernel flushes
  // pending stop signals and cancels the group stop). Sent once every thread
  // is stopped under the guardian's tracing, before the rest: while the
  // group stop lasts, a thread that hit one of graft's int3s as graft died
  // cannot take its SIGTRAP, which must go before the program's own SIGTRAP
  // action is put back.
  const bool continue_after = (journal && journal->held) || stopped_without_journal;
  report.continued = continue_after && (any_thread_stopped(pid) || stopped_without_journal);  // seen before the attach
  GRAFT_ASSIGN(auto process, TracedProcess::attach_after_graft(pid, planted, std::chrono::seconds(10)));
  GRAFT_TRY(process->stop_all());
  if (continue_after) kill(pid, SIGCONT);
  uint64_t kept_handler = 0, kept_handler_size = 0;  // graft's SIGTRAP handler a thread was inside (0: none)
  if (journal) {
    // A thread that hit one of graft's int3s as graft died has its SIGTRAP queued.
    for (auto& t : process->threads()) {
      GRAFT_TRY(process->discard_queued_trap(t));
      // One taken on the way into the stop: graft's too (its int3s, its runners' old int3).
      if (t.pending_signal == SIGTRAP) t.pending_signal = 0;
    }
    for (const auto& [tid, record] : journal->borrowed) {
      Thread* t = process->find(tid);
      if (!t || !still_borrowed(record, t->regs)) continue;
      t->regs = record.own;
      GRAFT_TRY(process->set_registers(*t));
      report.done.push_back(fmt::format("thread {} has its own registers back (graft was running {} in it)", tid,
                                        record.syscall_at ? "a system call" : "code"));
    }
    if (journal->commit_begun) {
      for (auto it = journal->undo.rbegin(); it != journal->undo.rend(); ++it)
        GRAFT_TRY(process->write(it->address, it->previous));
      for (const auto& [tid, regs] : journal->registers_before)
        if (Thread* t = process->find(tid); t && !journal->borrowed.count(tid)) {
          t->regs = regs;
          GRAFT_TRY(process->set_registers(*t));
        }
      // Setting a word it had already is harmless: each watch gets its old word whether or not graft set it.
      GRAFT_TRY(set_epoll_data_back(*process, journal->epoll_before));
      report.done.push_back(fmt::format("rolled back the commit graft had begun ({} writes, {} threads' registers{})",
                                        journal->undo.size(), journal->registers_before.size(),
                                        journal->epoll_before.empty()
                                            ? ""
                                            : fmt::format(", {} epoll data words", journal->epoll_before.size())));
    }
    if (journal->trap_handler) {
      const auto [page, size] = *journal->trap_handler;
      auto healed = TrapHandler::remove_left(*process, RemoteAddress(page), size);
      if (!healed) {
        kept_handler = page;
        kept_handler_size = size;
        report.done.push_back(healed.error().message);
      } else {
        report.done.push_back(fmt::format("took graft's SIGTRAP handler out ({} int3s healed)", *healed));
      }
    }
    size_t removed = 0;
    for (const auto& [address, original] : journal->planted) {
      auto now = process->read(RemoteAddress(address), 1);
      if (!now || (*now)[0] != x86::kInt3) continue;
      GRAFT_TRY(process->write(RemoteAddress(address), std::span(&original, 1)));
      ++removed;
    }
    if (removed) report.done.push_back(fmt::format("removed {} breakpoints", removed));
    if (journal->flag) {
      GRAFT_TRY(process->write(RemoteAddress(journal->flag->first), journal->flag->second));
      report.done.push_back("lowered the update-pending flag");
    }
    for (const auto& [start, size] : journal->mapped) {
      if (journal->trap_handler && journal->trap_handler->first == start) continue;
      GRAFT_TRY(RemoteMapping(*process, RemoteAddress(start), size).unmap());
      report.done.push_back(fmt::format("unmapped {:#x}-{:#x}, mapped for an update that did not commit", start,
                                        start + size));
    }
    if (journal->commit_done)
      for (const auto& [start, size] : journal->unmap_after_commit) {
        GRAFT_TRY(RemoteMapping(*process, RemoteAddress(start), size).unmap());
        report.done.push_back(fmt::format("unmapped {:#x}-{:#x}, the region of a patch whose revert committed", start,
                                          start + size));
      }
  }
  // What the process itself shows: graft's SIGTRAP handler (with the int3s
  // it knows), graft's regions no applied record names.
  GRAFT_ASSIGN(auto maps, read_maps(pid));
  for (const auto& m : maps)
    if ((!journal || !journal->trap_handler) && is_trap_handler(pid, m)) {
      auto healed = TrapHandler::remove_left(*process, RemoteAddress(m.start), m.end - m.start);
      if (!healed) return healed.error();
      report.done.push_back(fmt::format("took graft's SIGTRAP handler out ({} int3s healed)", *healed));
    }
  GRAFT_ASSIGN(leftovers, registry::leftovers(pid));
  GRAFT_ASSIGN(auto applied, registry::read_all(pid));
  std::vector<registry::Record> dropped;  // applied to a library since unloaded: never written into
  for (auto it = applied.begin(); it != applied.end();)
    if (lost.count(it->library)) {
      dropped.push_back(std::move(*it));
      it = applied.erase(it);
    } else {
      ++it;
    }
  const auto expected = applied_entries(applied);
  std::vector<uint64_t> addresses;
  for (const auto& [address, bytes] : expected) addresses.push_back(address);
  GRAFT_ASSIGN(const size_t redirected, put_back_entries(*process, addresses, expected));
  if (redirected)
    report.done.push_back(fmt::format("redirected {} function entries again that a revert killed in its commit had "
                                      "put back (its patch stays applied)", redirected));
  for (const auto& l : leftovers) {
    // A Staged record's apply, or a Reverting one's revert (its record turns
    // Reverting first in the revert's commit), killed in its commit: each
    // entry that still leads into the region gets what it held before the
    // patch (or what a newer applied patch puts there).
    if (l.record && (l.record->state == registry::Staged || l.record->state == registry::Reverting) &&
        !lost.count(l.record->library)) {
      std::map<uint64_t, std::vector<uint8_t>> before = expected;
      addresses.clear();
      for (const auto& e : l.record->entries) {
        // (An older graft's Staged record has zeros there: the default entry then.)
        const auto old_bytes = registry::unhex(e.old_bytes);
        const bool known = std::any_of(old_bytes.begin(), old_bytes.end(), [](uint8_t b) { return b != 0; });
        if (!before.count(e.address) && known) before[e.address] = old_bytes;
        addresses.push_back(e.address);
      }
      GRAFT_ASSIGN(const size_t put_back, put_back_entries(*process, addresses, before));
      if (put_back)
        report.done.push_back(l.record->state == registry::Staged
                                  ? fmt::format("put back {} function entries that an apply killed in its commit had "
                                                "redirected into {:#x}-{:#x}", put_back, l.start, l.end)
                                  : fmt::format("finished a revert killed in its commit: put back {} function entries "
                                                "that still led into {:#x}-{:#x}", put_back, l.start, l.end));
    }
    if (auto tid = thread_using(*process, maps, l.start, l.end)) {
      report.done.push_back(fmt::format("kept {:#x}-{:#x} ({}, left by {}) mapped: thread {} runs in it or returns "
                                        "into it", l.start, l.end, l.name, l.why, *tid));
      continue;
    }
    GRAFT_TRY(RemoteMapping(*process, RemoteAddress(l.start), l.end - l.start).unmap());
    report.done.push_back(fmt::format("unmapped {:#x}-{:#x} ({}), left by {}", l.start, l.end, l.name, l.why));
  }
  for (const auto& r : dropped) {
    if (auto tid = thread_using(*process, maps, r.region_start, r.region_end)) {
      report.done.push_back(fmt::format("kept patch #{} ({}) mapped though {} was unloaded: thread {} runs in it or "
                                        "returns into it", r.sequence, r.patch_id, r.library_name, *tid));
      continue;
    }
    GRAFT_TRY(RemoteMapping(*process, RemoteAddress(r.region_start), r.region_end - r.region_start).unmap());
    report.done.push_back(fmt::format("dropped patch #{} ({}): {} was unloaded since it was applied; apply again to "
                                      "patch a copy loaded now", r.sequence, r.patch_id, r.library_name));
  }
  // Once let go, each thread must be seen running: SIGCONT again until it is.
  GRAFT_TRY(process->detach());
  process.reset();
  if (continue_after) {
    for (int clean = 0, round = 0; clean < 5 && round < 1000; ++round) {
      if (any_thread_stopped(pid)) {
        kill(pid, SIGCONT);
        clean = 0;
        report.continued = true;
      } else {
        ++clean;
      }
      usleep(2000);
    }
    if (report.continued) report.done.push_back("continued the process, which graft's holds had stopped");
  }
  // A thread that was inside graft's SIGTRAP handler kept it (a thread
  // parked on graft's int3 when graft died takes its SIGTRAP there, and
  // graft's holds may keep it stopped inside until the SIGCONT above). With
  // every int3 healed and SIGTRAP's action put back, it leaves the handler
  // once it runs (it returns from the signal): the handler is taken out then.
  for (int round = 0; kept_handler && round < 20; ++round) {
    usleep(5000);
    auto again = TracedProcess::attach_after_graft(pid, planted, std::chrono::seconds(10));
    if (!again) break;
    if ((*again)->stop_all() && TrapHandler::remove_left(**again, RemoteAddress(kept_handler), kept_handler_size)) {
      report.done.push_back("took graft's SIGTRAP handler out once the thread inside it had left it");
      kept_handler = 0;
    }
    (void)(*again)->detach();
  }
  return report;
}

}  // namespace graft
