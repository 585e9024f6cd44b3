// Heap type tags: see heap_types.h.
#include "plugin/heap_types.h"

#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/member_facts_format.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/DerivedTypes.h"
#include "llvm/IR/Function.h"
#include "llvm/IR/GlobalVariable.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/Instructions.h"
#include "llvm/Transforms/Utils/BasicBlockUtils.h"

namespace graft {
namespace {

constexpr const char* kTag = "__graft_heap_type";          // (block, id): tag
constexpr const char* kTake = "__graft_heap_type_take";    // (block) -> id: clear, say what it was
constexpr const char* kReserve = "__graft_heap_types_reserve";
constexpr const char* kFree = "__graft_heap_free";
constexpr const char* kRealloc = "__graft_heap_realloc";
constexpr const char* kReallocArray = "__graft_heap_reallocarray";

class Emitter {
 public:
  explicit Emitter(llvm::Module& module)
      : module_(module), context_(module.getContext()), i8p_(llvm::Type::getInt8PtrTy(context_)),
        i16_(llvm::Type::getInt16Ty(context_)), i64_(llvm::Type::getInt64Ty(context_)) {}

  llvm::Function* tag() {
    llvm::Function* f = define(kTag, llvm::FunctionType::get(llvm::Type::getVoidTy(context_), {i8p_, i16_}, false));
    if (!f->empty()) return f;
    llvm::IRBuilder<> b(llvm::BasicBlock::Create(context_, "entry", f));
    llvm::Value* first = load_base(b);
    llvm::BasicBlock* entry = b.GetInsertBlock();
    auto* reserve_block = llvm::BasicBlock::Create(context_, "reserve", f);
    auto* have = llvm::BasicBlock::Create(context_, "have", f);
    b.CreateCondBr(b.CreateIsNull(first), reserve_block, have);
    b.SetInsertPoint(reserve_block);
    llvm::Value* reserved = b.CreateCall(reserve(), {});
    b.CreateBr(have);
    b.SetInsertPoint(have);
    llvm::PHINode* base = b.CreatePHI(i8p_, 2);
    base->addIncoming(first, entry);
    base->addIncoming(reserved, reserve_block);
    auto* write = llvm::BasicBlock::Create(context_, "write", f);
    auto* done = llvm::BasicBlock::Create(context_, "done", f);
    b.CreateCondBr(usable(b, base, f->getArg(0)), write, done);
    b.SetInsertPoint(write);
    b.CreateAlignedStore(f->getArg(1), slot(b, base, f->getArg(0)), llvm::MaybeAlign(2));
    b.CreateBr(done);
    b.SetInsertPoint(done);
    b.CreateRetVoid();
    return f;
  }

  // Clears a block's tag and returns it (0: none). Reads first: a block
  // never tagged costs no page of the table.
  llvm::Function* take() {
    llvm::Function* f = define(kTake, llvm::FunctionType::get(i16_, {i8p_}, false));
    if (!f->empty()) return f;
    llvm::IRBuilder<> b(llvm::BasicBlock::Create(context_, "entry", f));
    llvm::Value* base = load_base(b);
    auto* read = llvm::BasicBlock::Create(context_, "read", f);
    auto* clear = llvm::BasicBlock::Create(context_, "clear", f);
    auto* none = llvm::BasicBlock::Create(context_, "none", f);
    b.CreateCondBr(usable(b, base, f->getArg(0)), read, none);
    b.SetInsertPoint(read);
    llvm::Value* at = slot(b, base, f->getArg(0));
    llvm::Value* id = b.CreateAlignedLoad(i16_, at, llvm::MaybeAlign(2));
    b.CreateCondBr(b.CreateICmpEQ(id, llvm::ConstantInt::get(i16_, 0)), none, clear);
    b.SetInsertPoint(clear);
    b.CreateAlignedStore(llvm::ConstantInt::get(i16_, 0), at, llvm::MaybeAlign(2));
    b.CreateRet(id);
    b.SetInsertPoint(none);
    b.CreateRet(llvm::ConstantInt::get(i16_, 0));
    return f;
  }

