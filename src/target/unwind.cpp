#include "target/unwind.h"
#include "target/x86.h"
#include "common/unique_fd.h"
#include "target/handover.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace graft {
// Types shared by the Unwinder's nested structs: not in an anonymous namespace.
namespace cfi {

// DWARF register numbers of x86-64 (psABI): rax rdx rcx rbx rsi rdi rbp rsp
// r8..r15, then the return address column.
constexpr int kRegisters = 17;
constexpr int kRbx = 3, kRbp = 6, kRsp = 7, kReturnAddress = 16;
inline bool callee_saved(int reg) { return reg == kRbx || reg == kRbp || (reg >= 12 && reg <= 15); }

struct KnownRegisters {
  std::array<uint64_t, kRegisters> value{};
  uint32_t known = 0;      // bit per register
  uint32_t in_thread = 0;  // bit per register: the value is still in the thread's register of that number
  bool has(int reg) const { return reg >= 0 && reg < kRegisters && (known >> reg & 1); }
  void set(int reg, uint64_t v) {
    value[reg] = v;
    known |= 1u << reg;
    in_thread &= ~(1u << reg);
  }
  // The callee left `reg` as it found it: where the value lives stays the same.
  void keep(int reg, const KnownRegisters& callee) {
    set(reg, callee.value[reg]);
    in_thread |= callee.in_thread & (1u << reg);
  }
};

inline KnownRegisters from_thread(const Registers& r) {
  KnownRegisters out;
  for (int i = 0; i < kReturnAddress; ++i) out.set(i, r[static_cast<Reg>(i)]);
  out.set(kReturnAddress, r.rip);
  out.in_thread = (1u << kReturnAddress) - 1;
  return out;
}

// One operation of a DWARF expression, copied out of libdw's Dwarf_Op.
struct Op {
  uint8_t atom = 0;
  uint64_t number = 0, number2 = 0, offset = 0;
};

struct ElfEnd {
  void operator()(Elf* elf) const { elf_end(elf); }
};
struct CfiEnd {
  void operator()(Dwarf_CFI* cfi) const { dwarf_cfi_end(cfi); }
};
struct FrameFree {
  void operator()(Dwarf_Frame* frame) const { std::free(frame); }
};


}  // namespace cfi

