#include "diff/startup.h"

#include <elf.h>

#include <algorithm>
#include <deque>
#include <functional>

#include "common/blocking_calls.h"
#include "diff/compare.h"
#include "diff/frame_code.h"
#include "patch/relocation.h"

namespace graft::diff {
namespace {

// How often a function (or one call site) runs in the life of the process,
// from least to most: the most repeating call site decides.
enum class Run : uint8_t { Never, Shutdown, Startup, Live, Again };

// Where an instruction of a living function is: before its service point
// (start-up), in it (runs again), after it (shutdown).
enum class Phase : uint8_t { Before, Serving, After };

// Library functions that read through every pointer passed to them (passing
// a global's address to anything else may write it).
const std::set<std::string> kReadOnlyCalls = {
    "printf", "fprintf", "dprintf", "vprintf", "vfprintf", "puts", "fputs", "fputc", "putc", "fwrite", "write",
    "send", "sendto", "sendmsg", "writev", "strlen", "strnlen", "strcmp", "strncmp", "strcasecmp", "strncasecmp",
    "strchr", "strrchr", "strstr", "strcasestr", "strspn", "strcspn", "strpbrk", "memchr", "memrchr", "memcmp",
    "strdup", "strndup", "atoi", "atol", "atoll", "atof", "open", "open64", "openat", "fopen", "fopen64", "access",
    "unlink", "mkdir", "rmdir", "chdir", "chroot", "getenv", "setenv", "syslog", "openlog", "perror", "warn",
    "warnx", "err", "errx", "free", "puts", "exit", "_exit", "abort", "__assert_fail", "inet_addr", "inet_ntoa",
    "getpwnam", "getgrnam", "opendir", "fnmatch", "regexec", "gethostbyname", "execv", "execvp", "execve"};

// Library calls that run a function once per process (its routine's argument register).
struct OnceCall {
  const char* name;
  int routine_register;  // DWARF number
};
constexpr OnceCall kOnceCalls[] = {{"pthread_once", 4 /* rsi */}};
constexpr int kThreadStartRegister = 1;  // rdx: pthread_create's start routine

constexpr int kArgumentRegs[] = {5, 4, 1, 2, 8, 9};  // rdi rsi rdx rcx r8 r9

int written_register(const Instruction& i) {
  if (i.ins.operand_count_visible == 0) return -1;
  const auto& o = i.ops[0];
  if (o.type == ZYDIS_OPERAND_TYPE_REGISTER && (o.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE)) return dwarf_number(o.reg.value);
  return -1;
}


// What the code does with an address held in a register: stores through it
// (where, relative to what the address points to: nullopt if indexed),
// keeps it in memory, or passes it to a call (in argument register `reg`).
struct AddressUse {
  enum Kind { Store, Kept, Passed } kind;
  size_t at = 0;
  std::optional<int64_t> offset;
  uint64_t size = 0;
  int reg = -1;
};

// Follows an address held in register `reg` before each of the instructions
// `starts` forward along the code (a few dozen instructions, every path),
// through register copies, lea and add of constants, until the registers
// holding it are overwritten.
void follow_address_from(const Code& code, const std::vector<std::vector<size_t>>& next,
                         const std::vector<size_t>& starts, int reg, int64_t offset,
                         const std::function<void(const AddressUse&)>& visit) {
  std::set<size_t> visited;
  std::vector<std::pair<size_t, std::map<int, int64_t>>> paths;
  for (size_t s : starts) paths.push_back({s, {{reg, offset}}});
  while (!paths.empty() && visited.size() < 64) {
    auto [j, regs] = std::move(paths.back());
    paths.pop_back();
    if (regs.empty() || !visited.insert(j).second) continue;
    const Instruction& x = code.ins[j];
    auto held = [&](ZydisRegister r) { return regs.count(dwarf_number(r)) > 0; };
    for (uint8_t o = 0; o < x.ins.operand_count_visible; ++o) {
      const auto& op = x.ops[o];
      if (op.type != ZYDIS_OPERAND_TYPE_MEMORY || !(op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE)) continue;
      if (held(op.mem.base))
        visit({AddressUse::Store, j,
               op.mem.index == ZYDIS_REGISTER_NONE ? std::optional<int64_t>(regs[dwarf_number(op.mem.base)] + op.mem.disp.value)
                                                   : std::nullopt,
               op.size / 8u});
      for (uint8_t p = 0; p < x.ins.operand_count_visible; ++p)
        if (p != o && x.ops[p].type == ZYDIS_OPERAND_TYPE_REGISTER && held(x.ops[p].reg.value))
          visit({AddressUse::Kept, j, std::nullopt, 0});
    }
    if (x.ins.meta.category == ZYDIS_CATEGORY_CALL) {
      for (int a : kArgumentRegs)
        if (regs.count(a)) visit({AddressUse::Passed, j, regs[a], 0, a});
      for (int r = 0; r < 16; ++r)
        if (kCallerSaved & (1u << r)) regs.erase(r);
    } else if (x.ins.mnemonic == ZYDIS_MNEMONIC_MOV && x.ins.operand_count_visible == 2 &&
               x.ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER && x.ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER &&
               held(x.ops[1].reg.value)) {
      regs[dwarf_number(x.ops[0].reg.value)] = regs[dwarf_number(x.ops[1].reg.value)];
    } else if (x.ins.mnemonic == ZYDIS_MNEMONIC_LEA && x.ops[1].mem.index == ZYDIS_REGISTER_NONE &&
               held(x.ops[1].mem.base)) {
      regs[dwarf_number(x.ops[0].reg.value)] = regs[dwarf_number(x.ops[1].mem.base)] + x.ops[1].mem.disp.value;
    } else if (x.ins.mnemonic == ZYDIS_MNEMONIC_ADD && x.ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
               x.ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE && held(x.ops[0].reg.value)) {
      regs[dwarf_number(x.ops[0].reg.value)] += x.ops[1].imm.value.s;
    } else if (const int w = written_register(x); w >= 0) {
      regs.erase(w);
    }
    if (code.leaves[j] || x.ins.meta.category == ZYDIS_CATEGORY_RET) continue;
    for (size_t s : next[j]) paths.push_back({s, regs});
  }
}

// The same for an address put into `reg` by instruction `k`.
void follow_address(const Code& code, const std::vector<std::vector<size_t>>& next, size_t k, int reg, int64_t offset,
                    const std::function<void(const AddressUse&)>& visit) {
  follow_address_from(code, next, next[k], reg, offset, visit);
}
}  // namespace

// What one function of the build is, as the analysis needs it.
struct StartupAnalysis::Facts {
  std::string identity;
  Code code;
  std::vector<std::vector<size_t>> next;  // successors, jump tables followed
  std::vector<bool> cyclic;               // on a cycle of the function's control flow
  std::vector<int> component;             // strongly connected component
  // Per instruction: the named thing its relocated field refers to, and the
  // address it yields relative to that thing (for a GOT load: the thing's
  // address, which the instruction loads).
  struct Reference {
    std::string name;
    bool function = false;
    int64_t offset = 0;
    bool got = false;
  };
  std::vector<std::optional<Reference>> refs;
  std::vector<Phase> phase;
  std::vector<bool> live_call;  // a call at the service point to a function that serves
  bool waits = false, serves = false;
  Run run = Run::Never;
  std::string why;  // how it comes to run as it does ("called from main before its service loop")
  // A living function another chooses among several at its service point
  // (redis's main: aeMain, or redis_check_aof_main when run as
  // redis-check-aof), or one such a function calls: the function that chooses.
  std::string mode_of;
};

StartupAnalysis::StartupAnalysis(const Build& build, std::set<std::string> old_globals)
    : build_(build), old_globals_(std::move(old_globals)) {}
StartupAnalysis::~StartupAnalysis() = default;

namespace {

std::vector<bool> reachable_from(const std::vector<std::vector<size_t>>& next, const std::vector<size_t>& starts) {
  std::vector<bool> seen(next.size(), false);
  std::deque<size_t> queue(starts.begin(), starts.end());
  while (!queue.empty()) {
    const size_t v = queue.front();
    queue.pop_front();
    for (size_t w : next[v])
      if (!seen[w]) {
        seen[w] = true;
        queue.push_back(w);
      }
  }
  return seen;
}

}  // namespace

const StartupAnalysis::Facts* StartupAnalysis::facts(const std::string& identity) {
  if (auto it = facts_.find(identity); it != facts_.end()) return it->second.get();
  auto& slot = facts_[identity];
  const Definition* def = build_.find(identity);
  if (!def || !def->function) return nullptr;
  auto code = read_code(build_, *def);
  if (!code) return nullptr;
  auto f = std::make_unique<Facts>();
  f->identity = identity;
  f->code = std::move(*code);
  const Code& c = f->code;
  const size_t n = c.ins.size();
  f->refs.resize(n);
  for (size_t k = 0; k < n; ++k) {
    const auto& r = c.refs[k];
    if (!r || r->target.kind != Target::Named) continue;
    const Definition* target = build_.find(r->target.name);
    f->refs[k] = Facts::Reference{r->target.name, target && target->function, r->got ? 0 : r->at, r->got};
  }
  // Successors, with the cases of a jump table where the table can be found
  // (a jump through a register loaded from a rip-relative table whose entries
  // the object's relocations give); otherwise anywhere.
  f->next = c.successors;
  for (size_t k = 0; k < n; ++k) {
    if (!c.anywhere[k]) continue;
    std::vector<size_t> cases = jump_table_cases(build_, *def, c, k);
    if (cases.empty())
      for (size_t j = 0; j < n; ++j) cases.push_back(j);
    f->next[k] = std::move(cases);
  }
  strongly_connected(f->next, f->component, f->cyclic);
  slot = std::move(f);
  return slot.get();
}

// Which functions run how often, and where each living function's service point is.
void StartupAnalysis::classify() {
  if (classified_) return;
  classified_ = true;
  std::vector<Facts*> all;
  for (const auto& [id, def] : build_.definitions())
    if (def.function && build_.objects()[def.section.object].tu.find("graft-transform:") != 0)
      if (facts(id)) all.push_back(facts_.at(id).get());
  auto callee_of = [&](const Facts& f, size_t k) -> const std::string& {
    return !f.code.callees[k].empty() ? f.code.callees[k] : f.code.tail_callees[k];
  };
  auto get = [&](const std::string& id) -> Facts* {
    auto it = facts_.find(id);
    return it == facts_.end() ? nullptr : it->second.get();
  };
  // Which functions wait (call a waiting library function, directly or not)
  // and which serve (have a loop that waits, or call one that serves).
  for (bool changed = true; changed;) {
    changed = false;
    for (Facts* f : all) {
      bool waits = f->waits, serves = f->serves;
      for (size_t k = 0; k < f->code.ins.size(); ++k) {
        const std::string& callee = callee_of(*f, k);
        if (callee.empty()) continue;
        const Facts* g = get(callee);
        const bool waiting = waits_in(callee);
        waits |= waiting;
        serves |= (waiting && f->cyclic[k]) || (g && g->serves);
      }
      if (waits != f->waits || serves != f->serves) {
        f->waits = waits;
        f->serves = serves;
        changed = true;
      }
    }
  }
  // Each function's service point: its last loops that wait or calls that
  // serve (rank 2), else its last waiting calls or loops that never end or
  // pass an update point (rank 1).
  for (Facts* f : all) {
    const size_t n = f->code.ins.size();
    f->phase.assign(n, Phase::Before);
    f->live_call.assign(n, false);
    std::vector<int> rank(n, 0);
    for (size_t k = 0; k < n; ++k) {
      const std::string& callee = callee_of(*f, k);
      const Facts* g = callee.empty() ? nullptr : get(callee);
      const bool waiting = waits_in(callee);
      if (f->cyclic[k] && (waiting || callee == kUpdatePointCall)) rank[k] = 2;
      else if (g && g->serves) rank[k] = 2;
      else if (waiting) rank[k] = 1;
    }
    // A loop with no way out is where the function lives too.
    for (size_t k = 0; k < n; ++k) {
      if (!f->cyclic[k] || rank[k]) continue;
      bool exits = false;
      for (size_t j = 0; j < n && !exits; ++j)
        if (f->component[j] == f->component[k])
          for (size_t w : f->next[j]) exits |= f->component[w] != f->component[k];
      for (size_t j = 0; j < n; ++j)
        if (f->component[j] == f->component[k] && f->code.leaves[j]) exits = true;
      if (!exits) rank[k] = 1;
    }
    const int top = *std::max_element(rank.begin(), rank.end(), [](int a, int b) { return a < b; });
    if (n == 0 || top == 0) continue;  // no service point: all of it runs as the function does
    // A node of the top rank is its component (a loop) or the call itself.
    std::vector<size_t> nodes;
    for (size_t k = 0; k < n; ++k)
      if (rank[k] == top) nodes.push_back(k);
    std::vector<bool> last_node(n, false);
    for (size_t k : nodes) {
      // Last: no other node of the top rank (outside its own loop) is reachable from it.
      const auto seen = reachable_from(f->next, {k});
      bool later = false;
      for (size_t j : nodes)
        if (seen[j] && f->component[j] != f->component[k] && j != k) later = true;
      if (!later) last_node[k] = true;
    }
    std::vector<size_t> serving;
    for (size_t k = 0; k < n; ++k) {
      bool in = last_node[k];
      for (size_t j : nodes)
        if (last_node[j] && f->cyclic[j] && f->component[j] == f->component[k]) in = true;
      if (in) serving.push_back(k);
    }
    const auto after = reachable_from(f->next, serving);
    for (size_t k = 0; k < n; ++k) f->phase[k] = after[k] ? Phase::After : Phase::Before;
    for (size_t k : serving) {
      f->phase[k] = Phase::Serving;
      const Facts* g = callee_of(*f, k).empty() ? nullptr : get(callee_of(*f, k));
      if (g && g->serves && !f->cyclic[k]) f->live_call[k] = true;
    }
    // What a serving loop reaches before it comes round again is in it too.
    for (size_t k = 0; k < n; ++k)
      if (f->phase[k] == Phase::After) {
        const auto back = reachable_from(f->next, {k});
        for (size_t s : serving)
          if (back[s] && f->cyclic[s]) {
            f->phase[k] = Phase::Serving;
            break;
          }
      }
  }
  // How often each function runs: from main, constructors and functions whose
  // address is taken, through call sites, the most repeating site deciding.
  std::deque<Facts*> queue;
  auto raise = [&](Facts* g, Run run, std::string why) {
    if (!g || run <= g->run) return;
    g->run = run;
    g->why = std::move(why);
    queue.push_back(g);
  };
  auto site_run = [&](const Facts& f, size_t k) {
    switch (f.run) {
      case Run::Live:
        if (f.live_call[k]) return Run::Live;
        return f.phase[k] == Phase::Before ? Run::Startup : f.phase[k] == Phase::Serving ? Run::Again : Run::Shutdown;
      default: return f.run;
    }
  };
  auto describe_site = [&](const Facts& f, size_t k) {
    if (f.run == Run::Live && f.phase[k] == Phase::Before)
      return fmt::format("called from {} before its service loop", f.identity);
    return fmt::format("called from {}, {}", f.identity, f.why);
  };
  raise(get("main"), Run::Live, "the program's main");
  // Constructors and anything else whose address the data holds.
  for (int o = 0; o < static_cast<int>(build_.objects().size()); ++o) {
    const auto& elf = *build_.objects()[o].elf;
    for (const auto& s : elf.sections()) {
      if (s.type != SHT_RELA || !(elf.sections()[s.info].flags & SHF_ALLOC)) continue;
      const ElfSection& target_section = elf.sections()[s.info];
      // Code, and what the toolchain keeps about it (unwind tables, patchable entries), hold no callbacks.
      if ((target_section.flags & SHF_EXECINSTR) || target_section.name.starts_with(".eh_frame") ||
          target_section.name.starts_with(".gcc_except_table") ||
          target_section.name.starts_with("__patchable_function_entries") ||
          target_section.name.starts_with(".debug") || target_section.name.starts_with(".llvm"))
        continue;
      const bool constructor = target_section.name.starts_with(".init_array") ||
                               target_section.name.starts_with(".ctors") ||
                               target_section.name.starts_with(".preinit_array");
      for (const auto& r : elf.relocations(s.info)) {
        // A function pointer is an absolute address of its entry; a relative
        // one into the middle of a function is a jump table's case.
        if (r.type != R_X86_64_64 && r.type != R_X86_64_32 && r.type != R_X86_64_32S) continue;
        auto t = resolve_target(build_, SectionRef{o, s.info}, r);
        if (!t || t->kind != Target::Named || t->offset != 0) continue;
        Facts* g = get(t->name);
        if (!g) continue;
        if (constructor) raise(g, Run::Startup, "a constructor");
        else raise(g, Run::Again, fmt::format("its address is in the program's data ({}: a callback)", target_section.name));
      }
    }
  }
  // Functions whose address the code takes: a thread's start routine runs as
  // the pthread_create that starts it, a pthread_once routine once, any other
  // as a callback (again).
  struct PassedTo {
    std::string callee;
    int reg = -1;
    size_t at = 0;
  };
  auto taken = [&](const Facts& f, size_t k) {  // the calls an address is passed to, and in which register
    std::vector<PassedTo> calls;
    if (const int reg = written_register(f.code.ins[k]); reg >= 0)
      follow_address(f.code, f.next, k, reg, 0, [&](const AddressUse& use) {
        if (use.kind == AddressUse::Passed) calls.push_back({f.code.callees[use.at], use.reg, use.at});
      });
    return calls;
  };
  // The once-control a call (at `at`) is given in its first argument: a global, or "".
  auto control_of = [&](const Facts& f, size_t at) {
    for (size_t k = 0; k < f.code.ins.size(); ++k) {
      const auto& ref = f.refs[k];
      if (!ref || ref->function) continue;
      for (const auto& c : taken(f, k))
        if (c.at == at && c.reg == kArgumentRegs[0]) return ref->name;
    }
    return std::string();
  };
  while (true) {
    for (Facts* f : all) {
      if (f->run == Run::Never) continue;
      for (size_t k = 0; k < f->code.ins.size(); ++k) {
        const Run site = site_run(*f, k);
        if (const std::string& callee = callee_of(*f, k); !callee.empty()) {
          Facts* g = get(callee);
          if (!g) continue;
          const bool was_live = g->run == Run::Live;
          raise(g, site, describe_site(*f, k));
          if (site == Run::Live && !was_live && g->run == Run::Live)
            g->mode_of = !f->mode_of.empty() ? f->mode_of : living_callees(*f) > 1 ? f->identity : "";
          continue;
        }
        const auto& ref = f->refs[k];
        if (!ref || !ref->function) continue;
        Facts* g = get(ref->name);
        if (!g) continue;
        const auto calls = taken(*f, k);
        auto passed = [&](const char* name, int reg) {
          return calls.size() == 1 && calls[0].callee == name && calls[0].reg == reg;
        };
        if (passed("pthread_create", kThreadStartRegister)) {
          raise(g, site == Run::Startup ? Run::Live : site, fmt::format("a thread started by {}", f->identity));
          continue;
        }
        // A once-routine runs no more if its control is the old version's
        // (already done); with a new control, the new code runs it.
        const bool once = std::any_of(std::begin(kOnceCalls), std::end(kOnceCalls),
                                      [&](const OnceCall& o) { return passed(o.name, o.routine_register); });
        const std::string control = once ? control_of(*f, calls[0].at) : "";
        if (once && old_globals_.count(control))
          raise(g, Run::Startup, fmt::format("run once through {} in {}, whose control {} is already done in the "
                                             "running process", calls[0].callee, f->identity, control));
        else
          raise(g, Run::Again, fmt::format("its address is taken in {} (a callback)", f->identity));
      }
    }
    if (queue.empty()) break;
    queue.clear();
  }
}

namespace {

// A write of watched state: where it lands relative to the global (nullopt: anywhere in it).
struct Write {
  size_t at = 0;
  std::optional<int64_t> offset;
  uint64_t size = 0;
};

}  // namespace

std::vector<StartupWrite> StartupAnalysis::find(const std::vector<StartupWatch>& watch) {
  classify();
  std::vector<StartupWrite> out;
  std::map<std::string, const StartupWatch*> by_global;
  for (const auto& w : watch) by_global[w.global] = &w;
  // A write of `global` by `writer` (its members it overlaps), made `how`.
  auto record = [&](const std::string& global, const Facts& writer, const Write& w, const std::string& how) {
    const StartupWatch& watched = *by_global.at(global);
    const uint64_t at = writer.code.at(w.at);
    if (watched.members.empty()) {
      out.push_back({global, "", writer.identity, at, how, !w.offset});
      return;
    }
    for (const auto& m : watched.members) {
      const bool overlaps = !w.offset || (*w.offset < static_cast<int64_t>(m.end) &&
                                          *w.offset + static_cast<int64_t>(std::max<uint64_t>(w.size, 1)) >
                                              static_cast<int64_t>(m.begin));
      if (overlaps) out.push_back({global, m.name, writer.identity, at, how, !w.offset});
    }
  };
  for (auto& [id, f] : facts_) {
    if (!f || f->run == Run::Never || f->run == Run::Shutdown) continue;
    // Code that runs again sets state only once when a once-flag of the old
    // version guards it: it tests a global and sets it to a constant, and
    // never to anything else (redis's activeExpireCycle sets its
    // timelimit_exit to 1 and back to 0: a flag, but not a once-flag).
    std::string once_flag;
    if (f->run == Run::Again || f->run == Run::Live) {
      std::set<std::string> tested, set_constant, set_otherwise;
      for (size_t k = 0; k < f->code.ins.size(); ++k) {
        const auto& ref = f->refs[k];
        if (!ref || ref->function || ref->got || !old_globals_.count(ref->name)) continue;
        const Instruction& i = f->code.ins[k];
        if (i.ins.mnemonic == ZYDIS_MNEMONIC_CMP || i.ins.mnemonic == ZYDIS_MNEMONIC_TEST ||
            ((i.ins.mnemonic == ZYDIS_MNEMONIC_MOVZX || i.ins.mnemonic == ZYDIS_MNEMONIC_MOV) && written_register(i) >= 0))
          tested.insert(ref->name);
        if (i.ins.mnemonic == ZYDIS_MNEMONIC_MOV && i.ins.operand_count_visible == 2 &&
            i.ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY)
          (i.ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE && i.ops[1].imm.value.u != 0 ? set_constant : set_otherwise)
              .insert(ref->name);
        // A C++ static local's guard variable (_ZGV...) of the old version: its initialisation is done.
        if (plain_name(ref->name).starts_with("_ZGV")) tested.insert(ref->name), set_constant.insert(ref->name);
      }
      for (const auto& flag : set_constant)
        if (tested.count(flag) && !set_otherwise.count(flag)) once_flag = flag;
    }
    auto phase_of = [&](size_t k) -> std::optional<std::string> {
      switch (f->run) {
        case Run::Startup: return f->why;
        case Run::Live:
          if (f->phase[k] == Phase::Before)
            return f->identity == "main" ? std::string("main before its service loop")
                                         : fmt::format("{} before its service loop ({})", f->identity, f->why);
          [[fallthrough]];
        default:
          if (!once_flag.empty() && f->phase[k] != Phase::After)
            return fmt::format("behind the once-flag {}, already set in the running process", once_flag);
          return std::nullopt;
      }
    };
    // Writes: direct stores, stores through a register holding the address,
    // the address passed to a call that may write through it or kept somewhere.
    std::vector<std::pair<std::string, Write>> writes;
    const size_t n = f->code.ins.size();
    for (size_t k = 0; k < n; ++k) {
      const auto& ref = f->refs[k];
      if (!ref || ref->function || !by_global.count(ref->name)) continue;
      const Instruction& i = f->code.ins[k];
      bool stored = false;
      for (uint8_t o = 0; o < i.ins.operand_count_visible; ++o)
        if (i.ops[o].type == ZYDIS_OPERAND_TYPE_MEMORY && i.ops[o].mem.base == ZYDIS_REGISTER_RIP &&
            ((i.ops[o].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) ||
             (by_global.at(ref->name)->any_use && i.ins.mnemonic != ZYDIS_MNEMONIC_LEA)) &&
            !ref->got) {
          writes.push_back({ref->name, {k, ref->offset, i.ops[o].size / 8u}});
          stored = true;
        }
      if (stored) continue;
      const bool address = ref->got || i.ins.mnemonic == ZYDIS_MNEMONIC_LEA;
      const int reg = written_register(i);
      if (!address || reg < 0) continue;
      follow_address(f->code, f->next, k, reg, ref->offset, [&](const AddressUse& use) {
        switch (use.kind) {
          case AddressUse::Store: writes.push_back({ref->name, {use.at, use.offset, use.size}}); break;
          case AddressUse::Kept: writes.push_back({ref->name, {use.at, std::nullopt, 0}}); break;
          case AddressUse::Passed:
            if (!kReadOnlyCalls.count(f->code.callees[use.at])) writes.push_back({ref->name, {use.at, std::nullopt, 0}});
            // Passed to the function the caller serves in (main's srvserve(&srv)): that
            // function's own start-up, before its loop, may set it through its parameter
            // (beanstalkd's `s->conns.setpos = conn_setpos`).
            if (f->live_call[use.at] && use.offset)
              if (const Facts* g = facts(f->code.callees[use.at]); g && g->run == Run::Live && !g->code.ins.empty())
                follow_address_from(g->code, g->next, {0}, use.reg, *use.offset, [&](const AddressUse& inner) {
                  if (g->phase[inner.at] != Phase::Before) return;
                  const std::string how = fmt::format("{} before its service loop, through the address {} passes it",
                                                      g->identity, f->identity);
                  if (inner.kind == AddressUse::Store)
                    record(ref->name, *g, {inner.at, inner.offset, inner.size}, how);
                  else if (inner.kind != AddressUse::Passed || !kReadOnlyCalls.count(g->code.callees[inner.at]))
                    record(ref->name, *g, {inner.at, std::nullopt, 0}, how);
                });
            break;
        }
      });
    }
    for (const auto& [global, w] : writes) {
      auto how = phase_of(w.at);
      if (!how || global == once_flag) continue;
      record(global, *f, w, *how);
    }
  }
  // One per global and member: a store of it where there is one (else a
  // call its address goes to), the first found, in a stable order.
  std::sort(out.begin(), out.end(), [](const StartupWrite& a, const StartupWrite& b) {
    return std::tie(a.global, a.member, a.through_address, a.function, a.offset) <
           std::tie(b.global, b.member, b.through_address, b.function, b.offset);
  });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const StartupWrite& a, const StartupWrite& b) { return a.global == b.global && a.member == b.member; }),
            out.end());
  return out;
}

