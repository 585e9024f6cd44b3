#include "checkpoint/checkpoint.h"

#include "common/kill_point.h"

#include <sys/syscall.h>

#include "common/clock.h"

#include "target/trap_handler.h"
#include "target/unwind.h"
#include "target/x86.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <thread>

namespace graft {
namespace {

using Clock = std::chrono::steady_clock;

// GRAFT_TRACE=1 prints the time of each step of a stop, for tuning.
void trace(const char* what, Clock::time_point since) {
  static const bool enabled = std::getenv("GRAFT_TRACE") != nullptr;
  if (enabled)
    std::fprintf(stderr, "graft: trace: %-10s %6lld us\n", what,
                 static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - since).count()));
}

// The int3s planted for one search (TracedProcess keeps them); every byte
// is put back when the search ends, whatever its outcome.
// Killed-graft safety: while any int3 is planted, graft's SIGTRAP handler
// (target/trap_handler.h) is in the target and knows every one, so that a
// thread reaching one after graft died heals it instead of dying. An int3
// the handler's table has no room for is not planted (that thread is
// polled instead). Planting needs every thread stopped (the handler is
// installed with the first), and so does removing them all.
class Breakpoints {
 public:
  explicit Breakpoints(TracedProcess& process) : process_(process) {}
  ~Breakpoints() { remove_all(); }
  bool plant(uint64_t address) {
    const RemoteAddress at(address);
    if (process_.breakpoint_original(at)) return true;
    if (!handler_) {
      auto installed = TrapHandler::install(process_);
      if (!installed) return false;
      handler_.emplace(std::move(installed.value()));
    }
    auto original = process_.read(at, 1);
    return original && handler_->add(at, (*original)[0]) && process_.plant_breakpoint(at).ok();
  }
  void remove(uint64_t address) { process_.remove_breakpoint(RemoteAddress(address)); }
  void remove_all() {
    process_.remove_all_breakpoints();
    if (handler_) (void)handler_->remove();
    handler_.reset();
  }
  std::optional<uint8_t> original(uint64_t address) const { return process_.breakpoint_original(RemoteAddress(address)); }

 private:
  TracedProcess& process_;
  std::optional<TrapHandler> handler_;
};

// graft_update_pending in the target: raised while the update waits, always
// lowered again.
class PendingFlag {
 public:
  PendingFlag(TracedProcess& process, uint64_t address) : process_(process), address_(address) {}
  ~PendingFlag() { lower(); }
  bool raised() const { return raised_; }
  void raise() {
    if (!address_) return;
    const int lowered = 0;
    process_.journal().flag_raised(RemoteAddress(address_),
                                   std::span(reinterpret_cast<const uint8_t*>(&lowered), sizeof lowered));
    raised_ = set(1);
  }
  void lower() {
    if (raised_ && set(0)) process_.journal().flag_lowered();
    raised_ = false;
  }

 private:
  bool set(int value) {
    return address_ && process_.write(RemoteAddress(address_), std::span(reinterpret_cast<const uint8_t*>(&value), sizeof value)).ok();
  }
  TracedProcess& process_;
  uint64_t address_;
  bool raised_ = false;
};

struct ThreadState {
  bool safe = true;
  bool at_entry = false;
  std::optional<Blocker> blocker;
  uint64_t checkpoint = 0;  // where it leaves its outermost affected frame, if known
  std::vector<FrameRemap> remaps;  // frames waiting for a call in a continuable function
  std::optional<FrameTransferTask> transfer;  // just back from a call where its frame moves into new code
  bool checkpoint_waits = false;   // the checkpoint is a transfer point: a thread waits there
  std::vector<StackFrame> frames;  // innermost first
};

// The range `address` is in. A return address is never an entry (the pad
// before it holds no call): a word equal to one is a function pointer, such
// as a thread's start routine or a qsort comparison, and keeps no one.
const AffectedRange* find_range(const std::vector<AffectedRange>& ranges, uint64_t address, bool is_return) {
  for (const auto& r : ranges)
    if (is_return ? (!r.executing_only && address > r.start && address <= r.end && address != r.entry)
                  : (address >= r.start && address < r.end))
      return &r;
  return nullptr;
}

