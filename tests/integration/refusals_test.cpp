// What graft refuses, and that a refusal leaves the target exactly as it was.
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../support/harness.h"
#include "target/x86.h"
#include "patch/patch.h"

namespace graft::test {
namespace {

bool one_line(const std::string& text) {
  return !text.empty() && text.find('\n') == text.size() - 1;
}

class Refusals : public ::testing::Test {
 protected:
  TempDir dir;

  void expect_untouched(Process& target, const std::filesystem::path& binary, const std::vector<std::string>& functions) {
    for (const auto& f : functions) EXPECT_TRUE(x86::is_unpatched_entry(entry_bytes(target.pid(), binary, f))) << f;
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
  EXPECT_NE(result.err.find("was built for build-id"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("run graft diff against the binary this process runs"), std::string::npos) << result.err;
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

std::string read_all(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A patch is what it claims: one byte changed anywhere in the file (sampled
// across it, the seal included) or one digit of a global's address in the
// manifest, and graft refuses it at load in one line; the target runs on.
TEST_F(Refusals, EveryChangedByteOfAPatchIsRefusedAtLoad) {
  const auto [v1, v2, patch] = build_update(dir, "basic");
  const std::string good = read_all(patch);
  Process target({v1.string(), "2"});
  const auto flipped = dir.path() / "flipped.graft";
  auto refused_at_load = [&](const std::string& content, const std::string& what) {
    std::ofstream(flipped, std::ios::binary | std::ios::trunc) << content;
    auto result = graft({"apply", std::to_string(target.pid()), flipped.string()});
    EXPECT_EQ(result.exit_code, 1) << what;
    EXPECT_TRUE(one_line(result.err)) << what << ": " << result.err;
    EXPECT_NE(result.err.find("not a valid graft patch"), std::string::npos) << what << ": " << result.err;
  };
  std::vector<size_t> offsets;
  for (size_t at = 0; at < good.size(); at += good.size() / 48) offsets.push_back(at);
  for (size_t back = 1; back <= kPatchSealBytes; back += 9) offsets.push_back(good.size() - back);
  for (size_t at : offsets) {
    std::string copy = good;
    copy[at] = static_cast<char>(copy[at] ^ 0x10);
    refused_at_load(copy, "byte " + std::to_string(at));
  }
  // One digit of the address of the global total_calls.
  const size_t entry = good.find("\"total_calls\": [");
  ASSERT_NE(entry, std::string::npos);
  const size_t digit = good.find_first_of("0123456789", entry + 15);
  std::string moved = good;
  moved[digit] = moved[digit] == '9' ? '0' : static_cast<char>(moved[digit] + 1);
  refused_at_load(moved, "a digit of total_calls' address");
  EXPECT_EQ(target.ask("compute 5"), "12");
  expect_untouched(target, v1, {"compute"});
}

// A patch sealed anew after its manifest was altered, or made for another
// build, is refused at apply before anything is written: the addresses it
// names are checked against the binary the process runs.
TEST_F(Refusals, BaseSymbolsAreCheckedAgainstTheRunningBinary) {
  const auto [v1, v2, patch] = build_update(dir, "basic");
  auto read = read_patch(patch);
  ASSERT_TRUE(read) << read.error().message;
  Process target({v1.string(), "2"});
  auto refusal = [&](Patch altered, const std::string& name) {
    const auto file = dir.path() / name;
    EXPECT_TRUE(write_patch(altered, file));
    auto result = graft({"apply", std::to_string(target.pid()), file.string()});
    EXPECT_EQ(result.exit_code, 1) << name;
    EXPECT_TRUE(one_line(result.err)) << result.err;
    return result.err;
  };
  Patch global = *read;
  global.manifest.base_symbols.at("total_calls").address += 0x10;
  std::string err = refusal(global, "global.graft");
  EXPECT_NE(err.find("names total_calls at"), std::string::npos) << err;
  EXPECT_NE(err.find("run graft diff against the binary this process runs"), std::string::npos) << err;
  Patch import = *read;
  ASSERT_FALSE(import.manifest.base_imports.empty());
  import.manifest.base_imports.begin()->second += 8;
  err = refusal(import, "import.graft");
  EXPECT_NE(err.find("names the import"), std::string::npos) << err;
  Patch other_build = *read;
  other_build.manifest.base_build_id = std::string(40, 'e');
  err = refusal(other_build, "other.graft");
  EXPECT_NE(err.find("was built for build-id eeee"), std::string::npos) << err;
  EXPECT_EQ(err.find("not a graft entry"), std::string::npos) << err;
  EXPECT_EQ(target.ask("compute 5"), "12");
  expect_untouched(target, v1, {"compute"});
}

// Signatures: graft keygen, graft diff --sign, and an apply policy that
// refuses, in one line each, an unsigned patch, one signed by an untrusted
// key, and a trusted-keys directory, key file or policy file others may
// write; then a signed patch applies.
TEST_F(Refusals, SignaturePolicy) {
  const auto [v1, v2, unsigned_patch] = build_update(dir, "basic");
  const auto keys = dir.path() / "keys", stranger = dir.path() / "stranger", trusted = dir.path() / "trusted";
  auto keygen = graft({"keygen", "--out", keys.string()});
  ASSERT_EQ(keygen.exit_code, 0) << keygen.err;
  EXPECT_NE(keygen.out.find("--sign " + (keys / "graft-signing.key").string()), std::string::npos) << keygen.out;
  EXPECT_EQ(std::filesystem::status(keys / "graft-signing.key").permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  ASSERT_EQ(graft({"keygen", "--out", stranger.string()}).exit_code, 0);
  auto again = graft({"keygen", "--out", keys.string()});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("never replaces a key"), std::string::npos) << again.err;

  const auto signed_patch = dir.path() / "signed.graft", strange_patch = dir.path() / "strange.graft";
  auto sign = [&](const std::filesystem::path& key, const std::filesystem::path& out) {
    return graft({"diff", v1.string(), v2.string(), "-o", out.string(), "--sign", key.string()});
  };
  auto signed_diff = sign(keys / "graft-signing.key", signed_patch);
  ASSERT_EQ(signed_diff.exit_code, 0) << signed_diff.err;
  EXPECT_NE(signed_diff.err.find("signed by ed25519:"), std::string::npos) << signed_diff.err;
  ASSERT_EQ(sign(stranger / "graft-signing.key", strange_patch).exit_code, 0);
  auto info = graft({"info", signed_patch.string()});
  EXPECT_NE(info.out.find("signed by  ed25519:"), std::string::npos) << info.out;

  // A secret key others may read is not used.
  std::filesystem::permissions(stranger / "graft-signing.key", std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  auto loose_secret = sign(stranger / "graft-signing.key", dir.path() / "x.graft");
  EXPECT_EQ(loose_secret.exit_code, 1);
  EXPECT_TRUE(one_line(loose_secret.err)) << loose_secret.err;
  EXPECT_NE(loose_secret.err.find("a secret key must be private"), std::string::npos) << loose_secret.err;

  std::filesystem::create_directories(trusted);
  std::filesystem::copy_file(keys / "graft-signing.pub", trusted / "alice.pub");
  const auto policy = dir.path() / "apply.conf";
  std::ofstream(policy) << "# signed patches only\nrequire-signature = yes\ntrusted-keys = " << trusted.string() << "\n";

  Process target({v1.string(), "2"});
  auto apply = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"apply", std::to_string(target.pid())};
    argv.insert(argv.end(), args.begin(), args.end());
    return graft(argv);
  };
  auto refused = [&](const std::vector<std::string>& args, const std::string& message) {
    auto result = apply(args);
    EXPECT_EQ(result.exit_code, 1) << message;
    EXPECT_TRUE(one_line(result.err)) << result.err;
    EXPECT_NE(result.err.find(message), std::string::npos) << result.err;
  };
  const std::vector<std::string> require = {"--require-signature", "--trusted-keys", trusted.string()};
  auto with = [](std::vector<std::string> args, const std::filesystem::path& patch) {
    args.push_back(patch.string());
    return args;
  };
  refused(with(require, unsigned_patch), "is not signed, and --require-signature requires a signature");
  refused(with(require, strange_patch), "which is not a trusted key");
  refused({"--policy", policy.string(), unsigned_patch.string()}, "requires a signature");
  refused({"--policy", policy.string(), strange_patch.string()}, "which is not a trusted key");
  // Loose: the directory, a key file, the policy file; a key someone else owns.
  auto loose = [&](const std::filesystem::path& path, const std::vector<std::string>& args) {
    const auto before = std::filesystem::status(path).permissions();
    std::filesystem::permissions(path, before | std::filesystem::perms::others_write);
    refused(args, "is writable by anyone");
    std::filesystem::permissions(path, before);
  };
  loose(trusted, with(require, signed_patch));
  loose(trusted / "alice.pub", with(require, signed_patch));
  loose(policy, {"--policy", policy.string(), signed_patch.string()});
  ASSERT_EQ(chown((trusted / "alice.pub").c_str(), 12345, static_cast<gid_t>(-1)), 0);
  refused(with(require, signed_patch), "is owned by uid 12345, not by root or by you");
  ASSERT_EQ(chown((trusted / "alice.pub").c_str(), geteuid(), static_cast<gid_t>(-1)), 0);
  EXPECT_EQ(target.ask("compute 5"), "12");
  expect_untouched(target, v1, {"compute"});

  // Signed by a trusted key, under the policy: applied.
  auto applied = apply({"--policy", policy.string(), signed_patch.string()});
  EXPECT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(target.ask("compute 5"), "18");
}

}  // namespace
}  // namespace graft::test
