// Host side of tinycnn::cuda (runtime.hpp): plain C++ against the CUDA runtime API.
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <tinycnn/cuda/runtime.hpp>

namespace tinycnn::cuda {

namespace detail {

void check(int err, const char* what) {
  if (err == cudaSuccess) return;
  const auto e = static_cast<cudaError_t>(err);
  cudaGetLastError();  // clear a non-sticky error so the next call does not report it again
  throw Error(std::string("tinycnn::cuda: ") + what + ": " + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) +
              ")");
}

static std::atomic<bool>& sync_flag() {
  static std::atomic<bool> on{[] {
    const char* e = std::getenv("TINYCNN_CUDA_SYNC");
    return e && *e && std::string(e) != "0";
  }()};
  return on;
}

void check_launch(const char* kernel) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    throw Error(std::string("tinycnn::cuda: kernel '") + kernel + "' failed to launch: " + cudaGetErrorString(e) +
                " (" + cudaGetErrorName(e) + ")");
  if (sync_flag().load(std::memory_order_relaxed)) {
    const auto st = static_cast<cudaStream_t>(current_stream().handle());
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(st, &cs) == cudaSuccess && cs != cudaStreamCaptureStatusNone) return;  // no sync inside a capture
    const cudaError_t s = cudaStreamSynchronize(st);
    if (s != cudaSuccess)
      throw Error(std::string("tinycnn::cuda: kernel '") + kernel + "' failed while running: " +
                  cudaGetErrorString(s) + " (" + cudaGetErrorName(s) + ")");
  }
}

}  // namespace detail

using detail::check;

// ---- devices --------------------------------------------------------------------------------
namespace {
struct Probe {
  int count = 0;
  std::string reason;
};
const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    const cudaError_t e = cudaGetDeviceCount(&r.count);
    if (e != cudaSuccess) {
      cudaGetLastError();
      r.count = 0;
      r.reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")";
    } else if (r.count == 0) {
      r.reason = "cudaGetDeviceCount: no CUDA device";
    }
    return r;
  }();
  return p;
}
}  // namespace

int device_count() { return probe().count; }
bool available() { return probe().count > 0; }
std::string unavailable_reason() { return probe().reason; }

std::string device_description(int device) {
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
  char mem[32];
  std::snprintf(mem, sizeof mem, "%.1f GiB", static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024 * 1024));
  return std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", " +
         std::to_string(p.multiProcessorCount) + " SMs, " + mem + ")";
}

int multiprocessor_count() {
  static const int n = [] {
    int dev = 0, v = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute(SM count)");
    return v;
  }();
  return n;
}

void synchronize() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }
void set_sync_after_launch(bool on) { detail::sync_flag().store(on); }

