// libFuzzer target for the patch parser (graft::parse_patch): every input
// must be refused in one line or parsed, never crash, leak or hang.
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

#include "patch/patch.h"

namespace {

void expect_one_line(const graft::Result<graft::Patch>& parsed) {
  if (parsed) {
    (void)graft::patch_content_id(parsed.value());  // what a parsed patch is used for first
    return;
  }
  const std::string& message = parsed.error().message;
  if (message.empty() || message.find('\n') != std::string::npos) {
    std::fprintf(stderr, "a refusal is not one line: [%s]\n", message.c_str());
    std::abort();
  }
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
