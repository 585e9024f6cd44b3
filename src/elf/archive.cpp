#include "elf/archive.h"

#include <cerrno>
#include <charconv>
#include <fstream>
#include <iterator>
#include <string_view>

namespace graft {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kRegularMagic = "!<arch>\n";
constexpr std::string_view kThinMagic = "!<thin>\n";
constexpr size_t kHeaderSize = 60;

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// A GNU long name: "/<offset>" into the "//" table, each name ending "/\n".
Result<std::string> long_name(std::string_view table, std::string_view reference, const fs::path& archive) {
  size_t offset = 0;
  const auto [end, ec] = std::from_chars(reference.data() + 1, reference.data() + reference.size(), offset);
  if (ec != std::errc() || end != reference.data() + reference.size() || offset >= table.size())
    return make_error("{}: corrupt archive (member name {} is not in its name table)", archive.string(), reference);
  std::string_view name = table.substr(offset);
  name = name.substr(0, name.find('\n'));
  if (name.ends_with('/')) name.remove_suffix(1);
  return std::string(name);
}

}  // namespace

bool is_archive(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  if (!in.read(magic, sizeof magic)) return false;
  const std::string_view seen(magic, sizeof magic);
  return seen == kRegularMagic || seen == kThinMagic;
}

Result<Archive> read_archive(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return errno_error(path.string(), errno);
  const std::string image{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  Archive archive;
  archive.path = path;
  const std::string_view data = image;
  if (data.starts_with(kThinMagic)) archive.thin = true;
  else if (!data.starts_with(kRegularMagic)) return make_error("{}: not an ar archive", path.string());
  std::string_view names;  // the "//" table of long names
  size_t at = kRegularMagic.size();
  while (at < data.size()) {
    if (data.size() - at < kHeaderSize || data.substr(at + 58, 2) != "`\n")
      return make_error("{}: corrupt archive (a member header at offset {} is cut short or malformed)", path.string(), at);
    const std::string_view header = data.substr(at, kHeaderSize);
    const std::string_view raw_name = trim_right(header.substr(0, 16));
    const std::string_view size_field = trim_right(header.substr(48, 10));
    size_t size = 0;
    const auto [end, ec] = std::from_chars(size_field.data(), size_field.data() + size_field.size(), size);
    if (ec != std::errc() || end != size_field.data() + size_field.size())
      return make_error("{}: corrupt archive (member size '{}' at offset {})", path.string(), size_field, at);
    at += kHeaderSize;
    // The symbol index and the name table have their bytes even in a thin
    // archive; a thin archive's members have theirs in their own files.
    const bool table = raw_name == "/" || raw_name == "/SYM64/" || raw_name == "//";
    const bool inline_bytes = table || !archive.thin;
    if (inline_bytes && data.size() - at < size)
      return make_error("{}: corrupt archive (member at offset {} is cut short)", path.string(), at - kHeaderSize);
    const std::string_view bytes = inline_bytes ? data.substr(at, size) : std::string_view();
    if (inline_bytes) at += size + (size & 1);  // members are 2-byte aligned
    if (raw_name == "//") names = bytes;
    if (table) continue;
    ArchiveMember member;
    if (raw_name.size() > 1 && raw_name[0] == '/') {
      GRAFT_ASSIGN(member.name, long_name(names, raw_name, path));
    } else {
      member.name = std::string(raw_name.ends_with('/') ? raw_name.substr(0, raw_name.size() - 1) : raw_name);
    }
    if (archive.thin) {
      const fs::path named(member.name);
      member.file = (named.is_absolute() ? named : path.parent_path() / named).lexically_normal();
    } else {
      member.bytes = std::string(bytes);
    }
    archive.members.push_back(std::move(member));
  }
  return archive;
}

}  // namespace graft
