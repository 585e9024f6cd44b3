// Content digests: BLAKE2b-256 (libsodium's crypto_generichash), for the
// seal of a patch file and the objects a build record lists.
#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/error.h"

namespace graft::crypto {

inline constexpr size_t kDigestBytes = 32;
using Digest = std::array<uint8_t, kDigestBytes>;

// libsodium's own set-up; every function here calls it, so callers need not.
void ensure_initialised();

Digest digest_of(std::span<const uint8_t> bytes);
Result<Digest> digest_of_file(const std::filesystem::path& path);

std::string to_hex(std::span<const uint8_t> bytes);
std::optional<Digest> digest_from_hex(std::string_view hex);

}  // namespace graft::crypto
