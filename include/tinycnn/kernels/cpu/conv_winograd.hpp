#pragma once
// 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2016), over NCHW tensors.
//
// Why: im2col + GEMM spends 9 multiply-adds per input channel on each output pixel; F(2x2, 3x3)
// computes a 2x2 output tile from a 4x4 input tile with 16 instead of 36, so the GEMM work of a 3x3
// layer drops 2.25x. The multiplies become 16 independent GEMMs (one per point xi of the 4x4
// transformed tile), each [Co, Ci] x [Ci, P] over the P tiles of a group of samples, so they run on
// the same packed micro-kernels as everything else:
//   U[xi] = (G f G^T)[xi]   filter transform, [16, Co, Ci]
//   V[xi] = (B^T d B)[xi]   input transform of every 4x4 input tile d (stride 2, overlapping), [16, Ci, P]
//   M[xi] = U[xi] * V[xi]   16 GEMMs, [16, Co, P]
//   y     = A^T m A         output transform of every tile's 16 values m, 2x2 outputs
// with B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
// A^T = [1 1 1 0; 0 1 -1 -1]. Only additions and halvings: in float64 it matches the direct loops to
// rounding; in float32 the error stays at the level of im2col + GEMM's (tests/test_conv.cpp).
//
// The same routine serves the backward-data pass: dx = dy correlated with the filter rotated by 180
// degrees and its channel axes swapped, padded by 2 - pad (winograd_geom_backward_data). The weight
// gradient is the adjoint (winograd_conv3x3_backward_filter, at the end of this file).
//
// Plan: the batch is cut into groups of samples (enough tiles per group that the GEMMs are wide, few
// enough that V and M stay bounded); within a group the threads split the input transform over
// (sample, channel), the 16 GEMMs (one thread each, so no barriers inside them), and the output
// transform over (sample, output channel). Buffers are thread_local and only grow.
#include <algorithm>
#include <cstdint>

#include "../../core/parallel.hpp"
#include "conv_geometry.hpp"
#include "im2col.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tinycnn::kernels::cpu {

// One stride-1 3x3 correlation as the Winograd routine computes it:
//   out[n, o, oh, ow] (=, or +=) sum over i, r, s of in[n, i, oh - pad_top + r, ow - pad_left + s] * f[o, i, r, s],
// with in = 0 outside [0, H) x [0, W). Output tiles are 2x2; the last row / column of tiles may hang
// over the output's edge (those values are computed and dropped).
struct WinogradGeom {
  int64_t N = 0, Ci = 0, H = 0, W = 0;  // input [N, Ci, H, W]
  int64_t Co = 0, OH = 0, OW = 0;       // output [N, Co, OH, OW]
  int64_t pad_top = 0, pad_left = 0;
  int64_t tiles_h() const { return (OH + 1) / 2; }
  int64_t tiles_w() const { return (OW + 1) / 2; }
  int64_t tiles() const { return tiles_h() * tiles_w(); }  // per sample
};

// Whether the Winograd routine can compute convolution g at all (3x3 window, stride 1).
inline bool winograd_applies(const Conv2DGeom& g) {
  return g.R == 3 && g.S == 3 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top <= 2 && g.pad_left <= 2;
}

// The forward pass of g: in = x [N, C, H, W], out = y [N, K, OH, OW].
inline WinogradGeom winograd_geom_forward(const Conv2DGeom& g) {
  WinogradGeom q;
  q.N = g.N, q.Ci = g.C, q.H = g.H, q.W = g.W, q.Co = g.K, q.OH = g.OH, q.OW = g.OW;
  q.pad_top = g.pad_top, q.pad_left = g.pad_left;
  return q;
}

