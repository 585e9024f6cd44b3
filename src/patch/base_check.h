// Whether a patch was made from a given binary: the build-id, load address
// and every base symbol and import slot its manifest names must be the
// binary's own. graft apply checks the binary the process runs before it
// writes anything; a patch whose manifest was altered, or that was made for
// another build, is refused in one line.
#pragma once
#include <map>
#include <string>

#include "common/error.h"
#include "elf/elf_file.h"
#include "patch/patch.h"

namespace graft {

// The GOT slot of each symbol a binary imports from a shared library (the
// first dynamic relocation that fills one), as graft diff records it.
std::map<std::string, uint64_t> imported_slots(const ElfFile& binary);

// `label` names the patch in the message.
Status check_patch_base(const Manifest& manifest, const ElfFile& binary, const std::string& label);

}  // namespace graft
