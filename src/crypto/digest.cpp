#include "crypto/digest.h"

#include <sodium.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>

namespace graft::crypto {

void ensure_initialised() {
  static const bool ready = sodium_init() >= 0;
  if (!ready) std::abort();  // libsodium found no usable random source: nothing can be signed safely
}

Digest digest_of(std::span<const uint8_t> bytes) {
  ensure_initialised();
  Digest out{};
  crypto_generichash(out.data(), out.size(), bytes.data(), bytes.size(), nullptr, 0);
  return out;
}

Result<Digest> digest_of_file(const std::filesystem::path& path) {
  ensure_initialised();
  std::ifstream in(path, std::ios::binary);
  if (!in) return errno_error(path.string(), errno);
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, kDigestBytes);
  std::array<char, 1 << 16> buffer;
  while (in.read(buffer.data(), buffer.size()) || in.gcount() > 0)
    crypto_generichash_update(&state, reinterpret_cast<const uint8_t*>(buffer.data()), static_cast<size_t>(in.gcount()));
  if (in.bad()) return make_error("{}: read error", path.string());
  Digest out{};
  crypto_generichash_final(&state, out.data(), out.size());
  return out;
}

std::string to_hex(std::span<const uint8_t> bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
  out.pop_back();
  return out;
}

std::optional<Digest> digest_from_hex(std::string_view hex) {
  Digest out{};
  size_t length = 0;
  const char* end = nullptr;
  if (hex.size() != kDigestBytes * 2 ||
      sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &length, &end) != 0 ||
      length != kDigestBytes || end != hex.data() + hex.size())
    return std::nullopt;
  return out;
}

}  // namespace graft::crypto
