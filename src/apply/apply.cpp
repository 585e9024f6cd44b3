// graft apply / status / revert: the updater's session with a live process.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>

#include "apply/apply.h"
#include "checkpoint/checkpoint.h"
#include "common/clock.h"
#include "migrate/frame_holders.h"
#include "migrate/migrate.h"
#include "elf/dwarf.h"
#include "elf/elf_file.h"
#include "target/process.h"
#include "apply/link.h"
#include "apply/registry.h"
#include "apply/transfer.h"
#include "apply/user_transform.h"

namespace graft {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kPad = 14;
constexpr uint8_t kNopEntry[16] = {0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
                                   0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x66, 0x90};

std::string hex(const uint8_t* bytes, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += fmt::format("{:02x}", bytes[i]);
  return out;
}

std::vector<uint8_t> unhex(const std::string& text) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < text.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoul(text.substr(i, 2), nullptr, 16)));
  return out;
}

// `jmp *0(%rip); .quad target` in the 14-byte pad, `jmp .-14` at the entry.
std::vector<uint8_t> redirect_bytes(uint64_t target) {
  std::vector<uint8_t> b = {0xff, 0x25, 0, 0, 0, 0};
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(target >> (8 * i)));
  b.push_back(0xeb);
  b.push_back(static_cast<uint8_t>(-16));
  return b;
}

bool is_redirect(const std::vector<uint8_t>& b) {
  return b.size() == 16 && b[0] == 0xff && b[1] == 0x25 && b[2] == 0 && b[3] == 0 && b[4] == 0 && b[5] == 0 &&
         b[14] == 0xeb && b[15] == static_cast<uint8_t>(-16);
}

// Catchable signals wait until the session ends, so an impatient Ctrl-C never
// leaves the target with injected registers or half the entries written.
class SignalShield {
 public:
  SignalShield() {
    sigset_t block;
    sigemptyset(&block);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) sigaddset(&block, s);
    pthread_sigmask(SIG_BLOCK, &block, &saved_);
  }
  ~SignalShield() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }

 private:
  sigset_t saved_;
};

CheckpointOptions checkpoint_options(const ApplyOptions& options, pid_t pid, uint64_t bias) {
  CheckpointOptions c;
  c.timeout = options.timeout;
  c.dynamic_checkpoints = options.dynamic_checkpoints;
  // Addresses in the running binary have lines in its own DWARF (graft-cc adds -g).
  const std::string exe = fmt::format("/proc/{}/exe", pid);
  c.source_line = [exe, bias](uint64_t address) { return address >= bias ? source_line(exe, address - bias) : ""; };
  return c;
}

// Where the executable is mapped in the process: [start, end).
struct BinaryRange {
  uint64_t start = 0, end = 0;
};

Result<BinaryRange> binary_range(pid_t pid, const std::vector<MemoryMap>& maps) {
  char buf[4096];
  const ssize_t n = readlink(fmt::format("/proc/{}/exe", pid).c_str(), buf, sizeof buf - 1);
  if (n <= 0) return make_error("cannot read /proc/{}/exe", pid);
  std::string exe(buf, static_cast<size_t>(n));
  if (exe.ends_with(" (deleted)")) exe.resize(exe.size() - 10);
  std::optional<BinaryRange> range;
  for (const auto& m : maps) {
    std::string path = m.path;
    if (path.ends_with(" (deleted)")) path.resize(path.size() - 10);
    if (path != exe) continue;
    if (!range && m.offset == 0) range = BinaryRange{m.start, m.end};
    if (range) range->end = std::max(range->end, m.end);
  }
  if (!range) return make_error("cannot find the executable's mapping in process {}", pid);
  return *range;
}

Status unmap(TracedProcess& process, uint64_t start, uint64_t size) {
  GRAFT_ASSIGN(int64_t r, process.syscall(SYS_munmap, {start, size, 0, 0, 0, 0}));
  if (r != 0) return make_error("munmap in the target failed: {}", std::strerror(static_cast<int>(-r)));
  return ok();
}

