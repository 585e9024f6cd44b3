// The update's journal (target/journal.h): what the guardian reads back is
// what is still to be undone, record by record.
#include <gtest/gtest.h>

#include "target/journal.h"

namespace graft {
namespace {

TEST(Journal, ReadsBackWhatIsStillToBeUndone) {
  auto journal = Journal::create(1234);
  ASSERT_TRUE(journal.ok()) << journal.error().message;
  Journal& j = journal.value();
  j.planted(RemoteAddress(0x1000), 0x55);
  j.planted(RemoteAddress(0x2000), 0x48);
  j.removed(RemoteAddress(0x1000));
  Registers own;
  own.rip = 0x4000;
  j.borrowed({77, own, 0x5000, 9, 0, 0});
  j.borrowed({78, own, 0, -1, 0x7000, 0x8000});
  j.returned(78);
  j.mapped(RemoteAddress(0x9000), 0x3000);
  j.held();
  EpollWatch watch;
  watch.epoll_fd = 3;
  watch.fd = 9;
  watch.events = 0x19;
  watch.data = 0x55d0c0a0;
  j.commit_begins({{RemoteAddress(0xa000), {1, 2, 3}}}, {{77, own}}, {watch});

  auto state = Journal::read(j.fd());
  ASSERT_TRUE(state.ok()) << state.error().message;
  EXPECT_EQ(state->pid, 1234);
  EXPECT_FALSE(state->finished);
  EXPECT_TRUE(state->held);
  EXPECT_EQ(state->planted, (std::map<uint64_t, uint8_t>{{0x2000, 0x48}}));
  ASSERT_EQ(state->borrowed.size(), 1u);
  EXPECT_EQ(state->borrowed.at(77).own.rip, 0x4000u);
  EXPECT_EQ(state->borrowed.at(77).syscall_at, 0x5000u);
  EXPECT_EQ(state->borrowed.at(77).syscall_number, 9);
  EXPECT_EQ(state->mapped, (std::map<uint64_t, uint64_t>{{0x9000, 0x3000}}));
  EXPECT_TRUE(state->commit_begun);
  ASSERT_EQ(state->undo.size(), 1u);
  EXPECT_EQ(state->undo[0].previous, (std::vector<uint8_t>{1, 2, 3}));
  ASSERT_EQ(state->epoll_before.size(), 1u);
  EXPECT_EQ(state->epoll_before[0].epoll_fd, 3);
  EXPECT_EQ(state->epoll_before[0].fd, 9);
  EXPECT_EQ(state->epoll_before[0].events, 0x19u);
  EXPECT_EQ(state->epoll_before[0].data, 0x55d0c0a0u);

  // A commit that completed leaves nothing to undo, and what it mapped is the target's.
  j.commit_ends(true);
  j.finished();
  state = Journal::read(j.fd());
  ASSERT_TRUE(state.ok());
  EXPECT_FALSE(state->commit_begun);
  EXPECT_TRUE(state->commit_done);
  EXPECT_TRUE(state->undo.empty());
  EXPECT_TRUE(state->epoll_before.empty());
  EXPECT_TRUE(state->mapped.empty());
  EXPECT_TRUE(state->finished);
}

TEST(Journal, NoOneReadsTheDefaultOne) {
  Journal none;
  none.planted(RemoteAddress(0x1000), 0x55);  // dropped
  EXPECT_EQ(none.fd(), -1);
}

}  // namespace
}  // namespace graft
