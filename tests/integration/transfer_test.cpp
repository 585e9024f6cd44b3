// On-stack replacement of a never-returning loop whose body changed: a
// thread just back from a call that both versions share (read() here) is
// moved into the new body at the commit, its frame rebuilt (locals, the
// caller's callee-saved registers, values the new code set before its loop).
// The workers sit in read() between requests: they are moved as they come
// back from it, while requests keep arriving.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "../support/harness.h"

namespace graft::test {
namespace {

class Transfer : public ::testing::Test {
 protected:
  TempDir dir;

  std::filesystem::path diff(const std::filesystem::path& from, const std::filesystem::path& to, std::string* explain,
                             std::vector<std::string> args = {}) {
    args.push_back("--explain");
    const auto made = graft::test::diff(dir, from, to, "body.graft", args);
    *explain = made.out;
    return made.patch;
  }

  // What --explain says about the loop, from its line on ("" if nothing).
  std::string explain_loop(const std::string& to_version, const std::vector<std::string>& args = {}) {
    std::string explain;
    diff(build_program(dir, "loopbody", "v1"), build_program(dir, "loopbody", to_version), &explain, args);
    const auto loop = explain.find("main.c::worker_loop");
    return loop == std::string::npos ? "" : explain.substr(loop);
  }
  // graft `args` while the workers are woken again and again (requests keep
  // them coming back from read()); `wakes`: how many wakes that took.
  static CommandResult apply_while_waking(Process& target, const std::vector<std::string>& args, long& wakes) {
    std::atomic<bool> done{false};
    CommandResult result;
    std::thread apply([&] {
      result = graft(args);
      done = true;
    });
    for (wakes = 0; !done && wakes < 100000; ++wakes) EXPECT_EQ(target.ask("wake"), "woken");
    apply.join();
    return result;
  }
  // A revert while a thread runs the new body (moved at a transfer point) is
  // refused in one line naming the function it is in, and changes nothing.
  static void expect_revert_refused(pid_t pid, const std::string& function) {
    auto reverted = graft({"revert", std::to_string(pid), "--timeout", "300"});
    EXPECT_EQ(reverted.exit_code, 1);
    EXPECT_EQ(std::count(reverted.err.begin(), reverted.err.end(), '\n'), 1) << reverted.err;  // one line
    // The function, in the chain of blocking frames (the thread may be in a
    // function of the patch it calls: "is in publish ..., called from worker (patch").
    EXPECT_NE(reverted.err.find(function + " (patch "), std::string::npos) << reverted.err;
    EXPECT_NE(reverted.err.find("cannot be moved back"), std::string::npos) << reverted.err;
  }
};

TEST_F(Transfer, DiffSaysWhereAThreadMayMoveIntoTheNewBody) {
  const std::string loop = explain_loop("v2");
  EXPECT_NE(loop.find("not continuable: its code changes length"), std::string::npos) << loop;
  EXPECT_NE(loop.find("transferable at the call to read at main.c:35: a thread just back from it moves into the new "
                      "code"), std::string::npos) << loop;
}

// v3 adds a local that lives across the read: no old local gives its value.
TEST_F(Transfer, DiffSaysWhyACallIsNoTransferPoint) {
  // The loop never returns and has no place left where its threads move: the diff refuses it.
  const auto v1 = build_program(dir, "loopbody", "v1"), v3 = build_program(dir, "loopbody", "v3");
  auto refused = graft({"diff", v1.string(), v3.string(), "-o", (dir.path() / "stuck.graft").string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("main.c::worker_loop never returns (a thread started by main) and is replaced, but its "
                             "threads have no place to move into the new code: not continuable (its code changes "
                             "length"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--allow-stuck-threads worker_loop"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.err.find('\n'), refused.err.size() - 1) << refused.err;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "stuck.graft"));
  // Told to, it writes the patch, and --explain says why at each call.
  const std::string loop = explain_loop("v3", {"--allow-stuck-threads", "worker_loop"});
  EXPECT_NE(loop.find("never returns (a thread started by main): its threads move into the new code at no place"),
            std::string::npos) << loop;
  EXPECT_NE(loop.find("not transferable at the call to read at main.c:39: local bytes is new and the new code sets "
                      "it to a value it computes before its loop"), std::string::npos) << loop;
  // Only calls that wait are candidates (graft/blocking_calls.h): not write().
  EXPECT_EQ(loop.find("the call to write"), std::string::npos) << loop;
  EXPECT_EQ(loop.find("  transferable at"), std::string::npos) << loop;
}

// Idle workers blocked inside read() do not hold the update: it commits at
// once, each worker's return slot leading into code of the patch that
// rebuilds its frame for the new body when read() returns. They move then,
// carrying their locals over, with no EINTR and no lost request.
// C++: Server::run() never returns and keeps RAII locals across its read():
// a short std::string (its characters inside the object), a std::vector, a
// std::unique_ptr and the byte read() fills. v2 changes the loop's body;
// each worker moves into it when read() returns, its objects carried over
// in place (an object holding pointers is never copied elsewhere).
TEST_F(Transfer, CxxMemberLoopCarriesItsRaiiLocalsOverInPlace) {
  const std::vector<std::string> flags = {"-fno-exceptions"};
  const auto v1 = build_program(dir, "cxxloop", "v1", flags), v2 = build_program(dir, "cxxloop", "v2", flags);
  std::string explain;
  const auto patch = diff(v1, v2, &explain);
  EXPECT_NE(explain.find("transferable at the call to read at server.cpp:"), std::string::npos) << explain;
  Process target({v1.string()});
  ASSERT_EQ(target.ask("wake"), "woken");
  ASSERT_EQ(target.ask("wake"), "woken");
  ASSERT_EQ(target.ask("report"), "w0:2:2 w1:2:2");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  // Both move: idle in read() (almost always), or just back from it.
  const auto report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report.value("frames_continued", 0) + report.value("frames_transferred", 0), 2) << result.out;
  EXPECT_EQ(target.ask("v"), "2");
  ASSERT_EQ(target.ask("wake"), "woken");
  // The name, the count and the vector carried over; the new body counts by 10.
  EXPECT_EQ(target.ask("report"), "w0:12:3 w1:12:3");
  ASSERT_EQ(target.ask("wake"), "woken");
  EXPECT_EQ(target.ask("report"), "w0:22:4 w1:22:4");
}

// A loop whose frame points to changed data: each worker holds `it`, a
// pointer to its struct item, across read(). v2 changes struct item's layout
// (transformed in place) and the loop's body uses the new field: the items
// are found (from the global and the frames), transformed, and each worker
// moves into the new body with `it` still pointing at its item.
TEST_F(Transfer, AFrameHoldingChangedDataMovesWithIt) {
  const auto v1 = build_program(dir, "holder", "v1"), v2 = build_program(dir, "holder", "v2");
  std::string explain;
  const auto patch = diff(v1, v2, &explain);
  EXPECT_NE(explain.find("transferable at the call to read at main.c:"), std::string::npos) << explain;
  EXPECT_NE(explain.find("local it"), std::string::npos) << explain;
  Process target({v1.string()});
  ASSERT_EQ(target.ask("wake"), "woken");
  ASSERT_EQ(target.ask("wake"), "woken");
  ASSERT_EQ(target.ask("report"), "2 2");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  const auto report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report.value("objects", 0), 2) << result.out;  // both items, in place
  EXPECT_EQ(report.value("frames_continued", 0) + report.value("frames_transferred", 0), 2) << result.out;
  EXPECT_EQ(target.ask("v"), "2");
  ASSERT_EQ(target.ask("wake"), "woken");
  EXPECT_EQ(target.ask("report"), "3/6 3/6");  // the count carried over, moved within the item; the new field used
  ASSERT_EQ(target.ask("wake"), "woken");
  EXPECT_EQ(target.ask("report"), "4/8 4/8");
}

TEST_F(Transfer, IdleWorkersDoNotHoldTheUpdateAndMoveWhenTheirCallReturns) {
  const auto v1 = build_program(dir, "loopbody", "v1");
  std::string explain;
  const auto patch = diff(v1, build_program(dir, "loopbody", "v2"), &explain);
  Process target({v1.string()});
  ASSERT_EQ(target.ask("wake"), "woken");
  ASSERT_EQ(target.ask("report"), "11 11 11");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "2000", "--json",
                       "--transfer-frames"});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  const auto json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json.value("frames_continued", 0), 3) << result.out;  // the three idle workers
  EXPECT_EQ(json.value("frames_transferred", 0), 0) << result.out;
  EXPECT_EQ(target.ask("v"), "2");
  EXPECT_EQ(target.ask("report"), "11 11 11");  // still waiting in the old body's read()
  ASSERT_EQ(target.ask("wake"), "woken");
  EXPECT_EQ(target.ask("report"), "22 22 22");  // moved: count carried over, the new body counts
  ASSERT_EQ(target.ask("wake"), "woken");
  EXPECT_EQ(target.ask("report"), "32 32 32");
}

