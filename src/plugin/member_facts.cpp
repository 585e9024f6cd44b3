// The member facts: see member_facts.h and common/member_facts_format.h.
//
// At the start of the pipeline the IR is clang's own (LLVM 14, typed
// pointers): `p->value = item` is
//   %1 = load %struct.item*, %struct.item** %item.addr
//   %2 = bitcast %struct.item* %1 to i8*
//   store i8* %2, i8** (getelementptr %struct.slot, %struct.slot* %p, i32 0, i32 1)
// so the stored value's type before its casts says what the member holds,
// and the getelementptr says which member. Locals are still in allocas: a
// value loaded from a local is any value stored into it (flow-insensitive,
// for a local whose address does not escape).
#include "plugin/member_facts.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/member_facts_format.h"
#include "plugin/heap_types.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/DataLayout.h"
#include "llvm/IR/DebugInfo.h"
#include "llvm/IR/DebugInfoMetadata.h"
#include "llvm/IR/DerivedTypes.h"
#include "llvm/IR/Function.h"
#include "llvm/IR/GetElementPtrTypeIterator.h"
#include "llvm/IR/InstIterator.h"
#include "llvm/IR/Instructions.h"
#include "llvm/IR/IntrinsicInst.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Operator.h"
#include "llvm/Support/raw_ostream.h"

namespace graft {
namespace {

constexpr const char* kDoneFlag = "graft.member_facts";

// Library calls that write raw bytes into the memory a pointer argument
// names: a struct passed to one gets members no store shows.
constexpr const char* kByteWriters[] = {"read", "pread", "pread64", "recv", "recvfrom", "fread", "memcpy", "memmove"};

// Library calls that return a handle of the library's own (a loaded
// object), never an address the program gave it.
constexpr const char* kHandleMakers[] = {"dlopen", "dlmopen"};

// "struct item" for %struct.item, %struct.item.12 (a name LLVM made unique),
// %class.item; "union u" for %union.u; "" for an anonymous one (%struct.anon).
// An anonymous struct a typedef names is %struct.THREAD: "struct THREAD",
// which graft diff also finds as the typedef name THREAD.
std::string aggregate_name(llvm::Type* type) {
  auto* s = llvm::dyn_cast_or_null<llvm::StructType>(type);
  if (!s || !s->hasName()) return "";
  llvm::StringRef name = s->getName();
  std::string kind;
  if (name.consume_front("struct.") || name.consume_front("class.")) kind = "struct ";
  else if (name.consume_front("union.")) kind = "union ";
  else return "";
  name = name.take_until([](char c) { return c == '.'; });  // a C tag has no dot
  if (name.empty() || name == "anon") return "";
  return kind + name.str();
}

bool is_union(llvm::Type* type) {
  auto* s = llvm::dyn_cast_or_null<llvm::StructType>(type);
  return s && s->hasName() && s->getName().startswith("union.");
}

bool untyped_word(llvm::Type* type) {
  if (type->isIntegerTy(64)) return true;
  // i8*: void * (and char *, which DWARF tells apart: graft diff asks DWARF which members are void *).
  return type->isPointerTy() && !type->isOpaquePointerTy() && type->getPointerElementType()->isIntegerTy(8);
}

struct MemberRef {
  llvm::StructType* container = nullptr;
  uint64_t offset = 0;
  llvm::Type* type = nullptr;  // the member's
  bool in_union = false;       // reached through a union member of the container
};

class Recorder {
 public:
  // `tag_sites`: where heap type tags go (graft-cc --graft-heap-types=on), or nullptr.
  Recorder(llvm::Module& module, std::vector<HeapTagSite>* tag_sites)
      : module_(module), layout_(module.getDataLayout()), tag_sites_(tag_sites) {}

  // The functions of this unit that return only fresh memory from glibc's
  // malloc family (zmalloc), directly or through one another: a cast of
  // what they return is tagged. Each also gets a flag other units' tags
  // test at link time (kHeapTypesFreshFlag): they cannot see its code.
  const std::set<std::string>& fresh_functions() const { return fresh_; }
  // The flags of the allocator slots this unit's globals are initialized with (record_allocator_slots).
  const std::set<std::string>& slot_flags() const { return slot_flags_; }

  std::set<std::string> run() {
    if (tag_sites_) find_fresh_functions();
    if (auto* units = module_.getNamedMetadata("llvm.dbg.cu"))
      for (llvm::MDNode* node : units->operands())
        if (auto* unit = llvm::dyn_cast<llvm::DICompileUnit>(node)) {
          std::string file = unit->getFilename().str();
          if (!file.empty() && file[0] != '/' && !unit->getDirectory().empty())
            file = unit->getDirectory().str() + "/" + file;
          lines_.insert("unit\t" + file);
          lines_.insert("instances\t" + file + "\tkept\tinterior");
          lines_.insert("castfrom_unit\t" + file);
          if (tag_sites_) lines_.insert("heap_types\t" + file);
        }
    if (tag_sites_) record_references();
    for (llvm::GlobalVariable& global : module_.globals()) {
      if (tag_sites_) {
        record_writers(global);
        if (global.hasInitializer()) record_allocator_slots(global);
      }
      record_untyped_global(global);
      if (global.hasInitializer() && !global.getName().startswith("llvm.")) {
        record_initializer(global.getInitializer(), global);
        record_made_in(global.getInitializer(), "the initializer of " + global.getName().str());
        record_kept_in(global.getInitializer(), "the initializer of " + global.getName().str());
      }
    }
    for (llvm::Function& function : module_) {
      if (!function.isDeclaration() && function.hasAddressTaken() && !function.hasLocalLinkage())
        lines_.insert("called\t" + function.getName().str());
      if (function.isDeclaration() && !function.isIntrinsic() && function.hasAddressTaken())
        lines_.insert("called\t" + function.getName().str());
      if (function.isDeclaration()) continue;
      // A function returning an untyped word: its results are what its return records say.
      if (untyped_word(function.getReturnType())) lines_.insert("returner\t" + function.getName().str());
      for (llvm::Instruction& instruction : llvm::instructions(function)) {
        record_made(instruction, function);
        record_kept(instruction, function);
        if (auto* store = llvm::dyn_cast<llvm::StoreInst>(&instruction)) record_store(*store, function);
        else if (auto* ret = llvm::dyn_cast<llvm::ReturnInst>(&instruction)) record_return(*ret, function);
        else if (auto* call = llvm::dyn_cast<llvm::CallBase>(&instruction)) record_call(*call, function);
        else if (auto* gep = llvm::dyn_cast<llvm::GetElementPtrInst>(&instruction)) record_escape(*gep, function);
      }
    }
    return lines_;
  }

 private:
  // The untyped member a pointer names: a getelementptr whose last index
  // steps into a struct (the innermost struct is the container). Through a
  // union: the member of the union, at the union's offset.
  std::optional<MemberRef> member_of(llvm::Value* pointer) const {
    llvm::Value* stripped = pointer;
    bool cast = false;
    if (auto* bitcast = llvm::dyn_cast<llvm::BitCastOperator>(pointer)) {
      stripped = bitcast->getOperand(0);
      cast = true;
    }
    auto* gep = llvm::dyn_cast<llvm::GEPOperator>(stripped);
    if (!gep || gep->getNumIndices() < 2) return std::nullopt;
    llvm::Type* current = gep->getSourceElementType();
    MemberRef ref;
    bool last_is_member = false;
    for (auto index = gep->idx_begin() + 1; index != gep->idx_end(); ++index) {
      if (auto* s = llvm::dyn_cast<llvm::StructType>(current)) {
        auto* k = llvm::dyn_cast<llvm::ConstantInt>(index->get());
        if (!k) return std::nullopt;
        const unsigned element = static_cast<unsigned>(k->getZExtValue());
        ref.container = s;
        ref.offset = layout_.getStructLayout(s)->getElementOffset(element);
        current = s->getElementType(element);
        last_is_member = true;
      } else if (auto* array = llvm::dyn_cast<llvm::ArrayType>(current)) {
        current = array->getElementType();
        last_is_member = false;
      } else {
        return std::nullopt;
      }
    }
    if (!last_is_member || !ref.container) return std::nullopt;
    if (cast) {
      // A union is a struct of its largest member: the one written is the cast's type.
      if (!is_union(current)) return std::nullopt;
      ref.in_union = true;
      ref.type = pointer->getType()->isOpaquePointerTy() ? nullptr : pointer->getType()->getPointerElementType();
      return ref;
    }
    ref.type = current;
    return ref;
  }

