// Commit time: find every live instance of a changed type by a precise
// traversal from the typed roots, and compute its transformed bytes.
#include <sys/uio.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "graft/data.h"
#include "graft/target.h"
#include "type_compare.h"

namespace graft {
namespace {

using Clock = std::chrono::steady_clock;

// The target's memory, read in large blocks once (every thread is stopped,
// so it cannot change underneath): a linked list of a million nodes costs a
// few hundred reads, not a million.
class RemoteMemory {
 public:
  RemoteMemory(pid_t pid, std::vector<MemoryMap> maps) : pid_(pid), maps_(std::move(maps)) {
    std::sort(maps_.begin(), maps_.end(), [](const auto& a, const auto& b) { return a.start < b.start; });
  }

  const MemoryMap* mapping(uint64_t address) const {
    auto it = std::upper_bound(maps_.begin(), maps_.end(), address, [](uint64_t a, const MemoryMap& m) { return a < m.start; });
    if (it == maps_.begin()) return nullptr;
    --it;
    return it->contains(address) ? &*it : nullptr;
  }

  bool read(uint64_t address, void* out, size_t size) {
    auto* dst = static_cast<uint8_t*>(out);
    while (size) {
      const MemoryMap* m = mapping(address);
      if (!m || m->perms.empty() || m->perms[0] != 'r') return false;
      // Blocks are aligned, but never cross the edges of their mapping.
      const uint64_t base = std::max(address & ~(kBlock - 1), m->start);
      const std::vector<uint8_t>* block = fetch(base, std::min((address & ~(kBlock - 1)) + kBlock, m->end));
      if (!block || address - base >= block->size()) return false;
      const size_t n = std::min<size_t>(size, block->size() - (address - base));
      std::memcpy(dst, block->data() + (address - base), n);
      dst += n;
      address += n;
      size -= n;
    }
    return true;
  }

  std::optional<uint64_t> word(uint64_t address) {
    uint64_t v;
    if (!read(address, &v, 8)) return std::nullopt;
    return v;
  }

  size_t bytes_read() const { return bytes_read_; }

 private:
  static constexpr uint64_t kBlock = 1 << 16;

  const std::vector<uint8_t>* fetch(uint64_t base, uint64_t end) {
    auto [it, fresh] = blocks_.try_emplace(base);
    std::vector<uint8_t>& block = it->second;
    if (fresh) {
      block.assign(end - base, 0);
      iovec local{block.data(), block.size()};
      iovec remote{reinterpret_cast<void*>(base), block.size()};
      const ssize_t n = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
      block.resize(n > 0 ? static_cast<size_t>(n) : 0);
      bytes_read_ += block.size();
    }
    return block.empty() ? nullptr : &block;
  }

  pid_t pid_;
  std::vector<MemoryMap> maps_;
  std::unordered_map<uint64_t, std::vector<uint8_t>> blocks_;
  size_t bytes_read_ = 0;
};

struct Instance {
  uint64_t address = 0;
  int old_type = -1, new_type = -1;
  uint64_t count = 1;
  std::optional<uint64_t> capacity;  // usable bytes of its allocation, if it starts one
  uint64_t slot = 0;                 // where the pointer that found it is (for messages)
  bool heap = false;
};

struct PairHash {
  size_t operator()(const std::pair<uint64_t, int>& p) const { return std::hash<uint64_t>{}(p.first * 31 + static_cast<uint64_t>(p.second)); }
};

class Traversal {
 public:
  Traversal(const DataPlan& plan, const MigrationInput& input, RemoteMemory& memory)
      : plan_(plan), input_(input), memory_(memory), compare_(plan.old_types, plan.new_types) {
    leads_ = compare_.reaches_change();
    for (uint64_t sp : input.stack_pointers)
      if (const MemoryMap* m = memory_.mapping(sp)) stacks_.push_back(m);
  }

  Status add_root(uint64_t address, int type) {
    GRAFT_TRY(scan(address, type, 0));
    return drain();
  }

  void forbid(uint64_t start, uint64_t size, std::string what) { forbidden_.push_back({start, size, std::move(what)}); }

  std::vector<Instance>& instances() { return instances_; }


  int changed(int old_type) const { return compare_.changed(old_type); }