namespace {
using cfi::callee_saved;
using cfi::from_thread;
using cfi::kRbp;
using cfi::kRegisters;
using cfi::kReturnAddress;
using cfi::kRsp;
using cfi::Op;
using cfi::KnownRegisters;
using cfi::CfiEnd;
using cfi::ElfEnd;
using cfi::FrameFree;

std::vector<Op> copy_ops(const Dwarf_Op* ops, size_t count) {
  std::vector<Op> out(count);
  for (size_t i = 0; i < count; ++i) out[i] = {ops[i].atom, ops[i].number, ops[i].number2, ops[i].offset};
  return out;
}

// Evaluates the DWARF expressions that .eh_frame uses (register plus offset,
// the CFA, dereferences, the arithmetic and comparisons of PLT entries)
// against a frame's registers and the stack. nullopt: not computable here.
std::optional<uint64_t> evaluate(const std::vector<Op>& ops, const KnownRegisters& regs, std::optional<uint64_t> cfa,
                                 const StackMemory& memory) {
  uint64_t stack[32];
  size_t depth = 0;
  auto push = [&](uint64_t v) {
    if (depth == std::size(stack)) return false;
    stack[depth++] = v;
    return true;
  };
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    const uint8_t a = op.atom;
    bool pushed = true;
    if (a >= DW_OP_lit0 && a <= DW_OP_lit31) {
      pushed = push(a - DW_OP_lit0);
    } else if (a >= DW_OP_breg0 && a <= DW_OP_breg31) {
      if (!regs.has(a - DW_OP_breg0)) return std::nullopt;
      pushed = push(regs.value[a - DW_OP_breg0] + op.number);
    } else {
      switch (a) {
        case DW_OP_const1u: case DW_OP_const1s: case DW_OP_const2u: case DW_OP_const2s:
        case DW_OP_const4u: case DW_OP_const4s: case DW_OP_const8u: case DW_OP_const8s:
        case DW_OP_constu: case DW_OP_consts:
          pushed = push(op.number);  // libdw has sign-extended the signed forms
          break;
        case DW_OP_bregx:
          if (!regs.has(static_cast<int>(op.number))) return std::nullopt;
          pushed = push(regs.value[op.number] + op.number2);
          break;
        case DW_OP_call_frame_cfa:
          if (!cfa) return std::nullopt;
          pushed = push(*cfa);
          break;
        case DW_OP_nop:
          break;
        case DW_OP_skip:
        case DW_OP_bra: {
          if (a == DW_OP_bra) {
            if (depth == 0) return std::nullopt;
            if (stack[--depth] == 0) break;
          }
          // The target is an offset in the encoded expression, from the end of this 3-byte operation.
          const uint64_t target = op.offset + 3 + static_cast<uint64_t>(static_cast<int16_t>(op.number));
          auto next = std::find_if(ops.begin(), ops.end(), [&](const Op& o) { return o.offset == target; });
          if (next == ops.end() && target != ops.back().offset + 1) return std::nullopt;
          i = static_cast<size_t>(next - ops.begin()) - 1;
          break;
        }
        default: {
          // Operations on the stack's top entries.
          if (depth == 0) return std::nullopt;
          uint64_t& top = stack[depth - 1];
          switch (a) {
            case DW_OP_deref: {
              auto v = memory.word(top);
              if (!v) return std::nullopt;
              top = *v;
              continue;
            }
            case DW_OP_deref_size: {
              auto v = memory.word(top);
              if (!v || op.number == 0 || op.number > 8) return std::nullopt;
              top = op.number == 8 ? *v : *v & ((uint64_t{1} << (8 * op.number)) - 1);
              continue;
            }
            case DW_OP_plus_uconst: top += op.number; continue;
            case DW_OP_neg: top = -top; continue;
            case DW_OP_not: top = ~top; continue;
            case DW_OP_abs: top = static_cast<int64_t>(top) < 0 ? -top : top; continue;
            case DW_OP_dup: pushed = push(top); break;
            case DW_OP_drop: --depth; continue;
            case DW_OP_pick:
              if (op.number >= depth) return std::nullopt;
              pushed = push(stack[depth - 1 - op.number]);
              break;
            default: {
              if (depth < 2) return std::nullopt;
              const uint64_t b = stack[--depth];
              uint64_t& x = stack[depth - 1];
              const auto sx = static_cast<int64_t>(x), sb = static_cast<int64_t>(b);
              switch (a) {
                case DW_OP_plus: x += b; break;
                case DW_OP_minus: x -= b; break;
                case DW_OP_mul: x *= b; break;
                case DW_OP_and: x &= b; break;
                case DW_OP_or: x |= b; break;
                case DW_OP_xor: x ^= b; break;
                case DW_OP_shl: x = b >= 64 ? 0 : x << b; break;
                case DW_OP_shr: x = b >= 64 ? 0 : x >> b; break;
                case DW_OP_shra: x = static_cast<uint64_t>(sx >> std::min<uint64_t>(b, 63)); break;
                case DW_OP_div: if (b == 0) return std::nullopt; x = static_cast<uint64_t>(sx / sb); break;
                case DW_OP_mod: if (b == 0) return std::nullopt; x %= b; break;
                case DW_OP_eq: x = sx == sb; break;
                case DW_OP_ne: x = sx != sb; break;
                case DW_OP_lt: x = sx < sb; break;
                case DW_OP_gt: x = sx > sb; break;
                case DW_OP_le: x = sx <= sb; break;
                case DW_OP_ge: x = sx >= sb; break;
                case DW_OP_over: ++depth; pushed = push(x); break;
                case DW_OP_swap: std::swap(x, stack[depth++]); break;
                default: return std::nullopt;  // not an operation .eh_frame uses
              }
            }
          }
        }
      }
    }
    if (!pushed) return std::nullopt;
  }
  if (depth == 0) return std::nullopt;
  return stack[depth - 1];
}

}  // namespace

