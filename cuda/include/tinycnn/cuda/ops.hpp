#pragma once
// Element-wise, activation, loss, dropout and optimizer kernels on the GPU, with the argument lists of
// their CPU twins (kernels/cpu/elementwise.hpp, activation.hpp, loss.hpp, dropout.hpp, optim.hpp).
// Pointers are device pointers; outputs marked "+=" accumulate (backward convention).
#include <cstdint>

#include <tinycnn/core/random.hpp>
#include <tinycnn/kernels/cpu/activation.hpp>

namespace tinycnn::cuda {

using kernels::cpu::Act;
using kernels::cpu::ActParams;

// y[i] += alpha * x[i];  x, y: [n]
template <class T>
void add_scaled(const T* x, T alpha, T* y, int64_t n);
// out[0] += sum_i x[i] (double partial sums in a fixed order: deterministic);  x: [n], out: [1]
template <class T>
void sum_add(const T* x, int64_t n, T* out);
// y[i] = a[i] * b[i];  a, b, y: [n]
template <class T>
void mul_forward(const T* a, const T* b, T* y, int64_t n);
// da += dy * b, db += dy * a (either may be null);  a, b, dy, da, db: [n]
template <class T>
void mul_backward(const T* a, const T* b, const T* dy, T* da, T* db, int64_t n);
// y[r, c] += b[c];  y: [rows, cols], b: [cols]
template <class T>
void add_bias_rows(T* y, const T* b, int64_t rows, int64_t cols);
// db[c] += sum_r dy[r, c];  dy: [rows, cols], db: [cols]
template <class T>
void sum_rows_add(const T* dy, T* db, int64_t rows, int64_t cols);
// y[n, c, i] = x[n, c, i] * scale[c] + offset[c];  x, y: [N, C, L], scale, offset: [C] (device)
template <class T>
void channel_affine_forward(const T* x, const T* scale, const T* offset, int64_t N, int64_t C, int64_t L, T* y);
// dx[n, c, i] += dy[n, c, i] * scale[c];  dy, dx: [N, C, L], scale: [C] (device)
template <class T>
void channel_affine_backward(const T* dy, const T* scale, int64_t N, int64_t C, int64_t L, T* dx);

// y = f(x);  x, y: [n] (y may alias x)
template <class T>
void activation_forward(const ActParams<T>& p, const T* x, T* y, int64_t n);
// dx += f'(x) * dy, using x (ReLU family) or y (sigmoid, tanh);  x, y, dy, dx: [n]
template <class T>
void activation_backward(const ActParams<T>& p, const T* x, const T* y, const T* dy, T* dx, int64_t n);
// Row-wise softmax;  x, y: [rows, cols]
template <class T>
void softmax_forward(const T* x, T* y, int64_t rows, int64_t cols);
// dx += y * (dy - sum(dy * y)) per row;  y, dy, dx: [rows, cols]
template <class T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols);

// Softmax cross-entropy from logits (kernels/cpu/loss.hpp).
//   logits: [N, K]; labels [N] (int32, validated) or targets [N, K], exactly one non-null;
//   probs: [N, K] (written), losses: [N] (written)
template <class T>
void softmax_cross_entropy_forward(const T* logits, const int32_t* labels, const T* targets, T smoothing, T* probs,
                                   T* losses, int64_t N, int64_t K);
// dlogits[n, k] += scale[n] * (probs[n, k] - target[n, k]);  scale: [N]
template <class T>
void softmax_cross_entropy_backward(const T* probs, const int32_t* labels, const T* targets, T smoothing,
                                    const T* scale, T* dlogits, int64_t N, int64_t K);
//   logits, targets, losses: [n] (losses written)
template <class T>
void bce_logits_forward(const T* logits, const T* targets, T* losses, int64_t n);
// dlogits[i] += scale * (sigmoid(x_i) - t_i);  logits, targets, dlogits: [n]
template <class T>
void bce_logits_backward(const T* logits, const T* targets, T scale, T* dlogits, int64_t n);

// Inverted dropout y = x * m, m_i = 0 with probability rate, else 1/(1-rate);  x, y: [n]. Counter-based: element i uses counter_uniform(seed, i) (core/counter_rng.hpp), so the
// mask does not depend on the launch shape and equals the CPU kernel's for the same seed.
template <class T>
void dropout_apply(uint64_t seed, T rate, const T* x, T* y, int64_t n);

// SGD with optional momentum/nesterov and L2 weight decay;  w, g, velocity: [n] (velocity may be null
// when momentum == 0)
template <class T>
void sgd_update(T* w, const T* g, T* velocity, int64_t n, T lr, T momentum, bool nesterov, T weight_decay);
// Adam / AdamW with bias correction (step >= 1), fused into one pass;  w, g, m, v: [n]
template <class T>
void adam_update(T* w, const T* g, T* m, T* v, int64_t n, T lr, T beta1, T beta2, T eps, int64_t step,
                 T weight_decay, bool decoupled);

}  // namespace tinycnn::cuda
