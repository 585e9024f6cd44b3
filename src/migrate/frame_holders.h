// Commit time: what the plan's frame holders (functions whose frames may hold
// pointers to changed data) mean for the update. A frame whose locals' places
// DWARF gives is a typed root of the traversal; a thread anywhere else such a
// local may be keeps the update waiting, as in a replaced function.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "data/plan.h"

namespace graft {

// One copy of a function's code in the process.
struct CodeVersion {
  uint64_t address = 0, size = 0;
};
// Every copy of a function in the process, the running binary's own first,
// then each earlier patch's; none if it is not there.
using CodeVersionsOf = std::function<std::vector<CodeVersion>(const std::string& identity)>;
// The entry of the newest version of a function this patch replaces, or none
// if the patch does not replace it.
using ReplacedEntryOf = std::function<std::optional<uint64_t>(const std::string& identity)>;

// Returns the frame roots: identity -> the entry of the code whose frames are
// typed roots (MigrationInput::frame_holder_entry). Adds to `ranges` the code
// no thread may be in at the commit.
std::map<std::string, uint64_t> plan_frame_holders(const DataPlan& plan, const CodeVersionsOf& versions_of,
                                                   const ReplacedEntryOf& replaced_entry,
                                                   std::vector<AffectedRange>& ranges);

}  // namespace graft