  std::string container_name(const MemberRef& ref) const {
    // The union itself when a union member is written (its own members are at offset 0).
    return aggregate_name(ref.container);
  }

  // What a value may be (ORIGIN fields, see the format), each one line's tail.
  // `where`: the function the value is in, for the reasons.
  void origins(llvm::Value* value, const std::string& where, std::set<std::string>& out,
               std::set<const llvm::Value*>& seen, int depth = 0) const {
    if (depth > 32 || !seen.insert(value).second) return;
    llvm::Value* v = value->stripPointerCasts();
    if (v != value && !seen.insert(v).second) return;
    const std::string in = " in " + where;
    if (llvm::isa<llvm::ConstantPointerNull>(v) || llvm::isa<llvm::UndefValue>(v)) return;
    if (llvm::isa<llvm::ConstantInt>(v)) return;  // a number, never the address of a heap block
    if (auto* op = llvm::dyn_cast<llvm::Operator>(v);
        op && (op->getOpcode() == llvm::Instruction::PtrToInt || op->getOpcode() == llvm::Instruction::IntToPtr)) {
      origins(op->getOperand(0), where, out, seen, depth + 1);
      return;
    }
    llvm::Type* type = v->getType();
    if (type->isPointerTy() && !type->isOpaquePointerTy()) {
      llvm::Type* pointee = type->getPointerElementType();
      if (pointee->isStructTy()) {
        const std::string name = aggregate_name(pointee);
        out.insert(name.empty() ? "unknown\tthe address of an anonymous struct" + in : "type\t" + name);
        return;
      }
    }
    if (auto* argument = llvm::dyn_cast<llvm::Argument>(v)) {
      const llvm::Function* function = argument->getParent();
      const unsigned k = argument->getArgNo();
      if (function->hasLocalLinkage() && !function->hasAddressTaken()) {
        // Every caller is in this unit.
        for (const llvm::User* user : function->users())
          if (auto* call = llvm::dyn_cast<llvm::CallBase>(user); call && k < call->arg_size())
            origins(call->getArgOperand(k), call->getFunction()->getName().str(), out, seen, depth + 1);
        return;
      }
      if (function->hasLocalLinkage()) {
        out.insert("unknown\ta parameter of " + function->getName().str() + ", which is called through a pointer");
        return;
      }
      out.insert("param\t" + function->getName().str() + "\t" + std::to_string(k));
      return;
    }
    if (auto* load = llvm::dyn_cast<llvm::LoadInst>(v)) {
      llvm::Value* from = load->getPointerOperand()->stripPointerCasts();
      if (auto* local = llvm::dyn_cast<llvm::AllocaInst>(from); local && !escapes(*local)) {
        for (const llvm::User* user : local->users())
          if (auto* store = llvm::dyn_cast<llvm::StoreInst>(user); store && store->getPointerOperand() == local)
            origins(const_cast<llvm::Value*>(store->getValueOperand()), where, out, seen, depth + 1);
        return;
      }
      if (auto* global = llvm::dyn_cast<llvm::GlobalVariable>(from); global && untyped_global(*global)) {
        out.insert("member\tglobal " + global->getName().str() + "\t0");
        return;
      }
      if (auto ref = member_of(load->getPointerOperand()); ref && !ref->in_union && untyped_word(ref->type)) {
        const std::string name = container_name(*ref);
        if (!name.empty()) {
          out.insert("member\t" + name + "\t" + std::to_string(ref->offset));
          return;
        }
      }
      out.insert("unknown\ta value read from memory" + in);
      return;
    }
    if (auto* phi = llvm::dyn_cast<llvm::PHINode>(v)) {
      for (llvm::Value* incoming : phi->incoming_values()) origins(incoming, where, out, seen, depth + 1);
      return;
    }
    if (auto* select = llvm::dyn_cast<llvm::SelectInst>(v)) {
      origins(select->getTrueValue(), where, out, seen, depth + 1);
      origins(select->getFalseValue(), where, out, seen, depth + 1);
      return;
    }
    if (auto* call = llvm::dyn_cast<llvm::CallBase>(v)) {
      const llvm::Function* callee = call->getCalledFunction();
      if (!callee) {
        out.insert("unknown\treturned by a call through a pointer" + in);
        return;
      }
      const std::string name = callee->getName().str();
      // A library's own handle, never the program's data.
      for (const char* handle : kHandleMakers)
        if (callee->isDeclaration() && name == handle) return;
      // What the callee returns, as its "return" records say (graft diff
      // joins them; a function with none, a library's, stays unknown).
      out.insert("result\t" + name + "\treturned by " + name + in);
      return;
    }
    if (llvm::isa<llvm::GEPOperator>(v) || llvm::isa<llvm::BinaryOperator>(v)) {
      out.insert("unknown\taddress arithmetic" + in);
      return;
    }
    // A function's address, or read-only data's (a string literal): never an object the program changes.
    if (llvm::isa<llvm::Function>(v)) return;
    if (auto* global = llvm::dyn_cast<llvm::GlobalVariable>(v); global && global->isConstant()) return;
    if (llvm::isa<llvm::GlobalValue>(v)) {
      out.insert("unknown\tthe address of " + v->getName().str() + in);
      return;
    }
    out.insert("unknown\ta value graft-cc cannot follow" + in);
  }

  // What a value may be, each an ORIGIN line's tail (see origins).
  std::set<std::string> origins_of(llvm::Value* value, const std::string& where) const {
    std::set<std::string> found;
    std::set<const llvm::Value*> seen;
    origins(value, where, found, seen);
    return found;
  }

  // A local whose address goes anywhere but its own loads and stores.
  static bool lifetime_or_debug(const llvm::User* user) {
    auto* intrinsic = llvm::dyn_cast<llvm::IntrinsicInst>(user);
    return intrinsic && (intrinsic->isLifetimeStartOrEnd() || llvm::isa<llvm::DbgInfoIntrinsic>(intrinsic));
  }
  static bool escapes(const llvm::AllocaInst& local) {
    for (const llvm::User* user : local.users()) {
      if (llvm::isa<llvm::LoadInst>(user)) continue;
      if (auto* store = llvm::dyn_cast<llvm::StoreInst>(user); store && store->getValueOperand() != &local) continue;
      if (auto* cast = llvm::dyn_cast<llvm::BitCastInst>(user)) {
        // lifetime markers and debug intrinsics only
        for (const llvm::User* u : cast->users())
          if (!lifetime_or_debug(u)) return true;
        continue;
      }
      if (lifetime_or_debug(user)) continue;
      return true;
    }
    return false;
  }

  // A global that is itself an untyped word (void *keep): recorded as the
  // member at offset 0 of "global NAME". Its initializer stores too; its
  // address going anywhere but a load or a store makes what it holds unknown.
  static bool untyped_global(const llvm::GlobalVariable& global) {
    return !global.getName().startswith("llvm.") && !global.isConstant() && untyped_word(global.getValueType());
  }
  void record_untyped_global(llvm::GlobalVariable& global) {
    if (!untyped_global(global)) return;
    const std::string head = "store\tglobal " + global.getName().str() + "\t0\t";
    if (global.hasInitializer() && !global.getInitializer()->isNullValue()) {
      const std::string where = "the initializer of " + global.getName().str();
      for (const auto& origin : origins_of(global.getInitializer(), where)) lines_.insert(head + where + "\t" + origin);
    }
    for (const llvm::User* user : global.users()) {
      if (llvm::isa<llvm::LoadInst>(user)) continue;
      if (auto* store = llvm::dyn_cast<llvm::StoreInst>(user); store && store->getValueOperand() != &global) continue;
      auto* instruction = llvm::dyn_cast<llvm::Instruction>(user);
      const std::string where = instruction ? instruction->getFunction()->getName().str() : std::string("a constant");
      lines_.insert(head + where + "\tunknown\tits address is taken in " + where);
    }
  }

