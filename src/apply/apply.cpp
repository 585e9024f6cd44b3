// graft apply / status / revert: an update of a live process, as a
// transaction (apply/transaction.h) whose phases are named below:
//
//   apply_patch:  ApplyUpdate::check -> link -> map -> run_update_code (prepare)
//                 -> commit (wait, plan, commit) -> finish
//   revert_latest: RevertUpdate, the same phases with the patch's own record.
#include "apply/apply.h"

#include "common/blocking_calls.h"
#include "common/kill_point.h"
#include "common/task_state.h"

#include <signal.h>
#include <unistd.h>

#include <elf.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>

#include "apply/link.h"
#include "apply/module.h"
#include "apply/registry.h"
#include "apply/transaction.h"
#include "apply/transfer.h"
#include "apply/update_code.h"
#include "apply/user_transform.h"
#include "checkpoint/checkpoint.h"
#include "common/clock.h"
#include "common/member_facts_format.h"
#include "elf/dwarf.h"
#include "elf/elf_file.h"
#include "migrate/frame_holders.h"
#include "migrate/migrate.h"
#include "patch/base_check.h"
#include "target/handover.h"
#include "target/process.h"
#include "target/remote.h"
#include "target/x86.h"

namespace graft {
namespace {

using Clock = std::chrono::steady_clock;

using registry::hex;
using registry::unhex;

// The two writes that switch a patchable entry from `previous` to `bytes`
// (x86::EntryBytes each, hex): for apply the pad first (unreachable until
// the entry's jump lands), for revert the entry's jump first.
void add_entry_writes(WriteLog& log, uint64_t entry, const std::string& bytes_hex, const std::string& previous_hex,
                      bool pad_first) {
  const auto bytes = unhex(bytes_hex), previous = unhex(previous_hex);
  const size_t pad = x86::kEntryPad;
  DataWrite pad_write{RemoteAddress(entry - pad), {bytes.begin(), bytes.begin() + pad},
                      {previous.begin(), previous.begin() + pad}};
  DataWrite jump_write{RemoteAddress(entry), {bytes.begin() + pad, bytes.end()}, {previous.begin() + pad, previous.end()}};
  if (pad_first) {
    log.add(std::move(pad_write));
    log.add(std::move(jump_write));
  } else {
    log.add(std::move(jump_write));
    log.add(std::move(pad_write));
  }
}

CheckpointOptions checkpoint_options(const ApplyOptions& options, pid_t pid, const Module& module, uint64_t bias) {
  CheckpointOptions c;
  c.timeout = options.timeout;
  c.max_hold = options.max_hold;
  c.dynamic_checkpoints = options.dynamic_checkpoints;
  // Addresses in the patched binary have lines in its own DWARF (graft-cc adds -g).
  const std::string binary = module.source_path(pid);
  c.source_line = [binary, bias, start = module.start, end = module.end](uint64_t address) {
    return address >= start && address < end ? source_line(binary, address - bias) : "";
  };
  return c;
}

// How the wait for a safe moment went, into an apply's or a revert's report
// and, when none came, the refusal.
template <typename Report>
void record_wait(const CheckpointReport& c, Report& report, Refusal* refusal) {
  report.pause_us = c.pause_us;
  report.hold_us = c.hold_us;
  report.arrivals = c.arrivals;
  report.attempts = c.attempts;
  if (refusal) *refusal = Refusal{c.blocking, c.hint, c.attempts, c.arrivals, c.pause_us};
}

MigrationInput::StoppedThread stopped_thread(const Thread& t) {
  return {t.tid, t.regs.rsp, t.regs.in_system_call(), false, t.regs, {}};
}

// Every copy of a function in the process, as the resolver knows them (plan_frame_holders).
CodeVersionsOf code_versions(const link::Resolver& resolver) {
  return [&resolver](const std::string& id) {
    std::vector<CodeVersion> code;
    for (const auto& v : resolver.versions(id)) code.push_back({v.address, v.size});
    return code;
  };
}

// Where a global lives now (MigrationInput::old_address).
std::function<Result<uint64_t>(const std::string&)> current_address(const link::Resolver& resolver, pid_t pid) {
  return [&resolver, pid](const std::string& id) -> Result<uint64_t> {
    if (auto elsewhere = resolver.interposed(id)) return *elsewhere;  // the copy a library's code uses
    if (auto d = resolver.current(id)) return d->address;
    return make_error("cannot find global {} in process {}", id, pid);
  };
}

// The running binary's static data as loaded (MigrationInput::static_data
// and name_static): its writable sections (.data.rel.ro too, read-only only
// after the loader relocated it), less the GOT, .dynamic and the constructor
// arrays, which the old code and the loader read; words named by the
// symbol of the object that holds them. Read before the wait, not inside
// the pause, and only for a plan that gives a global new storage (the
// search for pointers into it is its only use); and where the heap's type
// table is, for a plan that tells values by their tags.
struct StaticData {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  std::function<std::string(uint64_t)> name;
  bool kernel_words_typed = false;           // MigrationInput's
  std::optional<DescriptorScan> descriptors;  // MigrationInput's: scanned before the pause
  uint64_t heap_types_variable = 0;           // MigrationInput's
  void add_to(MigrationInput& input) const {
    input.heap_types_variable = heap_types_variable;
    input.static_data = ranges;
    input.name_static = name;
    input.kernel_words_typed = kernel_words_typed;
    input.descriptors = descriptors;
  }
};
// Whether no object mapped but `module` imports epoll_ctl: then only the
// module's code registers epoll watches, and its records say what their
// data words hold. (A raw syscall(SYS_epoll_ctl) elsewhere is not seen.)
bool only_module_registers_watches(pid_t pid, const Module& module) {
  auto maps = read_maps(pid);
  if (!maps) return false;
  std::set<std::pair<uint64_t, uint64_t>> seen;  // device, inode
  for (const auto& m : *maps) {
    if (m.offset != 0 || !m.inode || (m.start >= module.start && m.start < module.end)) continue;
    if (!seen.insert({m.device, m.inode}).second) continue;
    auto elf = open_mapped_elf(pid, m);
    if (!elf) continue;  // not an ELF file: no code
    for (const auto& symbol : (*elf)->dynamic_symbols())
      if (symbol.shndx == SHN_UNDEF && symbol.name == "epoll_ctl") return false;
  }
  return true;
}
Result<StaticData> read_static_data(const std::optional<DataPlan>& plan, pid_t pid, const Module& module, uint64_t bias) {
  StaticData out;
  if (plan && plan->kernel_data_pointee >= 0) out.kernel_words_typed = only_module_registers_watches(pid, module);
  // Which descriptors are epoll instances costs a readlink each: asked here,
  // while the process runs, not inside the pause (only new ones are, there).
  // So does which other processes have them open (every process's descriptors).
  if (plan && !plan->changes.empty())
    if (auto scanned = scan_descriptors(pid)) {
      out.descriptors = std::move(*scanned);
      find_shared_epolls(pid, *out.descriptors);
    }
  // Where the heap's type table is (graft-cc --graft-heap-types=on), for what the plan tells by its tags
  // (DataPlan::heap_types: untyped members and the elements of void ** arrays).
  const bool tagged = plan && !plan->heap_types.empty();
  const bool moved =
      plan && std::any_of(plan->roots.begin(), plan->roots.end(), [](const DataRoot& r) { return r.new_type >= 0; });
  if (!tagged && !moved) return out;
  GRAFT_ASSIGN(const auto binary, module.open(pid));
  std::map<uint64_t, std::pair<uint64_t, std::string>> objects;  // start -> size, name
  for (const auto& symbol : binary->symbols()) {
    if (symbol.type != STT_OBJECT || symbol.shndx == SHN_UNDEF) continue;
    if (symbol.name == kHeapTypesBase) out.heap_types_variable = symbol.value + bias;
    if (moved && symbol.size) objects[symbol.value + bias] = {symbol.size, symbol.name};
  }
  if (tagged && !out.heap_types_variable)
    return make_error("the patch tells what untyped members and void * arrays hold by the heap's type tags, but the "
                      "running binary has no {} (it was not built with graft-cc --graft-heap-types=on, or its "
                      "symbols are stripped): make the patch from the build the process runs; nothing was changed",
                      kHeapTypesBase);
  if (!moved) return out;
  for (const auto& s : binary->sections()) {
    if ((s.flags & (SHF_ALLOC | SHF_WRITE)) != (SHF_ALLOC | SHF_WRITE) || (s.flags & SHF_TLS) || !s.size) continue;
    if (s.name == ".got" || s.name == ".got.plt" || s.name == ".dynamic" || s.name == ".init_array" ||
        s.name == ".fini_array" || s.name == ".preinit_array")
      continue;
    out.ranges.emplace_back(s.addr + bias, s.size);
  }
  out.name = [objects = std::move(objects)](uint64_t address) {
    auto it = objects.upper_bound(address);
    if (it != objects.begin() && address < (--it)->first + it->second.first)
      return fmt::format("{}+{} ({:#x})", it->second.second, address - it->first, address);
    return fmt::format("the word at {:#x}", address);
  };
  return out;
}

// The entry of the code whose frames are roots, per frame holder (MigrationInput::frame_holder_entry).
std::function<uint64_t(const std::string&)> root_entries(const std::map<std::string, uint64_t>& roots) {
  return [&roots](const std::string& id) -> uint64_t {
    auto it = roots.find(id);
    return it == roots.end() ? 0 : it->second;
  };
}

// The live data of `plan` found and transformed with every thread stopped at
// `moment`, into `log`: apply's plan forwards, revert's inverse. `input`
// says where globals live and which frames are roots; the stopped threads,
// the new storage for objects that move (held by the transaction, kept if it
// commits) and the register rewrites are the same for both.
Result<MigrationReport> migrate_into(Transaction& transaction, const DataPlan& plan, const CheckpointReport& moment,
                                     MigrationInput& input, WriteLog& log, uint64_t& storage) {
  TracedProcess& process = transaction.process();
  for (const auto& t : process.threads()) {
    input.threads.push_back(stopped_thread(t));
    input.threads.back().just_returned = moment.just_returned.count(t.tid) > 0;
    if (auto f = moment.frames.find(t.tid); f != moment.frames.end()) input.threads.back().frames = f->second;
  }
  // New storage for objects that outgrow their allocation: anonymous memory
  // mapped by a system call in a stopped thread, never the target's malloc
  // (another thread may be stopped holding its lock); unmapped if the update fails.
  input.map_storage = [&](uint64_t bytes) -> Result<uint64_t> {
    GRAFT_ASSIGN(auto syscalls, RemoteSyscalls::open(process));
    GRAFT_ASSIGN(auto mapping, RemoteMapping::anonymous(syscalls, bytes, "objects that move"));
    storage = mapping.start().value();
    transaction.hold(std::move(mapping));
    return storage;
  };
  MigrationReport migration;
  GRAFT_ASSIGN(auto writes, plan_migration(plan, input, migration));
  log.append(std::move(writes));
  for (const auto& w : migration.epoll_writes) log.add_epoll_write(w);
  // A moving object's address in a thread's own frame, rewritten in its register.
  for (const auto& r : migration.register_writes) {
    const Thread* t = process.find(r.tid);
    if (!t) return make_error("internal: thread {}'s registers cannot be rewritten; nothing was changed", r.tid);
    Registers regs = log.registers_of(*t);
    regs[r.reg] = r.value;
    log.set_registers(r.tid, regs);
  }
  return migration;
}


// One `graft apply`: its state, phase by phase.
class ApplyUpdate {
 public:
  ApplyUpdate(pid_t pid, const Patch& patch, const ApplyOptions& options)
      : pid_(pid), patch_(patch), m_(patch.manifest), options_(options) {}
  ApplyUpdate(const ApplyUpdate&) = delete;
  ApplyUpdate& operator=(const ApplyUpdate&) = delete;