// Creates the memfd in the target, fills it from here, maps each segment.
Status map_region(TracedProcess& process, const link::Image& image, const std::string& name) {
  Thread* injector = process.injection_thread();  // its stack holds the memfd's name
  if (!injector) return make_error("every thread of process {} is stopped by a signal (SIGSTOP?): continue it first", process.pid());
  const uint64_t scratch = (injector->regs.rsp - 4096) & ~uint64_t{15};
  std::vector<uint8_t> text(name.begin(), name.end());
  text.push_back(0);
  GRAFT_TRY(process.write(scratch, text));
  GRAFT_ASSIGN(int64_t fd, process.syscall(SYS_memfd_create, {scratch, MFD_CLOEXEC, 0, 0, 0, 0}));
  if (fd < 0) return make_error("memfd_create in the target failed: {}", std::strerror(static_cast<int>(-fd)));
  auto close_fd = [&] { (void)process.syscall(SYS_close, {static_cast<uint64_t>(fd), 0, 0, 0, 0, 0}); };
  const std::string path = fmt::format("/proc/{}/fd/{}", process.pid(), fd);
  const int local = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (local < 0) {
    close_fd();
    return errno_error("cannot open " + path, errno);
  }
  bool written = ftruncate(local, static_cast<off_t>(image.bytes.size())) == 0;
  for (size_t done = 0; written && done < image.bytes.size();) {
    const ssize_t n = pwrite(local, image.bytes.data() + done, image.bytes.size() - done, static_cast<off_t>(done));
    if (n <= 0) written = false;
    else done += static_cast<size_t>(n);
  }
  close(local);
  if (!written) {
    close_fd();
    return make_error("cannot fill the patch's memory in process {}", process.pid());
  }
  size_t mapped = 0;
  for (const auto& seg : image.segments) {
    const uint64_t at = image.base + seg.offset;
    auto r = process.syscall(SYS_mmap, {at, seg.size, static_cast<uint64_t>(seg.prot),
                                        MAP_PRIVATE | MAP_FIXED_NOREPLACE, static_cast<uint64_t>(fd), seg.offset});
    if (!r || *r != static_cast<int64_t>(at)) {
      if (r && *r > 0) (void)unmap(process, static_cast<uint64_t>(*r), seg.size);
      if (mapped) (void)unmap(process, image.base, image.segments[mapped - 1].offset + image.segments[mapped - 1].size);
      close_fd();
      return r ? make_error("cannot map the patch at {:#x} in process {}: {}", at, process.pid(),
                            *r < 0 ? std::strerror(static_cast<int>(-*r)) : "placed elsewhere")
               : r.error();
    }
    ++mapped;
  }
  close_fd();
  return ok();
}

// Writes in order; if one fails, what was written is put back, newest first:
// the target is left exactly as it was.
// Puts back the first `count` of `writes`, newest first.
void undo_writes(TracedProcess& process, const std::vector<DataWrite>& writes, size_t count) {
  for (size_t k = count; k-- > 0;)
    if (!writes[k].previous.empty()) (void)process.write(writes[k].address, writes[k].previous);
}

Status commit_writes(TracedProcess& process, const std::vector<DataWrite>& writes) {
  for (size_t i = 0; i < writes.size(); ++i) {
    if (auto written = process.write(writes[i].address, writes[i].bytes); !written) {
      undo_writes(process, writes, i);
      return written.error().context("the update was rolled back");
    }
  }
  return ok();
}

// The return slots of frames that continue in the new code (or, for a
// revert, in the code it replaced), each checked to still hold its old
// return address, with the bytes it replaces: part of the commit's writes.
Result<std::vector<DataWrite>> frame_writes(const TracedProcess& process, const std::vector<FrameRemap>& remaps) {
  std::vector<DataWrite> writes;
  for (const auto& r : remaps) {
    GRAFT_ASSIGN(auto current, process.read(r.slot, 8));
    uint64_t value = 0;
    std::memcpy(&value, current.data(), 8);
    if (value != r.from)
      return make_error("internal: thread {}'s return address into {} at {:#x} changed under the stop; nothing was changed",
                        r.tid, r.function, r.slot);
    DataWrite w{r.slot, Bytes(8), Bytes(current.begin(), current.end())};
    std::memcpy(w.bytes.data(), &r.to, 8);
    writes.push_back(std::move(w));
  }
  return writes;
}

