#include "crypto/trust.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "common/file_trust.h"

namespace graft::crypto {
namespace fs = std::filesystem;
namespace {

std::string trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return {};
  return s.substr(begin, s.find_last_not_of(" \t\r") - begin + 1);
}

std::string from_env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

}  // namespace

Result<SignaturePolicy> load_signature_policy(const std::string& policy_file, const std::string& trusted_keys,
                                              bool require_flag) {
  SignaturePolicy policy;
  std::string file = !policy_file.empty() ? policy_file : from_env("GRAFT_APPLY_POLICY");
  const bool named = !file.empty();
  if (!named) file = kDefaultPolicyFile;
  std::string keys_from_policy;
  std::error_code ec;
  if (fs::exists(file, ec)) {
    GRAFT_TRY(check_trusted_path(file, "apply policy"));
    std::ifstream in(file);
    if (!in) return errno_error(fmt::format("apply policy {}", file), errno);
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      line = trim(line.substr(0, line.find('#')));
      if (line.empty()) continue;
      const size_t eq = line.find('=');
      const std::string key = eq == std::string::npos ? line : trim(line.substr(0, eq));
      const std::string value = eq == std::string::npos ? "" : trim(line.substr(eq + 1));
      if (key == "require-signature" && (value == "yes" || value == "no")) {
        policy.require_signature = value == "yes";
        if (policy.require_signature) policy.required_by = "the apply policy " + file;
      } else if (key == "trusted-keys" && !value.empty()) {
        keys_from_policy = value;
      } else {
        return make_error("apply policy {}:{}: cannot read \"{}\" (the lines are \"require-signature = yes|no\" and "
                          "\"trusted-keys = DIR\")", file, number, line);
      }
    }
  } else if (named) {
    return make_error("apply policy {} does not exist (--policy or GRAFT_APPLY_POLICY)", file);
  }
  if (require_flag) {
    policy.require_signature = true;
    policy.required_by = "--require-signature";
  }
  for (const std::string& dir : {trusted_keys, from_env("GRAFT_TRUSTED_KEYS"), keys_from_policy})
    if (!dir.empty()) {
      policy.trusted_keys = dir;
      break;
    }
  if (policy.trusted_keys.empty()) policy.trusted_keys = kDefaultTrustedKeys;
  return policy;
}

Result<std::vector<PublicKey>> load_trusted_keys(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return make_error("trusted-keys directory {} does not exist: put the signer's graft-signing.pub there "
                      "(--trusted-keys DIR or GRAFT_TRUSTED_KEYS name another)", dir.string());
  GRAFT_TRY(check_trusted_path(dir, "trusted-keys directory"));
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().extension() == ".pub") files.push_back(entry.path());
  if (ec) return make_error("trusted-keys directory {}: {}", dir.string(), ec.message());
  std::sort(files.begin(), files.end());
  std::vector<PublicKey> keys;
  for (const auto& file : files) {
    GRAFT_TRY(check_trusted_path(file, "trusted key"));
    GRAFT_ASSIGN(PublicKey key, load_public_key(file));
    keys.push_back(key);
  }
  return keys;
}

Status check_signature_policy(const SignaturePolicy& policy, const std::optional<PublicKey>& signer,
                              const std::string& label) {
  if (!policy.require_signature) return ok();
  if (!signer)
    return make_error("{} is not signed, and {} requires a signature: make it with graft diff --sign KEY, with a key "
                      "whose .pub is in {}", label, policy.required_by, policy.trusted_keys.string());
  GRAFT_ASSIGN(const auto keys, load_trusted_keys(policy.trusted_keys));
  if (std::find(keys.begin(), keys.end(), *signer) == keys.end())
    return make_error("{} is signed by {}, which is not a trusted key ({} requires one from {}): add the signer's "
                      "graft-signing.pub there, or sign with a trusted key",
                      label, key_fingerprint(*signer), policy.required_by, policy.trusted_keys.string());
  return ok();
}

}  // namespace graft::crypto