// A revert before the idle workers came back maps their return slots back:
// they go on in the old body.
TEST_F(Transfer, RevertBeforeIdleWorkersMovedKeepsThemInTheOldBody) {
  const auto v1 = build_program(dir, "loopbody", "v1");
  std::string explain;
  const auto patch = diff(v1, build_program(dir, "loopbody", "v2"), &explain);
  Process target({v1.string()});
  ASSERT_EQ(target.ask("wake"), "woken");
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "2000", "--json",
                        "--transfer-frames"});
  ASSERT_EQ(applied.exit_code, 0) << applied.out << applied.err;
  auto reverted = graft({"revert", std::to_string(target.pid()), "--timeout", "2000", "--json"});
  ASSERT_EQ(reverted.exit_code, 0) << reverted.out << reverted.err;
  EXPECT_EQ(nlohmann::json::parse(reverted.out).value("frames_continued", 0), 3) << reverted.out;
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
  EXPECT_EQ(target.ask("v"), "1");
  ASSERT_EQ(target.ask("wake"), "woken");
  EXPECT_EQ(target.ask("report"), "21 21 21");
}

// Without transfer points (--no-transfer-frames), workers blocked in read() of
// the changed loop keep the update waiting, idle or busy: it is refused at the
// deadline, the target untouched.
TEST_F(Transfer, WithoutTransferPointsWorkersKeepTheUpdateWaitingAndTheRefusalLeavesNoTrace) {
  const auto v1 = build_program(dir, "loopbody", "v1");
  std::string explain;
  const auto patch = diff(v1, build_program(dir, "loopbody", "v2"), &explain);
  Process target({v1.string()});
  ASSERT_EQ(target.ask("wake"), "woken");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "300", "--json",
                       "--no-transfer-frames"});
  EXPECT_EQ(result.exit_code, 1) << result.out;
  const auto json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["blocking"].size(), 3u) << result.out;
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
  EXPECT_EQ(target.ask("v"), "1");
  ASSERT_EQ(target.ask("wake"), "woken");
  EXPECT_EQ(target.ask("report"), "21 21 21");

  long wakes = 0;
  const CommandResult refused = apply_while_waking(
      target, {"apply", std::to_string(target.pid()), patch.string(), "--timeout", "300", "--json", "--no-transfer-frames"},
      wakes);
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
  EXPECT_EQ(target.ask("v"), "1");
}