// The backward-data pass of g: in = dy [N, K, OH, OW], out = dx [N, C, H, W];
//   dx[h] = sum_r dy[h + pad_top - r] w[r] = sum_r' dy[h - (2 - pad_top) + r'] w[2 - r'].
inline WinogradGeom winograd_geom_backward_data(const Conv2DGeom& g) {
  WinogradGeom q;
  q.N = g.N, q.Ci = g.K, q.H = g.OH, q.W = g.OW, q.Co = g.C, q.OH = g.H, q.OW = g.W;
  q.pad_top = 2 - g.pad_top, q.pad_left = 2 - g.pad_left;
  return q;
}

// Filter transform.
//   w: [K, C, 3, 3]
//   U: [16, K, C] (rotate = false: the forward filter f = w) or
//      [16, C, K] (rotate = true: the backward-data filter f[c, k] = w[k, c] rotated 180 degrees)
template <class T>
void winograd_filter_transform(const T* w, int64_t K, int64_t C, bool rotate, T* U, bool par) {
  // The loop runs along the output's contiguous axis (c forward, k rotated) in blocks of 16 filters
  // staged in a small array, so the 16 planes of U are written as contiguous runs: for model3's conv6
  // (1024 x 512 filters) 3.9 ms instead of 11.4 ms when each filter's 16 values went straight into
  // the 16 planes (best of 5, 2 threads, a standalone program).
  constexpr int64_t kB = 16;
  const int64_t KC = K * C, outer = rotate ? C : K, inner = rotate ? K : C;
#pragma omp parallel for if (par)
  for (int64_t o = 0; o < outer; ++o) {
    T* dst = U + o * inner;
    for (int64_t e0 = 0; e0 < inner; e0 += kB) {
      const int64_t n = std::min(kB, inner - e0);
      T tmp[16][kB];
      for (int64_t e = 0; e < n; ++e) {
        const T* f = w + (rotate ? (e0 + e) * C + o : o * C + e0 + e) * 9;
        T g[3][3];
        for (int r = 0; r < 3; ++r)
          for (int s = 0; s < 3; ++s) g[r][s] = rotate ? f[(2 - r) * 3 + (2 - s)] : f[r * 3 + s];
        T t[4][3];  // G g
        for (int s = 0; s < 3; ++s) {
          t[0][s] = g[0][s];
          t[1][s] = T(0.5) * (g[0][s] + g[1][s] + g[2][s]);
          t[2][s] = T(0.5) * (g[0][s] - g[1][s] + g[2][s]);
          t[3][s] = g[2][s];
        }
        for (int i = 0; i < 4; ++i) {  // (G g) G^T
          tmp[4 * i + 0][e] = t[i][0];
          tmp[4 * i + 1][e] = T(0.5) * (t[i][0] + t[i][1] + t[i][2]);
          tmp[4 * i + 2][e] = T(0.5) * (t[i][0] - t[i][1] + t[i][2]);
          tmp[4 * i + 3][e] = t[i][2];
        }
      }
      for (int xi = 0; xi < 16; ++xi)
        for (int64_t e = 0; e < n; ++e) dst[xi * KC + e0 + e] = tmp[xi][e];
    }
  }
}

