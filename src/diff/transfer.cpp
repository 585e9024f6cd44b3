#include "diff/transfer.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "common/blocking_calls.h"
#include "diff/compare.h"
#include "diff/computation.h"
#include "diff/continuation.h"
#include "diff/frame_code.h"

namespace graft::diff {
namespace {

using Kind = TransferValue::Kind;

struct Placed {
  const FrameLocal* local = nullptr;
  TransferValue value;
  uint64_t size = 0;
};

// A local's size in bytes (0 if DWARF gives it no type).
int64_t size_of(const TypeTable& types, const FrameLocal& local) {
  return local.type >= 0 ? static_cast<int64_t>(types.at(local.type).size) : 0;
}

// The locals with a place at `offset` (from the entry), by name; a name
// given twice is ambiguous (nullptr local).
std::map<std::string, Placed> locals_at(const TransferSide& side, const Code& code, uint64_t offset, size_t k) {
  std::map<std::string, Placed> out;
  if (!side.frame) return out;
  const uint64_t pc = side.address + offset;
  for (const auto& local : side.frame->locals) {
    // Its place there: a location list's entry for pc, else the slot its
    // scope names, only inside that scope (an inlined callee's local is no
    // local of the code around it).
    LocalPlace place;
    bool in_scope = false;
    for (const auto& r : local.live)
      if (r.start <= pc && pc < r.end) {
        in_scope = true;
        if (r.place.known()) place = r.place;
      }
    if (!place.known() && in_scope) place = local.scope_slot;
    if (!place.known()) continue;
    TransferValue v;
    if (place.kind == LocalPlace::Kind::InRegister && place.reg != kRsp) v = {Kind::Register, place.reg, 0};
    else if (auto offset = code.place_offset(place, k)) v = {Kind::Frame, -1, *offset};
    else continue;
    const uint64_t size = static_cast<uint64_t>(size_of(side.types, local));
    auto [it, added] = out.try_emplace(local.name, Placed{&local, v, size});
    if (!added) it->second.local = nullptr;
  }
  return out;
}

// The one stack place a local's memory locations all name, when the code
// takes its address (`lea` of it: the local lives in memory, which is
// current at every call, whatever registers DWARF names in between: a
// register range is a copy just stored or loaded, as clang's lowered
// dbg.declare says, `maxsock` of dropbear's listener): the local's storage,
// valid at a call's return even where its location list has a gap (clang
// drops `c` of `read(fd, &c, 1)` right after the call).
std::optional<int64_t> storage_of(const FrameLocal& local, const Code& code) {
  std::optional<int64_t> at;
  for (const auto& r : local.live) {
    const std::optional<int64_t> here = code.place_offset(r.place);
    if (!here) continue;
    if (at && *at != *here) return std::nullopt;
    at = here;
  }
  if (!at) return std::nullopt;
  for (size_t k = 0; k < code.ins.size(); ++k)
    if (code.ins[k].ins.mnemonic == ZYDIS_MNEMONIC_LEA && code.frame_offset(k, code.ins[k].ops[1]) == at) return at;
  return std::nullopt;
}

// Whether a type holds a pointer anywhere (members and elements, to any depth).
bool holds_pointer(const TypeTable& types, int index, int depth = 0) {
  if (index < 0 || depth > 32) return false;
  const Type& t = types.at(index);
  switch (t.kind) {
    case TypeKind::Pointer: return true;
    case TypeKind::Array: return holds_pointer(types, t.target, depth + 1);
    case TypeKind::Struct:
    case TypeKind::Union:
      return std::any_of(t.members.begin(), t.members.end(),
                         [&](const Member& m) { return holds_pointer(types, m.type, depth + 1); });
    default: return false;
  }
}

// The local that register `reg` holds at instruction `at` where DWARF does
// not say so (clang drops a loop variable's location across the back
// edge): the one local DWARF places in `reg` somewhere in the loop `at` is
// in, when every definition of `reg` from inside the loop that reaches `at`
// is an assignment to it (DWARF places it in `reg` right after), and with
// `every_definition`, every other one too. nullptr if there is not exactly one.
const FrameLocal* carried_in(const TransferSide& side, const Code& code, const Loops& loops, int reg, size_t at,
                             bool every_definition) {
  if (!side.frame || !loops.cyclic[at]) return nullptr;
  const size_t n = code.ins.size();
  auto in_reg = [&](const FrameLocal& l, size_t k) {
    const uint64_t pc = side.address + code.at(k);
    return std::any_of(l.live.begin(), l.live.end(), [&](const LiveRange& r) {
      return r.start <= pc && pc < r.end && r.place.kind == LocalPlace::Kind::InRegister && r.place.reg == reg;
    });
  };
  const FrameLocal* found = nullptr;
  for (const auto& local : side.frame->locals) {
    bool in_loop = false;
    for (size_t k = 0; k < n && !in_loop; ++k) in_loop = loops.same_loop(k, at) && in_reg(local, k);
    if (!in_loop) continue;
    if (found) return nullptr;
    found = &local;
  }
  if (!found) return nullptr;
  const auto definitions = register_definitions(code, reg);
  for (size_t k : definitions[at]) {
    if (k == kUndefined) {
      if (every_definition) return nullptr;
      continue;
    }
    if ((every_definition || loops.same_loop(k, at)) && (k + 1 >= n || !in_reg(*found, k + 1))) return nullptr;
  }
  return found;
}

class Transfer {
 public:
  Transfer(const TransferSide& o, const Code& oc, const TransferSide& n, const Code& nc, const Liveness& live)
      : old_(o), old_code_(oc), new_(n), new_code_(nc), live_(live), old_loops_(oc), new_loops_(nc),
        compare_(o.build, n.build) {}

