// How a value in a frame was computed: the backward slice of a register or
// stack slot at a point of a function, written as one canonical expression
// ("sx32(call#1 open(load64(entry rsi+0x0), 0x80000))"). Two versions of a
// function that compute a value by equal expressions, once, before any loop,
// hold the same value: a frame moving from the old code into the new takes
// the old one where the new code keeps it (a loop bound the compiler hoisted,
// a call's result it spilled) though no DWARF local names either.
//
// What an expression may hold, each the same in both versions when equal:
// constants; the function's arguments and the caller's registers as it was
// entered; a symbol's address; loads through such addresses; plain integer
// arithmetic, extensions and conditional moves; and the result of a call by
// callee and order among the calls to it, with its arguments, when the callee
// itself is unchanged (`same_callee`). Anything else (a value from a loop, a
// frame address, a path that joins two values, the address of the program's
// writable data other than to load from it: the patch may move that data)
// has no expression.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "diff/build.h"
#include "diff/frame_code.h"

namespace graft::diff {

class Computations {
 public:
  // `escaped`: the CFA-relative byte ranges whose address the code takes
  // (what a callee may write through it), nullopt if one is not known.
  Computations(const Build& build, const Code& code, const std::function<bool(const std::string&)>& same_callee,
               std::optional<std::vector<std::pair<int64_t, int64_t>>> escaped);

  // The expression of what register `reg` (DWARF number) holds before
  // instruction `at`, if it has one.
  std::optional<std::string> of_register(int reg, size_t at);
  // The same for the `width` bytes at CFA + `offset`.
  std::optional<std::string> of_slot(int64_t offset, int width, size_t at);

  // The changed callees the last query met (a call whose result the patch's
  // code would compute otherwise), for the refusal.
  const std::set<std::string>& changed_callees() const { return changed_callees_; }

  // Every register and stack slot (8 or 4 bytes) holding a value with an
  // expression before instruction `at`, by expression (the first found).
  std::map<std::string, TransferValue> values_at(size_t at, std::map<std::string, int>* widths);

 private:
  std::optional<std::string> of_definition(int reg, size_t k);
  std::optional<std::string> operand(size_t k, const ZydisDecodedOperand& op);
  // The address a memory operand names; `loaded`: only to read from it.
  std::optional<std::string> address(size_t k, const ZydisDecodedOperand& op, bool loaded);
  // The program's own writable data: its address is no value to carry over,
  // since the patch may move it (a global whose type changed).
  bool movable(const Target& target) const;
  std::optional<std::string> flags_before(size_t k);
  std::optional<std::string> call(size_t k);
  // The one definition reaching `at` from `reaching`, outside every loop.
  std::optional<size_t> single(const std::set<size_t>& reaching) const;
  const std::vector<std::set<size_t>>& register_reaching(int reg);
  bool address_taken(int64_t lo, int64_t hi) const;

  const Build& build_;
  const Code& code_;
  const std::function<bool(const std::string&)> same_callee_;
  const Loops loops_;
  const std::optional<std::vector<std::pair<int64_t, int64_t>>> escaped_;
  std::map<int, std::vector<std::set<size_t>>> registers_;
  std::map<std::pair<int64_t, int>, std::vector<std::set<size_t>>> slots_;
  std::optional<std::vector<std::set<size_t>>> flags_;
  std::map<std::tuple<int, int64_t, int, size_t>, std::optional<std::string>> memo_;
  int depth_ = 0;
  std::set<std::string> changed_callees_;
};

}  // namespace graft::diff