// New storage for objects that outgrow their allocation: anonymous memory
// mapped by a system call in a stopped thread, never the target's malloc
// (another thread may be stopped holding its lock). Unmapped if the update fails.
struct MovedStorage {
  uint64_t start = 0, size = 0;
};

Result<uint64_t> map_moved_storage(TracedProcess& process, uint64_t bytes, MovedStorage& storage) {
  GRAFT_ASSIGN(int64_t at, process.syscall(SYS_mmap, {0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                                      ~uint64_t{0}, 0}));
  if (at < 0)
    return make_error("cannot map {} bytes for objects that move in process {}: {}", bytes, process.pid(),
                      std::strerror(static_cast<int>(-at)));
  storage = {static_cast<uint64_t>(at), bytes};
  return storage.start;
}

MigrationInput::StoppedThread stopped_thread(const Thread& t) {
  const auto* words = reinterpret_cast<const uint64_t*>(&t.regs);
  const bool in_system_call = static_cast<int64_t>(t.regs.orig_rax) >= 0;
  return {t.tid, t.regs.rsp, in_system_call, false, std::vector<uint64_t>(words, words + sizeof t.regs / 8), {}};
}

// The transfer the patch has for a thread at an old return address.
apply::TransferTarget transfer_target(const Manifest& m, const std::map<std::string, std::pair<size_t, uint64_t>>& newest,
                                      const registry::Record& record, const FrameTransferTask& task) {
  for (const auto& f : m.functions) {
    auto n = newest.find(f.identity);
    auto d = record.defines.find(f.identity);
    if (n == newest.end() || d == record.defines.end()) continue;
    for (const auto& t : f.continuation.transfers)
      if (n->second.second + t.old_return == task.from && d->second.address + t.new_return == task.to)
        return {&t, d->second.address};
  }
  return {};
}

// The registers the commit sets (threads whose frames were rebuilt, and
// registers the migration rewrites), once every write is in; if one cannot
// be set, every thread gets its registers back and every write is undone,
// newest first.
Status commit_registers(TracedProcess& process, const std::map<pid_t, user_regs_struct>& registers,
                        const std::vector<DataWrite>& writes) {
  std::vector<std::pair<Thread*, user_regs_struct>> done;
  for (const auto& [tid, regs] : registers) {
    Thread* t = process.find(tid);
    Status set = t ? ok() : make_error("thread {} is gone", tid);
    if (t) {
      done.emplace_back(t, t->regs);
      t->regs = regs;
      set = process.set_registers(*t);
    }
    if (!set) {
      for (auto& [thread, previous] : done) {
        thread->regs = previous;
        (void)process.set_registers(*thread);
      }
      undo_writes(process, writes, writes.size());
      return set.error().context("the update was rolled back");
    }
  }
  return ok();
}

double elapsed_ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

}  // namespace