constexpr const char* kDefaultHint =
    "a function that never returns takes its threads only at a waiting call where its new code continues or at a "
    "transfer point (graft diff --explain says where); threads elsewhere in replaced code must leave it, and under "
    "load a longer --timeout gives busy ones more chances";

// Decides whether one stopped thread is at a safe point, and where it would be.
// Two analyses, and the thread is blocked if either finds an affected frame:
// the unwinder's frames (CFI, else frame pointers), and, as a safety net, any
// word of the stack that could be a return address into the ranges.
ThreadState analyse(const TracedProcess& process, Unwinder& unwinder, const Thread& t,
                    const std::vector<AffectedRange>& ranges, std::vector<MemoryMap>& maps) {
  ThreadState state;
  const uint64_t sp = t.regs.rsp & ~uint64_t{7};
  auto map = std::find_if(maps.begin(), maps.end(), [&](const MemoryMap& m) { return m.contains(sp); });
  if (map == maps.end()) {  // a thread newer than our copy of the maps
    if (auto fresh = read_maps(process.pid())) {
      maps = std::move(fresh).value();
      unwinder.set_maps(maps);
    }
    map = std::find_if(maps.begin(), maps.end(), [&](const MemoryMap& m) { return m.contains(sp); });
  }
  auto blocked_by = [&](std::string problem) {
    state.safe = false;
    state.blocker = Blocker{t.tid, t.name(), {}, std::move(problem)};
    return state;
  };
  if (map == maps.end()) return blocked_by("its stack is not mapped");
  auto stack = process.read(RemoteAddress(sp), std::min<uint64_t>(map->end, sp + (uint64_t{8} << 20)) - sp);
  if (!stack) return blocked_by("its stack cannot be read");
  const StackMemory memory(process.pid(), sp, *stack);
  state.frames = unwinder.unwind(t.regs, memory);
  const std::vector<StackFrame>& frames = state.frames;

  // Affected frames, innermost first, each with the index of the frame that
  // must return before the thread is out.
  std::vector<std::pair<size_t, BlockingFrame>> affected;
  std::vector<uint64_t> return_slots;
  for (size_t k = 0; k < frames.size(); ++k) {
    const StackFrame& f = frames[k];
    if (f.return_slot) return_slots.push_back(f.return_slot);
    const AffectedRange* range = find_range(ranges, f.pc, !f.exact);
    if (!range) continue;
    // A return address just past a function's last instruction: a call of a
    // function that never returns (nothing follows it), so never returned into.
    if (!f.exact && range->entry && f.pc == range->end) continue;
    if (f.exact && f.pc == range->entry) {
      state.at_entry |= k == 0;  // it takes the new jump when it runs on
      continue;
    }
    // Just back from a call where its frame moves into the new body.
    if (auto tr = range->transfers.find(f.pc); k == 0 && f.exact && f.cfa && tr != range->transfers.end()) {
      state.transfer = FrameTransferTask{t.tid, f.pc, tr->second, f.cfa, range->function};
      continue;
    }
    // Waiting for a call at a place where the new code continues: its return
    // slot is rewritten at the commit. A frame that executes the function
    // (not at a call boundary) still blocks.
    if (auto c = range->continues.find(f.pc); !f.exact && f.return_slot && c != range->continues.end()) {
      state.remaps.push_back({t.tid, RemoteAddress(f.return_slot), RemoteAddress(f.pc), RemoteAddress(c->second),
                              range->function, range->transfers.count(f.pc) > 0});
      continue;
    }
    affected.push_back({k, BlockingFrame{range->function, "", f.exact, f.exact ? f.pc : f.pc - 1,
                                         range->may_point_to_changed_data}});
  }
  // The safety net: a word that could be a return address into the ranges
  // and is no frame's (a frame the unwinder missed, or a stale value). It
  // counts for the frame whose data holds it, which must return before the
  // thread is out; reported only where it adds to the unwinder's chain.
  const auto* words = reinterpret_cast<const uint64_t*>(stack->data());
  const size_t count = stack->size() / 8;
  for (size_t i = 0; i < count; ++i) {
    const AffectedRange* range = find_range(ranges, words[i], true);
    if (!range) continue;
    const uint64_t slot = sp + 8 * i;
    if (std::find(return_slots.begin(), return_slots.end(), slot) != return_slots.end()) continue;
    size_t owner = frames.size() - 1;
    for (size_t k = 0; k + 1 < frames.size(); ++k)
      if (frames[k].sp <= slot && slot < frames[k + 1].sp) {
        owner = k;
        break;
      }
    if (affected.empty() || owner > affected.back().first)
      affected.push_back({owner, BlockingFrame{range->function, "", false, words[i] - 1,
                                               range->may_point_to_changed_data}});
  }
  if (affected.empty()) return state;
  state.safe = false;
  state.blocker = Blocker{t.tid, t.name(), {}, ""};
  for (auto& [k, frame] : affected) state.blocker->frames.push_back(std::move(frame));

  // The checkpoint: where the outermost affected frame returns to, or, if
  // it is a frame of a function with transfer points, the return of the
  // call it waits in, if that is one, else the function's first one.
  const size_t outermost = affected.back().first;
  // A thread in another call of that function comes round to it too (the
  // loop's wait), so it gets the same checkpoint.
  if (const StackFrame& f = frames[outermost]; !f.exact && affected.back().second.address == f.pc - 1)
    if (const AffectedRange* range = find_range(ranges, f.pc, true); range && !range->transfers.empty()) {
      state.checkpoint = range->transfers.count(f.pc) ? f.pc : range->transfers.begin()->first;
      state.checkpoint_waits = true;
      return state;
    }
  if (outermost + 1 < frames.size() && !frames[outermost + 1].exact) {
    const uint64_t target = frames[outermost + 1].pc;
    auto in_code = std::find_if(maps.begin(), maps.end(), [&](const MemoryMap& m) {
      return m.contains(target) && m.perms.size() > 2 && m.perms[2] == 'x';
    });
    if (in_code != maps.end() && !find_range(ranges, target, true)) state.checkpoint = target;
  }
  return state;
}

