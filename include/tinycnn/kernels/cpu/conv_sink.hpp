#pragma once
// A convolution's output handed to a consumer while it is in cache, instead of written whole: the
// im2col passes (conv2d.hpp's conv2d_forward_ex) hand over each group of samples' GEMM output, the fused
// Winograd pass (conv_winograd.hpp's winograd_conv3x3_fused) each block's output transform; the
// consumer is a max pooling (conv_pool.hpp).
#include <cstdint>
#include <functional>

namespace tinycnn::kernels::cpu {

// fn(n0, nb, out, oh0, oh1, par) with out [K, nb*OH*OW], the planes of samples n0 .. n0 + nb - 1 side
// by side per channel, in a per-thread buffer that stays valid until fn returns; rows [oh0, oh1) of
// each plane computed: all rows, or for one sample a band of them handed over as soon as it is
// computed (the im2col pass: band_rows rows at a time, the last band shorter; the fused Winograd pass:
// its blocks' bands of tile rows, each starting at a multiple of row_align rows, which must be > 0
// for it to cut samples into bands). par: fn may use the thread team (groups run one after another),
// else it runs on the calling thread.
template <class T>
struct ConvGroupSink {
  int64_t band_rows = 0;
  int64_t row_align = 0;
  std::function<void(int64_t n0, int64_t nb, const T* out, int64_t oh0, int64_t oh1, bool par)> fn;
};

}  // namespace tinycnn::kernels::cpu
