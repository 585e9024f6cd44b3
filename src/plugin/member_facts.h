// The member facts (common/member_facts_format.h): what a unit stores into
// the untyped members of its structs, recorded in a section that is not
// loaded. Runs at the start of the pipeline, before instcombine folds away
// the casts that say what a void * holds.
#pragma once
#include "llvm/IR/PassManager.h"

namespace graft {

class MemberFactsPass : public llvm::PassInfoMixin<MemberFactsPass> {
 public:
  llvm::PreservedAnalyses run(llvm::Module& module, llvm::ModuleAnalysisManager&);
  static bool isRequired() { return true; }
};

// Off when GRAFT_MEMBER_FACTS=off.
bool member_facts_enabled();

}  // namespace graft