  // The transfer from the return of old call a to new call b, or why not.
  Result<FrameTransfer> at(size_t a, size_t b) {
    FrameTransfer t;
    const size_t ra = a + 1, rb = b + 1;
    if (ra >= old_code_.ins.size() || rb >= new_code_.ins.size()) return make_error("it is the function's last instruction");
    t.old_return = old_code_.at(ra);
    t.new_return = new_code_.at(rb);
    if (!old_code_.depth[ra] || !new_code_.depth[rb]) return make_error("the stack depth there is not known");
    t.old_frame = *old_code_.depth[ra];
    t.new_frame = *new_code_.depth[rb];
    // Just after a call, a caller-saved register holds only what the callee
    // left (the ABI; clang does no interprocedural register allocation): the
    // code can read nothing in one but the result, whatever the conservative
    // liveness (every call reads every argument register) says.
    const uint16_t live_regs = live_.registers[rb] & static_cast<uint16_t>(~(kCallerSaved & ~1u));
    const std::set<int64_t>& live_slots = live_.slots[rb];
    auto old_locals = locals_at(old_, old_code_, t.old_return, ra);
    auto new_locals = locals_at(new_, new_code_, t.new_return, rb);
    uint16_t given = 1u << kRsp;
    std::vector<std::pair<int64_t, int64_t>> covered;  // CFA-relative byte ranges the moves fill
    auto give = [&](const TransferValue& from, const TransferValue& to, uint64_t size, std::string what,
                    uint64_t from_size = 0, bool sign_extend = false) -> Status {
      auto same = [](const TransferValue& x, const TransferValue& y) {
        return x.kind == y.kind && x.reg == y.reg && x.offset == y.offset;
      };
      if (to.kind == Kind::Register) {
        // Two locals in one register (a parameter and its copy) are one value.
        for (const auto& mv : t.moves)
          if (same(mv.to, to) && same(mv.from, from)) return ok();
        if (given >> to.reg & 1) return make_error("two values go to {}", kRegisterNames[to.reg]);
        given |= static_cast<uint16_t>(1u << to.reg);
      } else {
        for (const auto& mv : t.moves)  // the same bytes from the same place, given again
          if (same(mv.to, to) && same(mv.from, from) && mv.size == size) return ok();
        covered.emplace_back(to.offset, to.offset + static_cast<int64_t>(size));
      }
      t.moves.push_back({from, to, size, std::move(what), from_size, sign_extend});
      return ok();
    };
    // A value whose type changed, converted as data is: integers as C
    // converts them, structs member by member.
    auto give_converted = [&](int from_type, const TransferValue& from, int to_type, const TransferValue& to,
                              const std::string& what) -> Status {
      std::vector<TransferMove> converted;
      GRAFT_TRY(convert(from_type, from, to_type, to, what, converted));
      for (auto& mv : converted) GRAFT_TRY(give(mv.from, mv.to, mv.size, mv.what, mv.from_size, mv.sign_extend));
      return ok();
    };
    // Locals: from the old local of the same name and type.
    for (const auto& [name, placed] : new_locals) {
      const TransferValue& to = placed.value;
      const bool needed = to.kind == Kind::Register
                              ? (live_regs >> to.reg & 1) != 0
                              : std::any_of(live_slots.begin(), live_slots.end(), [&](int64_t s) {
                                  return s * 8 + 8 > to.offset && s * 8 < to.offset + static_cast<int64_t>(placed.size);
                                });
      auto counterpart = old_locals.find(name);
      if (!placed.local || (counterpart != old_locals.end() && !counterpart->second.local)) {
        if (needed) return make_error("two locals named {} are live there", name);
        continue;
      }
      if (counterpart == old_locals.end()) {
        if (!needed) continue;
        if (old_local(name)) return make_error("local {}: the old code does not say where it is there", name);
        // New: it starts as the new code starts it before the loop.
        GRAFT_ASSIGN(const TransferValue initial, initial_value(name, placed, rb));
        GRAFT_TRY(give(initial, to, to.kind == Kind::Register ? 8 : placed.size,
                       fmt::format("local {} (new: {})", name, initial.offset)));
        continue;
      }
      const Placed& from = counterpart->second;
      if (old_.types.layout(from.local->type) != new_.types.layout(placed.local->type)) {
        if (!needed) continue;
        GRAFT_TRY(give_converted(from.local->type, from.value, placed.local->type, to, "local " + name));
        continue;
      }
      if ((to.kind == Kind::Register || from.value.kind == Kind::Register) && placed.size > 8) {
        if (needed) return make_error("local {} is in a register in one version and larger than one", name);
        continue;
      }
      // A C++ object that may point into itself (a short std::string's
      // characters are inside it) is carried over only in place: copied
      // elsewhere it would point into the old frame. (C structs are copied,
      // as every local with a counterpart is, needed or not: reads through
      // an index, like events[i] after epoll_wait, are not in the liveness.)
      if (from.value.kind == Kind::Frame && to.kind == Kind::Frame && from.value.offset != to.offset &&
          may_point_into_itself(placed.local->type))
        return make_error("local {} ({}) would move from CFA{:+d} to CFA{:+d}: a C++ object holding pointers may "
                          "point into itself, and is carried over only in place",
                          name, new_.types.spell(placed.local->type), from.value.offset, to.offset);
      GRAFT_TRY(give(from.value, to, to.kind == Kind::Register && from.value.kind == Kind::Register ? 8 : placed.size,
                     "local " + name));
    }
    // The call's result.
    if (!(given & 1u)) GRAFT_TRY(give({Kind::Register, kRax, 0}, {Kind::Register, kRax, 0}, 8, "the call's result"));
    // The caller's callee-saved registers, where the new code keeps them.
    for (int reg : kCalleeSaved) {
      auto o = old_code_.saves.find(reg);
      auto n = new_code_.saves.find(reg);
      const TransferValue from = o != old_code_.saves.end() ? TransferValue{Kind::Frame, -1, o->second} : TransferValue{Kind::Register, reg, 0};
      const TransferValue to = n != new_code_.saves.end() ? TransferValue{Kind::Frame, -1, n->second} : TransferValue{Kind::Register, reg, 0};
      GRAFT_TRY(give(from, to, 8, fmt::format("the caller's {}", kRegisterNames[reg])));
    }
    if (new_code_.frame_pointer && !(given >> kRbp & 1))
      GRAFT_TRY(give({Kind::FrameAddress, -1, -16}, {Kind::Register, kRbp, 0}, 8, "the frame pointer"));
    // A stack place whose contents need not move: the storage of a local of
    // the new code whose scope does not hold the return address (a block
    // after the loop, or the loop body's own: its lifetime starts again, its
    // value indeterminate until set) and of no local whose scope does.
    const uint64_t new_pc = new_.address + t.new_return;
    auto out_of_scope = [&](int64_t offset) {
      if (!new_.frame) return false;
      bool found = false;
      for (const auto& local : new_.frame->locals) {
        const std::optional<int64_t> at = new_code_.place_offset(local.scope_slot);
        const bool in_scope = std::any_of(local.live.begin(), local.live.end(),
                                          [&](const LiveRange& r) { return r.start <= new_pc && new_pc < r.end; });
        if (!at) {
          // A local placed by a location list, in scope: in memory there, at
          // the place it names (elsewhere than `offset`), or anywhere.
          if (in_scope && std::any_of(local.live.begin(), local.live.end(), [&](const LiveRange& r) {
                if (r.start > new_pc || new_pc >= r.end || !r.place.known() ||
                    r.place.kind == LocalPlace::Kind::InRegister)
                  return false;
                const std::optional<int64_t> there = new_code_.place_offset(r.place);
                const int64_t size = size_of(new_.types, local);
                return !there || (offset >= *there && offset < *there + std::max<int64_t>(size, 1));
              }))
            return false;
          continue;
        }
        const int64_t size = size_of(new_.types, local);
        if (offset < *at || offset >= *at + std::max<int64_t>(size, 1)) continue;
        if (in_scope) return false;
        found = true;
      }
      return found;
    };
    // A local in scope whose address the code holds or takes is moved whole,
    // needed there or not: it may be read through that address later.
    auto move_whole = [&](int64_t offset) -> bool {
      for (const auto& [name, placed] : new_locals) {
        if (!placed.local || placed.value.kind != Kind::Frame) continue;
        if (offset < placed.value.offset || offset >= placed.value.offset + static_cast<int64_t>(std::max<uint64_t>(placed.size, 1)))
          continue;
        auto counterpart = old_locals.find(name);
        if (counterpart == old_locals.end() || !counterpart->second.local ||
            counterpart->second.value.kind != Kind::Frame ||
            old_.types.layout(counterpart->second.local->type) != new_.types.layout(placed.local->type) ||
            (counterpart->second.value.offset != placed.value.offset && may_point_into_itself(placed.local->type)))
          return false;
        return give(counterpart->second.value, placed.value, placed.size, "local " + name + " (its address is held)")
            .ok();
      }
      return false;
    };
    // A slot the new code reads that DWARF names no local for at the return:
    // the storage of a local in memory in both versions (same name and
    // layout) is copied whole.
    auto cover_by_storage = [&](int64_t slot) {
      if (!new_.frame || !old_.frame) return false;
      for (const auto& local : new_.frame->locals) {
        const auto to = storage_of(local, new_code_);
        const int64_t size = size_of(new_.types, local);
        if (!to || size <= 0 || slot * 8 + 8 <= *to || slot * 8 >= *to + size) continue;
        for (const auto& before : old_.frame->locals) {
          if (before.name != local.name || old_.types.layout(before.type) != new_.types.layout(local.type)) continue;
          const auto from = storage_of(before, old_code_);
          if (!from || (*from != *to && may_point_into_itself(local.type))) continue;
          return give({Kind::Frame, -1, *from}, {Kind::Frame, -1, *to}, static_cast<uint64_t>(size),
                      "local " + local.name + " (its storage: its address is taken)").ok();
        }
      }
      return false;
    };
    auto placeable = [&](int64_t offset) {
      return inside(covered, offset) || out_of_scope(offset) || move_whole(offset) ||
             (cover_by_storage(slot_of(offset)) && inside(covered, offset));
    };
    // Values the new code computed before its loop.
    for (int reg = 0; reg < 16; ++reg) {
      if (!(live_regs >> reg & 1) || (given >> reg & 1)) continue;
      // A new local the loop carries in the register where DWARF loses it
      // (clang drops a loop variable's location across the back edge).
      if (const FrameLocal* carried = carried_in(new_, new_code_, new_loops_, reg, rb, false)) {
        if (const FrameLocal* before = old_local(carried->name)) {
          // The old code carries it the same way: in the register every
          // definition reaching the old return assigns it in.
          std::optional<int> old_reg;
          for (int r = 0; r < 16 && !old_reg; ++r)
            if (const FrameLocal* l = r == kRsp ? nullptr : carried_in(old_, old_code_, old_loops_, r, ra, true);
                l && l->name == carried->name)
              old_reg = r;
          const auto counterpart = old_locals.find(carried->name);
          if (!old_reg && counterpart != old_locals.end() && counterpart->second.local &&
              counterpart->second.value.kind == Kind::Register)
            old_reg = counterpart->second.value.reg;  // DWARF places it in the old code
          if (!old_reg)
            return make_error("{} holds local {} there, where DWARF does not say so, and the old code does not say "
                              "where it keeps it (a value the compiler keeps for the loop)",
                              kRegisterNames[reg], carried->name);
          GRAFT_TRY(give_converted(before->type, {Kind::Register, *old_reg, 0}, carried->type,
                                   {Kind::Register, reg, 0}, "local " + carried->name));
          continue;
        }
        const Placed placed{carried, {Kind::Register, reg, 0}, 8};
        GRAFT_ASSIGN(const TransferValue initial, initial_value(carried->name, placed, rb));
        GRAFT_TRY(give(initial, placed.value, 8, fmt::format("local {} (new: {})", carried->name, initial.offset)));
        continue;
      }
      auto computed = computed_before(reg, rb);
      if (!computed) {
        // Computed once before the loop from what the old code had too: the old value.
        auto expression = computations(false).of_register(reg, rb);
        if (!expression) return make_error("{}{}", computed.error().message, changed_calls(computations(false)));
        const auto from = held_alike(ra, *expression, 8);
        if (!from)
          return make_error("{}; the new code computes it as {}, which the old frame does not hold there",
                            computed.error().message, *expression);
        GRAFT_TRY(give(*from, {Kind::Register, reg, 0}, 8,
                       fmt::format("{} from the old {}, computed alike: {}", kRegisterNames[reg], place_name(*from),
                                   *expression)));
        continue;
      }
      const TransferValue v = *computed;
      if (v.kind == Kind::FrameAddress && !placeable(v.offset))
        return make_error("{} holds the address of a stack slot that holds no local it moves", kRegisterNames[reg]);
      GRAFT_TRY(give(v, {Kind::Register, reg, 0}, 8, fmt::format("{} as the new code sets it", kRegisterNames[reg])));
    }
    // Every byte the new code may read before writing it is given (CFA-8..-1:
    // the return address, the caller's and unchanged).
    // A slot the new code stored a value in that it computed once before its
    // loop from what the old code had too (a spilled call result): the old value.
    std::string unheld;  // the expression of a slot the old frame does not hold
    auto cover_alike = [&](int64_t b) {
      for (const auto& [offset, width] : computations(false).stored_slots())
        if (offset <= b && b < offset + width)
          if (auto expression = computations(false).of_slot(offset, width, rb)) {
            if (const auto from = held_alike(ra, *expression, width))
              return give(*from, {Kind::Frame, -1, offset}, static_cast<uint64_t>(width),
                          fmt::format("CFA{:+d} from the old {}, computed alike: {}", offset, place_name(*from),
                                      *expression))
                  .ok();
            unheld = *expression;
          }
      return false;
    };
    for (int64_t b : live_.bytes[rb])
      if (b < -8 && !inside(covered, b) && !out_of_scope(b) && !(cover_by_storage(slot_of(b)) && inside(covered, b)) &&
          !(cover_alike(b) && inside(covered, b)))
        return make_error("the new code reads its stack at CFA{:+d}, where no local it moves is{}", slot_of(b) * 8,
                          unheld.empty() ? "" : "; the new code computes it as " + unheld +
                                                    ", which the old frame does not hold there");
    // Addresses of stack slots the new code takes after the call must be of
    // locals it moves, or of a place every path from the return writes first
    // (a temporary: `movl %eax,-0x30(%rbp); lea -0x30(%rbp),%rsi` for push_back(int&&)).
    const auto written = written_since(rb);
    for (size_t k : reachable(rb)) {
      const Instruction& i = new_code_.ins[k];
      if (i.ins.mnemonic != ZYDIS_MNEMONIC_LEA) continue;
      if (!new_code_.frame_based(i.ops[1])) continue;
      auto offset = new_code_.frame_offset(k, i.ops[1]);
      if (offset && written[k] && written[k]->count(*offset)) continue;
      if (!offset || !placeable(*offset))
        return make_error("at +{:#x} it takes the address of a stack slot that holds no local it moves", new_code_.at(k));
    }
    return t;
  }

