#include "target/x86.h"

namespace graft::x86 {
namespace {

// The hardware encoding of a register (ModRM/REX), which is not its DWARF number.
int hardware_number(Reg r) {
  constexpr int numbers[kGeneralRegisters] = {0, 2, 1, 3, 6, 7, 5, 4, 8, 9, 10, 11, 12, 13, 14, 15};
  return numbers[static_cast<size_t>(r)];
}

}  // namespace

// [REX] [0F] opcode ModRM(mod 10, reg, r/m 100) SIB(rsp) disp32: `off(%rsp)`.
void Assembler::rsp_operand(uint8_t opcode, int reg, int32_t offset, bool wide, bool escape) {
  const uint8_t rex = static_cast<uint8_t>(0x40 | (wide ? 8 : 0) | (reg >= 8 ? 4 : 0));
  if (rex != 0x40) code_.push_back(rex);
  if (escape) code_.push_back(0x0f);
  code_.push_back(opcode);
  code_.push_back(static_cast<uint8_t>(0x80 | (reg & 7) << 3 | 4));
  code_.push_back(0x24);
  for (int i = 0; i < 4; ++i) code_.push_back(static_cast<uint8_t>(static_cast<uint32_t>(offset) >> (8 * i)));
}

void Assembler::store(Reg from, int32_t off) { rsp_operand(0x89, hardware_number(from), off, true); }
void Assembler::load(Reg to, int32_t off) { rsp_operand(0x8b, hardware_number(to), off, true); }
void Assembler::store_al(int32_t off) { rsp_operand(0x88, 0, off, false); }
void Assembler::load_al(int32_t off) { rsp_operand(0x8a, 0, off, false); }
void Assembler::lea(Reg to, int32_t off) { rsp_operand(0x8d, hardware_number(to), off, true); }

void Assembler::move_immediate_rax(uint64_t value) {
  code_.push_back(0x48);
  code_.push_back(0xb8);
  for (int i = 0; i < 8; ++i) code_.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

void Assembler::load_extended_rax(int32_t off, uint64_t size, bool sign) {
  switch (size) {
    case 1: rsp_operand(sign ? 0xbe : 0xb6, 0, off, true, true); break;  // movsbq / movzbq
    case 2: rsp_operand(sign ? 0xbf : 0xb7, 0, off, true, true); break;  // movswq / movzwq
    case 4: rsp_operand(sign ? 0x63 : 0x8b, 0, off, sign); break;        // movslq / movl (zero-extends)
    default: load(Reg::rax, off); break;
  }
}

void Assembler::jump_to(uint64_t target) {
  const auto jump = absolute_jump(target);
  code_.insert(code_.end(), jump.begin(), jump.end());
}

void Assembler::copy(int32_t from, int32_t to, uint64_t size) {
  uint64_t done = 0;
  for (; done + 8 <= size; done += 8) {
    load(Reg::rax, from + static_cast<int32_t>(done));
    store(Reg::rax, to + static_cast<int32_t>(done));
  }
  for (; done < size; ++done) {
    load_al(from + static_cast<int32_t>(done));
    store_al(to + static_cast<int32_t>(done));
  }
}

}  // namespace graft::x86