constexpr const char* kHolderHint =
    "a frame that may point to changed data keeps its thread only where DWARF does not say where that pointer is "
    "(graft diff --explain lists those places under \"wait\"); the thread is taken whenever a stop finds it "
    "elsewhere, so under load a longer --timeout gives it more chances, and a GRAFT_UPDATE_POINT in its loop, "
    "where it holds no such pointer, gives it a place to wait";

// What to do about the blockers: `hint` for changed code, the frame holders'
// own advice when that is what keeps a thread (both when both do).
std::string advice(const std::vector<Blocker>& blockers, const std::string& hint) {
  bool holders = false, code = false;
  for (const auto& b : blockers) {
    code |= !b.problem.empty();
    for (const auto& f : b.frames) (f.may_point_to_changed_data ? holders : code) = true;
  }
  if (!holders) return hint;
  return code ? hint + "; " + kHolderHint : kHolderHint;
}

// Source lines of every blocking frame, each address looked up once.
void locate(std::vector<Blocker>& blockers, const CheckpointOptions& options) {
  if (!options.source_line) return;
  std::map<uint64_t, std::string> lines;
  for (auto& b : blockers)
    for (auto& f : b.frames) {
      auto [it, added] = lines.try_emplace(f.address);
      if (added) it->second = options.source_line(f.address);
      f.where = it->second;
    }
}