  // prepare, 1: the process runs the build the patch was made for, and does not have it yet.
  Status check();
  // prepare, 2: where everything the patch needs is in the target, what no
  // thread may be in at the commit, and the patch's region linked at its address.
  Status link();
  // prepare, 3: attached, and the region mapped (one thread stopped for it).
  Status map();
  // prepare, 4: the patch's update-time code run in one borrowed thread
  // while the others run (it gives new globals their values).
  Status run_update_code();
  Result<uint64_t> update_code_address(const std::string& id) const;
  // wait, plan and commit.
  Status commit(Refusal* refusal);
  // finish: the region stays, graft detaches.
  Result<ApplyReport> finish();

 private:
  void add_replaced_ranges();
  void add_frame_holder_ranges();
  Status lay_out();
  Status place_rebuilds(const std::vector<std::pair<const FunctionChange*, const FrameTransfer*>>& rebuilds);
  // plan: the commit's log, with every thread stopped at `moment`.
  Result<WriteLog> plan(const CheckpointReport& moment);
  Status plan_entries(WriteLog& log);
  Status plan_data(const CheckpointReport& moment, WriteLog& log);
  Status plan_frames(const CheckpointReport& moment, WriteLog& log);
  apply::TransferTarget transfer_target(const FrameTransferTask& task) const;

