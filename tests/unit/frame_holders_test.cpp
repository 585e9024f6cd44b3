// Which frames of functions holding changed data are roots of the traversal
// at the commit, and which code keeps the update waiting (plan_frame_holders).
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "migrate/frame_holders.h"

namespace graft::test {
namespace {

using PlaceKind = LocalPlace::Kind;

// worker: a local in a stack slot at [0x10, 0x40), in a callee-saved
// register at [0x40, 0x48), nowhere DWARF says at [0x48, 0x50), in a
// call-clobbered register at [0x50, 0x58).
DataPlan plan_with_worker() {
  DataPlan plan;
  DataPlan::FrameHolder holder{"main.c::worker", {}};
  holder.locals.push_back({"mine", 0, {{0x10, 0x40, {PlaceKind::AtCfaOffset, -1, -72}},
                                       {0x40, 0x48, {PlaceKind::InRegister, 14, 0}},
                                       {0x48, 0x50, {}},
                                       {0x50, 0x58, {PlaceKind::InCallClobberedRegister, 2, 0}}}});
  plan.frame_holders.push_back(holder);
  return plan;
}

struct Process {
  std::map<std::string, std::vector<CodeVersion>> versions;
  std::map<std::string, uint64_t> replaced;
  CodeVersionsOf versions_of() const {
    return [this](const std::string& id) {
      auto it = versions.find(id);
      return it == versions.end() ? std::vector<CodeVersion>{} : it->second;
    };
  }
  ReplacedEntryOf replaced_entry() const {
    return [this](const std::string& id) -> std::optional<uint64_t> {
      auto it = replaced.find(id);
      if (it == replaced.end()) return std::nullopt;
      return it->second;
    };
  }
};

TEST(FrameHolders, TheRunningBinarysOwnCodeIsARootAndWaitsOnlyWhereAPlaceIsUnknown) {
  Process process;
  process.versions["main.c::worker"] = {{0x401000, 0x80}};
  std::vector<AffectedRange> ranges;
  const auto roots = plan_frame_holders(plan_with_worker(), process.versions_of(), process.replaced_entry(), ranges);
  EXPECT_EQ(roots, (std::map<std::string, uint64_t>{{"main.c::worker", 0x401000}}));
  ASSERT_EQ(ranges.size(), 2u);
  // A return address is one past its call: the range reaches one byte further.
  EXPECT_EQ(ranges[0].start, 0x401048u);
  EXPECT_EQ(ranges[0].end, 0x401051u);
  EXPECT_FALSE(ranges[0].executing_only);
  // A call-clobbered register: only a thread executing there holds it.
  EXPECT_EQ(ranges[1].start, 0x401050u);
  EXPECT_EQ(ranges[1].end, 0x401058u);
  EXPECT_TRUE(ranges[1].executing_only);
}

TEST(FrameHolders, AReplacedFunctionsFramesAreRootsInItsNewestVersionAndNeverWait) {
  Process process;
  process.versions["main.c::worker"] = {{0x401000, 0x80}, {0x7f0000001000, 0x90}};
  process.replaced["main.c::worker"] = 0x7f0000001000;
  std::vector<AffectedRange> ranges;
  const auto roots = plan_frame_holders(plan_with_worker(), process.versions_of(), process.replaced_entry(), ranges);
  EXPECT_EQ(roots, (std::map<std::string, uint64_t>{{"main.c::worker", 0x7f0000001000}}));
  EXPECT_TRUE(ranges.empty());
}

TEST(FrameHolders, CodeAnEarlierPatchReplacedIsNoRootAndWaitsWhereverALocalLives) {
  Process process;
  process.versions["main.c::worker"] = {{0x401000, 0x80}, {0x7f0000001000, 0x90}};
  std::vector<AffectedRange> ranges = {{0x1000, 0x2000, 0x1000, "earlier", {}, {}}};
  const auto roots = plan_frame_holders(plan_with_worker(), process.versions_of(), process.replaced_entry(), ranges);
  EXPECT_TRUE(roots.empty());
  ASSERT_EQ(ranges.size(), 1u + 4u + 1u);  // kept, every live range of the binary's code, the patch's copy whole
  EXPECT_EQ(ranges[0].function, "earlier");
  EXPECT_EQ(ranges[1].start, 0x401010u);
  EXPECT_EQ(ranges[1].end, 0x401041u);
  EXPECT_EQ(ranges[5].start, 0x7f0000001000u);
  EXPECT_EQ(ranges[5].end, 0x7f0000001090u);
  for (size_t i = 1; i < ranges.size(); ++i) EXPECT_FALSE(ranges[i].executing_only);
}

TEST(FrameHolders, AFunctionNotInTheProcessAddsNothing) {
  Process process;
  std::vector<AffectedRange> ranges;
  EXPECT_TRUE(plan_frame_holders(plan_with_worker(), process.versions_of(), process.replaced_entry(), ranges).empty());
  EXPECT_TRUE(ranges.empty());
}

}  // namespace
}  // namespace graft::test