// Each worker counts requests in a local of its frame; v2's body adds a call
// at the top of the loop and reports count * 10 + 2 instead of + 1.
TEST_F(Transfer, WorkersMoveIntoTheNewBodyOfTheirLoopKeepingTheirLocals) {
  const auto v1 = build_program(dir, "loopbody", "v1");
  std::string explain;
  const auto patch = diff(v1, build_program(dir, "loopbody", "v2"), &explain);
  Process target({v1.string()});
  for (int i = 0; i < 3; ++i) ASSERT_EQ(target.ask("wake"), "woken");
  ASSERT_EQ(target.ask("report"), "31 31 31");

  // Requests keep the workers coming back from read(), where they move.
  long wakes = 0;
  const CommandResult applied = apply_while_waking(
      target, {"apply", std::to_string(target.pid()), patch.string(), "--json", "--timeout", "10000", "--transfer-frames"},
      wakes);
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  // Each worker moved: just back from read() (its frame rebuilt by graft at
  // the commit) or blocked in it (rebuilt by the patch's code when it returns).
  const auto report = nlohmann::json::parse(applied.out);
  EXPECT_EQ(report.value("frames_transferred", 0) + report.value("frames_continued", 0), 3) << report.dump();
  EXPECT_EQ(target.ask("v"), "2");
  // Every worker carried its count over and counts on in the new body.
  const long count = 3 + wakes;
  ASSERT_EQ(target.ask("wake"), "woken");
  const std::string expected = std::to_string((count + 1) * 10 + 2);
  EXPECT_EQ(target.ask("report"), expected + " " + expected + " " + expected);
}

