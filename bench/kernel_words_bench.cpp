// What the kernel's words cost graft inside the pause of an update that
// changes data: reading epoll's watches (read_epoll_watches: the target's
// descriptors, each epoll instance's fdinfo; this process is the target),
// checking that each word can be set (its descriptor still names its file,
// no other process shares the instance), and setting them where their
// objects moved (EPOLL_CTL_MOD in a stopped thread of a child target).
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "target/process.h"
#include "target/remote.h"

namespace {

void allow_descriptors(int count) {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  const auto needed = static_cast<rlim_t>(count + 64);
  if (limit.rlim_cur < needed) limit.rlim_cur = needed;
  if (limit.rlim_max < needed) limit.rlim_max = needed;
  setrlimit(RLIMIT_NOFILE, &limit);  // only ever raised: a later, bigger run needs it
}

// One epoll instance watching `count` eventfds, each with its own number as its word: the instance.
int watch_eventfds(int count, std::vector<int>& fds) {
  const int epoll = epoll_create1(0);
  for (int i = 0; i < count; ++i) {
    const int fd = eventfd(0, 0);
    if (fd < 0) break;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = static_cast<uint64_t>(fd);
    epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev);
    fds.push_back(fd);
  }
  return epoll;
}

// state.range(1): 1 if a scan made before the pause is given (the update's case), 0 for a scan from scratch.
void BM_ReadEpollWatches(benchmark::State& state) {
  const int count = static_cast<int>(state.range(0));
  const bool scanned_before = state.range(1) != 0;
  allow_descriptors(count);
  std::vector<int> fds;
  const int epoll = watch_eventfds(count, fds);
  if (static_cast<int>(fds.size()) != count) state.SkipWithError("eventfd failed (RLIMIT_NOFILE?)");
  auto before = graft::scan_descriptors(getpid());
  if (!before) state.SkipWithError("cannot scan the descriptors");
  for (auto _ : state) {
    auto watches = graft::read_epoll_watches(getpid(), scanned_before && before ? &*before : nullptr);
    if (!watches || watches->size() != fds.size()) state.SkipWithError("not every watch was read");
    benchmark::DoNotOptimize(watches);
  }
  for (int fd : fds) close(fd);
  close(epoll);
}
BENCHMARK(BM_ReadEpollWatches)
    ->ArgsProduct({{100, 1000, 10000}, {0, 1}})
    ->ArgNames({"descriptors", "scanned_before"})
    ->Unit(benchmark::kMillisecond);

// Whether each word can be set, inside the pause. state.range(1) 0: as
// graft first did, a stat of each watch's descriptor (does it still name the
// registered file?) and every process's epoll descriptors compared (kcmp);
// 1: as it does now, only watches sharing a descriptor number (in memory)
// and the target's children, the scan of every process made before the
// pause (find_shared_epolls, measured alone with range(1) 2).
void BM_CheckWatchesCanBeSet(benchmark::State& state) {
  const int count = static_cast<int>(state.range(0));
  const int64_t how = state.range(1);
  allow_descriptors(count);
  std::vector<int> fds;
  const int epoll = watch_eventfds(count, fds);
  auto watches = graft::read_epoll_watches(getpid());
  if (!watches || watches->size() != fds.size()) state.SkipWithError("not every watch was read");
  graft::DescriptorScan scan;
  scan.epolls = {epoll};
  for (auto _ : state) {
    if (how == 0) {
      for (const auto& w : *watches) {
        struct stat file {};
        if (stat(fmt::format("/proc/{}/fd/{}", getpid(), w.fd).c_str(), &file) != 0 || file.st_ino != w.inode)
          state.SkipWithError("a watch's descriptor names another file");
      }
      graft::find_shared_epolls(getpid(), scan);
    } else if (how == 1) {
      const auto reused = graft::reused_descriptors(*watches);
      for (const auto& w : *watches)
        if (!graft::why_data_cannot_be_set(w, reused).empty()) state.SkipWithError("a watch cannot be set");
      if (graft::child_sharing_epoll(getpid(), epoll)) state.SkipWithError("the instance is shared");
    } else {
      graft::find_shared_epolls(getpid(), scan);
    }
    if (!scan.shared.empty()) state.SkipWithError("the instance is shared");
  }
  for (int fd : fds) close(fd);
  close(epoll);
}
BENCHMARK(BM_CheckWatchesCanBeSet)
    ->ArgsProduct({{100, 1000, 10000}, {0, 1, 2}})
    ->ArgNames({"watches", "how"})
    ->Unit(benchmark::kMillisecond);

// Setting N words in a stopped child, as a commit does for N objects that
// moved: one run of graft's code in a borrowed thread (a mapping made and
// unmapped by injected system calls, one EPOLL_CTL_MOD per word inside);
// state.range(1) 0: set_epoll_data_each, one injected system call per word (two ptrace stops
// each, the event in scratch memory below the thread's stack), which
// set_epoll_data does itself for a word or two, where the mapping and the
// run cost more than the calls.
void BM_SetEpollData(benchmark::State& state) {
  const int count = static_cast<int>(state.range(0));
  const bool batched = state.range(1) != 0;
  allow_descriptors(count);
  int ready[2];
  if (pipe(ready) != 0) return state.SkipWithError("pipe failed");
  const pid_t child = fork();
  if (child == 0) {
    std::vector<int> fds;
    watch_eventfds(count, fds);
    const char done = static_cast<int>(fds.size()) == count ? 1 : 0;
    if (write(ready[1], &done, 1) != 1) _exit(1);
    for (;;) pause();
  }
  char done = 0;
  if (read(ready[0], &done, 1) != 1 || !done) state.SkipWithError("the child could not watch its eventfds");
  close(ready[0]);
  close(ready[1]);
  {
    auto watches = graft::read_epoll_watches(child);
    auto process = graft::TracedProcess::attach(child);
    if (!watches || watches->size() != static_cast<size_t>(count) || !process || !(*process)->stop_all()) {
      state.SkipWithError("cannot read or stop the child");
    } else {
      for (auto _ : state) {
        std::vector<graft::EpollDataWrite> writes;
        for (const auto& w : *watches) writes.push_back({w, w.data});
        size_t done = writes.size();
        auto set = batched ? graft::set_epoll_data(**process, writes, done)
                           : graft::set_epoll_data_each(**process, writes, done);
        if (!set || done != writes.size()) state.SkipWithError(set ? "not every word was set" : set.error().message.c_str());
      }
    }
  }
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
}
BENCHMARK(BM_SetEpollData)
    ->ArgsProduct({{1, 100, 1000}, {0, 1}})
    ->Args({10000, 1})
    ->ArgNames({"words", "batched"})->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