 private:
  // The pointers inside a value, followed; aggregates by value are scanned in place.
  Status scan(uint64_t address, int type, int depth) {
    if (!leads_[type] || depth > 64) return ok();
    const Type& t = plan_.old_types.at(type);
    switch (t.kind) {
      case TypeKind::Struct:
        for (const auto& m : t.members)
          if (!m.bit_size) GRAFT_TRY(scan(address + m.offset, m.type, depth + 1));
        return ok();
      case TypeKind::Array: {
        const uint64_t size = plan_.old_types.at(t.target).size;
        for (uint64_t k = 0; k < t.count; ++k) GRAFT_TRY(scan(address + k * size, t.target, depth + 1));
        return ok();
      }
      case TypeKind::Pointer: {
        auto value = memory_.word(address);
        if (!value) return make_error("cannot read {} at {:#x} in process {}", plan_.old_types.spell(type), address, input_.pid);
        if (*value) return follow(*value, t.target, address);
        return ok();
      }
      default:
        return ok();
    }
  }

  Status follow(uint64_t p, int type, uint64_t slot) {
    if (!visited_.insert({p, type}).second) return ok();
    const MemoryMap* m = memory_.mapping(p);
    if (!m || m->perms.size() < 2 || m->perms[0] != 'r' || m->perms[1] != 'w') {
      ++dangling_;  // not data: a stale or foreign pointer; nothing of ours lives there
      return ok();
    }
    for (const auto& f : forbidden_)
      if (p >= f.start && p < f.start + f.size)
        return make_error("a pointer at {:#x} points to {}, which the patch moves to new storage: graft cannot "
                          "rewrite pointers to moved globals yet; nothing was changed", slot, f.what);
    const Type& t = plan_.old_types.at(type);
    if (std::find(stacks_.begin(), stacks_.end(), m) != stacks_.end()) {
      if (changed(type) >= 0)
        return make_error("a pointer at {:#x} points to a {} on a thread's stack ({:#x}): graft cannot transform "
                          "objects in frames yet; nothing was changed", slot, t.name, p);
      return ok();
    }
    Instance instance{p, type, changed(type), 1, std::nullopt, slot, m->path.empty() || m->path == "[heap]"};
    if (instance.heap && t.size)
      if (auto usable = allocation(p, *m)) {
        instance.capacity = usable;
        instance.count = std::max<uint64_t>(1, *usable / t.size);
      }
    if (instance.new_type >= 0) instances_.push_back(instance);
    for (uint64_t k = 0; k < instance.count; ++k) work_.push_back({p + k * t.size, type});
    return ok();
  }

  Status drain() {
    while (!work_.empty()) {
      auto [address, type] = work_.back();
      work_.pop_back();
      GRAFT_TRY(scan(address, type, 0));
    }
    return ok();
  }

  // The usable size of the malloc chunk starting at p (glibc's layout: the
  // size word before it, low bits flags), if p starts one.
  std::optional<uint64_t> allocation(uint64_t p, const MemoryMap& m) {
    if (p % 16 || p < m.start + 16) return std::nullopt;
    auto header = memory_.word(p - 8);
    if (!header) return std::nullopt;
    const uint64_t size = *header & ~uint64_t{7};
    const bool mmapped = *header & 2;
    if (size < 32 || size % 16 || p - 16 + size > m.end) return std::nullopt;
    return mmapped ? size - 16 : size - 8;
  }

  struct Forbidden {
    uint64_t start, size;
    std::string what;
  };