  // free(p) as the program calls it, by name or through a pointer: the tag first.
  llvm::Function* free_wrapper(llvm::Function& free) {
    llvm::Function* f = define(kFree, free.getFunctionType());
    if (!f->empty()) return f;
    llvm::IRBuilder<> b(llvm::BasicBlock::Create(context_, "entry", f));
    b.CreateCall(take(), {b.CreatePointerCast(f->getArg(0), i8p_)});
    b.CreateCall(free.getFunctionType(), &free, {f->getArg(0)});
    b.CreateRetVoid();
    return f;
  }

  // realloc(p, n): the tag cleared (the block may move, or be freed), and
  // put back if realloc fails and p stays what it was. The caller's cast of
  // the result tags the new block.
  llvm::Function* realloc_wrapper(llvm::Function& realloc) { return resize_wrapper(kRealloc, realloc); }
  // reallocarray(p, n, size): the same.
  llvm::Function* reallocarray_wrapper(llvm::Function& reallocarray) {
    return resize_wrapper(kReallocArray, reallocarray);
  }
  llvm::Function* resize_wrapper(const char* name, llvm::Function& resize) {
    llvm::Function* f = define(name, resize.getFunctionType());
    if (!f->empty()) return f;
    llvm::IRBuilder<> b(llvm::BasicBlock::Create(context_, "entry", f));
    llvm::Value* old_block = b.CreatePointerCast(f->getArg(0), i8p_);
    llvm::Value* id = b.CreateCall(take(), {old_block});
    std::vector<llvm::Value*> arguments;
    for (llvm::Argument& a : f->args()) arguments.push_back(&a);
    llvm::Value* result = b.CreateCall(resize.getFunctionType(), &resize, arguments);
    auto* restore = llvm::BasicBlock::Create(context_, "restore", f);
    auto* done = llvm::BasicBlock::Create(context_, "done", f);
    llvm::Value* failed = b.CreateAnd(b.CreateIsNull(result), b.CreateICmpNE(id, llvm::ConstantInt::get(i16_, 0)));
    b.CreateCondBr(failed, restore, done);
    b.SetInsertPoint(restore);
    b.CreateCall(tag(), {old_block, id});
    b.CreateBr(done);
    b.SetInsertPoint(done);
    b.CreateRet(result);
    return f;
  }

  // A link-once definition (one per program, whichever unit the linker keeps).
  llvm::Function* define(const char* name, llvm::FunctionType* type) {
    if (llvm::Function* existing = module_.getFunction(name)) return existing;
    auto* f = llvm::Function::Create(type, llvm::GlobalValue::LinkOnceODRLinkage, name, module_);
    f->setComdat(module_.getOrInsertComdat(name));
    f->addFnAttr(llvm::Attribute::NoUnwind);
    return f;
  }