  void record_store(llvm::StoreInst& store, const llvm::Function& function) {
    std::string head;  // CONTAINER OFFSET FUNCTION
    if (auto* global = llvm::dyn_cast<llvm::GlobalVariable>(store.getPointerOperand());
        global && untyped_global(*global)) {
      head = "global " + global->getName().str() + "\t0\t" + function.getName().str();
    } else {
      auto ref = member_of(store.getPointerOperand());
      if (!ref) return;
      const std::string container = container_name(*ref);
      if (container.empty()) return;
      head = container + "\t" + std::to_string(ref->offset) + "\t" + function.getName().str();
      if (ref->in_union) {
        std::string spelled;
        llvm::raw_string_ostream stream(spelled);
        if (ref->type) ref->type->print(stream);
        lines_.insert("union\t" + head + "\t" + stream.str());
        // A pointer-sized union member (epoll_event.data.ptr, which the
        // kernel keeps): what is stored, as for a member.
        if (!ref->type || !untyped_word(ref->type)) return;
      } else if (!untyped_word(ref->type)) {
        return;
      }
    }
    for (const auto& origin : origins_of(store.getValueOperand(), function.getName().str()))
      lines_.insert("store\t" + head + "\t" + origin);
  }

  // What a function returning an untyped word returns (void *zmalloc(...),
  // void *list_first(...)): a call's result is joined with these at diff time.
  static bool malloc_family(llvm::StringRef name) {
    for (const char* f : kHeapTypesAllocators)
      if (name == f) return true;
    return false;
  }
  // Whether `callee` returns fresh memory: "" if this unit can tell (glibc's
  // allocator, or a fresh function of its own), the name of the flag its own
  // unit defines if it is (a function of another unit), nullopt if not.
  std::optional<std::string> fresh_memory(const llvm::Function& callee) const {
    const std::string name = callee.getName().str();
    if (callee.isDeclaration()) {
      if (malloc_family(name)) return std::string();
      return std::string(kHeapTypesFreshFlag) + name;
    }
    if (fresh_.count(name)) return std::string();
    if (auto slot = slot_fresh_.find(name); slot != slot_fresh_.end()) return slot->second;  // the slot's flag
    return std::nullopt;
  }
  void find_fresh_functions() {
    std::map<std::string, std::set<std::string>> returned;  // function -> origins of what it returns
    for (llvm::Function& function : module_) {
      if (function.isDeclaration() || !untyped_word(function.getReturnType())) continue;
      auto& origins = returned[function.getName().str()];
      for (llvm::Instruction& instruction : llvm::instructions(function))
        if (auto* ret = llvm::dyn_cast<llvm::ReturnInst>(&instruction); ret && ret->getReturnValue())
          for (const auto& origin : origins_of(ret->getReturnValue(), function.getName().str())) origins.insert(origin);
    }
    // Realloc-like parameters: a function's parameter K that it passes on
    // as the block realloc (or a realloc-like function of the unit) takes,
    // so a malloc block or NULL (zrealloc's `ptr`). Returned as it is (the
    // block realloc kept, or one it did not touch), it is fresh memory too.
    std::set<std::pair<std::string, std::string>> reallocated;  // function, parameter number
    std::vector<std::tuple<std::string, std::string, std::string>> passes;  // function, its parameter, callee
    for (llvm::Function& function : module_) {
      if (function.isDeclaration()) continue;
      for (llvm::Instruction& instruction : llvm::instructions(function)) {
        auto* call = llvm::dyn_cast<llvm::CallBase>(&instruction);
        const llvm::Function* callee = call ? call->getCalledFunction() : nullptr;
        if (!callee || call->arg_size() == 0) continue;
        // Whatever else the argument may be (a local reused for the result), the parameter is among it:
        // realloc takes only NULL or a malloc block, so that is what the parameter holds.
        const std::string prefix = "param\t" + function.getName().str() + "\t";
        for (const auto& from : origins_of(call->getArgOperand(0), function.getName().str()))
          if (llvm::StringRef(from).startswith(prefix))
            passes.emplace_back(function.getName().str(), from.substr(prefix.size()), callee->getName().str());
      }
    }
    for (bool grew = true; grew;) {
      grew = false;
      for (const auto& [function, k, callee] : passes) {
        const llvm::Function* f = module_.getFunction(callee);
        const bool reallocates = (f && f->isDeclaration() && callee == "realloc") || reallocated.count({callee, "0"});
        if (reallocates) grew |= reallocated.insert({function, k}).second;
      }
    }
    for (bool grew = true; grew;) {
      grew = false;
      for (const auto& [function, origins] : returned) {
        if (fresh_.count(function) || origins.empty()) continue;
        const bool all_fresh = std::all_of(origins.begin(), origins.end(), [&](const std::string& origin) {
          const std::string own = "param\t" + function + "\t";
          if (llvm::StringRef(origin).startswith(own)) return reallocated.count({function, origin.substr(own.size())}) > 0;
          if (!llvm::StringRef(origin).startswith("result\t")) return false;
          const std::string callee = origin.substr(7, origin.find('\t', 7) - 7);
          const llvm::Function* f = module_.getFunction(callee);
          return (f && f->isDeclaration() && malloc_family(callee)) || fresh_.count(callee);
        });
        if (all_fresh) grew = fresh_.insert(function).second;
      }
    }
    for (const auto& function : fresh_) lines_.insert("fresh\t" + function);
    find_slot_fresh_functions();
  }

