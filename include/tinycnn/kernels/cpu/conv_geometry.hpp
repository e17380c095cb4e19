#pragma once
// Geometry of a 2-D convolution or pooling window over NCHW tensors, with TensorFlow-exact padding.
//   'valid': no padding, OH = (H - R) / stride + 1 (needs H >= R).
//   'same':  OH = ceil(H / stride), pad_total = max((OH - 1) * stride + R - H, 0),
//            pad_top = pad_total / 2 and the odd extra row (column) goes at the BOTTOM (RIGHT), as in TF.
// Dilation is always 1. The same struct serves pooling (K = C, R x S = pool size).
#include <cstdint>
#include <string>

#include "../../core/error.hpp"

namespace tinycnn::kernels::cpu {

struct Conv2DGeom {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input [N, C, H, W]
  int64_t K = 0;                       // output channels
  int64_t R = 0, S = 0;                // window height, width
  int64_t stride_h = 1, stride_w = 1;  // dilation is 1
  int64_t pad_top = 0, pad_left = 0;   // zero rows above / columns left of the input
  int64_t OH = 0, OW = 0;              // output height, width

  // Padding after the input implied by the output size (0 when the last window stops short).
  int64_t pad_bottom() const { return clamp0((OH - 1) * stride_h + R - H - pad_top); }
  int64_t pad_right() const { return clamp0((OW - 1) * stride_w + S - W - pad_left); }

 private:
  static int64_t clamp0(int64_t v) { return v > 0 ? v : 0; }
};

enum class Padding { Valid, Same };

// "valid" / "same" (Keras strings) -> Padding; anything else is a ValueError naming `op`.
inline Padding parse_padding(const std::string& s, const std::string& op) {
  if (s == "valid") return Padding::Valid;
  if (s == "same") return Padding::Same;
  throw ValueError(op + ": padding must be 'valid' or 'same', got '" + s + "'");
}

// One spatial axis: input size `in`, window `k`, `stride` -> output size and padding before/after.
inline void padded_axis(int64_t in, int64_t k, int64_t stride, Padding p, int64_t& out, int64_t& pad_before,
                        int64_t& pad_after) {
  if (p == Padding::Valid) {
    out = in >= k ? (in - k) / stride + 1 : 0;
    pad_before = pad_after = 0;
  } else {
    out = (in + stride - 1) / stride;
    const int64_t total = (out - 1) * stride + k - in;
    const int64_t pad_total = total > 0 ? total : 0;
    pad_before = pad_total / 2;
    pad_after = pad_total - pad_before;
  }
}

// Full geometry for input [N, C, H, W], K output channels, an R x S window and strides. Throws
// ShapeError (naming `op`) when the output would be empty or an argument is not positive.
inline Conv2DGeom make_conv_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S,
                                 int64_t stride_h, int64_t stride_w, Padding padding, const std::string& op = "conv") {
  if (R <= 0 || S <= 0 || stride_h <= 0 || stride_w <= 0)
    throw ShapeError(op + ": window " + std::to_string(R) + "x" + std::to_string(S) + " and strides " +
                     std::to_string(stride_h) + "x" + std::to_string(stride_w) + " must be positive");
  Conv2DGeom g;
  g.N = N, g.C = C, g.H = H, g.W = W, g.K = K, g.R = R, g.S = S, g.stride_h = stride_h, g.stride_w = stride_w;
  int64_t after = 0;
  padded_axis(H, R, stride_h, padding, g.OH, g.pad_top, after);
  padded_axis(W, S, stride_w, padding, g.OW, g.pad_left, after);
  if (g.OH <= 0 || g.OW <= 0)
    throw ShapeError(op + ": a " + std::to_string(R) + "x" + std::to_string(S) + " window with " +
                     (padding == Padding::Valid ? "'valid'" : "'same'") + " padding does not fit input " +
                     std::to_string(H) + "x" + std::to_string(W));
  return g;
}

// Throws ValueError (naming `op`) unless pooling pg's input is convolution g's output.
inline void check_pools_conv_output(const std::string& op, const Conv2DGeom& g, const Conv2DGeom& pg) {
  if (pg.N != g.N || pg.C != g.K || pg.H != g.OH || pg.W != g.OW)
    throw ValueError(op + ": the pooling's input [" + std::to_string(pg.N) + ", " + std::to_string(pg.C) + ", " +
                     std::to_string(pg.H) + ", " + std::to_string(pg.W) + "] is not the convolution's output [" +
                     std::to_string(g.N) + ", " + std::to_string(g.K) + ", " + std::to_string(g.OH) + ", " +
                     std::to_string(g.OW) + "]");
}

}  // namespace tinycnn::kernels::cpu
