// The build store: what graft-cc records about each executable it links, found
// again from the executable's build-id (like a debuginfod cache).
//
//   $GRAFT_STORE (default $XDG_CACHE_HOME/graft/store, else ~/.cache/graft/store;
//                 with neither HOME nor XDG_CACHE_HOME set there is no store:
//                 never a shared one in /tmp)
//     <build-id>/build.json        the BuildRecord below
//     <build-id>/objects/NNNN-<name>.o   the linked objects, in link order (archive
//                                        members too, taken out as linked)
//
// A store is code graft diff puts into patches that root applies: it is
// trusted only when no one but its owner (root or the user running graft)
// can write it (common/file_trust.h), and the objects a record lists are
// checked against the digests graft-cc recorded when it linked them, with
// the executable they built.
#pragma once
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace graft {

// An archive member linked into the executable that graft-cc did not
// compile: its code cannot be patched, so it is not kept, but its digest is,
// so that graft diff refuses a change to it instead of missing it.
struct ForeignMember {
  std::string name;    // "libfoo.a(c.o)": the archive's file name and the member's
  std::string digest;  // BLAKE2b-256 (hex) of the member as linked
};

struct BuildRecord {
  std::string build_id;                // lowercase hex of NT_GNU_BUILD_ID
  std::string output;                  // absolute path of the linked executable when it was linked
  std::string output_digest;           // BLAKE2b-256 (hex) of that executable as linked
  std::string compiler;                // the clang the driver ran, e.g. "/usr/bin/clang-14"
  std::string policy;                  // optimisation/patchability policy: "strict" or "fast"
  std::vector<std::string> link_args;  // the link command as run
  std::vector<std::filesystem::path> objects;  // absolute paths inside the store, link order
  std::vector<std::string> object_digests;     // BLAKE2b-256 (hex) of each object as linked
  std::vector<ForeignMember> foreign_members;  // archive members not compiled by graft-cc
};

// An error when GRAFT_STORE, XDG_CACHE_HOME and HOME are all unset.
Result<std::filesystem::path> store_root();
Result<std::filesystem::path> store_dir(const std::string& build_id);

// Imports `objects` (hard links, or copies across file systems), records
// their digests, the digest of `record.output` and of each `foreign` member
// (name, its object file), and writes build.json.
// What it creates is writable by its owner only, whatever the umask.
Status save_build(BuildRecord record, const std::vector<std::filesystem::path>& objects,
                  const std::vector<std::pair<std::string, std::filesystem::path>>& foreign = {});

// Reads the record of a build; a clear error if graft-cc did not link it, or
// if the store or the record may be written by anyone but its owner.
Result<BuildRecord> load_build(const std::string& build_id);

// Whether the record's objects are still what graft-cc linked, and `binary`
// is the executable they built: one line naming the first that is not.
Status verify_build(const BuildRecord& record, const std::filesystem::path& binary);

}  // namespace graft