namespace detail {

// Input transform of samples [n0, n0 + nb) (a work-shared loop: call inside a parallel region).
//   in: [N, Ci, H, W], V: [16, Ci, P] with P = nb * tiles, column p = j * tiles + ty * tiles_w + tx
// Each input plane is first copied, zero-padded, into a buffer whose rows hold the even columns and
// then the odd ones: tile tx reads columns 2tx .. 2tx + 3 = even[tx], odd[tx], even[tx + 1],
// odd[tx + 1], so every step below is a contiguous vector operation over tx.
template <class T>
void winograd_input_transform(const T* in, const WinogradGeom& q, int64_t n0, int64_t nb, T* V) {
  const int64_t TH = q.tiles_h(), TW = q.tiles_w(), NT = q.tiles(), P = nb * NT, CP = q.Ci * P;
  const int64_t half = TW + 1, width = 2 * half, rows = 2 * TH + 2;  // padded plane: rows x (even | odd)
  T* plane = conv_scratch<T, 2>(rows * width + 4 * width);
  T* t = plane + rows * width;  // the 4 rows of B^T d, each even | odd
#pragma omp for collapse(2) schedule(static)
  for (int64_t j = 0; j < nb; ++j)
    for (int64_t c = 0; c < q.Ci; ++c) {
      const T* src = in + ((n0 + j) * q.Ci + c) * q.H * q.W;
      for (int64_t r = 0; r < rows; ++r) {
        T* row = plane + r * width;
        const int64_t ih = r - q.pad_top;
        if (ih < 0 || ih >= q.H) {
          std::fill(row, row + width, T(0));
          continue;
        }
        const T* s = src + ih * q.W;
        for (int parity = 0; parity < 2; ++parity) {  // padded column 2k + parity = input column 2k + parity - pad_left
          T* part = row + parity * half;
          const int64_t off = parity - q.pad_left;  // input column of k = 0
          // k in [k0, k1): 0 <= 2k + off < W
          const int64_t k0 = std::min<int64_t>(half, off >= 0 ? 0 : (1 - off) / 2);
          const int64_t k1 = std::max<int64_t>(k0, std::min<int64_t>(half, (q.W - off + 1) / 2));
          std::fill(part, part + k0, T(0));
          const T* sp = s + off;
#pragma omp simd
          for (int64_t k = k0; k < k1; ++k) part[k] = sp[2 * k];
          std::fill(part + k1, part + half, T(0));
        }
      }
      T* dst = V + c * P + j * NT;
      for (int64_t ty = 0; ty < TH; ++ty) {
        const T *r0 = plane + 2 * ty * width, *r1 = r0 + width, *r2 = r1 + width, *r3 = r2 + width;
#pragma omp simd
        for (int64_t x = 0; x < width; ++x) {  // B^T d: rows
          t[x] = r0[x] - r2[x];
          t[width + x] = r1[x] + r2[x];
          t[2 * width + x] = r2[x] - r1[x];
          t[3 * width + x] = r1[x] - r3[x];
        }
        T* out = dst + ty * TW;
        for (int i = 0; i < 4; ++i) {  // (B^T d) B: columns
          const T *ev = t + i * width, *od = ev + half;
          T *o0 = out + (4 * i) * CP, *o1 = o0 + CP, *o2 = o1 + CP, *o3 = o2 + CP;
#pragma omp simd
          for (int64_t tx = 0; tx < TW; ++tx) {
            o0[tx] = ev[tx] - ev[tx + 1];
            o1[tx] = od[tx] + ev[tx + 1];
            o2[tx] = ev[tx + 1] - od[tx];
            o3[tx] = od[tx] - od[tx + 1];
          }
        }
      }
    }
}

// Output transform of samples [n0, n0 + nb) (a work-shared loop: call inside a parallel region).
//   M: [16, Co, P], bias: [Co] or nullptr, out: [N, Co, OH, OW] (written, or += when accumulate)
template <class T>
void winograd_output_transform(const T* M, const WinogradGeom& q, int64_t n0, int64_t nb, const T* bias, bool relu,
                               bool accumulate, T* out) {
  const int64_t TH = q.tiles_h(), TW = q.tiles_w(), NT = q.tiles(), P = nb * NT, KP = q.Co * P;
  T* buf = conv_scratch<T, 2>(4 * TW);  // this thread's 2 output rows of a tile row
#pragma omp for collapse(2) schedule(static)
  for (int64_t j = 0; j < nb; ++j)
    for (int64_t k = 0; k < q.Co; ++k) {
      const T* src = M + k * P + j * NT;
      T* dst = out + ((n0 + j) * q.Co + k) * q.OH * q.OW;
      const T b = bias ? bias[k] : T(0);
      for (int64_t ty = 0; ty < TH; ++ty) {
        const T* m = src + ty * TW;
        T *y0 = buf, *y1 = buf + 2 * TW;
#pragma omp simd
        for (int64_t tx = 0; tx < TW; ++tx) {
          T s[2][4];  // A^T m: rows
          for (int x = 0; x < 4; ++x) {
            const T m0 = m[(0 + x) * KP + tx], m1 = m[(4 + x) * KP + tx], m2 = m[(8 + x) * KP + tx],
                    m3 = m[(12 + x) * KP + tx];
            s[0][x] = m0 + m1 + m2;
            s[1][x] = m1 - m2 - m3;
          }
          y0[2 * tx] = s[0][0] + s[0][1] + s[0][2];  // (A^T m) A: columns
          y0[2 * tx + 1] = s[0][1] - s[0][2] - s[0][3];
          y1[2 * tx] = s[1][0] + s[1][1] + s[1][2];
          y1[2 * tx + 1] = s[1][1] - s[1][2] - s[1][3];
        }
        for (int i = 0; i < 2; ++i) {
          const int64_t oh = 2 * ty + i;
          if (oh >= q.OH) break;
          const T* y = i == 0 ? y0 : y1;
          T* d = dst + oh * q.OW;
          if (accumulate) {
#pragma omp simd
            for (int64_t ow = 0; ow < q.OW; ++ow) d[ow] += y[ow];
          } else if (relu) {
#pragma omp simd
            for (int64_t ow = 0; ow < q.OW; ++ow) d[ow] = std::max(y[ow] + b, T(0));
          } else {
#pragma omp simd
            for (int64_t ow = 0; ow < q.OW; ++ow) d[ow] = y[ow] + b;
          }
        }
      }
    }
}


// Transform of the output gradient of samples [n0, n0 + nb) for the weight gradient (a work-shared
// loop: call inside a parallel region): every 2x2 tile e of dy (zero where a tile hangs over the
// output's edge) becomes A e A^T, with A = (A^T)^T = [1 0; 1 1; 1 -1; 0 -1].
//   dy: [N, Co, OH, OW], G: [16, Co, P] with P = nb * tiles (the layout of M in the forward pass)
template <class T>
void winograd_grad_output_transform(const T* dy, const WinogradGeom& q, int64_t n0, int64_t nb, T* G) {
  const int64_t TH = q.tiles_h(), TW = q.tiles_w(), NT = q.tiles(), P = nb * NT, KP = q.Co * P;
  T* buf = conv_scratch<T, 2>(4 * TW);  // even and odd columns of the tile row's two output rows
#pragma omp for collapse(2) schedule(static)
  for (int64_t j = 0; j < nb; ++j)
    for (int64_t k = 0; k < q.Co; ++k) {
      const T* src = dy + ((n0 + j) * q.Co + k) * q.OH * q.OW;
      T* dst = G + k * P + j * NT;
      for (int64_t ty = 0; ty < TH; ++ty) {
        T *e0 = buf, *o0 = buf + TW, *e1 = buf + 2 * TW, *o1 = buf + 3 * TW;  // rows 2ty and 2ty + 1
        for (int i = 0; i < 2; ++i) {
          T *ev = i == 0 ? e0 : e1, *od = i == 0 ? o0 : o1;
          const int64_t oh = 2 * ty + i;
          if (oh >= q.OH) {
            std::fill(ev, ev + TW, T(0));
            std::fill(od, od + TW, T(0));
            continue;
          }
          const T* r = src + oh * q.OW;
          const int64_t full = q.OW / 2;  // tiles with both columns inside
#pragma omp simd
          for (int64_t tx = 0; tx < full; ++tx) {
            ev[tx] = r[2 * tx];
            od[tx] = r[2 * tx + 1];
          }
          if (full < TW) ev[full] = r[2 * full], od[full] = T(0);  // odd OW: the last tile's right column
        }
        T* out = dst + ty * TW;
#pragma omp simd
        for (int64_t tx = 0; tx < TW; ++tx) {
          // u = A e (4 x 2), then u A^T (4 x 4)
          const T u[4][2] = {{e0[tx], o0[tx]},
                             {e0[tx] + e1[tx], o0[tx] + o1[tx]},
                             {e0[tx] - e1[tx], o0[tx] - o1[tx]},
                             {-e1[tx], -o1[tx]}};
          for (int i = 0; i < 4; ++i) {
            out[(4 * i + 0) * KP + tx] = u[i][0];
            out[(4 * i + 1) * KP + tx] = u[i][0] + u[i][1];
            out[(4 * i + 2) * KP + tx] = u[i][0] - u[i][1];
            out[(4 * i + 3) * KP + tx] = -u[i][1];
          }
        }
      }
    }
}

// dw[k, c] += G^T dU[k, c] G for every filter (a work-shared loop: call inside a parallel region),
// G^T = [1 .5 .5 0; 0 .5 -.5 0; 0 .5 .5 1]: the adjoint of the filter transform.
//   dU: [16, K, C], dw: [K, C, 3, 3] (+=)
template <class T>
void winograd_filter_grad_transform(const T* dU, int64_t K, int64_t C, T* dw) {
  const int64_t KC = K * C;
#pragma omp for schedule(static)
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c) {
      const T* u = dU + k * C + c;
      T t[3][4];  // G^T u
      for (int x = 0; x < 4; ++x) {
        const T u0 = u[(0 + x) * KC], u1 = u[(4 + x) * KC], u2 = u[(8 + x) * KC], u3 = u[(12 + x) * KC];
        t[0][x] = u0 + T(0.5) * (u1 + u2);
        t[1][x] = T(0.5) * (u1 - u2);
        t[2][x] = T(0.5) * (u1 + u2) + u3;
      }
      T* d = dw + (k * C + c) * 9;
      for (int r = 0; r < 3; ++r) {  // (G^T u) G
        d[r * 3 + 0] += t[r][0] + T(0.5) * (t[r][1] + t[r][2]);
        d[r * 3 + 1] += T(0.5) * (t[r][1] - t[r][2]);
        d[r * 3 + 2] += T(0.5) * (t[r][1] + t[r][2]) + t[r][3];
      }
    }
}