std::string StartupAnalysis::startup_only(const std::string& function) {
  classify();
  auto it = facts_.find(function);
  return it != facts_.end() && it->second && it->second->run == Run::Startup ? it->second->why : "";
}

std::string StartupAnalysis::lives(const std::string& function) {
  classify();
  auto it = facts_.find(function);
  if (it == facts_.end() || !it->second || it->second->run != Run::Live) return "";
  const Facts& f = *it->second;
  // A frame whose only service point is a call as its last instruction (to
  // a function that never returns) is never returned into: it does not live there.
  bool serves = false, resumes = false;
  for (size_t k = 0; k < f.phase.size(); ++k) {
    if (f.phase[k] != Phase::Serving) continue;
    serves = true;
    resumes |= !(f.code.ins[k].ins.meta.category == ZYDIS_CATEGORY_CALL && k + 1 == f.phase.size());
  }
  return serves && resumes ? f.why : "";
}

std::string StartupAnalysis::mode_of(const std::string& function) {
  if (lives(function).empty()) return "";
  return facts_.at(function)->mode_of;
}

size_t StartupAnalysis::living_callees(const Facts& f) const {
  std::set<std::string> callees;
  for (size_t k = 0; k < f.code.ins.size(); ++k)
    if (f.live_call[k]) callees.insert(f.code.callees[k]);
  return callees.size();
}

