#pragma once
// Tensor<T>: a contiguous, row-major (NCHW for images) array of float or double.
// Storage is 64-byte aligned and shared between cheap copies (copying a Tensor copies a handle);
// clone() makes a deep copy. reshape() is a view on the same storage.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "device.hpp"
#include "error.hpp"
#include "host_alloc.hpp"
#include "random.hpp"
#ifdef TINYCNN_HAS_CUDA
// Device storage (cuda/, linked as tinycnn::cuda): the caching device allocator, copies and fill.
#include <tinycnn/cuda/runtime.hpp>
#endif

namespace tinycnn {

namespace debug {
// When on, freshly allocated uninitialised tensors (Tensor::empty) are filled with NaN, so a kernel
// that leaves an output element unwritten is caught by the gradient checker. Off in normal use.
inline bool& poison_allocations() {
  static thread_local bool on = false;
  return on;
}
}  // namespace debug

inline int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) throw ShapeError("Tensor: negative dimension in " + shape_str(s));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      throw ShapeError("Tensor: element count overflows in " + shape_str(s));
    n *= d;
  }
  return n;
}

namespace detail {

// Caching allocator for tensor storage. Freed blocks go to a free list keyed by their rounded size
// (64-byte multiples up to 4 KiB, then 8 steps per power of two, so at most 12.5% slack) and the
// next request of the same class takes one back, so a training step after the first allocates
// nothing for tensor storage. Thread-safe (one mutex); the cached total is bounded (default 2 GiB or
// TINYCNN_TENSOR_CACHE_MB): a block that would exceed it first evicts the least recently returned
// cached blocks. A loop that cycles through the same sizes (a training or inference step) so keeps
// its blocks while sizes it no longer uses go; before, a full cache freed every returned block, and
// evaluating the shipped ensemble (sizes of three members) page-faulted 12 M times, twice as slow
// (docs/performance.md, tenth session). Every cached block is released at exit; blocks freed after
// that go straight back to the system.
class BlockCache {
 public:
  static BlockCache& instance() {
    // Never destroyed (tensors in other static objects may be freed late); the releaser empties it at exit.
    static BlockCache* c = new BlockCache();
    static Releaser releaser{c};
    return *c;
  }
  static size_t round(size_t bytes) {
    if (bytes <= 4096) return (bytes + 63) / 64 * 64;
    size_t p = 4096;
    while (p <= bytes / 2) p *= 2;  // largest power of two <= bytes
    const size_t step = p / 8;
    return (bytes + step - 1) / step * step;
  }
  // A 64-byte-aligned block of round(bytes) bytes.
  void* get(size_t bytes) {
    const size_t r = round(bytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(r);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back().ptr;  // the most recently returned block of the class
        it->second.pop_back();
        if (it->second.empty()) free_.erase(it);
        cached_ -= r;
        return p;
      }
      ++fresh_;
    }
    void* p = host_alloc(r);
    if (!p) {
      release_all();  // give the cache back and try once more
      p = host_alloc(r);
      if (!p) throw std::bad_alloc();
    }
    return p;
  }
  void put(void* p, size_t bytes) {
    if (!p) return;
    const size_t r = round(bytes);
    std::vector<void*> evicted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!closed_ && r <= limit_) {
        while (cached_ + r > limit_) {  // evict the least recently returned block (oldest stamp)
          auto oldest = free_.begin();
          for (auto it = free_.begin(); it != free_.end(); ++it)
            if (it->second.front().stamp < oldest->second.front().stamp) oldest = it;
          evicted.push_back(oldest->second.front().ptr);
          cached_ -= oldest->first;
          oldest->second.pop_front();
          if (oldest->second.empty()) free_.erase(oldest);
        }
        free_[r].push_back({p, ++clock_});
        cached_ += r;
        p = nullptr;
      }
    }
    for (void* e : evicted) host_free(e);
    if (p) host_free(p);
  }
  // Frees every cached block (memory held by live tensors is untouched).
  void release_all() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& kv : free_)
      for (const Cached& c : kv.second) host_free(c.ptr);
    free_.clear();
    cached_ = 0;
  }
  // Number of blocks taken from the system so far (requests the cache could not serve).
  uint64_t fresh_allocations() {
    std::lock_guard<std::mutex> lock(mu_);
    return fresh_;
  }
  size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }
  void set_limit(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      limit_ = bytes;
    }
    if (cached_bytes() > bytes) release_all();
  }

 private:
  struct Releaser {
    BlockCache* c;
    ~Releaser() {
      c->release_all();
      std::lock_guard<std::mutex> lock(c->mu_);
      c->closed_ = true;
    }
  };
  BlockCache() {
    if (const char* e = std::getenv("TINYCNN_TENSOR_CACHE_MB")) limit_ = static_cast<size_t>(std::atoll(e)) << 20;
  }
  struct Cached {
    void* ptr;
    uint64_t stamp;  // when it was returned (clock_)
  };
  std::mutex mu_;
  std::unordered_map<size_t, std::deque<Cached>> free_;  // size class -> blocks, oldest first
  uint64_t clock_ = 0;
  size_t cached_ = 0;
  size_t limit_ = size_t(2) << 30;
  uint64_t fresh_ = 0;
  bool closed_ = false;
};

}  // namespace detail