// Groups of whole samples: nb samples per group (the largest once the batch is split evenly) so that
// V + M hold at most scratch_elems elements, but at least min_cols tile columns (or the whole batch)
// so the GEMMs stay wide on deep layers with few tiles per sample.
inline void winograd_groups(const WinogradGeom& q, int64_t scratch_elems, int64_t min_cols, int64_t& nb,
                            int64_t& groups) {
  const int64_t NT = q.tiles(), per_sample = 16 * (q.Ci + q.Co) * NT;
  nb = std::max<int64_t>(scratch_elems / per_sample, (min_cols + NT - 1) / NT);
  nb = std::min<int64_t>(std::max<int64_t>(nb, 1), q.N);
  groups = (q.N + nb - 1) / nb;
  nb = (q.N + groups - 1) / groups;
}

// Threads for a pass: the team, unless already inside a parallel region or the work is small.
inline int winograd_team(const WinogradGeom& q) {
  const double flops = 2.0 * 16.0 * double(q.N * q.tiles()) * double(q.Ci) * double(q.Co);
#ifdef _OPENMP
  if (!omp_in_parallel() && flops >= static_cast<double>(kParallelMinWork)) return std::max(1, omp_get_max_threads());
#else
  (void)flops;
#endif
  return 1;
}

}  // namespace detail

