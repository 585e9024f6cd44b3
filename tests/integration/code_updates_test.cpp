// Live code updates of real multi-threaded processes built with graft-cc.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../support/harness.h"
#include "target/x86.h"

namespace graft::test {
namespace {

class CodeUpdates : public ::testing::Test {
 protected:
  TempDir dir;
  std::filesystem::path patch_file(const std::string& name) { return dir.path() / name; }

  std::filesystem::path make_patch(const std::filesystem::path& from, const std::filesystem::path& to,
                                   const std::string& name, std::string* explain = nullptr) {
    const auto made = diff(dir, from, to, name, {"--explain"});
    if (explain) *explain = made.out;
    return made.patch;
  }

  nlohmann::json apply(pid_t pid, const std::filesystem::path& patch) {
    auto result = graft({"apply", std::to_string(pid), patch.string(), "--json"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return result.exit_code == 0 ? nlohmann::json::parse(result.out) : nlohmann::json{};
  }
};

TEST_F(CodeUpdates, EveryKindOfCodeChangeAppliesAndReverts) {
  // strict: every function stays a function, so each kind of change shows on its own.
  const auto v1 = build_program(dir, "basic", "v1", {"--graft-policy=strict"});
  const auto v2 = build_program(dir, "basic", "v2", {"--graft-policy=strict"});
  std::string explain;
  const auto patch = make_patch(v1, v2, "fix.graft", &explain);
  // Why each function is in the patch; the two static helpers are told apart by file.
  EXPECT_NE(explain.find("compute"), std::string::npos) << explain;
  EXPECT_NE(explain.find("other.c::helper"), std::string::npos) << explain;
  EXPECT_EQ(explain.find("compute.c::helper"), std::string::npos) << explain;
  EXPECT_NE(explain.find("greeting"), std::string::npos) << explain;
  EXPECT_NE(explain.find("added_counter"), std::string::npos) << explain;
  EXPECT_NE(explain.find("handle.c::added"), std::string::npos) << explain;

  Process target({v1.string(), "4"});
  EXPECT_EQ(target.ask("compute 5"), "12");
  EXPECT_EQ(target.ask("other 5"), "400");
  EXPECT_EQ(target.ask("greet"), "hello from v1");
  EXPECT_EQ(target.ask("tick"), "1");
  EXPECT_EQ(target.ask("tick"), "2");
  EXPECT_EQ(target.ask("added"), "unknown command");
  const std::vector<std::string> dispatch_v1{"8", "21", "0", "28", "2", "2", "-7"};
  const std::vector<std::string> dispatch_v2{"107", "210", "-693", "112", "0", "7", "-14"};
  auto dispatch_all = [&] {  // every case of a switch compiled to a jump table
    std::vector<std::string> out;
    for (int op = 0; op < 7; ++op) out.push_back(target.ask("dispatch " + std::to_string(op) + " 7"));
    return out;
  };
  EXPECT_EQ(dispatch_all(), dispatch_v1);
  const long calls_before = std::stol(target.ask("calls"));

  auto report = apply(target.pid(), patch);
  EXPECT_EQ(report["threads"], 5);
  EXPECT_GE(report["functions"].get<int>(), 4);
  EXPECT_TRUE(report.contains("pause_us") && report.contains("total_ms") && report.contains("patch_id"));

  EXPECT_EQ(target.ask("compute 5"), "18");           // changed function
  EXPECT_EQ(target.ask("other 5"), "300");            // changed static helper of another file
  EXPECT_EQ(target.ask("greet"), "hello from v2");    // changed string literal
  EXPECT_EQ(target.ask("tick"), "1003");              // changed code, function-local static kept
  EXPECT_EQ(target.ask("added"), "84");               // new function, new global with its initialiser
  EXPECT_EQ(target.ask("added"), "86");
  EXPECT_EQ(dispatch_all(), dispatch_v2);             // its jump table reaches the new body, not the old one
  // Global state kept (not reset), and the workers still run: the count moves on (asked until it does).
  const long calls_after = std::stol(target.ask("calls"));
  EXPECT_GE(calls_after, calls_before);
  long calls_later = calls_after;
  for (const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       calls_later == calls_after && std::chrono::steady_clock::now() < until;)
    calls_later = std::stol(target.ask("calls"));
  EXPECT_GT(calls_later, calls_after) << "the workers stopped calling";

  auto status = graft({"status", std::to_string(target.pid())});
  EXPECT_EQ(status.exit_code, 0);
  EXPECT_NE(status.out.find(report["patch_id"].get<std::string>()), std::string::npos) << status.out;

  auto revert = graft({"revert", std::to_string(target.pid())});
  ASSERT_EQ(revert.exit_code, 0) << revert.err;
  EXPECT_EQ(target.ask("compute 5"), "12");
  EXPECT_EQ(target.ask("greet"), "hello from v1");
  EXPECT_EQ(target.ask("added"), "unknown command");
  EXPECT_EQ(target.ask("tick"), "4");
  EXPECT_EQ(dispatch_all(), dispatch_v1);
  // The running binary's entries are as they were built (graft-cc's one 2-byte NOP, graft-gcc's two).
  EXPECT_TRUE(x86::is_unpatched_entry(entry_bytes(target.pid(), v1, "compute")));
  EXPECT_TRUE(text_matches_binary(target.pid(), v1));
  EXPECT_NE(graft({"status", std::to_string(target.pid())}).out.find("no graft patches"), std::string::npos);
}

TEST_F(CodeUpdates, ChangeThroughInliningUpdatesTheCallers) {
  const auto v1 = build_program(dir, "basic", "v1", {"--graft-policy=fast"});
  const auto v2 = build_program(dir, "basic", "v2", {"--graft-policy=fast"});
  std::string explain;
  const auto patch = make_patch(v1, v2, "fast.graft", &explain);
  // scale() is inlined into scaled() under the fast policy: scaled must be in the patch.
  EXPECT_NE(explain.find("scaled"), std::string::npos) << explain;
  Process target({v1.string(), "2"});
  EXPECT_EQ(target.ask("scaled 3"), "31");
  apply(target.pid(), patch);
  EXPECT_EQ(target.ask("scaled 3"), "61");
}

TEST_F(CodeUpdates, PatchesStackAndRevertInOrder) {
  const auto v1 = build_program(dir, "basic", "v1");
  const auto v2 = build_program(dir, "basic", "v2");
  const auto v3 = build_program(dir, "basic", "v3");
  const auto p12 = make_patch(v1, v2, "p12.graft");
  const auto p23 = make_patch(v2, v3, "p23.graft");
  Process target({v1.string(), "4"});
  // The second patch is for v2: refused while the process still runs v1.
  auto early = graft({"apply", std::to_string(target.pid()), p23.string()});
  EXPECT_NE(early.exit_code, 0);
  EXPECT_NE(early.err.find("was built for build-id"), std::string::npos) << early.err;

  apply(target.pid(), p12);
  EXPECT_EQ(target.ask("added"), "84");
  apply(target.pid(), p23);
  EXPECT_EQ(target.ask("compute 5"), "24");
  EXPECT_EQ(target.ask("added"), "129");  // v3's added() on v2's counter: state kept across patches
  auto status = graft({"status", std::to_string(target.pid()), "--json"});
  ASSERT_EQ(status.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(status.out)["patches"].size(), 2u);

  ASSERT_EQ(graft({"revert", std::to_string(target.pid())}).exit_code, 0);
  EXPECT_EQ(target.ask("compute 5"), "18");
  EXPECT_EQ(target.ask("added"), "88");
  ASSERT_EQ(graft({"revert", std::to_string(target.pid())}).exit_code, 0);
  EXPECT_EQ(target.ask("compute 5"), "12");
  EXPECT_EQ(target.ask("added"), "unknown command");
  auto none = graft({"revert", std::to_string(target.pid())});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.err.find("no graft patch is applied"), std::string::npos) << none.err;
}

TEST_F(CodeUpdates, NonPieExecutable) {
  const auto v1 = build_program(dir, "basic", "v1", {"-fno-pie", "-no-pie"});
  const auto v2 = build_program(dir, "basic", "v2", {"-fno-pie", "-no-pie"});
  const auto patch = make_patch(v1, v2, "nopie.graft");
  Process target({v1.string(), "4"});
  apply(target.pid(), patch);
  EXPECT_EQ(target.ask("compute 5"), "18");
  EXPECT_EQ(target.ask("greet"), "hello from v2");
  EXPECT_EQ(target.ask("added"), "84");
  ASSERT_EQ(graft({"revert", std::to_string(target.pid())}).exit_code, 0);
  EXPECT_EQ(target.ask("compute 5"), "12");
}

TEST_F(CodeUpdates, HundredsOfThreads) {
  const auto v1 = build_program(dir, "basic", "v1");
  const auto v2 = build_program(dir, "basic", "v2");
  const auto patch = make_patch(v1, v2, "many.graft");
  Process target({v1.string(), "300", "5000"});  // 300 threads, each calling compute() 200 times a second
  auto report = apply(target.pid(), patch);
  EXPECT_EQ(report["threads"], 301);
  EXPECT_EQ(target.ask("compute 5"), "18");
  ASSERT_EQ(graft({"revert", std::to_string(target.pid())}).exit_code, 0);
  EXPECT_EQ(target.ask("compute 5"), "12");
}

TEST_F(CodeUpdates, ConstantTableGrowsAndLocalChangesType) {
  const auto v1 = build_program(dir, "table", "v1");
  const auto v2 = build_program(dir, "table", "v2");
  std::string explain;
  const auto patch = make_patch(v1, v2, "table.graft", &explain);
  EXPECT_NE(explain.find("read-only commands changed: the new code uses a new copy"), std::string::npos) << explain;
  Process target({v1.string()});
  EXPECT_EQ(target.ask("triple 5"), "unknown command");
  EXPECT_EQ(target.ask("double 5"), "10");
  apply(target.pid(), patch);
  EXPECT_EQ(target.ask("triple 5"), "15");
  EXPECT_EQ(target.ask("double 5"), "10");
}

TEST_F(CodeUpdates, CxxVirtualFunctionsAndTemplates) {
  // Without exceptions: unwind tables of patch code are not registered yet.
  const auto v1 = build_program(dir, "cxx", "v1", {"-fno-exceptions"});
  const auto v2 = build_program(dir, "cxx", "v2", {"-fno-exceptions"});
  std::string explain;
  const auto patch = make_patch(v1, v2, "cxx.graft", &explain);
  EXPECT_NE(explain.find("_ZNK6Square4areaEv"), std::string::npos) << explain;
  Process target({v1.string()});
  EXPECT_EQ(target.ask("describe"), "18");
  apply(target.pid(), patch);
  EXPECT_EQ(target.ask("describe"), "270");  // through the vtable's old entry, and the new template
}

TEST_F(CodeUpdates, CxxWithExceptionsIsRefused) {
  const auto v1 = build_program(dir, "cxx", "v1");
  const auto v2 = build_program(dir, "cxx", "v2");
  auto result = graft({"diff", v1.string(), v2.string(), "-o", patch_file("x.graft").string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("-fno-exceptions"), std::string::npos) << result.err;
  EXPECT_FALSE(std::filesystem::exists(patch_file("x.graft")));
}

}  // namespace
}  // namespace graft::test