// Tensor storage cache controls (see detail::BlockCache).
inline uint64_t tensor_cache_fresh_allocations() { return detail::BlockCache::instance().fresh_allocations(); }
inline size_t tensor_cache_bytes() { return detail::BlockCache::instance().cached_bytes(); }
inline void tensor_cache_release() { detail::BlockCache::instance().release_all(); }
inline void set_tensor_cache_limit(size_t bytes) { detail::BlockCache::instance().set_limit(bytes); }

// Aligned host buffer owned by a shared_ptr. Blocks come from (and go back to) the caching allocator
// above; with tinycnn::cuda, Device::CUDA storage comes from its caching device allocator instead.
namespace detail {
// std::fill over a host block, split across the threads when it is large: gradient buffers start as
// zeros (backward adds into them), and one thread clearing tens of MB while the others wait was 4-11%
// of a MobileNet training step (docs/performance.md, eleventh session).
template <class T>
void host_fill(T* p, int64_t n, T v) {
  constexpr int64_t kChunk = int64_t(1) << 16;  // elements per piece (256 KiB of floats)
  const int64_t pieces = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (pieces >= 4)
  for (int64_t i = 0; i < pieces; ++i) std::fill(p + i * kChunk, p + std::min(n, (i + 1) * kChunk), v);
}
[[noreturn]] inline void no_cuda_storage(const char* what) {
  throw Error(std::string(what) +
              ": Device::CUDA needs tinycnn::cuda (this build has CPU kernels only; configure with "
              "-DTINYCNN_USE_CUDA=ON and link tinycnn::cuda)");
}
}  // namespace detail

