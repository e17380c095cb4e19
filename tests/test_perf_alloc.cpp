// The tensor storage caching allocator (core/tensor.hpp, tinycnn::detail::BlockCache): a training step after
// the first takes every tensor block from the cache, so it allocates nothing new.
#include <doctest/doctest.h>

#include <vector>

#include <tinycnn/tinycnn.hpp>

using namespace tinycnn;

TEST_CASE("tensor cache: the second identical training step allocates no new tensor storage") {
  // Start from an empty cache: earlier tests may have filled it with blocks of other sizes.
  tensor_cache_release();
  nn::Sequential<float> m(3);
  m.add<nn::Conv2D>(8, 3, 1, "same", "relu");
  m.add<nn::MaxPool2D>(2);
  m.add<nn::BatchNormalization>();
  m.add<nn::Conv2D>(16, 3, 1, "valid", "relu");
  m.add<nn::Dropout>(0.2);
  m.add<nn::Flatten>();
  m.add<nn::Dense>(10, "relu");
  m.add<nn::Dense>(3);
  m.build({3, 12, 12});
  m.train();
  optim::Adam<float> opt(m.parameters(true), 1e-3);
  Rng rng(5);
  Tensor<float> x = Tensor<float>::empty({4, 3, 12, 12});
  x.fill_uniform(-1.0f, 1.0f, rng);
  const std::vector<int32_t> y = {0, 1, 2, 1};
  auto step = [&] {
    Var<float> loss = ops::softmax_cross_entropy(m.forward(Var<float>(x)), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  };
  step();
  step();  // optimizer slots and gradients exist from here on
  const uint64_t before = tensor_cache_fresh_allocations();
  step();
  CHECK(tensor_cache_fresh_allocations() == before);
  const size_t cached = tensor_cache_bytes();
  CHECK(cached > 0);
}

TEST_CASE("tensor cache: blocks are reused by size class, aligned, and released on request") {
  tensor_cache_release();
  CHECK(tensor_cache_bytes() == 0);
  const uint64_t f0 = tensor_cache_fresh_allocations();
  { Tensor<float> a({1000}); CHECK(reinterpret_cast<uintptr_t>(a.data()) % 64 == 0); }
  CHECK(tensor_cache_fresh_allocations() == f0 + 1);
  CHECK(tensor_cache_bytes() >= 4000);
  { Tensor<float> b({995}); CHECK(b[0] == 0.0f); }  // same 4032-byte class: reused, still zero-filled by Tensor
  CHECK(tensor_cache_fresh_allocations() == f0 + 1);
  { Tensor<double> c({3000}); }  // another class
  CHECK(tensor_cache_fresh_allocations() == f0 + 2);
  CHECK(tinycnn::detail::BlockCache::round(100000) >= 100000);
  CHECK(tinycnn::detail::BlockCache::round(100000) <= 100000 + 100000 / 8);
  tensor_cache_release();
  CHECK(tensor_cache_bytes() == 0);
}

TEST_CASE("host_alloc: large blocks are 2 MiB-aligned and advised as huge pages, small ones 64-byte aligned") {
  void* small = host_alloc(1000);
  REQUIRE(small != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(small) % 64 == 0);
  host_free(small);
  const size_t big = tinycnn::detail::kHugeMinBytes + 12345;
  void* p = host_alloc(big);
  REQUIRE(p != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (tinycnn::detail::huge_pages_enabled()) CHECK(reinterpret_cast<uintptr_t>(p) % tinycnn::detail::kHugePageBytes == 0);
#endif
  static_cast<unsigned char*>(p)[big - 1] = 7;  // the whole block is usable
  host_free(p);
  // Tensor storage and kernel scratch go through it: a large tensor gets the same alignment.
  Tensor<float> t({static_cast<int64_t>(tinycnn::detail::kHugeMinBytes / sizeof(float)) + 1});
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (tinycnn::detail::huge_pages_enabled()) CHECK(reinterpret_cast<uintptr_t>(t.data()) % tinycnn::detail::kHugePageBytes == 0);
#endif
  HostBuffer<double> buf;
  double* b1 = buf.get(10);
  CHECK(buf.get(5) == b1);  // grows only
  double* b2 = buf.get(1 << 20);
  b2[(1 << 20) - 1] = 1.0;
}

TEST_CASE("tensor cache: a full cache evicts its least recently returned blocks, not the block coming back") {
  tensor_cache_release();
  using tinycnn::detail::BlockCache;
  const size_t ra = BlockCache::round(30000 * sizeof(float)), rb = BlockCache::round(20000 * sizeof(float));
  REQUIRE(BlockCache::round(25000 * sizeof(float)) <= ra);
  set_tensor_cache_limit(ra + rb);
  { Tensor<float> a({30000}); }
  { Tensor<float> b({20000}); }
  CHECK(tensor_cache_bytes() == ra + rb);  // full
  const uint64_t f0 = tensor_cache_fresh_allocations();
  { Tensor<float> c({25000}); }  // a new size: evicts a, the oldest, and is kept
  CHECK(tensor_cache_fresh_allocations() == f0 + 1);
  CHECK(tensor_cache_bytes() <= ra + rb);
  { Tensor<float> c({25000}); }
  { Tensor<float> b({20000}); }
  CHECK(tensor_cache_fresh_allocations() == f0 + 1);  // both served from the cache
  { Tensor<float> a({30000}); }
  CHECK(tensor_cache_fresh_allocations() == f0 + 2);  // a had been evicted
  // A block larger than the whole limit is never cached.
  { Tensor<float> big({static_cast<int64_t>(ra + rb)}); }
  CHECK(tensor_cache_bytes() <= ra + rb);
  set_tensor_cache_limit(size_t(2) << 30);  // the default
  tensor_cache_release();
}
