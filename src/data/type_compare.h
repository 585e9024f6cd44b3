// Comparing a type of the old build with a type of the new one.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "elf/types.h"

namespace graft {

// A field as transformers match them (anonymous struct members looked through).
struct Field {
  std::string name;
  uint64_t offset = 0;
  uint32_t bit_size = 0, bit_offset = 0;
  int type = -1;
};
std::vector<Field> fields_of(const TypeTable& table, int type);

class TypeComparison {
 public:
  // `renamed`: old struct names the new version spells differently
  // ("struct tube" -> "struct Tube"), paired as if they had kept them.
  TypeComparison(const TypeTable& old_types, const TypeTable& new_types,
                 const std::map<std::string, std::string>* renamed = nullptr)
      : old_(old_types), new_(new_types), renamed_(renamed) {}
  // Whether a value of old type i must be transformed to be a value of new type j.
  bool differs(int i, int j) const;
  // Whether a default transformer turns an i into a j.
  bool convertible(int i, int j) const;
  // The new type of an old named aggregate or enum (same name, or its new
  // name if it is renamed), or -1.
  int counterpart(int old_index) const;
  // The new type of an old named struct whose values must be transformed, or -1.
  int changed(int old_index) const;
  // For every old type: whether a value of it can lead, by value or through
  // pointers, to an instance of a changed struct; `declared` adds edges
  // (container -> pointee) the user declared for members graft cannot type.
  // `seeds` lead by themselves (a struct with an undeclared void * member).
  std::vector<bool> reaches_change(const std::vector<std::pair<int, int>>& declared = {},
                                   const std::vector<int>& seeds = {}) const;
  // The same, towards the old types `targets` only (not every changed struct).
  std::vector<bool> reaches(std::vector<bool> targets, const std::vector<std::pair<int, int>>& declared) const;

 private:
  const TypeTable& old_;
  const TypeTable& new_;
  const std::map<std::string, std::string>* renamed_;
  mutable std::map<std::pair<int, int>, bool> memo_;
};

}  // namespace graft