std::optional<uint64_t> StackMemory::word(uint64_t address) const {
  if (address >= base_ && address + 8 <= end() && address + 8 > address) {
    uint64_t v;
    std::memcpy(&v, bytes_.data() + (address - base_), 8);
    return v;
  }
  auto bytes = read_process_memory(pid_, RemoteAddress(address), 8);
  if (!bytes) return std::nullopt;
  uint64_t v;
  std::memcpy(&v, bytes->data(), 8);
  return v;
}

struct Unwinder::Module {
  std::string path;          // as in /proc/PID/maps
  uint64_t device = 0, inode = 0;  // the file the kernel says is mapped: what is opened must be it
  uint64_t bias = 0;         // where it is loaded minus its link-time address
  bool opened = false;       // opening was tried (it may have no CFI)
  UniqueFd file;
  std::vector<uint8_t> image;               // the vDSO's bytes, copied from the process (libelf reads them in place)
  std::unique_ptr<Elf, ElfEnd> elf;         // declared before the CFI: destroyed after it
  std::unique_ptr<Dwarf_CFI, CfiEnd> cfi;   // its .eh_frame, nullptr if none
};

struct Unwinder::Rules {
  struct Rule {
    enum Kind : uint8_t { Undefined, SameValue, InRegister, AtAddress, IsValue } kind = Undefined;
    int reg = 0;            // InRegister
    std::vector<Op> ops;    // AtAddress, IsValue
  };
  std::vector<Op> cfa;
  std::array<Rule, kRegisters> registers;
  int return_register = kReturnAddress;
  bool signal_frame = false;
};