 private:
  // The computations of one version's code (built once, on first use).
  Computations& computations(bool old_version) {
    std::optional<Computations>& made = old_version ? old_computations_ : new_computations_;
    if (!made) {
      const TransferSide& side = old_version ? old_ : new_;
      const Code& code = old_version ? old_code_ : new_code_;
      made.emplace(
          side.build, code, old_version ? old_loops_ : new_loops_,
          [this](const std::string& callee) { return same_callee(callee); }, escaped(side, code),
          [&side, &code](int64_t offset) { return local_at(side, code, offset); });
    }
    return *made;
  }

  // The local whose stack place holds CFA + `offset`, if one name does.
  static std::optional<LocalStorage> local_at(const TransferSide& side, const Code& code, int64_t offset) {
    if (!side.frame) return std::nullopt;
    std::optional<LocalStorage> found;
    for (const auto& local : side.frame->locals) {
      const int64_t size = size_of(side.types, local);
      // Its stack place anywhere: for the address of it, where it is at other times does not matter.
      std::vector<const LocalPlace*> places{&local.scope_slot};
      for (const auto& r : local.live) places.push_back(&r.place);
      for (const LocalPlace* place : places) {
        const std::optional<int64_t> at = code.place_offset(*place);
        if (!at || offset < *at || offset >= *at + std::max<int64_t>(size, 1)) continue;
        if (found && (found->name != local.name || found->start != *at)) return std::nullopt;
        found = LocalStorage{local.name, *at, *at + std::max<int64_t>(size, 1)};
      }
    }
    return found;
  }

