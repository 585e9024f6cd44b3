// Unwinding stacks through code without frame pointers (libc's qsort) and
// through signal frames: the unwinder names the frames, a refusal names the
// chain of affected frames, and an update waits until the thread is out.
#include <future>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../support/harness.h"
#include "elf/elf_file.h"
#include "target/process.h"
#include "target/unwind.h"

namespace graft::test {
namespace {

using namespace std::chrono_literals;

class Unwind : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir = new TempDir();
    // strict: every function stays a function of its own, so each frame is there to be named.
    const Update update = build_update(*dir, "unwind", {"--graft-policy=strict"});
    v1 = update.v1;
    v2 = update.v2;
    patch = update.patch;
  }
  static void TearDownTestSuite() { delete dir; }

  static TempDir* dir;
  static std::filesystem::path v1, v2, patch;
};
TempDir* Unwind::dir = nullptr;
std::filesystem::path Unwind::v1, Unwind::v2, Unwind::patch;

// Names of the executable's functions at run-time addresses ("" outside it).
class Symbols {
 public:
  Symbols(pid_t pid, const std::filesystem::path& binary) {
    auto elf = ElfFile::open(binary);
    if (!elf) throw std::runtime_error(elf.error().message);
    const auto maps = read_maps(pid).value();
    for (const auto& m : maps)
      if (m.offset == 0 && m.path == std::filesystem::canonical(binary).string()) bias_ = m.start - elf.value()->load_address();
    for (const auto& s : elf.value()->symbols())
      if (s.type == 2 /* STT_FUNC */ && s.size) functions_.push_back({s.value + bias_, s.value + bias_ + s.size, s.name});
  }
  std::string at(uint64_t address) const {
    for (const auto& f : functions_)
      if (address >= f.start && address < f.end) return f.name;
    return "";
  }

 private:
  struct Function {
    uint64_t start, end;
    std::string name;
  };
  uint64_t bias_ = 0;
  std::vector<Function> functions_;
};

// The frames of every thread of a process, named: one stop, one Unwinder.
struct NamedFrame {
  std::string function;  // "" outside the executable (libc, the vDSO)
  StackFrame frame;
};
std::vector<std::vector<NamedFrame>> unwind_all(pid_t pid, const std::filesystem::path& binary) {
  auto process = TracedProcess::attach(pid);
  if (!process) throw std::runtime_error(process.error().message);
  if (auto stopped = process.value()->stop_all(); !stopped) throw std::runtime_error(stopped.error().message);
  const auto maps = read_maps(pid).value();
  const Symbols symbols(pid, binary);
  Unwinder unwinder(pid, maps);
  std::vector<std::vector<NamedFrame>> threads;
  for (const auto& t : process.value()->threads()) {
    const uint64_t sp = t.regs.rsp & ~uint64_t{7};
    auto map = std::find_if(maps.begin(), maps.end(), [&](const MemoryMap& m) { return m.contains(sp); });
    if (map == maps.end()) throw std::runtime_error("a stack is not mapped");
    auto stack = process.value()->read(RemoteAddress(sp), map->end - sp);
    if (!stack) throw std::runtime_error(stack.error().message);
    std::vector<NamedFrame> named;
    for (const auto& f : unwinder.unwind(t.regs, StackMemory(pid, sp, *stack)))
      named.push_back({symbols.at(f.exact ? f.pc : f.pc - 1), f});
    threads.push_back(std::move(named));
  }
  return threads;  // the TracedProcess lets the threads go
}

// The thread whose frames include `function`, or nullptr.
const std::vector<NamedFrame>* thread_in(const std::vector<std::vector<NamedFrame>>& threads, const std::string& function) {
  for (const auto& frames : threads)
    for (const auto& f : frames)
      if (f.function == function) return &frames;
  return nullptr;
}

std::string dump(const std::vector<NamedFrame>& frames) {
  std::string out;
  for (const auto& f : frames)
    out += fmt::format("  {:#x} {}{}{}\n", f.frame.pc, f.function.empty() ? "?" : f.function,
                       f.frame.signal_frame ? " [signal frame]" : "",
                       f.frame.found == StackFrame::Found::FramePointer ? " [frame pointer]" : "");
  return out;
}

// The position of each name in `frames`, in this order; -1 from the first missing one on.
std::vector<int> positions(const std::vector<NamedFrame>& frames, const std::vector<std::string>& names) {
  std::vector<int> out(names.size(), -1);
  auto from = frames.begin();
  for (size_t i = 0; i < names.size(); ++i) {
    from = std::find_if(from, frames.end(), [&](const NamedFrame& f) { return f.function == names[i]; });
    if (from == frames.end()) break;
    out[i] = static_cast<int>(from - frames.begin());
    ++from;
  }
  return out;
}

// A thread waits in a SIGUSR1 handler, called from compare_items: the
// unwinder goes from the handler through __restore_rt's signal frame (an 'S'
// CIE in libc, registers as expressions on the saved context) to the code the
// signal interrupted, and on to the thread's start.
TEST_F(Unwind, NamesFramesThroughASignalHandler) {
  Process target({v1.string(), "signal"});
  ASSERT_EQ(target.ask("hold"), "holding");
  const auto threads = unwind_all(target.pid(), v1);
  const auto* frames = thread_in(threads, "compare_items");
  ASSERT_NE(frames, nullptr);
  const auto at = positions(*frames, {"compare_items", "on_signal", "idle_loop", "idler"});
  ASSERT_NE(at.back(), -1) << dump(*frames);
  // Right after the handler: the trampoline's signal frame (in libc), then
  // the interrupted pause() (an exact pc), then idle_loop.
  const auto& trampoline = (*frames)[static_cast<size_t>(at[1]) + 1];
  EXPECT_TRUE(trampoline.frame.signal_frame) << dump(*frames);
  EXPECT_EQ(trampoline.frame.found, StackFrame::Found::Cfi) << dump(*frames);
  EXPECT_TRUE((*frames)[static_cast<size_t>(at[1]) + 2].frame.exact) << dump(*frames);
  EXPECT_EQ(at[2], at[1] + 3) << dump(*frames);
  // The outermost frames (start_thread, clone3) are libc's, and then the stack ends.
  EXPECT_LE(frames->size(), static_cast<size_t>(at[3]) + 3) << dump(*frames);
  EXPECT_EQ(target.ask("release"), "released");
}

