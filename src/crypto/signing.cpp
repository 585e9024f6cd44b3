#include "crypto/signing.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace graft::crypto {
namespace fs = std::filesystem;
namespace {

constexpr const char* kPublicTag = "graft-ed25519";
constexpr const char* kSecretTag = "graft-ed25519-secret";
constexpr std::string_view kSignedPurpose = "graft patch digest v4";

std::string to_base64(std::span<const uint8_t> bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

template <size_t N>
bool from_base64(const std::string& text, std::array<uint8_t, N>& out) {
  size_t length = 0;
  const char* end = nullptr;
  return sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &length, &end,
                           sodium_base64_VARIANT_ORIGINAL) == 0 &&
         length == N && end == text.data() + text.size();
}

// "<tag> <base64> [comment]": the key, or an error naming the file.
template <size_t N>
Result<std::array<uint8_t, N>> read_key_file(const fs::path& path, const char* tag, const char* kind) {
  std::ifstream in(path);
  if (!in) return errno_error(fmt::format("{} {}", kind, path.string()), errno);
  std::string line;
  std::getline(in, line);
  std::istringstream words(line);
  std::string found_tag, encoded;
  words >> found_tag >> encoded;
  std::array<uint8_t, N> key{};
  if (found_tag != tag || !from_base64(encoded, key))
    return make_error("{} {}: not a graft {} (expected a line \"{} <base64>\", as graft keygen writes)", kind,
                      path.string(), kind, tag);
  return key;
}

// Writes a new file with `mode`, never replacing one.
Status write_new_file(const fs::path& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    return errno == EEXIST ? make_error("{} already exists: graft keygen never replaces a key (remove it, or give "
                                        "another --out DIR)", path.string())
                           : errno_error(path.string(), errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::fchmod(fd, mode) != 0) return errno_error(path.string(), errno);  // whatever the umask
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) || ::fsync(fd) != 0)
    return errno_error(path.string(), errno);
  return ok();
}

std::vector<uint8_t> signed_message(const Digest& digest) {
  std::vector<uint8_t> message(kSignedPurpose.begin(), kSignedPurpose.end());
  message.push_back(0);
  message.insert(message.end(), digest.begin(), digest.end());
  return message;
}

}  // namespace

Result<KeyPairFiles> generate_key_pair(const fs::path& dir, const std::string& comment) {
  ensure_initialised();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error("{}: {}", dir.string(), ec.message());
  KeyPairFiles files{dir / kSecretKeyFile, dir / kPublicKeyFile, {}};
  SecretKey secret{};
  crypto_sign_keypair(files.key.data(), secret.data());
  const std::string secret_text = fmt::format("{} {}\n", kSecretTag, to_base64(secret));
  sodium_memzero(secret.data(), secret.size());
  GRAFT_TRY(write_new_file(files.secret, secret_text, 0600));
  GRAFT_TRY(write_new_file(files.public_key, fmt::format("{} {} {}\n", kPublicTag, to_base64(files.key), comment), 0644));
  return files;
}

Result<SecretKey> load_secret_key(const fs::path& path) {
  ensure_initialised();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_error(fmt::format("signing key {}", path.string()), errno);
  if (st.st_mode & (S_IRWXG | S_IRWXO))
    return make_error("signing key {} may be read by {} (mode {:04o}): a secret key must be private: chmod 600 {}",
                      path.string(), (st.st_mode & S_IRWXO) ? "anyone" : "its group", st.st_mode & 07777, path.string());
  GRAFT_ASSIGN(SecretKey secret, (read_key_file<64>(path, kSecretTag, "signing key")));
  // libsodium's secret key ends with its public key: a damaged file is caught here, not at apply.
  PublicKey derived{};
  crypto_sign_ed25519_sk_to_pk(derived.data(), secret.data());
  SecretKey check{};
  PublicKey again{};
  crypto_sign_seed_keypair(again.data(), check.data(), secret.data());
  sodium_memzero(check.data(), check.size());
  if (again != derived) return make_error("signing key {} is damaged (its two halves do not match)", path.string());
  return secret;
}

Result<PublicKey> load_public_key(const fs::path& path) {
  ensure_initialised();
  return read_key_file<32>(path, kPublicTag, "public key");
}

PublicKey public_key_of(const SecretKey& secret) {
  PublicKey key{};
  crypto_sign_ed25519_sk_to_pk(key.data(), secret.data());
  return key;
}

std::string key_fingerprint(const PublicKey& key) {
  const Digest d = digest_of(key);
  return "ed25519:" + to_hex(std::span<const uint8_t>(d.data(), 8));
}

Signature sign_digest(const SecretKey& secret, const Digest& digest) {
  ensure_initialised();
  const std::vector<uint8_t> message = signed_message(digest);
  Signature signature{};
  crypto_sign_detached(signature.data(), nullptr, message.data(), message.size(), secret.data());
  return signature;
}

bool verify_digest(const PublicKey& key, const Digest& digest, const Signature& signature) {
  ensure_initialised();
  const std::vector<uint8_t> message = signed_message(digest);
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(), key.data()) == 0;
}

}  // namespace graft::crypto
