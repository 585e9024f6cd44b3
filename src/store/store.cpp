#include "store/store.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>

namespace graft {
namespace fs = std::filesystem;

fs::path store_root() {
  if (const char* dir = std::getenv("GRAFT_STORE"); dir && *dir) return dir;
  if (const char* cache = std::getenv("XDG_CACHE_HOME"); cache && *cache) return fs::path(cache) / "graft" / "store";
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache" / "graft" / "store";
  return fs::temp_directory_path() / "graft-store";
}

fs::path store_dir(const std::string& build_id) { return store_root() / build_id; }

Status save_build(BuildRecord record, const std::vector<fs::path>& objects) {
  const fs::path dir = store_dir(record.build_id);
  const fs::path staging = dir.string() + ".tmp." + std::to_string(getpid());
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging / "objects", ec);
  if (ec) return make_error("graft store {}: {}", staging.string(), ec.message());
  record.objects.clear();
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
  }
  nlohmann::json j = {{"build_id", record.build_id}, {"output", record.output},
                      {"compiler", record.compiler}, {"policy", record.policy},
                      {"link_args", record.link_args}, {"objects", nlohmann::json::array()}};
  for (const auto& o : record.objects) j["objects"].push_back(o.string());
  {
    std::ofstream out(staging / "build.json");
    out << j.dump(2) << "\n";
    if (!out) return make_error("graft store: cannot write {}", (staging / "build.json").string());
  }
  fs::remove_all(dir, ec);  // a relink of identical inputs gives the same build-id
  fs::rename(staging, dir, ec);
  if (ec) return make_error("graft store: cannot publish {}: {}", dir.string(), ec.message());
  return ok();
}

Result<BuildRecord> load_build(const std::string& build_id) {
  const fs::path file = store_dir(build_id) / "build.json";
  std::ifstream in(file);
  if (!in)
    return make_error("no graft build record for build-id {} in {} (build the binary with graft-cc, or set GRAFT_STORE)",
                      build_id, store_root().string());
  try {
    nlohmann::json j = nlohmann::json::parse(in);
    BuildRecord r;
    r.build_id = j.at("build_id").get<std::string>();
    r.output = j.at("output").get<std::string>();
    r.compiler = j.at("compiler").get<std::string>();
    r.policy = j.at("policy").get<std::string>();
    r.link_args = j.at("link_args").get<std::vector<std::string>>();
    for (const auto& o : j.at("objects")) r.objects.emplace_back(o.get<std::string>());
    return r;
  } catch (const std::exception& e) {
    return make_error("{}: corrupt build record ({})", file.string(), e.what());
  }
}

}  // namespace graft
