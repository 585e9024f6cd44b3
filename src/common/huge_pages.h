// Memory for the large, short-lived buffers of a commit over millions of
// objects (the copy of the target's heap, the instances found, the writes):
// a buffer of 2 MiB or more is its own mapping, advised to use transparent
// huge pages. First touching fresh 4 KiB pages (a fault each, dear on a VM)
// is otherwise what such a commit spends most on; smaller buffers come from
// malloc as usual.
#pragma once
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

namespace graft {

template <class T>
struct HugePageAllocator {
  using value_type = T;
  static constexpr size_t kHuge = 2 << 20;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) {}

  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kHuge) return std::allocator<T>().allocate(n);
    void* p = mmap(nullptr, rounded(bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    (void)madvise(p, rounded(bytes), MADV_HUGEPAGE);  // advice: if refused, ordinary pages
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) {
    if (n * sizeof(T) < kHuge) return std::allocator<T>().deallocate(p, n);
    munmap(p, rounded(n * sizeof(T)));
  }
  bool operator==(const HugePageAllocator&) const { return true; }

 private:
  static size_t rounded(size_t bytes) { return (bytes + kHuge - 1) & ~(kHuge - 1); }
};

template <class T>
using HugeVector = std::vector<T, HugePageAllocator<T>>;
using Bytes = HugeVector<uint8_t>;

}  // namespace graft
