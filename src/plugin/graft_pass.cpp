// graft-pass.so: the LLVM pass plugin that graft-cc loads into the pinned clang
// (-fpass-plugin). It runs at the start of every optimisation pipeline, -O0
// included, and applies the optimisation/patchability policy named by the
// environment variable GRAFT_POLICY (set by the driver for its clang child):
//
//   strict  Every defined function that is not always_inline gets `noinline`,
//           and every function with local linkage (static, anonymous
//           namespace) that is not always_inline is added to `llvm.used`.
//           A used function counts as address-taken, so interprocedural
//           constant propagation, dead-argument elimination and argument
//           promotion cannot change its interface, and it stays a real,
//           patchable symbol (its section gets SHF_GNU_RETAIN, so
//           --gc-sections keeps it too).
//           And each such function gets two empty inline-asm barriers, which
//           emit no instruction: at entry, one that may read and write memory
//           and receives every pointer argument (so no caller may assume the
//           function readnone/readonly or its pointers not captured, and drop,
//           merge or reorder calls on that basis), and before each return one
//           that makes the returned value opaque (so interprocedural constant
//           propagation cannot fold a constant or a range into callers).
//           A change inside a function then changes only that function.
//           Not prevented: nounwind and norecurse inference.
//   balanced  Nothing is inlined into main or into a service loop (a function
//           with a loop that makes a blocking call: epoll_wait, accept, read,
//           pthread_cond_wait, ...), and what they call is sealed as in
//           strict. Elsewhere clang optimises as usual. A change then reaches
//           a function that never returns only if that function itself changed.
//   fast    Changes no function.
//
// In every policy, writable static variables keep their identity and layout
// (see keep_state), and the module gets the flag "graft.policy" (a string), so
// the policy can be read back from bitcode.
//
// Under strict and balanced, an update point is a place where graft can move
// a thread into a new version of its function (a transfer point): at each
// call to graft_update_point_reached (once graft_update_point is inlined),
// every user variable whose value is live across the call goes through an
// empty inline-asm barrier (`asm volatile("" : "+r"(v))`, no instruction)
// right before it, a new llvm.dbg.value names the barrier's result, and the
// code after the call uses that result (see UpdatePointPass). The compiler
// then knows nothing about the values after the call, so it cannot keep a
// value derived from them across it (an induction variable rounds+1 that
// no DWARF location names): what is live at the call's return is what DWARF
// says. It is on the update-pending path only. Nothing else is changed.
//
// In every policy, first of all (unless GRAFT_MEMBER_FACTS=off), the unit
// records what it stores into the void * and address-holding integer
// members of its structs, in a section that is not loaded (member_facts.h):
// graft diff reads it to know what those members hold.
//
// The plugin is compiled against the headers of one LLVM major and resolves
// LLVM's symbols from the clang that loads it (it links nothing). Loaded into
// another major it would run against a different ABI, so it checks the host
// first and refuses to register (clang then reports a wrong plugin API
// version) when it can tell the host is another major.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <string_view>
#include <vector>

#include "common/blocking_calls.h"
#include "plugin/member_facts.h"

#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/IR/Attributes.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/Function.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/InlineAsm.h"
#include "llvm/IR/CFG.h"
#include "llvm/IR/DebugInfoMetadata.h"
#include "llvm/IR/Dominators.h"
#include "llvm/IR/IntrinsicInst.h"
#include "llvm/IR/Instructions.h"
#include "llvm/IR/Metadata.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/PassManager.h"
#include "llvm/Passes/OptimizationLevel.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Passes/PassPlugin.h"
#include "llvm/Transforms/Utils/ModuleUtils.h"
#include "llvm/Transforms/Utils/SSAUpdater.h"