  // Allocator tables (hiredis's hiredisAllocFns, whose mallocFn is malloc
  // unless the program calls hiredisSetAllocators): a function of the unit
  // whose every return is a call through the pointer at a constant offset of
  // a global (hi_malloc) returns fresh memory while that pointer is one of
  // malloc's family. The unit defining the global says what its initializer
  // holds there ("slot" records, and a flag: kHeapTypesSlotFlag); graft diff
  // checks that no code that can run writes the global ("writes", "refers").
  static std::optional<std::pair<const llvm::GlobalVariable*, int64_t>> slot_of(const llvm::Value* pointer,
                                                                               const llvm::DataLayout& layout) {
    llvm::APInt offset(64, 0);
    const llvm::Value* base = pointer->stripAndAccumulateConstantOffsets(layout, offset, true);
    auto* global = llvm::dyn_cast_or_null<llvm::GlobalVariable>(base);
    if (!global || global->getName().empty()) return std::nullopt;
    return std::make_pair(global, offset.getSExtValue());
  }
  void find_slot_fresh_functions() {
    for (llvm::Function& function : module_) {
      if (function.isDeclaration() || fresh_.count(function.getName().str()) ||
          !untyped_word(function.getReturnType()))
        continue;
      std::optional<std::pair<const llvm::GlobalVariable*, int64_t>> slot;
      bool all = true;
      // What a return gives back, through the return value's local (clang's retval before mem2reg) and phis.
      std::vector<const llvm::Value*> values;
      std::set<const llvm::Value*> seen;
      std::function<void(const llvm::Value*)> returned = [&](const llvm::Value* v) {
        v = v->stripPointerCasts();
        if (!seen.insert(v).second) return;
        if (auto* phi = llvm::dyn_cast<llvm::PHINode>(v)) {
          for (const llvm::Value* in : phi->incoming_values()) returned(in);
        } else if (auto* load = llvm::dyn_cast<llvm::LoadInst>(v);
                   load && llvm::isa<llvm::AllocaInst>(load->getPointerOperand()->stripPointerCasts())) {
          for (const llvm::User* user : load->getPointerOperand()->stripPointerCasts()->users())
            if (auto* store = llvm::dyn_cast<llvm::StoreInst>(user)) returned(store->getValueOperand());
        } else {
          values.push_back(v);
        }
      };
      for (llvm::Instruction& instruction : llvm::instructions(function))
        if (auto* ret = llvm::dyn_cast<llvm::ReturnInst>(&instruction); ret && ret->getReturnValue())
          returned(ret->getReturnValue());
      for (const llvm::Value* value : values) {
        if (llvm::isa<llvm::ConstantPointerNull>(value)) continue;  // NULL is no block (hi_calloc's overflow check)
        auto* call = llvm::dyn_cast<llvm::CallBase>(value);
        auto* load = call && !call->getCalledFunction()
                         ? llvm::dyn_cast<llvm::LoadInst>(call->getCalledOperand()->stripPointerCasts())
                         : nullptr;
        auto here = load ? slot_of(load->getPointerOperand(), layout_) : std::nullopt;
        if (!here || (slot && *slot != *here)) {
          all = false;
          break;
        }
        slot = here;
      }
      if (!all || !slot) continue;
      const std::string global = slot->first->getName().str();
      slot_fresh_[function.getName().str()] = heap_types_slot_flag(global, static_cast<uint64_t>(slot->second));
      lines_.insert("slotfresh\t" + function.getName().str() + "\t" + global + "\t" + std::to_string(slot->second));
    }
  }
  // A global's initializer: each allocator of malloc's family it holds as a
  // function pointer, at its offset ("slot" records), whose flags this unit defines.
  void record_allocator_slots(const llvm::GlobalVariable& global) {
    const llvm::Constant* init = global.getInitializer();
    if (!init || !init->getType()->isSized()) return;
    std::function<void(const llvm::Constant*, uint64_t, int)> walk = [&](const llvm::Constant* c, uint64_t at, int depth) {
      if (depth > 8 || !c) return;
      if (auto* f = llvm::dyn_cast<llvm::Function>(c->stripPointerCasts())) {
        if (malloc_family(f->getName())) {
          lines_.insert("slot\t" + global.getName().str() + "\t" + std::to_string(at) + "\t" + f->getName().str());
          slot_flags_.insert(heap_types_slot_flag(global.getName().str(), at));
        }
        return;
      }
      if (auto* s = llvm::dyn_cast<llvm::ConstantStruct>(c)) {
        const llvm::StructLayout* l = layout_.getStructLayout(s->getType());
        for (unsigned k = 0; k < s->getNumOperands(); ++k) walk(s->getOperand(k), at + l->getElementOffset(k), depth + 1);
      } else if (auto* a = llvm::dyn_cast<llvm::ConstantArray>(c)) {
        const uint64_t size = layout_.getTypeAllocSize(a->getType()->getElementType());
        for (unsigned k = 0; k < a->getNumOperands(); ++k) walk(a->getOperand(k), at + k * size, depth + 1);
      }
    };
    walk(init, 0, 0);
  }
  // Every function of the unit that writes a global holding function
  // pointers ("writes G F"): a store or copy into it, or its address passed
  // on or kept (it may be written anywhere then). And every function the
  // unit calls or takes the address of ("refers F"): one no unit refers to
  // never runs.
  static bool holds_function_pointers(llvm::Type* type, int depth = 0) {
    if (depth > 4) return false;
    if (type->isPointerTy() && !type->isOpaquePointerTy()) return type->getPointerElementType()->isFunctionTy();
    if (auto* s = llvm::dyn_cast<llvm::StructType>(type))
      return std::any_of(s->element_begin(), s->element_end(), [&](llvm::Type* e) { return holds_function_pointers(e, depth + 1); });
    if (auto* a = llvm::dyn_cast<llvm::ArrayType>(type)) return holds_function_pointers(a->getElementType(), depth + 1);
    return false;
  }
  void record_writers(llvm::GlobalVariable& global) {
    if (global.isConstant() || !holds_function_pointers(global.getValueType())) return;
    std::vector<const llvm::Value*> pending = {&global};
    std::set<const llvm::Value*> seen;
    while (!pending.empty()) {
      const llvm::Value* v = pending.back();
      pending.pop_back();
      if (!seen.insert(v).second) continue;
      for (const llvm::User* user : v->users()) {
        if (llvm::isa<llvm::ConstantExpr>(user) || llvm::isa<llvm::GetElementPtrInst>(user) ||
            llvm::isa<llvm::BitCastInst>(user)) {
          pending.push_back(user);
          continue;
        }
        auto* instruction = llvm::dyn_cast<llvm::Instruction>(user);
        if (!instruction) continue;  // another global's initializer: its address kept there, written through it elsewhere
        if (llvm::isa<llvm::LoadInst>(instruction) || llvm::isa<llvm::ICmpInst>(instruction)) continue;
        // A copy out of it (memcpy's source, `orig = hiredisAllocFns`) reads it.
        if (auto* copy = llvm::dyn_cast<llvm::MemTransferInst>(instruction); copy && copy->getRawDest() != v) continue;
        // A store into it, a copy into it (memcpy's destination), or its address going anywhere else.
        lines_.insert("writes\t" + global.getName().str() + "\t" + instruction->getFunction()->getName().str());
      }
    }
  }
  void record_references() {
    for (llvm::Function& function : module_) {
      if (function.isIntrinsic() || function.use_empty() || function.getName().empty()) continue;
      lines_.insert("refers\t" + function.getName().str());
    }
  }

  void record_return(llvm::ReturnInst& ret, const llvm::Function& function) {
    llvm::Value* value = ret.getReturnValue();
    if (!value || !untyped_word(function.getReturnType())) return;
    for (const auto& origin : origins_of(value, function.getName().str()))
      lines_.insert("return\t" + function.getName().str() + "\t" + origin);
  }

  // A static initializer stores too, with no instruction (static struct
  // fevent ev = {.client_data = &conn}): its untyped members' constants,
  // each named as stored by "<initializer of ev>".
  void record_initializer(llvm::Constant* value, const llvm::GlobalVariable& global, int depth = 0) {
    if (depth > 16 || llvm::isa<llvm::ConstantAggregateZero>(value)) return;
    if (auto* array = llvm::dyn_cast<llvm::ConstantArray>(value)) {
      for (unsigned k = 0; k < array->getNumOperands(); ++k) record_initializer(array->getOperand(k), global, depth + 1);
      return;
    }
    auto* aggregate = llvm::dyn_cast<llvm::ConstantStruct>(value);
    if (!aggregate) return;
    auto* type = aggregate->getType();
    const std::string name = aggregate_name(type);
    const llvm::StructLayout* layout = layout_.getStructLayout(type);
    for (unsigned k = 0; k < aggregate->getNumOperands(); ++k) {
      auto* element = aggregate->getOperand(k);
      if (!untyped_word(element->getType()) || name.empty() || is_union(type)) {
        record_initializer(element, global, depth + 1);
        continue;
      }
      for (const auto& origin : origins_of(element, "the initializer of " + global.getName().str()))
        lines_.insert("store\t" + name + "\t" + std::to_string(layout->getElementOffset(k)) + "\tthe initializer of " +
                      global.getName().str() + "\t" + origin);
    }
  }

  // Every untyped member inside a struct held by value (nested structs and
  // arrays of them included), as one written by raw bytes.
  void unknown_members(llvm::Type* type, const std::string& why, const llvm::Function& function, int depth = 0) {
    auto* s = llvm::dyn_cast<llvm::StructType>(type);
    if (auto* array = llvm::dyn_cast<llvm::ArrayType>(type)) return unknown_members(array->getElementType(), why, function, depth + 1);
    if (!s || s->isOpaque() || depth > 16) return;
    const std::string name = aggregate_name(s);
    const llvm::StructLayout* layout = layout_.getStructLayout(s);
    for (unsigned k = 0; k < s->getNumElements(); ++k) {
      llvm::Type* element = s->getElementType(k);
      if (untyped_word(element) && !name.empty() && !is_union(s))
        lines_.insert("store\t" + name + "\t" + std::to_string(layout->getElementOffset(k)) + "\t" +
                      function.getName().str() + "\tunknown\t" + why);
      unknown_members(element, why, function, depth + 1);
    }
  }

