#pragma once
// DeviceBuffer<T>: an owning array in device memory (from the caching allocator) with host copies.
// Used by the parity tests and the benchmarks; device tensors build on the same allocator.
#include <cstdint>
#include <utility>
#include <vector>

#include "runtime.hpp"

namespace tinycnn::cuda {

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(int64_t n) : n_(n) {
    if (n < 0) throw ValueError("DeviceBuffer: negative size " + std::to_string(n));
    if (n > 0) p_ = static_cast<T*>(device_alloc(static_cast<size_t>(n) * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(static_cast<int64_t>(host.size())) {
    upload(host);
  }
  ~DeviceBuffer() { device_free(p_); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() { return p_; }
  const T* get() const { return p_; }
  int64_t size() const { return n_; }

  void upload(const std::vector<T>& host) {
    if (static_cast<int64_t>(host.size()) != n_)
      throw ValueError("DeviceBuffer::upload: " + std::to_string(host.size()) + " values for a buffer of " +
                       std::to_string(n_));
    if (n_) copy_to_device(p_, host.data(), static_cast<size_t>(n_) * sizeof(T));
  }
  std::vector<T> download() const {
    std::vector<T> h(static_cast<size_t>(n_));
    if (n_) copy_to_host(h.data(), p_, static_cast<size_t>(n_) * sizeof(T));
    return h;
  }

 private:
  T* p_ = nullptr;
  int64_t n_ = 0;
};

}  // namespace tinycnn::cuda
