#include "apply/transfer.h"

#include <cstring>

#include "target/x86.h"

namespace graft::apply {
namespace {

using Kind = TransferValue::Kind;

// The address a RIP-relative `lea disp32(%rip), %reg` of the relocated new
// code computes (REX.W 8d /r with mod 00, r/m 101).
Result<uint64_t> lea_target(const link::Image& image, uint64_t address) {
  if (address < image.base || address + 7 > image.base + image.bytes.size())
    return make_error("internal: the new code's lea at {:#x} is outside the patch", address);
  const auto target = x86::rip_relative_lea_target(std::span(image.bytes).subspan(address - image.base, 7), address);
  if (!target) return make_error("internal: the new code at {:#x} is not a RIP-relative lea", address);
  return *target;
}

}  // namespace

Result<std::vector<DataWrite>> plan_frame_transfers(const TracedProcess& process,
                                                    const std::vector<FrameTransferTask>& tasks,
                                                    const std::map<pid_t, std::vector<StackFrame>>& frames,
                                                    const std::function<TransferTarget(const FrameTransferTask&)>& target,
                                                    const link::Image& image,
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
    const Registers& regs = thread->regs;
    // The thread must be exactly where the check saw it, with the frame the diff described.
    if (regs.rip != task.from || !frame.exact || frame.pc != task.from || frame.cfa != task.cfa)
      return fail("it moved since the check");
    if (static_cast<int64_t>(task.cfa - regs.rsp) != t->old_frame)
      return fail(fmt::format("its frame is {} bytes, the old code's is {}", task.cfa - regs.rsp, t->old_frame));
    const int64_t span = std::max(t->old_frame, t->new_frame);
    const uint64_t low = task.cfa - static_cast<uint64_t>(span);
    GRAFT_ASSIGN(const auto old_bytes, process.read(RemoteAddress(low), static_cast<size_t>(span)));
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
          const int64_t at = span + mv.from.offset;
          if (at < 0 || at + static_cast<int64_t>(mv.size) > span) return fail("a move reads outside its frame");
          std::memcpy(value.data(), old_bytes.data() + at, mv.size);
          break;
        }
        case Kind::FrameAddress: word = task.cfa + static_cast<uint64_t>(mv.from.offset); break;
        case Kind::Constant: word = static_cast<uint64_t>(mv.from.offset); break;
        case Kind::CodeAddress: {
          GRAFT_ASSIGN(word, lea_target(image, to.new_entry + static_cast<uint64_t>(mv.from.offset)));
          break;
        }
      }
      if (mv.from.kind != Kind::Frame) std::memcpy(value.data(), &word, std::min<size_t>(mv.size, 8));
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
      writes.push_back({low + i, {new_bytes.begin() + i, new_bytes.begin() + j}, {old_bytes.begin() + i, old_bytes.begin() + j}});
      i = j;
    }
  }
  return writes;
}

}  // namespace graft::apply