// Aligned buffer owned by a shared_ptr: host blocks come from (and go back to) the caching allocator
// above; with tinycnn::cuda, Device::CUDA storage comes from its caching device allocator instead.
// Any trivially copyable element type (tensors use float/double; ops keep int32 indices in it too).
template <class T>
struct Storage {
  T* ptr = nullptr;
  int64_t count = 0;
  Device device = Device::CPU;
  explicit Storage(int64_t n, Device d = Device::CPU) : count(n), device(d) {
    if (n <= 0) return;
    const size_t bytes = static_cast<size_t>(n) * sizeof(T);
#ifdef TINYCNN_HAS_CUDA
    ptr = static_cast<T*>(d == Device::CUDA ? cuda::device_alloc(bytes) : detail::BlockCache::instance().get(bytes));
#else
    if (d == Device::CUDA) detail::no_cuda_storage("Storage");
    ptr = static_cast<T*>(detail::BlockCache::instance().get(bytes));
#endif
  }
  ~Storage() {
    if (!ptr) return;
#ifdef TINYCNN_HAS_CUDA
    if (device == Device::CUDA) {
      cuda::device_free(ptr);
      return;
    }
#endif
    detail::BlockCache::instance().put(ptr, static_cast<size_t>(count) * sizeof(T));
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

// n values of an index type (e.g. max-pooling's argmax) on `dev`, filled from the host when `init`
// is given (n values). Host copies stay plain memcpy; device ones go through tinycnn::cuda.
template <class I>
std::shared_ptr<Storage<I>> make_storage(int64_t n, Device dev, const I* init = nullptr) {
  auto s = std::make_shared<Storage<I>>(n, dev);
  if (init && n > 0) {
#ifdef TINYCNN_HAS_CUDA
    if (dev == Device::CUDA) {
      cuda::copy_to_device(s->ptr, init, static_cast<size_t>(n) * sizeof(I));
      return s;
    }
#endif
    std::memcpy(s->ptr, init, static_cast<size_t>(n) * sizeof(I));
  }
  return s;
}

template <class T>
class Tensor {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "Tensor<T> supports float and double");

 public:
  using value_type = T;

  Tensor() = default;
  // Zero-filled tensor of the given shape.
  explicit Tensor(Shape shape) : Tensor(empty(std::move(shape))) { fill(T(0)); }
  Tensor(std::initializer_list<int64_t> shape) : Tensor(Shape(shape)) {}

  // Uninitialised storage (NaN-filled in debug::poison_allocations mode).
  static Tensor empty(Shape shape) {
    Tensor t;
    t.numel_ = shape_numel(shape);
    t.shape_ = std::move(shape);
    t.storage_ = std::make_shared<Storage<T>>(t.numel_);
    if (debug::poison_allocations()) t.fill(std::numeric_limits<T>::quiet_NaN());
    return t;
  }
  // Uninitialised storage on `dev` (NaN-filled in debug::poison_allocations mode). Device::CUDA
  // without tinycnn::cuda is an Error that says how to get it.
  static Tensor empty(Shape shape, Device dev) {
    if (dev == Device::CPU) return empty(std::move(shape));
    Tensor t;
    t.numel_ = shape_numel(shape);
    t.shape_ = std::move(shape);
    t.storage_ = std::make_shared<Storage<T>>(t.numel_, dev);
    if (debug::poison_allocations()) t.fill(std::numeric_limits<T>::quiet_NaN());
    return t;
  }
  static Tensor zeros(Shape shape, Device dev) {
    Tensor t = empty(std::move(shape), dev);
    t.fill(T(0));
    return t;
  }
  static Tensor full(Shape shape, T v, Device dev) {
    Tensor t = empty(std::move(shape), dev);
    t.fill(v);
    return t;
  }
  // A copy on `dev` (the same handle when the tensor is already there). Copies are explicit: nothing
  // moves between host and device behind the caller's back.
  Tensor to(Device dev) const {
    if (dev == device() || !storage_) return *this;
    Tensor t = empty(shape_, dev);
#ifdef TINYCNN_HAS_CUDA
    const size_t bytes = static_cast<size_t>(numel_) * sizeof(T);
    if (bytes) {
      if (dev == Device::CUDA)
        cuda::copy_to_device(t.data(), data(), bytes);
      else
        cuda::copy_to_host(t.data(), data(), bytes);
    }
#endif
    return t;
  }
  static Tensor zeros(Shape shape) { return Tensor(std::move(shape)); }
  static Tensor full(Shape shape, T v) {
    Tensor t = empty(std::move(shape));
    t.fill(v);
    return t;
  }
  static Tensor from(Shape shape, const std::vector<T>& values) {
    Tensor t = empty(std::move(shape));
    if (static_cast<int64_t>(values.size()) != t.numel_)
      throw ShapeError("Tensor::from: " + std::to_string(values.size()) + " values for shape " +
                       shape_str(t.shape_));
    std::copy(values.begin(), values.end(), t.data());
    return t;
  }
  // Same shape, other element type (e.g. float -> double for gradient checks).
  template <class U>
  static Tensor cast(const Tensor<U>& src) {
#ifdef TINYCNN_HAS_CUDA
    if (src.device() != Device::CPU) src.host_only("Tensor::cast");
#endif
    Tensor t = empty(src.shape());
    const U* s = src.data();
    for (int64_t i = 0; i < t.numel_; ++i) t.data()[i] = static_cast<T>(s[i]);
    return t;
  }

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const {
    if (i < 0) i += rank();
    if (i < 0 || i >= rank()) throw ShapeError("Tensor::dim: axis " + std::to_string(i) + " of " + shape_str(shape_));
    return shape_[i];
  }
  int64_t numel() const { return numel_; }
  Device device() const { return storage_ ? storage_->device : Device::CPU; }

  T* data() { return storage_ ? storage_->ptr + offset_ : nullptr; }
  const T* data() const { return storage_ ? storage_->ptr + offset_ : nullptr; }
#ifdef TINYCNN_HAS_CUDA
  // Element access reads host memory: on a device tensor it is an error, not a crash.
  T& operator[](int64_t i) { return host_data("Tensor::operator[]")[i]; }
  const T& operator[](int64_t i) const { return host_data("Tensor::operator[]")[i]; }
  T& at(std::initializer_list<int64_t> idx) { return host_data("Tensor::at")[flat_index(idx)]; }
  const T& at(std::initializer_list<int64_t> idx) const { return host_data("Tensor::at")[flat_index(idx)]; }
#else
  T& operator[](int64_t i) { return data()[i]; }
  const T& operator[](int64_t i) const { return data()[i]; }

  // Bounds-checked element access by full index, e.g. t.at({n, c, h, w}).
  T& at(std::initializer_list<int64_t> idx) { return data()[flat_index(idx)]; }
  const T& at(std::initializer_list<int64_t> idx) const { return data()[flat_index(idx)]; }
#endif

  Tensor clone() const {
#ifdef TINYCNN_HAS_CUDA
    if (device() == Device::CUDA) {
      Tensor t = empty(shape_, Device::CUDA);
      if (numel_) cuda::copy_device_to_device(t.data(), data(), static_cast<size_t>(numel_) * sizeof(T));
      return t;
    }
#endif
    Tensor t = empty(shape_);
    if (numel_) std::memcpy(t.data(), data(), static_cast<size_t>(numel_) * sizeof(T));
    return t;
  }
  // A view with another shape over the same storage; one dimension may be -1.
  Tensor reshape(Shape s) const {
    int64_t known = 1, infer = -1;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == -1) {
        if (infer >= 0) throw_shape("reshape", "more than one -1", shape_, s);
        infer = static_cast<int64_t>(i);
      } else {
        known *= s[i];
      }
    }
    if (infer >= 0) {
      if (known == 0 || numel_ % known) throw_shape("reshape", "cannot infer -1", shape_, s);
      s[infer] = numel_ / known;
    }
    if (shape_numel(s) != numel_) throw_shape("reshape", "element counts differ", shape_, s);
    Tensor t = *this;
    t.shape_ = std::move(s);
    return t;
  }
  // View of samples [begin, end) along the first axis (no copy).
  Tensor slice0(int64_t begin, int64_t end) const {
    if (rank() == 0 || begin < 0 || end > shape_[0] || begin > end)
      throw ShapeError("Tensor::slice0: range [" + std::to_string(begin) + ", " + std::to_string(end) +
                       ") of " + shape_str(shape_));
    Tensor t = *this;
    const int64_t inner = shape_[0] ? numel_ / shape_[0] : 0;
    t.shape_[0] = end - begin;
    t.numel_ = inner * (end - begin);
    t.offset_ = offset_ + inner * begin;
    return t;
  }
  bool shares_storage_with(const Tensor& o) const { return storage_ && storage_ == o.storage_; }

