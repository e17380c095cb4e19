#pragma once
// Host-side CUDA runtime of tinycnn::cuda: device query, the caching device allocator, copies, streams
// and event timers. Plain C++: no CUDA header is needed to include it (handles are opaque pointers).
// Every CUDA call is checked; a failure throws tinycnn::Error naming the call (or kernel) and the
// CUDA error string.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <tinycnn/core/error.hpp>

namespace tinycnn::cuda {

// ---- devices --------------------------------------------------------------------------------
// Number of usable CUDA devices; 0 when there is no driver or no device (never throws).
int device_count();
// True when device 0 can run kernels.
bool available();
// Why available() is false ("" when it is true), e.g. "cudaGetDeviceCount: no CUDA-capable device is detected".
std::string unavailable_reason();
// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)"; throws when the device does not exist.
std::string device_description(int device = 0);
int multiprocessor_count();  // of the current device (cached)
// Waits for all work on the device.
void synchronize();
// When on (or with TINYCNN_CUDA_SYNC=1 in the environment) every launch is followed by a stream
// synchronisation, so an asynchronous fault is reported with the name of the kernel that caused it.
void set_sync_after_launch(bool on);

// ---- streams ---------------------------------------------------------------------------------
// One non-blocking CUDA stream, shared between copies of the handle (the last copy destroys it). A
// default-constructed Stream is CUDA's legacy default stream. Kernels are queued on the thread's
// current stream (StreamGuard); a model owns one Stream so its work is ordered without device-wide syncs.
class Stream {
 public:
  Stream() = default;
  static Stream create();
  void* handle() const { return impl_ ? impl_.get() : nullptr; }  // a cudaStream_t
  void synchronize() const;
  bool operator==(const Stream& o) const { return handle() == o.handle(); }

 private:
  std::shared_ptr<void> impl_;
};
Stream current_stream();
// Makes `s` the calling thread's current stream for its lifetime.
class StreamGuard {
 public:
  explicit StreamGuard(const Stream& s);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  Stream prev_;
};

// ---- CUDA graphs -------------------------------------------------------------------------------
// Records the kernels queued on the current stream between begin_capture() and end_capture() and
// replays them with one launch: a training step of a small batch is otherwise bound by the CPU cost
// of ~100 launches. The stream must come from Stream::create() (CUDA cannot capture the legacy
// default stream). Device memory freed during the capture (workspaces) stays reserved for the graph
// until it is destroyed. Scalars passed to kernels (e.g. Adam's step number) are frozen at capture.
class Graph {
 public:
  Graph();
  ~Graph();
  Graph(Graph&&) noexcept;
  Graph& operator=(Graph&&) noexcept;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  void begin_capture();
  void end_capture();  // instantiates the graph
  void replay();       // on the stream it was captured on
  bool ready() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- memory ----------------------------------------------------------------------------------
// Caching allocator over plain cudaMalloc (no managed memory). Freed blocks are kept in free lists
// keyed by rounded size and by the stream they were last used on: a block is reused without a
// synchronisation only on the same stream (work there is ordered); a block from another stream is
// reused after that stream has been synchronised. When cudaMalloc fails, the cache is released and
// the allocation retried once.
void* device_alloc(size_t bytes);
void device_free(void* p);  // p from device_alloc, or nullptr
struct AllocatorStats {
  uint64_t fresh_allocations = 0;  // cudaMalloc calls
  uint64_t reuses = 0;             // requests served from the cache
  size_t in_use_bytes = 0;         // held by live allocations (rounded sizes)
  size_t cached_bytes = 0;         // free blocks kept for reuse
  size_t peak_in_use_bytes = 0;
};
AllocatorStats allocator_stats();
void allocator_release();  // cudaFree of every cached block (blocks in use are untouched)

// Copies on the current stream. to_host waits for the copy (the host reads the data next);
// to_device and device_to_device are ordered on the stream.
void copy_to_device(void* dst, const void* src, size_t bytes);
void copy_to_host(void* dst, const void* src, size_t bytes);
void copy_device_to_device(void* dst, const void* src, size_t bytes);

// p[i] = v on the current stream (a kernel, in src/ops.cu; float and double);  p: [n] device memory.
// Device tensors are filled and NaN-poisoned through it.
template <class T>
void fill(T* p, T v, int64_t n);

// ---- timing ----------------------------------------------------------------------------------
// CUDA events on the current stream: milliseconds of device time between start() and stop_ms().
class EventTimer {
 public:
  EventTimer();
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  void start();
  float stop_ms();  // waits for the stop event

 private:
  void* start_ = nullptr;
  void* stop_ = nullptr;
};

namespace detail {
// Throws tinycnn::Error "tinycnn::cuda: <what>: <CUDA error string>" unless err == 0 (cudaSuccess).
void check(int err, const char* what);
// After a kernel launch: cudaGetLastError (and a synchronisation in sync-after-launch mode), with the
// kernel's name in the error.
void check_launch(const char* kernel);
}  // namespace detail

}  // namespace tinycnn::cuda
