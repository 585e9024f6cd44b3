// Heap type tags (graft-cc --graft-heap-types=on; common/member_facts_format.h
// says what the table is). The member facts find the sites (a cast of an
// allocation call's result to a struct pointer); this writes the code: a
// tag after each such cast, and free()/realloc() replaced by wrappers that
// clear the block's tag first. The few functions that do it are emitted into
// each unit as link-once definitions, so no library is linked.
#pragma once
#include <set>
#include <string>
#include <vector>

#include "llvm/IR/Instruction.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Value.h"

namespace graft {

struct HeapTagSite {
  llvm::Instruction* cast = nullptr;  // the cast to the struct pointer: the tag goes right after it
  llvm::Value* block = nullptr;       // the call's result
  uint16_t id = 0;                    // the struct's heap_type_id
  // "": the call returns fresh memory; else the flag (kHeapTypesFreshFlag +
  // the callee, defined by the callee's unit if it does) that says so at link time.
  std::string fresh_flag;
};

// On when GRAFT_HEAP_TYPES=on (graft-cc --graft-heap-types=on sets it).
bool heap_types_enabled();

// Tags each site, makes every free() and realloc() of the module clear the
// block's tag, and defines the flag of each of `fresh` (functions of the
// module that return only fresh memory) for other units' sites, and each of
// `slot_flags` (the allocator slots of its globals' initializers).
void instrument_heap_types(llvm::Module& module, const std::vector<HeapTagSite>& sites,
                           const std::set<std::string>& fresh, const std::set<std::string>& slot_flags);

}  // namespace graft
