// Runs the user's transformers (graft diff --transform) inside the target at
// the commit, with every thread stopped: one borrowed thread calls them a
// batch at a time through the patch's runner, on a stack and scratch memory
// of graft's, and ends each batch on a trap.
#pragma once
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "migrate/migrate.h"
#include "target/process.h"

namespace graft::apply {

struct UserTransformReport {
  size_t objects = 0;
  size_t batches = 0;
};

// `address_of(identity)`: a function the patch defines, in the target.
// A fault, an unexpected stop or the time limit is an error naming the type
// and the object; the borrowed thread is then exactly as it was, and
// nothing of the jobs' results is kept.
Status run_user_transformers(TracedProcess& process, std::vector<UserTransformJob>& jobs, uint64_t runner,
                             const std::function<Result<uint64_t>(const std::string&)>& address_of,
                             std::chrono::milliseconds limit, UserTransformReport& report);

}  // namespace graft::apply