// One line: each blocking thread with its chain of affected frames.
std::string describe(const std::vector<Blocker>& blockers, const std::string& hint) {
  constexpr size_t kThreads = 3, kFrames = 6;
  std::string out = blockers.size() == 1 ? "" : fmt::format("{} threads are blocked: ", blockers.size());
  for (size_t i = 0; i < blockers.size() && i < kThreads; ++i) {
    const Blocker& b = blockers[i];
    out += fmt::format("{}thread {} ({})", i ? "; " : "", b.tid, b.thread_name);
    if (!b.problem.empty()) out += ": " + b.problem;
    for (size_t k = 0; k < b.frames.size() && k < kFrames; ++k) {
      const BlockingFrame& f = b.frames[k];
      out += fmt::format("{} {}{} ({})", k ? ", called from" : " is in", f.function, f.where.empty() ? "" : " at " + f.where,
                         f.executing ? "executing it" : "on its stack");
    }
    if (b.frames.size() > kFrames) out += fmt::format(", and {} frames more", b.frames.size() - kFrames);
  }
  if (blockers.size() > kThreads) out += fmt::format("; and {} more", blockers.size() - kThreads);
  return out + fmt::format(" ({})", hint);
}

// Whether a stopped thread is blocked in a futex wait (a lock, a condition):
// interrupted inside the system call, which the kernel restarts.
bool waits_for_lock(const Registers& regs) {
  const auto result = static_cast<int64_t>(regs.rax);
  return regs.orig_rax == SYS_futex && result <= -512 && result >= -516;  // -ERESTARTSYS .. -ERESTART_RESTARTBLOCK
}

// The instruction at an entry, as a parked thread leaving it would execute it.
uint64_t past_entry(const TracedProcess& process, uint64_t entry, uint8_t first_byte) {
  auto second = process.read(RemoteAddress(entry + 1), 1);
  return x86::after_entry_instruction(entry, first_byte, second ? (*second)[0] : 0);
}

}  // namespace

