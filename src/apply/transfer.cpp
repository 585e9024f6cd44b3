#include "apply/transfer.h"

#include <cstring>

#include "target/x86.h"

namespace graft::apply {
namespace {

using Kind = TransferValue::Kind;

}  // namespace

// The address a RIP-relative `lea disp32(%rip), %reg` of the relocated new
// code computes (REX.W 8d /r with mod 00, r/m 101).
Result<uint64_t> new_code_lea_target(const link::Image& image, uint64_t address) {
  if (address < image.base || address + 7 > image.base + image.bytes.size())
    return make_error("internal: the new code's lea at {:#x} is outside the patch", address);
  const auto bytes = std::span(image.bytes).subspan(address - image.base, 7);
  if (const auto target = x86::rip_relative_lea_target(bytes, address)) return *target;
  // A load of a symbol's address from the patch's own GOT: the slot, as linked.
  const auto slot = x86::rip_relative_load_source(bytes, address);
  if (!slot) return make_error("internal: the new code at {:#x} is neither a RIP-relative lea nor a GOT load", address);
  if (*slot < image.base || *slot + 8 > image.base + image.bytes.size())
    return make_error("internal: the new code's GOT load at {:#x} reads outside the patch", address);
  uint64_t value = 0;
  std::memcpy(&value, image.bytes.data() + (*slot - image.base), 8);
  return value;
}

namespace {
// An integer of `size` bytes (the low bytes of `word`) as a 64-bit value.
uint64_t extend(uint64_t word, uint64_t size, bool sign) {
  if (size >= 8) return word;
  const unsigned bits = static_cast<unsigned>(size * 8);
  const uint64_t low = word & ((uint64_t{1} << bits) - 1);
  if (!sign || !(low >> (bits - 1) & 1)) return low;
  return low | ~((uint64_t{1} << bits) - 1);
}
}  // namespace

Result<std::vector<DataWrite>> plan_frame_transfers(const TracedProcess& process,
                                                    const std::vector<FrameTransferTask>& tasks,
                                                    const std::map<pid_t, std::vector<StackFrame>>& frames,
                                                    const std::function<TransferTarget(const FrameTransferTask&)>& target,
                                                    const link::Image& image, const WriteLog& pending,
                                                    std::map<pid_t, Registers>& registers) {
  std::vector<DataWrite> writes;
  for (const auto& task : tasks) {
    auto fail = [&](std::string why) {
      return make_error("thread {} cannot move into the new code of {}: {}; nothing was changed", task.tid,
                        task.function, why);
    };
    const TransferTarget to = target(task);
    const FrameTransfer* t = to.transfer;
    const Thread* thread = const_cast<TracedProcess&>(process).find(task.tid);
    auto f = frames.find(task.tid);
    if (!t || !thread || f == frames.end() || f->second.empty()) return fail("internal: its transfer is unknown");
    const StackFrame& frame = f->second.front();
    const Registers regs = pending.registers_of(*thread);
    // The thread must be exactly where the check saw it, with the frame the diff described.
    if (regs.rip != task.from || !frame.exact || frame.pc != task.from || frame.cfa != task.cfa)
      return fail("it moved since the check");
    if (static_cast<int64_t>(task.cfa - regs.rsp) != t->old_frame)
      return fail(fmt::format("its frame is {} bytes, the old code's is {}", task.cfa - regs.rsp, t->old_frame));
    const int64_t span = std::max(t->old_frame, t->new_frame);
    const uint64_t low = task.cfa - static_cast<uint64_t>(span);
    GRAFT_ASSIGN(auto old_bytes, process.read(RemoteAddress(low), static_cast<size_t>(span)));
    // As the commit's earlier writes leave it (pointers to moved objects rewritten).
    for (const auto& w : pending.writes()) {
      const uint64_t at = w.address.value(), end = at + w.bytes.size();
      for (uint64_t a = std::max(at, low); a < std::min(end, low + static_cast<uint64_t>(span)); ++a)
        old_bytes[a - low] = w.bytes[a - at];
    }
    std::vector<uint8_t> new_bytes = old_bytes;
    Registers next = regs;
    // Every value is read from the old frame (old_bytes, regs) before any is written.
    for (const auto& mv : t->moves) {
      std::vector<uint8_t> value(mv.size, 0);
      uint64_t word = 0;
      switch (mv.from.kind) {
        case Kind::Register: {
          const auto r = dwarf_register(mv.from.reg);
          if (!r) return fail("a move reads an unknown register");
          word = regs[*r];
          break;
        }
        case Kind::Frame: {
          if (mv.from_size) break;  // read as the integer it is, below
          const int64_t at = span + mv.from.offset;
          if (at < 0 || at + static_cast<int64_t>(mv.size) > span) return fail("a move reads outside its frame");
          std::memcpy(value.data(), old_bytes.data() + at, mv.size);
          break;
        }
        case Kind::FrameAddress: word = task.cfa + static_cast<uint64_t>(mv.from.offset); break;
        case Kind::Constant: word = static_cast<uint64_t>(mv.from.offset); break;
        case Kind::CodeAddress: {
          GRAFT_ASSIGN(word, new_code_lea_target(image, to.new_entry + static_cast<uint64_t>(mv.from.offset)));
          break;
        }
      }
      if (mv.from_size) {  // an integer whose type changed, converted as C does
        if (mv.from.kind == Kind::Frame) {
          const int64_t at = span + mv.from.offset;
          if (at < 0 || at + static_cast<int64_t>(mv.from_size) > span) return fail("a move reads outside its frame");
          word = 0;
          std::memcpy(&word, old_bytes.data() + at, mv.from_size);
        }
        word = extend(word, mv.from_size, mv.sign_extend);
      }
      if (mv.from.kind != Kind::Frame || mv.from_size) std::memcpy(value.data(), &word, std::min<size_t>(mv.size, 8));
      if (mv.to.kind == Kind::Register) {
        const auto r = dwarf_register(mv.to.reg);
        if (!r || *r == Reg::rsp) return fail("a move writes an unknown register");
        uint64_t v = 0;
        std::memcpy(&v, value.data(), std::min<size_t>(mv.size, 8));
        next[*r] = v;
      } else {
        const int64_t at = span + mv.to.offset;
        if (mv.to.kind != Kind::Frame || at < span - t->new_frame || at + static_cast<int64_t>(mv.size) > span)
          return fail("a move writes outside its new frame");
        std::memcpy(new_bytes.data() + at, value.data(), mv.size);
      }
    }
    next.rsp = task.cfa - static_cast<uint64_t>(t->new_frame);
    next.rip = task.to;
    next.leave_system_call();  // nothing to restart
    registers[task.tid] = next;
    // Only the bytes that change are written.
    for (size_t i = 0; i < new_bytes.size();) {
      if (new_bytes[i] == old_bytes[i]) {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < new_bytes.size() && new_bytes[j] != old_bytes[j]) ++j;
      writes.push_back({RemoteAddress(low + i), {new_bytes.begin() + i, new_bytes.begin() + j},
                        {old_bytes.begin() + i, old_bytes.begin() + j}});
      i = j;
    }
  }
  return writes;
}

Result<std::vector<uint8_t>> frame_rebuild_code(const FrameTransfer& t, uint64_t new_return,
                                                const std::function<Result<uint64_t>(int64_t)>& code_address) {
  auto fail = [&](const std::string& why) {
    return make_error("internal: the frame rebuild at {} cannot be generated: {}", t.at, why);
  };
  // At entry, rsp is the old frame's at the return: CFA - old_frame. The
  // thread first moves rsp below everything it touches (a signal arriving
  // meanwhile then lands below), and works from there (offsets from that
  // rsp): the old registers, the new ones, a temporary word, and a copy of
  // the old frame, read before anything is written (as plan_frame_transfers).
  const int64_t span = std::max(t.old_frame, t.new_frame);
  if (t.old_frame <= 0 || t.new_frame <= 0 || span % 8 || span > (1 << 20)) return fail("its frames are not plausible");
  constexpr int32_t kOldRegisters = 0, kNewRegisters = 8 * kGeneralRegisters, kTemporary = 16 * kGeneralRegisters;
  constexpr int32_t kSnapshot = kTemporary + 16;
  const int64_t scratch = (kSnapshot + span + 15) / 16 * 16;
  constexpr int64_t kGap = 256;  // between the lowest frame byte and the scratch area
  const int64_t lowered = (span - t.old_frame) + kGap + scratch;  // entry rsp - working rsp
  const int32_t cfa = static_cast<int32_t>(lowered + t.old_frame);  // the CFA, from the working rsp
  const int32_t snapshot_cfa = static_cast<int32_t>(kSnapshot + span);  // the CFA's place in the copy
  auto reg_slot = [](int32_t base, Reg r) { return base + 8 * dwarf_number(r); };

  x86::Assembler a;
  a.lea(Reg::rsp, static_cast<int32_t>(-lowered));
  for (int i = 0; i < kGeneralRegisters; ++i)
    if (static_cast<Reg>(i) != Reg::rsp) a.store(static_cast<Reg>(i), reg_slot(kOldRegisters, static_cast<Reg>(i)));
  a.lea(Reg::rax, static_cast<int32_t>(lowered));  // the old rsp
  a.store(Reg::rax, reg_slot(kOldRegisters, Reg::rsp));
  a.copy(cfa - static_cast<int32_t>(span), kSnapshot, static_cast<uint64_t>(span));
  a.copy(kOldRegisters, kNewRegisters, 8 * kGeneralRegisters);  // registers no move sets stay as they were
  for (const auto& mv : t.moves) {
    int32_t from = 0;
    switch (mv.from.kind) {
      case Kind::Register: {
        const auto r = dwarf_register(mv.from.reg);
        if (!r || mv.size > 8) return fail("a move reads an unknown register");
        from = reg_slot(kOldRegisters, *r);
        break;
      }
      case Kind::Frame:
        if (span + mv.from.offset < 0 || mv.from.offset + static_cast<int64_t>(mv.from_size ? mv.from_size : mv.size) > 0)
          return fail("a move reads outside its frame");
        from = snapshot_cfa + static_cast<int32_t>(mv.from.offset);
        break;
      case Kind::FrameAddress:
        a.lea(Reg::rax, cfa + static_cast<int32_t>(mv.from.offset));
        a.store(Reg::rax, kTemporary);
        from = kTemporary;
        break;
      case Kind::Constant:
      case Kind::CodeAddress: {
        uint64_t value = static_cast<uint64_t>(mv.from.offset);
        if (mv.from.kind == Kind::CodeAddress) {
          GRAFT_ASSIGN(value, code_address(mv.from.offset));
        }
        a.move_immediate_rax(value);
        a.store(Reg::rax, kTemporary);
        from = kTemporary;
        break;
      }
    }
    if (mv.from.kind != Kind::Frame && mv.size > 8) return fail("a move of a value is wider than a register");
    if (mv.from_size) {  // an integer whose type changed: extended (or truncated) as C converts it
      if (mv.from_size > 8 || mv.size > 8) return fail("a conversion is wider than a register");
      a.load_extended_rax(from, mv.from_size, mv.sign_extend);
      a.store(Reg::rax, kTemporary);
      from = kTemporary;
    }
    if (mv.to.kind == Kind::Register) {
      const auto r = dwarf_register(mv.to.reg);
      if (!r || *r == Reg::rsp) return fail("a move writes an unknown register");
      a.move_immediate_rax(0);  // a narrower value is zero-extended
      a.store(Reg::rax, reg_slot(kNewRegisters, *r));
      a.copy(from, reg_slot(kNewRegisters, *r), std::min<uint64_t>(mv.size, 8));
    } else {
      if (mv.to.kind != Kind::Frame || mv.to.offset < -t.new_frame || mv.to.offset + static_cast<int64_t>(mv.size) > 0)
        return fail("a move writes outside its new frame");
      a.copy(from, cfa + static_cast<int32_t>(mv.to.offset), mv.size);
    }
  }
  for (int i = 0; i < kGeneralRegisters; ++i)
    if (static_cast<Reg>(i) != Reg::rsp) a.load(static_cast<Reg>(i), reg_slot(kNewRegisters, static_cast<Reg>(i)));
  a.lea(Reg::rsp, cfa - static_cast<int32_t>(t.new_frame));
  a.jump_to(new_return);
  return a.code();
}

}  // namespace graft::apply