// out (=, or += when accumulate) relu?(correlation of `in` with the filter whose transform is U, + bias)
//   in: [N, Ci, H, W], U: [16, Co, Ci] (winograd_filter_transform), bias: [Co] or nullptr (ignored when
//   accumulating), out: [N, Co, OH, OW]; gemm_fn: a GEMM with gemm_ex's contract (benchmarks plug variants in).
// scratch_elems bounds V + M per group, except that a group always gets at least min_cols tile columns
// (or the whole batch) so the GEMMs stay wide on deep layers with few tiles per sample.
template <class T, class GemmFn>
void winograd_conv3x3(const T* in, const T* U, const WinogradGeom& q, const T* bias, bool relu, bool accumulate,
                      T* out, GemmFn gemm_fn, int64_t scratch_elems = int64_t(4) << 20, int64_t min_cols = 512) {
  const int64_t NT = q.tiles();
  if (q.N <= 0 || q.Co <= 0 || NT <= 0) return;
  int64_t nb, groups;
  detail::winograd_groups(q, scratch_elems, min_cols, nb, groups);
  T* V = detail::conv_scratch<T, 0>(16 * q.Ci * nb * NT);
  T* M = detail::conv_scratch<T, 1>(16 * q.Co * nb * NT);
  const int nt = detail::winograd_team(q);
#pragma omp parallel num_threads(nt) if (nt > 1)
  for (int64_t gi = 0; gi < groups; ++gi) {
    const int64_t n0 = q.N * gi / groups, nbg = q.N * (gi + 1) / groups - n0, P = nbg * NT;
    detail::winograd_input_transform(in, q, n0, nbg, V);  // ends with a barrier
#pragma omp for schedule(dynamic, 1)
    for (int xi = 0; xi < 16; ++xi)
      gemm_fn(false, false, q.Co, P, q.Ci, T(1), U + xi * q.Co * q.Ci, q.Ci, V + xi * q.Ci * P, P, T(0),
              M + xi * q.Co * P, P, nullptr);
    detail::winograd_output_transform(M, q, n0, nbg, bias, relu, accumulate, out);
  }
}