bool StartupAnalysis::waits_in(const std::string& callee) const {
  if (callee.empty()) return false;
  if (is_blocking_call(callee)) return true;
  auto g = facts_.find(callee);
  return g != facts_.end() && g->second && g->second->waits;  // a function that serves waits too
}

std::vector<uint64_t> StartupAnalysis::service_returns(const std::string& function) {
  std::vector<uint64_t> out;
  if (lives(function).empty()) return out;
  const Facts& f = *facts_.at(function);
  for (size_t k = 0; k < f.phase.size(); ++k) {
    const std::string& callee = f.code.callees[k];
    if (f.phase[k] != Phase::Serving || callee.empty()) continue;
    if (waits_in(callee) || callee == kUpdatePointCall) out.push_back(f.code.at(k) + f.code.ins[k].ins.length);
  }
  return out;
}

bool StartupAnalysis::named_from(const std::vector<std::string>& roots, const std::string& global) {
  std::set<std::string> seen;
  std::vector<std::string> work = roots;
  while (!work.empty()) {
    const std::string id = work.back();
    work.pop_back();
    if (!seen.insert(id).second) continue;
    const Facts* f = facts(id);
    if (!f) continue;
    for (size_t k = 0; k < f->code.ins.size(); ++k) {
      if (!f->code.callees[k].empty()) work.push_back(f->code.callees[k]);
      if (!f->code.tail_callees[k].empty()) work.push_back(f->code.tail_callees[k]);
      if (f->refs[k] && f->refs[k]->name == global) return true;
    }
  }
  return false;
}

}  // namespace graft::diff
