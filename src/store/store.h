// The build store: what graft-cc records about each executable it links, found
// again from the executable's build-id (like a debuginfod cache).
//
//   $GRAFT_STORE (default $XDG_CACHE_HOME/graft/store, else ~/.cache/graft/store)
//     <build-id>/build.json        the BuildRecord below
//     <build-id>/objects/NNNN-<name>.o   the linked objects, in link order
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.h"

namespace graft {

struct BuildRecord {
  std::string build_id;                // lowercase hex of NT_GNU_BUILD_ID
  std::string output;                  // absolute path of the linked executable when it was linked
  std::string compiler;                // the clang the driver ran, e.g. "/usr/bin/clang-14"
  std::string policy;                  // optimisation/patchability policy: "strict" or "fast"
  std::vector<std::string> link_args;  // the link command as run
  std::vector<std::filesystem::path> objects;  // absolute paths inside the store, link order
};

std::filesystem::path store_root();
std::filesystem::path store_dir(const std::string& build_id);

// Imports `objects` (hard links, or copies across file systems) and writes build.json.
Status save_build(BuildRecord record, const std::vector<std::filesystem::path>& objects);

// Reads the record of a build; a clear error if graft-cc did not link it.
Result<BuildRecord> load_build(const std::string& build_id);

}  // namespace graft
