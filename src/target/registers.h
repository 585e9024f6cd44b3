// A stopped thread's general-purpose registers, and the one numbering graft
// uses for them everywhere: x86-64 DWARF's (the CFI, DWARF locations, the
// patch format's frame moves and the migration's register rewrites all speak it).
#pragma once
#include <sys/user.h>

#include <array>
#include <cstdint>
#include <optional>

#include "target/address.h"

namespace graft {

enum class Reg : uint8_t { rax, rdx, rcx, rbx, rsi, rdi, rbp, rsp, r8, r9, r10, r11, r12, r13, r14, r15 };
inline constexpr int kGeneralRegisters = 16;

// The register with DWARF number `n`, if it is a general-purpose one.
constexpr std::optional<Reg> dwarf_register(int n) {
  return n >= 0 && n < kGeneralRegisters ? std::optional(static_cast<Reg>(n)) : std::nullopt;
}
constexpr int dwarf_number(Reg r) { return static_cast<int>(r); }
constexpr const char* register_name(Reg r) {
  constexpr const char* names[kGeneralRegisters] = {"rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
                                                    "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
  return names[static_cast<size_t>(r)];
}

// Call-clobbered by the System V ABI (besides the result registers rax and rdx).
constexpr bool call_clobbered_argument(Reg r) {
  return r == Reg::rcx || r == Reg::rsi || r == Reg::rdi || r == Reg::r8 || r == Reg::r9 || r == Reg::r10 ||
         r == Reg::r11;
}

// user_regs_struct as ptrace gives it (its fields by name: regs.rip), with
// indexed access by DWARF number that never casts.
struct Registers : user_regs_struct {
  Registers() : user_regs_struct{} {}
  Registers(const user_regs_struct& r) : user_regs_struct(r) {}

  uint64_t operator[](Reg r) const { return this->*field(r); }
  unsigned long long& operator[](Reg r) { return this->*field(r); }

  RemoteAddress pc() const { return RemoteAddress(rip); }
  RemoteAddress sp() const { return RemoteAddress(rsp); }
  // Stopped inside a system call (orig_rax holds its number), which the
  // kernel may restart when the thread resumes.
  bool in_system_call() const { return static_cast<int64_t>(orig_rax) >= 0; }
  // Resumes as code, never as a system call to restart.
  void leave_system_call() { orig_rax = ~0ull; }

 private:
  static constexpr unsigned long long user_regs_struct::* field(Reg r) {
    constexpr std::array<unsigned long long user_regs_struct::*, kGeneralRegisters> fields = {
        &user_regs_struct::rax, &user_regs_struct::rdx, &user_regs_struct::rcx, &user_regs_struct::rbx,
        &user_regs_struct::rsi, &user_regs_struct::rdi, &user_regs_struct::rbp, &user_regs_struct::rsp,
        &user_regs_struct::r8,  &user_regs_struct::r9,  &user_regs_struct::r10, &user_regs_struct::r11,
        &user_regs_struct::r12, &user_regs_struct::r13, &user_regs_struct::r14, &user_regs_struct::r15};
    return fields[static_cast<size_t>(r)];
  }
};

}  // namespace graft
