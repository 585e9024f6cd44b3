// Transformers written by the user (graft diff --transform FILE.c): compiled
// with the pinned clang against the old layouts graft declares, checked, and
// handed to the generator as one more object whose code goes into the patch.
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "diff/build.h"
#include "data/plan.h"
#include "elf/elf_file.h"
#include "elf/types.h"
#include "patch/patch.h"

namespace graft::diff {

inline constexpr const char* kTransformerRunner = "graft_transform_run";
inline constexpr const char* kUpdateRunner = "graft_update_run";

struct CompiledTransformers {
  std::unique_ptr<ElfFile> object;
  std::map<std::string, std::string> functions;  // changed struct ("struct node") -> its transformer
  // Update-time code (GRAFT_INIT, GRAFT_RERUN, GRAFT_ON_UPDATE), every name
  // resolved to its identity in the new build and checked; runner and file
  // set when there is any. update_code.initialised_globals() and
  // update_code.reruns say which start-up state the file takes care of.
  UpdateCode update_code;
};

// The directives of a transformer file (GRAFT_POINTS_TO, GRAFT_UNION_MEMBER),
// one per line, with their place; checked against the types by the planner.
Result<std::vector<DataDirective>> read_directives(const std::filesystem::path& file);

// Compiles `file` (with the program's headers from `include_dirs`, the new
// build's source root first) and checks it: every transformer is for a
// struct the plan changes, defined, and calls only what the program or its
// libraries define; every GRAFT_INIT is for a global the new version adds,
// of its size; every GRAFT_RERUN names a function of the new version that
// takes no parameters (`new_types`: the new build's DWARF); the file needs a
// transformer, a directive or update-time code (the directives' static
// assertions check them against the new headers). Each refusal is one line
// naming the file and the fix.
Result<CompiledTransformers> compile_transformers(const std::filesystem::path& file,
                                                  const std::vector<std::filesystem::path>& include_dirs,
                                                  const DataPlan& plan, const Build& old_build, const Build& new_build,
                                                  const TypeTable& new_types);

}  // namespace graft::diff