// Once the workers run the new body (moved at a transfer point), a revert
// cannot move them back: it is refused in one line naming the function they
// are in and what to do, and the program runs on in the new body.
TEST_F(Transfer, RevertAfterWorkersMovedIsRefusedNamingTheirFunction) {
  const auto v1 = build_program(dir, "loopbody", "v1");
  std::string explain;
  const auto patch = diff(v1, build_program(dir, "loopbody", "v2"), &explain);
  Process target({v1.string()});
  ASSERT_EQ(target.ask("wake"), "woken");
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "2000", "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.out << applied.err;
  ASSERT_EQ(target.ask("wake"), "woken");
  ASSERT_EQ(target.ask("report"), "22 22 22");  // every worker in the new body
  expect_revert_refused(target.pid(), "main.c::worker_loop");
  EXPECT_EQ(target.ask("v"), "2");
  ASSERT_EQ(target.ask("wake"), "woken");
  EXPECT_EQ(target.ask("report"), "32 32 32");
}

// loopnew v2 changes the locals a worker carries across its read(): `balance`
// goes from int to long (negative: sign-extended), the struct `tally` gets a
// long count and a new member `generation`, and a new local `served` counts
// the wakes served in v2. Each worker reports count/balance/served/generation.
class LoopLocals : public Transfer {
 protected:
  // Every worker's report is what it would be had it run v1 for `count - served`
  // wakes and v2 (starting `served` and `generation` at 0) for the rest.
  static void expect_reports(const std::string& report, long count, bool all_moved) {
    std::istringstream in(report);
    std::string one;
    for (int worker = 0; worker < 3; ++worker) {
      ASSERT_TRUE(in >> one) << report;
      long c = 0, b = 0, s = 0, g = 0;
      int v = 0;
      ASSERT_EQ(std::sscanf(one.c_str(), "%ld/%ld/%ld/%ld/%d", &c, &b, &s, &g, &v), 5) << report;
      EXPECT_EQ(v, 2) << report;
      EXPECT_EQ(c, count) << report;
      EXPECT_EQ(b, -100L * (worker + 1) - count) << report;  // a zero-extended int would be about 4e9
      EXPECT_GE(s, all_moved ? 1 : 0) << report;
      EXPECT_LE(s, count) << report;
      EXPECT_EQ(g, 10 * s) << report;  // the new member started at zero
    }
  }
};

TEST_F(LoopLocals, DiffSaysHowEachLocalIsCarriedOver) {
  std::string explain;
  diff(build_program(dir, "loopnew", "v1"), build_program(dir, "loopnew", "v2"), &explain);
  for (const char* expected : {"transferable at the call to read at main.c:43", "local served (new: 0)",
                               "local balance (converted)", "local state.count (converted)", "local state.c",
                               "local state (new bytes: zero)"})
    EXPECT_NE(explain.find(expected), std::string::npos) << expected << "\n" << explain;
}

