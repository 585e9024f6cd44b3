// Commit time: find every live instance of a changed type by a precise
// traversal from the typed roots, and compute its transformed bytes.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <unordered_map>
#include <unordered_set>

#include "migrate/migrate.h"

#include "common/huge_pages.h"
#include "common/member_facts_format.h"
#include "common/unique_fd.h"
#include "data/type_compare.h"
#include "target/process.h"
#include "target/x86.h"

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
    if (last_map_ && last_map_->contains(address)) return last_map_;
    auto it = std::upper_bound(maps_.begin(), maps_.end(), address, [](uint64_t a, const MemoryMap& m) { return a < m.start; });
    if (it == maps_.begin()) return nullptr;
    --it;
    if (!it->contains(address)) return nullptr;
    last_map_ = &*it;
    return last_map_;
  }

  bool read(uint64_t address, void* out, size_t size) {
    if (size == 0) return true;  // out may be null then (an empty object's bytes): memcpy must not see it (UBSan)
    // Most reads fall in the block the previous one used: no lookup.
    if (address - last_base_ < last_size_ && size <= last_size_ - (address - last_base_)) {
      std::memcpy(out, last_data_ + (address - last_base_), size);
      return true;
    }
    auto* dst = static_cast<uint8_t*>(out);
    while (size) {
      const MemoryMap* m = mapping(address);
      if (!m || m->perms.empty() || m->perms[0] != 'r') return false;
      // Blocks are aligned, but never cross the edges of their mapping.
      const uint64_t base = std::max(address & ~(kBlock - 1), m->start);
      const HugeVector<uint8_t>* block = fetch(base, std::min((address & ~(kBlock - 1)) + kBlock, m->end));
      if (!block || address - base >= block->size()) return false;
      last_base_ = base;
      last_data_ = block->data();
      last_size_ = block->size();
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
  const std::vector<MemoryMap>& maps() const { return maps_; }

 private:
  static constexpr uint64_t kBlock = HugePageAllocator<uint8_t>::kHuge;

  const HugeVector<uint8_t>* fetch(uint64_t base, uint64_t end) {
    auto [it, fresh] = blocks_.try_emplace(base);
    HugeVector<uint8_t>& block = it->second;
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
  mutable const MemoryMap* last_map_ = nullptr;
  std::unordered_map<uint64_t, HugeVector<uint8_t>> blocks_;  // never erased: last_data_ stays valid
  uint64_t last_base_ = 0, last_size_ = 0;
  const uint8_t* last_data_ = nullptr;
  size_t bytes_read_ = 0;
};

// Where the traversal found a pointer, for messages (slot 0: a register of a frame).
std::string pointer_at(uint64_t slot) {
  return slot ? fmt::format("a pointer at {:#x}", slot) : std::string("a pointer a frame holds in a register");
}

// Memory malloc may have given: the heap, or an anonymous mapping (a large
// block, another arena; a thread's stack too, which callers tell apart).
bool heap_memory(const MemoryMap& m) { return m.path.empty() || m.path == "[heap]"; }

struct Instance {
  uint64_t address = 0;
  int old_type = -1, new_type = -1;
  uint64_t count = 1;
  uint64_t capacity = 0;             // usable bytes of its allocation, if it starts one (else 0)
  uint64_t slot = 0;                 // where the pointer that found it is (for messages; 0: a register)
  bool heap = false;
  bool top = false;  // not inside another instance: transformed (or moved) on its own
  // A struct ending in a flexible array member with elements: the bytes of
  // those, from `tail_from` in the old layout to `tail_to` in the new one
  // (its flexible array's offset, or the struct's end for GRAFT_TAIL, whose
  // pointer member at `tail_pointer` is set to them; 0: none).
  uint64_t tail_bytes = 0, tail_from = 0, tail_to = 0;
  std::optional<uint64_t> tail_pointer;
};

// A typed pointer found by the traversal: at `slot`, to `target`, of pointee `type`.
struct Reference {
  uint64_t slot = 0, target = 0;
  int type = -1;
};

// Memory the traversal scanned: a root global, or an object (count elements
// of `type`) it followed a pointer to. A root is named by its label (its
// index in Traversal::root_labels()); objects, by type and address.
struct Region {
  uint64_t start = 0, size = 0;
  int type = -1;
  int label = -1;  // -1: an object
};

// The (address, type) pairs the traversal has followed. A bit per 8-byte
// aligned address and type, in lazily made chunks of 64 KiB of address space
// (1 KiB of bits): a million neighbouring objects cost a few hundred KiB and
// no hashing of their own, where a node-based set cost an allocation and a
// cache miss each. The rare address not 8-aligned, or a type index too large
// for the key, goes to a set.
class VisitedSet {
 public:
  bool contains(uint64_t address, int type) const {
    const auto t = static_cast<uint64_t>(type);
    if (address % 8 || t >= (uint64_t{1} << kTypeBits)) return others_.count({address, type}) != 0;
    auto it = chunks_.find(t << (64 - kTypeBits) | address >> kChunkShift);
    if (it == chunks_.end()) return false;
    const uint64_t bit = (address & ((uint64_t{1} << kChunkShift) - 1)) / 8;
    return it->second[bit / 64] >> (bit % 64) & 1;
  }
  // Whether the pair is new (and now visited).
  bool insert(uint64_t address, int type) {
    const auto t = static_cast<uint64_t>(type);
    if (address % 8 || t >= (uint64_t{1} << kTypeBits)) return others_.insert({address, type}).second;
    const uint64_t key = t << (64 - kTypeBits) | address >> kChunkShift;
    if (key != last_key_ || !last_chunk_) {
      auto& chunk = chunks_[key];
      if (!chunk) chunk = std::make_unique<uint64_t[]>(kChunkWords);  // zeroed
      last_key_ = key;
      last_chunk_ = chunk.get();
    }
    const uint64_t bit = (address & ((uint64_t{1} << kChunkShift) - 1)) / 8;
    uint64_t& word = last_chunk_[bit / 64];
    const uint64_t mask = uint64_t{1} << (bit % 64);
    if (word & mask) return false;
    word |= mask;
    return true;
  }

 private:
  static constexpr int kChunkShift = 16;  // 64 KiB of address space per chunk
  static constexpr int kTypeBits = kChunkShift;  // the bits address >> kChunkShift leaves free
  static constexpr uint64_t kChunkWords = (uint64_t{1} << kChunkShift) / 8 / 64;
  struct PairHash {
    size_t operator()(const std::pair<uint64_t, int>& p) const {
      return std::hash<uint64_t>{}(p.first * 31 + static_cast<uint64_t>(p.second));
    }
  };
  std::unordered_map<uint64_t, std::unique_ptr<uint64_t[]>> chunks_;
  uint64_t last_key_ = 0;
  uint64_t* last_chunk_ = nullptr;
  std::unordered_set<std::pair<uint64_t, int>, PairHash> others_;
};

class Traversal {
 public:
  // `for_moves`: also record every typed pointer and every object scanned,
  // which only moving objects need (prepare_moves); a traversal of a million
  // objects that all stay in place does without those two lists.
  Traversal(const DataPlan& plan, const MigrationInput& input, RemoteMemory& memory, bool for_moves)
      : plan_(plan), input_(input), memory_(memory), compare_(plan.old_types, plan.new_types, &plan.renamed),
        for_moves_(for_moves) {
    std::vector<std::pair<int, int>> declared;
    for (const auto& p : plan.declared_pointers) declared.emplace_back(p.container, p.pointee);
    std::vector<int> untyped;
    for (const auto& u : plan.untyped_members) untyped.push_back(u.container);
    if (plan.untyped_arrays)
      for (int i : untyped_array_types(plan.old_types)) {
        untyped.push_back(i);
        untyped_array_.insert(plan.old_types.at(i).target);  // the element type, void *
      }
    leads_ = compare_.reaches_change(declared, untyped);
    changed_.resize(plan.old_types.types.size());
    for (size_t i = 0; i < changed_.size(); ++i) changed_[i] = compare_.changed(static_cast<int>(i));
    for (const auto& thread : input.threads)
      if (const MemoryMap* m = memory_.mapping(thread.stack_pointer)) stacks_.push_back(m);
    find_container_places();
    if (!plan.heap_types.empty() && input.heap_types_variable)
      heap_base_ = memory_.word(input.heap_types_variable).value_or(kHeapTypesUnavailable);
    for (const auto& h : plan.heap_types) {
      heap_ids_.emplace(h.id, h.type);
      heap_reach_ = std::max(heap_reach_, plan.old_types.at(h.type).size);
    }
  }

  // The heap's type tags (common/member_facts_format.h), as the process has
  // them: the table's address, 0 if no block was ever tagged, or
  // kHeapTypesUnavailable if it could not be reserved.
  uint64_t heap_table() const { return heap_base_; }
  // The tag of the block starting at `address` (0: none, or unreadable).
  uint16_t tag_at(uint64_t address) {
    uint16_t id = 0;
    if (heap_base_ <= kHeapTypesUnavailable || address >> 47) return 0;
    if (!memory_.read(heap_base_ + (address >> kHeapTypesGranuleShift) * 2, &id, 2)) return 0;
    return id;
  }
  // The struct a DataPlan::heap_types ID names, or -1.
  int tagged_type(uint16_t id) const {
    auto it = heap_ids_.find(id);
    return it == heap_ids_.end() ? -1 : it->second;
  }
  bool on_stack(uint64_t value) const {
    const MemoryMap* m = memory_.mapping(value);
    return m && std::find(stacks_.begin(), stacks_.end(), m) != stacks_.end();
  }

  // A value of `type` at `address` (a global, a local in a stack slot),
  // named by `label` in messages.
  // Whether `value` lies in a root (a global or a frame's slot), not in an
  // object: the roots alone, not every region a moving traversal records.
  bool in_global_root(uint64_t value) const {
    for (const auto& [start, size] : root_ranges_)
      if (value >= start && value < start + size) return true;
    return false;
  }

  // `identity`: the global's, where a generic container in it holds one
  // struct (UntypedMember::per_container).
  Status add_root(uint64_t address, int type, const std::string& label, const std::string& identity = "") {
    visited_.insert(address, type);  // reached, as a pointer to it would be
    root_ranges_.emplace_back(address, plan_.old_types.at(type).size);
    regions_.push_back({address, plan_.old_types.at(type).size, type, static_cast<int>(root_labels_.size())});
    root_labels_.push_back(label);
    if (!identity.empty())
      for (size_t c = 0; c < contexts_.size(); ++c)
        if (const ContainerHolds& place = context_place(static_cast<int>(c)); place.global == identity)
          global_places_[address + place.offset] = static_cast<int>(c);
    GRAFT_TRY(scan(address, type, 0, -1));
    return drain();
  }

  // A global that is itself a void * holding a `pointee` (UntypedGlobal):
  // its word is followed like a typed pointer, and rewritten if it moves.
  Status add_untyped_global(uint64_t address, int pointee, const std::string& label) {
    auto value = memory_.word(address);
    if (!value) return make_error("cannot read {} at {:#x} in process {}", label, address, input_.pid);
    if (!*value) return ok();
    root_ranges_.emplace_back(address, 8);
    GRAFT_TRY(follow(*value, pointee, address, -1));
    return drain();
  }

  // A word the kernel keeps (epoll's data) that graft-cc's records say holds
  // a `pointee`: followed like a typed pointer. It is not in memory: one
  // whose object moves is set again at the commit (kernel_word_moves), as
  // is one into a global's old storage.
  Status add_kernel_word(uint64_t value, int pointee) {
    for (const auto& f : forbidden_)
      if (value >= f.start && value < f.start + f.size) return ok();
    GRAFT_TRY(follow(value, pointee, 0, -1));
    return drain();
  }

  // A pointer of `type` held in a register (a local of a stopped frame):
  // followed like one in memory. Only a register of the thread's own frame
  // (`home`: its thread and the register) can be rewritten.
  struct RegisterRoot {
    uint64_t value = 0;
    int pointee = -1;
    std::string label;
    std::optional<std::pair<pid_t, Reg>> home;
  };
  Status add_root_value(uint64_t value, int type, const std::string& label,
                        std::optional<std::pair<pid_t, Reg>> home = std::nullopt) {
    const Type& t = plan_.old_types.at(type);
    if (t.kind != TypeKind::Pointer || !value || !leads_[type]) return ok();
    registers_.push_back({value, t.target, label, home});
    GRAFT_TRY(follow(value, t.target, 0, -1));
    return drain();
  }
  // The pointers add_root_value followed.
  const std::vector<RegisterRoot>& register_roots() const { return registers_; }

  void forbid(uint64_t start, uint64_t size, std::string what) { forbidden_.push_back({start, size, std::move(what)}); }

  HugeVector<Instance>& instances() { return instances_; }
  // Every typed pointer to a changed struct found, and every object scanned (for_moves only; roots always).
  const HugeVector<Reference>& references() const { return references_; }
  const HugeVector<Region>& regions() const { return regions_; }
  const std::vector<std::string>& root_labels() const { return root_labels_; }

  // Undeclared void * members met, with what they hold.
  struct UntypedSlot {
    uint64_t slot = 0, value = 0;
    size_t member = 0;  // in plan.untyped_members
  };
  const std::vector<UntypedSlot>& untyped_slots() const { return untyped_; }
  // Values followed as the struct their container's place holds.
  struct FollowedByPlace {
    uint64_t value = 0;
    int pointee = -1;
    int context = -1;
  };
  const std::vector<FollowedByPlace>& followed_by_place() const { return followed_by_place_; }
  // A context's member (its index in plan.untyped_members) and place (in its per_container).
  std::pair<size_t, size_t> context_of(int context) const { return contexts_[static_cast<size_t>(context)]; }
  // Whether the traversal reached an object of `type` at `address` (a root, or through a pointer).
  bool reached(uint64_t address, int type) const { return visited_.contains(address, type); }
  // The elements of `void **` arrays follow_untyped_array met: slot, value.
  const std::vector<std::pair<uint64_t, uint64_t>>& untyped_elements() const { return untyped_elements_; }
  // Whether it reached some object at `address`.
  bool reached_any(uint64_t address) const {
    for (int t = 0; t < static_cast<int>(plan_.old_types.types.size()); ++t)
      if (visited_.contains(address, t)) return true;
    return false;
  }
  // Typed pointers met into the old storage of a global that gets new storage.
  struct IntoMoved {
    uint64_t slot = 0, value = 0;
    int pointee = -1;
  };
  const std::vector<IntoMoved>& into_moved() const { return into_moved_; }
  // Words a GRAFT_POINTS_INTO declares: at `slot`, the address `value` of a
  // member (of type `member`) `into` bytes inside a `pointee`. Where that
  // member is elsewhere in the new layout, or the pointee moves, the word
  // must follow it (interior_rewrites).
  struct InteriorWord {
    uint64_t slot = 0, value = 0;
    int member = -1;
  };
  const std::vector<InteriorWord>& interior_words() const { return interior_words_; }

  // The new type of a changed struct, or -1 (computed once per type: this runs for every object).
  int changed(int old_type) const { return changed_[static_cast<size_t>(old_type)]; }

 private:
  // The pointers inside a value, followed; aggregates by value are scanned
  // in place. `context`: the generic container place the value was reached
  // from through the container's own structs (contexts_), or -1.
  Status scan(uint64_t address, int type, int depth, int context) {
    if (!leads_[type] || depth > 64) return ok();
    if (!global_places_.empty() && context < 0)
      if (auto place = global_places_.find(address); place != global_places_.end()) context = place->second;
    if (context >= 0 && !carries(context, type)) context = -1;
    const Type& t = plan_.old_types.at(type);
    switch (t.kind) {
      case TypeKind::Struct:
        for (const auto& m : t.members) {
          if (m.bit_size) continue;
          GRAFT_ASSIGN(bool declared, scan_declared_union(address, type, m.offset, depth));
          if (!declared) GRAFT_TRY(scan(address + m.offset, m.type, depth + 1, member_context(type, m.offset, context)));
        }
        // Members the user declared to point to a struct (a void *): followed like typed pointers.
        for (const auto& p : plan_.declared_pointers)
          if (p.container == type) {
            auto value = memory_.word(address + p.offset);
            if (!value) return make_error("cannot read {} at {:#x} in process {}", p.source, address + p.offset, input_.pid);
            if (!*value) continue;
            // A union's word: a pointer only where the block it points to is tagged as the pointee.
            if (p.by_tag) {
              if (!on_stack(*value) && tagged_type(tag_at(*value)) == p.pointee)
                GRAFT_TRY(follow(*value, p.pointee, address + p.offset, -1));
              continue;
            }
            if (!p.interior) {
              GRAFT_TRY(follow(*value, p.pointee, address + p.offset, -1));
              continue;
            }
            // Into a member (container_of): the pointee starts before it,
            // unless it is a list's head in a global, inside no pointee. The
            // reference is followed without its slot (the pointee is not what
            // it points to) and kept aside, to follow the member if it moves.
            if (in_global_root(*value)) continue;
            interior_words_.push_back({address + p.offset, *value, p.container});
            GRAFT_TRY(follow(*value - p.into, p.pointee, 0, -1));
          }
        // Undeclared void * members: what they hold is checked once every typed object is found.
        for (size_t k = 0; k < plan_.untyped_members.size(); ++k) {
          const UntypedMember& u = plan_.untyped_members[k];
          if (u.container != type) continue;
          auto value = memory_.word(address + u.offset);
          if (!value || !*value) continue;
          untyped_.push_back({address + u.offset, *value, k});
          if (u.by_heap_type) {
            GRAFT_TRY(follow_by_tag(*value, address + u.offset));
            continue;
          }
          // In a container whose place says what it holds: followed as that.
          if (context >= 0 && contexts_[static_cast<size_t>(context)].first == k) {
            const int pointee = context_place(context).pointee;
            followed_by_place_.push_back({*value, pointee, context});
            GRAFT_TRY(follow(*value, pointee, address + u.offset, -1));
            continue;
          }
          // In the heap, it can only be the one struct of those it holds that
          // lives outside globals (UntypedMember::in_heap): followed as it.
          if (u.in_heap >= 0)
            if (const MemoryMap* m = memory_.mapping(*value);
                m && heap_memory(*m) && std::find(stacks_.begin(), stacks_.end(), m) == stacks_.end())
              GRAFT_TRY(follow(*value, u.in_heap, address + u.offset, -1));
          // One of the structs the records name, which the check makes sure of:
          // a reference to it as each, so that the one it is can move.
          if (for_moves_)
            for (int held : u.holds) references_.push_back({address + u.offset, *value, held});
        }
        return ok();
      case TypeKind::Array: {
        const uint64_t size = plan_.old_types.at(t.target).size;
        for (uint64_t k = 0; k < t.count; ++k) GRAFT_TRY(scan(address + k * size, t.target, depth + 1, context));
        return ok();
      }
      case TypeKind::Pointer: {
        auto value = memory_.word(address);
        if (!value) return make_error("cannot read {} at {:#x} in process {}", plan_.old_types.spell(type), address, input_.pid);
        if (*value) return follow(*value, t.target, address, context);
        return ok();
      }
      default:
        return ok();
    }
  }

  // A union at `offset` in a struct of `type` at `address` whose live member
  // the user declared by a tag (GRAFT_UNION_MEMBER): only that member is
  // scanned. False if no directive covers it; a tag value none names refuses.
  Result<bool> scan_declared_union(uint64_t address, int type, uint64_t offset, int depth) {
    const DeclaredUnionMember* first = nullptr;
    int64_t tag = 0;
    for (const auto& u : plan_.declared_union_members) {
      if (u.container != type || u.union_offset != offset) continue;
      if (!first) {
        first = &u;
        uint64_t raw = 0;
        if (!memory_.read(address + u.tag_offset, &raw, u.tag_size))
          return make_error("cannot read the tag of {} at {:#x} in process {}", u.source, address, input_.pid);
        const unsigned shift = 64 - 8 * u.tag_size;
        tag = u.tag_signed && shift ? static_cast<int64_t>(raw << shift) >> shift : static_cast<int64_t>(raw);
      }
      if (u.tag_value == tag) {
        GRAFT_TRY(scan(address + u.member_offset, u.member_type, depth + 1, -1));
        return true;
      }
    }
    if (!first) return false;
    return make_error("the {} at {:#x}: its tag holds {}, a value no GRAFT_UNION_MEMBER names for that union (as {} "
                      "does for another), so graft cannot tell which member is live; declare it for this value too; "
                      "nothing was changed", plan_.old_types.spell(type), address, tag, first->source);
  }

  void find_container_places() {
    const auto& types = plan_.old_types.types;
    carriers_.resize(plan_.untyped_members.size());
    with_member_places_.assign(types.size(), false);
    for (size_t k = 0; k < plan_.untyped_members.size(); ++k) {
      const UntypedMember& u = plan_.untyped_members[k];
      if (u.per_container.empty()) continue;
      // The container's structs, and pointers and arrays of them.
      std::vector<bool>& carrier = carriers_[k];
      carrier.assign(types.size(), false);
      for (int f : u.family) carrier[static_cast<size_t>(f)] = true;
      for (bool grew = true; grew;) {
        grew = false;
        for (size_t i = 0; i < types.size(); ++i)
          if (!carrier[i] && (types[i].kind == TypeKind::Pointer || types[i].kind == TypeKind::Array) &&
              types[i].target >= 0 && carrier[static_cast<size_t>(types[i].target)])
            carrier[i] = grew = true;
      }
      for (size_t p = 0; p < u.per_container.size(); ++p) {
        const int context = static_cast<int>(contexts_.size());
        contexts_.emplace_back(k, p);
        const ContainerHolds& place = u.per_container[p];
        if (place.global.empty())
          for (size_t i = 0; i < types.size(); ++i)
            if (types[i].kind == TypeKind::Struct && types[i].name == types[static_cast<size_t>(place.container)].name) {
              member_places_[{static_cast<int>(i), place.offset}] = context;
              with_member_places_[i] = true;
            }
      }
    }
  }
  const ContainerHolds& context_place(int context) const {
    const auto [k, p] = contexts_[static_cast<size_t>(context)];
    return plan_.untyped_members[k].per_container[p];
  }
  bool carries(int context, int type) const {
    return carriers_[contexts_[static_cast<size_t>(context)].first][static_cast<size_t>(type)];
  }
  // The context of a struct's member: the struct's own within a container,
  // or the place the member is.
  int member_context(int type, uint64_t offset, int context) const {
    if (!with_member_places_[static_cast<size_t>(type)]) return context;
    auto place = member_places_.find({type, offset});
    return place == member_places_.end() ? context : place->second;
  }

  // A value of an untyped member the heap's tags tell (UntypedMember::
  // by_heap_type): in a block tagged as a struct of DataPlan::heap_types, at
  // its start or inside it (a member's address), it is followed as that
  // struct, and the word follows what it points to if the block changes
  // layout or moves (as a GRAFT_POINTS_INTO word does: an untyped word does
  // not say which of the nested values it points to, so one that would have
  // to choose refuses). An untagged value is none of them
  // (check_untyped_members refuses one into a stack).
  Status follow_by_tag(uint64_t value, uint64_t slot) {
    if (heap_base_ <= kHeapTypesUnavailable) return ok();
    const MemoryMap* m = memory_.mapping(value);
    if (!m || !heap_memory(*m) || on_stack(value)) return ok();
    // The nearest tag at or before it, no further back than the largest tagged struct.
    for (uint64_t start = value & ~uint64_t{15}; start + heap_reach_ > value && start >= m->start + 16; start -= 16) {
      const uint16_t id = tag_at(start);
      if (!id) continue;
      const int type = tagged_type(id);
      if (type < 0) return ok();  // a block of a struct that needs no following
      const auto usable = allocation(start, *m);
      if (!usable || value >= start + std::min(*usable, plan_.old_types.at(type).size)) return ok();
      interior_words_.push_back({slot, value, -1});
      return follow(start, type, slot, -1, false);
    }
    return ok();
  }
  // The block a `void **` points to (DataPlan::untyped_arrays): each element
  // an untyped word, told by the heap's tags (follow_by_tag) or checked
  // against the heap (check_untyped_members); the block is a region, so
  // that a pointer in it to an object that moves is found.
  Status follow_untyped_array(uint64_t p, int type) {
    if (!visited_.insert(p, type)) return ok();
    const MemoryMap* m = memory_.mapping(p);
    if (!m || m->perms.size() < 2 || m->perms[0] != 'r' || m->perms[1] != 'w' || on_stack(p)) return ok();
    uint64_t count = 1;
    if (heap_memory(*m))
      if (auto usable = allocation(p, *m)) count = *usable / 8;
    if (for_moves_) regions_.push_back({p, count * 8, type});
    for (uint64_t k = 0; k < count; ++k) {
      auto value = memory_.word(p + 8 * k);
      if (!value || !*value) continue;
      untyped_elements_.push_back({p + 8 * k, *value});
      if (plan_.arrays_by_heap_type) GRAFT_TRY(follow_by_tag(*value, p + 8 * k));
    }
    return ok();
  }
  // `reference`: the slot holds a typed pointer to `p` (an untyped word the
  // tags told is rewritten as an interior word instead).
  Status follow(uint64_t p, int type, uint64_t slot, int context, bool reference = true) {
    if (untyped_array_.count(type)) return follow_untyped_array(p, type);
    // Into a global's old storage: in memory, rewritten with every other
    // word that points there (moved_global_rewrites); in a register, not.
    for (const auto& f : forbidden_)
      if (p >= f.start && p < f.start + f.size) {
        if (slot) {
          into_moved_.push_back({slot, p, type});
          return ok();
        }
        return make_error("{} points to {}, which the patch moves to new storage: graft cannot rewrite a register "
                          "that points to a moved global; nothing was changed", pointer_at(slot), f.what);
      }
    if (for_moves_ && slot && reference && changed(type) >= 0)
      references_.push_back({slot, p, type});  // slot 0: a register, never rewritten
    if (context >= 0 && !carries(context, type)) context = -1;
    // A container's own struct is visited once per place it is reached from
    // (none of them changes: plan_data_changes makes sure), so that each
    // place's values are followed as its struct.
    const int key = context < 0 ? type : type + static_cast<int>(plan_.old_types.types.size()) * (context + 1);
    if (!visited_.insert(p, key)) return ok();
    const MemoryMap* m = memory_.mapping(p);
    if (!m || m->perms.size() < 2 || m->perms[0] != 'r' || m->perms[1] != 'w') {
      ++dangling_;  // not data: a stale or foreign pointer; nothing of ours lives there
      return ok();
    }
    const Type& t = plan_.old_types.at(type);
    if (std::find(stacks_.begin(), stacks_.end(), m) != stacks_.end()) {
      if (changed(type) >= 0)
        return make_error("{} points to a {} on a thread's stack ({:#x}): graft cannot transform "
                          "objects in frames yet; nothing was changed", pointer_at(slot), t.name, p);
      return ok();
    }
    Instance instance;
    instance.address = p;
    instance.old_type = type;
    instance.new_type = changed(type);
    instance.slot = slot;
    instance.heap = heap_memory(*m);
    const std::optional<FlexibleArray> flexible = flexible_array(type);
    uint64_t tail = 0;  // elements of a flexible array member the allocation has room for
    if (instance.heap && t.size)
      if (auto usable = allocation(p, *m)) {
        instance.capacity = *usable;
        // A struct ending in a flexible array member is allocated with room
        // for its elements: the header once, the rest elements of the array.
        if (flexible) tail = *usable > flexible->offset ? (*usable - flexible->offset) / flexible->element_size : 0;
        else instance.count = std::max<uint64_t>(1, *usable / t.size);
      }
    // One with elements: its header and its tail would have to move together. One with none (a list's
    // sentinel inside its owner, beanstalkd's `tube.buried`: no allocation of its own) is its header alone.
    // The header and its elements move together: the elements' bytes are
    // copied to the new layout's flexible array (of the same elements), or,
    // where the user says the new version keeps them after the struct
    // (GRAFT_TAIL), there, with the new pointer member set to them.
    if (flexible && tail && (instance.new_type >= 0 || changed(flexible->element) >= 0)) {
      const Member* now = nullptr;
      if (instance.new_type >= 0)
        for (const auto& n : plan_.new_types.at(instance.new_type).members)
          if (n.name == flexible->name) now = &n;
      const Type* now_type = now ? &plan_.new_types.at(now->type) : nullptr;
      const bool tailed = std::any_of(plan_.tails.begin(), plan_.tails.end(),
                                      [&](int k) { return plan_.old_types.at(k).name == t.name; });
      const bool same_elements = now_type && now_type->kind == TypeKind::Array && now_type->count == 0 &&
                                 now_type->target >= 0 &&
                                 plan_.new_types.at(now_type->target).size == flexible->element_size &&
                                 changed(flexible->element) < 0 && now == &plan_.new_types.at(instance.new_type).members.back();
      if (changed(flexible->element) >= 0 || !now || (!same_elements && !(tailed && now_type->kind == TypeKind::Pointer)))
        return make_error("{} points to a {} at {:#x}, which ends in the flexible array member {}[] of {} with {} "
                          "elements, and the patch changes {}: graft cannot carry the elements into the new layout{}; "
                          "nothing was changed",
                          pointer_at(slot), t.name, p, flexible->name, plan_.old_types.spell(flexible->element), tail,
                          changed(flexible->element) >= 0 ? plan_.old_types.spell(flexible->element) : t.name,
                          now_type && now_type->kind == TypeKind::Pointer
                              ? fmt::format(" (if the new version keeps them right after the struct and points {} to "
                                            "them, declare so: GRAFT_TAIL({}, {}))",
                                            flexible->name, t.name.substr(t.name.rfind(' ') + 1), flexible->name)
                              : std::string());
      instance.tail_bytes = tail * flexible->element_size;
      instance.tail_from = flexible->offset;
      if (same_elements) {
        instance.tail_to = now->offset;
      } else {
        instance.tail_to = plan_.new_types.at(instance.new_type).size;
        instance.tail_pointer = now->offset;
      }
    }
    if (instance.new_type >= 0) instances_.push_back(instance);
    if (for_moves_) regions_.push_back({p, instance.count * t.size, type});
    for (uint64_t k = 0; k < instance.count; ++k) work_.push_back({p + k * t.size, type, context});
    if (tail) {
      if (for_moves_) regions_.push_back({p + flexible->offset, tail * flexible->element_size, flexible->element});
      for (uint64_t k = 0; k < tail; ++k)
        work_.push_back({p + flexible->offset + k * flexible->element_size, flexible->element, -1});
    }
    return ok();
  }

  // A struct's last member when it is a flexible array (`struct resp r[];`,
  // DWARF: an array of no count) of elements with a size.
  struct FlexibleArray {
    std::string name;
    uint64_t offset = 0;
    int element = -1;
    uint64_t element_size = 0;
  };
  std::optional<FlexibleArray> flexible_array(int type) const {
    const Type& t = plan_.old_types.at(type);
    if (t.kind != TypeKind::Struct || t.members.empty()) return std::nullopt;
    const Member& last = t.members.back();
    const Type& array = plan_.old_types.at(last.type);
    if (array.kind != TypeKind::Array || array.count != 0 || array.target < 0) return std::nullopt;
    const uint64_t element_size = plan_.old_types.at(array.target).size;
    if (!element_size) return std::nullopt;
    return FlexibleArray{last.name, last.offset, array.target, element_size};
  }

  Status drain() {
    while (!work_.empty()) {
      auto [address, type, context] = work_.back();
      work_.pop_back();
      GRAFT_TRY(scan(address, type, 0, context));
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
  bool for_moves_;
  std::vector<bool> leads_;  // per old type: it can lead to a changed struct
  std::vector<int> changed_;  // per old type: compare_.changed
  std::vector<const MemoryMap*> stacks_;
  std::vector<Forbidden> forbidden_;
  VisitedSet visited_;
  struct Work {
    uint64_t address;
    int type, context;
  };
  std::vector<Work> work_;
  // Generic containers' places (UntypedMember::per_container): each context
  // is (the member's index in plan.untyped_members, the place's index).
  std::vector<std::pair<size_t, size_t>> contexts_;
  std::vector<std::vector<bool>> carriers_;  // per member with places: per type, whether a context goes through it
  std::map<uint64_t, int> global_places_;    // a place in a global root, by address -> its context
  std::map<std::pair<int, uint64_t>, int> member_places_;  // (struct, member offset) -> its context
  std::vector<bool> with_member_places_;                   // per type: some member of it is a place
  std::vector<FollowedByPlace> followed_by_place_;
  HugeVector<Instance> instances_;
  HugeVector<Reference> references_;
  HugeVector<Region> regions_;
  std::vector<std::string> root_labels_;
  std::vector<std::pair<uint64_t, uint64_t>> root_ranges_;  // start, size of each root
  std::vector<RegisterRoot> registers_;
  std::vector<UntypedSlot> untyped_;
  std::vector<IntoMoved> into_moved_;
  std::vector<InteriorWord> interior_words_;
  std::set<int> untyped_array_;              // the element types of DataPlan::untyped_arrays (void *)
  std::vector<std::pair<uint64_t, uint64_t>> untyped_elements_;
  uint64_t heap_base_ = 0;                   // heap_table()
  std::unordered_map<uint16_t, int> heap_ids_;  // DataPlan::heap_types
  uint64_t heap_reach_ = 16;                 // the largest tagged struct: how far back a tag may be
  size_t dangling_ = 0;
};

// Every aligned word of a region the traversal scanned (read into `bytes`),
// as `each(slot, value, offset of the slot in its element)`; a region that
// cannot be read has none.
template <typename Each>
Status each_word(RemoteMemory& memory, const TypeTable& types, const Region& region, std::vector<uint8_t>& bytes,
                 Each&& each) {
  const uint64_t start = (region.start + 7) & ~uint64_t{7};
  if (start >= region.start + region.size) return ok();
  bytes.resize((region.start + region.size - start) & ~uint64_t{7});
  if (bytes.empty() || !memory.read(start, bytes.data(), bytes.size())) return ok();
  const uint64_t element = types.at(region.type).size ? types.at(region.type).size : region.size;
  for (size_t off = 0; off < bytes.size(); off += 8) {
    uint64_t value;
    std::memcpy(&value, bytes.data() + off, 8);
    GRAFT_TRY(each(start + off, value, (start + off - region.start) % element));
  }
  return ok();
}

// Where a stopped thread's live stack starts: its pointer, less the red
// zone a leaf function may use in user code (in a system call, what lies
// below is dead), within its mapping, 8-byte aligned.
uint64_t live_stack_start(const MigrationInput::StoppedThread& thread, const MemoryMap& stack) {
  const uint64_t red_zone = thread.in_system_call ? 0 : 128;
  return std::max(stack.start, (thread.stack_pointer - red_zone) & ~uint64_t{7});
}

// Which of a stopped thread's frames a stack word lies in, for messages:
// " (in frame #2, pc 0x55d0c0a0)", or "" if the unwind does not say.
std::string frame_of(const MigrationInput::StoppedThread& thread, uint64_t slot) {
  for (size_t k = 0; k < thread.frames.size(); ++k) {
    const StackFrame& f = thread.frames[k];
    if (f.cfa && slot >= f.sp && slot < f.cfa) return fmt::format(" (in frame #{}, pc {:#x})", k, f.pc);
  }
  return "";
}

// One step from a value of `type` at `offset` into what holds that byte: a
// member (its index in the type's members) or an array element; none at a
// scalar, or in padding.
struct Step {
  int member = -1;        // or an element of an array
  uint64_t element = 0;   // its index
  int type = -1;          // of the member or element
  uint64_t offset = 0;    // what is left of `offset` inside it
};
std::optional<Step> step_into(const TypeTable& types, int type, uint64_t offset) {
  const Type& t = types.at(type);
  if (t.kind == TypeKind::Struct || t.kind == TypeKind::Union) {
    for (size_t k = 0; k < t.members.size(); ++k) {
      const Member& m = t.members[k];
      if (!m.bit_size && offset >= m.offset && offset < m.offset + types.at(m.type).size)
        return Step{static_cast<int>(k), 0, m.type, offset - m.offset};
    }
  } else if (t.kind == TypeKind::Array && t.target >= 0 && types.at(t.target).size) {
    const uint64_t size = types.at(t.target).size;
    return Step{-1, offset / size, t.target, offset % size};
  }
  return std::nullopt;
}

// What the 8-byte word at `offset` in a value of `type` holds, by its type:
// a typed pointer (a char * member, an element of an array of pointers:
// `pointee` its target); an untyped one (a void *, or a union's word, whose
// live member the type does not say: an address or garbage, a number there
// having to equal one); a number (in a member of fewer than 8 bytes, a word
// of numbers such as a char array's text, a double, or an 8-byte integer
// the records show only numbers stored in, `numbers`:
// DataPlan::number_members); or nothing a pointer ends at.
struct WordAt {
  enum class Kind { Other, Number, Typed, Untyped } kind = Kind::Other;
  int pointee = -1;  // Typed: what it points to
};
WordAt word_at(const TypeTable& types, int type, uint64_t offset,
               const std::set<std::pair<int, uint64_t>>* numbers = nullptr) {
  using Kind = WordAt::Kind;
  for (int depth = 0; depth < 32; ++depth) {
    const Type& t = types.at(type);
    if (t.kind == TypeKind::Union) return {Kind::Untyped};
    if (t.kind == TypeKind::Pointer) {
      if (offset != 0) return {};
      return t.target >= 0 ? WordAt{Kind::Typed, t.target} : WordAt{Kind::Untyped};
    }
    if (t.kind == TypeKind::Float || (numeric(t.kind) && t.size < 8)) return {Kind::Number};
    auto step = step_into(types, type, offset);
    if (!step) return {};
    if (numbers && step->member >= 0 && step->offset == 0 &&
        numbers->count({type, t.members[static_cast<size_t>(step->member)].offset}))
      return {Kind::Number};
    type = step->type;
    offset = step->offset;
  }
  return {};
}
std::optional<int> pointer_held_at(const TypeTable& types, int type, uint64_t offset) {
  const WordAt held = word_at(types, type, offset);
  return held.kind == WordAt::Kind::Typed ? std::optional<int>(held.pointee) : std::nullopt;
}

// Where `offset` falls in a value of `type`: ".cookie (void *)", "[3].next (struct node *)".
std::string member_path(const TypeTable& types, int type, uint64_t offset) {
  std::string path;
  for (int depth = 0; depth < 32; ++depth) {
    auto step = step_into(types, type, offset);
    if (!step) break;
    const Type& t = types.at(type);
    if (step->member >= 0) {
      const std::string& name = t.members[static_cast<size_t>(step->member)].name;
      path += "." + (name.empty() ? std::string("<anonymous>") : name);
    } else {
      path += fmt::format("[{}]", step->element);
    }
    type = step->type;
    offset = step->offset;
  }
  if (offset) path += fmt::format(" + {}", offset);
  return fmt::format("{}{}({})", path, path.empty() ? "" : " ", types.spell(type));
}

// The same place in a value of the new type `to` as `offset` is in a value
// of the old type `from`: member by member by name (an unnamed one by its
// rank among the unnamed), array element by index, down to a value whose
// type did not change. An address that starts several nested values (a
// struct and its first member) must lead to one place in the new layout,
// since a word does not say which of them it points to. The error says why
// there is no such place. A typed pointer says which: `pointee`, its old
// type (-1 for a word of unknown type).
Result<uint64_t> same_place(const TypeTable& olds, int from, const TypeTable& news, int to, uint64_t offset,
                            int pointee) {
  uint64_t out = 0;
  std::optional<std::pair<uint64_t, int>> start;  // the outermost value starting at the address: where it went, its type
  std::string path;
  for (int depth = 0; depth < 32; ++depth) {
    if (offset == 0 && pointee >= 0 &&
        (from == pointee || (!olds.at(from).name.empty() && olds.at(from).name == olds.at(pointee).name)))
      return out;
    if (offset == 0) {
      if (start && start->first != out)
        return make_error("it is the address of both {} and of its member {}, which are {} bytes apart in the new "
                          "layout (keeping that member first in the new version settles it)", olds.spell(start->second), path.substr(1), out - start->first);
      if (!start) start = {out, from};
    }
    const Type& a = olds.at(from);
    const Type& b = news.at(to);
    auto step = step_into(olds, from, offset);
    if (!step) {
      if (a.kind != b.kind || a.size != b.size)
        return make_error("it points into {}, which is {} in the new version", olds.spell(from), news.spell(to));
      return out + offset;
    }
    if (a.kind != b.kind) return make_error("{} is {} in the new version", olds.spell(from), news.spell(to));
    if (step->member >= 0) {
      const Member& m = a.members[static_cast<size_t>(step->member)];
      const Member* n = nullptr;
      if (!m.name.empty()) {
        for (const auto& c : b.members)
          if (c.name == m.name) n = &c;
      } else {
        const auto rank = std::count_if(a.members.begin(), a.members.begin() + step->member,
                                        [](const Member& x) { return x.name.empty(); });
        long seen = 0;
        for (const auto& c : b.members)
          if (c.name.empty() && seen++ == rank) n = &c;
      }
      if (!n || n->bit_size) return make_error("its member {} is not in the new version", m.name.empty() ? "<anonymous>" : m.name);
      path += "." + (m.name.empty() ? std::string("<anonymous>") : m.name);
      out += n->offset;
      to = n->type;
    } else {
      if (b.target < 0 || (b.count && step->element >= b.count))
        return make_error("element {} of {} is not in the new version ({})", step->element, olds.spell(from), news.spell(to));
      path += fmt::format("[{}]", step->element);
      out += step->element * news.at(b.target).size;
      to = b.target;
    }
    from = step->type;
    offset = step->offset;
  }
  return make_error("it lies deeper than graft follows");
}

// What the traversal saw at `slot`, for messages: "global forest.cookie (void *)",
// "struct table at 0x55d0c0: .cookie (void *)".
std::string place(const TypeTable& types, const Traversal& traversal, const Region& r, uint64_t slot) {
  const uint64_t element = types.at(r.type).size ? types.at(r.type).size : r.size;
  const uint64_t k = (slot - r.start) / element;
  const std::string path = member_path(types, r.type, slot - r.start - k * element);
  if (const std::string* label = r.label >= 0 ? &traversal.root_labels()[static_cast<size_t>(r.label)] : nullptr;
      label && !label->empty())
    return *label + (path.starts_with("(") ? " " : "") + path;
  if (r.size > element)
    return fmt::format("element {} of the {}s at {:#x}: {}", k, types.spell(r.type), r.start, path);
  return fmt::format("the {} at {:#x}: {}", types.spell(r.type), r.start, path);
}

constexpr uint64_t kChunkHeader = 16;  // glibc: prev_size and size words before the memory malloc returns
constexpr uint64_t kMmappedBit = 2;    // glibc: IS_MMAPPED in the size word

constexpr uint64_t kPage = 4096;

// Whether a stopped thread's register may hold a live value: just after a
// call returned, what the callee left in the call-clobbered argument
// registers is dead.
bool may_be_live(const MigrationInput::StoppedThread& thread, Reg reg) {
  return !(thread.just_returned && call_clobbered_argument(reg));
}

// A global whose type changed: its old storage, and the new storage the patch gave it.
struct MovedGlobal {
  const DataRoot* root;
  uint64_t from, to;
};

// A top-level instance and what becomes of it: transformed in place, or moved
// to `block` (a page-aligned fake mmapped chunk of `block_size` bytes).
struct Target {
  const Instance* instance = nullptr;
  uint64_t old_bytes = 0, new_bytes = 0;
  std::optional<uint64_t> room;  // bytes of its allocation, if it is known
  bool moves = false;
  uint64_t block = 0, block_size = 0;
};

// Whether a kernel's word may be an address of the program's data: it lies
// in writable memory (not a descriptor number, redis's data.fd).
bool writable_at(const RemoteMemory& memory, uint64_t value) {
  const MemoryMap* m = memory.mapping(value);
  return m && m->perms.size() > 1 && m->perms[1] == 'w';
}

// Where a word that points into a found object must point after the
// commit: the same place in its new layout (same_place; `pointee`, the
// word's type if known, says which of the nested values starting there),
// in its new block if it moves (`moves`: `place` is then into it), else
// at `place`, the new address itself. `into` says where it pointed, for
// messages. nullopt: the word points into no object that changes.
struct WordMove {
  const Target* moves = nullptr;
  std::string into;
  Result<uint64_t> place = uint64_t{0};
};
// The address a word that follows its object gets: `offset` into the new
// block of `moves`, or `offset` itself where nothing moves (moved blocks are
// known once prepare_moves has carved them).
uint64_t moved_to(const Target* moves, uint64_t offset) { return moves ? moves->block + kChunkHeader + offset : offset; }
// Where `value`, an address inside instance `in` (in one of its elements,
// at a member of that), is in the new layout: an offset from the start of
// the instance's new bytes (same_place; `pointee` as there).
Result<uint64_t> new_offset_in(const DataPlan& plan, const Instance& in, uint64_t value, int pointee) {
  const uint64_t size = plan.old_types.at(in.old_type).size, element = (value - in.address) / size;
  GRAFT_ASSIGN(const uint64_t place, same_place(plan.old_types, in.old_type, plan.new_types, in.new_type,
                                                (value - in.address) % size, pointee));
  return element * plan.new_types.at(in.new_type).size + place;
}
std::optional<WordMove> word_move(const DataPlan& plan, const std::vector<const Instance*>& tops,
                                  const std::vector<Target*>& moving, uint64_t v, int pointee) {
  const TypeTable& types = plan.old_types;
  auto after = std::upper_bound(tops.begin(), tops.end(), v, [](uint64_t a, const Instance* i) { return a < i->address; });
  if (after == tops.begin()) return std::nullopt;
  const Instance* in = *(after - 1);
  const uint64_t size = types.at(in->old_type).size;
  if (v >= in->address + size * in->count) return std::nullopt;
  auto t = std::find_if(moving.begin(), moving.end(), [&](const Target* m) { return m->instance == in; });
  WordMove out;
  out.moves = t == moving.end() ? nullptr : *t;
  out.into = fmt::format("an address {} the {} at {:#x}{}", v == in->address ? "of" : "inside", types.at(in->old_type).name,
                         in->address, out.moves ? ", which moves" : ", which changes layout");
  out.place = new_offset_in(plan, *in, v, pointee);
  if (out.place && !out.moves) *out.place += in->address;
  return out;
}
// The top-level instances of `found` (in address order, as it is).
std::vector<const Instance*> top_instances(const HugeVector<Instance>& found) {
  std::vector<const Instance*> tops;
  for (const auto& i : found)
    if (i.top) tops.push_back(&i);
  return tops;
}

// An epoll watch whose data word must follow what it points to: into an
// object that moves (`moves`: `offset` is then into its new place), else to
// `offset`, the new address itself.
struct KernelWordMove {
  EpollWatch watch;
  const Target* moves = nullptr;
  uint64_t offset = 0;
};

// What the kernel keeps of the program's: epoll's data words, handed back as
// they were given (beanstalkd's Socket *, nginx's connection). One into a
// global that gets new storage, into an object that moves, or into a
// transformed object at a member that moves must follow it: it is set again
// at the commit (EPOLL_CTL_MOD, in a stopped thread), where the kernel lets
// the process (its descriptor still names the file, the watch is not
// EPOLLEXCLUSIVE, no other process shares the instance) and the same place
// exists in the new layout; else the update is refused. One into writable
// memory no typed pointer reached is refused when a changed struct can hide
// at all: an idle connection only the kernel remembers may be one graft
// never found. A one-shot watch that fired is skipped: the kernel hands its
// word back no more, and the program arms it again with data of its own.
Result<std::vector<KernelWordMove>> kernel_word_moves(const DataPlan& plan, const MigrationInput& input,
                                                      const std::vector<EpollWatch>& watches,
                                                      const HugeVector<Instance>& found,
                                                      const std::vector<Target*>& moving,
                                                      const std::vector<MovedGlobal>& moved, RemoteMemory& memory,
                                                      const std::function<Result<Traversal*>()>& scanned) {
  std::vector<KernelWordMove> out;
  if (watches.empty()) return out;
  const TypeTable& types = plan.old_types;
  const bool hides = std::any_of(plan.changes.begin(), plan.changes.end(), [](const TypeChange& c) { return c.hides; });
  // What the records say every word holds, if they do (else a word's type is not known).
  const int pointee = input.kernel_words_typed ? plan.kernel_data_pointee : -1;
  const std::vector<const Instance*> tops = top_instances(found);
  std::vector<std::pair<uint64_t, uint64_t>> seen;  // what the traversal scanned, merged and sorted, once asked
  std::map<int, pid_t> sharing;  // per epoll instance, once asked: another process that has it open
  const auto reused = reused_descriptors(watches);
  constexpr const char* kRestart = "such a release needs a restart; nothing was changed";
  for (const auto& w : watches) {
    const uint64_t v = w.data;
    if (w.disarmed() || !writable_at(memory, v)) continue;
    const std::string watched =
        fmt::format("epoll instance {} of process {} watches fd {} with data {:#x}", w.epoll_fd, input.pid, w.fd, v);
    // The word must point to the same place in the new layout, and the kernel must let it be set.
    auto follow = [&](const std::string& into, Result<uint64_t> place, const Target* moves,
                      uint64_t base) -> Status {
      if (!place)
        return make_error("{}, {}, and graft cannot tell where it should point now: {}; {}", watched, into,
                          place.error().message, kRestart);
      if (!moves && base + *place == v) return ok();  // the same address: nothing to set
      std::string why = why_data_cannot_be_set(w, reused);
      if (why.empty()) {
        // Shared before the pause (another process), or since (a child forked meanwhile).
        auto shared = sharing.find(w.epoll_fd);
        if (shared == sharing.end()) {
          pid_t other = 0;
          if (input.descriptors)
            if (auto before = input.descriptors->shared.find(w.epoll_fd); before != input.descriptors->shared.end())
              other = before->second;
          if (!other) other = child_sharing_epoll(input.pid, w.epoll_fd);
          shared = sharing.emplace(w.epoll_fd, other).first;
        }
        if (shared->second)
          why = fmt::format("process {} has the epoll instance open too, and would be handed the new word", shared->second);
      }
      if (!why.empty())
        return make_error("{}, {}, and graft cannot set the word the kernel keeps: {}; {}", watched, into, why,
                          kRestart);
      out.push_back({w, moves, base + *place});
      return ok();
    };
    const MovedGlobal* global = nullptr;
    for (const auto& g : moved)
      if (v >= g.from && v < g.from + types.at(g.root->old_type).size) global = &g;
    if (global) {
      const uint64_t offset = v - global->from;
      GRAFT_TRY(follow(fmt::format("an address inside global {}{} at {:#x}, which gets new storage at {:#x}",
                                   global->root->variable, member_path(types, global->root->old_type, offset),
                                   global->from, global->to),
                       same_place(types, global->root->old_type, plan.new_types, global->root->new_type, offset,
                                  pointee),
                       nullptr, global->to));
      continue;
    }
    if (auto move = word_move(plan, tops, moving, v, pointee)) {
      GRAFT_TRY(follow(move->into, std::move(move->place), move->moves, 0));
      continue;
    }
    if (!hides) continue;
    if (seen.empty()) {
      GRAFT_ASSIGN(Traversal* traversal, scanned());
      std::vector<std::pair<uint64_t, uint64_t>> all;
      for (const auto& r : traversal->regions()) all.emplace_back(r.start, r.start + r.size);
      std::sort(all.begin(), all.end());
      for (const auto& r : all)  // merged: an object inside a root is one range
        if (!seen.empty() && r.first <= seen.back().second) seen.back().second = std::max(seen.back().second, r.second);
        else seen.push_back(r);
      seen.emplace_back(UINT64_MAX, UINT64_MAX);  // never empty again
    }
    auto region = std::upper_bound(seen.begin(), seen.end(), std::pair{v, UINT64_MAX});
    if (region != seen.begin() && v < std::prev(region)->second) continue;  // scanned: nothing changes there
    return make_error("{}, writable memory no typed pointer reached: it may be a changed struct graft cannot see "
                      "(only the kernel remembers it, as an idle connection), and graft cannot tell where the word "
                      "should point in the new layout; {}",
                      watched, kRestart);
  }
  return out;
}

// Objects that must move: every reference to each must be a typed pointer
// the traversal found, which can be rewritten; anything else that holds its
// address (an untyped word of anything scanned, a thread's stack or
// registers) refuses the update, naming it. Then the new storage is mapped
// and each moving object given its block. Returns where each rewritten
// reference must point now: slot -> new address.
Result<std::map<uint64_t, uint64_t>> prepare_moves(const DataPlan& plan, const MigrationInput& input, Traversal& traversal,
                                                    RemoteMemory& memory, std::vector<Target*>& moving,
                                                    const std::unordered_map<uint64_t, const Target*>& interior,
                                                    MigrationReport& report) {
  const TypeTable& types = plan.old_types;
  const uint64_t low = moving.front()->instance->address;
  const uint64_t high = moving.back()->instance->address + moving.back()->old_bytes;
  auto moving_at = [&](uint64_t value) -> Target* {
    if (value < low || value >= high) return nullptr;
    auto it = std::upper_bound(moving.begin(), moving.end(), value,
                               [](uint64_t v, const Target* t) { return v < t->instance->address; });
    if (it == moving.begin()) return nullptr;
    Target* t = *--it;
    return value < t->instance->address + t->old_bytes ? t : nullptr;
  };
  auto what = [&](uint64_t value, const Target* t) {
    const Instance& i = *t->instance;
    return fmt::format("{:#x}, {} the {} at {:#x} (it must move: it grows from {} to {} bytes and its allocation has {})",
                       value, value == i.address ? "the address of" : "an address inside", types.at(i.old_type).name,
                       i.address, t->old_bytes, t->new_bytes, *t->room);
  };

  const std::set<std::pair<int, uint64_t>> numbers(plan.number_members.begin(), plan.number_members.end());

  std::unordered_map<uint64_t, Target*> typed;  // slot -> the moving object its typed pointer points to
  for (const auto& r : traversal.references())
    if (Target* t = moving_at(r.target); t && r.target == t->instance->address && r.type == t->instance->old_type)
      typed.emplace(r.slot, t);

  // Conservative: every word of everything the traversal scanned (roots and
  // objects), so a void *, a union, an integer or an interior pointer holding
  // the old address is not left behind pointing to the old block.
  // A typed pointer into the middle of a moving object (a connection's
  // `reply`, a char * into its own buffer) follows what it points to there,
  // where the new layout has one place for it (same_place): slot -> the
  // object, the offset in its new block.
  std::vector<std::tuple<uint64_t, Target*, uint64_t>> inside;
  std::vector<uint8_t> bytes;
  for (const auto& region : traversal.regions())
    GRAFT_TRY(each_word(memory, types, region, bytes, [&](uint64_t slot, uint64_t value, uint64_t at) -> Status {
      Target* t = moving_at(value);
      if (!t) return ok();
      if (auto it = typed.find(slot); it != typed.end() && it->second == t) return ok();
      if (auto it = interior.find(slot); it != interior.end() && it->second == t) return ok();  // declared: it follows
      // A number that looks like an address is garbage a block's last use left (client.repldboff, replid). A
      // typed pointer of another type into it (a char * to its start or inside) follows as that type would;
      // an untyped one, to the one place the new layout has for it.
      const WordAt held = word_at(types, region.type, at, &numbers);
      if (held.kind == WordAt::Kind::Number) return ok();
      if (held.kind != WordAt::Kind::Other)
        if (auto place = new_offset_in(plan, *t->instance, value, held.pointee)) {
          inside.emplace_back(slot, t, *place);
          return ok();
        }
      return make_error("{} holds {}: graft rewrites only typed pointers to the start of an object, not a void *, a "
                        "union, an integer or a pointer into its middle; nothing was changed",
                        place(types, traversal, region, slot), what(value, t));
    }));
  // Beyond the frame roots' slots (typed, above), a word on a thread's stack
  // is untyped: it may be a live pointer (a void * local, a register saved by a callee) or,
  // far more often, a stale value in a slot its frame does not use. One equal
  // to the start of a moving object is rewritten like a typed pointer: live,
  // it must follow the object; dead, it is harmless. One into the middle of
  // it refuses. A register is rewritten only where DWARF says a typed local
  // of one of the thread's frames is in it: its own frame's (a thread waiting
  // at a replaced function's entry, its argument in rdi), or a caller's in a
  // callee-saved register no frame inside has saved yet; any other holding
  // refuses.
  std::vector<std::pair<uint64_t, Target*>> stack_words;
  std::vector<std::tuple<pid_t, Reg, Target*>> register_moves;
  // The frames' typed locals the traversal took as roots (DWARF's slots): a
  // pointer there into the middle of a moving object follows it like one in memory.
  std::map<uint64_t, const Region*> frame_slots;
  for (const auto& region : traversal.regions())
    if (region.label >= 0 && traversal.on_stack(region.start)) frame_slots.emplace(region.start, &region);
  auto typed_inside = [&](uint64_t slot, uint64_t value, Target* t) {
    auto it = frame_slots.upper_bound(slot);
    if (it == frame_slots.begin()) return false;
    const Region& region = *(--it)->second;
    if (slot + 8 > region.start + region.size) return false;
    auto pointee = pointer_held_at(types, region.type, slot - region.start);
    if (!pointee) return false;
    auto place = new_offset_in(plan, *t->instance, value, *pointee);
    if (!place) return false;
    inside.emplace_back(slot, t, *place);
    return true;
  };
  for (const auto& thread : input.threads) {
    Thread named;
    named.tid = thread.tid;
    for (int number = 0; number < kGeneralRegisters; ++number) {
      const Reg reg = static_cast<Reg>(number);
      if (!may_be_live(thread, reg)) continue;
      const uint64_t value = thread.registers[reg];
      Target* t = moving_at(value);
      if (!t) continue;
      std::string local;  // a frame root's local DWARF puts in a register, if it is one
      bool rewritable = false;
      for (const auto& root : traversal.register_roots()) {
        if (root.value != value) continue;
        if (local.empty()) local = " (" + root.label + ")";
        rewritable |= root.home == std::pair{thread.tid, reg} && value == t->instance->address &&
                      root.pointee == t->instance->old_type;
      }
      if (rewritable) {
        register_moves.emplace_back(thread.tid, reg, t);
        continue;
      }
      return of_the_moment(make_error("thread {} ({}) holds in a register{} {}: graft rewrites a register only where "
                                      "DWARF says a typed pointer to it is, in one of the thread's frames; nothing was "
                                      "changed",
                                      thread.tid, named.name(), local, what(value, t)));
    }
    const MemoryMap* stack = memory.mapping(thread.stack_pointer);
    if (!stack) continue;
    const uint64_t start = live_stack_start(thread, *stack);
    bytes.resize(stack->end - start);
    if (!memory.read(start, bytes.data(), bytes.size())) continue;
    // Every 4 bytes: a packed struct keeps pointers off the 8-byte grid
    // (struct epoll_event's data, after its 4-byte events: an event
    // epoll_wait had just copied out when the thread stopped). Off the grid,
    // only a word equal to an object's start, or with one place in its new
    // layout, is taken for a pointer.
    for (size_t off = 0; off + 8 <= bytes.size(); off += 4) {
      const bool aligned = (start + off) % 8 == 0;
      uint64_t value;
      std::memcpy(&value, bytes.data() + off, 8);
      Target* t = moving_at(value);
      if (!t) continue;
      if (aligned && value != t->instance->address && typed_inside(start + off, value, t)) continue;
      // An untyped word into the middle, at a place the new layout keeps one
      // of (the address of exactly one nested value: a connection's Socket):
      // rewritten like a word equal to the start (live, it follows the
      // object; dead, it is harmless).
      if (value != t->instance->address)
        if (auto place = new_offset_in(plan, *t->instance, value, -1)) {
          inside.emplace_back(start + off, t, *place);
          continue;
        }
      if (value != t->instance->address && !aligned) continue;
      if (value != t->instance->address)
        return of_the_moment(make_error("thread {} ({}) holds on its stack at {:#x}{} {}: graft does not know that "
                                        "word's type, so it cannot tell where in the new layout it should point; "
                                        "nothing was changed",
                                        thread.tid, named.name(), start + off, frame_of(thread, start + off),
                                        what(value, t)));
      stack_words.emplace_back(start + off, t);
    }
  }

  // Each moved object is a chunk glibc's free(), realloc() and
  // malloc_usable_size() accept as mmapped: its block is page-aligned and
  // holds whole pages, prev_size (the offset from the block) is 0 and the size
  // word is the block's size with IS_MMAPPED, so free() munmaps just its block.
  uint64_t total = 0;
  for (Target* t : moving) {
    t->block_size = (kChunkHeader + t->new_bytes + kPage - 1) & ~(kPage - 1);
    total += t->block_size;
  }
  if (!input.map_storage) return make_error("internal: objects must move, but no storage can be mapped for them");
  GRAFT_ASSIGN(const uint64_t base, input.map_storage(total));
  uint64_t at = base;
  for (Target* t : moving) {
    t->block = at;
    at += t->block_size;
    report.moved += t->instance->count;
  }
  report.storage_bytes = total;
  std::map<uint64_t, uint64_t> rewrites;
  for (const auto& [slot, t] : typed) rewrites[slot] = t->block + kChunkHeader;
  for (const auto& [slot, t] : stack_words) rewrites[slot] = t->block + kChunkHeader;
  for (const auto& [slot, t, offset] : inside) rewrites[slot] = t->block + kChunkHeader + offset;
  for (const auto& [tid, reg, t] : register_moves)
    report.register_writes.push_back({tid, reg, t->block + kChunkHeader});
  report.references = rewrites.size() + register_moves.size();
  return rewrites;
}

using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;  // start, end

// The parts of `ranges` whose pages the process has, present or swapped
// out (/proc/PID/pagemap, bits 63 and 62), merged; all of `ranges` if the
// kernel does not say.
Ranges pages_the_process_has(pid_t pid, const Ranges& ranges) {
  UniqueFd pagemap(open(fmt::format("/proc/{}/pagemap", pid).c_str(), O_RDONLY | O_CLOEXEC));
  if (!pagemap.valid()) return ranges;
  constexpr uint64_t kPresentOrSwapped = uint64_t{3} << 62;
  Ranges out;
  std::vector<uint64_t> entries;
  for (const auto& [start, end] : ranges) {
    for (uint64_t page = start & ~(kPage - 1); page < end;) {
      const uint64_t count = std::min<uint64_t>((end - page + kPage - 1) / kPage, 65536);
      entries.resize(count);
      const ssize_t n = pread(pagemap.get(), entries.data(), count * 8, static_cast<off_t>(page / kPage * 8));
      if (n != static_cast<ssize_t>(count * 8)) return ranges;
      for (uint64_t k = 0; k < count; ++k, page += kPage) {
        if (!(entries[k] & kPresentOrSwapped)) continue;
        const uint64_t from = std::max(page, start), to = std::min(page + kPage, end);
        if (!out.empty() && out.back().second == from) out.back().second = to;
        else out.emplace_back(from, to);
      }
    }
  }
  return out;
}

// Where pointers into a global's storage can be: the process's private
// writable mappings (the heap, anonymous memory, stacks, libraries' data)
// and its static data (.data.rel.ro is read-only once relocated), merged,
// less `skip` (the new storage).
Ranges searchable_memory(const std::vector<MemoryMap>& maps, const Ranges& static_data, const Ranges& skip) {
  Ranges ranges = static_data;
  for (const auto& m : maps)
    if (m.perms.size() == 4 && m.perms[0] == 'r' && m.perms[1] == 'w' && m.perms[3] == 'p') ranges.emplace_back(m.start, m.end);
  std::sort(ranges.begin(), ranges.end());
  Ranges merged;
  for (const auto& r : ranges)
    if (!merged.empty() && r.first <= merged.back().second) merged.back().second = std::max(merged.back().second, r.second);
    else merged.push_back(r);
  Ranges out;
  for (auto [start, end] : merged) {
    for (const auto& [from, to] : skip) {
      if (from >= end || to <= start) continue;
      if (from > start) out.emplace_back(start, from);
      start = std::max(start, to);
    }
    if (start < end) out.emplace_back(start, end);
  }
  return out;
}

// Every aligned word of `ranges` whose value lies in [low, high), read in
// pieces straight from the process (not kept: the heap may be large).
// Returns the bytes read.
Result<uint64_t> search_words(pid_t pid, const Ranges& ranges, uint64_t low, uint64_t high,
                              const std::function<Status(uint64_t slot, uint64_t value)>& found) {
  constexpr uint64_t kPiece = 8u << 20;
  std::vector<uint8_t> bytes;
  uint64_t read = 0;
  for (const auto& [start, end] : ranges) {
    for (uint64_t at = (start + 7) & ~uint64_t{7}; at + 8 <= end; at += kPiece) {
      const uint64_t size = std::min(kPiece, (end - at) & ~uint64_t{7});
      bytes.resize(size);
      iovec local{bytes.data(), size};
      iovec remote{reinterpret_cast<void*>(at), size};
      const ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
      if (n <= 0) break;  // a guard page, or memory the kernel will not give (nothing of the program's)
      read += static_cast<uint64_t>(n);
      for (size_t off = 0; off + 8 <= static_cast<size_t>(n); off += 8) {
        uint64_t value;
        std::memcpy(&value, bytes.data() + off, 8);
        if (value >= low && value < high) GRAFT_TRY(found(at + off, value));
      }
    }
  }
  return read;
}

// A global with new storage leaves its old storage behind: every pointer
// into it must follow it, to the same member in the new layout. Searched
// as a conservative collector searches: every aligned word of the
// program's private writable memory (its static data, the heap, anonymous
// mappings, stacks, libraries' data: a copy of a static table in the heap,
// such as redis's configs, holds &server.port too) and of its static data
// made read-only after relocation (.data.rel.ro), but not the new storage;
// and the typed pointers the traversal met. Returns slot -> new value; one
// that has no place in the new layout refuses, naming both.
Result<std::map<uint64_t, uint64_t>> moved_global_rewrites(const DataPlan& plan, const MigrationInput& input,
                                                           RemoteMemory& memory, const std::vector<MovedGlobal>& moved,
                                                           const Traversal& traversal, MigrationReport& report) {
  std::map<uint64_t, uint64_t> out;
  if (moved.empty()) return out;
  uint64_t low = UINT64_MAX, high = 0;
  for (const auto& m : moved) {
    low = std::min(low, m.from);
    high = std::max(high, m.from + plan.old_types.at(m.root->old_type).size);
  }
  // The moved global whose old storage holds `value`, if one does.
  auto holding = [&](uint64_t value) -> const MovedGlobal* {
    for (const auto& m : moved)
      if (value >= m.from && value < m.from + plan.old_types.at(m.root->old_type).size) return &m;
    return nullptr;
  };
  // `pointee`: the type a typed pointer says it points to (-1: a word of unknown type).
  auto rewrite = [&](uint64_t slot, uint64_t value, int pointee) -> Status {
    if (const MovedGlobal* held = holding(value)) {
      const MovedGlobal& m = *held;
      const uint64_t offset = value - m.from;
      auto place = same_place(plan.old_types, m.root->old_type, plan.new_types, m.root->new_type, offset, pointee);
      if (!place)
        return make_error("{} points to global {}{} at {:#x}, which the patch moves to new storage, and graft cannot "
                          "tell where it should point now: {}; nothing was changed",
                          input.name_static ? input.name_static(slot) : fmt::format("the word at {:#x}", slot),
                          m.root->variable, member_path(plan.old_types, m.root->old_type, offset), value,
                          place.error().message);
      out[slot] = m.to + *place;
    }
    return ok();
  };
  // A register cannot be mapped to a member (its type is not known) and
  // is not rewritten: a thread holding an address inside the old storage
  // (a read() into a member, in progress) would go on using it.
  for (const auto& thread : input.threads)
    for (int number = 0; number < kGeneralRegisters; ++number) {
      const Reg reg = static_cast<Reg>(number);
      if (!may_be_live(thread, reg)) continue;
      const uint64_t value = thread.registers[reg];
      if (const MovedGlobal* m = holding(value)) {
        Thread named;
        named.tid = thread.tid;
        return of_the_moment(make_error("thread {} ({}) holds in {} {:#x}, the address of global {}{}, which the patch moves to "
                          "new storage: graft does not rewrite a register that points into a moved global, and the "
                          "thread would go on using the old copy; try again when it is elsewhere; nothing was changed",
                          thread.tid, named.name(), register_name(reg), value, m->root->variable,
                          member_path(plan.old_types, m->root->old_type, value - m->from)));
      }
    }
  Ranges skip;  // the new storage, written whole by the commit
  for (const auto& m : moved) skip.emplace_back(m.to, m.to + plan.new_types.at(m.root->new_type).size);
  // The heap's type table holds 2-byte IDs, never an address (and is 16 TiB
  // of address space: walking its page map alone would take seconds).
  if (const uint64_t table = traversal.heap_table(); table > kHeapTypesUnavailable)
    if (const MemoryMap* m = memory.mapping(table)) skip.emplace_back(m->start, m->end);
  // Below a stopped thread's stack pointer (less the red zone a leaf may
  // use, in user code) nothing is live: stale words there are no pointers.
  for (const auto& thread : input.threads)
    if (const MemoryMap* stack = memory.mapping(thread.stack_pointer)) {
      const uint64_t live = live_stack_start(thread, *stack);
      if (live > stack->start) skip.emplace_back(stack->start, live);
    }
  std::sort(skip.begin(), skip.end());
  Ranges static_data;
  for (const auto& [start, size] : input.static_data) static_data.emplace_back(start, start + size);
  const Ranges searched = searchable_memory(memory.maps(), static_data, skip);
  // A typed pointer says what it points to, which a word of unknown type may not: those first.
  for (const auto& p : traversal.into_moved()) GRAFT_TRY(rewrite(p.slot, p.value, p.pointee));
  auto found = [&](uint64_t slot, uint64_t value) { return out.count(slot) ? ok() : rewrite(slot, value, -1); };
  // Every page the process has: one it never touched holds zeros, and reading it would make the kernel map it.
  GRAFT_ASSIGN(const uint64_t bytes, search_words(input.pid, pages_the_process_has(input.pid, searched), low, high, found));
  report.searched_bytes += bytes;
  // Off the 8-byte grid, on the threads' live stacks: a packed struct's
  // pointer (epoll_event's data, just copied out by epoll_wait). Only one
  // with a place in the new layout is taken for a pointer.
  for (const auto& thread : input.threads) {
    const MemoryMap* stack = memory.mapping(thread.stack_pointer);
    if (!stack) continue;
    const uint64_t from = live_stack_start(thread, *stack) + 4;
    std::vector<uint8_t> live(stack->end - from);
    if (live.size() < 8 || !memory.read(from, live.data(), live.size())) continue;
    for (size_t off = 0; off + 8 <= live.size(); off += 8) {
      uint64_t value;
      std::memcpy(&value, live.data() + off, 8);
      if (value < low || value >= high || out.count(from + off)) continue;
      if (const MovedGlobal* m = holding(value))
        if (auto place = same_place(plan.old_types, m->root->old_type, plan.new_types, m->root->new_type,
                                    value - m->from, -1))
          out[from + off] = m->to + *place;
    }
  }
  return out;
}

// Puts the new address of every moved object into the references among
// `bytes` (a copy of the target's memory at `start`), before they are
// transformed: a reference inside a transformed object ends up in its new
// bytes. Those are done; the rest are written where they are.
void rewrite_references(std::map<uint64_t, uint64_t>& rewrites, uint64_t start, std::span<uint8_t> bytes) {
  for (auto it = rewrites.lower_bound(start); it != rewrites.end() && it->first + 8 <= start + bytes.size();
       it = rewrites.erase(it))
    std::memcpy(bytes.data() + (it->first - start), &it->second, 8);
}

// What the user's transformers may apply to: a write's objects (`count` in a
// row) and their old bytes.
struct Transformed {
  size_t write;
  uint64_t address;
  int old_type, new_type;
  uint64_t count;
  std::vector<uint8_t> before;
  uint64_t offset = 0;  // of the objects in the write's bytes (a moved object's chunk header comes first)
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
                             writes[t.write].bytes.data() + t.offset + k * new_size + n.to_offset, plan.new_types.at(n.to).size};
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

// Where a frame's local is: its value if in a register, else its address.
struct LocalValue {
  bool in_register = false;
  uint64_t value_or_address = 0;
};
std::optional<LocalValue> locate(const LocalPlace& place, const StackFrame& frame) {
  using Kind = LocalPlace::Kind;
  constexpr uint64_t kRedZone = 128;
  // A slot of the frame's own lies between its stack pointer (less the red
  // zone) and its CFA; one at or above the CFA is an argument the caller
  // passed on the stack, addressed from the CFA. A register-based address
  // outside the frame means the register is not the frame's yet or any more
  // (a thread stopped at the `ret` after `pop %rbp`).
  auto in_frame = [&](uint64_t address, bool from_cfa) {
    return frame.cfa && address + kRedZone >= frame.sp && address + 8 > address &&
           (from_cfa || address + 8 <= frame.cfa);
  };
  switch (place.kind) {
    case Kind::InRegister:
      if (auto v = frame.reg(place.reg)) return LocalValue{true, *v};
      return std::nullopt;
    case Kind::AtRegisterOffset:
      if (auto v = frame.reg(place.reg); v && in_frame(*v + static_cast<uint64_t>(place.offset), false))
        return LocalValue{false, *v + static_cast<uint64_t>(place.offset)};
      return std::nullopt;
    case Kind::AtCfaOffset:
      if (in_frame(frame.cfa + static_cast<uint64_t>(place.offset), true))
        return LocalValue{false, frame.cfa + static_cast<uint64_t>(place.offset)};
      return std::nullopt;
    case Kind::Unknown:
    case Kind::InCallClobberedRegister:
      break;
  }
  return std::nullopt;
}


// A void * member no directive covers may hold a changed struct the typed
// traversal cannot see, which would keep its old layout under the new code.
// One that holds the start of a heap block the traversal did not find, big
// enough for a changed struct, refuses, naming the member and the directive
// that settles it: every such member at once (one example slot each), so
// that one edit of the --transform file settles them all.
// How the directives name an untyped member ("struct slot.value"): the container's tag, and the field.
std::pair<std::string, std::string> directive_names(const UntypedMember& u) {
  const std::string container = u.name.substr(0, u.name.rfind('.'));
  return {container.substr(container.rfind(' ') + 1), u.name.substr(u.name.rfind('.') + 1)};
}

Status check_untyped_members(const DataPlan& plan, const MigrationInput& input, Traversal& traversal,
                             RemoteMemory& memory) {
  // The types each struct's name is known by (a struct may have more than one index).
  std::map<std::string, std::vector<int>> by_name;
  for (int k = 0; k < static_cast<int>(plan.old_types.types.size()); ++k)
    if (!plan.old_types.at(k).name.empty()) by_name[plan.old_types.at(k).name].push_back(k);
  // A value a container's place says is one struct, reached as another of
  // those its member holds: the records do not hold for this process.
  for (const auto& f : traversal.followed_by_place()) {
    const auto [k, p] = traversal.context_of(f.context);
    const UntypedMember& member = plan.untyped_members[k];
    const ContainerHolds& place = member.per_container[p];
    const std::string& followed_as = plan.old_types.at(f.pointee).name;
    for (int held : member.holds) {
      const std::string& name = plan.old_types.at(held).name;
      if (name == followed_as) continue;
      const auto& same = by_name[name];
      if (std::none_of(same.begin(), same.end(), [&](int t) { return traversal.reached(f.value, t); })) continue;
      const auto [tag, field] = directive_names(member);
      return make_error("{} in {} holds {:#x}, which graft-cc's records of every call say is a {}, but it was also "
                        "reached as a {}: the records do not hold for process {} (a node linked into a list of another "
                        "struct, or code graft-cc did not see); declare what {}.{} holds in the --transform file "
                        "(GRAFT_POINTS_TO, or GRAFT_OPAQUE if it never holds a changed struct); nothing was changed",
                        member.name, place.text, f.value, plan.old_types.spell(f.pointee), name, input.pid, tag, field);
    }
  }
  // The elements of `void **` arrays (DataPlan::untyped_arrays), as untyped members with nothing recorded.
  const auto& elements = traversal.untyped_elements();
  std::vector<Traversal::UntypedSlot> all_slots = traversal.untyped_slots();
  for (const auto& [slot, value] : elements) all_slots.push_back({slot, value, plan.untyped_members.size()});
  const auto& slots = all_slots;
  if (slots.empty()) return ok();
  uint64_t smallest = UINT64_MAX;
  for (const auto& c : plan.changes) smallest = std::min(smallest, plan.old_types.at(c.old_type).size);
  std::vector<uint64_t> found;
  for (const auto& i : traversal.instances()) found.push_back(i.address);
  std::sort(found.begin(), found.end());
  std::vector<std::pair<std::string, std::string>> suspects;  // what the member holds, the directives that settle it
  std::set<size_t> named;                                      // members already in `suspects`
  const UntypedMember array_element{-1, 0, "an element of a void * array", {}, {}, {}, -1, plan.arrays_by_heap_type};
  for (const auto& s : slots) {
    if (named.count(s.member)) continue;
    if (s.member >= plan.untyped_members.size() && !plan.arrays_by_heap_type && traversal.reached_any(s.value)) continue;
    const UntypedMember& held = s.member < plan.untyped_members.size() ? plan.untyped_members[s.member] : array_element;
    if (held.by_heap_type) {
      // Told by the tags (Traversal::follow_by_tag); untagged, none of the structs that lead to a change, unless:
      if (traversal.heap_table() == kHeapTypesUnavailable)
        return make_error("{} at {:#x} in process {} holds {:#x}, and graft tells what it holds by the heap's type "
                          "tags, but the process could not reserve their table (16 TiB of address space, "
                          "MAP_NORESERVE: a limit on virtual memory, or vm.overcommit_memory=2): graft cannot tell "
                          "whether it is a changed struct; declare what it holds in the --transform file; nothing was "
                          "changed", held.name, s.slot, input.pid, s.value);
      if (traversal.on_stack(s.value))
        return of_the_moment(make_error(
            "{} at {:#x} in process {} holds {:#x}, an address on a thread's stack, which the heap's type tags do not "
            "cover (a local's address, kept while its function runs); nothing was changed",
            held.name, s.slot, input.pid, s.value));
      continue;
    }
    if (!held.holds.empty()) {
      // One of the structs graft-cc's records name, which the traversal must have reached as such.
      bool reached = std::binary_search(found.begin(), found.end(), s.value);
      std::string which;
      for (int k : held.holds) {
        which += (which.empty() ? "" : " or ") + plan.old_types.spell(k);
        auto same = by_name.find(plan.old_types.at(k).name);
        for (int t : same != by_name.end() ? same->second : std::vector<int>{k}) reached |= traversal.reached(s.value, t);
      }
      if (reached) continue;
      named.insert(s.member);
      const auto [tag, field] = directive_names(held);
      suspects.push_back({fmt::format("{} at {:#x} in process {} holds {:#x}, which no typed pointer reached as a {} (it "
                                      "may be one graft cannot see)", held.name, s.slot, input.pid, s.value, which),
                          fmt::format("GRAFT_POINTS_TO({}, {}, STRUCT) for the struct it holds there", tag, field)});
      continue;
    }
    if (std::binary_search(found.begin(), found.end(), s.value) || (s.value & 15) != 0) continue;
    const MemoryMap* m = memory.mapping(s.value);
    if (!m || s.value - m->start < 16) continue;
    auto header = memory.word(s.value - 8);
    if (!header) continue;
    // A malloc chunk's size word: the chunk (16-byte multiple) fits its mapping.
    const uint64_t chunk = *header & ~uint64_t{7};
    const bool mmapped = *header & 2;
    if (chunk < 32 || chunk % 16 || s.value - 16 + chunk > m->end) continue;
    const uint64_t usable = chunk - (mmapped ? 16 : 8);
    if (usable < smallest) continue;
    named.insert(s.member);
    if (s.member >= plan.untyped_members.size())
      return make_error("an element of the void * array at {:#x} in process {} holds {:#x}, a heap block of {} bytes "
                        "that no typed pointer reached: it may be a changed struct graft cannot see, and no "
                        "declaration names an array's elements (a process started from a build made with graft-cc "
                        "--graft-heap-types=on is told by the heap's tags); nothing was changed",
                        s.slot, input.pid, s.value, usable);
    const auto [tag, field] = directive_names(held);
    suspects.push_back({fmt::format("{} at {:#x} in process {} holds {:#x}, a heap block of {} bytes that no typed "
                                    "pointer reached", held.name, s.slot, input.pid, s.value, usable),
                        fmt::format("GRAFT_POINTS_TO({}, {}, STRUCT); or, if it never holds a changed struct, "
                                    "GRAFT_OPAQUE({}, {})", tag, field, tag, field)});
  }
  if (suspects.empty()) return ok();
  if (suspects.size() == 1)
    return make_error("{}: it may be a changed struct graft cannot see; declare what it holds in the --transform file, "
                      "{}; nothing was changed", suspects[0].first, suspects[0].second);
  std::string all;
  for (const auto& [what, directives] : suspects) all += fmt::format("{}{}: {}", all.empty() ? "" : "; ", what, directives);
  return make_error("{} void * members hold heap blocks that may be changed structs graft cannot see; declare what "
                    "each holds in the --transform file: {}; nothing was changed", suspects.size(), all);
}

// Whether some changed struct puts a member elsewhere in its new layout (by
// name; one the release removes counts): a pointer into its middle may have
// to follow it.
bool members_shift(const DataPlan& plan) {
  for (const auto& c : plan.changes) {
    const Type& a = plan.old_types.at(c.old_type);
    const Type& b = plan.new_types.at(c.new_type);
    for (const auto& m : a.members) {
      if (m.name.empty()) continue;
      auto n = std::find_if(b.members.begin(), b.members.end(), [&](const Member& x) { return x.name == m.name; });
      if (n == b.members.end() || n->offset != m.offset) return true;
    }
  }
  return false;
}

// The heap's type tags follow what the commit does to a tagged block: an
// object that moves takes its tag to its new block (its old block keeps
// none: it is no instance any more), and one whose struct the release
// renames gets the new name's (the new code's allocations have it). So a
// later update, or the revert, tells them as it told these.
Status retag(const DataPlan& plan, pid_t pid, Traversal& traversal, RemoteMemory& memory, const Instance& i,
             uint64_t now, std::vector<DataWrite>& writes) {
  const uint64_t table = traversal.heap_table();
  if (table <= kHeapTypesUnavailable) return ok();
  const uint16_t id = traversal.tag_at(i.address);
  if (!id) return ok();
  const uint16_t renamed = heap_type_id(source_name(records_name(plan.new_types.at(i.new_type))),
                                       heap_type_shape(plan.new_types, i.new_type));
  auto entry = [&](uint64_t address, uint16_t value) -> Status {
    const uint64_t at = table + (address >> kHeapTypesGranuleShift) * 2;
    uint16_t previous = 0;
    if (!memory.read(at, &previous, 2))
      return make_error("cannot read the heap type tag of {:#x} in process {}; nothing was changed", address, pid);
    DataWrite w{RemoteAddress(at), Bytes(2), Bytes(2)};
    std::memcpy(w.bytes.data(), &value, 2);
    std::memcpy(w.previous.data(), &previous, 2);
    writes.push_back(std::move(w));
    return ok();
  };
  if (now != i.address) GRAFT_TRY(entry(i.address, 0));
  if (now != i.address || renamed != id) GRAFT_TRY(entry(now, renamed));
  return ok();
}

// A transformed object (or a global's new storage) that still holds the
// address of a function the release removes, once every transformer has
// run: the new code would call the old copy (beanstalkd 1.11's connless,
// the server heap's comparison, which 1.12 replaces by conn_less), which
// reads the old layouts. Refused, naming the function and where.
Status check_removed_functions(const MigrationInput& input, const std::vector<DataWrite>& writes) {
  if (input.removed_functions.empty()) return ok();
  for (const auto& w : writes)
    for (size_t off = (8 - w.address.value() % 8) % 8; off + 8 <= w.bytes.size(); off += 8) {
      uint64_t value = 0;
      std::memcpy(&value, w.bytes.data() + off, 8);
      auto it = input.removed_functions.find(value);
      if (it == input.removed_functions.end()) continue;
      return make_error("the transformed data at {:#x} in process {} holds the address of {}, which the release "
                        "removes: the new code would call its old copy, which reads the old layouts; set that "
                        "member to the new version's function in a transformer of yours (GRAFT_TRANSFORM, "
                        "--explain names the struct and member it is in); nothing was changed",
                        w.address.value() + off, input.pid, it->second);
    }
  return ok();
}

// With the heap's type tags, every instance of a changed struct the heap
// holds is known: each tagged block of one must have been reached by the
// traversal, at its start. One that was not is held where graft does not
// look (memory of code not built with graft-cc, a pointer into the middle
// of an array): it would keep its old layout under the new code, so the
// update is refused. Reads the tags of every heap mapping (1/8 of its size).
Status check_tagged_instances(const DataPlan& plan, const MigrationInput& input, Traversal& traversal,
                              RemoteMemory& memory) {
  const uint64_t table = traversal.heap_table();
  if (table <= kHeapTypesUnavailable) return ok();
  TypeComparison compare(plan.old_types, plan.new_types, &plan.renamed);
  std::unordered_map<uint16_t, int> changed;  // tag -> changed struct
  std::unordered_map<uint16_t, std::vector<int>> known_as;  // tag -> every index of that struct's name
  for (const auto& h : plan.heap_types)
    if (compare.changed(h.type) >= 0) {
      changed.emplace(h.id, h.type);
      for (int t = 0; t < static_cast<int>(plan.old_types.types.size()); ++t)
        if (plan.old_types.at(t).name == plan.old_types.at(h.type).name) known_as[h.id].push_back(t);
    }
  if (changed.empty()) return ok();
  const MemoryMap* own = memory.mapping(table);
  std::vector<uint16_t> tags;
  for (const auto& m : memory.maps()) {
    if (&m == own || !heap_memory(m) || m.perms.size() < 2 || m.perms[1] != 'w' || traversal.on_stack(m.start) ||
        m.end >> 47)
      continue;
    const uint64_t first = m.start >> kHeapTypesGranuleShift, count = (m.end - m.start) >> kHeapTypesGranuleShift;
    constexpr uint64_t kStep = 1 << 19;  // tags per read: 1 MiB of the table, 8 MiB of heap
    for (uint64_t done = 0; done < count; done += kStep) {
      const uint64_t n = std::min(kStep, count - done);
      tags.assign(n, 0);
      iovec local{tags.data(), n * 2};
      iovec remote{reinterpret_cast<void*>(table + (first + done) * 2), n * 2};
      if (process_vm_readv(input.pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(n * 2))
        return make_error("cannot read the heap's type tags of {:#x}-{:#x} in process {}; nothing was changed", m.start,
                          m.end, input.pid);
      for (uint64_t k = 0; k < n; ++k) {
        if (!tags[k]) continue;
        auto it = changed.find(tags[k]);
        if (it == changed.end()) continue;
        const uint64_t address = (first + done + k) << kHeapTypesGranuleShift;
        const auto& names = known_as[tags[k]];
        if (std::any_of(names.begin(), names.end(), [&](int t) { return traversal.reached(address, t); })) continue;
        return make_error("process {} has a {} at {:#x} (its heap type tag says so) that no pointer graft follows "
                          "reaches: it is held where graft does not look (memory of code not built with graft-cc, an "
                          "untyped pointer into the middle of an array of them) and would keep its old layout under "
                          "the new code; such a release needs a restart, or a declaration of where it is held "
                          "(GRAFT_POINTS_TO); nothing was changed",
                          input.pid, plan.old_types.spell(it->second), address);
      }
    }
  }
  return ok();
}

// Every stopped thread's frames in a frame holder, at a pc where DWARF says
// where a local that may point to changed data is: that local is a typed
// root. (Where it does not say, no thread is there: those pcs were in the
// affected set.) A frame whose registers the unwinder could not recover
// exactly refuses: the object it may hold could not be found.
Status add_frame_roots(const DataPlan& plan, const MigrationInput& input, RemoteMemory& memory, Traversal& traversal) {
  if (!input.frame_holder_entry) return ok();
  std::vector<std::pair<uint64_t, const DataPlan::FrameHolder*>> holders;
  for (const auto& h : plan.frame_holders)
    if (const uint64_t entry = input.frame_holder_entry(h.identity)) holders.emplace_back(entry, &h);
  for (const auto& thread : input.threads)
    for (size_t k = 0; k < thread.frames.size(); ++k) {
      const StackFrame& frame = thread.frames[k];
      const uint64_t pc = frame.exact ? frame.pc : frame.pc - 1;  // a return address: the call before it
      // The thread's own frame: its registers are the thread's, every one
      // of them readable (a call-clobbered one too) and rewritable.
      const bool own_registers = k == 0 && frame.found == StackFrame::Found::Registers;
      for (const auto& [entry, holder] : holders) {
        if (pc < entry) continue;
        // A thread waiting at the entry sits on its NOPs (graft-cc's one,
        // graft-gcc's two), which DWARF's ranges may leave out: the
        // arguments are where they are after them.
        uint64_t at = pc - entry;
        if (frame.exact && at < 2) {
          uint8_t nop[2] = {};
          if (memory.read(entry, nop, 2) && x86::is_entry_nops(nop)) at = 2;
        }
        for (const auto& local : holder->locals)
          for (const auto& range : local.live) {
            LocalPlace place = range.place;
            if (own_registers && place.kind == LocalPlace::Kind::InCallClobberedRegister)
              place.kind = LocalPlace::Kind::InRegister;
            if (at < range.start || at >= range.end || !place.known()) continue;
            const std::string label =
                fmt::format("thread {} frame {} ({}) local {}", thread.tid, k, holder->identity, local.name);
            const auto where = locate(place, frame);
            if (!where)
              return of_the_moment(make_error(
                  "{} may point to changed data, but DWARF's place for it ({}) gives nothing in that frame (a "
                  "register the unwinder could not recover, or a frame being set up or taken down); nothing was "
                  "changed", label,
                  place.kind == LocalPlace::Kind::AtCfaOffset ? std::string("the frame address")
                                                             : register_name(static_cast<Reg>(place.reg))));
            std::optional<std::pair<pid_t, Reg>> home;
            // Still in the thread's register (its own frame's, or a caller's
            // callee-saved one no frame inside saved yet): rewritable there.
            if (where->in_register && (frame.registers_in_thread >> place.reg & 1))
              home = std::pair{thread.tid, static_cast<Reg>(place.reg)};
            auto found = where->in_register
                             ? traversal.add_root_value(where->value_or_address, local.type,
                                                        label + " in " + register_name(static_cast<Reg>(place.reg)), home)
                             : traversal.add_root(where->value_or_address, local.type, label);
            if (!found) return found.error().context(label);
          }
      }
    }
  // A frame the unwinder did not reach is no root: where it could not
  // follow a thread's stack to its first frame, a word further up that
  // may return into a frame holder refuses (it may be a stale value too).
  struct Live {
    uint64_t start, end;
    const std::string* function;
  };
  std::vector<Live> live;
  for (const auto& [entry, holder] : holders)
    for (const auto& [start, end] : holder->live()) live.push_back({entry + start, entry + end, &holder->identity});
  for (const auto& thread : input.threads) {
    if (thread.frames.empty() || thread.frames.back().first) continue;
    const MemoryMap* stack = memory.mapping(thread.stack_pointer);
    if (!stack) continue;
    for (uint64_t slot = (thread.frames.back().sp + 7) & ~uint64_t{7}; slot + 8 <= stack->end; slot += 8) {
      const auto word = memory.word(slot);
      if (!word) break;
      for (const auto& l : live)
        if (*word > l.start && *word <= l.end)  // a return address: its call is before it
          return make_error("thread {}: its stack could not be followed to its first frame, and the word at {:#x} "
                            "may return into {}, whose frame may point to changed data that graft would then not "
                            "find; nothing was changed", thread.tid, slot, *l.function);
    }
  }
  return ok();
}

}  // namespace

Result<std::vector<DataWrite>> plan_migration(const DataPlan& plan, const MigrationInput& input, MigrationReport& report) {
  const auto started = Clock::now();
  GRAFT_ASSIGN(auto maps, read_maps(input.pid));
  RemoteMemory memory(input.pid, std::move(maps));
  std::vector<DataWrite> writes;
  Transformer transform(plan.old_types, plan.new_types);
  transform.set_exact(plan.exact);
  // An exact plan (a revert's) refuses a value its conversion would not keep.
  auto kept = [&](const std::string& what, const std::string& where) -> Status {
    auto loss = transform.lost();
    if (!loss) return ok();
    const std::string path = loss->field.empty() || loss->field[0] == '[' ? loss->field : "." + loss->field;
    if (loss->cut)
      return make_error("{}{}{} holds {}, which its new type {} cuts: the string would lose its end and be read "
                        "past it; give it its new value at update time (GRAFT_AT_COMMIT in a --transform file), or "
                        "keep its size; nothing was changed", what, path, where, loss->value, loss->type);
    return make_error("{}{}{} holds {}, which does not fit {} (its type in the version the data goes back to); "
                      "nothing was changed", what, path, where, loss->value, loss->type);
  };

  // Globals with new storage: their old storage is left behind, and what points there follows them.
  std::vector<MovedGlobal> moved;
  std::vector<Transformed> transformed;
  for (const auto& r : plan.roots) {
    GRAFT_ASSIGN(uint64_t at, input.old_address(r.identity));
    if (r.new_type < 0) continue;
    GRAFT_ASSIGN(uint64_t to, input.new_address(r.identity));
    moved.push_back({&r, at, to});
  }
  // What the kernel keeps (epoll's data words): followed as typed roots
  // where graft-cc's records say what they hold and no other code mapped
  // registers watches; those that must follow their object are set again
  // at the commit, or refuse (kernel_word_moves).
  DescriptorScan descriptors;
  GRAFT_ASSIGN(const auto watches,
               read_epoll_watches(input.pid, input.descriptors ? &*input.descriptors : nullptr, &descriptors));
  std::vector<uint64_t> kernel_words;
  if (plan.kernel_data_pointee >= 0 && input.kernel_words_typed)
    for (const auto& w : watches)
      if (!w.disarmed() && writable_at(memory, w.data)) kernel_words.push_back(w.data);
  auto traverse = [&](Traversal& traversal) -> Status {
    for (const auto& m : moved)
      traversal.forbid(m.from, plan.old_types.at(m.root->old_type).size, "global " + m.root->variable);
    for (const auto& r : plan.roots) {
      GRAFT_ASSIGN(uint64_t at, input.old_address(r.identity));
      if (auto found = traversal.add_root(at, r.old_type, "global " + r.variable, r.identity); !found)
        return found.error().context("global " + r.variable);
    }
    for (const auto& g : plan.untyped_globals) {
      GRAFT_ASSIGN(uint64_t at, input.old_address(g.identity));
      if (auto found = traversal.add_untyped_global(at, g.pointee, g.source); !found)
        return found.error().context("global " + g.variable);
    }
    for (const uint64_t word : kernel_words) GRAFT_TRY(traversal.add_kernel_word(word, plan.kernel_data_pointee));
    return add_frame_roots(plan, input, memory, traversal);
  };
  Traversal traversal(plan, input, memory, false);
  GRAFT_TRY(traverse(traversal));
  GRAFT_TRY(check_untyped_members(plan, input, traversal, memory));
  GRAFT_TRY(check_tagged_instances(plan, input, traversal, memory));

  // Instances inside others (a changed struct embedded in a found object) are
  // transformed with their container. Each top-level one is transformed in
  // place if its new layout fits its allocation, else it moves.
  auto& found = traversal.instances();
  // Found in the order pointers lead there: often in address order already, or
  // in reverse (a list built by pushing at its head).
  auto by_address = [](const Instance& a, const Instance& b) { return a.address < b.address; };
  if (std::is_sorted(found.rbegin(), found.rend(), by_address))
    std::reverse(found.begin(), found.end());
  else
    std::sort(found.begin(), found.end(), by_address);
  // What becomes of a top-level instance (its block, if it moves, comes later).
  auto target_of = [&](const Instance& i) {
    Target t;
    t.instance = &i;
    t.old_bytes = plan.old_types.at(i.old_type).size * i.count;
    t.new_bytes = plan.new_types.at(i.new_type).size * i.count;
    if (i.tail_bytes) {
      t.old_bytes = std::max(t.old_bytes, i.tail_from + i.tail_bytes);
      t.new_bytes = std::max(t.new_bytes, i.tail_to + i.tail_bytes);
    }
    if (i.capacity) t.room = i.capacity;
    t.moves = t.new_bytes > t.room.value_or(t.old_bytes);
    return t;
  };
  std::vector<Target> moving_targets;  // in address order
  std::set<std::pair<uint64_t, int>> embedded;  // changed structs typed pointers reach inside another: address, type
  uint64_t covered_end = 0;
  const Instance* container = nullptr;
  for (auto& i : found) {
    const uint64_t old_size = plan.old_types.at(i.old_type).size;
    const uint64_t end = i.address + old_size * i.count;
    if (container && i.address < covered_end) {
      if (end > covered_end)
        return make_error("{} at {:#x} overlaps {} at {:#x}: graft cannot tell the objects apart; nothing was changed",
                          plan.old_types.at(i.old_type).name, i.address, plan.old_types.at(container->old_type).name,
                          container->address);
      // A struct held by value inside it (a list's sentinel in its owner):
      // transformed with it, and the pointers to it follow it (below).
      if (i.address != container->address || i.old_type != container->old_type) embedded.insert({i.address, i.old_type});
      continue;
    }
    // A heap object graft found not at the start of an allocation may be a
    // stale or uninitialised pointer: writing there could corrupt anything.
    if (i.heap && !i.capacity)
      return make_error("{} to a {} points to {:#x}, which does not start an allocation: graft "
                        "cannot be sure it is one (a stale pointer, or one into the middle of an object); nothing "
                        "was changed", pointer_at(i.slot), plan.old_types.at(i.old_type).name, i.address);
    container = &i;
    covered_end = end;
    i.top = true;
    const Target t = target_of(i);
    if (t.moves && !t.room)
      return make_error("{} grows from {} to {} bytes, and the one at {:#x} is not in the heap (a global or a "
                        "static object): graft cannot move it; nothing was changed",
                        plan.old_types.at(i.old_type).name, old_size, t.new_bytes / i.count, i.address);
    if (t.moves) moving_targets.push_back(t);
  }
  std::vector<Target*> moving;
  for (auto& t : moving_targets) moving.push_back(&t);
  // Again, recording what it scanned, when moves, pointers into objects or
  // the kernel's words need it (the memory is read already): the same roots
  // and memory give the same objects.
  std::unique_ptr<Traversal> recorded;
  auto scanned = [&]() -> Result<Traversal*> {
    if (!recorded) {
      recorded = std::make_unique<Traversal>(plan, input, memory, true);
      GRAFT_TRY(traverse(*recorded));
    }
    return recorded.get();
  };
  // Pointers into the middle of an object that changes layout or moves
  // follow what they point to there: the words a GRAFT_POINTS_INTO declares
  // (an intrusive link), and typed pointers to a changed struct the object
  // holds by value (beanstalkd's list sentinel in each connection).
  const std::vector<const Instance*> tops = top_instances(found);
  std::vector<std::pair<uint64_t, WordMove>> interior;      // slot -> where its word goes
  std::unordered_map<uint64_t, const Target*> interior_slots;  // slot -> the object that moves, which it points into
  auto follow_inside = [&](uint64_t slot, uint64_t value, int type) -> Status {
    auto move = word_move(plan, tops, moving, value, type);
    if (!move) return ok();
    if (!move->place)
      return make_error("{} holds {:#x}, {}, and graft cannot tell where it should point now: {}; nothing was changed",
                        pointer_at(slot), value, move->into, move->place.error().message);
    if (!move->moves && *move->place == value) return ok();
    if (move->moves) interior_slots[slot] = move->moves;
    interior.emplace_back(slot, std::move(*move));
    return ok();
  };
  for (const auto& w : traversal.interior_words()) GRAFT_TRY(follow_inside(w.slot, w.value, w.member));
  // Typed pointers into the middle of an object transformed in place, at a
  // member the release puts elsewhere in it (a connection's char * into its
  // own buffer): rewritten to the same place in the new layout, or refused
  // where there is none. (Into an object that moves: prepare_moves.)
  if (members_shift(plan)) {
    GRAFT_ASSIGN(Traversal* all, scanned());
    std::vector<uint8_t> bytes;
    for (const auto& region : all->regions())
      GRAFT_TRY(each_word(memory, plan.old_types, region, bytes, [&](uint64_t slot, uint64_t value, uint64_t at) -> Status {
        auto after = std::upper_bound(tops.begin(), tops.end(), value,
                                      [](uint64_t a, const Instance* i) { return a < i->address; });
        if (after == tops.begin()) return ok();
        const Instance* in = *(after - 1);
        if (value == in->address || value >= in->address + plan.old_types.at(in->old_type).size * in->count) return ok();
        if (std::any_of(moving.begin(), moving.end(), [&](const Target* t) { return t->instance == in; })) return ok();
        if (auto pointee = pointer_held_at(plan.old_types, region.type, at)) return follow_inside(slot, value, *pointee);
        return ok();
      }));
  }
  if (!embedded.empty()) {
    GRAFT_ASSIGN(Traversal* all, scanned());
    for (const auto& r : all->references())
      if (embedded.count({r.target, r.type})) GRAFT_TRY(follow_inside(r.slot, r.target, r.type));
    // A register is not rewritten to a place inside an object: one that must change refuses.
    for (const auto& root : all->register_roots()) {
      if (!embedded.count({root.value, root.pointee})) continue;
      auto move = word_move(plan, tops, moving, root.value, root.pointee);
      if (move && (move->moves || !move->place || *move->place != root.value))
        return of_the_moment(make_error("{} holds {:#x}, {}, and graft does not rewrite a register that points "
                                        "inside an object; nothing was changed",
                                        root.label, root.value, move->into));
    }
  }
  GRAFT_ASSIGN(const auto kernel_moves, kernel_word_moves(plan, input, watches, found, moving, moved, memory, scanned));
  // io_uring keeps each request's user_data (often an address) until it
  // completes, and /proc shows only the requests not yet consumed or reaped:
  // where an address could have to change, or a changed struct only the
  // kernel remembers could hide, graft cannot tell, and refuses.
  if (!descriptors.rings.empty()) {
    const bool hides =
        std::any_of(plan.changes.begin(), plan.changes.end(), [](const TypeChange& c) { return c.hides; });
    const std::string what = !moving.empty()  ? fmt::format("{} objects move", moving.size())
                             : !moved.empty() ? fmt::format("global {} gets new storage", moved.front().root->variable)
                             : hides          ? std::string("a changed struct may be where no typed pointer leads")
                                              : std::string();
    if (!what.empty())
      return make_error("process {} has an io_uring instance (fd {}), whose requests' user_data words the kernel "
                        "keeps and graft cannot read, and {}: a request in flight may hold an address that would "
                        "have to change; such a release needs a restart; nothing was changed",
                        input.pid, descriptors.rings.front(), what);
  }
  std::map<uint64_t, uint64_t> rewrites;  // slot of a typed pointer to a moved object -> its new address
  if (!moving.empty()) {
    GRAFT_ASSIGN(Traversal* traversal, scanned());
    GRAFT_ASSIGN(rewrites, prepare_moves(plan, input, *traversal, memory, moving, interior_slots, report));
  }
  for (auto& [slot, move] : interior) rewrites[slot] = moved_to(move.moves, *move.place);
  report.references += interior.size();
  // Each word that follows its object, where the object is now (a moving one's block is known only now).
  for (const auto& k : kernel_moves)
    report.epoll_writes.push_back({k.watch, moved_to(k.moves, k.offset)});
  GRAFT_ASSIGN(const auto into_moved, moved_global_rewrites(plan, input, memory, moved, traversal, report));
  rewrites.insert(into_moved.begin(), into_moved.end());
  report.global_references = into_moved.size();

  std::vector<std::string> cut;  // globals whose strings the new size cuts, the first's whole message
  Error first_cut;
  for (const auto& m : moved) {
    const uint64_t old_size = plan.old_types.at(m.root->old_type).size;
    const uint64_t new_size = plan.new_types.at(m.root->new_type).size;
    std::vector<uint8_t> before(old_size);
    if (!memory.read(m.from, before.data(), old_size))
      return make_error("cannot read global {} at {:#x} in process {}", m.root->variable, m.from, input.pid);
    rewrite_references(rewrites, m.from, before);
    // Its new storage holds the new initialiser: new fields start from it.
    GRAFT_ASSIGN(const auto initialiser, read_process_memory(input.pid, RemoteAddress(m.to), new_size));
    DataWrite w{RemoteAddress(m.to), Bytes(initialiser.begin(), initialiser.end()), Bytes(initialiser.begin(), initialiser.end())};
    transform(m.root->old_type, before.data(), m.root->new_type, w.bytes.data());
    const bool set_at_commit = std::find(plan.set_at_commit.begin(), plan.set_at_commit.end(), m.root->identity) !=
                               plan.set_at_commit.end();
    if (set_at_commit) {
      (void)transform.lost();  // the commit-time code writes its value after this
    } else if (Status fits = kept("global " + m.root->variable, ""); !fits) {
      if (cut.empty()) first_cut = fits.error();
      cut.push_back(m.root->variable);
      continue;
    }
    writes.push_back(std::move(w));
    ++report.objects;
    if (!plan.user_transformers.empty())
      transformed.push_back({writes.size() - 1, m.from, m.root->old_type, m.root->new_type, 1, std::move(before)});
  }
  // Every global that does not fit, in one line: the first's reason, then the others'.
  if (!cut.empty()) {
    std::string message = first_cut.message;
    const std::string tail = "; nothing was changed";
    if (cut.size() > 1 && message.ends_with(tail))
      message = fmt::format("{}; the same for global {}{}", message.substr(0, message.size() - tail.size()),
                            fmt::join(cut.begin() + 1, cut.end(), ", global "), tail);
    return Error{message};
  }

  // Objects transformed in place go into runs as they come (in address
  // order): neighbours (malloc puts them a header apart) share one write, the
  // bytes between them written back unchanged, so a million objects cost a
  // few dozen writes and no allocation each.
  constexpr uint64_t kRunGap = 64, kRunBytes = 16u << 20, kRunSlack = 1u << 16;
  std::optional<size_t> run;  // index in writes of the run being extended
  std::vector<uint8_t> before, gap;
  auto next_moving = moving_targets.begin();
  for (const Instance& i : found) {
    if (!i.top) continue;
    const Target t = next_moving != moving_targets.end() && next_moving->instance == &i ? *next_moving++ : target_of(i);
    const uint64_t old_size = plan.old_types.at(i.old_type).size;
    const uint64_t new_size = plan.new_types.at(i.new_type).size;
    before.resize(t.moves ? t.old_bytes : std::max(t.old_bytes, t.new_bytes));
    if (!memory.read(i.address, before.data(), before.size()))
      return make_error("cannot read {} at {:#x} in process {}", plan.old_types.at(i.old_type).name, i.address, input.pid);
    size_t into = 0;      // its write
    uint64_t offset = 0;  // of the object in that write's bytes
    if (t.moves) {
      // The chunk header, then the object, in fresh (zeroed) memory; the old
      // block stays allocated and untouched.
      DataWrite w{RemoteAddress(t.block), Bytes(kChunkHeader + t.new_bytes), {}};
      w.previous = w.bytes;
      const uint64_t size_word = t.block_size | kMmappedBit;
      std::memcpy(w.bytes.data() + 8, &size_word, 8);
      writes.push_back(std::move(w));
      into = writes.size() - 1;
      offset = kChunkHeader;
    } else {
      const uint64_t end = run ? (writes[*run].address + writes[*run].bytes.size()).value() : 0;
      bool joined = false;
      if (run && i.address >= end && i.address - end <= kRunGap && writes[*run].bytes.size() < kRunBytes) {
        gap.resize(i.address - end);
        if (memory.read(end, gap.data(), gap.size())) {
          DataWrite& w = writes[*run];
          w.previous.insert(w.previous.end(), gap.begin(), gap.end());
          rewrite_references(rewrites, end, gap);  // a pointer to a moved object between two transformed ones
          w.bytes.insert(w.bytes.end(), gap.begin(), gap.end());
          joined = true;
        }
      }
      if (!joined) {
        writes.push_back({RemoteAddress(i.address), {}, {}});
        run = writes.size() - 1;
      }
      into = *run;
      DataWrite& w = writes[into];
      if (w.bytes.size() >= HugePageAllocator<uint8_t>::kHuge / 2 && w.bytes.capacity() < kRunBytes) {
        // A dense run: its whole length at once, in huge pages, rather than doubling into it.
        w.bytes.reserve(kRunBytes + kRunSlack);
        w.previous.reserve(kRunBytes + kRunSlack);
      }
      offset = w.bytes.size();
      w.previous.insert(w.previous.end(), before.begin(), before.begin() + static_cast<long>(t.new_bytes));
      w.bytes.resize(offset + t.new_bytes);  // zeroed: new fields start from their default
    }
    rewrite_references(rewrites, i.address, std::span(before).first(t.old_bytes));
    uint8_t* out = writes[into].bytes.data() + offset;
    const std::string& type_name = plan.old_types.at(i.old_type).name;
    for (uint64_t k = 0; k < i.count; ++k) {
      transform(i.old_type, before.data() + k * old_size, i.new_type, out + k * new_size);
      GRAFT_TRY(kept(type_name, fmt::format(" of the object at {:#x}", i.address + k * old_size)));
    }
    // A flexible array's elements, after the header (Instance::tail_bytes).
    if (i.tail_bytes) {
      std::memcpy(out + i.tail_to, before.data() + i.tail_from, i.tail_bytes);
      if (i.tail_pointer) {
        const uint64_t elements = (t.moves ? t.block + kChunkHeader : i.address) + i.tail_to;
        std::memcpy(out + *i.tail_pointer, &elements, 8);
      }
    }
    report.objects += i.count;
    report.by_type[type_name] += i.count;
    if (!plan.user_transformers.empty())
      transformed.push_back({into, i.address, i.old_type, i.new_type, i.count, before, offset});
    GRAFT_TRY(retag(plan, input.pid, traversal, memory, i, t.moves ? t.block + kChunkHeader : i.address, writes));
  }
  // References in objects that are not transformed (a global, an array of
  // pointers) are written where they are.
  for (const auto& [slot, to] : rewrites) {
    auto from = memory.word(slot);
    if (!from) return make_error("cannot read the pointer at {:#x} in process {}", slot, input.pid);
    DataWrite w{RemoteAddress(slot), Bytes(8), Bytes(8)};
    std::memcpy(w.bytes.data(), &to, 8);
    std::memcpy(w.previous.data(), &*from, 8);
    writes.push_back(std::move(w));
  }

  if (!transformed.empty()) GRAFT_TRY(run_user_transformers(plan, input, transform, transformed, writes));
  GRAFT_TRY(check_removed_functions(input, writes));

  merge_neighbouring_writes(writes, [&](RemoteAddress at, std::span<uint8_t> out) {
    return memory.read(at.value(), out.data(), out.size());
  });
  report.bytes_read = memory.bytes_read();
  report.traverse_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count());
  return writes;
}

void merge_neighbouring_writes(std::vector<DataWrite>& writes,
                               const std::function<bool(RemoteAddress, std::span<uint8_t>)>& read_gap) {
  std::sort(writes.begin(), writes.end(), [](const DataWrite& a, const DataWrite& b) { return a.address < b.address; });
  std::vector<DataWrite> merged;
  for (auto& w : writes) {
    if (!merged.empty()) {
      DataWrite& last = merged.back();
      const RemoteAddress end = last.address + last.bytes.size();
      if (w.address >= end && w.address - end <= kMergeGap && last.bytes.size() < kMergeLimit) {
        std::vector<uint8_t> gap(w.address - end);
        if (read_gap(end, gap)) {
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
}

}  // namespace graft