  // The struct (or untyped member) a pointer argument of a byte writer names.
  void written_as_bytes(llvm::Value* pointer, const std::string& why, const llvm::Function& function) {
    if (auto ref = member_of(pointer); ref && !ref->in_union && untyped_word(ref->type)) {
      if (const std::string name = container_name(*ref); !name.empty())
        lines_.insert("store\t" + name + "\t" + std::to_string(ref->offset) + "\t" + function.getName().str() +
                      "\tunknown\t" + why);
      return;
    }
    llvm::Type* type = pointer->stripPointerCasts()->getType();
    if (type->isPointerTy() && !type->isOpaquePointerTy()) unknown_members(type->getPointerElementType(), why, function);
  }

  void record_call(llvm::CallBase& call, const llvm::Function& function) {
    const std::string in = " in " + function.getName().str();
    if (auto* copy = llvm::dyn_cast<llvm::MemTransferInst>(&call)) {
      // A struct copied from one of its own type keeps what the source held.
      llvm::Type* to = copy->getRawDest()->stripPointerCasts()->getType();
      llvm::Type* from = copy->getRawSource()->stripPointerCasts()->getType();
      if (to == from && to->isPointerTy() && !to->isOpaquePointerTy() && to->getPointerElementType()->isStructTy()) return;
      written_as_bytes(copy->getRawDest(), "copied in by memcpy" + in, function);
      return;
    }
    // memset writes one byte eight times into a word: NULL, or at least
    // 0x0101010101010101, above every user-space address (56 bits with
    // 5-level paging): never the address of an object.
    if (llvm::isa<llvm::MemSetInst>(&call)) return;
    const llvm::Function* callee = call.getCalledFunction();
    if (!callee || callee->isIntrinsic()) return;
    const std::string name = callee->getName().str();
    for (const char* writer : kByteWriters)
      if (name == writer)
        for (unsigned k = 0; k < call.arg_size(); ++k)
          if (call.getArgOperand(k)->getType()->isPointerTy())
            written_as_bytes(call.getArgOperand(k), "written by " + name + in, function);
    // What each untyped parameter of a function not known to be this unit's
    // own receives (one of this unit's is followed to its callers directly).
    if (callee->hasLocalLinkage() && !callee->hasAddressTaken()) return;
    for (unsigned k = 0; k < call.arg_size(); ++k) {
      if (!untyped_word(call.getArgOperand(k)->getType())) continue;
      const std::set<std::string> found = origins_of(call.getArgOperand(k), function.getName().str());
      for (const auto& origin : found) lines_.insert("arg\t" + name + "\t" + std::to_string(k) + "\t" + origin);
      // With every other argument: the container it may go into (list_add(&conns, c)), so
      // that graft diff can tell what a generic container holds per container.
      for (unsigned j = 0; j < call.arg_size(); ++j) {
        if (j == k) continue;
        llvm::Value* container = call.getArgOperand(j);
        llvm::Type* type = container->getType();
        std::string pointee = type->isPointerTy() && !type->isOpaquePointerTy()
                                  ? aggregate_name(type->getPointerElementType()) : "";
        std::string place = pointee.empty() ? "" : place_of(container);
        const std::string head =
            "within\t" + name + "\t" + std::to_string(k) + "\t" + std::to_string(j) + "\t";
        // Only a place with a struct's address says what a container holds;
        // anything else only says that parameter J names no place here (one line is enough).
        if (place.empty()) {
          lines_.insert(head + "-\tunknown\t-\t0\t-\tunknown\t-");
          continue;
        }
        for (const auto& origin : found)
          lines_.insert(head + pointee + "\t" + place + "\t" + (origin.rfind("type\t", 0) == 0 ? origin : "unknown\t-"));
      }
    }
  }

  // Where a struct a call is given lives, as "KIND NAME OFFSET HOW": KIND
  // "global" (NAME the global, OFFSET into it) or "member" (NAME the struct,
  // OFFSET of the member), HOW "addr" (the argument is that place's address,
  // &conns) or "load" (the argument was read from there, server.clients).
  // "" when graft-cc cannot tell (a call's result, arithmetic).
  std::string place_of(llvm::Value* value, int depth = 0) const {
    if (depth > 8) return "";
    llvm::Value* v = value->stripPointerCasts();
    if (auto* load = llvm::dyn_cast<llvm::LoadInst>(v)) {
      llvm::Value* from = load->getPointerOperand()->stripPointerCasts();
      if (auto* local = llvm::dyn_cast<llvm::AllocaInst>(from)) {
        if (escapes(*local)) return "";
        // A local: every value stored into it must be the same place.
        std::string agreed;
        for (const llvm::User* user : local->users())
          if (auto* store = llvm::dyn_cast<llvm::StoreInst>(user); store && store->getPointerOperand() == local) {
            std::string place = place_of(const_cast<llvm::Value*>(store->getValueOperand()), depth + 1);
            if (place.empty() || (!agreed.empty() && place != agreed)) return "";
            agreed = place;
          }
        return agreed;
      }
      const std::string at = address_place(from);
      return at.empty() ? "" : at + "\tload";
    }
    const std::string at = address_place(v);
    return at.empty() ? "" : at + "\taddr";
  }
  std::string address_place(llvm::Value* pointer) const {
    llvm::Value* p = pointer->stripPointerCasts();
    if (auto* global = llvm::dyn_cast<llvm::GlobalVariable>(p)) return "global\t" + global->getName().str() + "\t0";
    auto* gep = llvm::dyn_cast<llvm::GEPOperator>(p);
    if (!gep) return "";
    if (auto* global = llvm::dyn_cast<llvm::GlobalVariable>(gep->getPointerOperand()->stripPointerCasts())) {
      llvm::APInt offset(64, 0);
      if (!gep->accumulateConstantOffset(layout_, offset)) return "";
      return "global\t" + global->getName().str() + "\t" + std::to_string(offset.getZExtValue());
    }
    auto ref = member_of(gep);
    if (!ref || ref->in_union) return "";
    const std::string name = container_name(*ref);
    return name.empty() ? "" : "member\t" + name + "\t" + std::to_string(ref->offset);
  }

