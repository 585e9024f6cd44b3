#include "diff/continuation.h"

#include <bitset>
#include <optional>
#include <cstring>

namespace graft::diff {

Result<std::vector<Instruction>> decode(const ElfSection& section, uint64_t start, uint64_t size) {
  ZydisDecoder decoder;
  ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  std::vector<Instruction> out;
  if (start + size > section.data.size()) return make_error("its code lies outside its section");
  for (uint64_t at = start; at < start + size;) {
    Instruction i;
    i.offset = at;
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder, section.data.data() + at, start + size - at, &i.ins, i.ops)))
      return make_error("an instruction at +{:#x} cannot be decoded", at - start);
    at += i.ins.length;
    out.push_back(i);
  }
  return out;
}

ZydisRegister whole(ZydisRegister r) {
  const ZydisRegister w = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, r);
  return w == ZYDIS_REGISTER_NONE ? r : w;
}

namespace {

bool is_frame_register(ZydisRegister r) {
  r = whole(r);
  return r == ZYDIS_REGISTER_RSP || r == ZYDIS_REGISTER_RBP;
}

const char* name_of(ZydisRegister r) { return ZydisRegisterGetString(r); }
const char* name_of(ZydisMnemonic m) { return ZydisMnemonicGetString(m); }

using Taint = std::bitset<ZYDIS_REGISTER_MAX_VALUE + 1>;

// The registers a call may not keep or pass a stale value in: callee-saved
// ones live on after it; argument registers went to the callee in progress
// (al, for a variadic callee, is always a constant the caller just set).
constexpr ZydisRegister kKeptAcrossCall[] = {ZYDIS_REGISTER_RBX, ZYDIS_REGISTER_RBP, ZYDIS_REGISTER_R12,
                                             ZYDIS_REGISTER_R13, ZYDIS_REGISTER_R14, ZYDIS_REGISTER_R15};
constexpr ZydisRegister kArguments[] = {ZYDIS_REGISTER_RDI, ZYDIS_REGISTER_RSI, ZYDIS_REGISTER_RDX,
                                        ZYDIS_REGISTER_RCX, ZYDIS_REGISTER_R8,  ZYDIS_REGISTER_R9};

// How one instruction of the old code relates to its counterpart.
struct Pairing {
  bool stale = false;  // its result depends on a difference: an address or a constant of the old version
  std::vector<size_t> successors;
  bool call = false;
  bool any_successor = false;  // an indirect jump: anywhere in the function
};

class Analysis {
 public:
  Analysis(const Build& old_build, SectionRef old_ref, uint64_t old_entry, const Build& new_build,
           SectionRef new_ref, uint64_t new_entry, const SameAddress& same_address)
      : old_(old_build), new_(new_build), old_ref_(old_ref), new_ref_(new_ref), old_entry_(old_entry),
        new_entry_(new_entry), same_address_(same_address) {}

  Continuation run(uint64_t old_size, uint64_t new_size) {
    Continuation c;
    auto refuse = [&](std::string why) {
      c.continuable = false;
      c.reason = std::move(why);
      c.returns.clear();
      return c;
    };
    if (old_size != new_size) return refuse(fmt::format("its code changes length ({} -> {} bytes)", old_size, new_size));
    auto a = decode(old_.section(old_ref_), old_entry_, old_size);
    if (!a) return refuse(a.error().message);
    auto b = decode(new_.section(new_ref_), new_entry_, new_size);
    if (!b) return refuse(b.error().message);
    old_code_ = std::move(*a);
    new_code_ = std::move(*b);
    for (size_t k = 0; k < old_code_.size(); ++k) {
      if (k >= new_code_.size() || old_code_[k].offset - old_entry_ != new_code_[k].offset - new_entry_)
        return refuse(fmt::format("its instructions no longer start at the same places (from +{:#x})", at(k)));
      auto pairing = pair(k);
      if (!pairing) return refuse(pairing.error().message);
      pairings_.push_back(std::move(*pairing));
    }
    if (new_code_.size() != old_code_.size()) return refuse("its instructions no longer start at the same places");
    flow();
    if (frame_written_) return refuse(*frame_written_);
    std::string first_stale;
    size_t calls = 0;
    for (size_t k = 0; k < old_code_.size(); ++k) {
      if (!pairings_[k].call) continue;
      ++calls;
      const uint64_t back = at(k) + old_code_[k].ins.length;
      if (auto stale = stale_across_call(k)) {
        if (first_stale.empty()) first_stale = fmt::format("the call at +{:#x} {}", at(k), *stale);
        continue;
      }
      c.returns.emplace_back(back, back);
    }
    if (c.returns.empty())
      return refuse(calls ? "no call in it can be returned into the new code: " + first_stale
                          : "it calls nothing (a thread in it is never waiting for a call)");
    c.continuable = true;
    if (!first_stale.empty())
      c.reason = fmt::format("{} of {} calls may not be returned into the new code: {}", calls - c.returns.size(),
                             calls, first_stale);
    return c;
  }

