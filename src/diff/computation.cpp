#include "diff/computation.h"

#include <fmt/format.h>

#include <algorithm>

namespace graft::diff {
namespace {

constexpr int kDeepest = 48;           // nested definitions followed, at most
constexpr size_t kLongest = 1024;      // characters of an expression, at most
constexpr int kArguments[] = {5, 4, 1, 2, 8, 9};  // rdi rsi rdx rcx r8 r9

std::string hex(int64_t v) { return v < 0 ? fmt::format("-{:#x}", -static_cast<uint64_t>(v)) : fmt::format("{:#x}", v); }

// `inner` when `value` is exactly `wrapper(inner)`.
std::optional<std::string> unwrapped(const std::string& value, const std::string& wrapper) {
  if (!value.starts_with(wrapper + "(") || !value.ends_with(")")) return std::nullopt;
  int open = 0;
  for (size_t c = wrapper.size(); c + 1 < value.size(); ++c) {
    open += value[c] == '(' ? 1 : value[c] == ')' ? -1 : 0;
    if (open == 0) return std::nullopt;  // the wrapper's parenthesis closes before the end
  }
  return value.substr(wrapper.size() + 1, value.size() - wrapper.size() - 2);
}

bool writes_flags(const ZydisDecodedInstruction& i) {
  return i.cpu_flags && (i.cpu_flags->modified | i.cpu_flags->set_0 | i.cpu_flags->set_1 | i.cpu_flags->undefined);
}

}  // namespace

Computations::Computations(const Build& build, const Code& code, const Loops& loops,
                           const std::function<bool(const std::string&)>& same_callee,
                           std::optional<std::vector<std::pair<int64_t, int64_t>>> escaped,
                           std::function<std::optional<LocalStorage>(int64_t)> local_at)
    : build_(build), code_(code), same_callee_(same_callee), loops_(loops), escaped_(std::move(escaped)),
      local_at_(std::move(local_at)) {}

const std::vector<std::set<size_t>>& Computations::register_reaching(int reg) {
  auto it = registers_.find(reg);
  if (it == registers_.end())
    it = registers_.emplace(reg, register_definitions(code_, reg, kAtEntry, /*call_defines_result=*/true)).first;
  return it->second;
}

std::optional<size_t> Computations::single(const std::set<size_t>& reaching) const {
  if (reaching.size() != 1) return std::nullopt;
  const size_t d = *reaching.begin();
  if (d == kUndefined || d == kAtEntry || loops_.cyclic[d]) return std::nullopt;
  return d;
}

bool Computations::repeatable(size_t k) const {
  const Instruction& i = code_.ins[k];
  if (i.ins.meta.category == ZYDIS_CATEGORY_CALL) return false;
  for (uint8_t o = 0; o < i.ins.operand_count_visible; ++o) {
    const auto& op = i.ops[o];
    if (op.type == ZYDIS_OPERAND_TYPE_MEMORY && i.ins.mnemonic != ZYDIS_MNEMONIC_LEA &&
        (op.actions & ZYDIS_OPERAND_ACTION_MASK_READ) && !code_.frame_offset(k, op))
      return false;
  }
  return true;
}

std::optional<std::string> Computations::agreed(const std::set<size_t>& reaching, const std::string& entry,
                                                const std::function<std::optional<std::string>(size_t)>& of) {
  std::optional<std::string> out;
  for (size_t d : reaching) {
    std::optional<std::string> value;
    if (d == kAtEntry) {
      if (entry.empty()) return std::nullopt;
      value = entry;
    } else if (d == kUndefined || (loops_.cyclic[d] && !repeatable(d))) {
      return std::nullopt;
    } else {
      ++depth_;
      value = of(d);
      --depth_;
    }
    if (!value || (out && *out != *value)) return std::nullopt;
    out = value;
  }
  return out;
}

bool Computations::address_taken(int64_t lo, int64_t hi) const {
  return !escaped_ || std::any_of(escaped_->begin(), escaped_->end(),
                                  [&](const auto& r) { return r.first < hi && lo < r.second; });
}

std::optional<LocalStorage> Computations::indexed_local(size_t k, const ZydisDecodedOperand& op) const {
  if (op.mem.index == ZYDIS_REGISTER_NONE || dwarf_number(op.mem.index) == kRsp) return std::nullopt;
  const int base = dwarf_number(op.mem.base);
  std::optional<int64_t> start;
  if (base == kRbp && code_.frame_pointer) start = -16 + op.mem.disp.value;
  else if (base == kRsp && code_.depth[k]) start = -*code_.depth[k] + op.mem.disp.value;
  if (!start) return std::nullopt;
  return local_at_(*start);
}

std::optional<std::string> Computations::of_register(int reg, size_t at) {
  if (reg < 0 || reg == kRsp) return std::nullopt;
  if (depth_ == 0) changed_callees_.clear();
  const auto key = std::make_tuple(arguments_ ? 1 : 0, int64_t{reg}, 0, at);
  if (auto it = memo_.find(key); it != memo_.end()) return it->second;
  if (depth_ > kDeepest) return std::nullopt;
  memo_[key] = std::nullopt;  // while it is computed: a cycle of definitions has no expression
  auto out = agreed(register_reaching(reg)[at], fmt::format("entry {}", kRegisterNames[reg]),
                    [&](size_t d) { return of_definition(reg, d); });
  if (out && out->size() > kLongest) out.reset();
  memo_[key] = out;
  return out;
}

std::optional<std::string> Computations::of_slot(int64_t offset, int width, size_t at) {
  if (depth_ == 0) changed_callees_.clear();
  const auto key = std::make_tuple(arguments_ ? 3 : 2, offset, width, at);
  if (auto it = memo_.find(key); it != memo_.end()) return it->second;
  if (depth_ > kDeepest || address_taken(offset, offset + width)) return memo_[key] = std::nullopt;
  memo_[key] = std::nullopt;  // while it is computed
  auto reaching = slots_.find({offset, width});
  if (reaching == slots_.end()) {
    auto writes = [this, offset, width](size_t k) {
      const Instruction& i = code_.ins[k];
      for (uint8_t o = 0; o < i.ins.operand_count; ++o) {
        const auto& op = i.ops[o];
        if (op.type != ZYDIS_OPERAND_TYPE_MEMORY || i.ins.mnemonic == ZYDIS_MNEMONIC_LEA ||
            !(op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE))
          continue;
        auto at = code_.frame_offset(k, op);
        if (!at) {
          if (!code_.frame_based(op)) continue;
          // An element of an array local (`a[i] = x`): within the array DWARF places there.
          const auto element = indexed_local(k, op);
          if (element && (element->end <= offset || offset + width <= element->start)) continue;
          return 2;  // somewhere in the frame: unknown
        }
        if (*at < offset + width && *at + std::max<int64_t>(op.size / 8, 1) > offset) return 1;
      }
      return 0;
    };
    reaching = slots_.emplace(std::make_pair(offset, width), reaching_definitions(code_, writes, kAtEntry)).first;
  }
  // Each store that reaches: exactly this place and width (a store's source
  // register or immediate); what the caller left there has no expression.
  auto out = agreed(reaching->second[at], "", [&](size_t d) -> std::optional<std::string> {
    const Instruction& i = code_.ins[d];
    const auto& dst = i.ops[0];
    if (i.ins.mnemonic != ZYDIS_MNEMONIC_MOV || dst.type != ZYDIS_OPERAND_TYPE_MEMORY ||
        code_.frame_offset(d, dst) != offset || dst.size != width * 8)
      return std::nullopt;
    return operand(d, i.ops[1]);
  });
  if (out && out->size() > kLongest) out.reset();
  memo_[key] = out;
  return out;
}

bool Computations::movable(const Target& target) const {
  if (target.kind != Target::Named) return false;
  const Definition* def = build_.find(target.name);
  return !def || (!def->function && !is_constant_data(build_.section(def->section)));
}

std::optional<std::string> Computations::address(size_t k, const ZydisDecodedOperand& op, bool loaded) {
  if (op.type != ZYDIS_OPERAND_TYPE_MEMORY) return std::nullopt;
  if (code_.frame_based(op)) {
    // A frame address differs between frames: only as a call's argument
    // (a buffer the callee fills), named by the local DWARF places there.
    const auto at = code_.frame_offset(k, op);
    if (loaded || !arguments_ || !at) return std::nullopt;
    const auto local = local_at_(*at);
    if (!local) return std::nullopt;
    return fmt::format("(&local {}+{:#x})", local->name, *at - local->start);
  }
  if (op.mem.segment != ZYDIS_REGISTER_DS && op.mem.segment != ZYDIS_REGISTER_SS && op.mem.segment != ZYDIS_REGISTER_NONE)
    return std::nullopt;  // fs/gs: a thread's own
  if (whole(op.mem.base) == ZYDIS_REGISTER_RIP) {
    const auto& ref = code_.refs[k];
    if (!ref || ref->target.kind != Target::Named || op.mem.index != ZYDIS_REGISTER_NONE ||
        (!loaded && movable(ref->target)))
      return std::nullopt;
    return fmt::format("(&{}{})", ref->target.name, ref->at ? "+" + hex(ref->at) : "");
  }
  std::string out;
  if (op.mem.base != ZYDIS_REGISTER_NONE) {
    auto base = of_register(dwarf_number(op.mem.base), k);
    if (!base) return std::nullopt;
    out = *base;
  }
  if (op.mem.index != ZYDIS_REGISTER_NONE) {
    auto index = of_register(dwarf_number(op.mem.index), k);
    if (!index) return std::nullopt;
    out += fmt::format("{}{}*{}", out.empty() ? "" : "+", *index, op.mem.scale);
  }
  if (op.mem.disp.has_displacement || out.empty()) out += "+" + hex(op.mem.disp.value);
  return "(" + out + ")";
}

std::optional<std::string> Computations::operand(size_t k, const ZydisDecodedOperand& op) {
  switch (op.type) {
    case ZYDIS_OPERAND_TYPE_IMMEDIATE: return "#" + hex(op.imm.value.s);
    case ZYDIS_OPERAND_TYPE_REGISTER: {
      auto value = of_register(dwarf_number(op.reg.value), k);
      if (!value || op.size == 64) return value;
      // The low half of a 32-bit result zero-extended is that result.
      if (op.size == 32)
        if (auto narrow = unwrapped(*value, "zx32")) return narrow;
      return fmt::format("lo{}({})", op.size, *value);
    }
    case ZYDIS_OPERAND_TYPE_MEMORY: {
      if (auto at = code_.frame_offset(k, op)) return of_slot(*at, op.size / 8, k);
      if (code_.frame_based(op)) return std::nullopt;
      const auto& ref = code_.refs[k];
      if (whole(op.mem.base) == ZYDIS_REGISTER_RIP && ref && ref->got) {  // a GOT slot holds the symbol's address
        if (ref->target.kind == Target::Anonymous || movable(ref->target)) return std::nullopt;
        return "&" + ref->target.name;
      }
      auto where = address(k, op, true);
      if (!where) return std::nullopt;
      return fmt::format("load{}{}{}", op.size, *where, after(k));
    }
    default: return std::nullopt;
  }
}

std::optional<std::string> Computations::flags_before(size_t k) {
  if (!flags_)
    flags_ = reaching_definitions(code_, [this](size_t j) {
      const Instruction& i = code_.ins[j];
      if (i.ins.meta.category == ZYDIS_CATEGORY_CALL) return 2;
      return writes_flags(i.ins) ? 1 : 0;
    });
  auto d = single((*flags_)[k]);
  if (!d) return std::nullopt;
  const Instruction& i = code_.ins[*d];
  std::string out = fmt::format("{}{}(", ZydisMnemonicGetString(i.ins.mnemonic), i.ops[0].size);
  for (uint8_t o = 0; o < i.ins.operand_count_visible; ++o) {
    auto value = operand(*d, i.ops[o]);
    if (!value) return std::nullopt;
    out += (o ? "," : "") + *value;
  }
  return out + ")";
}

std::optional<std::string> Computations::call(size_t k) {
  const std::string& callee = code_.callees[k];
  if (callee.empty()) return std::nullopt;
  if (!same_callee_(callee)) {
    changed_callees_.insert(callee);
    return std::nullopt;
  }
  // Arguments on the stack (a seventh, a struct by value) are not followed:
  // a call preceded by a push or a store at rsp (the outgoing arguments'
  // place; locals of frame-pointer code are off rbp) since the last call has none.
  for (size_t j = k; j-- > 0 && code_.ins[j].ins.meta.category != ZYDIS_CATEGORY_CALL;) {
    const Instruction& i = code_.ins[j];
    if (i.ins.mnemonic == ZYDIS_MNEMONIC_PUSH) {
      // The prologue's save of a callee-saved register is no argument.
      const auto save = i.ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER ? code_.saves.find(dwarf_number(i.ops[0].reg.value))
                                                                     : code_.saves.end();
      if (save == code_.saves.end() || !code_.depth[j] || save->second != -*code_.depth[j] - 8) return std::nullopt;
      continue;
    }
    for (uint8_t o = 0; o < i.ins.operand_count_visible; ++o)
      if (i.ops[o].type == ZYDIS_OPERAND_TYPE_MEMORY && (i.ops[o].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) &&
          whole(i.ops[o].mem.base) == ZYDIS_REGISTER_RSP)
        return std::nullopt;
  }
  // By order among the calls to the callee: two calls of one function
  // with the same arguments (two open()s) give two values.
  int order = 1;
  for (size_t j = 0; j < k; ++j) order += code_.callees[j] == callee;
  std::vector<std::string> arguments;
  for (int reg : kArguments) {
    const std::set<size_t>& reaching = register_reaching(reg)[k];
    if (reaching.count(kUndefined)) {
      arguments.push_back("_");  // not set since the last call on some path: not an argument
      continue;
    }
    ++arguments_;
    auto value = of_register(reg, k);
    --arguments_;
    if (!value) return std::nullopt;
    arguments.push_back(*value);
  }
  while (!arguments.empty() && arguments.back() == "_") arguments.pop_back();
  std::string out = fmt::format("call#{} {}(", order, callee);
  for (size_t a = 0; a < arguments.size(); ++a) out += (a ? ", " : "") + arguments[a];
  return out + ")" + after(k);
}

std::string Computations::after(size_t k) {
  if (auto it = after_.find(k); it != after_.end()) return it->second;
  const size_t n = code_.ins.size();
  if (predecessors_.empty()) {
    predecessors_.resize(n);
    for (size_t j = 0; j < n; ++j)
      for (size_t next : code_.successors[j]) predecessors_[next].push_back(j);
  }
  // What can run before k in one call of the function (an indirect jump: anything).
  std::vector<bool> before(n, false);
  const bool anywhere = std::find(code_.anywhere.begin(), code_.anywhere.end(), true) != code_.anywhere.end();
  if (anywhere) before.assign(n, true);
  for (std::vector<size_t> work = predecessors_[k]; !anywhere && !work.empty();) {
    const size_t j = work.back();
    work.pop_back();
    if (before[j]) continue;
    before[j] = true;
    work.insert(work.end(), predecessors_[j].begin(), predecessors_[j].end());
  }
  // Its calls and its writes to memory outside the frame, in address order.
  std::string effects;
  size_t count = 0;
  for (size_t j = 0; j < n; ++j) {
    if (!before[j]) continue;
    const Instruction& i = code_.ins[j];
    if (i.ins.meta.category == ZYDIS_CATEGORY_CALL) {
      effects += (code_.callees[j].empty() ? std::string("*") : code_.callees[j]) + (loops_.cyclic[j] ? "+;" : ";");
      ++count;
      continue;
    }
    for (uint8_t o = 0; o < i.ins.operand_count; ++o) {
      const auto& op = i.ops[o];
      if (op.type != ZYDIS_OPERAND_TYPE_MEMORY || i.ins.mnemonic == ZYDIS_MNEMONIC_LEA ||
          !(op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) || code_.frame_based(op))
        continue;
      const auto& ref = code_.refs[j];
      effects += "st " + (whole(op.mem.base) == ZYDIS_REGISTER_RIP && ref ? ref->target.name : std::string("*")) +
                 (loops_.cyclic[j] ? "+;" : ";");
      ++count;
    }
  }
  return after_[k] = fmt::format("@{}:{:x}", count, std::hash<std::string>{}(effects));
}

std::optional<std::string> Computations::of_definition(int reg, size_t k) {
  const Instruction& i = code_.ins[k];
  if (i.ins.meta.category == ZYDIS_CATEGORY_CALL) return reg == kRax ? call(k) : std::nullopt;
  const auto& dst = i.ops[0];
  if (dst.type != ZYDIS_OPERAND_TYPE_REGISTER || dwarf_number(dst.reg.value) != reg ||
      (dst.size != 64 && dst.size != 32))
    return std::nullopt;
  // A 32-bit result zero-extends into the whole register.
  auto sized = [&](std::string value) { return dst.size == 64 ? value : "zx32(" + value + ")"; };
  auto before = [&]() { return operand(k, dst); };
  const ZydisMnemonic m = i.ins.mnemonic;
  const uint8_t visible = i.ins.operand_count_visible;
  switch (m) {
    case ZYDIS_MNEMONIC_MOV: {
      if (i.ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)  // a constant, as the whole register holds it
        return "#" + hex(dst.size == 64 ? i.ops[1].imm.value.s : static_cast<int64_t>(static_cast<uint32_t>(i.ops[1].imm.value.u)));
      auto value = operand(k, i.ops[1]);
      if (!value) return std::nullopt;
      return sized(*value);
    }
    case ZYDIS_MNEMONIC_MOVSXD:
    case ZYDIS_MNEMONIC_MOVSX:
    case ZYDIS_MNEMONIC_MOVZX: {
      auto value = operand(k, i.ops[1]);
      if (!value) return std::nullopt;
      return sized(fmt::format("{}{}({})", m == ZYDIS_MNEMONIC_MOVZX ? "zx" : "sx", i.ops[1].size, *value));
    }
    case ZYDIS_MNEMONIC_LEA: {
      auto value = address(k, i.ops[1], false);
      if (!value) return std::nullopt;
      return sized(*value);
    }
    case ZYDIS_MNEMONIC_XOR:
    case ZYDIS_MNEMONIC_SUB:
      if (i.ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER && i.ops[1].reg.value == dst.reg.value) return "#0x0";
      [[fallthrough]];
    case ZYDIS_MNEMONIC_ADD:
    case ZYDIS_MNEMONIC_AND:
    case ZYDIS_MNEMONIC_OR:
    case ZYDIS_MNEMONIC_SHL:
    case ZYDIS_MNEMONIC_SHR:
    case ZYDIS_MNEMONIC_SAR:
    case ZYDIS_MNEMONIC_IMUL:
    case ZYDIS_MNEMONIC_NEG:
    case ZYDIS_MNEMONIC_NOT:
    case ZYDIS_MNEMONIC_INC:
    case ZYDIS_MNEMONIC_DEC: {
      // Two operands (dst op= src), one (dst = op dst), or imul's three (dst = a * b).
      std::vector<std::optional<std::string>> values;
      if (visible == 3) values = {operand(k, i.ops[1]), operand(k, i.ops[2])};
      else if (visible == 2) values = {before(), operand(k, i.ops[1])};
      else values = {before()};
      std::string out = fmt::format("{}{}(", ZydisMnemonicGetString(m), dst.size);
      for (size_t v = 0; v < values.size(); ++v) {
        if (!values[v]) return std::nullopt;
        out += (v ? "," : "") + *values[v];
      }
      return out + ")";
    }
    default: break;
  }
  if (i.ins.meta.category == ZYDIS_CATEGORY_CMOV) {
    auto flags = flags_before(k);
    auto kept = before();
    auto moved = operand(k, i.ops[1]);
    if (!flags || !kept || !moved) return std::nullopt;
    return sized(fmt::format("{}({}, {}, {})", ZydisMnemonicGetString(m), *flags, *kept, *moved));
  }
  return std::nullopt;
}

const std::set<std::pair<int64_t, int>>& Computations::stored_slots() {
  if (!stored_) {
    stored_.emplace();
    for (size_t k = 0; k < code_.ins.size(); ++k) {
      const auto& dst = code_.ins[k].ops[0];
      if (code_.ins[k].ins.mnemonic != ZYDIS_MNEMONIC_MOV || dst.type != ZYDIS_OPERAND_TYPE_MEMORY ||
          (dst.size != 64 && dst.size != 32))
        continue;
      if (auto offset = code_.frame_offset(k, dst)) stored_->emplace(*offset, dst.size / 8);
    }
  }
  return *stored_;
}

std::map<std::string, TransferValue> Computations::values_at(size_t at, std::map<std::string, int>* widths) {
  std::map<std::string, TransferValue> out;
  for (int reg = 0; reg < 16; ++reg)
    if (auto value = of_register(reg, at)) out.try_emplace(*value, TransferValue{TransferValue::Kind::Register, reg, 0});
  for (const auto& [offset, width] : stored_slots())
    if (auto value = of_slot(offset, width, at)) {
      if (out.try_emplace(*value, TransferValue{TransferValue::Kind::Frame, -1, offset}).second && widths)
        (*widths)[*value] = width;
    }
  return out;
}

}  // namespace graft::diff