namespace {

// The rules at a link-time address, decoded once from libdw's frame state.
std::unique_ptr<Unwinder::Rules> decode_rules(Dwarf_CFI* cfi, uint64_t address) {
  Dwarf_Frame* raw = nullptr;
  if (dwarf_cfi_addrframe(cfi, address, &raw) != 0 || !raw) return nullptr;
  std::unique_ptr<Dwarf_Frame, FrameFree> frame(raw);
  auto rules = std::make_unique<Unwinder::Rules>();
  rules->return_register = dwarf_frame_info(frame.get(), nullptr, nullptr, &rules->signal_frame);
  if (rules->return_register < 0 || rules->return_register >= kRegisters) return nullptr;
  Dwarf_Op* ops = nullptr;
  size_t count = 0;
  if (dwarf_frame_cfa(frame.get(), &ops, &count) != 0 || count == 0) return nullptr;
  rules->cfa = copy_ops(ops, count);
  for (int reg = 0; reg < kRegisters; ++reg) {
    auto& rule = rules->registers[reg];
    Dwarf_Op scratch[3];
    if (dwarf_frame_register(frame.get(), reg, scratch, &ops, &count) != 0) continue;  // undefined
    if (count == 0) {
      rule.kind = ops ? Unwinder::Rules::Rule::Undefined : Unwinder::Rules::Rule::SameValue;
    } else if (count == 1 && (ops[0].atom == DW_OP_regx || (ops[0].atom >= DW_OP_reg0 && ops[0].atom <= DW_OP_reg31))) {
      rule.kind = Unwinder::Rules::Rule::InRegister;
      rule.reg = ops[0].atom == DW_OP_regx ? static_cast<int>(ops[0].number) : ops[0].atom - DW_OP_reg0;
    } else if (ops[count - 1].atom == DW_OP_stack_value) {
      rule.kind = Unwinder::Rules::Rule::IsValue;
      rule.ops = copy_ops(ops, count - 1);
    } else {
      rule.kind = Unwinder::Rules::Rule::AtAddress;
      rule.ops = copy_ops(ops, count);
    }
  }
  return rules;
}

// Where file offset `offset` of an ELF file mapped at `start` has its
// link-time address: the load bias is the difference.
std::optional<uint64_t> load_bias(Elf* elf, uint64_t start, uint64_t offset) {
  size_t count = 0;
  if (elf_getphdrnum(elf, &count) != 0) return std::nullopt;
  for (size_t i = 0; i < count; ++i) {
    GElf_Phdr phdr;
    if (!gelf_getphdr(elf, static_cast<int>(i), &phdr) || phdr.p_type != PT_LOAD) continue;
    const uint64_t page_offset = phdr.p_offset & ~uint64_t{0xfff};
    if (offset < page_offset || offset >= phdr.p_offset + phdr.p_filesz) continue;
    return start - (phdr.p_vaddr - phdr.p_offset + offset);
  }
  return std::nullopt;
}

enum class Step { Done, End, Failed };

// One step outwards through the CFI: the caller's registers, and where its
// return address was read from.
Step step_by_cfi(const Unwinder::Rules& rules, const KnownRegisters& regs, const StackMemory& memory, KnownRegisters& caller,
                 uint64_t& return_slot, uint64_t& frame_cfa) {
  using Rule = Unwinder::Rules::Rule;
  const auto cfa = evaluate(rules.cfa, regs, std::nullopt, memory);
  if (!cfa) return Step::Failed;
  frame_cfa = *cfa;
  caller = KnownRegisters{};
  for (int reg = 0; reg < kRegisters; ++reg) {
    const Rule& rule = rules.registers[reg];
    switch (rule.kind) {
      case Rule::Undefined:
        // A callee-saved register no rule mentions is unchanged (psABI).
        if (callee_saved(reg) && regs.has(reg)) caller.keep(reg, regs);
        break;
      case Rule::SameValue:
        if (regs.has(reg)) caller.keep(reg, regs);
        break;
      case Rule::InRegister:
        if (regs.has(rule.reg)) caller.set(reg, regs.value[rule.reg]);
        break;
      case Rule::AtAddress:
        if (auto address = evaluate(rule.ops, regs, cfa, memory)) {
          if (auto v = memory.word(*address)) caller.set(reg, *v);
          if (reg == rules.return_register) return_slot = *address;
        }
        break;
      case Rule::IsValue:
        if (auto v = evaluate(rule.ops, regs, cfa, memory)) caller.set(reg, *v);
        break;
    }
  }
  if (rules.registers[rules.return_register].kind == Rule::Undefined) return Step::End;  // the thread's first frame
  if (!caller.has(rules.return_register)) return Step::Failed;
  if (rules.return_register != kReturnAddress) caller.set(kReturnAddress, caller.value[rules.return_register]);
  if (rules.registers[kRsp].kind == Rule::Undefined || rules.registers[kRsp].kind == Rule::SameValue)
    caller.set(kRsp, *cfa);  // the CFA is the caller's stack pointer
  return Step::Done;
}

// One step outwards through the frame-pointer chain, as graft-cc builds code.
bool step_by_frame_pointer(pid_t pid, const StackFrame& frame, const KnownRegisters& regs, const StackMemory& stack,
                           KnownRegisters& caller, uint64_t& return_slot) {
  caller = KnownRegisters{};
  for (int reg = 0; reg < kRegisters; ++reg)
    if (callee_saved(reg) && regs.has(reg)) caller.keep(reg, regs);
  uint64_t slot = 0;
  if (frame.exact) {
    // Stopped where the frame is not set up yet, or already taken down:
    // the return address is at the stack pointer, or just above the pushed rbp.
    uint8_t code[3] = {};
    if (auto bytes = read_process_memory(pid, RemoteAddress(frame.pc), 3)) std::memcpy(code, bytes->data(), 3);
    if (x86::frame_not_set_up(code)) {
      slot = frame.sp;
    } else if (x86::is_frame_pointer_setup(code)) {
      auto saved = stack.word(frame.sp);
      if (!saved) return false;
      caller.set(kRbp, *saved);
      slot = frame.sp + 8;
    }
  }
  if (!slot) {
    if (!regs.has(kRbp)) return false;
    const uint64_t rbp = regs.value[kRbp];
    if (rbp < frame.sp || (rbp & 7)) return false;
    auto saved = stack.word(rbp);
    if (!saved) return false;
    caller.set(kRbp, *saved);
    slot = rbp + 8;
  }
  auto pc = stack.word(slot);
  if (!pc) return false;
  caller.set(kReturnAddress, *pc);
  caller.set(kRsp, slot + 8);
  return_slot = slot;
  return true;
}

}  // namespace