 private:
  uint64_t at(size_t k) const { return old_code_[k].offset - old_entry_; }

  // A relocation exactly at `field` bytes into instruction `i`, if any.
  static const ElfRelocation* relocation_at(const Build& build, SectionRef ref, const Instruction& i, uint8_t field) {
    for (const auto& r : build.relocations(ref))
      if (r.offset == i.offset + field) return &r;
    return nullptr;
  }

  static bool relocation_inside(const Build& build, SectionRef ref, const Instruction& i) {
    for (const auto& r : build.relocations(ref))
      if (r.offset >= i.offset && r.offset < i.offset + i.ins.length) return true;
    return false;
  }

  // A field (displacement or immediate) of the pair: equal, relocated to the
  // same address, or different.
  enum class Field { Equal, Moves, Differs };
  Result<Field> field(size_t k, uint8_t offset, uint8_t bits) {
    const Instruction& a = old_code_[k];
    const Instruction& b = new_code_[k];
    const ElfRelocation* ra = relocation_at(old_, old_ref_, a, offset);
    const ElfRelocation* rb = relocation_at(new_, new_ref_, b, offset);
    if (ra || rb) {
      if (!ra || !rb || ra->type != rb->type) return Field::Moves;
      auto ta = resolve_target(old_, old_ref_, *ra);
      auto tb = resolve_target(new_, new_ref_, *rb);
      if (!ta || !tb) return make_error("at +{:#x}: {}", at(k), (!ta ? ta.error() : tb.error()).message);
      return same_address_(*ta, *tb, ra->type) ? Field::Equal : Field::Moves;
    }
    const size_t bytes = bits / 8;
    return std::memcmp(old_.section(old_ref_).data.data() + a.offset + offset,
                       new_.section(new_ref_).data.data() + b.offset + offset, bytes) == 0
               ? Field::Equal
               : Field::Differs;
  }