namespace {

enum class Policy { Strict, Balanced, Fast };

constexpr const char* kPolicyFlag = "graft.policy";

Policy policy_from_environment() {
  const char* value = std::getenv("GRAFT_POLICY");
  if (value == nullptr || *value == '\0' || std::strcmp(value, "strict") == 0) return Policy::Strict;
  if (std::strcmp(value, "fast") == 0) return Policy::Fast;
  if (std::strcmp(value, "balanced") == 0) return Policy::Balanced;
  static bool warned = false;
  if (!warned) {
    warned = true;
    std::fprintf(stderr, "graft-pass: unknown GRAFT_POLICY '%s' (expected strict or fast); using strict\n", value);
  }
  return Policy::Strict;
}

// Keeps what a function does from being known to its callers (see above).
void seal_boundary(llvm::Function& function) {
  if (function.hasFnAttribute(llvm::Attribute::OptimizeNone)) return;  // -O0: nothing crosses anyway
  llvm::LLVMContext& context = function.getContext();
  std::vector<llvm::Value*> pointers;
  std::vector<llvm::Type*> types;
  std::string constraints;
  for (llvm::Argument& argument : function.args()) {
    if (!argument.getType()->isPointerTy()) continue;
    pointers.push_back(&argument);
    types.push_back(argument.getType());
    constraints += "r,";
  }
  constraints += "~{memory}";
  llvm::IRBuilder<> entry(&*function.getEntryBlock().getFirstInsertionPt());
  auto* entry_type = llvm::FunctionType::get(llvm::Type::getVoidTy(context), types, false);
  entry.CreateCall(llvm::InlineAsm::get(entry_type, "", constraints, /*hasSideEffects=*/true), pointers);
  for (llvm::BasicBlock& block : function) {
    auto* ret = llvm::dyn_cast<llvm::ReturnInst>(block.getTerminator());
    if (!ret || !ret->getReturnValue()) continue;
    llvm::Type* type = ret->getReturnValue()->getType();
    const unsigned bits = type->isIntegerTy() ? type->getIntegerBitWidth() : 0;
    const char* constraint = nullptr;
    if (bits == 8 || bits == 16 || bits == 32 || bits == 64 || type->isPointerTy()) constraint = "=r,0";
    else if (type->isFloatTy() || type->isDoubleTy()) constraint = "=x,0";
    if (!constraint) continue;
    llvm::IRBuilder<> before_return(ret);
    auto* opaque_type = llvm::FunctionType::get(type, {type}, false);
    llvm::Value* opaque = before_return.CreateCall(llvm::InlineAsm::get(opaque_type, "", constraint, false),
                                                   {ret->getReturnValue()});
    ret->setOperand(0, opaque);
  }
}

const char* policy_name(Policy policy) {
  switch (policy) {
    case Policy::Strict: return "strict";
    case Policy::Balanced: return "balanced";
    case Policy::Fast: return "fast";
  }
  return "strict";
}

// Calls that may block a thread for a long time: a function that makes one
// inside a loop is a service loop (an event loop, a worker's loop), which
// may never return and so can only be patched from the outside.
bool is_blocking_call(const llvm::CallBase& call) {
  const llvm::Function* callee = call.getCalledFunction();
  return callee && callee->isDeclaration() && graft::is_blocking_call(std::string_view(callee->getName()));
}

// main, and any function with a loop that blocks: what is inlined into them
// could never be patched, as they never return to take a new version.
bool runs_for_ever(llvm::Function& function) {
  if (function.getName() == "main") return true;
  bool blocks = false;
  for (llvm::BasicBlock& block : function)
    for (llvm::Instruction& instruction : block)
      if (auto* call = llvm::dyn_cast<llvm::CallBase>(&instruction)) blocks |= is_blocking_call(*call);
  if (!blocks) return false;
  // A loop: some block branches back to one placed before it (clang emits blocks in source order).
  std::map<const llvm::BasicBlock*, size_t> order;
  for (llvm::BasicBlock& block : function) order.emplace(&block, order.size());
  for (llvm::BasicBlock& block : function)
    for (const llvm::BasicBlock* next : llvm::successors(&block))
      if (order[next] <= order[&block]) return true;
  return false;
}

class GraftPolicyPass : public llvm::PassInfoMixin<GraftPolicyPass> {
 public:
  explicit GraftPolicyPass(Policy policy) : policy_(policy) {}