  // A callee whose code both versions share (a library's, or the program's unchanged).
  bool same_callee(const std::string& name) {
    const Definition* a = old_.build.find(name);
    const Definition* b = new_.build.find(name);
    if (!a && !b) return true;
    return a && b && compare_.same_section(a->section, b->section);
  }

  // The frame bytes whose address the code takes: a local of DWARF's whole,
  // else 8 bytes; nullopt if one address is not followed.
  static std::optional<std::vector<std::pair<int64_t, int64_t>>> escaped(const TransferSide& side, const Code& code) {
    std::vector<std::pair<int64_t, int64_t>> out;
    for (size_t k = 0; k < code.ins.size(); ++k) {
      const Instruction& i = code.ins[k];
      if (i.ins.mnemonic != ZYDIS_MNEMONIC_LEA || !code.frame_based(i.ops[1])) continue;
      const auto at = code.frame_offset(k, i.ops[1]);
      if (!at) return std::nullopt;
      std::pair<int64_t, int64_t> range{*at, *at + 8};
      if (side.frame)
        for (const auto& local : side.frame->locals) {
          const int64_t size = size_of(side.types, local);
          if (auto slot = code.place_offset(local.scope_slot); slot && *slot <= *at && *at < *slot + std::max<int64_t>(size, 1))
            range = {std::min(range.first, *slot), std::max(range.second, *slot + size)};
        }
      out.push_back(range);
    }
    return out;
  }

