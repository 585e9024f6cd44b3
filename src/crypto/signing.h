// Ed25519 signatures (libsodium's crypto_sign) over a patch's digest, and the
// key files `graft keygen` writes:
//   graft-signing.key  "graft-ed25519-secret <base64 of 64 bytes>", mode 0600
//   graft-signing.pub  "graft-ed25519 <base64 of 32 bytes> <comment>", what
//                      a trusted-keys directory holds
#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>

#include "common/error.h"
#include "crypto/digest.h"

namespace graft::crypto {

using PublicKey = std::array<uint8_t, 32>;
using SecretKey = std::array<uint8_t, 64>;
using Signature = std::array<uint8_t, 64>;

inline constexpr const char* kSecretKeyFile = "graft-signing.key";
inline constexpr const char* kPublicKeyFile = "graft-signing.pub";

struct KeyPairFiles {
  std::filesystem::path secret, public_key;
  PublicKey key{};
};
// Creates dir if needed; never overwrites an existing key.
Result<KeyPairFiles> generate_key_pair(const std::filesystem::path& dir, const std::string& comment);

// A secret key file that group or others may read is refused (like ssh's
// "UNPROTECTED PRIVATE KEY FILE").
Result<SecretKey> load_secret_key(const std::filesystem::path& path);
Result<PublicKey> load_public_key(const std::filesystem::path& path);
PublicKey public_key_of(const SecretKey& secret);

// "ed25519:" and 16 hex digits of the key's BLAKE2b: how messages name a key.
std::string key_fingerprint(const PublicKey& key);

// The signature covers the digest with the purpose in front, so a signed
// patch digest cannot be replayed as a signature of anything else.
Signature sign_digest(const SecretKey& secret, const Digest& digest);
bool verify_digest(const PublicKey& key, const Digest& digest, const Signature& signature);

}  // namespace graft::crypto