  // Checks that instruction k is the same instruction in both versions, up
  // to what continuation allows, and says whether its result is stale.
  Result<Pairing> pair(size_t k) {
    const Instruction& a = old_code_[k];
    const Instruction& b = new_code_[k];
    const uint64_t where = at(k);
    auto differ = [&](std::string what) -> Result<Pairing> {
      return make_error("at +{:#x} {}", where, what);
    };
    if (a.ins.mnemonic != b.ins.mnemonic)
      return differ(fmt::format("the instruction changes ({} -> {})", name_of(a.ins.mnemonic), name_of(b.ins.mnemonic)));
    if (a.ins.length != b.ins.length || a.ins.operand_count != b.ins.operand_count ||
        a.ins.attributes != b.ins.attributes || a.ins.operand_width != b.ins.operand_width)
      return differ(fmt::format("the {} changes its form", name_of(a.ins.mnemonic)));
    // The encoding outside the displacement and immediate fields must be equal.
    std::vector<bool> field_byte(a.ins.length, false);
    auto mark = [&](uint8_t offset, uint8_t bits) {
      for (uint8_t i = 0; i < bits / 8 && offset + i < a.ins.length; ++i) field_byte[offset + i] = true;
    };
    if (a.ins.raw.disp.size) mark(a.ins.raw.disp.offset, a.ins.raw.disp.size);
    for (const auto& imm : a.ins.raw.imm)
      if (imm.size) mark(imm.offset, imm.size);
    const uint8_t* pa = old_.section(old_ref_).data.data() + a.offset;
    const uint8_t* pb = new_.section(new_ref_).data.data() + b.offset;
    for (size_t i = 0; i < a.ins.length; ++i)
      if (!field_byte[i] && pa[i] != pb[i]) return differ(fmt::format("the {} changes its operands", name_of(a.ins.mnemonic)));
    // A relocation must cover a whole field, or we cannot tell what it changes.
    for (const auto* build : {&old_, &new_}) {
      const Instruction& i = build == &old_ ? a : b;
      const SectionRef ref = build == &old_ ? old_ref_ : new_ref_;
      for (const auto& r : build->relocations(ref)) {
        if (r.offset < i.offset || r.offset >= i.offset + i.ins.length) continue;
        const uint64_t f = r.offset - i.offset;
        const bool is_field = (i.ins.raw.disp.size && f == i.ins.raw.disp.offset) ||
                              (i.ins.raw.imm[0].size && f == i.ins.raw.imm[0].offset) ||
                              (i.ins.raw.imm[1].size && f == i.ins.raw.imm[1].offset);
        if (!is_field) return differ(fmt::format("a relocation inside the {} covers no whole field", name_of(i.ins.mnemonic)));
      }
    }

    Pairing p;
    bool writes_frame_register = false;
    size_t immediate = 0;
    for (uint8_t n = 0; n < a.ins.operand_count; ++n) {
      const ZydisDecodedOperand& x = a.ops[n];
      const ZydisDecodedOperand& y = b.ops[n];
      if (x.type != y.type || x.size != y.size || x.visibility != y.visibility || x.actions != y.actions)
        return differ(fmt::format("the {} changes its operands", name_of(a.ins.mnemonic)));
      switch (x.type) {
        case ZYDIS_OPERAND_TYPE_REGISTER:
          if (x.reg.value != y.reg.value) return differ(fmt::format("the {} uses other registers", name_of(a.ins.mnemonic)));
          if ((x.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) && is_frame_register(x.reg.value)) writes_frame_register = true;
          break;
        case ZYDIS_OPERAND_TYPE_MEMORY: {
          if (x.mem.type != y.mem.type || x.mem.base != y.mem.base || x.mem.index != y.mem.index ||
              x.mem.scale != y.mem.scale || x.mem.segment != y.mem.segment ||
              x.mem.disp.has_displacement != y.mem.disp.has_displacement)
            return differ(fmt::format("the {} addresses memory differently", name_of(a.ins.mnemonic)));
          if (!x.mem.disp.has_displacement || !a.ins.raw.disp.size) break;
          GRAFT_ASSIGN(Field f, field(k, a.ins.raw.disp.offset, a.ins.raw.disp.size));
          if (f == Field::Equal) break;
          if (is_frame_register(x.mem.base) || is_frame_register(x.mem.index))
            return differ(fmt::format("the frame layout changes (the {} uses another stack offset)", name_of(a.ins.mnemonic)));
          if (whole(x.mem.base) == ZYDIS_REGISTER_RIP && f == Field::Differs)
            return differ(fmt::format("the {} refers to other code or data", name_of(a.ins.mnemonic)));
          // A field at its old offset, or a global at its old place: an
          // address of the old version. Loading a value through it is fine
          // (memory is in the old layout until the commit); computing an
          // address (lea) or reading a moved global is not.
          if (a.ins.mnemonic == ZYDIS_MNEMONIC_LEA || f == Field::Moves) p.stale = true;
          break;
        }
        case ZYDIS_OPERAND_TYPE_IMMEDIATE: {
          const size_t slot = immediate++;
          if (x.imm.is_relative != y.imm.is_relative) return differ(fmt::format("the {} changes", name_of(a.ins.mnemonic)));
          if (slot >= 2 || !a.ins.raw.imm[slot].size) break;
          GRAFT_ASSIGN(Field f, field(k, a.ins.raw.imm[slot].offset, a.ins.raw.imm[slot].size));
          const bool relocated = relocation_inside(old_, old_ref_, a) || relocation_inside(new_, new_ref_, b);
          if (x.imm.is_relative) {
            // A branch inside the function must go to the same place; a
            // call or jump to another function (relocated) may go elsewhere.
            if (!relocated && f != Field::Equal)
              return differ(fmt::format("the {} goes elsewhere", name_of(a.ins.mnemonic)));
            break;
          }
          if (f != Field::Equal) p.stale = true;
          break;
        }
        default:
          if (std::memcmp(&x, &y, sizeof x) != 0) return differ(fmt::format("the {} changes", name_of(a.ins.mnemonic)));
      }
    }
    if (p.stale && writes_frame_register)
      return differ(fmt::format("the frame layout changes (the {} adjusts the stack by another amount)", name_of(a.ins.mnemonic)));

    // Where control goes next.
    const size_t next = k + 1;
    auto branch_target = [&]() -> std::optional<size_t> {
      for (uint8_t n = 0; n < a.ins.operand_count; ++n)
        if (a.ops[n].type == ZYDIS_OPERAND_TYPE_IMMEDIATE && a.ops[n].imm.is_relative) {
          if (relocation_inside(old_, old_ref_, a)) return std::nullopt;  // to another function
          const uint64_t target = a.offset + a.ins.length + static_cast<uint64_t>(a.ops[n].imm.value.s);
          for (size_t j = 0; j < old_code_.size(); ++j)
            if (old_code_[j].offset == target) return j;
          return std::nullopt;  // outside the function
        }
      return std::nullopt;
    };
    const bool register_target = std::any_of(a.ops, a.ops + a.ins.operand_count_visible, [](const ZydisDecodedOperand& o) {
      return o.type == ZYDIS_OPERAND_TYPE_REGISTER || o.type == ZYDIS_OPERAND_TYPE_MEMORY;
    });
    switch (a.ins.meta.category) {
      case ZYDIS_CATEGORY_RET:
        break;
      case ZYDIS_CATEGORY_UNCOND_BR:
        if (register_target) p.any_successor = true;  // a jump table: anywhere (a tail call: nowhere, covered)
        else if (auto t = branch_target()) p.successors.push_back(*t);
        break;
      case ZYDIS_CATEGORY_COND_BR:
        if (auto t = branch_target()) p.successors.push_back(*t);
        if (next < old_code_.size()) p.successors.push_back(next);
        break;
      case ZYDIS_CATEGORY_CALL:
        p.call = true;
        if (next < old_code_.size()) p.successors.push_back(next);
        break;
      default:
        if (a.ins.mnemonic == ZYDIS_MNEMONIC_UD2 || a.ins.mnemonic == ZYDIS_MNEMONIC_HLT) break;
        if (next < old_code_.size()) p.successors.push_back(next);
    }
    return p;
  }