  // Why a value computed from a call has no counterpart: the patch changes the callee.
  static std::string changed_calls(const Computations& computations) {
    if (computations.changed_callees().empty()) return "";
    std::string names;
    for (const auto& name : computations.changed_callees()) names += (names.empty() ? "" : ", ") + name;
    return fmt::format("; the new code computes it from a call to {}, which the patch changes, so the value the "
                       "old code got is not the one the new code expects",
                       names);
  }

  static std::string place_name(const TransferValue& v) {
    return v.kind == Kind::Register ? kRegisterNames[v.reg] : fmt::format("CFA{:+d}", v.offset);
  }

  // Where the old frame holds, at old instruction `ra`, a value of `width`
  // bytes computed as `expression`: a register or a slot of that width, or
  // for the low bytes of a value (lo32(...)), a place holding the value.
  std::optional<TransferValue> held_alike(size_t ra, const std::string& expression, int width) {
    auto held = old_values_.find(ra);
    if (held == old_values_.end()) {
      std::map<std::string, int> widths;
      auto values = computations(true).values_at(ra, &widths);
      held = old_values_.emplace(ra, std::make_pair(std::move(values), std::move(widths))).first;
    }
    const auto& [values, widths] = held->second;
    auto find = [&](const std::string& e, int w) -> std::optional<TransferValue> {
      auto it = values.find(e);
      if (it == values.end()) return std::nullopt;
      const auto wide = widths.find(e);
      const int has = it->second.kind == Kind::Register ? 8 : wide == widths.end() ? 8 : wide->second;
      if (has < w) return std::nullopt;
      return it->second;
    };
    if (auto found = find(expression, width)) return found;
    const std::string low = fmt::format("lo{}(", width * 8);
    if (width < 8 && expression.starts_with(low) && expression.ends_with(")"))
      return find(expression.substr(low.size(), expression.size() - low.size() - 1), 8);
    return std::nullopt;
  }

  // A C++ object (of a C++ function, or of a class whose name C does not
  // spell: templates, namespaces) holding pointers.
  bool may_point_into_itself(int type) const {
    const std::string spelled = new_.types.spell(type);
    const bool cxx = new_.build.symbol(new_.definition.section.object, new_.definition.symbol).name.starts_with("_Z") ||
                     spelled.find('<') != std::string::npos ||
                     spelled.find("::") != std::string::npos;
    return cxx && holds_pointer(new_.types, type);
  }

  static bool inside(const std::vector<std::pair<int64_t, int64_t>>& covered, int64_t at) {
    return std::any_of(covered.begin(), covered.end(), [&](const auto& c) { return c.first <= at && at < c.second; });
  }

  // The old function's local of that name (the last DWARF lists), if any.
  const FrameLocal* old_local(const std::string& name) const {
    const FrameLocal* found = nullptr;
    if (old_.frame)
      for (const auto& l : old_.frame->locals)
        if (l.name == name) found = &l;
    return found;
  }

  static bool integer(const Type& t) {
    return t.kind == TypeKind::Signed || t.kind == TypeKind::Unsigned || t.kind == TypeKind::Bool ||
           t.kind == TypeKind::Enum;
  }

  // The moves that carry a value of old type `a` at `from` over as new type
  // `b` at `to`, by the default rules of data transformation (src/data): an
  // integer converted as C converts it; a struct in memory member by member
  // (by name), its new members and padding zero. Anything else refuses.
  Status convert(int a, const TransferValue& from, int b, const TransferValue& to, const std::string& what,
                 std::vector<TransferMove>& out, int depth = 0) const {
    const Type& ta = old_.types.at(a);
    const Type& tb = new_.types.at(b);
    const std::string change = fmt::format("{} changes type from {} to {}", what, old_.types.spell(a), new_.types.spell(b));
    if (old_.types.layout(a) == new_.types.layout(b)) {
      if (from.kind == Kind::Register && to.kind == Kind::Register) out.push_back({from, to, 8, what});
      else if ((from.kind == Kind::Register || to.kind == Kind::Register) && tb.size > 8)
        return make_error("{}: a part is in a register in one version and larger than one", change);
      else out.push_back({from, to, tb.size, what});
      return ok();
    }
    if (integer(ta) && integer(tb)) {
      // C converts to _Bool by comparing with zero, not by truncating.
      if (tb.kind == TypeKind::Bool && ta.kind != TypeKind::Bool)
        return make_error("{}, which graft does not convert (to _Bool)", change);
      const std::set<uint64_t> sizes{1, 2, 4, 8};
      if (!sizes.count(ta.size) || !sizes.count(tb.size)) return make_error("{}, an integer of an unusual size", change);
      bool sign = ta.kind == TypeKind::Signed;
      if (ta.kind == TypeKind::Enum) sign = std::any_of(ta.enumerators.begin(), ta.enumerators.end(),
                                                        [](const auto& e) { return e.second < 0; });
      if (ta.kind == TypeKind::Enum || tb.kind == TypeKind::Enum)
        if (ta.enumerators != tb.enumerators)
          return make_error("{}: its enumerators changed, which a frame transfer does not renumber", change);
      out.push_back({from, to, to.kind == Kind::Register ? 8 : tb.size, what + " (converted)", ta.size, sign});
      return ok();
    }
    if (ta.kind != TypeKind::Struct || tb.kind != TypeKind::Struct || ta.name != tb.name || depth > 16)
      return make_error("{}, which a frame transfer converts only between integers or structs of one name", change);
    if (from.kind != Kind::Frame || to.kind != Kind::Frame)
      return make_error("{}: a struct in a register is not converted", change);
    if (may_point_into_itself(b))
      return make_error("{}: a C++ object holding pointers may point into itself and is not converted", change);
    // New members and padding: zero, as data's default transformer leaves them.
    for (uint64_t done = 0; done < tb.size; done += 8)
      out.push_back({{Kind::Constant, -1, 0}, {Kind::Frame, -1, to.offset + static_cast<int64_t>(done)},
                     std::min<uint64_t>(8, tb.size - done), what + " (new bytes: zero)"});
    for (const auto& mb : tb.members) {
      auto ma = std::find_if(ta.members.begin(), ta.members.end(), [&](const Member& m) { return m.name == mb.name; });
      if (ma == ta.members.end() || mb.name.empty()) continue;  // new: zero
      const std::string part = what + "." + mb.name;
      if (ma->bit_size || mb.bit_size)
        return make_error("{}: its bit-field {} is not converted by a frame transfer", change, mb.name);
      GRAFT_TRY(convert(ma->type, {Kind::Frame, -1, from.offset + static_cast<int64_t>(ma->offset)}, mb.type,
                        {Kind::Frame, -1, to.offset + static_cast<int64_t>(mb.offset)}, part, out, depth + 1));
    }
    return ok();
  }