// Idle workers move when read() returns, through the patch's frame rebuild code.
TEST_F(LoopLocals, IdleWorkersCarryConvertedAndNewLocalsIntoTheNewBody) {
  const auto v1 = build_program(dir, "loopnew", "v1");
  std::string explain;
  const auto patch = diff(v1, build_program(dir, "loopnew", "v2"), &explain);
  Process target({v1.string()});
  for (int i = 0; i < 2; ++i) ASSERT_EQ(target.ask("wake"), "woken");
  ASSERT_EQ(target.ask("report"), "2/-102/-/-/1 2/-202/-/-/1 2/-302/-/-/1");
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "3000", "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.out << applied.err;
  EXPECT_EQ(nlohmann::json::parse(applied.out).value("frames_continued", 0), 3) << applied.out;
  EXPECT_EQ(nlohmann::json::parse(applied.out).value("frames_moving", 0), 3) << applied.out;  // at their transfer point
  EXPECT_EQ(target.ask("v"), "2");
  ASSERT_EQ(target.ask("wake"), "woken");
  EXPECT_EQ(target.ask("report"), "3/-103/1/10/2 3/-203/1/10/2 3/-303/1/10/2");
  ASSERT_EQ(target.ask("wake"), "woken");
  EXPECT_EQ(target.ask("report"), "4/-104/2/20/2 4/-204/2/20/2 4/-304/2/20/2");
}

// Busy workers move just back from read(), rebuilt by graft at the commit
// (plan_frame_transfers), or blocked in it: the same values either way.
TEST_F(LoopLocals, BusyWorkersCarryConvertedAndNewLocalsIntoTheNewBody) {
  const auto v1 = build_program(dir, "loopnew", "v1");
  std::string explain;
  const auto patch = diff(v1, build_program(dir, "loopnew", "v2"), &explain);
  Process target({v1.string()});
  ASSERT_EQ(target.ask("wake"), "woken");
  long wakes = 0;
  const CommandResult applied = apply_while_waking(
      target, {"apply", std::to_string(target.pid()), patch.string(), "--json", "--timeout", "10000"}, wakes);
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  const auto report = nlohmann::json::parse(applied.out);
  EXPECT_EQ(report.value("frames_transferred", 0) + report.value("frames_continued", 0), 3) << report.dump();
  ASSERT_EQ(target.ask("wake"), "woken");
  expect_reports(target.ask("report"), 1 + wakes + 1, true);
}

// The loop waits in a function of the program that waits in read() (a poll
// wrapper, as real servers have): the call to it is a transfer point, and
// idle workers blocked under it move when it returns.
TEST_F(Transfer, ACallToAFunctionThatWaitsIsATransferPoint) {
  const auto v1 = build_program(dir, "loopwrap", "v1");
  std::string explain;
  const auto patch = diff(v1, build_program(dir, "loopwrap", "v2"), &explain);
  EXPECT_NE(explain.find("transferable at the call to main.c::wait_for_request at main.c:"), std::string::npos)
      << explain;
  Process target({v1.string()});
  ASSERT_EQ(target.ask("wake"), "woken");
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "2000", "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.out << applied.err;
  EXPECT_EQ(nlohmann::json::parse(applied.out).value("frames_continued", 0), 3) << applied.out;
  EXPECT_EQ(target.ask("v"), "2");
  ASSERT_EQ(target.ask("wake"), "woken");
  EXPECT_EQ(target.ask("report"), "22 22 22");
}

// main continues at its start-up calls, but not at the call it serves in
// (mosquitto's main keeps its VERSION string's address in a register across
// its main loop, and every release changes VERSION): the call is a transfer
// point all the same. The update lands while main's thread waits in serve(),
// and main's new code runs when serve() returns: it says the new version.
TEST_F(Transfer, MainContinuableAtItsStartUpCallsMovesAtTheCallItServesIn) {
  const auto v1 = build_program(dir, "mainversion", "v1");
  std::string explain;
  const auto patch = diff(v1, build_program(dir, "mainversion", "v2"), &explain);
  EXPECT_NE(explain.find("transferable at the call to serve at main.c:"), std::string::npos) << explain;
  EXPECT_NE(explain.find("never returns (the program's main): its threads move into the new code at 2 calls where its "
                         "frames continue and 1 transfer point"), std::string::npos) << explain;
  Process target({v1.string()});
  ASSERT_EQ(target.ask("ping"), "pong");
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "5000", "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.out << applied.err;
  EXPECT_EQ(nlohmann::json::parse(applied.out).value("frames_continued", 0), 1) << applied.out;
  EXPECT_EQ(target.ask("ping"), "pong");
  EXPECT_EQ(target.ask("quit"), "bye 1.1");
}

