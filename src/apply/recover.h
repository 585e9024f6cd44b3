// Putting a process right after a graft that died in the middle of an apply
// or a revert: what its journal says is still to be undone (the guardian,
// apply/guardian.h), and what the process itself shows (`graft recover`):
// a region of graft's no applied record names, a revert that committed but
// did not unmap. Each step is named in the report.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "target/journal.h"

namespace graft {

struct RecoveryReport {
  std::vector<std::string> done;  // one line each, in the order done
  bool continued = false;         // the process was stopped by graft's holds and has been continued
};

// `journal`: the dead graft's (nullptr for `graft recover`, which knows only
// what the process shows). Waits up to 10 s for the dead graft's tracing to
// end. A process with nothing to do is left untouched.
Result<RecoveryReport> recover(pid_t pid, const JournalState* journal);

}  // namespace graft
