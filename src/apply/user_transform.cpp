#include "apply/user_transform.h"

#include "target/remote.h"

#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <cstddef>
#include <cstring>

// graft.h's internal section: struct graft_transform_batch, as the patch's runner reads it.
#define GRAFT_INTERNAL 1
#include <graft/graft.h>

namespace graft::apply {
namespace {

constexpr uint64_t kStackBytes = 256 << 10;   // the runner's and the transformers' stack
constexpr uint64_t kHeaderBytes = 4096;       // struct graft_transform_batch, with room to spare
constexpr uint64_t kBatchBytes = 4 << 20;     // old and new objects per run, at most
constexpr uint64_t kDoneOffset = offsetof(graft_transform_batch, done);
static_assert(sizeof(graft_transform_batch) <= kHeaderBytes);

// A graft_transform_batch as the target reads it: target addresses and
// counts, each member a 64-bit word at its offset in graft.h's declaration.
struct BatchWords {
  uint64_t transform, from, from_size, to, to_size, count, done;
};
std::vector<uint8_t> encode_batch(const BatchWords& words) {
  std::vector<uint8_t> bytes(sizeof(graft_transform_batch));
  const auto put = [&](size_t offset, uint64_t word) { std::memcpy(bytes.data() + offset, &word, sizeof word); };
#define GRAFT_PUT_WORD(member)                                                                    \
  static_assert(sizeof(graft_transform_batch::member) == sizeof(uint64_t), #member " is a word"); \
  put(offsetof(graft_transform_batch, member), words.member)
  GRAFT_PUT_WORD(transform);
  GRAFT_PUT_WORD(from);
  GRAFT_PUT_WORD(from_size);
  GRAFT_PUT_WORD(to);
  GRAFT_PUT_WORD(to_size);
  GRAFT_PUT_WORD(count);
  GRAFT_PUT_WORD(done);
#undef GRAFT_PUT_WORD
  return bytes;
}

uint64_t round_up(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

struct Batch {
  size_t first = 0, count = 0;
};

// Consecutive jobs of one transformer, as many as fit in a run.
std::vector<Batch> batches(const std::vector<UserTransformJob>& jobs) {
  std::vector<Batch> out;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const auto& j = jobs[i];
    if (!out.empty()) {
      Batch& b = out.back();
      const auto& first = jobs[b.first];
      if (first.function == j.function && first.from.size() == j.from.size() && first.to_size == j.to_size &&
          (b.count + 1) * (j.from.size() + j.to_size) <= kBatchBytes) {
        ++b.count;
        continue;
      }
    }
    out.push_back({i, 1});
  }
  return out;
}

}  // namespace

Status run_user_transformers(TracedProcess& process, std::vector<UserTransformJob>& jobs, uint64_t runner,
                             const std::function<Result<uint64_t>(const std::string&)>& address_of,
                             std::chrono::milliseconds limit, UserTransformReport& report) {
  if (jobs.empty()) return ok();
  const auto runs = batches(jobs);
  uint64_t data_bytes = 0;
  for (const auto& b : runs)
    data_bytes = std::max(data_bytes, round_up(b.count * jobs[b.first].from.size(), 16) + b.count * jobs[b.first].to_size);
  // The stack comes first: a transformer that overflows it runs off the
  // bottom of the mapping and faults, instead of overwriting anything.
  GRAFT_ASSIGN(auto syscalls, RemoteSyscalls::open(process));
  GRAFT_ASSIGN(auto scratch, RemoteMapping::anonymous(syscalls, round_up(kStackBytes + kHeaderBytes + data_bytes, 4096),
                                                      "the transformers"));
  GRAFT_ASSIGN(auto borrowed, BorrowedThread::take(process));
  const RemoteAddress header = scratch.start() + kStackBytes;
  const RemoteAddress from_at = header + kHeaderBytes;
  for (const auto& b : runs) {
    const UserTransformJob& first = jobs[b.first];
    GRAFT_ASSIGN(const uint64_t function, address_of(first.function));
    const uint64_t from_size = first.from.size(), to_size = first.to_size;
    const RemoteAddress to_at = from_at + round_up(b.count * from_size, 16);
    std::vector<uint8_t> from, to;
    from.reserve(b.count * from_size);
    to.reserve(b.count * to_size);
    for (size_t k = b.first; k < b.first + b.count; ++k) {
      from.insert(from.end(), jobs[k].from.begin(), jobs[k].from.end());
      to.insert(to.end(), jobs[k].to, jobs[k].to + to_size);
    }
    const std::vector<uint8_t> head = encode_batch({.transform = function, .from = from_at.value(), .from_size = from_size,
                                                    .to = to_at.value(), .to_size = to_size, .count = b.count,
                                                    .done = ~uint64_t{0}});
    GRAFT_TRY(process.write(header, head));
    GRAFT_TRY(process.write(from_at, from));
    GRAFT_TRY(process.write(to_at, to));
    GRAFT_ASSIGN(const BorrowedRun run, borrowed.call(RemoteAddress(runner), header.value(), header, limit));
    GRAFT_ASSIGN(const auto done_bytes, process.read(header + kDoneOffset, 8));
    uint64_t done = 0;
    std::memcpy(&done, done_bytes.data(), 8);
    if (run.outcome != BorrowedRun::Trapped || done != b.count) {
      const UserTransformJob& job = jobs[b.first + std::min<uint64_t>(done, b.count - 1)];
      const std::string what = fmt::format("the transformer for {} ({})", job.type, job.function);
      const std::string after = "the update was abandoned and nothing was changed; the program runs on the old version";
      switch (run.outcome) {
        case BorrowedRun::Faulted:
          return make_error("{} faulted with {} (address {:#x}, pc {:#x}) on the object at {:#x}: {}", what,
                            signal_name(run.signal), run.fault_address, run.pc, job.address, after);
        case BorrowedRun::TimedOut:
          return make_error("{} did not finish within {} ms on the object at {:#x} (a loop, or a lock a stopped thread "
                            "holds? a transformer must not lock, allocate or block): {}",
                            what, limit.count(), job.address, after);
        case BorrowedRun::Stopped:
          return make_error("{} stopped unexpectedly ({}) on the object at {:#x}: {}", what, signal_name(run.signal),
                            job.address, after);
        case BorrowedRun::Trapped:
          return make_error("{} ended on a trap of its own (pc {:#x}) on the object at {:#x}: {}", what, run.pc,
                            job.address, after);
      }
    }
    GRAFT_ASSIGN(const auto results, process.read(to_at, b.count * to_size));
    for (size_t k = 0; k < b.count; ++k)
      std::memcpy(jobs[b.first + k].to, results.data() + k * to_size, to_size);
    report.objects += b.count;
    ++report.batches;
  }
  return ok();
}

}  // namespace graft::apply