// A call that never returns ends its path: main's die() calls before its
// service call (exit() without a noreturn declaration, its stack arguments
// still pushed) do not lead into the code after them. Before graft knew, it
// found two stack depths at one place and refused, as it refused OpenSSH's
// sshd 10.4 -> 10.5.
TEST_F(Transfer, ACallThatNeverReturnsEndsItsPath) {
  const auto v1 = build_program(dir, "noreturn", "v1");
  std::string explain;
  const auto patch = diff(v1, build_program(dir, "noreturn", "v2"), &explain);
  EXPECT_EQ(explain.find("stack depth"), std::string::npos) << explain;
  EXPECT_NE(explain.find("transferable at the call to serve at main.c:"), std::string::npos) << explain;
  Process target({v1.string()});
  ASSERT_EQ(target.ask("ping"), "pong");
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "5000", "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.out << applied.err;
  EXPECT_EQ(target.ask("ping"), "pong");
  EXPECT_EQ(target.ask("quit"), "bye 1.1");
}

// main keeps a bound it computed once before its loop from a call's result
// (3 * slots(), hoisted into a callee-saved register, clamped by a cmov), and
// no DWARF local names it. The old code computes it by the same instructions
// from the same call to the same, unchanged slots(): the old value moves
// into the new frame (from another register), and the loop keeps counting
// to the bound it had. Without the move the transfer was refused.
TEST_F(Transfer, AValueBothVersionsComputeAlikeBeforeTheLoopComesFromTheOldFrame) {
  const auto v1 = build_program(dir, "hoisted", "v1");
  std::string explain;
  const auto patch = diff(v1, build_program(dir, "hoisted", "v2"), &explain);
  EXPECT_NE(explain.find("computed alike: zx32(cmovnl(cmp32("), std::string::npos) << explain;
  EXPECT_NE(explain.find("call#1 slots()"), std::string::npos) << explain;
  EXPECT_EQ(explain.find("not transferable"), std::string::npos) << explain;
  Process target({v1.string(), "5"});
  ASSERT_EQ(target.ask("s"), "3444");  // 15 weights: 3 * 1111 + 111
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "5000", "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.out << applied.err;
  EXPECT_EQ(nlohmann::json::parse(applied.out).value("frames_moving", 0), 1) << applied.out;  // main, in fgets
  EXPECT_EQ(target.ask("s"), "v2 3444 1");
  EXPECT_EQ(target.ask("s"), "v2 3444 2");
  EXPECT_EQ(target.ask("v"), "2");
}

// The same call with the same arguments, but before the store it reads
// instead of after it: not the same value, so not carried over (the loop's
// wait is no transfer point). Without the order of effects in the
// expression, v4's bound (3 * 5 * argc) would have gone where v5 keeps
// 3 * 0.
TEST_F(Transfer, ACallMadeBeforeTheEffectsItDependsOnIsNotTheSameValue) {
  std::string explain;
  diff(build_program(dir, "hoisted", "v4"), build_program(dir, "hoisted", "v5"), &explain);
  EXPECT_NE(explain.find("not transferable at the call to fgets at main.c:22: r15 is live there but holds no local DWARF "
                         "places (a value the compiler keeps for the loop); the new code computes it as"),
            std::string::npos)
      << explain;
  EXPECT_EQ(explain.find("computed alike"), std::string::npos) << explain;
}

