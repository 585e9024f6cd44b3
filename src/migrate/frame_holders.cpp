#include "migrate/frame_holders.h"

namespace graft {

std::map<std::string, uint64_t> plan_frame_holders(const DataPlan& plan, const CodeVersionsOf& versions_of,
                                                   const ReplacedEntryOf& replaced_entry,
                                                   std::vector<AffectedRange>& ranges) {
  using Places = DataPlan::FrameHolder::Places;
  std::map<std::string, uint64_t> frame_roots;
  for (const auto& holder : plan.frame_holders) {
    const auto& id = holder.identity;
    // A replaced function's frames at the commit are those that continue
    // in the new code, at calls over which every such local is at a known
    // place (the diff checked): those locals are roots, read in the newest
    // version's code, which has the old build's layout of locals.
    if (const std::optional<uint64_t> newest = replaced_entry(id)) {
      frame_roots[id] = *newest;
      continue;
    }
    const auto versions = versions_of(id);
    if (versions.empty()) continue;
    // Only the running binary's own code has the old build's layout of locals.
    if (versions.size() == 1) frame_roots[id] = versions[0].address;
    // The running binary's own code: only where such a local is live and
    // its place unknown. A return address is one past its call, so each
    // range reaches one byte further.
    for (const auto& [start, end] : holder.live(versions.size() == 1 ? Places::Unknown : Places::All))
      ranges.push_back({versions[0].address + start, versions[0].address + end + 1, 0,
                        id + " (its frame may point to changed data)", {}, {}, false, true});
    // A local only in a register a call clobbers: a frame waiting for a
    // call holds nothing there, a thread executing there may.
    if (versions.size() == 1)
      for (const auto& [start, end] : holder.live(Places::CallClobbered))
        ranges.push_back({versions[0].address + start, versions[0].address + end, 0,
                          id + " (it may hold changed data in a register)", {}, {}, true, true});
    for (size_t i = 1; i < versions.size(); ++i)  // earlier patches' copies: all of them
      ranges.push_back({versions[i].address, versions[i].address + versions[i].size, 0,
                        id + " (its frame may point to changed data)", {}, {}, false, true});
  }
  return frame_roots;
}

}  // namespace graft
