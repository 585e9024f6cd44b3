// libFuzzer target for the patch parser (graft::parse_patch, then the data
// plan's decode_data_plan): every input must be refused in one line or
// parsed, never crash, leak or hang.
//
// An input is tried twice: as the whole file (the seal refuses nearly every
// mutation), and, with its seal (if any) cut off, sealed anew, so that the
// mutations reach the ELF reader, the manifest's JSON and the structural
// checks behind the seal.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "data/plan.h"
#include "patch/patch.h"

namespace {

void expect_one_line(const graft::Error& error) {
  const std::string& message = error.message;
  if (message.empty() || message.find('\n') != std::string::npos) {
    std::fprintf(stderr, "a refusal is not one line: [%s]\n", message.c_str());
    std::abort();
  }
}

// What graft apply does first with a patch that parsed: its id, and its
// data plan (.graft.data), decoded.
void expect_one_line(const graft::Result<graft::Patch>& parsed) {
  if (!parsed) return expect_one_line(parsed.error());
  (void)graft::patch_content_id(parsed.value());
  if (parsed.value().data_plan.empty()) return;
  auto plan = graft::decode_data_plan(parsed.value().data_plan);
  if (!plan) expect_one_line(plan.error());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> input(data, data + size);
  expect_one_line(graft::parse_patch(input, "fuzz"));
  if (input.size() >= graft::kPatchSealBytes && input[input.size() - graft::kPatchSealBytes] == 'G')
    input.resize(input.size() - graft::kPatchSealBytes);
  expect_one_line(graft::parse_patch(graft::seal_patch_image(std::move(input)), "fuzz"));
  return 0;
}
