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

namespace graft::diff {

inline constexpr const char* kTransformerRunner = "graft_transform_run";

struct CompiledTransformers {
  std::unique_ptr<ElfFile> object;
  std::map<std::string, std::string> functions;  // changed struct ("struct node") -> its transformer
};

// The directives of a transformer file (GRAFT_POINTS_TO, GRAFT_UNION_MEMBER),
// one per line, with their place; checked against the types by the planner.
Result<std::vector<DataDirective>> read_directives(const std::filesystem::path& file);

// Compiles `file` (with the program's headers from `include_dirs`, the new
// build's source root first) and checks it: every transformer is for a
// struct the plan changes, defined, and calls only what the program or its
// libraries define; the file needs a transformer or a directive (the
// directives' static assertions check them against the new headers). Each
// refusal is one line naming the file and the fix.
Result<CompiledTransformers> compile_transformers(const std::filesystem::path& file,
                                                  const std::vector<std::filesystem::path>& include_dirs,
                                                  const DataPlan& plan, const Build& old_build, const Build& new_build);

}  // namespace graft::diff