  llvm::PreservedAnalyses run(llvm::Module& module, llvm::ModuleAnalysisManager&) {
    // The pipeline-start callback may run more than once on a module (e.g. a
    // ThinLTO pre-link pipeline): a module flag must be unique.
    if (module.getModuleFlag(kPolicyFlag) == nullptr) {
      module.addModuleFlag(llvm::Module::Warning, kPolicyFlag,
                           llvm::MDString::get(module.getContext(), policy_name(policy_)));
    }
    const bool kept = keep_state(module);
    if (policy_ == Policy::Fast) return kept ? llvm::PreservedAnalyses::none() : llvm::PreservedAnalyses::all();
    if (policy_ == Policy::Balanced) {
      // What a service loop calls stays a call, and sealed: the loop learns
      // nothing about it. Elsewhere the barriers would cost (they stop
      // optimisation where a function is inlined), so nothing else is sealed.
      // Service loops, and what calls them (a thread's start routine that
      // calls the loop never returns either).
      std::set<llvm::Function*> forever;
      for (llvm::Function& function : module)
        if (!function.isDeclaration() && runs_for_ever(function)) forever.insert(&function);
      for (bool grew = true; grew;) {
        grew = false;
        for (llvm::Function& function : module) {
          if (function.isDeclaration() || forever.count(&function)) continue;
          for (llvm::BasicBlock& block : function)
            for (llvm::Instruction& instruction : block)
              if (auto* call = llvm::dyn_cast<llvm::CallBase>(&instruction))
                if (call->getCalledFunction() && forever.count(call->getCalledFunction()) &&
                    forever.insert(&function).second)
                  grew = true;
        }
      }
      std::vector<llvm::Function*> sealed;
      for (llvm::Function& function : module) {
        if (!forever.count(&function)) continue;
        for (llvm::BasicBlock& block : function)
          for (llvm::Instruction& instruction : block) {
            auto* call = llvm::dyn_cast<llvm::CallBase>(&instruction);
            if (!call) continue;
            call->setIsNoInline();
            llvm::Function* callee = call->getCalledFunction();
            if (callee && !callee->isDeclaration() && !callee->hasFnAttribute(llvm::Attribute::AlwaysInline) &&
                std::find(sealed.begin(), sealed.end(), callee) == sealed.end())
              sealed.push_back(callee);
          }
      }
      for (llvm::Function* callee : sealed) seal_boundary(*callee);
      return llvm::PreservedAnalyses::none();
    }

    std::vector<llvm::GlobalValue*> keep;
    for (llvm::Function& function : module) {
      if (function.isDeclaration()) continue;
      // noinline and alwaysinline together fail the verifier; an always_inline
      // function is inlined by design and never exists as a patchable symbol.
      if (function.hasFnAttribute(llvm::Attribute::AlwaysInline)) continue;
      // optnone (-O0) already requires noinline; adding it again is a no-op.
      function.addFnAttr(llvm::Attribute::NoInline);
      if (function.hasLocalLinkage()) keep.push_back(&function);
      seal_boundary(function);
    }
    if (!keep.empty()) llvm::appendToUsed(module, keep);
    return llvm::PreservedAnalyses::none();
  }

  // Run at -O0 too, and on optnone functions' modules.
  static bool isRequired() { return true; }

  // Every writable variable with static storage and local linkage keeps its
  // identity and layout: in llvm.compiler.used it counts as escaped, so
  // GlobalOpt neither splits a static struct into one global per field
  // (`table` -> `table.0`, `table.1`: a live update could no longer find the
  // struct, nor transform it) nor folds a static that is never written into
  // the code that reads it (a later version that writes it would disagree).
  static bool keep_state(llvm::Module& module) {
    std::vector<llvm::GlobalValue*> state;
    for (llvm::GlobalVariable& global : module.globals())
      if (global.hasLocalLinkage() && !global.isConstant() && !global.isDeclaration() &&
          !global.getName().startswith("llvm.") && !global.isThreadLocal())
        state.push_back(&global);
    if (!state.empty()) llvm::appendToCompilerUsed(module, state);
    return !state.empty();
  }

