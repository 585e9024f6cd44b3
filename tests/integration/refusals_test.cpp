// What graft refuses, and that a refusal leaves the target exactly as it was.
#include <sys/ptrace.h>
#include <sys/wait.h>

#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../support/harness.h"

namespace graft::test {
namespace {

const std::vector<uint8_t> kUnpatchedEntry = {0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
                                              0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x66, 0x90};

bool one_line(const std::string& text) {
  return !text.empty() && text.find('\n') == text.size() - 1;
}

class Refusals : public ::testing::Test {
 protected:
  TempDir dir;

  void expect_untouched(Process& target, const std::filesystem::path& binary, const std::vector<std::string>& functions) {
    for (const auto& f : functions) EXPECT_EQ(entry_bytes(target.pid(), binary, f), kUnpatchedEntry) << f;
    EXPECT_TRUE(text_matches_binary(target.pid(), binary)) << "the code differs from the binary's";
    auto status = graft({"status", std::to_string(target.pid())});
    EXPECT_NE(status.out.find("no graft patches"), std::string::npos) << status.out;
    std::ifstream maps("/proc/" + std::to_string(target.pid()) + "/maps");
    std::string all((std::istreambuf_iterator<char>(maps)), std::istreambuf_iterator<char>());
    EXPECT_EQ(all.find("graft:"), std::string::npos) << "a patch region was left behind";
  }
};

// Without transfer points (the spinner would move into the new body at its
// usleep), the thread never leaves the changed function.
TEST_F(Refusals, ThreadThatNeverLeavesAChangedFunction) {
  const auto [v1, v2, patch] = build_update(dir, "spin");
  Process target({v1.string()});
  EXPECT_EQ(target.ask("v"), "1 1");
  auto result = graft({"apply", std::to_string(target.pid()), patch.string(), "--timeout", "300", "--json",
                       "--no-transfer-frames"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(one_line(result.err)) << result.err;
  EXPECT_NE(result.err.find("no safe moment within 300 ms"), std::string::npos) << result.err;
  // The chain of affected frames, innermost first, each with its line. The
  // replaced spinner() waits in its last instruction, a call of
  // spin_forever(), which never returns: that frame is never returned into
  // and holds nothing up.
  EXPECT_NE(result.err.find("is in spin_forever at main.c:"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("spinner"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find(") (a function that never returns"), std::string::npos) << result.err;
  const auto json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["ok"], false);
  EXPECT_EQ("graft: error: " + json["error"].get<std::string>() + "\n", result.err);  // the same one line
  EXPECT_NE(json["hint"].get<std::string>().find("never returns"), std::string::npos) << json.dump();
  ASSERT_EQ(json["blocking"].size(), 1u) << json.dump();
  const auto& thread = json["blocking"][0];
  EXPECT_GT(thread["tid"].get<int>(), target.pid());
  EXPECT_EQ(thread["name"], "prog");
  ASSERT_EQ(thread["frames"].size(), 1u) << json.dump();
  EXPECT_EQ(thread["frames"][0]["function"], "spin_forever");
  EXPECT_TRUE(thread["frames"][0]["executing"].is_boolean());  // in usleep() mostly, sometimes in the loop itself
  EXPECT_EQ(thread["frames"][0]["where"].get<std::string>().rfind("main.c:", 0), 0u) << json.dump();
  EXPECT_EQ(target.ask("v"), "1 1");  // still the old version, still running
  expect_untouched(target, v1, {"spin_forever", "spinner", "version"});
}

TEST_F(Refusals, CorruptTruncatedAndForeignPatchFiles) {
  const auto v1 = build_program(dir, "basic", "v1");
  const auto v2 = build_program(dir, "basic", "v2");
  const auto good = diff(dir, v1, v2, "good.graft").patch;
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(dir.path() / name, std::ios::binary) << content;
    return dir.path() / name;
  };
  std::string corrupt = bytes;
  corrupt[0x48] ^= 0x5a;  // inside the first piece's code
  std::vector<std::pair<std::filesystem::path, std::string>> bad = {
      {write("corrupt.graft", corrupt), "not a valid graft patch"},
      {write("truncated.graft", bytes.substr(0, bytes.size() / 2)), "not a valid graft patch"},
      {write("text.graft", "this is not a patch\n"), "not a valid graft patch"},
      {v1, "not a valid graft patch"},  // an ELF file, but an executable
      {dir.path() / "missing.graft", "No such file"},
  };
  Process target({v1.string(), "2"});
  for (const auto& [file, message] : bad) {
    auto info = graft({"info", file.string()});
    EXPECT_EQ(info.exit_code, 1) << file;
    EXPECT_TRUE(one_line(info.err)) << info.err;
    EXPECT_NE(info.err.find(message), std::string::npos) << info.err;
    auto apply = graft({"apply", std::to_string(target.pid()), file.string()});
    EXPECT_EQ(apply.exit_code, 1) << file;
    EXPECT_NE(apply.err.find(message), std::string::npos) << apply.err;
  }
  EXPECT_EQ(target.ask("compute 5"), "12");
  expect_untouched(target, v1, {"compute", "greeting"});
}

TEST_F(Refusals, PatchForAnotherBinary) {
  const auto basic1 = build_program(dir, "basic", "v1");
  const auto basic2 = build_program(dir, "basic", "v2");
  const auto spin = build_program(dir, "spin", "v1");
  const auto patch = diff(dir, basic1, basic2, "basic.graft").patch;
  Process target({spin.string()});
  auto result = graft({"apply", std::to_string(target.pid()), patch.string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(one_line(result.err)) << result.err;
  EXPECT_NE(result.err.find("is for build"), std::string::npos) << result.err;
  EXPECT_EQ(target.ask("v"), "1 1");
  expect_untouched(target, spin, {"spin_forever", "version"});
}

TEST_F(Refusals, ProcessesThatCannotBeUpdated) {
  const auto [v1, v2, patch] = build_update(dir, "basic");

  // A PID that does not exist: the first one above the current maximum in use is as good as any.
  pid_t unused = 4000000;
  while (kill(unused, 0) == 0 || errno != ESRCH) ++unused;
  auto missing = graft({"apply", std::to_string(unused), patch.string()});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("no process with PID"), std::string::npos) << missing.err;
  EXPECT_NE(graft({"status", std::to_string(unused)}).exit_code, 0);

  // A target some other tracer (a debugger) holds.
  Process target({v1.string(), "2"});
  ASSERT_EQ(ptrace(PTRACE_SEIZE, target.pid(), nullptr, nullptr), 0);
  auto traced = graft({"apply", std::to_string(target.pid()), patch.string()});
  EXPECT_EQ(traced.exit_code, 1);
  EXPECT_TRUE(one_line(traced.err)) << traced.err;
  EXPECT_NE(traced.err.find("already traced"), std::string::npos) << traced.err;
  ASSERT_EQ(ptrace(PTRACE_INTERRUPT, target.pid(), nullptr, nullptr), 0);
  waitpid(target.pid(), nullptr, __WALL);
  ASSERT_EQ(ptrace(PTRACE_DETACH, target.pid(), nullptr, nullptr), 0);
  EXPECT_EQ(target.ask("compute 5"), "12");
  expect_untouched(target, v1, {"compute"});

  // After the debugger let go, the update goes through.
  EXPECT_EQ(graft({"apply", std::to_string(target.pid()), patch.string()}).exit_code, 0);
  EXPECT_EQ(target.ask("compute 5"), "18");
}

TEST_F(Refusals, BinariesGraftCannotDiff) {
  const auto v1 = build_program(dir, "basic", "v1");
  auto same = graft({"diff", v1.string(), v1.string(), "-o", (dir.path() / "same.graft").string()});
  EXPECT_EQ(same.exit_code, 1);
  EXPECT_NE(same.err.find("same build"), std::string::npos) << same.err;

  // Built with plain clang: graft has no record of its objects.
  const auto plain = dir.path() / "plain";
  auto cc = run({"clang-14", "-O2", "-pthread", "-Wl,--build-id", (programs_dir() / "spin/v1/main.c").string(), "-o",
                 plain.string()});
  ASSERT_EQ(cc.exit_code, 0) << cc.err;
  auto foreign = graft({"diff", plain.string(), v1.string(), "-o", (dir.path() / "x.graft").string()});
  EXPECT_EQ(foreign.exit_code, 1);
  EXPECT_TRUE(one_line(foreign.err)) << foreign.err;
  EXPECT_NE(foreign.err.find("build the binary with graft-cc"), std::string::npos) << foreign.err;

  auto usage = graft({"apply"});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_NE(usage.err.find("--help"), std::string::npos) << usage.err;
}

}  // namespace
}  // namespace graft::test
