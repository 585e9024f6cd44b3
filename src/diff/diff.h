// The patch generator: compares two builds made by graft-cc at the level of
// compiled code (per-function sections, relocation targets normalised to
// symbol identities) and writes the patch that turns OLD into NEW.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "patch/patch.h"

namespace graft {

struct DiffRequest {
  std::filesystem::path old_binary;
  std::filesystem::path new_binary;
  // Transformers written by the user (C, compiled into the patch), and where
  // its #includes are found besides the new build's source root.
  std::filesystem::path transform_file;
  std::vector<std::filesystem::path> transform_includes;
  // New globals (or new members, "global.member") set by start-up code whose
  // static value the user says is right after a live update.
  std::vector<std::string> static_values;
  // Never-returning functions (main, a thread's loop) whose threads have no
  // place to move into the new code, written into the patch anyway.
  std::vector<std::string> stuck_threads_allowed;
  // Where to write, when graft diff must ask what untyped members or globals
  // hold, every question as a --transform skeleton (graft diff --questions).
  std::filesystem::path questions_file;
};

// The patch, or a refusal that says what cannot be patched yet and why.
Result<Patch> generate_patch(const DiffRequest& request);

// The C header of the old layouts a transformer file is written against
// (graft diff --transform-header).
Result<std::string> transformer_header(const DiffRequest& request);

// Human-readable report: every function in the patch and why, data added,
// functions removed, state kept.
std::string explain_patch(const Patch& patch);

}  // namespace graft