 private:
  Policy policy_;
};

// Update points as transfer points (see the top of this file). Runs at every
// peephole extension point of a function's simplification, the first of
// which follows inlining (graft_update_point is always_inline) and precedes
// the loop passes (indvars, LICM; loop strength reduction runs later, in
// code generation). It may run again on the same function: a value that
// already is a barrier's result is skipped, so a function inlined into
// another gets barriers for the caller's variables only.
class UpdatePointPass : public llvm::PassInfoMixin<UpdatePointPass> {
 public:
  llvm::PreservedAnalyses run(llvm::Function& function, llvm::FunctionAnalysisManager& analyses) {
    if (function.hasFnAttribute(llvm::Attribute::OptimizeNone)) return llvm::PreservedAnalyses::all();
    std::vector<llvm::CallInst*> points;
    for (llvm::BasicBlock& block : function)
      for (llvm::Instruction& instruction : block)
        if (auto* call = llvm::dyn_cast<llvm::CallInst>(&instruction))
          if (call->getCalledFunction() && call->getCalledFunction()->getName() == graft::kUpdatePointCall &&
              call->getDebugLoc())
            points.push_back(call);
    if (points.empty()) return llvm::PreservedAnalyses::all();
    auto& tree = analyses.getResult<llvm::DominatorTreeAnalysis>(function);
    bool changed = false;
    for (llvm::CallInst* call : points) changed |= make_placeable(*call, tree);
    if (!changed) return llvm::PreservedAnalyses::all();
    llvm::PreservedAnalyses kept;
    kept.preserveSet<llvm::CFGAnalyses>();  // new instructions and phis only: the blocks and edges stay
    return kept;
  }

  static bool isRequired() { return true; }

 private:
  static constexpr const char* kBarrier = "graft.update_point_barrier";

  // One frame of a call's inline chain: (subprogram, the location it is inlined at).
  using Frame = std::pair<const llvm::DISubprogram*, const llvm::DILocation*>;

  // The frames the call at `location` is in, innermost first, each with the
  // innermost lexical scope the call is in there.
  static std::vector<std::pair<Frame, const llvm::DIScope*>> frames_of(const llvm::DILocation* location) {
    std::vector<std::pair<Frame, const llvm::DIScope*>> out;
    for (; location; location = location->getInlinedAt())
      out.push_back({{location->getScope()->getSubprogram(), location->getInlinedAt()}, location->getScope()});
    return out;
  }

  // The user variables in scope at the call (of its function and of every
  // function it is inlined into), each with the value it holds there: the
  // llvm.dbg.value for it nearest before the call, in its block or in a
  // block that dominates it.
  static std::vector<std::pair<llvm::DbgValueInst*, llvm::Value*>> variables_at(llvm::CallInst& call,
                                                                                llvm::DominatorTree& tree) {
    const auto frames = frames_of(call.getDebugLoc().get());
    auto in_scope = [&](const llvm::DbgValueInst& value) {
      const llvm::DILocalVariable* variable = value.getVariable();
      const llvm::DILocation* location = value.getDebugLoc().get();
      if (!variable || !location) return false;
      const Frame frame{variable->getScope()->getSubprogram(), location->getInlinedAt()};
      for (const auto& [f, scope] : frames) {
        if (f != frame) continue;
        for (const llvm::DIScope* s = scope; s; s = llvm::isa<llvm::DILexicalBlockBase>(s)
                                                      ? llvm::cast<llvm::DILexicalBlockBase>(s)->getScope()
                                                      : nullptr)
          if (s == variable->getScope()) return true;
        return false;
      }
      return false;
    };
    std::vector<std::pair<llvm::DbgValueInst*, llvm::Value*>> out;
    std::set<std::pair<const llvm::DILocalVariable*, const llvm::DILocation*>> seen;
    llvm::BasicBlock* block = call.getParent();
    llvm::Instruction* from = &call;
    while (block) {
      for (auto it = from->getReverseIterator(); it != block->rend(); ++it) {
        auto* value = llvm::dyn_cast<llvm::DbgValueInst>(&*it);
        if (!value || !in_scope(*value)) continue;
        if (!seen.insert({value->getVariable(), value->getDebugLoc()->getInlinedAt()}).second) continue;
        if (value->hasArgList() || value->getNumVariableLocationOps() != 1) continue;
        out.push_back({value, value->getVariableLocationOp(0)});
      }
      llvm::DomTreeNode* node = tree.getNode(block);
      block = node && node->getIDom() ? node->getIDom()->getBlock() : nullptr;
      if (block) from = block->getTerminator();
    }
    return out;
  }

