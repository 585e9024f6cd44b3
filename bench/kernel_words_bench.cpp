// What reading epoll's watches costs graft (read_epoll_watches: the target's
// descriptors, each epoll instance's fdinfo): it runs during the pause of an
// update that changes data. This process is the target, with N descriptors
// and one epoll instance watching all of them.
#include <benchmark/benchmark.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <vector>

#include "target/process.h"

namespace {

// state.range(1): 1 if a scan made before the pause is given (the update's case), 0 for a scan from scratch.
void BM_ReadEpollWatches(benchmark::State& state) {
  const int count = static_cast<int>(state.range(0));
  const bool scanned_before = state.range(1) != 0;
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  const auto needed = static_cast<rlim_t>(count + 64);
  if (limit.rlim_cur < needed) limit.rlim_cur = needed;
  if (limit.rlim_max < needed) limit.rlim_max = needed;
  setrlimit(RLIMIT_NOFILE, &limit);  // only ever raised: a later, bigger run needs it
  const int epoll = epoll_create1(0);
  std::vector<int> fds;
  for (int i = 0; i < count; ++i) {
    const int fd = eventfd(0, 0);
    if (fd < 0) {
      state.SkipWithError("eventfd failed (RLIMIT_NOFILE?)");
      break;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = static_cast<uint64_t>(fd);
    epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev);
    fds.push_back(fd);
  }
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

}  // namespace

BENCHMARK_MAIN();