// dropbear's shape: the count a call returned after filling two locals
// through their addresses, spilled and reloaded every turn in the old code,
// and bounds derived from it in stack slots: each is matched, the call named
// with its locals as arguments, and main's thread answers with the values it
// had (3 descriptors, 10 to 12) from the new loop.
TEST_F(Transfer, ValuesSpilledAndReloadedInTheLoopComeFromTheOldFrame) {
  const auto v1 = build_program(dir, "spilled", "v1");
  std::string explain;
  const auto patch = diff(v1, build_program(dir, "spilled", "v2"), &explain);
  EXPECT_NE(explain.find("computed alike: call#1 fill((&local fds+0x0), (&local maxfd+0x0)"), std::string::npos)
      << explain;
  EXPECT_EQ(explain.find("not transferable at the call to fgets"), std::string::npos) << explain;
  Process target({v1.string()});
  ASSERT_EQ(target.ask("x"), "v1 267 113 3");
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "5000", "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.out << applied.err;
  EXPECT_EQ(nlohmann::json::parse(applied.out).value("frames_moving", 0), 1) << applied.out;
  EXPECT_EQ(target.ask("x"), "v2 267 113 3 12");
}

// The release also changes slots(): the old bound is not what the new code
// would compute, so the loop's wait is no transfer point, and the reason names
// the changed callee.
TEST_F(Transfer, AValueComputedFromACallThePatchChangesIsNotCarriedOver) {
  std::string explain;
  diff(build_program(dir, "hoisted", "v1"), build_program(dir, "hoisted", "v3"), &explain);
  EXPECT_NE(explain.find("not transferable at the call to fgets at main.c:25: r15 is live there but holds no local "
                         "DWARF places (a value the compiler keeps for the loop); the new code computes it from a "
                         "call to slots, which the patch changes"),
            std::string::npos)
      << explain;
}

// A switch compiled to a jump table before main's service call: the
// indirect jump goes where the table's entries say (read from their
// relocations), not anywhere, and main moves into its new code at serve().
TEST_F(Transfer, AJumpTableGoesWhereItsEntriesSay) {
  const auto v1 = build_program(dir, "switchmain", "v1");
  std::string explain;
  const auto patch = diff(v1, build_program(dir, "switchmain", "v2"), &explain);
  EXPECT_EQ(explain.find("graft follows no jump table here"), std::string::npos) << explain;
  EXPECT_NE(explain.find("transferable at the call to serve at main.c:"), std::string::npos) << explain;
  Process target({v1.string(), "21"});
  ASSERT_EQ(target.ask("ping"), "pong");
  auto applied = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "5000", "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.out << applied.err;
  EXPECT_EQ(target.ask("ping"), "pong");
  EXPECT_EQ(target.ask("quit"), "bye 1.1 21");  // the limit main computed before the update, kept
}

