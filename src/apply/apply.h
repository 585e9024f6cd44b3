// The updater: applies a patch to a running process, lists and reverts the
// patches applied to it. All or nothing: on any error or refusal the target
// runs on exactly as before.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "patch/patch.h"

namespace graft {

struct ApplyOptions {
  std::chrono::milliseconds timeout{5000};  // how long to wait for a safe moment
  // Longest a thread is held at an entry while the others come (the hold
  // starts at 2 ms and doubles while they do not meet: checkpoint.h).
  std::chrono::milliseconds max_hold{64};
  bool dynamic_checkpoints = true;          // breakpoints where blocked threads leave (else only poll)
  // How long the user's transformers may run, per batch of objects, before
  // the update is abandoned (a loop, or a lock a stopped thread holds).
  std::chrono::milliseconds transformer_limit{2000};
  // How long each function of the patch's update-time code (GRAFT_INIT,
  // GRAFT_RERUN, GRAFT_ON_UPDATE) may run before the update is abandoned.
  std::chrono::milliseconds update_code_limit{2000};
  // Prototype (patch/patch.h FrameTransfer): threads just back from a call at
  // a transfer point of a changed never-returning function move into its new
  // body at the commit, instead of keeping the update waiting.
  bool transfer_frames = false;
};

struct ApplyReport {
  std::string patch_id;
  int sequence = 0;          // position in the target's stack of patches (1 = first)
  size_t threads = 0;
  size_t functions = 0;      // functions redirected
  size_t attempts = 0;       // stops until a safe moment was found
  uint64_t pause_us = 0;     // longest time the threads were stopped at once
  uint64_t prepare_us = 0;   // one thread stopped while the patch was mapped
  uint64_t hold_us = 0;      // longest a thread waited at an entry checkpoint while the others ran
  size_t arrivals = 0;       // threads that reached a dynamic checkpoint
  double total_ms = 0;       // attach to detach
  uint64_t region = 0;       // where the patch lives in the target
  size_t types_changed = 0;  // data: struct layouts that changed
  size_t objects = 0;        // data: live objects and globals transformed at commit
  size_t objects_moved = 0;  // data: of them, moved to new storage (they outgrew their allocation)
  uint64_t storage = 0;        // data: where that new storage starts in the target (0: nothing moved)
  uint64_t storage_bytes = 0;  // data: new storage mapped in the target for the moved objects
  uint64_t migrate_us = 0;   // data: finding and transforming them (inside the pause)
  size_t global_references = 0;  // data: pointers into globals given new storage, made to follow them
  size_t epoll_words = 0;        // data: epoll watches' data words set to where their objects went
  uint64_t searched_bytes = 0;   // data: memory searched for those pointers (inside the pause)
  size_t frames_continued = 0;  // frames waiting for a call that now return into the new code
  size_t frames_transferred = 0;  // threads just back from a call whose frame was rebuilt in the new body
  size_t frames_moving = 0;  // of frames_continued: waiting at a transfer point, rebuilt in the new body on return
  size_t user_transformed = 0;  // data: objects the user's transformers rewrote in the target
  size_t user_batches = 0;      // data: runs of the user's transformers (one ptrace round trip each)
  size_t update_calls = 0;      // functions of the update-time code run before the commit
  pid_t update_thread = 0;      // the thread they ran in (0: none ran)
  bool update_thread_idle = false;  // it was blocked in a waiting system call
  uint64_t update_us = 0;       // that thread stopped and borrowed; the others ran on
  uint64_t at_commit_us = 0;    // GRAFT_AT_COMMIT: run inside the pause, every thread stopped
  std::vector<std::string> notes;  // what the user should know of an update that applied
};

// When no safe moment came before the timeout: the threads that kept it, each
// with its chain of affected frames, and what to do about it (the error
// message says the same in one line).
struct Refusal {
  std::vector<Blocker> blocking;
  std::string hint;
  // How the search for a safe moment went: stops and checks, arrivals at
  // checkpoints, the longest stop.
  size_t attempts = 0;
  size_t arrivals = 0;
  uint64_t pause_us = 0;
};

Result<ApplyReport> apply_patch(pid_t pid, const Patch& patch, const ApplyOptions& options, Refusal* refusal = nullptr);

struct AppliedPatch {
  int sequence = 0;
  std::string patch_id;
  std::string base_build_id;
  std::string result_build_id;
  std::string applied_at;
  std::vector<std::string> functions;
  uint64_t region_start = 0, region_end = 0;
  std::string library;  // the shared library it patches (its file name); empty: the executable
  std::string lost;     // why it is no longer in effect (its library was unloaded), with what to do; empty: it is
};

// The patches applied to a process, oldest first, read from the target's own
// memory (the registry travels with the process).
Result<std::vector<AppliedPatch>> list_applied(pid_t pid);

struct RevertReport {
  std::string patch_id;
  int sequence = 0;
  size_t threads = 0;
  size_t attempts = 0;
  uint64_t pause_us = 0;
  uint64_t hold_us = 0;
  size_t arrivals = 0;
  double total_ms = 0;
  size_t frames_continued = 0;  // frames in the patch's code moved back into the code it replaced
  size_t objects = 0;           // live objects (and globals) transformed back to the old layouts
  size_t objects_moved = 0;     // of them, moved to new storage (they outgrew their allocation)
  size_t epoll_words = 0;       // epoll watches' data words set to where their objects went
};

// Undoes the latest patch applied to the process.
Result<RevertReport> revert_latest(pid_t pid, const ApplyOptions& options, Refusal* refusal = nullptr);

}  // namespace graft