Result<ApplyReport> apply_patch(pid_t pid, const Patch& patch, const ApplyOptions& options, Refusal* refusal) {
  const auto started = Clock::now();
  const Manifest& m = patch.manifest;
  size_t report_types = 0;
  GRAFT_TRY(check_attachable(pid));
  GRAFT_ASSIGN(const std::string running, read_build_id(fmt::format("/proc/{}/exe", pid)));
  GRAFT_ASSIGN(const auto applied, registry::read_all(pid));
  const std::string current = applied.empty() ? running : applied.back().result_build_id;
  for (const auto& r : applied)
    if (r.patch_id == m.patch_id) return make_error("patch {} is already applied to process {}", m.patch_id, pid);
  if (m.base_build_id != current)
    return make_error("patch {} is for build {}, but process {} runs build {}{}: diff against the running version",
                      m.patch_id, m.base_build_id, pid, current, applied.empty() ? "" : " (as patched)");
  std::optional<DataPlan> data_plan;
  if (!patch.data_plan.empty()) {
    GRAFT_ASSIGN(data_plan, decode_data_plan(patch.data_plan));
    report_types = data_plan->changes.size();
  }
  GRAFT_ASSIGN(auto maps, read_maps(pid));

  // Where the running binary's symbols are: from the first patch's record, or this patch's manifest.
  registry::Record record;
  record.sequence = applied.empty() ? 1 : applied.back().sequence + 1;
  record.patch_id = m.patch_id;
  record.base_build_id = m.base_build_id;
  record.result_build_id = m.result_build_id;
  record.applied_at = utc_timestamp();
  const auto& base_symbols = applied.empty() ? m.base_symbols : applied.front().base_symbols;
  const auto& base_imports = applied.empty() ? m.base_imports : applied.front().base_imports;
  GRAFT_ASSIGN(const BinaryRange binary, binary_range(pid, maps));
  // The load bias: from the first patch's record, or the mapping and this patch's base.
  const uint64_t bias = applied.empty() ? binary.start - m.base_load_address : applied.front().bias;
  if (applied.empty()) {
    record.has_root = true;
    record.bias = bias;
    record.base_symbols = m.base_symbols;
    record.base_imports = m.base_imports;
  }
  link::Resolver resolver(pid, bias, base_symbols, base_imports, applied, maps);

  // What the commit redirects, and the code no thread may be in at that moment.
  std::vector<AffectedRange> ranges;
  // Frames may only be in the newest version of a function (each update
  // moved or waited out every frame of the older ones): that is the code the
  // patch's continuation map was computed from.
  std::map<std::string, std::pair<size_t, uint64_t>> newest;  // identity -> its range, its entry
  for (const auto& f : m.functions) {
    if (!f.replaces) continue;
    auto versions = resolver.versions(f.identity);
    if (versions.empty()) return make_error("cannot find {} in process {}", f.identity, pid);
    const auto& canonical = versions.front();
    record.entries.push_back({f.identity, canonical.address, {}, {}, {}});
    ranges.push_back({canonical.address - kPad, canonical.address + std::max<uint64_t>(canonical.size, 2),
                      canonical.address, f.identity, {}, {}});
    for (size_t i = 1; i < versions.size(); ++i)
      ranges.push_back({versions[i].address, versions[i].address + versions[i].size, 0, f.identity, {}, {}});
    newest[f.identity] = {ranges.size() - 1, versions.back().address};
  }

  // Functions whose frames may point to changed data. Where DWARF says where
  // such a local is, the frame is a root of the traversal at the commit
  // (frame_holder_entry); elsewhere no thread may be at the commit.
  std::map<std::string, uint64_t> frame_roots;  // identity -> the entry of the code its frames run in
  if (data_plan)
    frame_roots = plan_frame_holders(
        *data_plan,
        [&](const std::string& id) {
          std::vector<CodeVersion> code;
          for (const auto& v : resolver.versions(id)) code.push_back({v.address, v.size});
          return code;
        },
        [&](const std::string& id) -> std::optional<uint64_t> {
          const auto replaced = newest.find(id);
          if (replaced == newest.end()) return std::nullopt;
          return replaced->second.second;
        },
        ranges);

  const bool shadow_stack = uses_shadow_stack(pid);
  // Lay out and link the region; the header is sized for the record it will hold.
  link::Image image;
  for (uint64_t header = registry::encode(record).size() + 4096 + 96 * (patch.symbols.size() + record.entries.size());;) {
    image = link::plan(patch, header);
    GRAFT_ASSIGN(image.base, link::choose_address(maps, binary.start, binary.end, image.bytes.size(),
                                                  link::needs_low_address(patch)));
    GRAFT_TRY(link::relocate(patch, image, resolver));
    record.region_start = image.base;
    record.region_end = image.base + image.bytes.size();
    record.text_start = image.text_start;
    record.text_end = image.text_end;
    record.defines.clear();
    for (const auto& s : patch.symbols)
      if (s.piece >= 0 && !s.name.starts_with("piece:"))
        record.defines[s.name] = {image.piece_address[s.piece] + s.offset, s.size, s.function};
    for (auto& e : record.entries) {
      e.old_bytes.assign(32, '0');
      e.new_bytes = hex(redirect_bytes(record.defines.at(e.identity).address).data(), 16);
    }
    for (auto& e : record.entries) {  // where frames waiting for a call continue
      if (shadow_stack) break;        // their return addresses cannot be rewritten: they wait
      const FunctionChange& f = *std::find_if(m.functions.begin(), m.functions.end(),
                                              [&](const FunctionChange& c) { return c.identity == e.identity; });
      const auto [range, from] = newest.at(e.identity);
      e.continues.clear();
      ranges[range].continues.clear();
      for (const auto& [old_offset, new_offset] : f.continuation.returns) {
        e.continues.emplace_back(from + old_offset, record.defines.at(e.identity).address + new_offset);
        ranges[range].continues.emplace(e.continues.back());
      }
      ranges[range].transfers.clear();  // where a thread just back from a call moves into the new body
      if (options.transfer_frames)
        for (const auto& t : f.continuation.transfers)
        ranges[range].transfers.emplace(from + t.old_return, record.defines.at(e.identity).address + t.new_return);
    }
    const std::string encoded = registry::encode(record);
    if (encoded.size() <= image.header_capacity) {
      std::memcpy(image.bytes.data(), encoded.data(), encoded.size());
      break;
    }
    header = encoded.size() + 4096;
  }

  SignalShield shield;
  GRAFT_ASSIGN(auto process, TracedProcess::attach(pid));
  ApplyReport report;
  report.types_changed = report_types;
  report.patch_id = m.patch_id;
  report.sequence = record.sequence;
  report.region = image.base;
  // Mapping the patch needs one thread only; the others run on meanwhile.
  const pid_t injector = process->threads().front().tid;
  const auto prepare_started = Clock::now();
  GRAFT_TRY(process->stop_one(injector));
  // Thread-local offsets are checked against a real thread before anything is mapped.
  Status mapped = resolver.verify_thread_locals(process->find(injector)->regs.fs_base);
  if (mapped) mapped = map_region(*process, image, registry::memfd_name(record.sequence, m.patch_id));
  (void)process->resume_one(injector);
  report.prepare_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - prepare_started).count());
  if (!mapped) return mapped.error();
  CheckpointReport checkpoints;
  CheckpointOptions checkpoint = checkpoint_options(options, pid, bias);
  checkpoint.detach_after_commit = true;
  // Update points (graft.h), if the program has them.
  if (auto point = resolver.canonical("graft_update_point_reached"))
    if (auto flag = resolver.canonical("graft_update_pending")) {
      checkpoint.update_point = point->address;
      checkpoint.update_pending_flag = flag->address;
    }
  report.threads = process->threads().size();
  MovedStorage moved_storage;  // mapped at the commit if objects outgrow their allocation
  auto status = at_safe_moment(
      *process, ranges, checkpoint, checkpoints,
      [&]() -> Status {
        report.threads = process->threads().size();
        // Read and check every entry before writing any: all or nothing.
        for (auto& e : record.entries) {
          GRAFT_ASSIGN(auto current_bytes, process->read(e.address - kPad, 16));
          if (std::memcmp(current_bytes.data(), kNopEntry, 16) != 0 && !is_redirect(current_bytes))
            return make_error("the entry of {} at {:#x} is not a graft entry (was it built with graft-cc?): "
                              "nothing was changed", e.identity, e.address);
          e.old_bytes = hex(current_bytes.data(), 16);
        }
        // Live data first (found and transformed now, with every thread stopped), then the entries.
        std::vector<DataWrite> writes;
        std::vector<RegisterWrite> registers;
        if (data_plan) {
          MigrationInput input;
          input.pid = pid;
          input.old_address = [&](const std::string& id) -> Result<uint64_t> {
            if (auto d = resolver.current(id)) return d->address;
            return make_error("cannot find global {} in process {}", id, pid);
          };
          input.new_address = [&](const std::string& id) -> Result<uint64_t> {
            if (auto it = record.defines.find(id); it != record.defines.end()) return it->second.address;
            return make_error("internal: the patch defines no {}", id);
          };
          for (const auto& t : process->threads()) {
            input.threads.push_back(stopped_thread(t));
            input.threads.back().just_returned = checkpoints.just_returned.count(t.tid) > 0;
            if (auto f = checkpoints.frames.find(t.tid); f != checkpoints.frames.end())
              input.threads.back().frames = f->second;
          }
          input.frame_holder_entry = [&](const std::string& id) -> uint64_t {
            auto it = frame_roots.find(id);
            return it == frame_roots.end() ? 0 : it->second;
          };
          input.map_storage = [&](uint64_t bytes) { return map_moved_storage(*process, bytes, moved_storage); };
          apply::UserTransformReport user;
          if (!data_plan->user_transformers.empty())
            input.run_user_transformers = [&](std::vector<UserTransformJob>& jobs) -> Status {
              GRAFT_ASSIGN(const uint64_t runner, input.new_address(data_plan->user_transformer_runner));
              auto ran = apply::run_user_transformers(*process, jobs, runner, input.new_address,
                                                      options.transformer_limit, user);
              if (!ran) return ran.error().context(data_plan->user_transformer_file);
              return ran;
            };
          MigrationReport migration;
          GRAFT_ASSIGN(writes, plan_migration(*data_plan, input, migration));
          report.objects = migration.objects;
          report.objects_moved = migration.moved;
          report.storage = moved_storage.start;
          report.storage_bytes = migration.storage_bytes;
          report.migrate_us = migration.traverse_us;
          registers = std::move(migration.register_writes);
          record.objects_transformed = migration.objects;
          report.user_transformed = user.objects;
          report.user_batches = user.batches;
        }
        // Frames waiting for a call in a continuable function return into the new code.
        GRAFT_ASSIGN(auto frames, frame_writes(*process, checkpoints.remaps));
        report.frames_continued = frames.size();
        writes.insert(writes.end(), frames.begin(), frames.end());
        // Threads just back from a call at a transfer point: their frames rebuilt for the new body.
        std::map<pid_t, user_regs_struct> transferred;
        GRAFT_ASSIGN(auto rebuilt, apply::plan_frame_transfers(
                                       *process, checkpoints.transfers, checkpoints.frames,
                                       [&](const FrameTransferTask& task) { return transfer_target(m, newest, record, task); },
                                       image, transferred));
        writes.insert(writes.end(), rebuilt.begin(), rebuilt.end());
        for (const auto& e : record.entries) {
          const auto bytes = unhex(e.new_bytes), previous = unhex(e.old_bytes);
          writes.push_back({e.address - kPad, {bytes.begin(), bytes.begin() + 14}, {previous.begin(), previous.begin() + 14}});
          writes.push_back({e.address, {bytes.begin() + 14, bytes.end()}, {previous.begin() + 14, previous.end()}});
        }
        record.state = registry::Applied;
        const std::string encoded = registry::encode(record);
        if (encoded.size() > image.header_capacity) return make_error("internal: registry record outgrew its header");
        writes.push_back({image.base, {encoded.begin(), encoded.end()}, {}});
        // One register set per thread: a rebuilt frame's, or the thread's own with the migration's rewrites.
        std::map<pid_t, user_regs_struct> thread_registers = transferred;
        for (const auto& r : registers) {
          const Thread* t = process->find(r.tid);
          if (!t || transferred.count(r.tid))
            return make_error("internal: thread {}'s registers cannot be rewritten; nothing was changed", r.tid);
          auto it = thread_registers.try_emplace(r.tid, t->regs).first;
          reinterpret_cast<uint64_t*>(&it->second)[r.word] = r.value;
        }
        GRAFT_TRY(commit_writes(*process, writes));
        GRAFT_TRY(commit_registers(*process, thread_registers, writes));
        report.frames_transferred = transferred.size();
        return ok();
      });
  report.pause_us = checkpoints.pause_us;
  report.hold_us = checkpoints.hold_us;
  report.arrivals = checkpoints.arrivals;
  report.attempts = checkpoints.attempts;
  if (refusal)
    *refusal = Refusal{checkpoints.blocking, checkpoints.hint, checkpoints.attempts, checkpoints.arrivals,
                       checkpoints.pause_us};
  if (!status) {
    (void)process->stop_all();
    (void)unmap(*process, image.base, image.bytes.size());
    if (moved_storage.size) (void)unmap(*process, moved_storage.start, moved_storage.size);
    (void)process->detach();
    return status.error();
  }
  GRAFT_TRY(process->detach());
  report.functions = record.entries.size();
  report.total_ms = elapsed_ms(started);
  return report;
}