// An update point is a transfer point too: updatepoint's worker never waits
// in a call (it computes and yields), so its thread can only move at
// graft_update_point(), where graft parks it while the update is pending.
// At -O2 clang keeps acc as rounds * ADD for the loop; under the default
// policy, with no flag, graft-cc's plugin makes every variable live across
// graft_update_point_reached placeable there (without it, the diff refuses:
// "rbx is live there but holds no local DWARF places").
class UpdatePointTransfer : public Transfer {
 protected:
  struct Report {
    long acc = 0, rounds = 0, first = 0;  // first: the first round the new body counted (0 before)
  };
  static Report parse(const std::string& line) {
    Report r;
    EXPECT_EQ(std::sscanf(line.c_str(), "%ld %ld %ld", &r.acc, &r.rounds, &r.first), 3) << line;
    return r;
  }
  // A report once the worker has done a few rounds in the new body.
  static Report after_update(Process& target) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
      Report r = parse(target.ask("report"));
      if ((r.first > 0 && r.rounds > r.first + 10) || std::chrono::steady_clock::now() > deadline) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  std::filesystem::path patch(std::filesystem::path* v1, const std::string& program = "updatepoint",
                              std::string* explained = nullptr) {
    *v1 = build_program(dir, program, "v1");
    std::string explain;
    const auto made = diff(*v1, build_program(dir, program, "v2"), &explain);
    const auto worker = explain.find("main.c::worker");
    EXPECT_NE(worker, std::string::npos) << explain;
    EXPECT_NE(explain.find("transferable at the call to graft_update_point_reached ", worker),
              std::string::npos) << explain;
    EXPECT_EQ(explain.find("not transferable"), std::string::npos) << explain;
    if (explained) *explained = explain.substr(worker == std::string::npos ? 0 : worker);
    return made;
  }
  // A busy worker moves at an update point: acc carries v1's rounds over,
  // then grows by 3 a round in the new body.
  void expect_busy_worker_moves(const std::filesystem::path& v1, const std::filesystem::path& update) {
    Process target({v1.string()});
    const Report before = parse(target.ask("wait 2000"));
    ASSERT_EQ(before.acc, before.rounds);  // v1 adds 1 a round
    auto applied = graft({"apply", std::to_string(target.pid()), update.string(), "--timeout", "10000", "--json"});
    ASSERT_EQ(applied.exit_code, 0) << applied.out << applied.err;
    const auto report = nlohmann::json::parse(applied.out);
    EXPECT_EQ(report.value("frames_transferred", 0) + report.value("frames_continued", 0), 1) << report.dump();
    EXPECT_EQ(target.ask("v"), "2");
    // The worker moved after round first - 1 (no earlier than the report
    // above), carrying acc and rounds over: acc is first - 1 from v1's rounds,
    // then 3 for each round of the new body (reset, it would be 3 * that only).
    const Report r = after_update(target);
    ASSERT_GT(r.first, 0) << "the new body never ran";
    EXPECT_GE(r.first - 1, before.rounds);
    EXPECT_GT(r.rounds, r.first + 10);
    EXPECT_EQ(r.acc, (r.first - 1) + 3 * (r.rounds - (r.first - 1))) << r.acc << " " << r.rounds << " " << r.first;
  }
};

TEST_F(UpdatePointTransfer, ABusyThreadMovesIntoTheNewBodyKeepingItsLocals) {
  std::filesystem::path v1;
  const auto update = patch(&v1);
  expect_busy_worker_moves(v1, update);
}

// GRAFT_UPDATE_POINT("name"): v2 adds a named point between v1's two;
// paired by name, "top" and "published" keep their places (by order, two
// against three would not pair), and the new one has no old counterpart.
TEST_F(UpdatePointTransfer, NamedUpdatePointsPairByName) {
  std::filesystem::path v1;
  std::string explain;
  const auto update = patch(&v1, "namedpoints", &explain);
  auto count = [&](const std::string& what) {
    size_t n = 0;
    for (size_t at = explain.find(what); at != std::string::npos; at = explain.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("  transferable at the call to graft_update_point_reached (update point "), 2u) << explain;
  EXPECT_NE(explain.find("(update point top) at main.c:"), std::string::npos) << explain;
  EXPECT_NE(explain.find("(update point published) at main.c:"), std::string::npos) << explain;
  expect_busy_worker_moves(v1, update);
}

// There is no reverse transfer: a revert while the worker runs the new body
// is refused in one line naming its function, and it runs on in the new body.
TEST_F(UpdatePointTransfer, RevertAfterABusyThreadMovedIsRefused) {
  std::filesystem::path v1;
  const auto update = patch(&v1);
  Process target({v1.string()});
  parse(target.ask("wait 100"));
  auto applied = graft({"apply", std::to_string(target.pid()), update.string(), "--timeout", "10000", "--json"});
  ASSERT_EQ(applied.exit_code, 0) << applied.out << applied.err;
  ASSERT_GT(after_update(target).first, 0);
  expect_revert_refused(target.pid(), "main.c::worker");
  EXPECT_EQ(target.ask("v"), "2");
  const Report r = after_update(target);
  EXPECT_EQ(r.acc, (r.first - 1) + 3 * (r.rounds - (r.first - 1)));
}

}  // namespace
}  // namespace graft::test