  const Clock::time_point started_ = Clock::now();
  pid_t pid_;
  std::optional<ProcessIdentity> identity_;  // the process check() read: still it once attached
  const Patch& patch_;
  const Manifest& m_;
  const ApplyOptions& options_;
  ApplyReport report_;

  std::vector<registry::Record> all_;      // every patch applied to the process, oldest first
  Module module_;                          // the binary this patch patches: the executable or a library
  std::vector<registry::Record> applied_;  // the patches already applied to it, oldest first
  std::optional<DataPlan> data_plan_;
  StaticData static_data_;  // read before the wait, for the commit
  std::vector<MemoryMap> maps_;
  uint64_t bias_ = 0;
  registry::Record record_;  // what this patch becomes in the target's registry
  std::unique_ptr<link::Resolver> resolver_;
  link::Image image_;

  // What the commit redirects, and the code no thread may be in at that moment.
  std::vector<AffectedRange> ranges_;
  // Frames may only be in the newest version of a function (each update
  // moved or waited out every frame of the older ones): that is the code the
  // patch's continuation map was computed from.
  std::map<std::string, std::pair<size_t, uint64_t>> newest_;  // identity -> its range, its entry
  std::map<std::string, uint64_t> frame_roots_;  // identity -> the entry of the code its frames run in