  // Where an instance of a named struct may come from other than a global
  // of that struct (DWARF says where those are): a pointer to it made by a
  // cast from another type (a malloc result, container_of, an integer), a
  // local of the struct, or a pointer to a pointer to it cast to another
  // type (its pointers written through memory of another type). graft diff
  // needs none of these for a changed struct to know that every instance of
  // it is a global, which the traversal always finds.
  static llvm::Type* struct_behind(llvm::Type* type, int& depth) {
    depth = 0;
    while (type->isPointerTy() && !type->isOpaquePointerTy()) {
      type = type->getPointerElementType();
      ++depth;
    }
    return type->isStructTy() ? type : nullptr;
  }
  // The global of debug-information type `tag` (a struct's tag or a typedef name), or an array of them: its own storage.
  static bool global_of_type(const llvm::GlobalVariable& global, llvm::StringRef tag) {
    llvm::SmallVector<llvm::DIGlobalVariableExpression*, 1> found;
    global.getDebugInfo(found);
    for (auto* expression : found) {
      const llvm::DIType* type = expression->getVariable()->getType();
      for (int depth = 0; type && depth < 8; ++depth) {
        if (!type->getName().empty() && type->getName() == tag) return true;
        // An array of it (a table of commands, struct redisCommand ACL_Subcommands[]): its elements.
        if (auto* composite = llvm::dyn_cast<llvm::DICompositeType>(type);
            composite && composite->getTag() == llvm::dwarf::DW_TAG_array_type) {
          type = composite->getBaseType();
          continue;
        }
        auto* derived = llvm::dyn_cast<llvm::DIDerivedType>(type);
        if (!derived) break;
        const unsigned kind = derived->getTag();
        if (kind != llvm::dwarf::DW_TAG_typedef && kind != llvm::dwarf::DW_TAG_const_type &&
            kind != llvm::dwarf::DW_TAG_volatile_type)
          break;
        type = derived->getBaseType();
      }
    }
    return false;
  }
  // A named struct's shape (heap_type_shape in common/member_facts_format.h), from the unit's debug
  // information; "" without it.
  const std::string& shape_of(const std::string& name) {
    if (!shapes_) {
      shapes_.emplace();
      llvm::DebugInfoFinder finder;
      finder.processModule(module_);
      for (const llvm::DIType* type : finder.types()) {
        auto* composite = llvm::dyn_cast<llvm::DICompositeType>(type);
        if (!composite || composite->isForwardDecl() || composite->getName().empty()) continue;
        const unsigned tag = composite->getTag();
        const char* kind = tag == llvm::dwarf::DW_TAG_union_type                                      ? "union "
                           : tag == llvm::dwarf::DW_TAG_structure_type || tag == llvm::dwarf::DW_TAG_class_type ? "struct "
                                                                                                        : nullptr;
        if (!kind) continue;
        std::string shape = std::to_string(composite->getSizeInBits() / 8);
        for (const llvm::DINode* element : composite->getElements()) {
          auto* member = llvm::dyn_cast<llvm::DIDerivedType>(element);
          if (!member || member->getTag() != llvm::dwarf::DW_TAG_member || member->isStaticMember()) continue;
          shape += " " + member->getName().str() + "@" + std::to_string(member->getOffsetInBits());
        }
        shapes_->emplace(kind + composite->getName().str(), std::move(shape));
      }
    }
    static const std::string kNone;
    auto it = shapes_->find(name);
    return it == shapes_->end() ? kNone : it->second;
  }
  void note_made(llvm::Type* type, const std::string& why) {
    const std::string name = aggregate_name(type);
    if (!name.empty()) lines_.insert("made\t" + name + "\t" + why);
  }
  // A cast (instruction or constant) to or from a pointer to a named struct.
  void record_made_by_cast(llvm::Operator& cast, const std::string& where) {
    const unsigned opcode = cast.getOpcode();
    if (opcode != llvm::Instruction::BitCast && opcode != llvm::Instruction::IntToPtr &&
        opcode != llvm::Instruction::AddrSpaceCast)
      return;
    // A constant number made a pointer is a sentinel (redis's REDISMODULE_HASH_DELETE, (void *)1), no instance.
    if (opcode == llvm::Instruction::IntToPtr && llvm::isa<llvm::ConstantInt>(cast.getOperand(0))) return;
    llvm::Type* from_type = cast.getOperand(0)->getType();
    int to_depth = 0, from_depth = 0;
    llvm::Type* to = struct_behind(cast.getType(), to_depth);
    llvm::Type* from = struct_behind(from_type, from_depth);
    if (to && (to != from || to_depth != from_depth)) {
      if (to_depth == 1) {
        // A global declared with the struct's type, as clang spells an initialized one ({ i32, ... }).
        auto* global = llvm::dyn_cast<llvm::GlobalVariable>(cast.getOperand(0)->stripPointerCasts());
        const std::string name = aggregate_name(to);
        llvm::StringRef tag = llvm::StringRef(name).drop_until([](char c) { return c == ' '; }).drop_front();
        if (!(global && global_of_type(*global, tag))) {
          auto* call = llvm::dyn_cast<llvm::CallBase>(cast.getOperand(0)->stripPointerCasts());
          const llvm::Function* callee = call ? call->getCalledFunction() : nullptr;
          const std::string callee_name = callee ? callee->getName().str() : std::string("-");
          // A cast of fresh memory a call returns, in code: the block gets the struct's heap type tag.
          std::optional<std::string> fresh;  // "" : always fresh; else the flag that says so at link time
          if (tag_sites_ && callee && opcode == llvm::Instruction::BitCast && llvm::isa<llvm::Instruction>(&cast) &&
              !name.empty())
            fresh = fresh_memory(*callee);
          const bool tagged = fresh.has_value();
          if (tagged) {
            const uint16_t id = heap_type_id(name, shape_of(name));
            tag_sites_->push_back({llvm::cast<llvm::Instruction>(&cast), call, id, *fresh});
            lines_.insert("tagged\t" + name + "\t" + std::to_string(id) + "\t" + callee_name + "\t" +
                          where);
          }
          note_made(to, (opcode == llvm::Instruction::IntToPtr ? "an integer made a pointer to it in "
                         : tagged                              ? "a tagged cast to it in "
                                                               : "a cast to it in ") +
                            where);
          // With tags, what an untagged cast is made from: another pointer to an instance made elsewhere
          // (a void * member's value, a parameter), or memory that would be an instance with no tag.
          if (tag_sites_ && !tagged && !name.empty() && llvm::isa<llvm::Instruction>(&cast))
            for (const auto& origin : origins_of(cast.getOperand(0), where))
              lines_.insert("castof\t" + name + "\t" + where + "\t" + origin);
          // What call's result it is made from: fresh memory (malloc's), or
          // memory another owner keeps (Lua's lua_newuserdata).
          if (call && !name.empty()) lines_.insert("castfrom\t" + name + "\t" + callee_name + "\t" + where);
          // The address it is made from may have been kept as that other type already.
          if (llvm::isa<llvm::Instruction>(&cast) && kept_before_cast(cast.getOperand(0)))
            note_kept(to, "kept as another type before a cast to it in " + where);
        }
      }
      // A pointer to pointers to it, made from memory of another type, only reads them.
    }
    if (from && from_depth >= 2 && (to != from || to_depth != from_depth) && !only_markers(cast)) {
      note_made(from, "its pointers written through another type in " + where);
      // memcpy(buffer, &e, sizeof e): its address goes where no record names its struct.
      note_kept(from, "its pointers written through another type in " + where);
    }
  }
  // Whether the value a struct is made from by a cast (void *p = malloc(n);
  // keep = p; struct eng *e = p;) goes anywhere but casts, its own local,
  // comparisons, free() and byte writes: then the struct's address is kept
  // where no record names its struct, and the struct is not "frames only".
  bool kept_before_cast(llvm::Value* from) const {
    std::vector<llvm::Value*> values = {from};
    const llvm::AllocaInst* home = nullptr;  // the local it was read from, if any
    llvm::Value* source = from->stripPointerCasts();
    if (auto* load = llvm::dyn_cast<llvm::LoadInst>(source))
      if (auto* local = llvm::dyn_cast<llvm::AllocaInst>(load->getPointerOperand()->stripPointerCasts())) {
        if (escapes(*local)) return true;
        home = local;
        values.clear();
        for (llvm::User* user : local->users()) {
          if (auto* other = llvm::dyn_cast<llvm::LoadInst>(user)) values.push_back(other);
          else if (auto* store = llvm::dyn_cast<llvm::StoreInst>(user); store && store->getPointerOperand() == local)
            values.push_back(store->getValueOperand());
        }
      }
    for (llvm::Value* value : values)
      for (llvm::User* user : value->users()) {
        if (llvm::isa<llvm::ICmpInst>(user) || lifetime_or_debug(user)) continue;
        if (auto* store = llvm::dyn_cast<llvm::StoreInst>(user)) {
          if (store->getValueOperand() != value || (home && store->getPointerOperand()->stripPointerCasts() == home))
            continue;  // a store through it, or into the local the values come from
          return true;
        }
        if (auto* cast = llvm::dyn_cast<llvm::CastInst>(user)) {
          llvm::Type* type = cast->getType();
          if (type->isPointerTy() && !type->isOpaquePointerTy() && type->getPointerElementType()->isStructTy()) continue;
          return true;
        }
        if (auto* call = llvm::dyn_cast<llvm::CallBase>(user)) {
          if (harmless_callee(*call)) continue;
          return true;
        }
        if (llvm::isa<llvm::LoadInst>(user)) continue;  // read through
        return true;
      }
    return false;
  }
  void record_made_in(llvm::Constant* constant, const std::string& where, int depth = 0) {
    if (depth > 16 || llvm::isa<llvm::GlobalValue>(constant)) return;
    if (auto* expression = llvm::dyn_cast<llvm::ConstantExpr>(constant))
      record_made_by_cast(*llvm::cast<llvm::Operator>(expression), where);
    for (llvm::Value* operand : constant->operands())
      if (auto* inner = llvm::dyn_cast<llvm::Constant>(operand)) record_made_in(inner, where, depth + 1);
  }
  void record_made(llvm::Instruction& instruction, const llvm::Function& function) {
    const std::string where = function.getName().str();
    if (auto* local = llvm::dyn_cast<llvm::AllocaInst>(&instruction)) {
      llvm::Type* type = local->getAllocatedType();
      while (auto* array = llvm::dyn_cast<llvm::ArrayType>(type)) type = array->getElementType();
      if (type->isStructTy()) note_made(type, "a local in " + where);
      return;
    }
    if (auto* cast = llvm::dyn_cast<llvm::Operator>(&instruction)) record_made_by_cast(*cast, where);
    for (llvm::Value* operand : instruction.operands())
      if (auto* constant = llvm::dyn_cast<llvm::Constant>(operand)) record_made_in(constant, where);
  }