 private:
  llvm::GlobalVariable* base_variable() {
    auto* g = module_.getNamedGlobal(kHeapTypesBase);
    if (g && !g->isDeclaration()) return g;
    auto* null = llvm::ConstantPointerNull::get(llvm::cast<llvm::PointerType>(i8p_));
    if (g) {
      // Declared by the unit (extern void *__graft_heap_types, a test's): this unit defines it too.
      g->setInitializer(null);
      g->setLinkage(llvm::GlobalValue::LinkOnceODRLinkage);
    } else {
      g = new llvm::GlobalVariable(module_, i8p_, false, llvm::GlobalValue::LinkOnceODRLinkage, null, kHeapTypesBase);
    }
    g->setComdat(module_.getOrInsertComdat(kHeapTypesBase));
    g->setAlignment(llvm::Align(8));
    return g;
  }
  llvm::Value* load_base(llvm::IRBuilder<>& b) {
    llvm::LoadInst* load = b.CreateAlignedLoad(i8p_, base_variable(), llvm::MaybeAlign(8));
    load->setAtomic(llvm::AtomicOrdering::Acquire);
    return load;
  }
  // The table is there (not NULL, not kHeapTypesUnavailable) and the block's address is one it covers.
  llvm::Value* usable(llvm::IRBuilder<>& b, llvm::Value* base, llvm::Value* block) {
    llvm::Value* address = b.CreatePtrToInt(block, i64_);
    llvm::Value* covered = b.CreateICmpEQ(b.CreateLShr(address, 47), llvm::ConstantInt::get(i64_, 0));
    llvm::Value* there = b.CreateICmpUGT(b.CreatePtrToInt(base, i64_), llvm::ConstantInt::get(i64_, kHeapTypesUnavailable));
    return b.CreateAnd(covered, there);
  }
  llvm::Value* slot(llvm::IRBuilder<>& b, llvm::Value* base, llvm::Value* block) {
    llvm::Value* address = b.CreatePtrToInt(block, i64_);
    // (address >> 4) * 2
    llvm::Value* offset = b.CreateAnd(b.CreateLShr(address, kHeapTypesGranuleShift - 1), llvm::ConstantInt::get(i64_, ~uint64_t{1}));
    llvm::Value* at = b.CreateGEP(llvm::Type::getInt8Ty(context_), base, offset);
    return b.CreateBitCast(at, llvm::PointerType::getUnqual(i16_));
  }
  // The table, reserved once per process (two threads racing: one keeps its
  // reservation, the other unmaps its own): its address, or kHeapTypesUnavailable.
  llvm::Function* reserve() {
    llvm::Function* f = define(kReserve, llvm::FunctionType::get(i8p_, {}, false));
    if (!f->empty()) return f;
    f->addFnAttr(llvm::Attribute::NoInline);
    llvm::Type* i32 = llvm::Type::getInt32Ty(context_);
    llvm::FunctionCallee mmap = module_.getOrInsertFunction(
        "mmap", llvm::FunctionType::get(i8p_, {i8p_, i64_, i32, i32, i32, i64_}, false));
    llvm::FunctionCallee munmap =
        module_.getOrInsertFunction("munmap", llvm::FunctionType::get(i32, {i8p_, i64_}, false));
    llvm::IRBuilder<> b(llvm::BasicBlock::Create(context_, "entry", f));
    constexpr int kReadWrite = 3, kPrivateAnonymousNoReserve = 0x02 | 0x20 | 0x4000;
    llvm::Value* size = llvm::ConstantInt::get(i64_, kHeapTypesBytes);
    llvm::Value* mapped =
        b.CreateCall(mmap, {llvm::ConstantPointerNull::get(llvm::cast<llvm::PointerType>(i8p_)), size,
                            llvm::ConstantInt::get(i32, kReadWrite), llvm::ConstantInt::get(i32, kPrivateAnonymousNoReserve),
                            llvm::ConstantInt::get(i32, -1), llvm::ConstantInt::get(i64_, 0)});
    llvm::Value* unavailable = b.CreateIntToPtr(llvm::ConstantInt::get(i64_, kHeapTypesUnavailable), i8p_);
    llvm::Value* failed = b.CreateICmpEQ(b.CreatePtrToInt(mapped, i64_), llvm::ConstantInt::get(i64_, ~uint64_t{0}));
    llvm::Value* mine = b.CreateSelect(failed, unavailable, mapped);
    llvm::Value* exchange = b.CreateAtomicCmpXchg(
        base_variable(), llvm::ConstantPointerNull::get(llvm::cast<llvm::PointerType>(i8p_)), mine, llvm::MaybeAlign(8),
        llvm::AtomicOrdering::AcquireRelease, llvm::AtomicOrdering::Acquire);
    llvm::Value* won = b.CreateExtractValue(exchange, 1);
    auto* lost = llvm::BasicBlock::Create(context_, "lost", f);
    auto* unmap = llvm::BasicBlock::Create(context_, "unmap", f);
    auto* theirs = llvm::BasicBlock::Create(context_, "theirs", f);
    auto* kept = llvm::BasicBlock::Create(context_, "kept", f);
    b.CreateCondBr(won, kept, lost);
    b.SetInsertPoint(kept);
    b.CreateRet(mine);
    b.SetInsertPoint(lost);
    b.CreateCondBr(failed, theirs, unmap);
    b.SetInsertPoint(unmap);
    b.CreateCall(munmap, {mapped, size});
    b.CreateBr(theirs);
    b.SetInsertPoint(theirs);
    b.CreateRet(b.CreateExtractValue(exchange, 0));
    return f;
  }

