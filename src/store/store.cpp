#include "store/store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>

#include "common/file_trust.h"
#include "crypto/digest.h"

namespace graft {
namespace fs = std::filesystem;
namespace {

constexpr const char* kStoreHint = "(or set GRAFT_STORE to a directory only you can write)";

// Creates `dir` and what is missing above it, each writable by its owner only.
Status make_private_directories(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return ok();
  if (!dir.parent_path().empty() && dir.parent_path() != dir) GRAFT_TRY(make_private_directories(dir.parent_path()));
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return errno_error("graft store " + dir.string(), errno);
  if (::chmod(dir.c_str(), 0755) != 0) return errno_error("graft store " + dir.string(), errno);
  return ok();
}

Result<std::string> digest_hex(const fs::path& file) {
  GRAFT_ASSIGN(const crypto::Digest d, crypto::digest_of_file(file));
  return crypto::to_hex(d);
}

}  // namespace

Result<fs::path> store_root() {
  if (const char* dir = std::getenv("GRAFT_STORE"); dir && *dir) return fs::path(dir);
  if (const char* cache = std::getenv("XDG_CACHE_HOME"); cache && *cache) return fs::path(cache) / "graft" / "store";
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache" / "graft" / "store";
  return make_error("no graft store: GRAFT_STORE, XDG_CACHE_HOME and HOME are all unset, and graft keeps no shared "
                    "store in /tmp: set GRAFT_STORE or HOME");
}

Result<fs::path> store_dir(const std::string& build_id) {
  GRAFT_ASSIGN(const fs::path root, store_root());
  return root / build_id;
}

Status save_build(BuildRecord record, const std::vector<fs::path>& objects,
                  const std::vector<std::pair<std::string, fs::path>>& foreign) {
  GRAFT_ASSIGN(const fs::path dir, store_dir(record.build_id));
  const fs::path staging = dir.string() + ".tmp." + std::to_string(getpid());
  std::error_code ec;
  fs::remove_all(staging, ec);
  GRAFT_TRY(make_private_directories(staging / "objects"));
  GRAFT_ASSIGN(record.output_digest, digest_hex(record.output));
  record.objects.clear();
  record.object_digests.clear();
  for (size_t i = 0; i < objects.size(); ++i) {
    const fs::path name = fmt::format("{:04}-{}", i, objects[i].filename().string());
    const fs::path target = staging / "objects" / name;
    fs::create_hard_link(objects[i], target, ec);
    if (ec) {
      ec.clear();
      fs::copy_file(objects[i], target, ec);
      if (ec) return make_error("graft store: cannot keep {}: {}", objects[i].string(), ec.message());
    }
    record.objects.push_back(dir / "objects" / name);
    // The object as linked: graft diff refuses it if it changes later (a
    // hard link shares the build directory's file).
    GRAFT_ASSIGN(std::string digest, digest_hex(target));
    record.object_digests.push_back(std::move(digest));
  }
  record.foreign_members.clear();
  for (const auto& [name, object] : foreign) {
    GRAFT_ASSIGN(std::string digest, digest_hex(object));
    record.foreign_members.push_back({name, std::move(digest)});
  }
  nlohmann::json j = {{"build_id", record.build_id}, {"output", record.output},
                      {"output_digest", record.output_digest}, {"compiler", record.compiler},
                      {"policy", record.policy}, {"link_args", record.link_args},
                      {"objects", nlohmann::json::array()}, {"object_digests", record.object_digests}};
  for (const auto& o : record.objects) j["objects"].push_back(o.string());
  if (!record.foreign_members.empty()) {
    j["foreign_members"] = nlohmann::json::array();
    for (const auto& f : record.foreign_members) j["foreign_members"].push_back({{"name", f.name}, {"digest", f.digest}});
  }
  {
    std::ofstream out(staging / "build.json");
    out << j.dump(2) << "\n";
    if (!out) return make_error("graft store: cannot write {}", (staging / "build.json").string());
  }
  if (::chmod((staging / "build.json").c_str(), 0644) != 0) return errno_error("graft store", errno);
  fs::remove_all(dir, ec);  // a relink of identical inputs gives the same build-id
  fs::rename(staging, dir, ec);
  if (ec) return make_error("graft store: cannot publish {}: {}", dir.string(), ec.message());
  return ok();
}

Result<BuildRecord> load_build(const std::string& build_id) {
  GRAFT_ASSIGN(const fs::path root, store_root());
  const fs::path dir = root / build_id;
  const fs::path file = dir / "build.json";
  std::error_code ec;
  if (!fs::exists(file, ec))
    return make_error("no graft build record for build-id {} in {} (build the binary with graft-cc, or set GRAFT_STORE)",
                      build_id, root.string());
  // The store root holds the record (a link to it, in a shared cache), the
  // record's directory its objects: each may only be written by its owner.
  GRAFT_TRY(check_trusted_path(root, "graft store", kStoreHint));
  GRAFT_TRY(check_trusted_path(dir, "graft store record", kStoreHint));
  GRAFT_TRY(check_trusted_path(dir / "objects", "graft store record", kStoreHint));
  GRAFT_TRY(check_trusted_path(file, "graft store record", kStoreHint));
  std::ifstream in(file);
  if (!in) return errno_error(file.string(), errno);
  try {
    nlohmann::json j = nlohmann::json::parse(in);
    BuildRecord r;
    r.build_id = j.at("build_id").get<std::string>();
    r.output = j.at("output").get<std::string>();
    r.compiler = j.at("compiler").get<std::string>();
    r.policy = j.at("policy").get<std::string>();
    r.link_args = j.at("link_args").get<std::vector<std::string>>();
    for (const auto& o : j.at("objects")) r.objects.emplace_back(o.get<std::string>());
    if (!j.contains("output_digest") || !j.contains("object_digests"))
      return make_error("{}: recorded by an older graft-cc, without the digests of what it linked: link the program "
                        "again with this graft-cc", file.string());
    r.output_digest = j.at("output_digest").get<std::string>();
    r.object_digests = j.at("object_digests").get<std::vector<std::string>>();
    if (j.contains("foreign_members"))
      for (const auto& f : j.at("foreign_members"))
        r.foreign_members.push_back({f.at("name").get<std::string>(), f.at("digest").get<std::string>()});
    if (r.build_id != build_id || r.object_digests.size() != r.objects.size())
      return make_error("{}: corrupt build record (its build-id or its digests do not match what it lists)", file.string());
    return r;
  } catch (const std::exception& e) {
    return make_error("{}: corrupt build record ({})", file.string(), e.what());
  }
}

Status verify_build(const BuildRecord& record, const fs::path& binary) {
  GRAFT_ASSIGN(const std::string binary_digest, digest_hex(binary));
  if (binary_digest != record.output_digest)
    return make_error("{} is not the executable graft-cc linked as build-id {} ({}): its contents differ (changed "
                      "after linking, e.g. stripped?): give graft diff the executable as linked, or link it again",
                      binary.string(), record.build_id, record.output);
  for (size_t i = 0; i < record.objects.size(); ++i) {
    GRAFT_ASSIGN(const std::string digest, digest_hex(record.objects[i]));
    if (digest != record.object_digests[i])
      return make_error("graft store: {} changed since graft-cc linked build-id {} from it (its digest differs): its "
                        "code cannot be trusted to be the running program's; link the program again with graft-cc",
                        record.objects[i].string(), record.build_id);
  }
  return ok();
}

}  // namespace graft
