// How a value in a frame was computed: the backward slice of a register or
// stack slot at a point of a function, written as one canonical expression
// ("sx32(call#1 open(load64(entry rsi)@3:9f.., #0x80000)@4:e1..)"). Two versions of a
// function that compute a value by equal expressions, once, before any loop,
// hold the same value: a frame moving from the old code into the new takes
// the old one where the new code keeps it (a loop bound the compiler hoisted,
// a call's result it spilled) though no DWARF local names either.
//
// What an expression may hold, each the same in both versions when equal:
// constants; the function's arguments and the caller's registers as it was
// entered; a symbol's address (a local's, as a call's argument only); loads through such addresses; plain integer
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

// A local of the frame as DWARF places it: its name and CFA-relative bytes.
struct LocalStorage {
  std::string name;
  int64_t start = 0, end = 0;
};

class Computations {
 public:
  // `escaped`: the CFA-relative byte ranges whose address the code takes
  // (what a callee may write through it), nullopt if one is not known.
  // `local_at`: the local whose stack place holds a CFA offset: it names a
  // frame address passed to a call, and bounds an indexed store (an array's
  // element) to the array.
  // `loops`: the code's (the caller has them already).
  Computations(const Build& build, const Code& code, const Loops& loops,
               const std::function<bool(const std::string&)>& same_callee,
               std::optional<std::vector<std::pair<int64_t, int64_t>>> escaped,
               std::function<std::optional<LocalStorage>(int64_t)> local_at);

  // The expression of what register `reg` (DWARF number) holds before
  // instruction `at`, if it has one.
  std::optional<std::string> of_register(int reg, size_t at);
  // The same for the `width` bytes at CFA + `offset`.
  std::optional<std::string> of_slot(int64_t offset, int width, size_t at);

  // The changed callees the last query met (a call whose result the patch's
  // code would compute otherwise), for the refusal.
  const std::set<std::string>& changed_callees() const { return changed_callees_; }

  // The stack slots of 8 or 4 bytes a mov stores to: (CFA offset, width).
  const std::set<std::pair<int64_t, int>>& stored_slots();

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
  // What may run before instruction `k` in one call of the function that a
  // load or a call there may see: its calls and its writes to memory outside
  // the frame, in address order, as "@COUNT:HASH". Two versions load or call
  // alike only after the same (`a = g; init();` is not `init(); a = g;`).
  std::string after(size_t k);
  // The one definition reaching `at` from `reaching`, outside every loop.
  std::optional<size_t> single(const std::set<size_t>& reaching) const;
  // The one expression every definition in `reaching` gives (`entry`: what
  // the function's entry gives, "" for nothing), when they all agree. One on
  // a cycle (a loop) must be `repeatable`: no call and no load from outside
  // the frame (a spill reloaded, a constant set again), so that it gives the
  // same value every time round.
  std::optional<std::string> agreed(const std::set<size_t>& reaching, const std::string& entry,
                                    const std::function<std::optional<std::string>(size_t)>& of);
  bool repeatable(size_t k) const;
  const std::vector<std::set<size_t>>& register_reaching(int reg);
  bool address_taken(int64_t lo, int64_t hi) const;
  // The array local an indexed frame operand (`-0x200(%rbp,%rbx,4)`) starts in.
  std::optional<LocalStorage> indexed_local(size_t k, const ZydisDecodedOperand& op) const;

  const Build& build_;
  const Code& code_;
  const std::function<bool(const std::string&)> same_callee_;
  const Loops& loops_;
  const std::optional<std::vector<std::pair<int64_t, int64_t>>> escaped_;
  const std::function<std::optional<LocalStorage>(int64_t)> local_at_;
  int arguments_ = 0;  // inside a call's arguments: a frame address may be named
  std::map<int, std::vector<std::set<size_t>>> registers_;
  std::map<std::pair<int64_t, int>, std::vector<std::set<size_t>>> slots_;
  std::optional<std::vector<std::set<size_t>>> flags_;
  std::optional<std::set<std::pair<int64_t, int>>> stored_;
  std::vector<std::vector<size_t>> predecessors_;
  std::map<size_t, std::string> after_;
  std::map<std::tuple<int, int64_t, int, size_t>, std::optional<std::string>> memo_;
  int depth_ = 0;
  std::set<std::string> changed_callees_;
};

}  // namespace graft::diff