// ---- allocator --------------------------------------------------------------------------------
namespace {

// Blocks freed while a CUDA graph is being captured belong to that graph: replays write to them, so
// they may not return to the shared cache until the graph is destroyed. During the capture they are
// reused (in stream order) for later allocations of the same graph.
struct CapturePool {
  void* stream = nullptr;
  std::vector<std::pair<void*, size_t>> held;
  std::unordered_map<size_t, std::vector<void*>> free;
};
thread_local CapturePool* g_capture = nullptr;

class DeviceCache {
 public:
  static DeviceCache& instance() {
    // Never destroyed: device memory may be freed by static objects after main; the driver reclaims
    // everything at process exit anyway.
    static DeviceCache* c = new DeviceCache();
    return *c;
  }
  // 512-byte multiples up to 1 MiB, then 8 steps per power of two (at most 12.5% slack).
  static size_t round(size_t bytes) {
    if (bytes == 0) bytes = 1;
    if (bytes <= (size_t(1) << 20)) return (bytes + 511) / 512 * 512;
    size_t p = size_t(1) << 20;
    while (p <= bytes / 2) p *= 2;
    const size_t step = p / 8;
    return (bytes + step - 1) / step * step;
  }
  void* get(size_t bytes) {
    const size_t r = round(bytes);
    void* const stream = current_stream().handle();
    void* other_stream = nullptr;
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (g_capture) {  // the graph's own freed blocks first
        auto pit = g_capture->free.find(r);
        if (pit != g_capture->free.end() && !pit->second.empty()) {
          p = pit->second.back();
          pit->second.pop_back();
          ++stats_.reuses;
          live_[p] = r;
          stats_.in_use_bytes += r;
          stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
          return p;
        }
      }
      auto it = free_.find(r);
      // While capturing no synchronisation is allowed, so only blocks last used on this stream qualify.
      if (it != free_.end() && !it->second.empty() &&
          (!g_capture || std::any_of(it->second.begin(), it->second.end(),
                                     [&](const Free& f) { return f.stream == stream; }))) {
        auto& v = it->second;
        auto same = std::find_if(v.begin(), v.end(), [&](const Free& f) { return f.stream == stream; });
        if (same == v.end()) same = v.end() - 1;
        p = same->ptr;
        other_stream = same->stream != stream ? same->stream : nullptr;
        const bool needs_sync = same->stream != stream;
        v.erase(same);
        cached_ -= r;
        ++stats_.reuses;
        live_[p] = r;
        stats_.in_use_bytes += r;
        stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
        if (!needs_sync) return p;
      }
    }
    if (p) {
      // Last used on another stream: its pending work there must finish before ours may touch it.
      check(cudaStreamSynchronize(static_cast<cudaStream_t>(other_stream)), "cudaStreamSynchronize (allocator reuse)");
      return p;
    }
    cudaError_t e = cudaMalloc(&p, r);
    if (e == cudaErrorMemoryAllocation && !g_capture) {
      cudaGetLastError();
      release();  // give the cache back and try once more
      e = cudaMalloc(&p, r);
    }
    if (e != cudaSuccess) check(e, ("cudaMalloc(" + std::to_string(r) + " bytes)").c_str());
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.fresh_allocations;
    live_[p] = r;
    stats_.in_use_bytes += r;
    stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
    return p;
  }
  void put(void* p) {
    if (!p) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) throw Error("tinycnn::cuda::device_free: pointer was not allocated by device_alloc");
    const size_t r = it->second;
    live_.erase(it);
    stats_.in_use_bytes -= r;
    if (g_capture) {
      g_capture->held.push_back({p, r});
      g_capture->free[r].push_back(p);
      return;
    }
    free_[r].push_back({p, current_stream().handle()});
    cached_ += r;
  }
  void release() {
    std::vector<void*> ptrs;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& kv : free_)
        for (const Free& f : kv.second) ptrs.push_back(f.ptr);
      free_.clear();
      cached_ = 0;
    }
    if (ptrs.empty()) return;
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize (allocator release)");
    for (void* p : ptrs) check(cudaFree(p), "cudaFree");
  }
  // A graph is destroyed (after its stream was synchronised): its blocks go back to the shared cache.
  void release_pool(CapturePool& pool) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& b : pool.held) {
      free_[b.second].push_back({b.first, pool.stream});
      cached_ += b.second;
    }
    pool.held.clear();
    pool.free.clear();
  }
  // A stream is being destroyed (after a synchronisation): its cached blocks become free for anyone.
  void forget_stream(void* s) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& kv : free_)
      for (Free& f : kv.second)
        if (f.stream == s) f.stream = nullptr;
  }
  AllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    AllocatorStats s = stats_;
    s.cached_bytes = cached_;
    return s;
  }

 private:
  struct Free {
    void* ptr;
    void* stream;  // the stream that was current when the block was freed
  };
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<Free>> free_;
  std::unordered_map<void*, size_t> live_;
  size_t cached_ = 0;
  AllocatorStats stats_;
};

}  // namespace

void* device_alloc(size_t bytes) { return DeviceCache::instance().get(bytes); }
void device_free(void* p) { DeviceCache::instance().put(p); }
AllocatorStats allocator_stats() { return DeviceCache::instance().stats(); }
void allocator_release() { DeviceCache::instance().release(); }

// ---- streams ---------------------------------------------------------------------------------
Stream Stream::create() {
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  Stream r;
  r.impl_ = std::shared_ptr<void>(s, [](void* h) {
    auto st = static_cast<cudaStream_t>(h);
    cudaStreamSynchronize(st);  // errors cannot be thrown from a deleter; the next checked call reports them
    DeviceCache::instance().forget_stream(h);
    cudaStreamDestroy(st);
  });
  return r;
}

void Stream::synchronize() const {
  check(cudaStreamSynchronize(static_cast<cudaStream_t>(handle())), "cudaStreamSynchronize");
}

namespace {
Stream& thread_stream() {
  static thread_local Stream s;
  return s;
}
}  // namespace

Stream current_stream() { return thread_stream(); }
StreamGuard::StreamGuard(const Stream& s) : prev_(thread_stream()) { thread_stream() = s; }
StreamGuard::~StreamGuard() { thread_stream() = prev_; }

