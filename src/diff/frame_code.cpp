#include "diff/frame_code.h"

#include <elf.h>

#include <algorithm>
#include <map>
#include <set>

#include "diff/compare.h"
#include "diff/continuation.h"
#include "patch/relocation.h"

namespace graft::diff {

std::optional<size_t> Code::index_of(uint64_t offset) const {
  for (size_t k = 0; k < ins.size(); ++k)
    if (at(k) == offset) return k;
  return std::nullopt;
}

std::optional<int64_t> Code::frame_offset(size_t k, const ZydisDecodedOperand& o) const {
  if (o.type != ZYDIS_OPERAND_TYPE_MEMORY || o.mem.index != ZYDIS_REGISTER_NONE) return std::nullopt;
  const int base = dwarf_number(o.mem.base);
  if (base == kRbp && frame_pointer) return -16 + o.mem.disp.value;
  if (base == kRsp && depth[k]) return -*depth[k] + o.mem.disp.value;
  return std::nullopt;
}

std::optional<int64_t> Code::place_offset(const LocalPlace& place, std::optional<size_t> k) const {
  if (place.kind == LocalPlace::Kind::AtCfaOffset) return place.offset;
  if (place.kind != LocalPlace::Kind::AtRegisterOffset) return std::nullopt;
  if (place.reg == kRbp && frame_pointer) return -16 + place.offset;
  if (place.reg == kRsp && k && depth[*k]) return -*depth[*k] + place.offset;
  return std::nullopt;
}

bool Code::frame_based(const ZydisDecodedOperand& o) const {
  if (o.type != ZYDIS_OPERAND_TYPE_MEMORY) return false;
  const int base = dwarf_number(o.mem.base), index = dwarf_number(o.mem.index);
  return base == kRsp || (base == kRbp && frame_pointer) || index == kRsp || (index == kRbp && frame_pointer);
}

// DWARF's number of a general register (rax rdx rcx rbx rsi rdi rbp rsp r8-r15), or -1.
int dwarf_number(ZydisRegister r) {
  switch (whole(r)) {
    case ZYDIS_REGISTER_RAX: return 0;
    case ZYDIS_REGISTER_RDX: return 1;
    case ZYDIS_REGISTER_RCX: return 2;
    case ZYDIS_REGISTER_RBX: return 3;
    case ZYDIS_REGISTER_RSI: return 4;
    case ZYDIS_REGISTER_RDI: return 5;
    case ZYDIS_REGISTER_RBP: return 6;
    case ZYDIS_REGISTER_RSP: return 7;
    default: break;
  }
  const ZydisRegister w = whole(r);
  if (w >= ZYDIS_REGISTER_R8 && w <= ZYDIS_REGISTER_R15) return 8 + (w - ZYDIS_REGISTER_R8);
  return -1;
}

bool is_callee_saved(int reg) { return std::find(std::begin(kCalleeSaved), std::end(kCalleeSaved), reg) != std::end(kCalleeSaved); }

namespace {

// C library functions that never return to their caller.
const std::set<std::string> kLibraryNoReturn = {
    "exit", "_exit", "_Exit", "quick_exit", "abort", "__stack_chk_fail", "__assert_fail", "__assert_perror_fail",
    "__fortify_fail", "__chk_fail", "err", "errx", "verr", "verrx", "longjmp", "_longjmp", "siglongjmp",
    "__longjmp_chk", "pthread_exit"};

// Whether a call to `callee` (as Code::callees names it) never comes back:
// a C library function that never returns, or a function of the build with
// no return instruction and no jump out of itself (control cannot come back
// but by longjmp), as compilers find for a `usage()` that ends in exit(1)
// without being declared noreturn. The instruction after such a call is not
// its successor: the compiler put the next block there, and a path through
// the call into it (with the call's arguments still pushed) does not exist.
bool never_returns(const Build& build, const std::string& callee) {
  if (kLibraryNoReturn.count(callee)) return true;
  const Definition* d = build.find(callee);
  if (!d || !d->function) return false;
  const ElfSymbol& symbol = build.symbol(d->section.object, d->symbol);
  auto ins = decode(build.section(d->section), symbol.value, symbol.size);
  if (!ins || ins->empty()) return false;
  std::vector<uint64_t> relocated;  // where relocations apply, sorted
  for (const auto& r : build.relocations(d->section)) relocated.push_back(r.offset);
  std::sort(relocated.begin(), relocated.end());
  auto has_relocation = [&](const Instruction& i) {
    auto it = std::lower_bound(relocated.begin(), relocated.end(), i.offset);
    return it != relocated.end() && *it < i.offset + i.ins.length;
  };
  for (const auto& i : *ins) {
    const auto category = i.ins.meta.category;
    if (category == ZYDIS_CATEGORY_RET) return false;
    if (category != ZYDIS_CATEGORY_UNCOND_BR && category != ZYDIS_CATEGORY_COND_BR) continue;
    if (i.ins.operand_count_visible == 0 || i.ops[0].type != ZYDIS_OPERAND_TYPE_IMMEDIATE || has_relocation(i))
      return false;  // indirect, or to another function (a tail call)
    const uint64_t to = i.offset + i.ins.length + static_cast<uint64_t>(i.ops[0].imm.value.s);
    if (to < symbol.value || to >= symbol.value + symbol.size) return false;
  }
  return true;
}

}  // namespace

Result<Code> read_code(const Build& build, const Definition& def) {
  const ElfSymbol& symbol = build.symbol(def.section.object, def.symbol);
  Code code;
  code.entry = symbol.value;
  GRAFT_ASSIGN(code.ins, decode(build.section(def.section), symbol.value, symbol.size));
  const size_t n = code.ins.size();
  code.successors.resize(n);
  code.anywhere.assign(n, false);
  code.leaves.assign(n, false);
  code.callees.assign(n, "");
  code.tail_callees.assign(n, "");
  code.refs.assign(n, std::nullopt);
  code.relocated.assign(n, false);
  // Each relocation to the instruction it lies in (the last one of an instruction counts).
  for (const auto& r : build.relocations(def.section)) {
    auto at = std::upper_bound(code.ins.begin(), code.ins.end(), r.offset,
                               [](uint64_t offset, const Instruction& i) { return offset < i.offset; });
    if (at == code.ins.begin()) continue;
    const Instruction& i = *(at - 1);
    if (r.offset >= i.offset + i.ins.length) continue;
    const size_t k = static_cast<size_t>(at - 1 - code.ins.begin());
    code.relocated[k] = true;
    if (auto t = resolve_target(build, def.section, r)) {
      const int64_t correction = relocation_is_pc_relative(r.type) ? static_cast<int64_t>(i.offset + i.ins.length - r.offset) : 0;
      code.refs[k] = Code::Reference{*t, r.offset, t->offset + correction, relocation_is_got_load(r.type)};
    }
  }
  // A direct call's or jump's target, from the relocation of its immediate.
  auto named_target = [&](size_t k) -> std::string {
    const Instruction& i = code.ins[k];
    const auto& ref = code.refs[k];
    return ref && ref->field == i.offset + i.ins.raw.imm[0].offset && ref->target.kind != Target::Anonymous
               ? ref->target.name : "";
  };
  for (size_t k = 0; k < n; ++k) {
    const Instruction& i = code.ins[k];
    auto target = [&]() -> std::optional<size_t> {
      for (uint8_t o = 0; o < i.ins.operand_count_visible; ++o)
        if (i.ops[o].type == ZYDIS_OPERAND_TYPE_IMMEDIATE && i.ops[o].imm.is_relative && !code.relocated[k])
          return code.index_of(i.offset + i.ins.length + static_cast<uint64_t>(i.ops[o].imm.value.s) - code.entry);
      return std::nullopt;
    };
    const bool indirect = i.ins.operand_count_visible > 0 && i.ops[0].type != ZYDIS_OPERAND_TYPE_IMMEDIATE;
    switch (i.ins.meta.category) {
      case ZYDIS_CATEGORY_RET: break;
      case ZYDIS_CATEGORY_UNCOND_BR:
        if (indirect) code.anywhere[k] = true;
        else if (auto t = target()) code.successors[k].push_back(*t);
        else {
          code.leaves[k] = true;
          code.tail_callees[k] = named_target(k);
        }
        break;
      case ZYDIS_CATEGORY_COND_BR:
        if (auto t = target()) code.successors[k].push_back(*t);
        else code.leaves[k] = true;
        if (k + 1 < n) code.successors[k].push_back(k + 1);
        break;
      case ZYDIS_CATEGORY_CALL:
        if (!indirect) code.callees[k] = named_target(k);
        if (k + 1 < n && (code.callees[k].empty() || !never_returns(build, code.callees[k])))
          code.successors[k].push_back(k + 1);
        break;
      default:
        if (i.ins.mnemonic == ZYDIS_MNEMONIC_UD2 || i.ins.mnemonic == ZYDIS_MNEMONIC_HLT) break;
        if (k + 1 < n) code.successors[k].push_back(k + 1);
    }
  }
  // Switches: each indirect jump through a jump table goes where its table
  // says. All of them or none: one left going anywhere may enter another's
  // pattern midway.
  std::vector<std::pair<size_t, std::vector<size_t>>> tables;
  bool all_tables = true;
  for (size_t k = 0; k < n && all_tables; ++k)
    if (code.anywhere[k]) {
      auto cases = jump_table_cases(build, def, code, k);
      if (cases.empty()) all_tables = false;
      else tables.emplace_back(k, std::move(cases));
    }
  if (all_tables)
    for (auto& [k, targets] : tables) {
      code.anywhere[k] = false;
      code.successors[k] = std::move(targets);
    }
  // The prologue: the entry's NOP, pushes and `mov %rsp,%rbp`, and between
  // them what gcc schedules there that neither touches the stack or frame
  // pointer nor leaves straight-line code (`push %rbp; lea .LC0(%rip),%rdi;
  // mov %rsp,%rbp; push %r12; lea .LC1(%rip),%r12; push %rbx`).
  int64_t depth = 8;
  bool rbp_set_at_prologue = false;
  auto scheduled_in = [](const Instruction& i) {
    switch (i.ins.meta.category) {
      case ZYDIS_CATEGORY_CALL: case ZYDIS_CATEGORY_COND_BR: case ZYDIS_CATEGORY_UNCOND_BR:
      case ZYDIS_CATEGORY_RET: case ZYDIS_CATEGORY_PUSH: case ZYDIS_CATEGORY_POP: return false;
      default: break;
    }
    for (uint8_t o = 0; o < i.ins.operand_count; ++o) {
      const ZydisDecodedOperand& op = i.ops[o];
      const int reg = op.type == ZYDIS_OPERAND_TYPE_REGISTER ? dwarf_number(op.reg.value) : -1;
      const bool frame_memory = op.type == ZYDIS_OPERAND_TYPE_MEMORY &&
                                (dwarf_number(op.mem.base) == kRsp || dwarf_number(op.mem.base) == kRbp ||
                                 dwarf_number(op.mem.index) == kRsp || dwarf_number(op.mem.index) == kRbp);
      if (reg == kRsp || reg == kRbp || frame_memory) return false;
    }
    return true;
  };
  for (size_t k = 0; k < n; ++k) {
    const Instruction& i = code.ins[k];
    if (i.ins.mnemonic == ZYDIS_MNEMONIC_NOP || (i.ins.mnemonic == ZYDIS_MNEMONIC_XCHG && k == 0)) continue;
    if (i.ins.mnemonic == ZYDIS_MNEMONIC_PUSH && i.ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER) {
      depth += 8;
      const int reg = dwarf_number(i.ops[0].reg.value);
      if (is_callee_saved(reg) && !code.saves.count(reg)) code.saves[reg] = -depth;
      continue;
    }
    if (i.ins.mnemonic == ZYDIS_MNEMONIC_MOV && i.ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
        i.ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER && dwarf_number(i.ops[0].reg.value) == kRbp &&
        dwarf_number(i.ops[1].reg.value) == kRsp && depth == 16 && code.saves.count(kRbp)) {
      rbp_set_at_prologue = true;
      continue;
    }
    if (code.saves.count(kRbp) && scheduled_in(i)) continue;
    break;
  }
  // rbp stays the frame pointer if nothing else writes it but the epilogue.
  code.frame_pointer = rbp_set_at_prologue;
  bool first_mov = true;
  for (const auto& i : code.ins) {
    if (i.ins.mnemonic == ZYDIS_MNEMONIC_POP || i.ins.mnemonic == ZYDIS_MNEMONIC_LEAVE) continue;
    for (uint8_t o = 0; o < i.ins.operand_count; ++o)
      if (i.ops[o].type == ZYDIS_OPERAND_TYPE_REGISTER && dwarf_number(i.ops[o].reg.value) == kRbp &&
          (i.ops[o].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE)) {
        if (i.ins.mnemonic == ZYDIS_MNEMONIC_MOV && first_mov && rbp_set_at_prologue) first_mov = false;
        else code.frame_pointer = false;
      }
  }
  // The stack depth before each instruction, along the control flow. Where
  // it cannot be followed (rsp set otherwise, paths that disagree) it is
  // unknown from there on; the first such place is the code's problem. An
  // indirect jump gives no depth to its targets: they stay unknown unless
  // another path reaches them.
  code.depth.assign(n, std::nullopt);
  auto note = [&](std::string why) {
    if (code.problem.empty()) code.problem = std::move(why);
  };
  std::vector<size_t> work, unknown_from;
  if (n) {
    code.depth[0] = 8;
    work.push_back(0);
  }
  while (!work.empty()) {
    const size_t k = work.back();
    work.pop_back();
    const Instruction& i = code.ins[k];
    std::optional<int64_t> d = *code.depth[k];
    const bool writes_rsp = std::any_of(i.ops, i.ops + i.ins.operand_count_visible, [](const ZydisDecodedOperand& o) {
      return o.type == ZYDIS_OPERAND_TYPE_REGISTER && dwarf_number(o.reg.value) == kRsp &&
             (o.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE);
    });
    if (i.ins.mnemonic == ZYDIS_MNEMONIC_PUSH) *d += 8;
    else if (i.ins.mnemonic == ZYDIS_MNEMONIC_POP) *d -= 8;
    else if (i.ins.mnemonic == ZYDIS_MNEMONIC_LEAVE && code.frame_pointer) d = 8;
    else if (writes_rsp) {
      const auto& src = i.ops[1];
      if ((i.ins.mnemonic == ZYDIS_MNEMONIC_SUB || i.ins.mnemonic == ZYDIS_MNEMONIC_ADD) &&
          src.type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
        *d += i.ins.mnemonic == ZYDIS_MNEMONIC_SUB ? src.imm.value.s : -src.imm.value.s;
      else if (i.ins.mnemonic == ZYDIS_MNEMONIC_LEA && dwarf_number(src.mem.base) == kRbp && code.frame_pointer &&
               src.mem.index == ZYDIS_REGISTER_NONE)
        d = 16 - src.mem.disp.value;
      else if (i.ins.mnemonic == ZYDIS_MNEMONIC_MOV && src.type == ZYDIS_OPERAND_TYPE_REGISTER &&
               dwarf_number(src.reg.value) == kRbp && code.frame_pointer)
        d = 16;
      else {
        note(fmt::format("at +{:#x} the stack pointer is set in a way graft does not follow", code.at(k)));
        d.reset();
      }
    }
    if (code.anywhere[k]) note(fmt::format("at +{:#x} an indirect jump (graft follows no jump table here)", code.at(k)));
    for (size_t j : code.successors[k]) {
      if (!d) {
        unknown_from.push_back(j);
      } else if (!code.depth[j]) {
        code.depth[j] = d;
        work.push_back(j);
      } else if (*code.depth[j] != *d) {
        note(fmt::format("the stack depth at +{:#x} differs between paths", code.at(j)));
        unknown_from.push_back(j);
      }
    }
  }
  // Everything after a place of unknown depth has an unknown depth.
  std::vector<bool> unknown(n, false);
  while (!unknown_from.empty()) {
    const size_t k = unknown_from.back();
    unknown_from.pop_back();
    if (unknown[k]) continue;
    unknown[k] = true;
    code.depth[k].reset();
    for (size_t j : code.successors[k]) unknown_from.push_back(j);
    if (code.anywhere[k])
      for (size_t j = 0; j < n; ++j) unknown_from.push_back(j);
  }
  return code;
}

std::vector<size_t> jump_table_cases(const Build& build, const Definition& def, const Code& code, size_t k) {
  const ElfSymbol& symbol = build.symbol(def.section.object, def.symbol);
  const std::string* self = build.owner_identity(def.section);
  // The table a rip-relative or absolute operand of instruction j names: its section and offset.
  auto table_of = [&](size_t j) -> std::optional<std::pair<SectionRef, uint64_t>> {
    const auto& ref = code.refs[j];
    if (!ref || ref->target.kind != Target::Anonymous || !is_constant_data(build.section(ref->target.section)) ||
        ref->at < 0)
      return std::nullopt;
    return std::make_pair(ref->target.section, static_cast<uint64_t>(ref->at));
  };
  // The entries from `start`: consecutive relocations into this function.
  auto entries = [&](SectionRef table, uint64_t start, bool relative, std::vector<size_t>& out) {
    std::map<uint64_t, const ElfRelocation*> by_offset;
    for (const auto& r : build.relocations(table)) by_offset[r.offset] = &r;
    const uint64_t stride = relative ? 4 : 8;
    for (uint64_t at = start;; at += stride) {
      auto it = by_offset.find(at);
      if (it == by_offset.end()) break;
      auto t = resolve_target(build, table, *it->second);
      if (!t || t->kind != Target::Named || !self || t->name != *self) break;
      const int64_t target = relative ? t->offset - static_cast<int64_t>(at - start) : t->offset;
      if (target < 0 || static_cast<uint64_t>(target) >= symbol.size) break;
      auto index = code.index_of(static_cast<uint64_t>(target));
      if (!index) return false;  // into the middle of an instruction: not a table of this jump
      out.push_back(*index);
    }
    return true;
  };
  std::vector<size_t> out;
  const Instruction& jump = code.ins[k];
  if (jump.ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY) {
    if (auto table = table_of(k); table && entries(table->first, table->second, false, out)) return out;
    return {};
  }
  if (jump.ops[0].type != ZYDIS_OPERAND_TYPE_REGISTER) return {};
  // movslq (base,index,4), r; add base, r; jmp *r -- just before the jump.
  const ZydisRegister target = whole(jump.ops[0].reg.value);
  std::optional<ZydisRegister> base;
  for (size_t back = 1; back <= 6 && back <= k && !base; ++back) {
    const Instruction& i = code.ins[k - back];
    if (i.ins.mnemonic == ZYDIS_MNEMONIC_MOVSXD && i.ops[1].type == ZYDIS_OPERAND_TYPE_MEMORY &&
        i.ops[1].mem.scale == 4 && whole(i.ops[0].reg.value) == target)
      base = whole(i.ops[1].mem.base);
  }
  if (!base) return {};
  // Every rip-relative lea into that base register in the function: its tables, together.
  std::set<std::pair<SectionRef, uint64_t>> tables;
  for (size_t j = 0; j < code.ins.size(); ++j) {
    const Instruction& i = code.ins[j];
    if (i.ins.mnemonic != ZYDIS_MNEMONIC_LEA || whole(i.ops[0].reg.value) != *base) continue;
    if (i.ops[1].mem.base != ZYDIS_REGISTER_RIP) continue;
    auto table = table_of(j);
    if (!table) return {};
    tables.insert(*table);
  }
  for (const auto& [section, start] : tables)
    if (!entries(section, start, true, out)) return {};
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::set<size_t>> reaching_definitions(const Code& code, const std::function<int(size_t)>& defines,
                                                   size_t entry) {
  const size_t n = code.ins.size();
  std::vector<std::set<size_t>> reaching(n);
  std::vector<bool> seen(n, false);
  std::vector<size_t> work;
  auto reach = [&](size_t j, const std::set<size_t>& defs) {
    const size_t before = reaching[j].size();
    reaching[j].insert(defs.begin(), defs.end());
    if (!seen[j] || reaching[j].size() != before) {
      seen[j] = true;
      work.push_back(j);
    }
  };
  if (n) reach(0, {entry});
  while (!work.empty()) {
    const size_t k = work.back();
    work.pop_back();
    const int d = defines(k);
    const std::set<size_t> out = d == 0 ? reaching[k] : std::set<size_t>{d == 1 ? k : kUndefined};
    if (code.anywhere[k])
      for (size_t j = 0; j < n; ++j) reach(j, out);
    for (size_t j : code.successors[k]) reach(j, out);
  }
  return reaching;
}

std::vector<std::set<size_t>> register_definitions(const Code& code, int reg, size_t entry, bool call_defines_result) {
  return reaching_definitions(
      code,
      [&](size_t k) {
        const Instruction& i = code.ins[k];
        if (i.ins.meta.category == ZYDIS_CATEGORY_CALL)
          return call_defines_result && reg == kRax ? 1 : (kCallerSaved >> reg & 1) ? 2 : 0;
        for (uint8_t o = 0; o < i.ins.operand_count; ++o)
          if (i.ops[o].type == ZYDIS_OPERAND_TYPE_REGISTER && dwarf_number(i.ops[o].reg.value) == reg &&
              (i.ops[o].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE))
            return 1;
        return 0;
      },
      entry);
}

Liveness liveness(const Code& code) {
  const size_t n = code.ins.size();
  Liveness live{std::vector<uint16_t>(n, 0), std::vector<std::set<int64_t>>(n), std::vector<std::set<int64_t>>(n),
                std::vector<bool>(n, false)};
  // Frame memory is followed byte by byte (a 4-byte store kills those 4
  // bytes, not the 8-byte slot around them), and reported by 8-byte slot too.
  auto& bytes = live.bytes;
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t k = n; k-- > 0;) {
      const Instruction& i = code.ins[k];
      uint16_t regs = 0;
      std::set<int64_t> live_bytes;
      bool unknown_read = false;
      auto take = [&](size_t j) {
        regs |= live.registers[j];
        live_bytes.insert(bytes[j].begin(), bytes[j].end());
        unknown_read = unknown_read || live.unknown_read[j];
      };
      if (code.anywhere[k])
        for (size_t j = 0; j < n; ++j) take(j);
      for (size_t j : code.successors[k]) take(j);
      if (code.leaves[k]) regs = 0xffff;
      // Kills, then uses.
      uint16_t gen = 0;
      const bool zeroing = (i.ins.mnemonic == ZYDIS_MNEMONIC_XOR || i.ins.mnemonic == ZYDIS_MNEMONIC_SUB) &&
                           i.ins.operand_count_visible == 2 && i.ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
                           i.ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER && i.ops[0].reg.value == i.ops[1].reg.value;
      for (uint8_t o = 0; o < i.ins.operand_count; ++o) {
        const ZydisDecodedOperand& op = i.ops[o];
        if (op.type == ZYDIS_OPERAND_TYPE_REGISTER) {
          const int reg = dwarf_number(op.reg.value);
          if (reg < 0) continue;
          const auto cls = ZydisRegisterGetClass(op.reg.value);
          const bool full = cls == ZYDIS_REGCLASS_GPR64 || cls == ZYDIS_REGCLASS_GPR32;
          if (full && (op.actions == ZYDIS_OPERAND_ACTION_WRITE || (zeroing && o == 0)))
            regs &= static_cast<uint16_t>(~(1u << reg));
          if ((op.actions & ZYDIS_OPERAND_ACTION_MASK_READ) && !zeroing) gen |= static_cast<uint16_t>(1u << reg);
        } else if (op.type == ZYDIS_OPERAND_TYPE_MEMORY) {
          for (auto r : {op.mem.base, op.mem.index})
            if (int reg = dwarf_number(r); reg >= 0) gen |= static_cast<uint16_t>(1u << reg);
          // An address, a push's or a call's store below rsp (the callee's
          // frame, not this one's slots).
          if (i.ins.mnemonic == ZYDIS_MNEMONIC_LEA || i.ins.mnemonic == ZYDIS_MNEMONIC_PUSH ||
              i.ins.meta.category == ZYDIS_CATEGORY_CALL)
            continue;
          auto offset = code.frame_offset(k, op);
          if (i.ins.mnemonic == ZYDIS_MNEMONIC_POP && code.depth[k]) offset = -*code.depth[k];
          if (!offset) {
            if (code.frame_based(op) && (op.actions & ZYDIS_OPERAND_ACTION_MASK_READ)) unknown_read = true;
            continue;
          }
          const int64_t size = std::max<int64_t>(op.size / 8, 1);
          if (op.actions == ZYDIS_OPERAND_ACTION_WRITE)
            for (int64_t b = *offset; b < *offset + size; ++b) live_bytes.erase(b);
          if (op.actions & ZYDIS_OPERAND_ACTION_MASK_READ)
            for (int64_t b = *offset; b < *offset + size; ++b) live_bytes.insert(b);
        }
      }
      if (i.ins.meta.category == ZYDIS_CATEGORY_CALL) {
        regs &= static_cast<uint16_t>(~kCallerSaved);
        gen |= kArgumentRegisters;
      }
      if (i.ins.meta.category == ZYDIS_CATEGORY_RET) gen |= kReturnReads;
      regs |= gen;
      regs &= static_cast<uint16_t>(~(1u << kRsp));
      if (regs != live.registers[k] || live_bytes != bytes[k] || unknown_read != live.unknown_read[k]) {
        live.registers[k] = regs;
        bytes[k] = std::move(live_bytes);
        live.unknown_read[k] = unknown_read;
        changed = true;
      }
    }
  }
  for (size_t k = 0; k < n; ++k)
    for (int64_t b : bytes[k]) live.slots[k].insert(slot_of(b));
  return live;
}

// Iterative Tarjan.
void strongly_connected(const std::vector<std::vector<size_t>>& next, std::vector<int>& component, std::vector<bool>& cyclic) {
  const size_t n = next.size();
  component.assign(n, -1);
  cyclic.assign(n, false);
  std::vector<int> index(n, -1), low(n, 0);
  std::vector<bool> on_stack(n, false);
  std::vector<size_t> stack;
  int counter = 0, count = 0;
  for (size_t root = 0; root < n; ++root) {
    if (index[root] >= 0) continue;
    std::vector<std::pair<size_t, size_t>> work{{root, 0}};
    index[root] = low[root] = counter++;
    stack.push_back(root);
    on_stack[root] = true;
    while (!work.empty()) {
      auto& [v, edge] = work.back();
      if (edge < next[v].size()) {
        const size_t w = next[v][edge++];
        if (index[w] < 0) {
          index[w] = low[w] = counter++;
          stack.push_back(w);
          on_stack[w] = true;
          work.push_back({w, 0});
        } else if (on_stack[w]) {
          low[v] = std::min(low[v], index[w]);
        }
        continue;
      }
      if (low[v] == index[v]) {
        size_t size = 0;
        size_t w;
        do {
          w = stack.back();
          stack.pop_back();
          on_stack[w] = false;
          component[w] = count;
          ++size;
        } while (w != v);
        if (size > 1)
          for (size_t k = 0; k < n; ++k)
            if (component[k] == count) cyclic[k] = true;
        ++count;
      }
      const size_t done = v;
      work.pop_back();
      if (!work.empty()) low[work.back().first] = std::min(low[work.back().first], low[done]);
    }
  }
  for (size_t v = 0; v < n; ++v)
    if (std::find(next[v].begin(), next[v].end(), v) != next[v].end()) cyclic[v] = true;
}


}  // namespace graft::diff
