// Which signed patches graft apply accepts: the apply policy and the
// trusted-keys directory.
//
//   policy file   --policy FILE, else $GRAFT_APPLY_POLICY, else
//                 /etc/graft/apply.conf (absent: no requirement). Lines
//                 "require-signature = yes|no" and "trusted-keys = DIR";
//                 '#' starts a comment.
//   trusted keys  --trusted-keys DIR, else $GRAFT_TRUSTED_KEYS, else the
//                 policy's trusted-keys, else /etc/graft/trusted-keys: every
//                 *.pub file in it (graft keygen's graft-signing.pub) is a
//                 key whose signature is accepted.
// The policy file, the directory and each key file are refused when anyone
// but root or the caller owns them or may write them (common/file_trust.h).
// The overrides are for tests and private setups: whoever runs graft as root
// can bypass any policy anyway; the policy keeps a patch from the wrong
// source out by mistake or through a compromised distribution channel.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "crypto/signing.h"

namespace graft::crypto {

inline constexpr const char* kDefaultPolicyFile = "/etc/graft/apply.conf";
inline constexpr const char* kDefaultTrustedKeys = "/etc/graft/trusted-keys";

struct SignaturePolicy {
  bool require_signature = false;
  std::string required_by;  // "--require-signature" or the policy file, for messages
  std::filesystem::path trusted_keys;
};

// `policy_file` and `trusted_keys` are the command line's ("" when not given).
Result<SignaturePolicy> load_signature_policy(const std::string& policy_file, const std::string& trusted_keys,
                                              bool require_flag);

Result<std::vector<PublicKey>> load_trusted_keys(const std::filesystem::path& dir);

// Whether a patch (`label`) signed by `signer` (none: unsigned) may be
// applied under `policy`: one line saying why not, and what to do.
Status check_signature_policy(const SignaturePolicy& policy, const std::optional<PublicKey>& signer,
                              const std::string& label);

}  // namespace graft::crypto