  // The registers an instruction reads (operands, and the registers that
  // form its memory addresses) and writes.
  static void registers(const Instruction& i, Taint& read, Taint& written, Taint& partly_written) {
    for (uint8_t n = 0; n < i.ins.operand_count; ++n) {
      const ZydisDecodedOperand& o = i.ops[n];
      if (o.type == ZYDIS_OPERAND_TYPE_REGISTER) {
        const ZydisRegister r = whole(o.reg.value);
        if (o.actions & ZYDIS_OPERAND_ACTION_MASK_READ) read.set(r);
        if (o.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) {
          // Writing 32 or 64 bits of a general register replaces all of it.
          const bool gpr = ZydisRegisterGetClass(o.reg.value) == ZYDIS_REGCLASS_GPR64 ||
                           ZydisRegisterGetClass(o.reg.value) == ZYDIS_REGCLASS_GPR32;
          if (gpr && o.actions == ZYDIS_OPERAND_ACTION_WRITE) written.set(r);
          else partly_written.set(r);
        }
      } else if (o.type == ZYDIS_OPERAND_TYPE_MEMORY) {
        if (o.mem.base != ZYDIS_REGISTER_NONE) read.set(whole(o.mem.base));
        if (o.mem.index != ZYDIS_REGISTER_NONE) read.set(whole(o.mem.index));
      }
    }
    for (auto never : {ZYDIS_REGISTER_RSP, ZYDIS_REGISTER_RIP}) read.reset(never);
  }