  // Where a pointer to (or into) an instance of a named struct is kept in
  // memory: stored, other than into a local whose address goes nowhere,
  // passed or stored as another type (void *), made an integer, or put in
  // a static initializer. A changed struct with none of these can be
  // reached only from the frames that hold it (a request's engine on the
  // stack, or from a pool, in locals only): graft need not wait for frames
  // that reach it through memory, since none can.
  llvm::Type* struct_pointed(llvm::Value* value, int depth = 0) const {
    if (depth > 8) return nullptr;
    llvm::Value* v = value->stripPointerCasts();
    llvm::Type* type = v->getType();
    if (type->isPointerTy() && !type->isOpaquePointerTy() && type->getPointerElementType()->isStructTy() &&
        !aggregate_name(type->getPointerElementType()).empty())
      return type->getPointerElementType();
    if (auto* gep = llvm::dyn_cast<llvm::GEPOperator>(v)) {  // into one: &e->buf
      if (gep->getSourceElementType()->isStructTy() && !aggregate_name(gep->getSourceElementType()).empty())
        return gep->getSourceElementType();
      return struct_pointed(gep->getPointerOperand(), depth + 1);
    }
    return nullptr;
  }
  // The named structs a value of `type` holds pointers to, by value (a struct returned or copied whole).
  void pointers_held(llvm::Type* type, std::set<llvm::Type*>& out, int depth = 0) const {
    if (depth > 8) return;
    if (type->isPointerTy() && !type->isOpaquePointerTy()) {
      if (type->getPointerElementType()->isStructTy()) out.insert(type->getPointerElementType());
      return;
    }
    if (auto* s = llvm::dyn_cast<llvm::StructType>(type))
      for (llvm::Type* element : s->elements()) pointers_held(element, out, depth + 1);
    else if (auto* array = llvm::dyn_cast<llvm::ArrayType>(type))
      pointers_held(array->getElementType(), out, depth + 1);
  }
  void note_kept(llvm::Type* type, const std::string& why) {
    const std::string name = aggregate_name(type);
    if (!name.empty()) lines_.insert("kept\t" + name + "\t" + why);
  }
  // A pointer into a struct held by value in others is a pointer into each
  // of them too: &it->link (a struct list_head *) points into a struct item.
  // Each enclosing struct is kept wherever the member's struct is (this use
  // included, if it keeps it): "interior ENCLOSING MEMBER F" records, joined
  // at diff time (MemberFacts::kept). A pointer to a member that is no
  // struct (&e->count), where the use keeps it, keeps each directly.
  void note_enclosing(llvm::Value* value, bool keeps, const std::string& why, const std::string& function) {
    llvm::Type* inner = nullptr;  // the struct it points to, held by value in the others
    if (value->getType()->isPointerTy() && !value->getType()->isOpaquePointerTy() &&
        value->getType()->getPointerElementType()->isStructTy())
      inner = value->getType()->getPointerElementType();
    llvm::Value* v = value->stripPointerCasts();
    if (v != value && v->getType()->isPointerTy() && !v->getType()->isOpaquePointerTy() &&
        v->getType()->getPointerElementType()->isStructTy())
      inner = v->getType()->getPointerElementType();
    std::set<llvm::Type*> enclosing;
    for (int depth = 0; depth < 8; ++depth) {
      auto* gep = llvm::dyn_cast<llvm::GEPOperator>(v);
      if (!gep) break;
      // Every struct the indices step into a member of (not the first index: p[i] stays in its own kind).
      auto step = llvm::gep_type_begin(gep);
      for (auto end = llvm::gep_type_end(gep); step != end; ++step)
        if (step.isStruct()) enclosing.insert(step.getStructType());
      v = gep->getPointerOperand()->stripPointerCasts();
    }
    enclosing.erase(inner);
    const std::string inner_name = inner ? aggregate_name(inner) : std::string();
    for (llvm::Type* e : enclosing) {
      if (aggregate_name(e).empty()) continue;
      if (!inner_name.empty()) lines_.insert("interior\t" + aggregate_name(e) + "\t" + inner_name + "\t" + function);
      else if (keeps) note_kept(e, why);
    }
  }
  void record_kept_in(llvm::Constant* constant, const std::string& where, int depth = 0) {
    if (depth > 16) return;
    if (llvm::isa<llvm::GlobalValue>(constant)) {
      if (llvm::Type* s = struct_pointed(constant)) note_kept(s, where);
      return;
    }
    if (auto* expression = llvm::dyn_cast<llvm::ConstantExpr>(constant))
      if (llvm::Type* s = struct_pointed(expression)) {
        note_kept(s, where);
        return;
      }
    for (llvm::Value* operand : constant->operands())
      if (auto* inner = llvm::dyn_cast<llvm::Constant>(operand)) record_kept_in(inner, where, depth + 1);
  }
  // Calls that keep no pointer they are given: the compiler's own, and free().
  static bool harmless_callee(const llvm::CallBase& call) {
    if (llvm::isa<llvm::MemIntrinsic>(&call) || lifetime_or_debug(&call)) return true;
    const llvm::Function* callee = call.getCalledFunction();
    return callee && callee->isDeclaration() && callee->getName() == "free";
  }
  // The C library's formatting functions: they print what `...` passes, and keep nothing.
  static bool formatting_callee(const llvm::CallBase& call) {
    const llvm::Function* callee = call.getCalledFunction();
    if (!callee || !callee->isDeclaration()) return false;
    static const char* const kFormatting[] = {"printf", "fprintf", "sprintf", "snprintf", "dprintf", "syslog",
                                              "__printf_chk", "__fprintf_chk", "__sprintf_chk", "__snprintf_chk",
                                              "__syslog_chk", "__dprintf_chk"};
    for (const char* name : kFormatting)
      if (callee->getName() == name) return true;
    return false;
  }
  // A cast only lifetime markers and debug intrinsics use.
  static bool only_markers(const llvm::Operator& cast) {
    return !cast.user_empty() && std::all_of(cast.user_begin(), cast.user_end(), [](const llvm::User* user) {
      return lifetime_or_debug(user);
    });
  }
  void record_kept(llvm::Instruction& instruction, const llvm::Function& function) {
    const std::string in = " in " + function.getName().str();
    if (auto* store = llvm::dyn_cast<llvm::StoreInst>(&instruction)) {
      llvm::Value* value = store->getValueOperand();
      auto* local = llvm::dyn_cast<llvm::AllocaInst>(store->getPointerOperand()->stripPointerCasts());
      const bool frame = local && !escapes(*local);
      if (llvm::Type* s = struct_pointed(value)) {
        // Into a local of its own type, it stays in the frame; cast first (void *p = e), it is lost from sight.
        const bool kept = !frame || value->stripPointerCasts() != value || value->getType() != s->getPointerTo();
        if (kept) note_kept(s, (frame ? "kept as another type" : "stored") + in);
        note_enclosing(value, kept, "a pointer into it " + std::string(frame ? "kept as another type" : "stored") + in,
                       function.getName().str());
      } else if (!value->getType()->isPointerTy()) {
        std::set<llvm::Type*> held;
        pointers_held(value->getType(), held);
        if (!frame)
          for (llvm::Type* s : held) note_kept(s, "stored in a struct" + in);
      }
      return;
    }
    const std::string name = function.getName().str();
    if (auto* exchange = llvm::dyn_cast<llvm::AtomicCmpXchgInst>(&instruction)) {
      if (llvm::Type* s = struct_pointed(exchange->getNewValOperand())) note_kept(s, "stored atomically" + in);
      note_enclosing(exchange->getNewValOperand(), true, "a pointer into it stored atomically" + in, name);
      return;
    }
    if (auto* rmw = llvm::dyn_cast<llvm::AtomicRMWInst>(&instruction)) {
      if (llvm::Type* s = struct_pointed(rmw->getValOperand())) note_kept(s, "stored atomically" + in);
      note_enclosing(rmw->getValOperand(), true, "a pointer into it stored atomically" + in, name);
      return;
    }
    if (auto* cast = llvm::dyn_cast<llvm::PtrToIntInst>(&instruction)) {
      if (llvm::Type* s = struct_pointed(cast->getOperand(0))) note_kept(s, "made an integer" + in);
      note_enclosing(cast->getOperand(0), true, "a pointer into it made an integer" + in, name);
      return;
    }
    if (auto* call = llvm::dyn_cast<llvm::CallBase>(&instruction)) {
      if (harmless_callee(*call)) return;
      const unsigned fixed = call->getFunctionType()->getNumParams();
      const bool formats = formatting_callee(*call);
      for (unsigned k = 0; k < call->arg_size(); ++k) {
        llvm::Value* argument = call->getArgOperand(k);
        llvm::Type* s = struct_pointed(argument);
        // Passed as itself, it is in the callee's frame (whose own stores are recorded); as void *, anywhere.
        if (s && argument->getType() != s->getPointerTo()) note_kept(s, "passed as another type" + in);
        // Inline assembly records nothing of what it does with it.
        else if (s && call->isInlineAsm()) note_kept(s, "given to inline assembly" + in);
        // Through `...`, the callee reads it from a va_list, untyped.
        else if (s && call->getFunctionType()->isVarArg() && k >= fixed && !formats)
          note_kept(s, "passed through ..." + in);
        else if (s) {
          note_enclosing(argument, false, "", name);  // kept where the callee keeps its member's struct
          continue;
        }
        if (s) note_enclosing(argument, true, "a pointer into it passed as another type" + in, name);
      }
      return;
    }
    // A pointer to it made another type on its way out of the frame: returned
    // as void * (the caller keeps it where no record names its struct), or
    // merged with values of another type.
    if (auto* ret = llvm::dyn_cast<llvm::ReturnInst>(&instruction)) {
      llvm::Value* value = ret->getReturnValue();
      if (llvm::Type* s = value ? struct_pointed(value) : nullptr; s && value->getType() != s->getPointerTo())
        note_kept(s, "returned as another type" + in);
      // Returned as itself: the caller holds a pointer into the enclosing struct, kept where it keeps the member's.
      if (value && struct_pointed(value)) note_enclosing(value, false, "a pointer into it returned" + in, name);
      return;
    }
    if (llvm::isa<llvm::PHINode>(&instruction) || llvm::isa<llvm::SelectInst>(&instruction)) {
      for (llvm::Value* operand : instruction.operands())
        if (llvm::Type* s = struct_pointed(operand); s && instruction.getType() != s->getPointerTo()) {
          note_kept(s, "merged with values of another type" + in);
          note_enclosing(operand, true, "a pointer into it merged with values of another type" + in, name);
        } else if (s) {
          note_enclosing(operand, false, "", name);
        }
      return;
    }
    if (auto* insert = llvm::dyn_cast<llvm::InsertValueInst>(&instruction)) {
      if (llvm::Type* s = struct_pointed(insert->getInsertedValueOperand())) note_kept(s, "put in a struct value" + in);
      note_enclosing(insert->getInsertedValueOperand(), true, "a pointer into it put in a struct value" + in, name);
      return;
    }
  }