  // Before each instruction reachable from `from`: the frame bytes every
  // path from `from` has written (a forward must-analysis; nullopt: not reached).
  std::vector<std::optional<std::set<int64_t>>> written_since(size_t from) const {
    const size_t n = new_code_.ins.size();
    std::vector<std::optional<std::set<int64_t>>> in(n);
    in[from] = std::set<int64_t>();
    std::vector<size_t> work{from};
    while (!work.empty()) {
      const size_t k = work.back();
      work.pop_back();
      std::set<int64_t> out = *in[k];
      const Instruction& i = new_code_.ins[k];
      for (uint8_t o = 0; o < i.ins.operand_count; ++o) {
        const auto& op = i.ops[o];
        if (op.type != ZYDIS_OPERAND_TYPE_MEMORY || i.ins.mnemonic == ZYDIS_MNEMONIC_LEA ||
            !(op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE))
          continue;
        if (auto offset = new_code_.frame_offset(k, op))
          for (int64_t b = *offset; b < *offset + std::max<int64_t>(op.size / 8, 1); ++b) out.insert(b);
      }
      auto flow = [&](size_t j) {
        if (!in[j]) {
          in[j] = out;
          work.push_back(j);
          return;
        }
        std::set<int64_t> both;
        std::set_intersection(in[j]->begin(), in[j]->end(), out.begin(), out.end(), std::inserter(both, both.end()));
        if (both.size() != in[j]->size()) {
          in[j] = std::move(both);
          work.push_back(j);
        }
      };
      if (new_code_.anywhere[k])
        for (size_t j = 0; j < n; ++j) flow(j);
      for (size_t j : new_code_.successors[k]) flow(j);
    }
    return in;
  }

  std::vector<size_t> reachable(size_t from) const {
    std::vector<bool> seen(new_code_.ins.size(), false);
    std::vector<size_t> work{from}, out;
    while (!work.empty()) {
      const size_t k = work.back();
      work.pop_back();
      if (seen[k]) continue;
      seen[k] = true;
      out.push_back(k);
      for (size_t j : new_code_.successors[k]) work.push_back(j);
    }
    return out;
  }

