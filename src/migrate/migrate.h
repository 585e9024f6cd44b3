// Data changes, commit time: with every thread stopped at a safe moment,
// the live instances of the changed types are found by a precise traversal
// of the process's memory along typed pointers (from the plan's roots),
// transformed by the generated transformers, and written, each write with
// the bytes it replaced (all or nothing).
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/huge_pages.h"
#include "data/plan.h"
#include "target/address.h"
#include "target/epoll.h"
#include "target/registers.h"
#include "target/unwind.h"

namespace graft {

// One write of the migration, with what it replaces.
struct DataWrite {
  RemoteAddress address;
  Bytes bytes, previous;  // a run of neighbouring objects reaches 16 MiB: huge pages
};

// A stopped thread's register holding a pointer to an object that moves,
// where DWARF says a typed local is, in the thread's own (innermost) frame:
// rewritten at the commit, after the memory writes.
struct RegisterWrite {
  pid_t tid = 0;
  Reg reg = Reg::rax;
  uint64_t value = 0;
};

// Neighbouring writes (malloc puts objects a header apart) become one, the
// bytes between them (read by `read_gap`, written back unchanged) joined in:
// a million objects cost a few hundred writes, not a million. Writes at most
// kMergeGap bytes apart merge while the run is under kMergeLimit; a gap that
// cannot be read keeps them apart. The result is sorted by address.
inline constexpr uint64_t kMergeGap = 64;
inline constexpr uint64_t kMergeLimit = 1u << 20;
void merge_neighbouring_writes(std::vector<DataWrite>& writes,
                               const std::function<bool(RemoteAddress, std::span<uint8_t>)>& read_gap);

struct MigrationReport {
  size_t objects = 0;        // live instances transformed
  std::map<std::string, size_t> by_type;  // of them, outside globals: per struct ("struct node" -> 40)
  size_t moved = 0;          // of them, moved to new storage (they outgrew their allocation)
  size_t references = 0;     // typed pointers to moved objects, rewritten
  uint64_t searched_bytes = 0;  // memory searched for pointers into globals that get new storage
  size_t global_references = 0;  // pointers into them found, rewritten
  uint64_t storage_bytes = 0;  // new storage mapped in the target for the moved objects
  size_t bytes_read = 0;     // of the target's memory, by the traversal
  uint64_t traverse_us = 0;  // finding and transforming, all threads stopped
  uint64_t write_us = 0;
  std::vector<RegisterWrite> register_writes;  // for the commit, after the memory writes
  // Likewise: epoll watches whose data words point into data that moves (a
  // global given new storage, an object that moves, a member elsewhere in its
  // new layout), with the new address.
  std::vector<EpollDataWrite> epoll_writes;
};

// One object for a user's transformer: its old bytes, and its new bytes as
// the default made them (in a write of the migration), which the user's
// function then rewrites.
struct UserTransformJob {
  std::string type;          // "struct node"
  std::string function;      // the user's function (an identity defined by the patch)
  uint64_t address = 0;      // where the object lives in the target (for messages)
  std::vector<uint8_t> from;
  uint8_t* to = nullptr;     // into a DataWrite's bytes
  uint64_t to_size = 0;
};

struct MigrationInput {
  pid_t pid = 0;
  // Where each root lives now (old storage) and, if it gets new storage, where that is.
  std::function<Result<uint64_t>(const std::string& identity)> old_address;
  std::function<Result<uint64_t>(const std::string& identity)> new_address;
  // Every stopped thread: memory on its stack is not heap, and neither its
  // stack nor its registers may hold the address of an object that moves.
  struct StoppedThread {
    pid_t tid = 0;
    uint64_t stack_pointer = 0;
    bool in_system_call = false;
    bool just_returned = false;  // a call has just returned: call-clobbered registers but rax, rdx are dead
    Registers registers;  // as ptrace gives them
    std::vector<StackFrame> frames;   // innermost first, as the checkpoint unwound them
  };
  std::vector<StoppedThread> threads;
  // Where a frame holder's code is in the running binary ("" : 0 if it is
  // not there, or the patch replaces it): frames of stopped threads in it,
  // at a pc where a local's place is known, are typed roots.
  std::function<uint64_t(const std::string& identity)> frame_holder_entry;
  // Maps `bytes` of fresh zeroed read-write memory in the target and returns
  // its address: new storage for objects that outgrow their allocation. Called
  // at most once, only when something moves; the caller unmaps it if the update fails.
  std::function<Result<uint64_t>(uint64_t bytes)> map_storage;
  // Runs the user's transformers over the jobs, in order (an object nested
  // in another comes before its container), rewriting each job's `to`.
  std::function<Status(std::vector<UserTransformJob>& jobs)> run_user_transformers;
  // The program's static data as loaded (start, size): its writable
  // sections, less what only the loader and the old code read (the GOT,
  // .dynamic, constructor arrays). Searched for pointers into a global that
  // gets new storage (a table such as {"port", &cfg.port}).
  std::vector<std::pair<uint64_t, uint64_t>> static_data;
  // Names a word of it for messages ("options+8 (0x55d0c0a0)"), if set.
  std::function<std::string(uint64_t address)> name_static;
  // No object mapped but the patched one can register epoll watches (none
  // other imports epoll_ctl): what its records say epoll's data words hold
  // (DataPlan::kernel_data_pointee) holds for every watch, which is then
  // followed as a typed root.
  bool kernel_words_typed = false;
  // The target's descriptors as scanned before the pause (which are epoll
  // instances), so that the scan inside it asks only of new ones; unset:
  // scanned from scratch in the pause.
  std::optional<DescriptorScan> descriptors;
  // The functions the patch removes (the new version has none of that name),
  // by their address in the process, and name: a transformed object that
  // would still hold one's address would have the new code call the old
  // copy, which reads the old layouts (plan_migration refuses).
  std::map<uint64_t, std::string> removed_functions;
  // The address of the global that holds the heap's type table
  // (kHeapTypesBase, common/member_facts_format.h), 0 if the binary has none.
  uint64_t heap_types_variable = 0;
};

// Finds and transforms every live instance, with every thread stopped.
// An instance whose new layout does not fit its allocation moves to new
// storage (map_storage), carved as glibc mmapped chunks so that the program
// may free or realloc it later, and every typed pointer to it is rewritten;
// a reference graft cannot rewrite (untyped, into its middle, on a stack or
// in a register) refuses the update. Nothing is written in the target's
// existing memory: the result is the list of writes, for commit_writes.
Result<std::vector<DataWrite>> plan_migration(const DataPlan& plan, const MigrationInput& input, MigrationReport& report);

}  // namespace graft