// compare_items called by libc's qsort, whose merge sort keeps a count in
// rbp: the frame-pointer chain ends in garbage there, the CFI does not.
TEST_F(Unwind, NamesFramesThroughLibcWithoutFramePointers) {
  Process target({v1.string(), "qsort"});
  ASSERT_EQ(target.ask("hold"), "holding");
  const auto threads = unwind_all(target.pid(), v1);
  const auto* frames = thread_in(threads, "compare_items");
  ASSERT_NE(frames, nullptr);
  const auto at = positions(*frames, {"compare_items", "sort_items", "sorter"});
  ASSERT_NE(at.back(), -1) << dump(*frames);
  EXPECT_GE(at[1], at[0] + 2) << "libc's qsort frames between them\n" << dump(*frames);
  for (int k = at[0] + 1; k <= at[2]; ++k)
    EXPECT_EQ((*frames)[static_cast<size_t>(k)].frame.found, StackFrame::Found::Cfi) << k << "\n" << dump(*frames);
  EXPECT_EQ(target.ask("release"), "released");
  EXPECT_EQ(target.ask("sort"), "sorted 1");
}

// The thread waits in read() inside compare_items, under libc's qsort,
// under sort_items. compare_items moves into its new code when wait_for
// returns (a transfer point); sort_items, whose frame is in the middle of
// its call to qsort, cannot: the refusal names it, found through qsort's
// frames (CFI). Then, with a long timeout, the update waits while the thread
// is inside sort_items and lands once it has left.
TEST_F(Unwind, UpdateWaitsForAThreadInsideACalleeOfQsort) {
  Process target({v1.string(), "qsort"});
  ASSERT_EQ(target.ask("hold"), "holding");
  auto refused = graft({"apply", std::to_string(target.pid()), patch.string(), "--json", "--timeout", "300"});
  ASSERT_EQ(refused.exit_code, 1) << refused.err;
  EXPECT_NE(refused.err.find("is in sort_items at main.c:"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("(on its stack)"), std::string::npos) << refused.err;
  const auto json = nlohmann::json::parse(refused.out);
  EXPECT_EQ(json["ok"], false);
  EXPECT_FALSE(json["hint"].get<std::string>().empty()) << json.dump();
  ASSERT_EQ(json["blocking"].size(), 1u) << json.dump();
  const auto& frames = json["blocking"][0]["frames"];
  ASSERT_EQ(frames.size(), 1u) << json.dump();
  EXPECT_EQ(frames[0]["function"], "sort_items");
  EXPECT_EQ(frames[0]["executing"], false);
  EXPECT_EQ(frames[0]["where"].get<std::string>().rfind("main.c:", 0), 0u) << json.dump();
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));

  auto applying = std::async(std::launch::async, [&] {
    return graft({"apply", std::to_string(target.pid()), patch.string(), "--json", "--timeout", "30000"});
  });
  // The update waits while the thread is held inside, with its checkpoints
  // planted (sort_items's entry among them) before the thread is let go: it
  // then arrives at one. Waited for, not assumed after a fixed time (a slow
  // graft, the sanitized one on a busy machine, planted after the release).
  ASSERT_TRUE(checkpoint_planted(target.pid(), v1, "sort_items", applying))
      << "graft did not wait for the thread inside sort_items";
  EXPECT_EQ(target.ask("v").substr(0, 2), "1 ");
  EXPECT_EQ(target.ask("release"), "released");
  ASSERT_EQ(applying.wait_for(60s), std::future_status::ready);
  const auto applied = applying.get();
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_GE(nlohmann::json::parse(applied.out)["arrivals"].get<int>(), 1);
  EXPECT_EQ(target.ask("v").substr(0, 2), "2 ");
  EXPECT_EQ(target.ask("sort"), "sorted 1");
}

// Across a signal frame: compare_items runs in a handler that interrupted
// idle_loop (changed too), and the chain names both.
TEST_F(Unwind, RefusalNamesTheChainThroughASignalFrame) {
  Process target({v1.string(), "signal"});
  ASSERT_EQ(target.ask("hold"), "holding");
  // Without transfer points: idle_loop's frame would otherwise wait to move at pause().
  auto refused = graft({"apply", std::to_string(target.pid()), patch.string(), "--json", "--timeout", "300",
                        "--no-transfer-frames"});
  ASSERT_EQ(refused.exit_code, 1) << refused.err;
  const auto json = nlohmann::json::parse(refused.out);
  ASSERT_EQ(json["blocking"].size(), 1u) << json.dump();
  const auto& frames = json["blocking"][0]["frames"];
  ASSERT_EQ(frames.size(), 2u) << json.dump();
  EXPECT_EQ(frames[0]["function"], "compare_items");
  EXPECT_EQ(frames[1]["function"], "idle_loop");
  EXPECT_EQ(frames[1]["executing"], false);  // it called pause()
  EXPECT_NE(refused.err.find("called from idle_loop at main.c:"), std::string::npos) << refused.err;
  EXPECT_EQ(target.ask("release"), "released");
  EXPECT_EQ(target.ask("v").substr(0, 2), "1 ");
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
}

}  // namespace
}  // namespace graft::test
