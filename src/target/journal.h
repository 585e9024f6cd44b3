// What an update has done to a live process that must be undone (or
// finished) if graft dies in the middle: the journal its guardian
// (apply/guardian.h) reads when graft is gone. Records are appended to a
// memfd the guardian shares; a record counts once the header's length
// covers it (one 8-byte write), so a graft killed while appending leaves
// the journal as it was before that record.
//
// Every object that changes the target says so here before it does, and
// says again when it has put things back: TracedProcess (breakpoints,
// threads held), RemoteSyscalls and BorrowedThread (a thread with graft's
// registers), RemoteMapping (memory graft mapped), the write log (the
// commit's undo data) and the update-pending flag.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include "common/error.h"
#include "target/address.h"
#include "target/epoll.h"
#include "target/registers.h"

namespace graft {

// A thread graft is running something in: its own registers, and how to
// tell, after graft died, that it is still in graft's hands (else it went
// back to its own code, and its registers are its own again).
struct BorrowedThreadRecord {
  pid_t tid = 0;
  Registers own;
  // An injected system call: the instruction it runs at, and its number
  // (the thread is in graft's hands while it is at that instruction's end
  // with that call's number).
  uint64_t syscall_at = 0;
  long syscall_number = -1;
  // Code run in the thread: the stack graft gave it, [start, end).
  uint64_t stack_start = 0, stack_end = 0;
};

struct UndoWrite {
  RemoteAddress address;
  std::vector<uint8_t> previous;
};

// The journal read back: what is still to be undone.
struct JournalState {
  pid_t pid = 0;
  bool finished = false;                      // the session ended: nothing to do
  bool held = false;                          // threads may be group-stopped by graft's holds
  std::map<uint64_t, uint8_t> planted;        // int3s still planted: address -> original byte
  std::set<uint64_t> ever_planted;            // and every one planted before: a late trap on one is graft's
  std::map<pid_t, BorrowedThreadRecord> borrowed;
  std::optional<std::pair<uint64_t, std::vector<uint8_t>>> flag;  // a raised flag and its previous bytes
  std::map<uint64_t, uint64_t> mapped;        // memory graft mapped, unmapped unless a commit completed
  std::map<uint64_t, uint64_t> unmap_after_commit;  // memory to unmap once the commit completed (a revert's region)
  std::optional<std::pair<uint64_t, uint64_t>> trap_handler;  // graft's SIGTRAP handler page, installed
  bool commit_begun = false, commit_done = false;
  std::vector<UndoWrite> undo;                // the commit's writes, in commit order
  std::map<pid_t, Registers> registers_before;  // threads whose registers the commit sets
  std::vector<EpollWatch> epoll_before;       // epoll watches whose data words the commit sets, as they were
};

class Journal {
 public:
  // A journal nobody reads: every record is dropped.
  Journal() = default;
  // A journal in a fresh memfd, for the target `pid`.
  static Result<Journal> create(pid_t pid);
  ~Journal();
  Journal(Journal&& other) noexcept;
  Journal& operator=(Journal&& other) noexcept;
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  int fd() const { return fd_; }
  static Result<JournalState> read(int fd);

  void planted(RemoteAddress address, uint8_t original);
  void removed(RemoteAddress address);
  void held();
  void borrowed(const BorrowedThreadRecord& record);
  void returned(pid_t tid);
  void flag_raised(RemoteAddress address, std::span<const uint8_t> previous);
  void flag_lowered();
  void mapped(RemoteAddress start, uint64_t size);
  void unmap_after_commit(RemoteAddress start, uint64_t size);
  void unmapped(RemoteAddress start);
  void trap_handler(RemoteAddress page, uint64_t size);
  void trap_handler_removed();
  // The commit's undo data, written before its first write.
  void commit_begins(const std::vector<UndoWrite>& undo, const std::map<pid_t, Registers>& registers_before,
                     const std::vector<EpollWatch>& epoll_before);
  void commit_ends(bool done);  // done: every write and register set is in; else rolled back
  void finished();

 private:
  void append(uint32_t type, std::span<const uint8_t> payload);
  int fd_ = -1;
  uint64_t end_ = 8;  // the header (the committed length) comes first
};

}  // namespace graft