#ifdef TINYCNN_HAS_CUDA
  void fill(T v) {
    if (device() == Device::CUDA)
      cuda::fill<T>(data(), v, numel_);
    else
      detail::host_fill(data(), numel_, v);
  }
  // Random fills draw on the host from the same generator as on the CPU (so a model initialised on
  // the GPU has the CPU's weights) and upload the values.
  void fill_uniform(T lo, T hi, Rng& rng) {
    std::vector<T> v(static_cast<size_t>(numel_));
    for (auto& x : v) x = static_cast<T>(rng.uniform(lo, hi));
    assign_host(v);
  }
  void fill_normal(T mean, T stddev, Rng& rng) {
    std::vector<T> v(static_cast<size_t>(numel_));
    for (auto& x : v) x = static_cast<T>(mean + stddev * rng.normal());
    assign_host(v);
  }
  void copy_from(const Tensor& src) {
    if (src.shape_ != shape_) throw_shape("copy_from", "shapes differ", shape_, src.shape_);
    if (!numel_) return;
    const size_t bytes = static_cast<size_t>(numel_) * sizeof(T);
    const bool to_dev = device() == Device::CUDA, from_dev = src.device() == Device::CUDA;
    if (!to_dev && !from_dev)
      std::memmove(data(), src.data(), bytes);
    else if (to_dev && from_dev)
      cuda::copy_device_to_device(data(), src.data(), bytes);
    else if (to_dev)
      cuda::copy_to_device(data(), src.data(), bytes);
    else
      cuda::copy_to_host(data(), src.data(), bytes);
  }
  std::vector<T> to_vector() const {
    if (device() == Device::CPU) return std::vector<T>(data(), data() + numel_);
    std::vector<T> v(static_cast<size_t>(numel_));
    if (numel_) cuda::copy_to_host(v.data(), data(), static_cast<size_t>(numel_) * sizeof(T));
    return v;
  }
  [[noreturn]] void host_only(const char* what) const {
    throw Error(std::string(what) + ": the tensor " + shape_str(shape_) +
                " lives on the cuda device; copy it to the host first with to(Device::CPU)");
  }
