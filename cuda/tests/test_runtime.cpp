// Host-side behaviour of tinycnn::cuda that is checked with or without a GPU: device probing, argument
// errors naming the kernel and argument, launch errors naming the kernel, the counter-based RNG, and
// (with a GPU) the caching allocator, copies and streams.
#include <string>
#include <vector>

#include "parity_util.hpp"

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("cuda runtime: device probe is consistent") {
  const int n = tinycnn::cuda::device_count();
  CHECK(n >= 0);
  CHECK(tinycnn::cuda::available() == (n > 0));
  CHECK(tinycnn::cuda::unavailable_reason().empty() == (n > 0));
  if (n > 0) CHECK(!tinycnn::cuda::device_description(0).empty());
}

TEST_CASE("cuda runtime: bad arguments are refused before any CUDA call, naming kernel and argument") {
  using namespace tinycnn::cuda;
  float f = 0;
  double d = 0;
  std::string m = ct::error_of([&] { gemm_variant<float>(6, false, false, 1, 1, 1, 1.f, &f, 1, &f, 1, 0.f, &f, 1); });
  CHECK(has(m, "gemm_variant"));
  CHECK(has(m, "GEMM variant 6"));
  m = ct::error_of([&] { gemm_variant<double>(4, false, false, 1, 1, 1, 1.0, &d, 1, &d, 1, 0.0, &d, 1); });
  CHECK(has(m, "float only"));
  m = ct::error_of([&] { gemm_variant<float>(1, false, false, 2, 3, 4, 1.f, &f, 4, &f, 3, 0.f, &f, 2); });
  CHECK(has(m, "ldc"));
  m = ct::error_of([&] { gemm_variant<float>(1, false, false, -1, 3, 4, 1.f, &f, 4, &f, 3, 0.f, &f, 3); });
  CHECK(has(m, "gemm: M = -1"));
  const auto g = tinycnn::kernels::cpu::make_conv_geom(1, 2, 5, 5, 3, 3, 3, 1, 1, tinycnn::kernels::cpu::Padding::Same);
  m = ct::error_of([&] { conv2d_forward_variant<float>(9, &f, &f, nullptr, g, &f); });
  CHECK(has(m, "convolution variant 9"));
  m = ct::error_of([&] { depthwise_conv2d_forward<float>(&f, &f, nullptr, g, &f); });
  CHECK(has(m, "depthwise_conv2d_forward"));
  CHECK(has(m, "depth multiplier"));
  m = ct::error_of([&] { dropout_apply<float>(1, 1.0f, &f, &f, 1); });
  CHECK(has(m, "dropout_apply: rate"));
  CHECK(has(ct::error_of([] { set_default_gemm_variant(0); }), "set_default_gemm_variant"));
  CHECK(default_gemm_variant() >= 1);
  CHECK(std::string(gemm_variant_name(4)) == "tf32");
}

TEST_CASE("cuda runtime: without a GPU, allocations and launches fail with errors naming the call") {
  if (tinycnn::cuda::available()) {
    MESSAGE("a GPU is present: the no-GPU error paths are not reachable here");
    return;
  }
  const std::string alloc = ct::error_of([] { tinycnn::cuda::DeviceBuffer<float> b(16); });
  CHECK(has(alloc, "tinycnn::cuda: cudaMalloc"));
  const std::string launch = ct::error_of([] { tinycnn::cuda::fill<float>(nullptr, 0.f, 10); });
  CHECK(has(launch, "kernel 'fill<float>'"));
}

TEST_CASE("cuda runtime: counter RNG is a pure function of (seed, index) and uniform") {
  using tinycnn::cuda::counter_uniform;
  CHECK(counter_uniform(42, 7) == counter_uniform(42, 7));
  CHECK(counter_uniform(42, 7) != counter_uniform(43, 7));
  CHECK(counter_uniform(42, 7) != counter_uniform(42, 8));
  double sum = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double u = counter_uniform(12345, static_cast<uint64_t>(i));
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    sum += u;
  }
  CHECK(std::fabs(sum / n - 0.5) < 5 * std::sqrt(1.0 / 12.0 / n));  // 5 sigma
}

TEST_CASE("cuda runtime: caching allocator reuses blocks, copies round-trip, streams order work") {
  CT_REQUIRE_GPU();
  using namespace tinycnn::cuda;
  const std::vector<float> host = ct::random_vec<float>(1000, 1);
  {
    DeviceBuffer<float> a(host);
    CHECK(a.download() == host);
    DeviceBuffer<float> b(1000);
    copy_device_to_device(b.get(), a.get(), 1000 * sizeof(float));
    CHECK(b.download() == host);
  }
  const AllocatorStats s0 = allocator_stats();
  { DeviceBuffer<float> c(1000); }
  const AllocatorStats s1 = allocator_stats();
  CHECK(s1.fresh_allocations == s0.fresh_allocations);  // served from the cache
  CHECK(s1.reuses == s0.reuses + 1);
  CHECK(s1.in_use_bytes == s0.in_use_bytes);

  Stream st = Stream::create();
  {
    StreamGuard guard(st);
    CHECK(current_stream() == st);
    DeviceBuffer<float> d(host);
    add_scaled<float>(d.get(), 1.0f, d.get(), 1000);  // d = 2 * host, queued on st
    std::vector<float> want(host);
    for (float& v : want) v *= 2;
    CHECK(d.download() == want);
  }
  CHECK(!(current_stream() == st));
  allocator_release();
  CHECK(allocator_stats().cached_bytes == 0);
}

TEST_CASE("cuda runtime: graphs need a created stream, and say so") {
  CT_REQUIRE_GPU();
  tinycnn::cuda::Graph g;
  const std::string m = ct::error_of([&] { g.begin_capture(); });  // the legacy default stream is current
  CHECK(has(m, "legacy default stream"));
  CHECK(has(ct::error_of([&] { g.replay(); }), "nothing captured"));
}

TEST_CASE("cuda runtime: a captured graph replays its kernels and keeps its workspace to itself") {
  CT_REQUIRE_GPU();
  using namespace tinycnn::cuda;
  const int64_t n = 4099;
  const std::vector<float> x0 = ct::random_vec<float>(n, 3), y0 = ct::random_vec<float>(n, 4);
  Stream st = Stream::create();
  StreamGuard guard(st);
  DeviceBuffer<float> x(x0), y(y0);
  float* tmp_ptr = nullptr;
  Graph g;
  g.begin_capture();
  {
    DeviceBuffer<float> tmp(n);  // allocated and freed inside the capture: the graph keeps it
    tmp_ptr = tmp.get();
    fill<float>(tmp.get(), 1.0f, n);
    add_scaled<float>(tmp.get(), 1.0f, y.get(), n);  // y += 1
  }
  add_scaled<float>(x.get(), 2.0f, y.get(), n);  // y += 2x
  g.end_capture();
  CHECK(y.download() == y0);  // capturing runs nothing
  {
    DeviceBuffer<float> other(n);  // same size as tmp: must not be handed tmp's block
    CHECK(other.get() != tmp_ptr);
  }
  for (int r = 0; r < 3; ++r) g.replay();
  std::vector<float> want(y0);
  for (int64_t i = 0; i < n; ++i)
    for (int r = 0; r < 3; ++r) want[i] = (want[i] + 1.0f) + 2.0f * x0[i];
  ct::expect_close(y.download(), want, {1e-6, 1e-6}, "graph replays");
}