  // An untyped member whose address goes anywhere but a load or a store
  // through it (void **slot = &p->value): what is stored there is not seen.
  void record_escape(llvm::GetElementPtrInst& gep, const llvm::Function& function) {
    auto ref = member_of(&gep);
    if (!ref || ref->in_union || !untyped_word(ref->type)) return;
    const std::string name = container_name(*ref);
    if (name.empty()) return;
    for (const llvm::User* user : gep.users()) {
      if (llvm::isa<llvm::LoadInst>(user)) continue;
      if (auto* store = llvm::dyn_cast<llvm::StoreInst>(user); store && store->getValueOperand() != &gep) continue;
      if (llvm::isa<llvm::BitCastInst>(user)) continue;  // a union member, or memcpy/memset (seen as calls)
      lines_.insert("store\t" + name + "\t" + std::to_string(ref->offset) + "\t" + function.getName().str() +
                    "\tunknown\tits address is taken in " + function.getName().str());
      return;
    }
  }

  llvm::Module& module_;
  const llvm::DataLayout& layout_;
  std::vector<HeapTagSite>* tag_sites_;
  std::set<std::string> fresh_;  // fresh_functions()
  std::optional<std::map<std::string, std::string>> shapes_;  // shape_of(), once
  std::map<std::string, std::string> slot_fresh_;  // a function fresh through an allocator table -> the slot's flag
  std::set<std::string> slot_flags_;               // slot_flags(): the flags of this unit's allocator slots
  std::set<std::string> lines_;
};

// The records as assembler directives for the section (not loaded: "" flags).
std::string section_asm(const std::set<std::string>& lines) {
  std::string out = std::string(".pushsection ") + kMemberFactsSection + ",\"\",@progbits\n";
  // The unit's piece opens with "begin": the linker concatenates the pieces, and what follows is this unit's.
  std::vector<std::string> ordered;
  for (const auto& line : lines)
    if (line.compare(0, 5, "unit\t") == 0) ordered.push_back("begin" + line.substr(4));
  ordered.insert(ordered.end(), lines.begin(), lines.end());
  for (const auto& line : ordered) {
    out += ".ascii \"";
    for (const char c : line + "\n") {
      if (c == '"' || c == '\\') out += std::string("\\") + c;
      else if (c == '\n') out += "\\n";
      else if (c == '\t') out += "\\t";
      else if (static_cast<unsigned char>(c) < 32 || static_cast<unsigned char>(c) > 126) {
        char octal[8];
        std::snprintf(octal, sizeof octal, "\\%03o", static_cast<unsigned char>(c));
        out += octal;
      } else out += c;
    }
    out += "\"\n";
  }
  return out + ".popsection";
}

}  // namespace

bool member_facts_enabled() {
  const char* value = std::getenv(kMemberFactsVariable);
  return value == nullptr || std::strcmp(value, "off") != 0;
}

llvm::PreservedAnalyses MemberFactsPass::run(llvm::Module& module, llvm::ModuleAnalysisManager&) {
  // The pipeline-start callback may run more than once on a module (ThinLTO's pre-link pipeline).
  if (module.getModuleFlag(kDoneFlag) != nullptr) return llvm::PreservedAnalyses::all();
  module.addModuleFlag(llvm::Module::Warning, kDoneFlag, 1);
  std::vector<HeapTagSite> tag_sites;
  const bool tags = heap_types_enabled();
  Recorder recorder(module, tags ? &tag_sites : nullptr);
  const auto lines = recorder.run();
  if (!lines.empty()) module.appendModuleInlineAsm(section_asm(lines));
  // After the records: they describe the program's own code, not the tags'.
  if (tags) instrument_heap_types(module, tag_sites, recorder.fresh_functions(), recorder.slot_flags());
  return llvm::PreservedAnalyses::none();
}

}  // namespace graft