  // Whether `value`, which dominates the call, may be used after it: a use
  // reachable from the call without passing the value's definition again.
  static bool live_after(llvm::Value& value, llvm::CallInst& call) {
    llvm::BasicBlock* point = call.getParent();
    llvm::BasicBlock* def = nullptr;
    if (auto* instruction = llvm::dyn_cast<llvm::Instruction>(&value)) def = instruction->getParent();
    // Blocks reachable from the end of the call's block, not going on past the definition's.
    llvm::SmallPtrSet<llvm::BasicBlock*, 16> reached;
    std::vector<llvm::BasicBlock*> work(llvm::succ_begin(point), llvm::succ_end(point));
    while (!work.empty()) {
      llvm::BasicBlock* block = work.back();
      work.pop_back();
      if (!reached.insert(block).second || block == def) continue;
      for (llvm::BasicBlock* next : llvm::successors(block)) work.push_back(next);
    }
    for (llvm::Use& use : value.uses()) {
      auto* user = llvm::dyn_cast<llvm::Instruction>(use.getUser());
      if (!user) continue;
      if (auto* phi = llvm::dyn_cast<llvm::PHINode>(user)) {
        llvm::BasicBlock* from = phi->getIncomingBlock(use);
        if (from == point || reached.count(from)) return true;
        continue;
      }
      llvm::BasicBlock* block = user->getParent();
      if (block == point && call.comesBefore(user)) return true;
      if (block != def && reached.count(block)) return true;
    }
    return false;
  }

  // The barrier's constraint for a value of `type`, or null: none is made
  // (an i1, a _Bool the compiler narrowed, an aggregate, a vector).
  static const char* constraint_for(llvm::Type* type) {
    if (type->isPointerTy()) return "=r,0";
    if (type->isIntegerTy()) {
      const unsigned bits = type->getIntegerBitWidth();
      return bits == 8 || bits == 16 || bits == 32 || bits == 64 ? "=r,0" : nullptr;
    }
    if (type->isFloatTy() || type->isDoubleTy()) return "=x,0";
    return nullptr;
  }

  static bool is_barrier(const llvm::Value& value) {
    auto* call = llvm::dyn_cast<llvm::CallInst>(&value);
    return call && call->getMetadata(kBarrier) != nullptr;
  }