#else
  void fill(T v) { detail::host_fill(data(), numel_, v); }
  void fill_uniform(T lo, T hi, Rng& rng) {
    for (int64_t i = 0; i < numel_; ++i) data()[i] = static_cast<T>(rng.uniform(lo, hi));
  }
  void fill_normal(T mean, T stddev, Rng& rng) {
    for (int64_t i = 0; i < numel_; ++i) data()[i] = static_cast<T>(mean + stddev * rng.normal());
  }
  void copy_from(const Tensor& src) {
    if (src.shape_ != shape_) throw_shape("copy_from", "shapes differ", shape_, src.shape_);
    if (numel_) std::memmove(data(), src.data(), static_cast<size_t>(numel_) * sizeof(T));
  }
  std::vector<T> to_vector() const { return std::vector<T>(data(), data() + numel_); }
#endif

 private:
#ifdef TINYCNN_HAS_CUDA
  T* host_data(const char* what) const {
    if (device() != Device::CPU) host_only(what);
    return storage_ ? storage_->ptr + offset_ : nullptr;
  }
  void assign_host(const std::vector<T>& v) {
    if (device() == Device::CPU)
      std::copy(v.begin(), v.end(), data());
    else if (numel_)
      cuda::copy_to_device(data(), v.data(), static_cast<size_t>(numel_) * sizeof(T));
  }
#endif
  int64_t flat_index(std::initializer_list<int64_t> idx) const {
    if (static_cast<int>(idx.size()) != rank())
      throw ShapeError("Tensor::at: " + std::to_string(idx.size()) + " indices for " + shape_str(shape_));
    int64_t f = 0;
    int i = 0;
    for (int64_t v : idx) {
      if (v < 0 || v >= shape_[i]) throw ShapeError("Tensor::at: index out of range for " + shape_str(shape_));
      f = f * shape_[i] + v;
      ++i;
    }
    return f;
  }

  std::shared_ptr<Storage<T>> storage_;
  Shape shape_;
  int64_t numel_ = 0;
  int64_t offset_ = 0;
};

}  // namespace tinycnn
