#include "diff/continuation.h"

#include <algorithm>
#include <bitset>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "diff/frame_code.h"

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

  // `old_frame`, `new_frame`: the two versions read by read_code; `objects`:
  // the old frame's locals in memory (DWARF).
  Continuation run(uint64_t old_size, uint64_t new_size, const Result<Code>& old_frame, const Result<Code>& new_frame,
                   const std::vector<FrameObject>& objects, std::vector<CallVerdict>* verdicts) {
    Continuation c;
    auto refuse = [&](std::string why) {
      c.continuable = false;
      c.reason = std::move(why);
      c.returns.clear();
      if (verdicts) verdicts->clear();
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
    if (!old_frame || !new_frame) return refuse((!old_frame ? old_frame.error() : new_frame.error()).message);
    if (old_frame->ins.size() != old_code_.size() || new_frame->ins.size() != new_code_.size())
      return refuse("its code decodes differently in two passes");
    frame_ = &old_frame.value();
    flow();
    // What the new code may read from each return address on (the frame
    // layout is the same in both versions, so are its slots).
    const Liveness live = liveness(new_frame.value());
    const auto escaped = escaped_ranges(objects);
    std::string first_refused;
    size_t calls = 0;
    for (size_t k = 0; k < old_code_.size(); ++k) {
      if (!pairings_[k].call) continue;
      ++calls;
      CallVerdict v = verdict(k, live, escaped);
      if (v.continues) {
        const uint64_t back = at(k) + old_code_[k].ins.length;
        c.returns.emplace_back(back, back);
      } else if (first_refused.empty()) {
        first_refused = fmt::format("the call at +{:#x}: {}", at(k), v.why);
      }
      if (verdicts) verdicts->push_back(std::move(v));
    }
    if (c.returns.empty()) {
      auto calls_kept = verdicts ? std::move(*verdicts) : std::vector<CallVerdict>{};
      refuse(calls ? "no call in it can be returned into the new code: " + first_refused
                   : "it calls nothing (a thread in it is never waiting for a call)");
      if (verdicts) *verdicts = std::move(calls_kept);  // each call's reason stays for --explain
      return c;
    }
    c.continuable = true;
    if (!first_refused.empty())
      c.reason = fmt::format("{} of {} calls may not be returned into the new code: {}", calls - c.returns.size(),
                             calls, first_refused);
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

  // Where values computed from a difference may be before an instruction of
  // the old code (each with the first instruction that computed one), and
  // which registers and slots may hold an address inside the frame.
  struct Stale {
    std::map<ZydisRegister, size_t> registers;
    std::map<int64_t, size_t> slots;          // CFA-relative 8-byte slots
    std::optional<size_t> somewhere;          // written into the frame at a place not followed
    std::set<ZydisRegister> frame_addresses;  // registers that may point into the frame
    std::set<int64_t> frame_address_slots;    // kAnySlot: any slot may
    bool operator==(const Stale&) const = default;
  };
  static constexpr int64_t kAnySlot = std::numeric_limits<int64_t>::min();

  template <typename Map>
  static void keep_first(Map& into, const typename Map::key_type& key, size_t origin) {
    auto [it, added] = into.try_emplace(key, origin);
    if (!added) it->second = std::min(it->second, origin);
  }
  static void keep_first(std::optional<size_t>& into, std::optional<size_t> origin) {
    if (origin) into = into ? std::min(*into, *origin) : *origin;
  }

  static Stale merge(Stale a, const Stale& b) {
    for (const auto& [r, o] : b.registers) keep_first(a.registers, r, o);
    for (const auto& [s, o] : b.slots) keep_first(a.slots, s, o);
    keep_first(a.somewhere, b.somewhere);
    a.frame_addresses.insert(b.frame_addresses.begin(), b.frame_addresses.end());
    a.frame_address_slots.insert(b.frame_address_slots.begin(), b.frame_address_slots.end());
    return a;
  }

  // The CFA-relative place a memory operand of instruction k writes or reads
  // in the frame; nullopt: not in the frame; kAnySlot: in the frame, but where
  // is not followed (indexed, unknown depth, through a register that may hold
  // a frame address).
  std::optional<int64_t> frame_place(size_t k, const ZydisDecodedOperand& o, const Stale& s) const {
    const Instruction& i = old_code_[k];
    if (i.ins.mnemonic == ZYDIS_MNEMONIC_PUSH || i.ins.mnemonic == ZYDIS_MNEMONIC_POP) {
      if (!frame_->depth[k]) return kAnySlot;
      return i.ins.mnemonic == ZYDIS_MNEMONIC_PUSH ? -(*frame_->depth[k] + 8) : -*frame_->depth[k];
    }
    if (auto offset = frame_->frame_offset(k, o)) return *offset;
    if (frame_->frame_based(o) || s.frame_addresses.count(whole(o.mem.base)) || s.frame_addresses.count(whole(o.mem.index)))
      return kAnySlot;
    return std::nullopt;
  }

  // Forward analysis to a fixed point: what may be stale before each instruction.
  void flow() {
    const size_t n = old_code_.size();
    before_.assign(n, Stale{});
    std::vector<bool> queued(n, false), seen(n, false);
    std::vector<size_t> work;
    auto reach = [&](size_t j, const Stale& t) {
      Stale merged = merge(before_[j], t);
      if (seen[j] && merged == before_[j]) return;
      seen[j] = true;
      before_[j] = std::move(merged);
      if (!queued[j]) {
        queued[j] = true;
        work.push_back(j);
      }
    };
    if (n) reach(0, Stale{});
    while (!work.empty()) {
      const size_t k = work.back();
      work.pop_back();
      queued[k] = false;
      const Stale after = transfer(k, before_[k]);
      const Pairing& p = pairings_[k];
      if (p.any_successor)
        for (size_t j = 0; j < n; ++j) reach(j, after);
      for (size_t j : p.successors) reach(j, after);
    }
  }

  // The first stale origin among the argument registers, and whether one of them may point into the frame.
  std::pair<std::optional<size_t>, bool> arguments(const Stale& s) const {
    std::optional<size_t> stale;
    bool frame = false;
    for (auto r : kArguments) {
      if (auto it = s.registers.find(r); it != s.registers.end()) keep_first(stale, it->second);
      frame = frame || s.frame_addresses.count(r);
    }
    return {stale, frame};
  }

  Stale transfer(size_t k, const Stale& s) {
    const Instruction& i = old_code_[k];
    const Pairing& p = pairings_[k];
    if (p.call) {
      // Only callee-saved registers live on. The result may come from stale
      // arguments; a callee given a stale value and an address in the frame
      // may write one into the frame, unless it only reads through its arguments.
      Stale out;
      out.slots = s.slots;
      out.somewhere = s.somewhere;
      out.frame_address_slots = s.frame_address_slots;
      for (auto r : kKeptAcrossCall) {
        if (auto it = s.registers.find(r); it != s.registers.end()) out.registers.insert(*it);
        if (s.frame_addresses.count(r)) out.frame_addresses.insert(r);
      }
      const auto [stale, frame] = arguments(s);
      if (stale) out.registers[ZYDIS_REGISTER_RAX] = *stale;
      if (frame) out.frame_addresses.insert(ZYDIS_REGISTER_RAX);
      if (stale && frame && !only_reads_its_arguments(callee(k))) keep_first(out.somewhere, stale);
      return out;
    }
    Taint read, written, partly;
    registers(i, read, written, partly);
    // `xor %ebx,%ebx` and `sub %ebx,%ebx` make zero whatever was there.
    const bool zeroing = (i.ins.mnemonic == ZYDIS_MNEMONIC_XOR || i.ins.mnemonic == ZYDIS_MNEMONIC_SUB) &&
                         i.ins.operand_count_visible == 2 && i.ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
                         i.ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER && i.ops[0].reg.value == i.ops[1].reg.value;
    if (zeroing) read.reset();
    // What the instruction computes: stale if it uses a difference or reads a
    // stale register or slot; a frame address if it is computed from one.
    std::optional<size_t> value = p.stale ? std::optional<size_t>(k) : std::nullopt;
    for (const auto& [r, origin] : s.registers)
      if (read.test(r)) keep_first(value, origin);
    bool frame_address = false;
    for (uint8_t n = 0; n < i.ins.operand_count; ++n) {
      const ZydisDecodedOperand& o = i.ops[n];
      if (o.type == ZYDIS_OPERAND_TYPE_REGISTER && (o.actions & ZYDIS_OPERAND_ACTION_MASK_READ) && !zeroing &&
          (whole(o.reg.value) == ZYDIS_REGISTER_RSP || s.frame_addresses.count(whole(o.reg.value))) &&
          i.ins.mnemonic != ZYDIS_MNEMONIC_PUSH && i.ins.mnemonic != ZYDIS_MNEMONIC_POP)
        frame_address = true;
      if (o.type != ZYDIS_OPERAND_TYPE_MEMORY) continue;
      if (i.ins.mnemonic == ZYDIS_MNEMONIC_LEA) {
        if (frame_->frame_based(o) || s.frame_addresses.count(whole(o.mem.base)) || s.frame_addresses.count(whole(o.mem.index)))
          frame_address = true;
        continue;
      }
      if (!(o.actions & ZYDIS_OPERAND_ACTION_MASK_READ)) continue;
      const auto place = frame_place(k, o, s);
      if (!place) continue;
      if (*place == kAnySlot) {
        for (const auto& [slot, origin] : s.slots) keep_first(value, origin);
        keep_first(value, s.somewhere);
        frame_address = frame_address || !s.frame_address_slots.empty();
        continue;
      }
      keep_first(value, s.somewhere);
      frame_address = frame_address || s.frame_address_slots.count(kAnySlot);
      for (int64_t slot = slot_of(*place); slot <= slot_of(*place + std::max<int64_t>(o.size / 8, 1) - 1); ++slot) {
        if (auto it = s.slots.find(slot); it != s.slots.end()) keep_first(value, it->second);
        frame_address = frame_address || s.frame_address_slots.count(slot);
      }
    }
    Stale out = s;
    for (size_t r = 0; r < read.size(); ++r) {
      const auto reg = static_cast<ZydisRegister>(r);
      if (reg == ZYDIS_REGISTER_RSP || reg == ZYDIS_REGISTER_RIP || !(written.test(r) || partly.test(r))) continue;
      const bool replaced = written.test(r) || (zeroing && partly.test(r));  // a 32-bit xor clears the whole register
      if (value) {
        if (replaced) out.registers[reg] = *value;
        else keep_first(out.registers, reg, *value);
      } else if (replaced) {
        out.registers.erase(reg);
      }
      if (frame_address) out.frame_addresses.insert(reg);
      else if (replaced) out.frame_addresses.erase(reg);
    }
    // Stores into the frame.
    for (uint8_t n = 0; n < i.ins.operand_count; ++n) {
      const ZydisDecodedOperand& o = i.ops[n];
      if (o.type != ZYDIS_OPERAND_TYPE_MEMORY || !(o.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) ||
          i.ins.mnemonic == ZYDIS_MNEMONIC_LEA)
        continue;
      const auto place = frame_place(k, o, s);
      if (!place) continue;  // outside the frame: the data's business, as if the old code had finished first
      if (*place == kAnySlot) {
        keep_first(out.somewhere, value);
        if (frame_address) out.frame_address_slots.insert(kAnySlot);
        continue;
      }
      const int64_t size = std::max<int64_t>(o.size / 8, 1);
      const bool whole_slot = size == 8 && *place % 8 == 0 && o.actions == ZYDIS_OPERAND_ACTION_WRITE;
      for (int64_t slot = slot_of(*place); slot <= slot_of(*place + size - 1); ++slot) {
        if (value) {
          if (whole_slot) out.slots[slot] = *value;
          else keep_first(out.slots, slot, *value);
        } else if (whole_slot) {
          out.slots.erase(slot);
        }
        if (frame_address) out.frame_address_slots.insert(slot);
        else if (whole_slot) out.frame_address_slots.erase(slot);
      }
    }
    return out;
  }

  // The name of what call k calls, "" if it is indirect or unnamed.
  std::string callee(size_t k) const {
    const Instruction& i = old_code_[k];
    if (!i.ins.raw.imm[0].size) return "";
    const ElfRelocation* r = relocation_at(old_, old_ref_, i, i.ins.raw.imm[0].offset);
    if (!r) return "";
    auto target = resolve_target(old_, old_ref_, *r);
    return target && target->kind != Target::Anonymous ? target->name : "";
  }

  // Library calls that write nothing through the pointers they are given (a
  // frame buffer printed next to a stale format string stays as it was).
  static bool only_reads_its_arguments(const std::string& name) {
    static const std::set<std::string> kReaders = {
        "printf", "fprintf", "dprintf", "puts",   "fputs",   "fputc",   "putc",       "putchar",     "fwrite",
        "write",  "send",    "sendto",  "sendmsg", "writev", "strlen",  "strnlen",    "strcmp",      "strncmp",
        "strcasecmp", "strncasecmp", "memcmp", "strchr", "strrchr", "strstr", "atoi", "atol", "atoll", "perror",
        "syslog", "fflush", "getenv"};
    return kReaders.count(name) != 0;
  }

  // The CFA-relative byte ranges of the frame whose address the code takes
  // (a lea into the frame: the DWARF local there, or everything above it; the
  // stack or frame pointer copied: the whole frame). The code may read them
  // through a pointer anywhere, so they count as read after every call.
  std::vector<std::pair<int64_t, int64_t>> escaped_ranges(const std::vector<FrameObject>& objects) const {
    std::vector<std::pair<int64_t, int64_t>> out;
    constexpr int64_t kWholeFrame = std::numeric_limits<int32_t>::min();
    for (size_t k = 0; k < old_code_.size(); ++k) {
      const Instruction& i = old_code_[k];
      if (i.ins.mnemonic == ZYDIS_MNEMONIC_PUSH || i.ins.mnemonic == ZYDIS_MNEMONIC_POP) continue;
      for (uint8_t n = 0; n < i.ins.operand_count_visible; ++n) {
        const ZydisDecodedOperand& o = i.ops[n];
        if (i.ins.mnemonic == ZYDIS_MNEMONIC_LEA && o.type == ZYDIS_OPERAND_TYPE_MEMORY && frame_->frame_based(o)) {
          // lea into rsp itself (an epilogue) moves the stack, it takes no address.
          if (whole(i.ops[0].reg.value) == ZYDIS_REGISTER_RSP) continue;
          const auto at = frame_->frame_offset(k, o);
          if (!at) {
            out.emplace_back(kWholeFrame, 0);
            continue;
          }
          bool known = false;
          for (const auto& object : objects)
            if (auto start = frame_->place_offset(object.place); start && *start <= *at && *at < *start + static_cast<int64_t>(object.size)) {
              out.emplace_back(*start, *start + static_cast<int64_t>(object.size));
              known = true;
            }
          if (!known) out.emplace_back(*at, 0);
        }
        // The stack or frame pointer copied elsewhere (not the prologue's `mov %rsp,%rbp`, not a stack adjustment).
        if (o.type == ZYDIS_OPERAND_TYPE_REGISTER && (o.actions & ZYDIS_OPERAND_ACTION_MASK_READ) &&
            (whole(o.reg.value) == ZYDIS_REGISTER_RSP || (whole(o.reg.value) == ZYDIS_REGISTER_RBP && frame_->frame_pointer))) {
          const ZydisDecodedOperand& to = i.ops[0];
          const bool stays = to.type == ZYDIS_OPERAND_TYPE_REGISTER &&
                             (whole(to.reg.value) == ZYDIS_REGISTER_RSP || whole(to.reg.value) == ZYDIS_REGISTER_RBP);
          if (!stays && n != 0) out.emplace_back(kWholeFrame, 0);
        }
      }
    }
    return out;
  }

  std::string from(size_t origin) const { return fmt::format("computed at +{:#x}", at(origin)); }

  // Call k's verdict: may a frame waiting for it return into the new code?
  CallVerdict verdict(size_t k, const Liveness& live, const std::vector<std::pair<int64_t, int64_t>>& escaped) const {
    CallVerdict v{at(k), at(k) + old_code_[k].ins.length, callee(k), false, {}, std::nullopt};
    const Stale& s = before_[k];
    auto refuse = [&](size_t origin, std::string why) {
      v.why = std::move(why);
      v.blocking = at(origin);
      return v;
    };
    Taint read, written, partly;
    registers(old_code_[k], read, written, partly);
    for (const auto& [r, origin] : s.registers)
      if (read.test(r)) return refuse(origin, fmt::format("it calls through a value {} from a changed offset, constant or address", from(origin)));
    for (auto r : kArguments)
      if (auto it = s.registers.find(r); it != s.registers.end())
        return refuse(it->second, fmt::format("it passes in {} a value {} from a changed offset, constant or address "
                                              "(the call in progress keeps it)", name_of(r), from(it->second)));
    // Stack arguments sit at the bottom of the frame; how many the callee
    // takes is not known, so any stale value near rsp counts as one.
    constexpr int64_t kStackArgumentBytes = 128;
    for (const auto& [slot, origin] : s.slots)
      if (!frame_->depth[k] || (slot * 8 >= -*frame_->depth[k] && slot * 8 < -*frame_->depth[k] + kStackArgumentBytes))
        return refuse(origin, fmt::format("it may pass on the stack (CFA{:+#x}) a value {} from a changed offset, "
                                          "constant or address (the call in progress keeps it)", slot * 8, from(origin)));
    const size_t back = k + 1;
    if (back >= old_code_.size()) {
      v.why = "nothing follows it in the function";
      return v;
    }
    const uint16_t live_registers = live.registers[back];
    for (auto r : kKeptAcrossCall)
      if (auto it = s.registers.find(r); it != s.registers.end() && (live_registers >> dwarf_number(r) & 1))
        return refuse(it->second, fmt::format("{} keeps a value {} from a changed offset, constant or address, and the "
                                              "code after the call reads it", name_of(r), from(it->second)));
    auto escaped_slot = [&](int64_t slot) {
      return std::any_of(escaped.begin(), escaped.end(), [&](const auto& e) { return e.first < slot * 8 + 8 && slot * 8 < e.second; });
    };
    for (const auto& [slot, origin] : s.slots) {
      const char* how = live.slots[back].count(slot) ? "reads it"
                        : live.unknown_read[back]    ? "may read it (it reads its frame at a place graft does not follow)"
                        : escaped_slot(slot)         ? "may read it through a pointer (its address is taken)"
                                                     : nullptr;
      if (how)
        return refuse(origin, fmt::format("its frame keeps at CFA{:+#x} a value {} from a changed offset, constant or "
                                          "address, and the code after the call {}", slot * 8, from(origin), how));
    }
    if (s.somewhere && (!live.slots[back].empty() || live.unknown_read[back] || !escaped.empty()))
      return refuse(*s.somewhere, fmt::format("a value {} from a changed offset, constant or address was written into "
                                              "its frame at a place graft does not follow", from(*s.somewhere)));
    v.continues = true;
    return v;
  }

  const Build& old_;
  const Build& new_;
  SectionRef old_ref_, new_ref_;
  uint64_t old_entry_, new_entry_;
  const SameAddress& same_address_;
  std::vector<Instruction> old_code_, new_code_;
  std::vector<Pairing> pairings_;
  const Code* frame_ = nullptr;  // the old code's stack depths and frame pointer
  std::vector<Stale> before_;
};

}  // namespace

Continuation compare_for_continuation(const Build& old_build, const Definition& old_def, const Build& new_build,
                                      const Definition& new_def, const SameAddress& same_address,
                                      const std::vector<FrameObject>& objects, std::vector<CallVerdict>* calls) {
  const ElfSymbol& a = old_build.symbol(old_def.section.object, old_def.symbol);
  const ElfSymbol& b = new_build.symbol(new_def.section.object, new_def.symbol);
  Analysis analysis(old_build, old_def.section, a.value, new_build, new_def.section, b.value, same_address);
  if (calls) calls->clear();
  return analysis.run(a.size, b.size, read_code(old_build, old_def), read_code(new_build, new_def), objects, calls);
}

}  // namespace graft::diff