  const DataPlan& plan_;
  const MigrationInput& input_;
  RemoteMemory& memory_;
  TypeComparison compare_;
  std::vector<bool> leads_;  // per old type: it can lead to a changed struct
  std::vector<const MemoryMap*> stacks_;
  std::vector<Forbidden> forbidden_;
  std::unordered_set<std::pair<uint64_t, int>, PairHash> visited_;
  std::vector<std::pair<uint64_t, int>> work_;
  std::vector<Instance> instances_;
  size_t dangling_ = 0;
};

// What the user's transformers may apply to: a write's objects (`count` in a
// row) and their old bytes.
struct Transformed {
  size_t write;
  uint64_t address;
  int old_type, new_type;
  uint64_t count;
  std::vector<uint8_t> before;
};

// Every struct with a user's transformer, at any depth inside the transformed
// objects, goes to the target in one list, innermost first: a container's
// transformer sees its members already done.
Status run_user_transformers(const DataPlan& plan, const MigrationInput& input, Transformer& transform,
                             const std::vector<Transformed>& transformed, std::vector<DataWrite>& writes) {
  auto wanted = [&](int old_type) { return plan.user_transformers.count(plan.old_types.at(old_type).name) > 0; };
  std::vector<std::pair<int, UserTransformJob>> jobs;  // with their depth
  for (const auto& t : transformed) {
    const uint64_t old_size = plan.old_types.at(t.old_type).size, new_size = plan.new_types.at(t.new_type).size;
    const auto nested = transform.nested(t.old_type, t.new_type, wanted);
    for (uint64_t k = 0; k < t.count; ++k)
      for (const auto& n : nested) {
        const std::string& name = plan.old_types.at(n.from).name;
        const uint64_t from = k * old_size + n.from_offset, from_size = plan.old_types.at(n.from).size;
        UserTransformJob job{name, plan.user_transformers.at(name), t.address + from,
                             {t.before.begin() + static_cast<long>(from), t.before.begin() + static_cast<long>(from + from_size)},
                             writes[t.write].bytes.data() + k * new_size + n.to_offset, plan.new_types.at(n.to).size};
        jobs.emplace_back(n.depth, std::move(job));
      }
  }
  if (jobs.empty()) return ok();
  if (!input.run_user_transformers) return make_error("internal: the patch has user transformers but nothing runs them");
  // Innermost first; then by transformer, so that each runs over all its objects in one batch.
  std::stable_sort(jobs.begin(), jobs.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second.function < b.second.function;
  });
  std::vector<UserTransformJob> ordered;
  ordered.reserve(jobs.size());
  for (auto& [depth, job] : jobs) ordered.push_back(std::move(job));
  return input.run_user_transformers(ordered);
}

}  // namespace