Status at_safe_moment(TracedProcess& process, const std::vector<AffectedRange>& ranges,
                      const CheckpointOptions& options, CheckpointReport& report,
                      const std::function<Status()>& commit) {
  const auto search_started = Clock::now();
  const auto deadline = search_started + options.timeout;
  GRAFT_ASSIGN(auto maps, read_maps(process.pid()));
  Unwinder unwinder(process.pid(), maps);  // each module's CFI opened once for the whole session
  Breakpoints breakpoints(process);
  PendingFlag update_pending(process, options.update_pending_flag);
  std::set<uint64_t> waiting_places;  // entries and update points with an int3
  std::set<uint64_t> transfer_places;  // transfer points with an int3: waiting places with no entry to step over
  // Threads waiting at an entry, and how long they have waited while the
  // process ran: time with every thread stopped holds no one up.
  struct Parked {
    Clock::time_point counted_from;
    uint64_t held_us = 0;
  };
  std::map<pid_t, Parked> parked;
  auto backoff = std::chrono::microseconds(200);
  auto hold = options.hold_limit;  // doubles while parked threads must be let go before the others come
  // The last stop and check: a round costs at least this much, so a thread
  // may wait as long (holding it is no worse than the stop), and arrivals are
  // gathered as long before the next stop (the process runs at least half
  // of the time while the update waits, whatever the number of threads).
  std::chrono::microseconds round_cost(0);
  // Whether the last check came from threads reaching checkpoints. Those
  // checks see the threads at the same few places every time: a thread that
  // is blocked there (say, arriving at a replaced function's entry from a
  // frame that may point to changed data) would be seen blocked forever,
  // while a stop at any other moment could find it safe. So after such a
  // check the next one is made at a moment no thread chooses, as polling
  // would: dynamic checkpoints never do worse than stopping and checking.
  bool last_check_by_arrival = false;
  constexpr auto kLongestBackoff = std::chrono::microseconds(20000);

  auto release = [&](Thread& t) {
    // A transfer point's instruction is any: its int3 goes (other threads
    // parked there sit on the original byte) and comes back at the next round.
    if (transfer_places.count(t.regs.rip)) {
      breakpoints.remove(t.regs.rip);
      transfer_places.erase(t.regs.rip);
      return;
    }
    // Step over the entry's instruction by hand: the int3 stays for the others.
    if (auto byte = breakpoints.original(t.regs.rip)) {
      t.regs.rip = past_entry(process, t.regs.rip, *byte);
      (void)process.set_registers(t);
    }
  };

  // A thread stopped on one of our checkpoints: waits if it is at an entry
  // or an update point, else (a return checkpoint, one-shot) runs on, at
  // once if the others run.
  std::set<pid_t> just_returned;  // this round: stopped where a call returned (a return checkpoint)
  // `park`: false while the check to come must find threads where they run
  // by themselves (a thread at an entry steps over it and runs on; the
  // others run then).
  auto on_arrival = [&](Thread& t, bool others_run, bool park = true) {
    if (!t.trapped_at) return;
    ++report.arrivals;
    const uint64_t at = t.trapped_at.value();
    t.trapped_at = RemoteAddress();
    if (waiting_places.count(at) || transfer_places.count(at)) {
      if (!park) {
        release(t);
        process.resume(t);
        return;
      }
      parked.emplace(t.tid, Parked{Clock::now(), 0});
      kill_point("parked");
      return;
    }
    breakpoints.remove(at);
    if (others_run) process.resume(t);
    else just_returned.insert(t.tid);
  };

  for (;;) {
    ++report.attempts;
    const auto stopped_at = Clock::now();
    for (auto& [tid, p] : parked) p.held_us += micros_since(p.counted_from);
    GRAFT_TRY(process.stop_all());
    trace("stopped", stopped_at);
    just_returned.clear();
    for (auto& t : process.threads()) on_arrival(t, false);  // reached a checkpoint just before the stop
    std::vector<Blocker> blockers;
    std::vector<uint64_t> checkpoints;
    std::vector<FrameRemap> remaps;
    std::vector<FrameTransferTask> transfers;
    std::set<uint64_t> transfer_checkpoints;
    std::map<pid_t, std::vector<StackFrame>> frames;
    for (auto& t : process.threads()) {
      ThreadState state = analyse(process, unwinder, t, ranges, maps);
      if (state.blocker) blockers.push_back(*state.blocker);
      if (state.checkpoint) checkpoints.push_back(state.checkpoint);
      if (state.checkpoint_waits) transfer_checkpoints.insert(state.checkpoint);
      if (state.transfer) transfers.push_back(*state.transfer);
      remaps.insert(remaps.end(), state.remaps.begin(), state.remaps.end());
      frames[t.tid] = std::move(state.frames);
    }
    trace("checked", stopped_at);
    round_cost = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - stopped_at);
    for (const auto& [tid, p] : parked) report.hold_us = std::max(report.hold_us, p.held_us);
    if (blockers.empty()) {
      trace("safe", search_started);  // from the start of the search to this check
      update_pending.lower();
      breakpoints.remove_all();  // parked threads sit on the original entry bytes again
      report.remaps = std::move(remaps);
      report.transfers = std::move(transfers);
      report.frames = std::move(frames);
      report.just_returned = just_returned;
      Status committed = commit();
      trace("committed", stopped_at);
      // Refused for the moment only (nothing was written): every thread runs
      // on a little, and the search goes on until the deadline.
      if (!committed && committed.error().transient) {
        (void)process.resume_all();
        report.pause_us = std::max(report.pause_us, micros_since(stopped_at));
        parked.clear();
        waiting_places.clear();
        transfer_places.clear();
        if (Clock::now() >= deadline)
          return make_error("no safe moment within {} ms: at each one found, {}", options.timeout.count(),
                            committed.error().message);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        continue;
      }
      // Detaching resumes every thread: one stop for the whole update.
      if (committed && options.detach_after_commit) (void)process.detach();
      else (void)process.resume_all();
      report.pause_us = std::max(report.pause_us, micros_since(stopped_at));
      return committed;
    }
    if (Clock::now() >= deadline) {
      update_pending.lower();
      breakpoints.remove_all();
      (void)process.resume_all();
      report.pause_us = std::max(report.pause_us, micros_since(stopped_at));
      locate(blockers, options);
      report.blocking = blockers;
      report.hint = advice(blockers, options.hint.empty() ? kDefaultHint : options.hint);
      return make_error("no safe moment within {} ms: {}", options.timeout.count(), describe(blockers, report.hint));
    }
    if (options.dynamic_checkpoints) {
      for (uint64_t c : checkpoints)
        if (breakpoints.plant(c) && transfer_checkpoints.count(c)) transfer_places.insert(c);
      std::vector<uint64_t> places;
      for (const auto& r : ranges)
        if (r.entry) places.push_back(r.entry);
      if (options.update_point) places.push_back(options.update_point);
      for (uint64_t place : places)
        if (!waiting_places.count(place) && breakpoints.plant(place)) waiting_places.insert(place);
      if (options.update_pending_flag && !update_pending.raised()) update_pending.raise();
      kill_point("planted");
    }
    // Everyone runs on, but threads at an entry may wait there a while: as
    // long as no blocking thread waits for a lock (one of them may hold it).
    const auto hold_limit = std::max<std::chrono::microseconds>(hold, round_cost);
    bool lock_wait = false;
    for (const auto& b : blockers)
      if (const Thread* t = process.find(b.tid); t && !parked.count(b.tid) && waits_for_lock(t->regs)) lock_wait = true;
    bool let_go = false;
    for (auto& t : process.threads()) {
      // A thread parked at an entry with an affected frame under it (an
      // entry it reached from replaced code) holds nothing up by waiting
      // there: it must go on to leave that frame.
      const bool blocking = std::any_of(blockers.begin(), blockers.end(), [&](const Blocker& b) { return b.tid == t.tid; });
      auto p = parked.find(t.tid);
      if (p != parked.end() && !blocking && !lock_wait && p->second.held_us < static_cast<uint64_t>(hold_limit.count()))
        continue;
      if (p != parked.end()) {
        parked.erase(p);
        release(t);
        let_go |= !blocking;
      }
      process.resume(t);
    }
    if (let_go && !lock_wait) hold = std::min(hold * 2, std::max(options.max_hold, options.hold_limit));
    const auto resumed_at = Clock::now();
    for (auto& [tid, p] : parked) p.counted_from = resumed_at;
    report.pause_us = std::max(report.pause_us, micros_since(stopped_at));
    auto left = [&] {
      return std::max(std::chrono::microseconds(0),
                      std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now()));
    };
    const auto wait = std::min(backoff, left());
    if (last_check_by_arrival) {
      // A check at a moment of no thread's choosing: arrivals are served as
      // they come but do not end the wait, which is no longer than a thread
      // may be held. A thread reaching an entry steps over it and runs on
      // rather than waiting there: parked at the entry of a function it
      // calls from inside the patch's code (redis's main thread, in
      // readQueryFromClient's callees all the time under load), it would be
      // found inside at every such check, where a stop at a moment of no one's
      // choosing finds it outside now and then, as polling does.
      last_check_by_arrival = false;
      const auto until = Clock::now() + std::min(wait, hold_limit);
      for (auto now = Clock::now(); now < until; now = Clock::now()) {
        GRAFT_ASSIGN(auto arrived, process.wait_for_traps(std::chrono::duration_cast<std::chrono::microseconds>(until - now)));
        kill_point("wait");
        for (pid_t tid : arrived)
          if (Thread* t = process.find(tid)) on_arrival(*t, true, false);
      }
      backoff = std::min(backoff * 2, kLongestBackoff);  // spaced out as polling's checks are
      continue;
    }
    GRAFT_ASSIGN(auto arrived, process.wait_for_traps(parked.empty() ? wait : std::min(wait, hold_limit)));
    kill_point("wait");
    if (arrived.empty()) {
      backoff = std::min(backoff * 2, kLongestBackoff);
      continue;
    }
    last_check_by_arrival = true;
    // Gather the arrivals that follow before stopping everything again.
    const auto gather_until = Clock::now() + std::min({round_cost, hold_limit, left()});
    for (;;) {
      for (pid_t tid : arrived)
        if (Thread* t = process.find(tid)) on_arrival(*t, true);
      const auto now = Clock::now();
      if (now >= gather_until) break;
      GRAFT_ASSIGN(arrived, process.wait_for_traps(std::chrono::duration_cast<std::chrono::microseconds>(gather_until - now)));
    }
  }
}

}  // namespace graft
