#pragma once
// Host memory for tensors and kernel workspaces. Large blocks are asked to be backed by transparent
// huge pages: a dense layer's weight rows or a C tile's rows lie ldc * 4 bytes apart (often 4 KiB or
// more), so with 4 KiB pages nearly every row a micro-kernel, a packing routine or Adam touches is
// a TLB miss. On Linux with THP in "madvise" mode (Debian's default) that takes madvise(MADV_HUGEPAGE)
// on a 2 MiB-aligned block; measured on model3 training, +10-15% images/s (docs/performance.md, tenth
// session). TINYCNN_HUGE_PAGES=0 in the environment turns it off (for A/B runs; nothing else changes).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace tinycnn {

namespace detail {

// Blocks of at least this many bytes are 2 MiB-aligned and advised as huge pages: smaller ones would
// waste most of a huge page.
constexpr size_t kHugePageBytes = size_t(2) << 20;
constexpr size_t kHugeMinBytes = size_t(4) << 20;

inline bool huge_pages_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("TINYCNN_HUGE_PAGES");
    return !(e && e[0] == '0');
  }();
  return on;
}

}  // namespace detail

// A 64-byte-aligned block of `bytes` bytes (huge-page backed where large; see above), or null when
// the system has no memory. Release with host_free.
inline void* host_alloc(size_t bytes) {
  bytes = (bytes + 63) / 64 * 64;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes >= detail::kHugeMinBytes && detail::huge_pages_enabled()) {
    // posix_memalign: unlike aligned_alloc it takes a size that is not a multiple of the alignment.
    void* p = nullptr;
    if (::posix_memalign(&p, detail::kHugePageBytes, bytes) != 0) return nullptr;
    // Advice only: where THP is off ("never") the call fails or is ignored and 4 KiB pages are used.
    ::madvise(p, bytes / detail::kHugePageBytes * detail::kHugePageBytes, MADV_HUGEPAGE);
    return p;
  }
#endif
  return std::aligned_alloc(64, bytes);
}

inline void host_free(void* p) { std::free(p); }

// Per-owner scratch that only grows (kernel workspaces, GEMM packing buffers): no allocation once
// it has reached the largest size asked for.
template <class T>
class HostBuffer {
 public:
  HostBuffer() = default;
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  ~HostBuffer() { host_free(ptr_); }
  // At least n elements (contents unspecified after growing).
  T* get(size_t n) {
    if (n > count_) {
      host_free(ptr_);
      ptr_ = nullptr;
      count_ = 0;
      ptr_ = static_cast<T*>(host_alloc(n * sizeof(T)));
      if (!ptr_) throw std::bad_alloc();
      count_ = n;
    }
    return ptr_;
  }
  // Gives the memory back (the next get() allocates again).
  void release() {
    host_free(ptr_);
    ptr_ = nullptr;
    count_ = 0;
  }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

// std::allocator replacement over host_alloc, for containers that hold operands the way tensors do
// (the GEMM benchmark's matrices).
template <class T>
struct HostAllocator {
  using value_type = T;
  HostAllocator() = default;
  template <class U>
  HostAllocator(const HostAllocator<U>&) noexcept {}
  T* allocate(size_t n) {
    void* p = host_alloc(n * sizeof(T));
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) noexcept { host_free(p); }
  template <class U>
  bool operator==(const HostAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const HostAllocator<U>&) const noexcept { return false; }
};

}  // namespace tinycnn