Result<std::vector<DataWrite>> plan_migration(const DataPlan& plan, const MigrationInput& input, MigrationReport& report) {
  const auto started = Clock::now();
  GRAFT_ASSIGN(auto maps, read_maps(input.pid));
  RemoteMemory memory(input.pid, std::move(maps));
  Traversal traversal(plan, input, memory);
  std::vector<DataWrite> writes;
  Transformer transform(plan.old_types, plan.new_types);

  // Globals with new storage: their old storage must not be pointed to (it is left behind).
  struct Moved {
    const DataRoot* root;
    uint64_t from, to;
  };
  std::vector<Moved> moved;
  std::vector<Transformed> transformed;
  for (const auto& r : plan.roots) {
    GRAFT_ASSIGN(uint64_t at, input.old_address(r.identity));
    if (r.new_type < 0) continue;
    GRAFT_ASSIGN(uint64_t to, input.new_address(r.identity));
    moved.push_back({&r, at, to});
    traversal.forbid(at, plan.old_types.at(r.old_type).size, "global " + r.variable);
  }
  for (const auto& r : plan.roots) {
    GRAFT_ASSIGN(uint64_t at, input.old_address(r.identity));
    if (auto found = traversal.add_root(at, r.old_type); !found) return found.error().context("global " + r.variable);
  }
  for (const auto& m : moved) {
    const uint64_t old_size = plan.old_types.at(m.root->old_type).size;
    const uint64_t new_size = plan.new_types.at(m.root->new_type).size;
    std::vector<uint8_t> before(old_size);
    if (!memory.read(m.from, before.data(), old_size))
      return make_error("cannot read global {} at {:#x} in process {}", m.root->variable, m.from, input.pid);
    DataWrite w{m.to, std::vector<uint8_t>(new_size), {}};
    // Its new storage holds the new initialiser: new fields start from it.
    GRAFT_ASSIGN(w.previous, read_process_memory(input.pid, m.to, new_size));
    w.bytes = w.previous;
    transform(m.root->old_type, before.data(), m.root->new_type, w.bytes.data());
    writes.push_back(std::move(w));
    ++report.objects;
    if (!plan.user_transformers.empty())
      transformed.push_back({writes.size() - 1, m.from, m.root->old_type, m.root->new_type, 1, std::move(before)});
  }

  // Instances inside others (a changed struct embedded in a found object) are
  // transformed with their container.
  auto& found = traversal.instances();
  std::sort(found.begin(), found.end(), [](const Instance& a, const Instance& b) { return a.address < b.address; });
  uint64_t covered_end = 0;
  const Instance* container = nullptr;
  for (const auto& i : found) {
    const uint64_t old_size = plan.old_types.at(i.old_type).size;
    const uint64_t end = i.address + old_size * i.count;
    if (container && i.address < covered_end) {
      if (end > covered_end)
        return make_error("{} at {:#x} overlaps {} at {:#x}: graft cannot tell the objects apart; nothing was changed",
                          plan.old_types.at(i.old_type).name, i.address, plan.old_types.at(container->old_type).name,
                          container->address);
      if (i.address != container->address || i.old_type != container->old_type)
        return make_error("a pointer at {:#x} points inside {} at {:#x}, to a {}: graft cannot follow pointers into "
                          "the middle of transformed objects yet; nothing was changed",
                          i.slot, plan.old_types.at(container->old_type).name, container->address,
                          plan.old_types.at(i.old_type).name);
      continue;
    }
    // A heap object graft found not at the start of an allocation may be a
    // stale or uninitialised pointer: writing there could corrupt anything.
    if (i.heap && !i.capacity)
      return make_error("a pointer at {:#x} to a {} points to {:#x}, which does not start an allocation: graft "
                        "cannot be sure it is one (a stale pointer, or one into the middle of an object); nothing "
                        "was changed", i.slot, plan.old_types.at(i.old_type).name, i.address);
    container = &i;
    covered_end = end;
    const uint64_t new_size = plan.new_types.at(i.new_type).size;
    const uint64_t room = i.capacity ? *i.capacity : old_size * i.count;
    if (new_size * i.count > room)
      return make_error("{} grows from {} to {} bytes, and the one at {:#x} has only {} bytes of allocation{}: moving "
                        "objects is not supported yet; nothing was changed",
                        plan.old_types.at(i.old_type).name, old_size, new_size, i.address, room,
                        i.capacity ? "" : " it is known to have (it does not start a malloc block)");
    DataWrite w;
    w.address = i.address;
    std::vector<uint8_t> before(std::max(old_size * i.count, new_size * i.count));
    if (!memory.read(i.address, before.data(), before.size()))
      return make_error("cannot read {} at {:#x} in process {}", plan.old_types.at(i.old_type).name, i.address, input.pid);
    w.previous.assign(before.begin(), before.begin() + static_cast<long>(new_size * i.count));
    w.bytes.assign(new_size * i.count, 0);
    for (uint64_t k = 0; k < i.count; ++k)
      transform(i.old_type, before.data() + k * old_size, i.new_type, w.bytes.data() + k * new_size);
    writes.push_back(std::move(w));
    report.objects += i.count;
    if (!plan.user_transformers.empty())
      transformed.push_back({writes.size() - 1, i.address, i.old_type, i.new_type, i.count, std::move(before)});
  }
  if (!transformed.empty()) GRAFT_TRY(run_user_transformers(plan, input, transform, transformed, writes));
  // Neighbouring objects (malloc puts them a header apart) become one write,
  // the bytes between them written back unchanged: a million objects cost a
  // few hundred writes, not a million.
  std::sort(writes.begin(), writes.end(), [](const DataWrite& a, const DataWrite& b) { return a.address < b.address; });
  std::vector<DataWrite> merged;
  for (auto& w : writes) {
    if (!merged.empty()) {
      DataWrite& last = merged.back();
      const uint64_t end = last.address + last.bytes.size();
      if (w.address >= end && w.address - end <= 64 && last.bytes.size() < (1u << 20)) {
        std::vector<uint8_t> gap(w.address - end);
        if (memory.read(end, gap.data(), gap.size())) {
          last.bytes.insert(last.bytes.end(), gap.begin(), gap.end());
          last.previous.insert(last.previous.end(), gap.begin(), gap.end());
          last.bytes.insert(last.bytes.end(), w.bytes.begin(), w.bytes.end());
          last.previous.insert(last.previous.end(), w.previous.begin(), w.previous.end());
          continue;
        }
      }
    }
    merged.push_back(std::move(w));
  }
  writes = std::move(merged);
  report.bytes_read = memory.bytes_read();
  report.traverse_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count());
  return writes;
}

}  // namespace graft