  // The whole 64-bit value instruction k gives register `reg`, if a
  // constant: `mov $imm, %r64`, `mov $imm, %r32` (zero-extended), `xor %r, %r`.
  std::optional<int64_t> constant_set(size_t k, int reg) const {
    const Instruction& i = new_code_.ins[k];
    const auto& dst = i.ops[0];
    if (dst.type != ZYDIS_OPERAND_TYPE_REGISTER || dwarf_number(dst.reg.value) != reg) return std::nullopt;
    const auto cls = ZydisRegisterGetClass(dst.reg.value);
    if (cls != ZYDIS_REGCLASS_GPR64 && cls != ZYDIS_REGCLASS_GPR32) return std::nullopt;
    const auto& src = i.ops[1];
    if (i.ins.mnemonic == ZYDIS_MNEMONIC_MOV && src.type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
      return cls == ZYDIS_REGCLASS_GPR64 ? src.imm.value.s
                                         : static_cast<int64_t>(static_cast<uint32_t>(src.imm.value.u));
    if (i.ins.mnemonic == ZYDIS_MNEMONIC_XOR && src.type == ZYDIS_OPERAND_TYPE_REGISTER &&
        src.reg.value == dst.reg.value)
      return 0;
    return std::nullopt;
  }

  // The value a new local of the new code has when its loop starts: the
  // one constant every definition reaching the return gives it, or else
  // every definition from before the loop the return is in (the value the
  // loop begins with: a thread moving in starts it afresh). Ginseng's rule
  // for new locals; anything not constant refuses.
  Result<TransferValue> initial_value(const std::string& name, const Placed& placed, size_t at) const {
    const TransferValue& place = placed.value;
    std::vector<std::set<size_t>> defs;
    std::function<std::optional<int64_t>(size_t)> value_at;
    if (place.kind == Kind::Register) {
      defs = register_definitions(new_code_, place.reg);
      value_at = [&, reg = place.reg](size_t k) { return constant_set(k, reg); };
    } else {
      const int64_t lo = place.offset, hi = place.offset + static_cast<int64_t>(std::max<uint64_t>(placed.size, 1));
      if (placed.size > 8) return make_error("local {} is new and larger than a register (graft gives a new local only "
                                             "a constant initial value)", name);
      for (size_t k = 0; k < new_code_.ins.size(); ++k)
        if (new_code_.ins[k].ins.mnemonic == ZYDIS_MNEMONIC_LEA)
          if (auto o = new_code_.frame_offset(k, new_code_.ins[k].ops[1]); o && *o < hi && *o + 8 > lo)
            return make_error("local {} is new and the code takes its address (graft gives a new local only a "
                              "constant initial value)", name);
      auto store_to = [&](size_t k) -> const ZydisDecodedOperand* {
        const Instruction& i = new_code_.ins[k];
        for (uint8_t o = 0; o < i.ins.operand_count; ++o) {
          const auto& op = i.ops[o];
          if (op.type != ZYDIS_OPERAND_TYPE_MEMORY || !(op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE)) continue;
          if (auto at = new_code_.frame_offset(k, op); at && *at < hi && *at + std::max<int64_t>(op.size / 8, 1) > lo)
            return &op;
        }
        return nullptr;
      };
      defs = reaching_definitions(new_code_, [&](size_t k) { return store_to(k) ? 1 : 0; });
      value_at = [&, lo, hi](size_t k) -> std::optional<int64_t> {
        const Instruction& i = new_code_.ins[k];
        const ZydisDecodedOperand* op = store_to(k);
        if (i.ins.mnemonic != ZYDIS_MNEMONIC_MOV || op != &i.ops[0] || new_code_.frame_offset(k, *op) != lo ||
            op->size / 8 != hi - lo)
          return std::nullopt;
        const auto& src = i.ops[1];
        if (src.type == ZYDIS_OPERAND_TYPE_IMMEDIATE) return src.imm.value.s;
        if (src.type != ZYDIS_OPERAND_TYPE_REGISTER) return std::nullopt;
        // A register set to one constant on every path to the store.
        const int reg = dwarf_number(src.reg.value);
        std::optional<int64_t> v;
        const auto definitions = register_definitions(new_code_, reg);
        for (size_t d : definitions[k]) {
          const auto c = d == kUndefined ? std::nullopt : constant_set(d, reg);
          if (!c || (v && *v != *c)) return std::nullopt;
          v = c;
        }
        return v;
      };
    }
    auto one_constant = [&](bool before_loop) -> Result<std::optional<int64_t>> {
      std::optional<int64_t> v;
      for (size_t k : defs[at]) {
        if (before_loop && k != kUndefined && new_loops_.same_loop(k, at)) continue;
        if (k == kUndefined) {
          if (!before_loop) return std::optional<int64_t>{};
          return make_error("local {} is new and the new code does not set it before its loop", name);
        }
        const auto c = value_at(k);
        if (!c || (v && *v != *c)) {
          if (!before_loop) return std::optional<int64_t>{};
          return make_error("local {} is new and the new code sets it to {} before its loop, at +{:#x} (graft gives "
                            "a new local only a constant initial value)", name, c ? "more than one value" : "a value "
                            "it computes", new_code_.at(k));
        }
        v = c;
      }
      if (!v && before_loop) return make_error("local {} is new and the new code does not set it before its loop", name);
      return v;
    };
    GRAFT_ASSIGN(auto everywhere, one_constant(false));
    if (!everywhere) {
      GRAFT_ASSIGN(everywhere, one_constant(true));
    }
    return TransferValue{Kind::Constant, -1, *everywhere};
  }

  // A register whose every definition reaching `at` (the return address)
  // gives a value graft can compute, the same for all: a stack address, a
  // constant, or a RIP-relative address (one symbol, so one value).
  Result<TransferValue> computed_before(int reg, size_t at) const {
    const auto reaching = register_definitions(new_code_, reg);
    auto refuse = [&] {
      return make_error("{} is live there but holds no local DWARF places (a value the compiler keeps for the loop)",
                        kRegisterNames[reg]);
    };
    std::optional<TransferValue> value;
    const Code::Reference* target = nullptr;  // the symbol of a RIP-relative value
    // One symbol and one address in it: one value.
    auto same_address = [](const Code::Reference* a, const Code::Reference* b) {
      return a && b && a->target.kind == b->target.kind && a->target.name == b->target.name &&
             a->target.section == b->target.section && a->at == b->at;
    };
    for (size_t k : reaching[at]) {
      if (k == kUndefined) return refuse();
      const Instruction& i = new_code_.ins[k];
      const auto& src = i.ops[1];
      std::optional<TransferValue> v;
      const Code::Reference* symbol = nullptr;
      const auto& ref = new_code_.refs[k];
      const bool rip_relative = src.type == ZYDIS_OPERAND_TYPE_MEMORY && src.mem.index == ZYDIS_REGISTER_NONE &&
                                whole(src.mem.base) == ZYDIS_REGISTER_RIP && ref;
      // A symbol's address: a RIP-relative lea, or a load from its GOT slot
      // (constant once linked: `mov stdin@GOTPCREL(%rip), %r14` before a loop of fgets).
      if (rip_relative && (i.ins.mnemonic == ZYDIS_MNEMONIC_LEA ||
                           (i.ins.mnemonic == ZYDIS_MNEMONIC_MOV && ref->got &&
                            ZydisRegisterGetClass(i.ops[0].reg.value) == ZYDIS_REGCLASS_GPR64))) {
        v = TransferValue{Kind::CodeAddress, -1, static_cast<int64_t>(new_code_.at(k))};
        symbol = &*ref;
      } else if (i.ins.mnemonic == ZYDIS_MNEMONIC_LEA) {
        if (auto offset = new_code_.frame_offset(k, src)) v = TransferValue{Kind::FrameAddress, -1, *offset};
      } else if (auto c = constant_set(k, reg)) {
        v = TransferValue{Kind::Constant, -1, *c};
      }
      if (!v) return refuse();
      const bool same = value && (v->kind == Kind::CodeAddress
                                      ? value->kind == Kind::CodeAddress && same_address(symbol, target)
                                      : v->kind == value->kind && v->offset == value->offset);
      if (value && !same) return refuse();
      value = v;
      target = symbol;
    }
    if (!value) return refuse();
    return *value;
  }

  const TransferSide& old_;
  const Code& old_code_;
  const TransferSide& new_;
  const Code& new_code_;
  const Liveness& live_;
  const Loops old_loops_, new_loops_;
  Comparator compare_;
  std::optional<Computations> old_computations_, new_computations_;
  std::map<size_t, std::pair<std::map<std::string, TransferValue>, std::map<std::string, int>>> old_values_;
};

}  // namespace

namespace {
// The name of each update point among `calls` (instruction indexes of calls
// to graft_update_point_reached), "" if unnamed. GRAFT_UPDATE_POINT("name")
// records (address, name) in the binary's non-loaded .graft.update_points
// section just before its call: the name is the first such call's at or
// after that address.
std::vector<std::string> point_names(const TransferSide& side, const Code& code, const std::vector<size_t>& calls) {
  std::vector<std::string> names(calls.size());
  const ElfSection* section = side.build.binary().section(kUpdatePointSection);
  if (!section || calls.empty()) return names;
  const auto data = section->data;
  const uint64_t last = side.address + code.at(calls.back());
  for (size_t at = 0; at + 8 < data.size();) {
    uint64_t address = 0;
    std::memcpy(&address, data.data() + at, 8);
    const auto* text = reinterpret_cast<const char*>(data.data() + at + 8);
    const size_t length = strnlen(text, data.size() - at - 8);
    at += 8 + length + 1;
    if (address < side.address || address > last) continue;
    for (size_t i = 0; i < calls.size(); ++i)
      if (side.address + code.at(calls[i]) >= address) {
        if (names[i].empty()) names[i] = std::string(text, length);
        break;
      }
  }
  return names;
}
}  // namespace

void find_transfers(const TransferSide& old_side, const TransferSide& new_side,
                    const std::function<std::string(uint64_t)>& where,
                    const std::function<bool(const std::string&)>& waits, const std::set<uint64_t>& continuing,
                    Continuation& c) {
  auto old_code = read_code(old_side.build, old_side.definition);
  auto new_code = read_code(new_side.build, new_side.definition);
  if (!old_code || !new_code) {
    c.not_transferable.push_back("its code cannot be decoded: " + (!old_code ? old_code.error() : new_code.error()).message);
    return;
  }
  for (const Code* code : {&*old_code, &*new_code})
    if (!code->problem.empty()) {
      c.not_transferable.push_back(fmt::format("no thread can move into the new code: in the {} code {}",
                                               code == &*old_code ? "old" : "new", code->problem));
      return;
    }
  const Liveness live = liveness(*new_code);
  Transfer transfer(old_side, *old_code, new_side, *new_code, live);
  // Calls to each callee, in order, in both versions.
  std::map<std::string, std::pair<std::vector<size_t>, std::vector<size_t>>> calls;
  for (size_t k = 0; k < old_code->ins.size(); ++k)
    if (!old_code->callees[k].empty()) calls[old_code->callees[k]].first.push_back(k);
  for (size_t k = 0; k < new_code->ins.size(); ++k)
    if (!new_code->callees[k].empty()) calls[new_code->callees[k]].second.push_back(k);
  for (const auto& [callee, pair] : calls) {
    const auto& [in_old, in_new] = pair;
    // Only where a thread waits: where it is found between iterations (a
    // waiting call, or an update point, where it waits while an update is pending).
    if (in_old.empty() || in_new.empty() || !(waits(callee) || callee == kUpdatePointCall)) continue;
    // Update points pair by name first (GRAFT_UPDATE_POINT("name")), then
    // by order; other calls by order.
    std::map<std::string, std::pair<std::vector<size_t>, std::vector<size_t>>> by_name;
    const auto old_names = callee == kUpdatePointCall ? point_names(old_side, *old_code, in_old) : std::vector<std::string>(in_old.size());
    const auto new_names = callee == kUpdatePointCall ? point_names(new_side, *new_code, in_new) : std::vector<std::string>(in_new.size());
    for (size_t i = 0; i < in_old.size(); ++i) by_name[old_names[i]].first.push_back(in_old[i]);
    for (size_t i = 0; i < in_new.size(); ++i) by_name[new_names[i]].second.push_back(in_new[i]);
    std::vector<std::tuple<size_t, size_t, std::string>> matched;
    for (const auto& [name, calls_named] : by_name) {
      const auto& [o, n] = calls_named;
      if (o.size() != n.size()) {
        if (!o.empty() && !n.empty())
          c.not_transferable.push_back(fmt::format("the calls to {}{}: {} in the old code, {} in the new (graft pairs "
                                                   "them by order{})", callee, name.empty() ? "" : " named " + name,
                                                   o.size(), n.size(), callee == kUpdatePointCall ?
                                                   "; name them with GRAFT_UPDATE_POINT(\"name\") to pair them by name" : ""));
        continue;
      }
      for (size_t i = 0; i < o.size(); ++i) matched.emplace_back(o[i], n[i], name);
    }
    std::sort(matched.begin(), matched.end());
    const uint64_t new_code_size =
        new_code->ins.empty() ? 0 : new_code->at(new_code->ins.size() - 1) + new_code->ins.back().ins.length;
    for (const auto& [from, to, name] : matched) {
      if (continuing.count(old_code->at(from) + old_code->ins[from].ins.length)) continue;
      const std::string line = where(new_side.address + new_code->at(to));
      const std::string at = fmt::format("the call to {}{}{}", callee, name.empty() ? "" : " (update point " + name + ")",
                                         line.empty() ? "" : " at " + line);
      auto t = transfer.at(from, to);
      if (!t) {
        c.not_transferable.push_back(fmt::format("{}: {}", at, t.error().message));
        continue;
      }
      if (const std::string wrong = malformed_transfer(*t, new_code_size); !wrong.empty()) {
        c.not_transferable.push_back(fmt::format("{}: the frame rebuild would need {}", at, wrong));
        continue;
      }
      t->at = at;
      c.transfers.push_back(std::move(*t));
    }
  }
}

}  // namespace graft::diff