  std::unique_ptr<Transaction> transaction_;
};

Status ApplyUpdate::check() {
  GRAFT_TRY(check_attachable(pid_));
  GRAFT_ASSIGN(identity_, ProcessIdentity::take(pid_));
  GRAFT_ASSIGN(all_, registry::read_all(pid_));
  GRAFT_ASSIGN(maps_, read_maps(pid_));
  for (const auto& r : all_)
    if (r.patch_id == m_.patch_id) {
      if (const auto lost = lost_libraries(pid_, maps_, all_); lost.count(r.library)) return make_error("{}", lost.at(r.library));
      return make_error("patch {} is already applied to process {}", m_.patch_id, pid_);
    }
  GRAFT_ASSIGN(auto target, find_patch_target(pid_, maps_, all_, m_));
  module_ = std::move(target.module);
  applied_ = std::move(target.stack);
  if (applied_.empty()) {
    // The running binary itself: its build-id, and every symbol and import
    // slot the patch will link against, before anything is written.
    GRAFT_ASSIGN(const auto binary, module_.open(pid_));
    GRAFT_TRY(check_patch_base(m_, *binary, fmt::format("patch {}", m_.patch_id)));
  }
  record_.data.recorded = true;
  if (!patch_.data_plan.empty()) {
    GRAFT_ASSIGN(data_plan_, decode_data_plan(patch_.data_plan));
    report_.types_changed = data_plan_->changes.size();
    // What a revert will need: the plan back, or why there is none.
    if (data_plan_->inverse) record_.data.inverse = encode_data_plan(*data_plan_->inverse);
    record_.data.irreversible = data_plan_->irreversible;
    if (!data_plan_->inverse && record_.data.irreversible.empty())
      record_.data.irreversible = "it changes data, and the graft that made it planned no way back";
    for (const auto& [type, function] : data_plan_->user_transformers) record_.data.user_transformers.push_back(type);
  }
  return ok();
}

Status ApplyUpdate::link() {
  // Where the running binary's symbols are: from the first patch's record, or this patch's manifest.
  record_.sequence = all_.empty() ? 1 : all_.back().sequence + 1;
  record_.library = module_.library;
  if (!module_.is_executable()) record_.library_name = module_.name;
  record_.patch_id = m_.patch_id;
  record_.base_build_id = m_.base_build_id;
  record_.result_build_id = m_.result_build_id;
  record_.applied_at = utc_timestamp();
  const auto& base_symbols = applied_.empty() ? m_.base_symbols : applied_.front().base_symbols;
  const auto& base_imports = applied_.empty() ? m_.base_imports : applied_.front().base_imports;
  // The load bias: from the first patch's record, or the mapping and this patch's base.
  bias_ = applied_.empty() ? module_.start - m_.base_load_address : applied_.front().bias;
  if (applied_.empty()) {
    record_.has_root = true;
    record_.bias = bias_;
    record_.base_symbols = m_.base_symbols;
    record_.base_imports = m_.base_imports;
  }
  resolver_ = std::make_unique<link::Resolver>(pid_, bias_, module_.is_executable(), base_symbols, base_imports,
                                               applied_, maps_);
  for (const auto& f : m_.functions)
    if (f.replaces && resolver_->versions(f.identity).empty())
      return make_error("cannot find {} in process {}", f.identity, pid_);
  // A library's function the dynamic linker bound elsewhere (the
  // executable defines it too): the library's own calls go there, so its
  // replacement here is not what they run.
  for (const auto& f : m_.functions)
    if (f.replaces)
      if (auto elsewhere = resolver_->interposed(f.identity))
        report_.notes.push_back(fmt::format(
            "{} of {} is replaced, but the library's calls to it go to another definition at {:#x} (the "
            "executable's, which interposes it): patch that binary too for the new code to run", f.identity,
            module_.name, *elsewhere));
  // A library's global whose type changes gets new storage the library's
  // code is linked to; one the dynamic linker bound elsewhere (a copy
  // relocation into the executable) is used through its GOT slot, which
  // the patch does not rewrite.
  if (data_plan_)
    for (const auto& root : data_plan_->roots)
      if (auto elsewhere = resolver_->interposed(root.identity); elsewhere && root.new_type >= 0)
        return make_error("{} of {} changes type, and the library's code uses another copy of it at {:#x} (a copy "
                          "relocation into the executable, or another binary's definition): graft cannot give it new "
                          "storage; keep its type, or restart the program; nothing was changed",
                          root.variable, module_.name, *elsewhere);
  add_replaced_ranges();
  add_frame_holder_ranges();
  return lay_out();
}

void ApplyUpdate::add_replaced_ranges() {
  for (const auto& f : m_.functions) {
    if (!f.replaces) continue;
    auto versions = resolver_->versions(f.identity);
    const auto& canonical = versions.front();
    record_.entries.push_back({f.identity, canonical.address, {}, {}, {}});
    ranges_.push_back({canonical.address - x86::kEntryPad, canonical.address + std::max<uint64_t>(canonical.size, 2),
                       canonical.address, f.identity, {}, {}});
    for (size_t i = 1; i < versions.size(); ++i)
      ranges_.push_back({versions[i].address, versions[i].address + versions[i].size, 0, f.identity, {}, {}});
    newest_[f.identity] = {ranges_.size() - 1, versions.back().address};
    // A frame an earlier patch left waiting inside a call, to be rebuilt for
    // that patch's body when the call returns (or a thread running that
    // rebuild), must be gone before this one replaces the function again.
    // The rebuilds lie one after another at the end of that patch's text:
    // each reaches to the next (the last to the text's end).
    for (const auto& r : applied_)
      for (const auto& e : r.entries)
        if (e.identity == f.identity)
          for (const auto& [from, to] : e.continues)
            if (!std::any_of(versions.begin(), versions.end(),
                             [&](const registry::Definition& d) { return to >= d.address && to < d.address + d.size; })) {
              uint64_t end = std::max(to, r.text_end);
              for (const auto& other : r.entries)
                for (const auto& [other_from, other_to] : other.continues) {
                  // Another rebuild: a continuation outside the body that patch defines for its function.
                  const auto body = r.defines.find(other.identity);
                  const bool rebuild = body == r.defines.end() || other_to < body->second.address ||
                                       other_to >= body->second.address + body->second.size;
                  if (rebuild && other_to > to && other_to < end) end = other_to;
                }
              ranges_.push_back({to - 1, end, 0, f.identity + " (a frame on its way into an earlier patch's body)", {}, {}});
            }
  }
}

// Functions whose frames may point to changed data. Where DWARF says where
// such a local is, the frame is a root of the traversal at the commit
// (frame_holder_entry); elsewhere no thread may be at the commit.
void ApplyUpdate::add_frame_holder_ranges() {
  if (!data_plan_) return;
  frame_roots_ = plan_frame_holders(
      *data_plan_,
      code_versions(*resolver_),
      [&](const std::string& id) -> std::optional<uint64_t> {
        const auto replaced = newest_.find(id);
        if (replaced == newest_.end()) return std::nullopt;
        return replaced->second.second;
      },
      ranges_);
}

// The frame rebuilds of transfer points, in the order they are placed after
// the patch's text: a thread blocked inside the call at one of them at the
// commit returns into its rebuild (apply/transfer.h frame_rebuild_code).
std::vector<std::pair<const FunctionChange*, const FrameTransfer*>> rebuilds_to_place(const Manifest& m,
                                                                                     bool enabled) {
  std::vector<std::pair<const FunctionChange*, const FrameTransfer*>> out;
  if (!enabled) return out;
  for (const auto& f : m.functions)
    if (f.replaces)
      for (const auto& t : f.continuation.transfers) out.emplace_back(&f, &t);
  return out;
}

uint64_t round_up_16(uint64_t n) { return (n + 15) / 16 * 16; }

// Lays out and links the region; the header is sized for the record it will hold.
Status ApplyUpdate::lay_out() {
  const bool shadow_stack = uses_shadow_stack(pid_);
  // Return addresses cannot be rewritten under a shadow stack: such frames wait.
  const auto rebuilds = rebuilds_to_place(m_, options_.transfer_frames && !shadow_stack);
  uint64_t rebuild_bytes = 0;
  for (const auto& [f, t] : rebuilds) {
    GRAFT_ASSIGN(const auto code, apply::frame_rebuild_code(*t, 0, [](int64_t) -> Result<uint64_t> { return 0; }));
    rebuild_bytes += round_up_16(code.size());
  }
  for (uint64_t header = registry::encode(record_).size() + 4096 + 96 * (patch_.symbols.size() + record_.entries.size());;) {
    image_ = link::plan(patch_, header, rebuild_bytes);
    GRAFT_ASSIGN(image_.base, link::choose_address(maps_, module_.start, module_.end, image_.bytes.size(),
                                                   link::needs_low_address(patch_)));
    GRAFT_TRY(link::relocate(patch_, image_, *resolver_));
    record_.region_start = image_.base;
    record_.region_end = image_.base + image_.bytes.size();
    record_.text_start = image_.text_start;
    record_.text_end = image_.text_end;
    record_.defines.clear();
    for (const auto& s : patch_.symbols)
      if (s.piece >= 0 && !s.name.starts_with("piece:"))
        record_.defines[s.name] = {image_.piece_address[s.piece] + s.offset, s.size, s.function};
    // Globals of the running program the patch gives storage of its own: retyped (writable) or read-only copies.
    record_.data.storage.clear();
    const auto retyped = data_plan_ ? data_plan_->retyped_globals() : std::vector<std::string>{};
    for (const auto& [name, d] : record_.defines)
      if (auto before = d.function ? std::nullopt : resolver_->current(name))
        record_.data.storage.push_back(
            {name, before->address, d.address, std::find(retyped.begin(), retyped.end(), name) != retyped.end()});
    for (auto& e : record_.entries) {
      // What the entry holds now, so that the record mapped with the patch
      // says what to put back should this apply die in its commit (the
      // commit reads and checks it again).
      GRAFT_ASSIGN(const auto now, read_process_memory(pid_, RemoteAddress(e.address - x86::kEntryPad), x86::kEntryBytes));
      e.old_bytes = hex(now);
      e.new_bytes = hex(x86::redirected_entry(record_.defines.at(e.identity).address));
    }
    for (auto& e : record_.entries) {  // where frames waiting for a call continue
      if (shadow_stack) break;         // their return addresses cannot be rewritten: they wait
      const FunctionChange& f = *std::find_if(m_.functions.begin(), m_.functions.end(),
                                              [&](const FunctionChange& c) { return c.identity == e.identity; });
      const auto [range, from] = newest_.at(e.identity);
      e.continues.clear();
      ranges_[range].continues.clear();
      for (const auto& [old_offset, new_offset] : f.continuation.returns) {
        e.continues.emplace_back(from + old_offset, record_.defines.at(e.identity).address + new_offset);
        ranges_[range].continues.emplace(e.continues.back());
      }
      ranges_[range].transfers.clear();  // where a thread just back from a call moves into the new body
      if (options_.transfer_frames)
        for (const auto& t : f.continuation.transfers)
          ranges_[range].transfers.emplace(from + t.old_return, record_.defines.at(e.identity).address + t.new_return);
    }
    GRAFT_TRY(place_rebuilds(rebuilds));
    const std::string encoded = registry::encode(record_);
    if (encoded.size() <= image_.header_capacity) {
      std::memcpy(image_.bytes.data(), encoded.data(), encoded.size());
      return ok();
    }
    header = encoded.size() + 4096;
  }
}

// Each frame rebuild, generated for its addresses, placed after the text; a
// frame waiting inside the call at its transfer point continues there (the
// revert maps it back, as it does continued frames).
Status ApplyUpdate::place_rebuilds(const std::vector<std::pair<const FunctionChange*, const FrameTransfer*>>& rebuilds) {
  uint64_t at = image_.generated_code;
  for (const auto& [f, t] : rebuilds) {
    const uint64_t new_entry = record_.defines.at(f->identity).address;
    GRAFT_ASSIGN(const auto code, apply::frame_rebuild_code(*t, new_entry + t->new_return, [&](int64_t offset) {
                   return apply::new_code_lea_target(image_, new_entry + static_cast<uint64_t>(offset));
                 }));
    std::memcpy(image_.bytes.data() + (at - image_.base), code.data(), code.size());
    const auto [range, from] = newest_.at(f->identity);
    auto e = std::find_if(record_.entries.begin(), record_.entries.end(),
                          [&](const registry::Entry& x) { return x.identity == f->identity; });
    e->continues.emplace_back(from + t->old_return, at);
    ranges_[range].continues.emplace(e->continues.back());
    at += round_up_16(code.size());
  }
  return ok();
}

Status ApplyUpdate::map() {
  GRAFT_ASSIGN(transaction_, Transaction::begin(pid_));
  GRAFT_TRY(identity_->still_same());
  TracedProcess& process = transaction_->process();
  report_.patch_id = m_.patch_id;
  report_.sequence = record_.sequence;
  report_.region = image_.base;
  // Mapping the patch needs one thread only; the others run on meanwhile.
  const pid_t injector = process.threads().front().tid;
  const auto prepare_started = Clock::now();
  GRAFT_TRY(process.stop_one(injector));
  Status mapped = [&]() -> Status {
    // Thread-local offsets are checked against a real thread before anything is mapped.
    GRAFT_TRY(resolver_->verify_thread_locals(process.find(injector)->regs.fs_base));
    GRAFT_ASSIGN(auto syscalls, RemoteSyscalls::open(process));
    std::vector<RemoteSegment> segments;
    for (const auto& s : image_.segments) segments.push_back({s.offset, s.size, s.prot});
    GRAFT_ASSIGN(auto region, map_image(syscalls, RemoteAddress(image_.base), image_.bytes, segments,
                                        registry::memfd_name(record_.sequence, m_.patch_id)));
    transaction_->hold(std::move(region));
    return ok();
  }();
  (void)process.resume_one(injector);
  report_.prepare_us = micros_since(prepare_started);
  return mapped;
}

// The patch's own definitions (its new globals, the new version of a
// function it replaces), else the running version's: where update-time code
// and what it names are.
Result<uint64_t> ApplyUpdate::update_code_address(const std::string& id) const {
  if (auto it = record_.defines.find(id); it != record_.defines.end()) return it->second.address;
  if (auto d = resolver_->canonical(id)) return d->address;
  return make_error("cannot find {} in process {} for the update-time code", id, pid_);
}

Status ApplyUpdate::run_update_code() {
  const UpdateCode& code = m_.update_code;
  if (code.empty()) return ok();
  auto address_of = [&](const std::string& id) { return update_code_address(id); };
  apply::UpdateCodeReport ran;
  Status status = apply::run_update_code(transaction_->process(), code, address_of, options_.update_code_limit, ran);
  report_.update_calls = ran.calls;
  report_.update_thread = ran.thread;
  report_.update_thread_idle = ran.idle;
  report_.update_us = ran.run_us;
  return status;
}

Status ApplyUpdate::commit(Refusal* refusal) {
  TracedProcess& process = transaction_->process();
  CheckpointOptions checkpoint = checkpoint_options(options_, pid_, module_, bias_);
  checkpoint.detach_after_commit = true;
  // Update points (graft.h), if the program has them.
  if (auto point = resolver_->canonical(kUpdatePointCall))
    if (auto flag = resolver_->canonical("graft_update_pending")) {
      checkpoint.update_point = point->address;
      checkpoint.update_pending_flag = flag->address;
    }
  report_.threads = process.threads().size();
  GRAFT_ASSIGN(static_data_, read_static_data(data_plan_, pid_, module_, bias_));
  CheckpointReport checkpoints;
  // The commit-time code (GRAFT_AT_COMMIT) runs once the log is in, every
  // thread still stopped; its failure rolls the commit back.
  std::function<Status()> at_commit;
  if (!m_.update_code.at_commit.empty())
    at_commit = [&]() -> Status {
      apply::UpdateCodeReport ran;
      Status status = apply::run_at_commit(process, m_.update_code,
                                           [&](const std::string& id) { return update_code_address(id); },
                                           options_.transformer_limit, ran);
      report_.update_calls += ran.calls;
      report_.at_commit_us = ran.run_us;
      return status;
    };
  Status status = transaction_->commit_at_safe_moment(
      ranges_, checkpoint, [&](const CheckpointReport& moment) { return plan(moment); }, checkpoints, at_commit);
  record_wait(checkpoints, report_, refusal);
  return status;
}

Result<WriteLog> ApplyUpdate::plan(const CheckpointReport& moment) {
  report_.threads = transaction_->process().threads().size();
  WriteLog log;
  // Live data first (found and transformed now), then frames, then the
  // entries, then the registry record that says the patch is applied.
  GRAFT_TRY(plan_data(moment, log));
  GRAFT_TRY(plan_frames(moment, log));
  GRAFT_TRY(plan_entries(log));
  record_.state = registry::Applied;
  const std::string encoded = registry::encode(record_);
  if (encoded.size() > image_.header_capacity) return make_error("internal: registry record outgrew its header");
  log.add({RemoteAddress(image_.base), {encoded.begin(), encoded.end()}, {}});
  return log;
}

// Every entry is read and checked before any is written: all or nothing.
Status ApplyUpdate::plan_entries(WriteLog& log) {
  TracedProcess& process = transaction_->process();
  std::vector<RemoteAddress> at;
  for (const auto& e : record_.entries) at.push_back(RemoteAddress(e.address - x86::kEntryPad));
  GRAFT_ASSIGN(const auto entries, process.read_each(at, x86::kEntryBytes));
  for (size_t k = 0; k < record_.entries.size(); ++k) {
    auto& e = record_.entries[k];
    const auto& current = entries[k];
    if (!x86::is_unpatched_entry(current) && !x86::is_redirected_entry(current))
      return make_error("the entry of {} at {:#x} is not a graft entry (was it built with graft-cc or graft-gcc?): "
                        "nothing was changed", e.identity, e.address);
    e.old_bytes = hex(current);
  }
  for (const auto& e : record_.entries) add_entry_writes(log, e.address, e.new_bytes, e.old_bytes, true);
  return ok();
}

Status ApplyUpdate::plan_data(const CheckpointReport& moment, WriteLog& log) {
  if (!data_plan_) return ok();
  TracedProcess& process = transaction_->process();
  MigrationInput input;
  input.pid = pid_;
  input.old_address = current_address(*resolver_, pid_);
  input.new_address = [&](const std::string& id) -> Result<uint64_t> {
    if (auto it = record_.defines.find(id); it != record_.defines.end()) return it->second.address;
    return make_error("internal: the patch defines no {}", id);
  };
  input.frame_holder_entry = root_entries(frame_roots_);
  static_data_.add_to(input);
  for (const auto& id : m_.removed_functions)
    if (auto d = resolver_->canonical(id); d && d->function) input.removed_functions.emplace(d->address, id);
  apply::UserTransformReport user;
  if (!data_plan_->user_transformers.empty())
    input.run_user_transformers = [&](std::vector<UserTransformJob>& jobs) -> Status {
      GRAFT_ASSIGN(const uint64_t runner, input.new_address(data_plan_->user_transformer_runner));
      auto ran = apply::run_user_transformers(process, jobs, runner, input.new_address, options_.transformer_limit, user);
      if (!ran) return ran.error().context(data_plan_->user_transformer_file);
      return ran;
    };
  GRAFT_ASSIGN(const MigrationReport migration,
               migrate_into(*transaction_, *data_plan_, moment, input, log, report_.storage));
  report_.objects = migration.objects;
  report_.objects_moved = migration.moved;
  report_.storage_bytes = migration.storage_bytes;
  report_.migrate_us = migration.traverse_us;
  report_.global_references = migration.global_references;
  report_.epoll_words = migration.epoll_writes.size();
  report_.searched_bytes = migration.searched_bytes;
  record_.objects_transformed = migration.objects;
  record_.data.transformed = migration.by_type;
  record_.data.moved = migration.moved;
  record_.data.references = migration.references;
  report_.user_transformed = user.objects;
  report_.user_batches = user.batches;
  return ok();
}

// Frames waiting for a call in a continuable function return into the new
// code; threads just back from a call at a transfer point get their frame
// rebuilt for the new body.
Status ApplyUpdate::plan_frames(const CheckpointReport& moment, WriteLog& log) {
  TracedProcess& process = transaction_->process();
  GRAFT_ASSIGN(auto continued, frame_writes(process, moment.remaps));
  report_.frames_continued = continued.size();
  report_.frames_moving = static_cast<size_t>(
      std::count_if(moment.remaps.begin(), moment.remaps.end(), [](const FrameRemap& r) { return r.moves; }));
  log.append(std::move(continued));
  std::map<pid_t, Registers> transferred;
  GRAFT_ASSIGN(auto rebuilt, apply::plan_frame_transfers(
                                 process, moment.transfers, moment.frames,
                                 [&](const FrameTransferTask& task) { return transfer_target(task); }, image_,
                                 log, transferred));
  log.append(std::move(rebuilt));
  // A rebuilt frame's registers are the thread's whole state, computed from
  // the registers the migration left it (its rewrites of pointers in them).
  for (const auto& [tid, regs] : transferred) log.set_registers(tid, regs);
  report_.frames_transferred = transferred.size();
  return ok();
}

// The transfer the patch has for a thread at an old return address.
apply::TransferTarget ApplyUpdate::transfer_target(const FrameTransferTask& task) const {
  for (const auto& f : m_.functions) {
    auto n = newest_.find(f.identity);
    auto d = record_.defines.find(f.identity);
    if (n == newest_.end() || d == record_.defines.end()) continue;
    for (const auto& t : f.continuation.transfers)
      if (n->second.second + t.old_return == task.from && d->second.address + t.new_return == task.to)
        return {&t, d->second.address};
  }
  return {};
}

Result<ApplyReport> ApplyUpdate::finish() {
  GRAFT_TRY(transaction_->finish());
  report_.functions = record_.entries.size();
  report_.total_ms = millis_since(started_);
  return report_;
}

// One `graft revert` of the latest patch.
class RevertUpdate {
 public:
  RevertUpdate(pid_t pid, const ApplyOptions& options) : pid_(pid), options_(options) {}
  Status check();    // prepare: the latest patch, and whether it can be undone
  Status commit(Refusal* refusal);  // attach, wait, plan, commit
  Result<RevertReport> finish();    // unmap the patch's region, detach

