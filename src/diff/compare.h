// Equality of compiled code and data between two builds, with relocation
// targets normalised to identities (or, for anonymous read-only data such as
// string literals and jump tables, to their contents).
#pragma once
#include <map>
#include <string>

#include "diff/build.h"

namespace graft::diff {

struct Target {
  enum Kind { External, Named, Anonymous } kind = External;
  std::string name;     // External: symbol name; Named: identity
  SectionRef section;   // Named, Anonymous
  int64_t offset = 0;   // Named: from the symbol, addend included; Anonymous: from the section start
  // Named through its section: the definition that ends where `name` begins,
  // which the reference may mean instead (`&a[N]` is also `&b`).
  std::string or_end_of;
};

// Where a relocation of section `from` points, in build `build`.
Result<Target> resolve_target(const Build& build, SectionRef from, const ElfRelocation& r);

class Comparator {
 public:
  Comparator(const Build& old_build, const Build& new_build) : old_(old_build), new_(new_build) {}
  // Same bytes and same relocation targets. On a difference, `reason` says what differs.
  bool same_section(SectionRef old_ref, SectionRef new_ref, std::string* reason = nullptr);
  // Whether a relocation of type `type` refers to the same thing in both builds.
  bool same_target(const Target& a, const Target& b, uint32_t type, std::string* reason = nullptr);

 private:
  bool compare(SectionRef old_ref, SectionRef new_ref, std::string* reason);

  const Build& old_;
  const Build& new_;
  std::map<std::pair<SectionRef, SectionRef>, bool> memo_;
};

}  // namespace graft::diff