// dw += the weight gradient of the forward correlation q (x -> y) for output gradient dy, by the
// adjoint of F(2x2, 3x3): per group, V = input transform of x, Gy = A dy A^T per tile, then per
// point xi one GEMM dU[xi] (+)= Gy[xi] [Co, P] * V[xi]^T [P, Ci] (the reduction runs over the tiles),
// and finally dw += G^T dU G per filter. 2.25x fewer multiply-adds than dY * im2col(x)^T.
//   x: [N, Ci, H, W], dy: [N, Co, OH, OW], dw: [Co, Ci, 3, 3] (+=); gemm_fn, scratch_elems, min_cols as above.
template <class T, class GemmFn>
void winograd_conv3x3_backward_filter(const T* x, const T* dy, const WinogradGeom& q, T* dw, GemmFn gemm_fn,
                                      int64_t scratch_elems = int64_t(4) << 20, int64_t min_cols = 512) {
  const int64_t NT = q.tiles();
  if (q.N <= 0 || q.Co <= 0 || q.Ci <= 0 || NT <= 0) return;
  int64_t nb, groups;
  detail::winograd_groups(q, scratch_elems, min_cols, nb, groups);
  T* V = detail::conv_scratch<T, 0>(16 * q.Ci * nb * NT);
  T* Gy = detail::conv_scratch<T, 1>(16 * q.Co * nb * NT);
  T* dU = detail::conv_scratch<T, 3>(16 * q.Co * q.Ci);
  const int nt = detail::winograd_team(q);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    for (int64_t gi = 0; gi < groups; ++gi) {
      const int64_t n0 = q.N * gi / groups, nbg = q.N * (gi + 1) / groups - n0, P = nbg * NT;
      detail::winograd_input_transform(x, q, n0, nbg, V);         // ends with a barrier
      detail::winograd_grad_output_transform(dy, q, n0, nbg, Gy);  // ends with a barrier
#pragma omp for schedule(dynamic, 1)
      for (int xi = 0; xi < 16; ++xi)
        gemm_fn(false, true, q.Co, q.Ci, P, T(1), Gy + xi * q.Co * P, P, V + xi * q.Ci * P, P, gi == 0 ? T(0) : T(1),
                dU + xi * q.Co * q.Ci, q.Ci, nullptr);
    }
    detail::winograd_filter_grad_transform(dU, q.Co, q.Ci, dw);
  }
}

}  // namespace tinycnn::kernels::cpu
