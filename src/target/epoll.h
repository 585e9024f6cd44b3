// What the kernel keeps of a process's in its epoll instances: each watch's
// 64-bit data word (epoll_event.data), which epoll_wait hands back as the
// program gave it: often an address (beanstalkd's Socket *, nginx's
// connection). Read from /proc/PID/fdinfo; set again, when what it points to
// moves, by EPOLL_CTL_MOD in a stopped thread of the process.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"

namespace graft {

class TracedProcess;

// A file descriptor an epoll instance of the process watches.
struct EpollWatch {
  int epoll_fd = -1, fd = -1;  // the instance, and the descriptor the file was registered under
  uint32_t events = 0;         // as the kernel keeps them (it adds EPOLLERR and EPOLLHUP)
  uint64_t data = 0;
  uint64_t inode = 0;          // of the watched file, as the kernel names it
  dev_t device = 0;
  // A one-shot watch that fired: the kernel hands nothing back for it until
  // the program arms it again, with data of its own (EPOLL_CTL_MOD).
  bool disarmed() const;
  bool exclusive() const;  // EPOLLEXCLUSIVE: the kernel refuses EPOLL_CTL_MOD of it
};

// The process's descriptors, and which are epoll instances. Telling costs a
// readlink each (microseconds: 46 ms for 10,000), so a scan made before an
// update's pause is given to the one made inside it (`before`), which then
// asks only of descriptors it did not see (a number reused in between for
// a new epoll instance is the blind spot).
struct DescriptorScan {
  std::vector<int> all, epolls;  // sorted
  std::vector<int> rings;        // io_uring instances, sorted: their requests' user_data is not read
  // Of `epolls`, those another process has open too (forked after the
  // instance was made, or sent it): instance -> that process. Filled by
  // find_shared_epolls, before the pause.
  std::map<int, pid_t> shared;
};
Result<DescriptorScan> scan_descriptors(pid_t pid, const DescriptorScan* before = nullptr);

// Every watch of every epoll instance among the process's descriptors (its
// /proc fdinfo; an instance shared with another process is read too).
// `scanned`, if given, gets the descriptor scan it made.
Result<std::vector<EpollWatch>> read_epoll_watches(pid_t pid, const DescriptorScan* before = nullptr,
                                                   DescriptorScan* scanned = nullptr);

// The (instance, descriptor) pairs more than one watch has: the first
// file's descriptor was closed and its number reused for a file registered
// again (EPOLL_CTL_MOD by that number would set the other's word).
std::set<std::pair<int, int>> reused_descriptors(const std::vector<EpollWatch>& watches);

// Why the process could not set `watch`'s data word, or could only wrongly
// (EPOLL_CTL_MOD names a watch by its instance and descriptor): the watch is
// EPOLLEXCLUSIVE, or its descriptor number is among `reused`. Empty when
// it can. A descriptor closed since, or reused for a file not registered,
// makes the call fail at the commit, which is then rolled back
// (set_epoll_data says why).
std::string why_data_cannot_be_set(const EpollWatch& watch, const std::set<std::pair<int, int>>& reused);

// Fills `scan.shared`: every other process that has one of its epoll
// instances open (kcmp on every epoll descriptor of every process graft
// may inspect; milliseconds on a busy machine: made before the pause).
void find_shared_epolls(pid_t pid, DescriptorScan& scan);

// A child of `pid` that has epoll instance `epoll_fd` open too, or 0: the
// check inside the pause, for one forked since find_shared_epolls.
pid_t child_sharing_epoll(pid_t pid, int epoll_fd);

// A watch's data word to set: where its object is now.
struct EpollDataWrite {
  EpollWatch watch;   // as read: its data word the old one
  uint64_t data = 0;  // the new one
};

// Gives each watch its new data word, its events as they are: EPOLL_CTL_MOD
// for each, run in one borrowed thread of the stopped process by a few
// instructions of graft's (target/epoll_batch.S) in a mapping of graft's,
// unmapped after (a word or two: one injected system call each). Stops at
// the first the kernel refuses, naming it; `done`: how many were set, in
// order.
Status set_epoll_data(TracedProcess& process, std::span<const EpollDataWrite> writes, size_t& done);
// The same, one injected system call per word (two ptrace stops each: about
// 0.1 ms), the event in scratch memory below the thread's stack: what
// set_epoll_data does for a word or two, or where the target will not map
// writable code.
Status set_epoll_data_each(TracedProcess& process, std::span<const EpollDataWrite> writes, size_t& done);
// Gives each watch back the data word it has in `watches` (as read before a
// commit): the undo of set_epoll_data, harmless for a word never changed.
Status set_epoll_data_back(TracedProcess& process, std::span<const EpollWatch> watches);

}  // namespace graft