  // Barriers for the variables live across one update point's call.
  static bool make_placeable(llvm::CallInst& call, llvm::DominatorTree& tree) {
    // Each value once, with the variables it holds.
    std::vector<llvm::Value*> values;
    std::map<llvm::Value*, std::vector<llvm::DbgValueInst*>> holders;
    for (auto [dbg, value] : variables_at(call, tree)) {
      if (!llvm::isa<llvm::Instruction>(value) && !llvm::isa<llvm::Argument>(value)) continue;  // constants, undef
      if (is_barrier(*value) || !constraint_for(value->getType())) continue;
      if (auto* instruction = llvm::dyn_cast<llvm::Instruction>(value); instruction && !tree.dominates(instruction, &call))
        continue;
      if (!live_after(*value, call)) continue;
      if (holders[value].empty()) values.push_back(value);
      holders[value].push_back(dbg);
    }
    if (values.empty()) return false;
    llvm::LLVMContext& context = call.getContext();
    llvm::BasicBlock* point = call.getParent();
    llvm::IRBuilder<> before(&call);
    for (llvm::Value* value : values) {
      llvm::Type* type = value->getType();
      auto* asm_type = llvm::FunctionType::get(type, {type}, false);
      llvm::CallInst* barrier = before.CreateCall(
          llvm::InlineAsm::get(asm_type, "", constraint_for(type), /*hasSideEffects=*/true), {value});
      barrier->setMetadata(kBarrier, llvm::MDNode::get(context, {}));
      barrier->setDebugLoc(call.getDebugLoc());
      // The variables are in the barrier's result from here on.
      for (llvm::DbgValueInst* dbg : holders[value]) {
        auto* copy = llvm::cast<llvm::DbgValueInst>(dbg->clone());
        copy->replaceVariableLocationOp(value, barrier);
        copy->insertBefore(&call);
      }
      // What the code after the call reads is the barrier's result (phis where
      // it meets the paths that did not pass the update point).
      llvm::BasicBlock* def = llvm::isa<llvm::Instruction>(value) ? llvm::cast<llvm::Instruction>(value)->getParent()
                                                                  : &point->getParent()->getEntryBlock();
      llvm::SSAUpdater ssa;
      ssa.Initialize(type, value->getName());
      if (def != point) ssa.AddAvailableValue(def, value);
      ssa.AddAvailableValue(point, barrier);
      std::vector<llvm::Use*> uses;
      for (llvm::Use& use : value->uses()) uses.push_back(&use);
      for (llvm::Use* use : uses) {
        auto* user = llvm::dyn_cast<llvm::Instruction>(use->getUser());
        if (!user || user == barrier) continue;
        if (llvm::isa<llvm::PHINode>(user)) {
          ssa.RewriteUse(*use);
        } else if (user->getParent() == point && barrier->comesBefore(user)) {
          use->set(barrier);
        } else if (user->getParent() != def) {
          ssa.RewriteUse(*use);  // in the call's block before the barrier: the value coming in
        }
      }
    }
    return true;
  }
};

// The LLVM major of the process that loaded us, or 0 when it cannot be told.
unsigned host_llvm_major() {
  // LLVM 16 and later export LLVMGetVersion (C API); LLVM 14 does not.
  using GetVersion = void (*)(unsigned*, unsigned*, unsigned*);
  if (void* symbol = dlsym(RTLD_DEFAULT, "LLVMGetVersion")) {
    unsigned major = 0, minor = 0, patch = 0;
    reinterpret_cast<GetVersion>(symbol)(&major, &minor, &patch);
    return major;
  }
  // Otherwise: the file that defines LLVM's core, e.g.
  // /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1, libLLVM.so.18.1,
  // /usr/lib/llvm-14/bin/clang (a statically linked tool).
  void* symbol = dlsym(RTLD_DEFAULT, "LLVMContextCreate");
  Dl_info info{};
  if (symbol == nullptr || dladdr(symbol, &info) == 0 || info.dli_fname == nullptr) return 0;
  const std::string_view file = info.dli_fname;
  for (std::string_view marker : {"libLLVM-", "libLLVM.so.", "llvm-"}) {
    const size_t at = file.rfind(marker);
    if (at == std::string_view::npos) continue;
    unsigned major = 0;
    size_t i = at + marker.size();
    while (i < file.size() && file[i] >= '0' && file[i] <= '9') major = major * 10 + unsigned(file[i++] - '0');
    if (i > at + marker.size()) return major;
  }
  return 0;
}

void register_callbacks(llvm::PassBuilder& builder) {
  builder.registerPipelineStartEPCallback([](llvm::ModulePassManager& manager, llvm::OptimizationLevel) {
    // First: the casts that say what a void * holds are still there.
    if (graft::member_facts_enabled()) manager.addPass(graft::MemberFactsPass());
    manager.addPass(GraftPolicyPass(policy_from_environment()));
  });
  builder.registerPeepholeEPCallback([](llvm::FunctionPassManager& manager, llvm::OptimizationLevel level) {
    if (level != llvm::OptimizationLevel::O0 && policy_from_environment() != Policy::Fast)
      manager.addPass(UpdatePointPass());
  });
}

}  // namespace

extern "C" __attribute__((visibility("default"))) LLVM_ATTRIBUTE_WEAK llvm::PassPluginLibraryInfo
llvmGetPassPluginInfo() {
  const unsigned host = host_llvm_major();
  if (host != 0 && host != LLVM_VERSION_MAJOR) {
    std::fprintf(stderr,
                 "graft-pass: built for LLVM %d but loaded into LLVM %u; refusing to register "
                 "(use the clang graft-cc pins, or rebuild graft against LLVM %u)\n",
                 LLVM_VERSION_MAJOR, host, host);
    return {0, "graft", LLVM_VERSION_STRING, nullptr};  // the host rejects API version 0
  }
  return {LLVM_PLUGIN_API_VERSION, "graft", LLVM_VERSION_STRING, register_callbacks};
}