 private:
  Status check_data();  // prepare: how the patch's data goes back, or why it cannot
  Result<WriteLog> plan(const CheckpointReport& moment);
  Status plan_data(const CheckpointReport& moment, WriteLog& log);

  const Clock::time_point started_ = Clock::now();
  pid_t pid_;
  std::optional<ProcessIdentity> identity_;  // the process check() read: still it once attached
  const ApplyOptions& options_;
  std::vector<registry::Record> records_;  // the stack of the module the latest patch patches, oldest first
  Module module_;
  registry::Record top_;
  std::vector<AffectedRange> ranges_;
  // The data back in the old layouts: the patch's inverse plan, where its
  // globals live now, and which frames are its roots.
  std::optional<DataPlan> inverse_;
  StaticData static_data_;  // read before the wait, for the commit
  std::unique_ptr<link::Resolver> resolver_;
  std::map<std::string, uint64_t> frame_roots_;
  std::unique_ptr<Transaction> transaction_;
  RevertReport report_;
};

Status RevertUpdate::check() {
  GRAFT_TRY(check_attachable(pid_));
  GRAFT_ASSIGN(identity_, ProcessIdentity::take(pid_));
  GRAFT_ASSIGN(const auto all, registry::read_all(pid_));
  if (all.empty()) return make_error("no graft patch is applied to process {}", pid_);
  top_ = all.back();
  records_ = stack_of(all, top_.library);
  {
    GRAFT_ASSIGN(const auto maps, read_maps(pid_));
    GRAFT_ASSIGN(module_, module_of_stack(pid_, maps, records_));
  }
  // The patch's functions, each by name (a thread in one is reported in
  // it), then the rest of its text (call stubs, frame rebuilds).
  for (const auto& [identity, d] : top_.defines)
    if (d.function && d.address >= top_.text_start && d.address < top_.text_end)
      ranges_.push_back({d.address, d.address + d.size, 0, identity + " (patch " + top_.patch_id + ")", {}, {}});
  ranges_.push_back({top_.text_start, top_.text_end, 0, "patch " + top_.patch_id, {}, {}});
  // Frames waiting for a call in a continuable function, or bound for a
  // frame rebuild, go back the way they came: each in the range a return
  // to it is found in (the first that holds it, as the check looks).
  for (const auto& e : top_.entries)
    for (const auto& [from, to] : e.continues)
      for (auto& r : ranges_)
        if (to > r.start && to <= r.end) {
          r.continues.emplace(to, from);
          break;
        }
  // Each redirected entry and its pad are rewritten too; a thread about to
  // take the jump there may wait (it runs the old code after the commit).
  for (const auto& e : top_.entries)
    ranges_.push_back({e.address - x86::kEntryPad, e.address + 2, e.address, e.identity, {}, {}});
  GRAFT_TRY(check_data());
  report_.patch_id = top_.patch_id;
  report_.sequence = top_.sequence;
  return ok();
}

// A patch's data goes back by its inverse plan (the diff's comparison with
// the builds swapped): every live object of a changed struct is found from
// the globals and frames and transformed back, each retyped global's value
// written back into the storage it had (which nothing touched since), its
// fields by name. What the forward change lost cannot come back: refused.
// A read-only table given a new copy needs nothing (the old code reads the
// old one, unchanged).
Status RevertUpdate::check_data() {
  const std::string instead = "make a patch from the new version back to the old one (graft diff NEW OLD) and apply that";
  if (!top_.data.recorded) {  // a record from a graft that kept no way back
    if (top_.objects_transformed)
      return make_error("patch {} cannot be reverted: it transformed {} live objects to new layouts, and the graft "
                        "that applied it kept no way back; {}", top_.patch_id, top_.objects_transformed, instead);
    return ok();
  }
  if (!top_.data.irreversible.empty())
    return make_error("patch {} cannot be reverted: {}; {}", top_.patch_id, top_.data.irreversible, instead);
  if (top_.data.inverse.empty()) return ok();
  auto decoded = decode_data_plan(top_.data.inverse);
  if (!decoded) return decoded.error().context(fmt::format("patch {}'s registry record", top_.patch_id));
  inverse_ = std::move(decoded.value());
  const registry::Record& root = records_.front();
  GRAFT_ASSIGN(auto maps, read_maps(pid_));
  resolver_ = std::make_unique<link::Resolver>(pid_, root.bias, module_.is_executable(), root.base_symbols,
                                               root.base_imports, records_, std::move(maps));
  // Frames that may point to changed data: the new build's functions (the
  // inverse plan's holders). In the patch's own copy, a frame is a root where
  // DWARF places its locals, and does not continue back into the old code
  // (the diff proved continuation for the old build's locals only): a thread
  // must leave it. Elsewhere (unchanged code), as at apply.
  frame_roots_ = plan_frame_holders(
      *inverse_,
      code_versions(*resolver_),
      [&](const std::string& id) -> std::optional<uint64_t> {
        auto d = top_.defines.find(id);
        if (d == top_.defines.end() || !d->second.function) return std::nullopt;
        for (auto& r : ranges_)
          if (r.start == d->second.address) r.continues.clear();
        return d->second.address;
      },
      ranges_);
  return ok();
}

Status RevertUpdate::commit(Refusal* refusal) {
  GRAFT_ASSIGN(transaction_, Transaction::begin(pid_));
  GRAFT_TRY(identity_->still_same());
  // Once the commit is in, the region goes, even if graft does not live to unmap it.
  transaction_->process().journal().unmap_after_commit(RemoteAddress(top_.region_start),
                                                        top_.region_end - top_.region_start);
  GRAFT_ASSIGN(static_data_, read_static_data(inverse_, pid_, module_, records_.front().bias));
  CheckpointReport checkpoints;
  CheckpointOptions checkpoint = checkpoint_options(options_, pid_, module_, records_.front().bias);
  checkpoint.hint = fmt::format(
      "a thread that runs the code of patch {} or waits for a call it made (one that moved into a new body at a "
      "transfer point cannot be moved back) keeps the revert waiting: revert once it has left, or make a patch "
      "from the new version back to the old one (graft diff NEW OLD) and apply that", top_.patch_id);
  Status status = transaction_->commit_at_safe_moment(
      ranges_, checkpoint,
      [&](const CheckpointReport& moment) { return plan(moment); }, checkpoints);
  report_.threads = transaction_->process().threads().size();
  record_wait(checkpoints, report_, refusal);
  return status;
}

Result<WriteLog> RevertUpdate::plan(const CheckpointReport& moment) {
  TracedProcess& process = transaction_->process();
  for (const auto& e : top_.entries) {
    GRAFT_ASSIGN(auto current, process.read(RemoteAddress(e.address - x86::kEntryPad), x86::kEntryBytes));
    if (hex(current) != e.new_bytes)
      return make_error("the entry of {} was changed by someone else since patch {}: nothing was reverted",
                        e.identity, top_.patch_id);
  }
  WriteLog log;
  // The record says "reverting" in the same commit as the code and data go
  // back: a graft killed before the unmap leaves a region no one takes for
  // an applied patch (registry.h), and a rolled-back commit says "applied".
  {
    const uint32_t applied = registry::Applied, reverting = registry::Reverting;
    const auto* from = reinterpret_cast<const uint8_t*>(&applied);
    const auto* to = reinterpret_cast<const uint8_t*>(&reverting);
    log.add({RemoteAddress(top_.region_start + registry::kStateOffset), Bytes(to, to + 4), Bytes(from, from + 4)});
  }
  GRAFT_TRY(plan_data(moment, log));
  GRAFT_ASSIGN(auto frames, frame_writes(process, moment.remaps));
  report_.frames_continued = frames.size();
  log.append(std::move(frames));
  // Newest entry first, each with its jump first (so the pad is unreachable), then its pad.
  for (auto it = top_.entries.rbegin(); it != top_.entries.rend(); ++it)
    add_entry_writes(log, it->address, it->old_bytes, it->new_bytes, false);
  return log;
}

// The live data back in the old layouts (check_data), first in the log.
Status RevertUpdate::plan_data(const CheckpointReport& moment, WriteLog& log) {
  if (!inverse_) return ok();
  MigrationInput input;
  input.pid = pid_;
  input.old_address = current_address(*resolver_, pid_);
  // A retyped global goes back into the storage it had before the patch.
  input.new_address = [&](const std::string& id) -> Result<uint64_t> {
    for (const auto& g : top_.data.storage)
      if (g.identity == id && g.writable) return g.from;
    return make_error("patch {}'s registry record says nothing of the storage global {} had before; nothing was "
                      "changed", top_.patch_id, id);
  };
  input.frame_holder_entry = root_entries(frame_roots_);
  static_data_.add_to(input);
  uint64_t storage = 0;
  auto migrated = migrate_into(*transaction_, *inverse_, moment, input, log, storage);
  if (!migrated) return migrated.error().context(fmt::format("patch {} cannot be reverted", top_.patch_id));
  const MigrationReport& migration = migrated.value();
  report_.objects = migration.objects;
  report_.objects_moved = migration.moved;
  report_.epoll_words = migration.epoll_writes.size();
  // What goes back must not lead into the patch's region, which the revert unmaps.
  for (const auto& w : log.writes())
    for (uint64_t k = (8 - w.address.value() % 8) % 8; k + 8 <= w.bytes.size(); k += 8) {
      uint64_t word = 0;
      std::memcpy(&word, w.bytes.data() + k, 8);
      if (word >= top_.region_start && word < top_.region_end)
        return make_error("patch {} cannot be reverted: the data at {:#x} would hold {:#x}, an address in the patch "
                          "(its code or data), which the revert unmaps; nothing was changed", top_.patch_id,
                          w.address.value() + k, word);
    }
  return ok();
}

Result<RevertReport> RevertUpdate::finish() {
  kill_point("reverted");
  // No thread is in the patch and none can enter it now: one thread unmaps it while the rest run.
  GRAFT_TRY(RemoteMapping(transaction_->process(), RemoteAddress(top_.region_start), top_.region_end - top_.region_start)
                .unmap());
  GRAFT_TRY(transaction_->finish());
  report_.total_ms = millis_since(started_);
  return report_;
}

}  // namespace

// A process that ended under graft (it exited, was killed or crashed), or
// that another program replaced (an execve by one of its threads), fails
// whatever graft did next, with that call's error (a write's "Input/output
// error"): said as it is. Threads end one by one, and a loaded machine may
// take a while to end them all: a process with some threads on their way out
// is watched until it is clearly one or the other. An exit ends every thread;
// an execve ends all but the one that calls it, which waits in the call for
// graft to reap the others (or is already another program).
template <typename T>
Result<T> unless_gone(pid_t pid, const Result<FileId>& executable, Result<T> result) {
  if (result) return result;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (;;) {
    if (process_exited(pid))
      return make_error("process {} exited during the update (it ended, was killed or crashed); there is nothing left "
                        "to update", pid);
    const auto now = executable_id(pid);
    if ((executable && now && now.value() != executable.value()) || task_in_execve(pid))
      return make_error("process {} started another program (execve) during the update; nothing of the update is in "
                        "it", pid);
    // No thread leaving (or one thread that ended alone): the error is graft's own.
    if (!any_task_exiting(pid) || std::chrono::steady_clock::now() > deadline) return result;
    usleep(1000);
  }
}

Result<ApplyReport> apply_patch(pid_t pid, const Patch& patch, const ApplyOptions& options, Refusal* refusal) {
  ApplyUpdate update(pid, patch, options);
  GRAFT_TRY(update.check());
  const auto executable = executable_id(pid);
  return unless_gone(pid, executable, [&]() -> Result<ApplyReport> {
    GRAFT_TRY(update.link());
    GRAFT_TRY(update.map());
    GRAFT_TRY(update.run_update_code());
    GRAFT_TRY(update.commit(refusal));
    return update.finish();
  }());
}

Result<RevertReport> revert_latest(pid_t pid, const ApplyOptions& options, Refusal* refusal) {
  RevertUpdate update(pid, options);
  GRAFT_TRY(update.check());
  const auto executable = executable_id(pid);
  return unless_gone(pid, executable, [&]() -> Result<RevertReport> {
    GRAFT_TRY(update.commit(refusal));
    return update.finish();
  }());
}

Result<std::vector<AppliedPatch>> list_applied(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return make_error("no process with PID {}", pid);
  GRAFT_ASSIGN(auto records, registry::read_all(pid));
  GRAFT_ASSIGN(const auto maps, read_maps(pid));
  auto lost = lost_libraries(pid, maps, records);
  std::vector<AppliedPatch> out;
  for (const auto& r : records) {
    AppliedPatch a{r.sequence, r.patch_id, r.base_build_id, r.result_build_id, r.applied_at, {}, r.region_start,
                   r.region_end, r.library_name, lost.count(r.library) ? lost[r.library] : ""};
    for (const auto& e : r.entries) a.functions.push_back(e.identity);
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace graft
