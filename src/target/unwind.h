// Unwinding a stopped thread's stack: the frames it is in, innermost first.
//
// Call-frame information where it covers the pc: the .eh_frame of the
// executable, of each shared library and of the vDSO, read through libdw
// (dwarf_getcfi_elf, dwarf_cfi_addrframe), so frames of code built without
// frame pointers (libc's) and signal frames (__restore_rt) are followed
// exactly. Where no CFI covers the pc (patch code mapped by graft, JIT
// code), the frame-pointer chain. One Unwinder serves a whole session: each
// module is opened once, the rules for each pc are decoded once, and a step
// is then a few reads from the stack already read.
#pragma once
#include <sys/types.h>
#include <sys/user.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "target/process.h"
#include "target/registers.h"

namespace graft {

// A stopped thread's stack, read in one piece from its stack pointer up.
// Words outside that piece (a stack a signal handler left for an alternate
// one) are read from the process one at a time.
class StackMemory {
 public:
  StackMemory(pid_t pid, uint64_t base, std::span<const uint8_t> bytes) : pid_(pid), base_(base), bytes_(bytes) {}
  std::optional<uint64_t> word(uint64_t address) const;
  uint64_t base() const { return base_; }
  uint64_t end() const { return base_ + bytes_.size(); }

 private:
  pid_t pid_;
  uint64_t base_;
  std::span<const uint8_t> bytes_;
};

struct StackFrame {
  enum class Found { Registers, Cfi, FramePointer };
  uint64_t pc = 0;           // where the frame is: the thread's pc, an interrupted pc, or a return address
  uint64_t sp = 0;           // its stack pointer: its data lies between it and its caller's
  uint64_t return_slot = 0;  // the stack word `pc` was read from (a frame returned into), else 0
  bool exact = true;         // pc is the instruction to run next, not a return address (the call is before it)
  bool signal_frame = false; // a signal trampoline (__restore_rt): the next frame is the interrupted code
  Found found = Found::Registers;  // how the frame was found: the thread's registers, CFI or a frame pointer
  uint64_t cfa = 0;          // its canonical frame address (its caller's sp before the call), 0 if unknown
  bool first = false;        // the thread's first frame: the CFI says nothing called it (the unwind is complete)
  // Its registers, by DWARF number (rax rdx rcx rbx rsi rdi rbp rsp r8..r15),
  // where known exactly: all of them in the thread's own frame (and one a
  // signal interrupted), the callee-saved ones the CFI recovers in callers.
  std::array<uint64_t, 16> registers{};
  uint32_t known_registers = 0;  // bit per register
  // Bit per register: the frame's value of it is still in the thread's
  // register of that number (no frame inside it saved and reused it), so
  // rewriting the thread's register rewrites the frame's.
  uint32_t registers_in_thread = 0;
  std::optional<uint64_t> reg(int number) const {
    if (number < 0 || number >= 16 || !(known_registers >> number & 1)) return std::nullopt;
    return registers[static_cast<size_t>(number)];
  }
};

class Unwinder {
 public:
  // `maps`: /proc/PID/maps, where the code of every module is.
  Unwinder(pid_t pid, const std::vector<MemoryMap>& maps);
  ~Unwinder();
  Unwinder(const Unwinder&) = delete;
  Unwinder& operator=(const Unwinder&) = delete;

  // The mappings were read again (a library was loaded since): modules
  // already open stay open.
  void set_maps(const std::vector<MemoryMap>& maps);

  // The frames of a stopped thread, innermost first, at most `limit`. Ends
  // where the CFI says the stack ends (the thread's first frame), or where
  // neither CFI nor a frame pointer leads to a frame further out.
  std::vector<StackFrame> unwind(const Registers& regs, const StackMemory& stack, size_t limit = 256);

  struct Module;  // one ELF file (or the vDSO) mapped in the process, with its CFI
  struct Rules;   // the CFA and register rules at one pc, decoded from the CFI

 private:
  struct CodeRange {
    uint64_t start = 0, end = 0, offset = 0;  // an executable mapping
    Module* module = nullptr;                 // nullptr: no ELF image (patch regions, anonymous code)
  };
  const CodeRange* code_at(uint64_t pc) const;
  void open(Module& module, const CodeRange& range);
  const Rules* rules_at(uint64_t pc);  // nullptr: no CFI covers pc

  pid_t pid_;
  std::map<std::string, std::unique_ptr<Module>> modules_;  // by path and load bias
  std::vector<CodeRange> code_;                              // executable mappings, by address
  std::unordered_map<uint64_t, const Rules*> rules_by_pc_;   // nullptr: no CFI covers that pc
  std::vector<std::unique_ptr<Rules>> rules_;
};

}  // namespace graft