// ---- graphs ----------------------------------------------------------------------------------
struct Graph::Impl {
  Stream stream;  // kept alive for the replays
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  CapturePool pool;
  bool capturing = false;
  ~Impl() {
    if (capturing) {  // abandoned mid-capture (an exception): end it and drop the partial graph
      cudaGraph_t g = nullptr;
      cudaStreamEndCapture(static_cast<cudaStream_t>(stream.handle()), &g);
      if (g) cudaGraphDestroy(g);
      if (g_capture == &pool) g_capture = nullptr;
      cudaGetLastError();
    }
    if (exec || !pool.held.empty()) cudaStreamSynchronize(static_cast<cudaStream_t>(stream.handle()));
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
    DeviceCache::instance().release_pool(pool);
  }
};

Graph::Graph() : impl_(std::make_unique<Impl>()) {}
Graph::~Graph() = default;
Graph::Graph(Graph&&) noexcept = default;
Graph& Graph::operator=(Graph&&) noexcept = default;
bool Graph::ready() const { return impl_ && impl_->exec; }

void Graph::begin_capture() {
  if (!impl_ || impl_->capturing || impl_->exec)
    throw Error("tinycnn::cuda::Graph::begin_capture: this graph is already captured or capturing");
  if (g_capture) throw Error("tinycnn::cuda::Graph::begin_capture: another graph is being captured on this thread");
  impl_->stream = current_stream();
  if (!impl_->stream.handle())
    throw Error("tinycnn::cuda::Graph::begin_capture: the current stream is CUDA's legacy default stream, which "
                "cannot be captured; make one with Stream::create() and a StreamGuard");
  // Relaxed: workspaces may still need a cudaMalloc during the capture.
  check(cudaStreamBeginCapture(static_cast<cudaStream_t>(impl_->stream.handle()), cudaStreamCaptureModeRelaxed),
        "cudaStreamBeginCapture");
  impl_->pool.stream = impl_->stream.handle();
  impl_->capturing = true;
  g_capture = &impl_->pool;
}

void Graph::end_capture() {
  if (!impl_ || !impl_->capturing) throw Error("tinycnn::cuda::Graph::end_capture: no capture in progress");
  g_capture = nullptr;
  impl_->capturing = false;
  check(cudaStreamEndCapture(static_cast<cudaStream_t>(impl_->stream.handle()), &impl_->graph),
        "cudaStreamEndCapture (was something synchronised or another stream used during the capture?)");
  check(cudaGraphInstantiate(&impl_->exec, impl_->graph, 0), "cudaGraphInstantiate");
}

void Graph::replay() {
  if (!ready()) throw Error("tinycnn::cuda::Graph::replay: nothing captured yet");
  check(cudaGraphLaunch(impl_->exec, static_cast<cudaStream_t>(impl_->stream.handle())), "cudaGraphLaunch");
}

// ---- copies ----------------------------------------------------------------------------------
static cudaStream_t cur() { return static_cast<cudaStream_t>(current_stream().handle()); }

void copy_to_device(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cur()), "cudaMemcpyAsync (host to device)");
}
void copy_to_host(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cur()), "cudaMemcpyAsync (device to host)");
  check(cudaStreamSynchronize(cur()), "cudaStreamSynchronize (after device to host copy)");
}
void copy_device_to_device(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cur()), "cudaMemcpyAsync (device to device)");
}

// ---- timing ----------------------------------------------------------------------------------
EventTimer::EventTimer() {
  cudaEvent_t a = nullptr, b = nullptr;
  check(cudaEventCreate(&a), "cudaEventCreate");
  const cudaError_t e = cudaEventCreate(&b);
  if (e != cudaSuccess) {
    cudaEventDestroy(a);
    check(e, "cudaEventCreate");
  }
  start_ = a;
  stop_ = b;
}
EventTimer::~EventTimer() {
  cudaEventDestroy(static_cast<cudaEvent_t>(start_));
  cudaEventDestroy(static_cast<cudaEvent_t>(stop_));
}
void EventTimer::start() { check(cudaEventRecord(static_cast<cudaEvent_t>(start_), cur()), "cudaEventRecord"); }
float EventTimer::stop_ms() {
  check(cudaEventRecord(static_cast<cudaEvent_t>(stop_), cur()), "cudaEventRecord");
  check(cudaEventSynchronize(static_cast<cudaEvent_t>(stop_)), "cudaEventSynchronize");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start_), static_cast<cudaEvent_t>(stop_)),
        "cudaEventElapsedTime");
  return ms;
}

}  // namespace tinycnn::cuda
