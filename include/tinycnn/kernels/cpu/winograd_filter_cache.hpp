#pragma once
// A convolution's Winograd-transformed filter U kept between forward calls while the filter is
// unchanged. Inference calls a layer with the same weights batch after batch, and transforming them
// again every time was 5.7% of model3's inference samples (conv6 writes 52 MB of U per call); kept,
// model3's conv5 and conv6 took 0.80-0.86 of their time and a whole batch 0.96 (paired runs,
// docs/performance.md, twenty-first session). A call hits when the pass's layout (K, C, m, mr) and
// every bit of w equal the last call's: the check compares w with a copy taken when U was made, so a
// filter changed in place (an optimizer step, a loaded file, a user's edit) is never served a stale U,
// and neither is another filter with the same pointer. The copy costs |w| of memory and one read of
// both per call (model3: 1.4 ms per batch against 14 ms of transforms); the entry holds U (25/9 |w|
// for m = 3).
//
// Owned by the caller (nn::Conv2D holds one per layer); thread-safe: a call takes a reference to the
// current entry under a lock and uses it after the lock is released, and a miss builds a new entry
// and swaps it in, so a concurrent call still holding the old one is not disturbed. Copying or
// assigning a cache yields an empty one (a copied layer starts its own).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "../../core/host_alloc.hpp"

namespace tinycnn::kernels::cpu {

template <class T>
class WinogradFilterCache {
 public:
  // One transformed filter and what it was made from.
  struct Entry {
    int64_t K = 0, C = 0, m = 0, mr = 0;  // the pass's filters, channels, tile and U layout
    std::vector<T> w;                     // the filter U was made from, [K, C, 3, 3]
    HostBuffer<T> U;
    T* u = nullptr;  // U's data
  };

  WinogradFilterCache() = default;
  WinogradFilterCache(const WinogradFilterCache&) {}
  WinogradFilterCache& operator=(const WinogradFilterCache&) {
    clear();
    return *this;
  }

  // The entry for (w [K, C, 3, 3], m, mr) when it is cached, else null.
  std::shared_ptr<const Entry> find(const T* w, int64_t K, int64_t C, int64_t m, int64_t mr) const {
    std::shared_ptr<const Entry> e;
    {
      std::lock_guard<std::mutex> lock(mu_);
      e = entry_;
    }
    const bool same = e && e->K == K && e->C == C && e->m == m && e->mr == mr &&
                      same_bits(e->w.data(), w, static_cast<size_t>(K * C * 9) * sizeof(T));
    std::lock_guard<std::mutex> lock(mu_);
    ++(same ? hits_ : misses_);
    return same ? e : nullptr;
  }
  // Whether the bytes [a, a + n) equal [b, b + n): memcmp, in pieces split across the threads when
  // large (memory-bound; model3's conv6 compares 2 x 18.9 MB per call).
  static bool same_bits(const void* a, const void* b, size_t n) {
    constexpr size_t kPiece = size_t(1) << 18;
    const auto* pa = static_cast<const unsigned char*>(a);
    const auto* pb = static_cast<const unsigned char*>(b);
    const int64_t pieces = static_cast<int64_t>((n + kPiece - 1) / kPiece);
    bool same = true;
#pragma omp parallel for reduction(&& : same) if (pieces >= 8)
    for (int64_t i = 0; i < pieces; ++i) {
      const size_t o = static_cast<size_t>(i) * kPiece;
      same = same && std::memcmp(pa + o, pb + o, std::min(kPiece, n - o)) == 0;
    }
    return same;
  }
  // A new entry for (w, K, C, m, mr) with room for u_elems elements of U, which the caller fills
  // before store()-ing it.
  static std::shared_ptr<Entry> make(const T* w, int64_t K, int64_t C, int64_t m, int64_t mr, int64_t u_elems) {
    auto e = std::make_shared<Entry>();
    e->K = K, e->C = C, e->m = m, e->mr = mr;
    e->w.assign(w, w + K * C * 9);
    e->u = e->U.get(static_cast<size_t>(u_elems));
    return e;
  }
  void store(std::shared_ptr<const Entry> e) {
    std::lock_guard<std::mutex> lock(mu_);
    entry_ = std::move(e);
  }
  // Releases the entry (its memory goes once no call uses it).
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    entry_.reset();
  }
  bool empty() const {
    std::lock_guard<std::mutex> lock(mu_);
    return !entry_;
  }
  // Lookups so far that found U cached / that did not.
  int64_t hits() const {
    std::lock_guard<std::mutex> lock(mu_);
    return hits_;
  }
  int64_t misses() const {
    std::lock_guard<std::mutex> lock(mu_);
    return misses_;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Entry> entry_;
  mutable int64_t hits_ = 0, misses_ = 0;
};

}  // namespace tinycnn::kernels::cpu