Result<std::vector<AppliedPatch>> list_applied(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return make_error("no process with PID {}", pid);
  GRAFT_ASSIGN(auto records, registry::read_all(pid));
  std::vector<AppliedPatch> out;
  for (const auto& r : records) {
    AppliedPatch a{r.sequence, r.patch_id, r.base_build_id, r.result_build_id, r.applied_at, {}, r.region_start, r.region_end};
    for (const auto& e : r.entries) a.functions.push_back(e.identity);
    out.push_back(std::move(a));
  }
  return out;
}

Result<RevertReport> revert_latest(pid_t pid, const ApplyOptions& options, Refusal* refusal) {
  const auto started = Clock::now();
  GRAFT_TRY(check_attachable(pid));
  GRAFT_ASSIGN(auto records, registry::read_all(pid));
  if (records.empty()) return make_error("no graft patch is applied to process {}", pid);
  const registry::Record top = records.back();
  if (top.objects_transformed)
    return make_error("patch {} transformed {} live objects to new layouts, and graft does not generate the inverse "
                      "transformers: make a patch from the new version back to the old one (graft diff NEW OLD) and "
                      "apply that instead", top.patch_id, top.objects_transformed);
  std::vector<AffectedRange> ranges = {{top.text_start, top.text_end, 0, "patch " + top.patch_id, {}, {}}};
  // Frames waiting for a call in a continuable function go back the way they came.
  for (const auto& e : top.entries)
    for (const auto& [from, to] : e.continues) ranges[0].continues.emplace(to, from);
  // Each redirected entry and its pad are rewritten too; a thread about to
  // take the jump there may wait (it runs the old code after the commit).
  for (const auto& e : top.entries) ranges.push_back({e.address - kPad, e.address + 2, e.address, e.identity, {}, {}});
  SignalShield shield;
  GRAFT_ASSIGN(auto process, TracedProcess::attach(pid));
  RevertReport report;
  report.patch_id = top.patch_id;
  report.sequence = top.sequence;
  CheckpointReport checkpoints;
  auto status = at_safe_moment(
      *process, ranges, checkpoint_options(options, pid, records.front().bias), checkpoints,
      [&]() -> Status {
        for (const auto& e : top.entries) {
          GRAFT_ASSIGN(auto current_bytes, process->read(e.address - kPad, 16));
          if (hex(current_bytes.data(), 16) != e.new_bytes)
            return make_error("the entry of {} was changed by someone else since patch {}: nothing was reverted",
                              e.identity, top.patch_id);
        }
        GRAFT_ASSIGN(auto writes, frame_writes(*process, checkpoints.remaps));
        report.frames_continued = writes.size();
        // The entry jump first (so the pad is unreachable), then the pad.
        for (auto it = top.entries.rbegin(); it != top.entries.rend(); ++it) {
          const auto bytes = unhex(it->old_bytes), current = unhex(it->new_bytes);
          writes.push_back({it->address, {bytes.begin() + 14, bytes.end()}, {current.begin() + 14, current.end()}});
          writes.push_back({it->address - kPad, {bytes.begin(), bytes.begin() + 14}, {current.begin(), current.begin() + 14}});
        }
        return commit_writes(*process, writes);
      });
  report.threads = process->threads().size();
  report.pause_us = checkpoints.pause_us;
  report.hold_us = checkpoints.hold_us;
  report.arrivals = checkpoints.arrivals;
  report.attempts = checkpoints.attempts;
  if (refusal)
    *refusal = Refusal{checkpoints.blocking, checkpoints.hint, checkpoints.attempts, checkpoints.arrivals,
                       checkpoints.pause_us};
  if (status) {
    // No thread is in the patch and none can enter it now: one thread unmaps it while the rest run.
    const pid_t injector = process->threads().front().tid;
    GRAFT_TRY(process->stop_one(injector));
    status = unmap(*process, top.region_start, top.region_end - top.region_start);
    (void)process->resume_one(injector);
  }
  (void)process->detach();
  if (!status) return status.error();
  report.total_ms = elapsed_ms(started);
  return report;
}

}  // namespace graft