Unwinder::Unwinder(pid_t pid, const std::vector<MemoryMap>& maps) : pid_(pid) {
  elf_version(EV_CURRENT);
  set_maps(maps);
}

Unwinder::~Unwinder() = default;

void Unwinder::set_maps(const std::vector<MemoryMap>& maps) {
  std::vector<CodeRange> code;
  for (const auto& m : maps) {
    if (m.perms.size() < 3 || m.perms[2] != 'x') continue;
    CodeRange range{m.start, m.end, m.offset, nullptr};
    // Files and the vDSO have ELF headers; patch regions (memfd) and anonymous code do not.
    if (m.path == "[vdso]" || (m.path.starts_with("/") && !m.path.starts_with("/memfd:"))) {
      auto& module = modules_[fmt::format("{}@{:x}#{:x}:{}", m.path, m.start - m.offset, m.device, m.inode)];
      if (!module) {
        module = std::make_unique<Module>();
        module->path = m.path;
        module->device = m.device;
        module->inode = m.inode;
      }
      range.module = module.get();
    }
    code.push_back(range);
  }
  std::sort(code.begin(), code.end(), [](const CodeRange& a, const CodeRange& b) { return a.start < b.start; });
  const bool same = code.size() == code_.size() &&
                    std::equal(code.begin(), code.end(), code_.begin(), [](const CodeRange& a, const CodeRange& b) {
                      return a.start == b.start && a.end == b.end && a.module == b.module;
                    });
  if (same) return;
  code_ = std::move(code);
  rules_by_pc_.clear();  // an address may now be other code
}

const Unwinder::CodeRange* Unwinder::code_at(uint64_t pc) const {
  auto it = std::upper_bound(code_.begin(), code_.end(), pc, [](uint64_t a, const CodeRange& r) { return a < r.start; });
  if (it == code_.begin()) return nullptr;
  --it;
  return pc < it->end ? &*it : nullptr;
}

void Unwinder::open(Module& module, const CodeRange& range) {
  module.opened = true;
  if (module.path == "[vdso]") {
    // The vDSO exists only in memory: a copy of its image serves as the file.
    auto bytes = read_process_memory(pid_, RemoteAddress(range.start), range.end - range.start);
    if (!bytes) return;
    module.image = std::move(bytes).value();
    module.elf.reset(elf_memory(reinterpret_cast<char*>(module.image.data()), module.image.size()));
  } else {
    // The very file mapped (a file replaced or deleted since is still there through map_files), never what
    // a hostile program put at its path since.
    MemoryMap mapping{range.start, range.end, range.offset, "", module.path, module.device, module.inode};
    auto file = open_mapped_file(pid_, mapping);
    if (!file) return;
    module.file = std::move(file).value();
    module.elf.reset(elf_begin(module.file.get(), ELF_C_READ_MMAP, nullptr));
  }
  if (!module.elf || elf_kind(module.elf.get()) != ELF_K_ELF) return;
  auto bias = load_bias(module.elf.get(), range.start, range.offset);
  if (!bias) return;
  module.bias = *bias;
  module.cfi.reset(dwarf_getcfi_elf(module.elf.get()));
}

