// The cost of graft_update_point() while no update is pending: one load and a
// branch. Compared side by side with the same loop without it.
#include <benchmark/benchmark.h>

#include <graft/graft.h>

static void LoopWithoutUpdatePoint(benchmark::State& state) {
  long sum = 0;
  for (auto _ : state) {
    sum += 1;
    benchmark::DoNotOptimize(sum);
  }
}
BENCHMARK(LoopWithoutUpdatePoint);

static void LoopWithUpdatePoint(benchmark::State& state) {
  long sum = 0;
  for (auto _ : state) {
    graft_update_point();
    sum += 1;
    benchmark::DoNotOptimize(sum);
  }
}
BENCHMARK(LoopWithUpdatePoint);

BENCHMARK_MAIN();
