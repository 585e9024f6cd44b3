// The migration's writes merged into runs (migrate/migrate.h
// merge_neighbouring_writes): neighbours a few bytes apart become one write,
// the bytes between them written back as they are.
#include <gtest/gtest.h>

#include "migrate/migrate.h"

namespace graft {
namespace {

DataWrite write_at(uint64_t address, std::initializer_list<uint8_t> bytes, uint8_t previous) {
  return {RemoteAddress(address), Bytes(bytes), Bytes(bytes.size(), previous)};
}

// The gap's bytes as the target holds them: 0xee, or unreadable from `hole` on.
auto target_memory(uint64_t hole = ~uint64_t{0}) {
  return [hole](RemoteAddress at, std::span<uint8_t> out) {
    if (at.value() + out.size() > hole) return false;
    std::fill(out.begin(), out.end(), 0xee);
    return true;
  };
}

TEST(WriteMerge, NeighboursBecomeOneWriteWithTheGapWrittenBackAsItIs) {
  std::vector<DataWrite> writes = {write_at(0x1010, {4, 5}, 0xb1), write_at(0x1000, {1, 2, 3}, 0xa1),
                                   write_at(0x0f00, {9}, 0xc1)};
  merge_neighbouring_writes(writes, target_memory());
  ASSERT_EQ(writes.size(), 2u);  // sorted; 0x0f00 is too far from 0x1000
  EXPECT_EQ(writes[0].address, RemoteAddress(0x0f00));
  EXPECT_EQ(writes[1].address, RemoteAddress(0x1000));
  Bytes bytes = {1, 2, 3}, previous = {0xa1, 0xa1, 0xa1};
  bytes.insert(bytes.end(), 13, 0xee);
  previous.insert(previous.end(), 13, 0xee);
  bytes.insert(bytes.end(), {4, 5});
  previous.insert(previous.end(), {0xb1, 0xb1});
  EXPECT_EQ(writes[1].bytes, bytes);
  EXPECT_EQ(writes[1].previous, previous);
}

TEST(WriteMerge, FarApartUnreadableOrLongRunsStayApart) {
  // kMergeGap + 1 bytes apart.
  std::vector<DataWrite> far = {write_at(0x1000, {1}, 0), write_at(0x1000 + 1 + kMergeGap + 1, {2}, 0)};
  merge_neighbouring_writes(far, target_memory());
  EXPECT_EQ(far.size(), 2u);
  // Exactly kMergeGap apart: merged.
  std::vector<DataWrite> near = {write_at(0x1000, {1}, 0), write_at(0x1000 + 1 + kMergeGap, {2}, 0)};
  merge_neighbouring_writes(near, target_memory());
  EXPECT_EQ(near.size(), 1u);
  // A gap graft cannot read keeps them apart: nothing unknown is written back.
  std::vector<DataWrite> hole = {write_at(0x1000, {1}, 0), write_at(0x1008, {2}, 0)};
  merge_neighbouring_writes(hole, target_memory(0x1004));
  EXPECT_EQ(hole.size(), 2u);
  // A run already kMergeLimit long takes no more.
  std::vector<DataWrite> runs = {{RemoteAddress(0x100000), Bytes(kMergeLimit, 1), Bytes(kMergeLimit, 0)},
                                 write_at(0x100000 + kMergeLimit, {2}, 0)};
  merge_neighbouring_writes(runs, target_memory());
  EXPECT_EQ(runs.size(), 2u);
}

}  // namespace
}  // namespace graft