  llvm::Module& module_;
  llvm::LLVMContext& context_;
  llvm::Type* i8p_;
  llvm::Type* i16_;
  llvm::Type* i64_;
};

// Every use of a library function (a call, or its address passed on: a
// list's free method) made a use of the wrapper, which alone calls it.
void wrap(llvm::Module& module, const char* name, const char* wrapper_name,
          llvm::Function* (Emitter::*make)(llvm::Function&), Emitter& emitter) {
  llvm::Function* library = module.getFunction(name);
  if (!library || !library->isDeclaration() || library->use_empty()) return;
  // A prototype that is not the C library's (a K&R declaration): left alone.
  llvm::FunctionType* type = library->getFunctionType();
  if (type->isVarArg() || type->getNumParams() == 0 || !type->getParamType(0)->isPointerTy()) return;
  // Declared first, with no body, so that replacing the uses does not reach the wrapper's own call.
  llvm::Function* wrapper = emitter.define(wrapper_name, type);
  library->replaceAllUsesWith(wrapper);
  (emitter.*make)(*library);
}

}  // namespace

bool heap_types_enabled() {
  const char* value = std::getenv(kHeapTypesVariable);
  return value != nullptr && std::strcmp(value, "on") == 0;
}

void instrument_heap_types(llvm::Module& module, const std::vector<HeapTagSite>& sites,
                           const std::set<std::string>& fresh, const std::set<std::string>& slot_flags) {
  Emitter emitter(module);
  llvm::LLVMContext& context = module.getContext();
  llvm::Type* byte = llvm::Type::getInt8Ty(context);
  auto flag = [&](const std::string& name) {
    auto* g = module.getNamedGlobal(name);
    if (!g) g = new llvm::GlobalVariable(module, byte, true, llvm::GlobalValue::ExternalWeakLinkage, nullptr, name);
    g->setVisibility(llvm::GlobalValue::HiddenVisibility);
    return g;
  };
  for (const auto& function : fresh)
    if (llvm::Function* f = module.getFunction(function); f && !f->hasLocalLinkage()) {
      llvm::GlobalVariable* g = flag(kHeapTypesFreshFlag + function);
      g->setLinkage(llvm::GlobalValue::WeakAnyLinkage);
      g->setInitializer(llvm::ConstantInt::get(byte, 1));
    }
  for (const auto& name : slot_flags) {
    llvm::GlobalVariable* g = flag(name);
    g->setLinkage(llvm::GlobalValue::WeakAnyLinkage);
    g->setInitializer(llvm::ConstantInt::get(byte, 1));
  }
  for (const auto& site : sites) {
    llvm::Instruction* after = site.cast->getNextNode();
    if (!site.fresh_flag.empty()) {
      // Tagged only where the callee's unit says it returns fresh memory: its flag is linked in.
      llvm::IRBuilder<> test(after);
      llvm::Value* linked = test.CreateIsNotNull(flag(site.fresh_flag));
      after = llvm::SplitBlockAndInsertIfThen(linked, after, false);
    }
    llvm::IRBuilder<> b(after);
    llvm::Value* block = b.CreatePointerCast(site.block, llvm::Type::getInt8PtrTy(context));
    b.CreateCall(emitter.tag(), {block, llvm::ConstantInt::get(llvm::Type::getInt16Ty(context), site.id)});
  }
  wrap(module, "free", kFree, &Emitter::free_wrapper, emitter);
  wrap(module, "realloc", kRealloc, &Emitter::realloc_wrapper, emitter);
  wrap(module, "reallocarray", kReallocArray, &Emitter::reallocarray_wrapper, emitter);
}

}  // namespace graft