const Unwinder::Rules* Unwinder::rules_at(uint64_t pc) {
  if (auto it = rules_by_pc_.find(pc); it != rules_by_pc_.end()) return it->second;
  const Rules* found = nullptr;
  if (const CodeRange* range = code_at(pc); range && range->module) {
    Module& module = *range->module;
    if (!module.opened) open(module, *range);
    if (module.cfi)
      if (auto rules = decode_rules(module.cfi.get(), pc - module.bias)) {
        rules_.push_back(std::move(rules));
        found = rules_.back().get();
      }
  }
  rules_by_pc_.emplace(pc, found);
  return found;
}

std::vector<StackFrame> Unwinder::unwind(const Registers& thread_regs, const StackMemory& stack, size_t limit) {
  std::vector<StackFrame> frames;
  frames.reserve(16);
  KnownRegisters regs = from_thread(thread_regs);
  // The registers a frame's code sees, as far as they are known exactly.
  auto keep_registers = [](StackFrame& frame, const KnownRegisters& known, uint32_t mask) {
    for (int reg = 0; reg < 16; ++reg) frame.registers[static_cast<size_t>(reg)] = known.value[reg];
    frame.known_registers = known.known & mask & 0xffffu;
    frame.registers_in_thread = known.in_thread & frame.known_registers;
  };
  frames.push_back(StackFrame{thread_regs.rip, thread_regs.rsp, 0, true, false, StackFrame::Found::Registers});
  keep_registers(frames.back(), regs, ~0u);
  bool guessed = false;  // a frame was found by its frame pointer: callee-saved registers further out are guesses
  while (frames.size() < limit) {
    StackFrame& frame = frames.back();
    KnownRegisters caller;
    uint64_t return_slot = 0, cfa = 0;
    StackFrame::Found found = StackFrame::Found::Cfi;
    // A return address is the instruction after the call: the call itself is what the rules describe.
    Step step = Step::Failed;
    if (const Rules* rules = rules_at(frame.exact ? frame.pc : frame.pc - 1)) {
      frame.signal_frame = rules->signal_frame;
      step = step_by_cfi(*rules, regs, stack, caller, return_slot, cfa);
    }
    if (step == Step::End) {
      frame.cfa = cfa;
      frame.first = true;
      break;
    }
    if (step == Step::Failed) {
      found = StackFrame::Found::FramePointer;
      frame.signal_frame = false;
      if (!step_by_frame_pointer(pid_, frame, regs, stack, caller, return_slot)) break;
    }
    const uint64_t pc = caller.value[kReturnAddress], sp = caller.value[kRsp];
    // Stacks grow down: a caller's frame is above its callee's, except across
    // a signal frame (the handler may run on an alternate stack).
    if (!caller.has(kRsp) || pc == 0 || (!frame.signal_frame && sp <= frame.sp) || !code_at(pc)) break;
    frame.cfa = found == StackFrame::Found::Cfi ? cfa : sp;  // a frame-pointer step: the slot above the return address
    const bool interrupted = frame.signal_frame;
    frames.push_back(StackFrame{pc, sp, return_slot, interrupted, false, found});
    // Found through a frame pointer, only rbp and rsp are known: the callee
    // may have saved and changed any other register without saying so, and
    // frames further out inherit that doubt.
    guessed |= found == StackFrame::Found::FramePointer;
    keep_registers(frames.back(), caller,
                   !guessed ? ~0u : found == StackFrame::Found::FramePointer ? (1u << kRbp | 1u << kRsp) : 1u << kRsp);
    regs = caller;
  }
  return frames;
}

}  // namespace graft
