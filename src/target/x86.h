// Every x86-64 instruction graft writes into a target or recognises there,
// in one place: breakpoints, the injected system call, the entry redirect
// that graft-cc's patchable entries receive, and the few decodings the
// updater does by hand (anything more goes through Zydis).
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "target/registers.h"

namespace graft::x86 {

inline constexpr uint8_t kInt3 = 0xcc;
inline constexpr std::array<uint8_t, 2> kSyscall = {0x0f, 0x05};

inline bool is_syscall(std::span<const uint8_t> code) {
  return code.size() >= 2 && code[0] == kSyscall[0] && code[1] == kSyscall[1];
}

// A patchable entry (graft-cc: -fpatchable-function-entry=16,14): 14 bytes of
// padding before the symbol and a 2-byte NOP at it. Redirected, the padding
// holds `jmp *0(%rip); .quad target` and the entry `jmp .-14`: one 2-byte
// write switches it.
inline constexpr uint64_t kEntryPad = 14;
inline constexpr uint64_t kEntryBytes = 16;  // the padding and the entry's 2 bytes
using EntryBytes = std::array<uint8_t, kEntryBytes>;
inline constexpr EntryBytes kUnpatchedEntry = {0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
                                               0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x66, 0x90};

// The 2 bytes at an unpatched entry: graft-cc's (clang's) one 2-byte NOP,
// or graft-gcc's (gcc's) two 1-byte NOPs. A thread may stop between gcc's
// two: the entry is then inside the range a patch waits on (apply.cpp).
inline bool is_entry_nops(const uint8_t* c) {
  return (c[0] == kUnpatchedEntry[14] && c[1] == kUnpatchedEntry[15]) || (c[0] == 0x90 && c[1] == 0x90);
}
// The pad and entry of a function built with graft-cc or graft-gcc that no patch redirects.
inline bool is_unpatched_entry(std::span<const uint8_t> b) {
  return b.size() == kEntryBytes && std::all_of(b.begin(), b.begin() + kEntryPad, [](uint8_t x) { return x == 0x90; }) &&
         is_entry_nops(b.data() + kEntryPad);
}

// `jmp *0(%rip); .quad target`: a jump anywhere that needs no register.
inline constexpr uint64_t kAbsoluteJumpBytes = 14;
inline std::array<uint8_t, kAbsoluteJumpBytes> absolute_jump(uint64_t target) {
  std::array<uint8_t, kAbsoluteJumpBytes> b = {0xff, 0x25, 0, 0, 0, 0};
  std::memcpy(b.data() + 6, &target, 8);
  return b;
}

inline EntryBytes redirected_entry(uint64_t target) {
  EntryBytes b{};
  const auto jump = absolute_jump(target);
  std::memcpy(b.data(), jump.data(), jump.size());
  b[14] = 0xeb;
  b[15] = static_cast<uint8_t>(-16);
  return b;
}

inline bool is_redirected_entry(std::span<const uint8_t> b) {
  return b.size() == kEntryBytes && b[0] == 0xff && b[1] == 0x25 && b[2] == 0 && b[3] == 0 && b[4] == 0 &&
         b[5] == 0 && b[14] == 0xeb && b[15] == static_cast<uint8_t>(-16);
}

// Where a thread at an entry goes once its 2-byte instruction has run: a
// `jmp rel8` (a redirected entry) or the NOP.
inline uint64_t after_entry_instruction(uint64_t entry, uint8_t first, uint8_t second) {
  if (first == 0xeb) return entry + 2 + static_cast<int8_t>(second);
  return entry + 2;
}

// The address a RIP-relative `lea disp32(%rip), %reg` at `address` computes
// (REX.W 8d /r with mod 00, r/m 101), or nothing if the bytes are not one.
inline std::optional<uint64_t> rip_relative_lea_target(std::span<const uint8_t> b, uint64_t address) {
  if (b.size() < 7 || (b[0] & 0xf8) != 0x48 || b[1] != 0x8d || (b[2] & 0xc7) != 0x05) return std::nullopt;
  int32_t disp = 0;
  std::memcpy(&disp, b.data() + 3, 4);
  return address + 7 + static_cast<int64_t>(disp);
}

// The GOT slot a RIP-relative `mov disp32(%rip), %reg` (REX.W 8b /r with
// mod 00, r/m 101) at `address` loads from, or nothing if the bytes are not one.
inline std::optional<uint64_t> rip_relative_load_source(std::span<const uint8_t> b, uint64_t address) {
  if (b.size() < 7 || (b[0] & 0xf8) != 0x48 || b[1] != 0x8b || (b[2] & 0xc7) != 0x05) return std::nullopt;
  int32_t disp = 0;
  std::memcpy(&disp, b.data() + 3, 4);
  return address + 7 + static_cast<int64_t>(disp);
}

// Whether a function's frame is not set up yet (or already taken down) at
// code starting with these bytes: its return address is then at rsp, as
// the frame-pointer unwinder needs to know.
inline bool frame_not_set_up(std::span<const uint8_t> c) {
  return c.size() >= 2 && (c[0] == 0x55 /* push %rbp */ || c[0] == 0xc3 /* ret */ ||
                           is_entry_nops(c.data()) /* graft-cc's or graft-gcc's entry */ ||
                           c[0] == 0x90 || (c[0] == 0xff && c[1] == 0x25) /* a graft pad */);
}
// `mov %rsp,%rbp`: rbp is pushed, not yet the frame pointer.
inline bool is_frame_pointer_setup(std::span<const uint8_t> c) {
  return c.size() >= 3 && c[0] == 0x48 && c[1] == 0x89 && c[2] == 0xe5;
}

// Emits the few instruction forms graft's generated code needs (the frame
// rebuilds of transfer points): 64-bit and 8-bit moves between registers and
// rsp-relative memory, rsp-relative lea, an immediate into rax, and an
// absolute jump. Every form has a fixed length, so a sequence's size does
// not depend on the values in it.
class Assembler {
 public:
  void store(Reg from, int32_t rsp_offset);  // mov %from, off(%rsp)
  void load(Reg to, int32_t rsp_offset);     // mov off(%rsp), %to
  void store_al(int32_t rsp_offset);         // mov %al, off(%rsp)
  void load_al(int32_t rsp_offset);          // mov off(%rsp), %al
  void lea(Reg to, int32_t rsp_offset);      // lea off(%rsp), %to
  void move_immediate_rax(uint64_t value);   // movabs $value, %rax
  // An integer of `size` bytes (1, 2, 4, 8) at off(%rsp) into the whole of
  // rax, sign- or zero-extended (movsx/movzx/movslq/mov).
  void load_extended_rax(int32_t rsp_offset, uint64_t size, bool sign);
  void jump_to(uint64_t target);             // jmp *0(%rip); .quad target
  // Copies `size` bytes between rsp-relative places through rax.
  void copy(int32_t from, int32_t to, uint64_t size);
  const std::vector<uint8_t>& code() const { return code_; }

 private:
  void rsp_operand(uint8_t opcode, int reg, int32_t offset, bool wide, bool escape = false);
  std::vector<uint8_t> code_;
};

}  // namespace graft::x86