  // Forward taint analysis to a fixed point: which registers may hold a
  // stale value before each instruction.
  void flow() {
    const size_t n = old_code_.size();
    before_.assign(n, Taint{});
    std::vector<bool> queued(n, false), seen(n, false);
    std::vector<size_t> work;
    auto reach = [&](size_t j, const Taint& t) {
      const Taint merged = before_[j] | t;
      if (seen[j] && merged == before_[j]) return;
      seen[j] = true;
      before_[j] = merged;
      if (!queued[j]) {
        queued[j] = true;
        work.push_back(j);
      }
    };
    if (n) reach(0, Taint{});
    while (!work.empty()) {
      const size_t k = work.back();
      work.pop_back();
      queued[k] = false;
      const Taint after = transfer(k, before_[k]);
      const Pairing& p = pairings_[k];
      if (p.any_successor)
        for (size_t j = 0; j < n; ++j) reach(j, after);
      for (size_t j : p.successors) reach(j, after);
    }
  }

  Taint transfer(size_t k, Taint t) {
    const Instruction& i = old_code_[k];
    const Pairing& p = pairings_[k];
    if (p.call) {
      // Only callee-saved registers live on; the rest is the callee's.
      Taint kept;
      for (auto r : kKeptAcrossCall) kept.set(r);
      return t & kept;
    }
    Taint read, written, partly;
    registers(i, read, written, partly);
    // `xor %ebx,%ebx` and `sub %ebx,%ebx` make zero whatever was there.
    const bool zeroing = (i.ins.mnemonic == ZYDIS_MNEMONIC_XOR || i.ins.mnemonic == ZYDIS_MNEMONIC_SUB) &&
                         i.ins.operand_count_visible == 2 && i.ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
                         i.ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER && i.ops[0].reg.value == i.ops[1].reg.value;
    if (zeroing) read.reset();
    const bool stale = p.stale || (read & t).any();
    if (stale) {
      // A stale value stored in the frame would outlive any call.
      for (uint8_t n = 0; n < i.ins.operand_count; ++n) {
        const ZydisDecodedOperand& o = i.ops[n];
        const bool frame = (o.type == ZYDIS_OPERAND_TYPE_MEMORY && is_frame_register(o.mem.base)) ||
                           (o.type == ZYDIS_OPERAND_TYPE_REGISTER && is_frame_register(o.reg.value));
        if (frame && (o.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) && !frame_written_)
          frame_written_ = fmt::format("at +{:#x} a value computed from a changed offset, constant or address is "
                                       "kept in its frame ({})", at(k), name_of(i.ins.mnemonic));
      }
      t |= written | partly;
    } else {
      t &= ~written;
      if (zeroing) t &= ~partly;  // a 32-bit xor clears the whole register
    }
    return t;
  }

  // Why a frame may not return from call k into the new code, if it may not.
  std::optional<std::string> stale_across_call(size_t k) const {
    const Instruction& i = old_code_[k];
    Taint read, written, partly;
    registers(i, read, written, partly);
    const Taint& t = before_[k];
    if ((read & t).any()) return std::string("calls through an address computed from a changed offset or constant");
    for (auto r : kKeptAcrossCall)
      if (t.test(r)) return fmt::format("keeps a value computed from a changed offset, constant or address in {}", name_of(r));
    for (auto r : kArguments)
      if (t.test(r)) return fmt::format("may pass a value computed from a changed offset, constant or address in {}", name_of(r));
    return std::nullopt;
  }

  const Build& old_;
  const Build& new_;
  SectionRef old_ref_, new_ref_;
  uint64_t old_entry_, new_entry_;
  const SameAddress& same_address_;
  std::vector<Instruction> old_code_, new_code_;
  std::vector<Pairing> pairings_;
  std::vector<Taint> before_;
  std::optional<std::string> frame_written_;
};

}  // namespace

Continuation compare_for_continuation(const Build& old_build, const Definition& old_def, const Build& new_build,
                                      const Definition& new_def, const SameAddress& same_address) {
  const ElfSymbol& a = old_build.symbol(old_def.section.object, old_def.symbol);
  const ElfSymbol& b = new_build.symbol(new_def.section.object, new_def.symbol);
  Analysis analysis(old_build, old_def.section, a.value, new_build, new_def.section, b.value, same_address);
  return analysis.run(a.size, b.size);
}

}  // namespace graft::diff
