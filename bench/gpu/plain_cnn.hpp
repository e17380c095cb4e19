#pragma once
// PlainCnn<T>: conv/ReLU/max-pool blocks, a dense head, softmax cross-entropy and Adam, written
// directly on the dispatch facade (backend::<kernel>(device, ...)) and device tensors, so the same
// code runs on Device::CPU and Device::CUDA. It stands in for nn::Sequential on the GPU until the
// autograd ops are device-aware (docs/cuda.md, "What is left"): cuda/tests trains a small one on the GPU
// against the CPU, and tinycnn_cuda_bench times model3 with it. Needs a build with TINYCNN_HAS_CUDA.
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include <tinycnn/backend/dispatch.hpp>
#include <tinycnn/core/tensor.hpp>
#include <tinycnn/cuda/buffer.hpp>

namespace tinycnn::gpu_bench {

using kernels::cpu::Conv2DGeom;

struct ConvSpec {
  int64_t cout;
  bool same;     // 'same' or 'valid' 3x3 convolution
  int64_t pool;  // max pooling window = stride after the ReLU; 1 = none
};
struct CnnSpec {
  int64_t C, H, W;              // input per sample
  std::vector<ConvSpec> convs;  // 3x3 convolutions, stride 1, each followed by ReLU (and pooling)
  std::vector<int64_t> hidden;  // dense layers with ReLU
  int64_t classes;
};

// model3 of bench/compare_pytorch.py (150x150x3, six 3x3 'same' convolutions, dense 1024, 6 classes).
inline CnnSpec model3_spec() {
  return {3, 150, 150, {{32, true, 3}, {64, true, 2}, {128, true, 2}, {256, true, 2}, {512, true, 1}, {1024, true, 1}},
          {1024}, 6};
}

// int32 array on the host or the device.
class IntArray {
 public:
  IntArray(int64_t n, Device dev) : dev_(dev) {
    if (dev == Device::CUDA)
      d_ = cuda::DeviceBuffer<int32_t>(n);
    else
      h_.resize(static_cast<size_t>(n));
  }
  int32_t* get() { return dev_ == Device::CUDA ? d_.get() : h_.data(); }
  void assign(const std::vector<int32_t>& v) {
    if (dev_ == Device::CUDA)
      d_.upload(v);
    else
      h_ = v;
  }

 private:
  Device dev_;
  std::vector<int32_t> h_;
  cuda::DeviceBuffer<int32_t> d_;
};

template <class T>
class PlainCnn {
 public:
  PlainCnn(const CnnSpec& s, int64_t batch, Device dev, uint64_t seed, T lr = T(1e-3))
      : dev_(dev), N_(batch), lr_(lr), labels_(batch, dev) {
    relu_.kind = kernels::cpu::Act::ReLU;
    Rng rng(seed);
    int64_t C = s.C, H = s.H, W = s.W;
    for (const ConvSpec& cs : s.convs) {
      auto b = std::make_unique<ConvBlock>();
      b->g = kernels::cpu::make_conv_geom(N_, C, H, W, cs.cout, 3, 3, 1, 1,
                                          cs.same ? kernels::cpu::Padding::Same : kernels::cpu::Padding::Valid);
      b->w = param({cs.cout, C, 3, 3}, 9 * C, rng);
      b->b = param({cs.cout}, 0, rng);
      const Shape ys = {N_, cs.cout, b->g.OH, b->g.OW};
      b->z = Tensor<T>::empty(ys, dev);
      b->a = Tensor<T>::empty(ys, dev);
      b->dz = Tensor<T>::empty(ys, dev);
      b->da = Tensor<T>::empty(ys, dev);
      C = cs.cout, H = b->g.OH, W = b->g.OW;
      if (cs.pool > 1) {
        b->pg = kernels::cpu::make_conv_geom(N_, C, H, W, C, cs.pool, cs.pool, cs.pool, cs.pool,
                                             kernels::cpu::Padding::Valid);
        const Shape ps = {N_, C, b->pg.OH, b->pg.OW};
        b->p = Tensor<T>::empty(ps, dev);
        b->dp = Tensor<T>::empty(ps, dev);
        b->argmax = std::make_unique<IntArray>(N_ * C * b->pg.OH * b->pg.OW, dev);
        H = b->pg.OH, W = b->pg.OW;
      }
      convs_.push_back(std::move(b));
    }
    int64_t I = C * H * W;
    std::vector<int64_t> widths = s.hidden;
    widths.push_back(s.classes);
    for (size_t j = 0; j < widths.size(); ++j) {
      auto d = std::make_unique<DenseBlock>();
      d->I = I;
      d->O = widths[j];
      d->w = param({I, d->O}, I, rng);
      d->b = param({d->O}, 0, rng);
      d->z = Tensor<T>::empty({N_, d->O}, dev);
      d->a = Tensor<T>::empty({N_, d->O}, dev);
      d->dz = Tensor<T>::empty({N_, d->O}, dev);
      d->da = Tensor<T>::empty({N_, d->O}, dev);
      d->dx = Tensor<T>::empty({N_, I}, dev);
      dense_.push_back(std::move(d));
      I = widths[j];
    }
    K_ = s.classes;
    probs_ = Tensor<T>::empty({N_, K_}, dev);
    losses_ = Tensor<T>::empty({N_}, dev);
    scale_ = Tensor<T>::empty({N_}, dev);
    scale_.fill(T(1) / static_cast<T>(N_));  // d(mean loss)/d(loss_n)
    for (auto& b : convs_) params_.insert(params_.end(), {&b->w, &b->b});  // blocks live on the heap:
    for (auto& d : dense_) params_.insert(params_.end(), {&d->w, &d->b});  // the pointers stay valid
  }

  void set_labels(const std::vector<int32_t>& labels) { labels_.assign(labels); }

  // Forward to the per-sample losses (probs_ and losses_); x: [N, C, H, W] on the model's device.
  void forward(const Tensor<T>& x) {
    const T* cur = x.data();
    for (auto& bp : convs_) {
      ConvBlock& b = *bp;
      backend::conv2d_forward(dev_, cur, b.w.v.data(), static_cast<const T*>(b.b.v.data()), b.g, b.z.data());
      backend::activation_forward(dev_, relu_, static_cast<const T*>(b.z.data()), b.a.data(), b.z.numel());
      cur = b.a.data();
      if (b.argmax) {
        backend::max_pool2d_forward(dev_, cur, b.pg, b.p.data(), b.argmax->get());
        cur = b.p.data();
      }
    }
    for (size_t j = 0; j < dense_.size(); ++j) {
      DenseBlock& d = *dense_[j];
      backend::gemm(dev_, false, false, N_, d.O, d.I, T(1), cur, d.I, static_cast<const T*>(d.w.v.data()), d.O, T(0),
                    d.z.data(), d.O);
      backend::add_bias_rows(dev_, d.z.data(), static_cast<const T*>(d.b.v.data()), N_, d.O);
      if (j + 1 < dense_.size()) {
        backend::activation_forward(dev_, relu_, static_cast<const T*>(d.z.data()), d.a.data(), d.z.numel());
        cur = d.a.data();
      }
    }
    backend::softmax_cross_entropy_forward(dev_, static_cast<const T*>(dense_.back()->z.data()),
                                           static_cast<const int32_t*>(labels_.get()), static_cast<const T*>(nullptr),
                                           T(0), probs_.data(), losses_.data(), N_, K_);
  }

  // forward, backward of the mean loss, one Adam step.
  void train_step(const Tensor<T>& x) {
    input_ = x.data();
    for (Param* p : params_) p->g.fill(T(0));
    forward(x);
    // Dense head, last layer first: dy = dz of layer j; dx of layer j feeds layer j-1 (or the convolutions).
    DenseBlock& last = *dense_.back();
    last.dz.fill(T(0));
    backend::softmax_cross_entropy_backward(dev_, static_cast<const T*>(probs_.data()),
                                            static_cast<const int32_t*>(labels_.get()), static_cast<const T*>(nullptr),
                                            T(0), static_cast<const T*>(scale_.data()), last.dz.data(), N_, K_);
    for (size_t jj = dense_.size(); jj-- > 0;) {
      DenseBlock& d = *dense_[jj];
      if (jj + 1 < dense_.size()) {  // through the ReLU: dz += relu'(z) * da
        d.dz.fill(T(0));
        backend::activation_backward(dev_, relu_, static_cast<const T*>(d.z.data()), static_cast<const T*>(d.a.data()),
                                     static_cast<const T*>(d.da.data()), d.dz.data(), d.z.numel());
      }
      const T* in = jj > 0 ? dense_[jj - 1]->a.data() : conv_output();
      backend::gemm(dev_, true, false, d.I, d.O, N_, T(1), in, d.I, static_cast<const T*>(d.dz.data()), d.O, T(1),
                    d.w.g.data(), d.O);
      backend::sum_rows_add(dev_, static_cast<const T*>(d.dz.data()), d.b.g.data(), N_, d.O);
      // The first dense layer's input gradient goes straight into the last block's output gradient.
      T* dx = jj > 0 ? dense_[jj - 1]->da.data() : convs_.empty() ? d.dx.data() : out_grad(*convs_.back()).data();
      backend::gemm(dev_, false, true, N_, d.I, d.O, T(1), static_cast<const T*>(d.dz.data()), d.O,
                    static_cast<const T*>(d.w.v.data()), d.O, T(0), dx, d.I);
    }
    // Convolutions, last block first; the gradient of a block's output is in dp (pooled) or da.
    for (size_t ii = convs_.size(); ii-- > 0;) {
      ConvBlock& b = *convs_[ii];
      if (b.argmax) {
        b.da.fill(T(0));
        backend::max_pool2d_backward(dev_, static_cast<const T*>(b.dp.data()),
                                     static_cast<const int32_t*>(b.argmax->get()), b.pg, b.da.data());
      }
      b.dz.fill(T(0));
      backend::activation_backward(dev_, relu_, static_cast<const T*>(b.z.data()), static_cast<const T*>(b.a.data()),
                                   static_cast<const T*>(b.da.data()), b.dz.data(), b.z.numel());
      const T* in = ii > 0 ? block_output(*convs_[ii - 1]) : input_;
      backend::conv2d_backward_filter(dev_, in, static_cast<const T*>(b.dz.data()), b.g, b.w.g.data(), b.b.g.data());
      if (ii > 0) {
        Tensor<T>& target = out_grad(*convs_[ii - 1]);
        target.fill(T(0));
        backend::conv2d_backward_data(dev_, static_cast<const T*>(b.dz.data()), static_cast<const T*>(b.w.v.data()),
                                      b.g, target.data());
      }
    }
    ++step_;
    for (Param* p : params_)
      backend::adam_update(dev_, p->v.data(), static_cast<const T*>(p->g.data()), p->m.data(), p->s.data(),
                           p->v.numel(), lr_, T(0.9), T(0.999), T(1e-7), step_, T(0), false);
  }

  // Mean loss and training-batch accuracy of the last forward (copies N values to the host).
  double mean_loss() const {
    double s = 0;
    for (T v : losses_.to_vector()) s += static_cast<double>(v);
    return s / static_cast<double>(N_);
  }
  double accuracy(const std::vector<int32_t>& labels) const {
    const std::vector<T> p = probs_.to_vector();
    int64_t ok = 0;
    for (int64_t n = 0; n < N_; ++n) {
      int64_t best = 0;
      for (int64_t k = 1; k < K_; ++k)
        if (p[n * K_ + k] > p[n * K_ + best]) best = k;
      ok += best == labels[n];
    }
    return static_cast<double>(ok) / static_cast<double>(N_);
  }
  // The weights, first convolution first, then their gradients from the last train_step (host copies).
  std::vector<std::vector<T>> weights() const {
    std::vector<std::vector<T>> w;
    for (const Param* p : params_) w.push_back(p->v.to_vector());
    return w;
  }
  std::vector<std::vector<T>> gradients() const {
    std::vector<std::vector<T>> g;
    for (const Param* p : params_) g.push_back(p->g.to_vector());
    return g;
  }
  // Overwrites parameter i (in weights() order) with host values (gradient checks).
  void set_weight(size_t i, const std::vector<T>& v) {
    params_.at(i)->v.copy_from(Tensor<T>::from(params_.at(i)->v.shape(), v));
  }

 private:
  struct Param {
    Tensor<T> v, g, m, s;  // value, gradient, Adam moments
  };
  struct ConvBlock {
    Conv2DGeom g, pg;
    Param w, b;
    Tensor<T> z, a, dz, da, p, dp;
    std::unique_ptr<IntArray> argmax;  // null: no pooling
  };
  struct DenseBlock {
    int64_t I = 0, O = 0;
    Param w, b;
    Tensor<T> z, a, dz, da, dx;
  };

  // He-uniform weights (fan_in > 0) or zero biases, drawn on the host from `rng` either way.
  Param param(const Shape& shape, int64_t fan_in, Rng& rng) {
    Param p;
    p.v = Tensor<T>::empty(shape, dev_);
    if (fan_in > 0) {
      const T lim = static_cast<T>(std::sqrt(6.0 / static_cast<double>(fan_in)));
      p.v.fill_uniform(-lim, lim, rng);
    } else {
      p.v.fill(T(0));
    }
    p.g = Tensor<T>::zeros(shape, dev_);
    p.m = Tensor<T>::zeros(shape, dev_);
    p.s = Tensor<T>::zeros(shape, dev_);
    return p;
  }
  static const T* block_output(const ConvBlock& b) { return b.argmax ? b.p.data() : b.a.data(); }
  const T* conv_output() const { return convs_.empty() ? input_ : block_output(*convs_.back()); }
  static Tensor<T>& out_grad(ConvBlock& b) { return b.argmax ? b.dp : b.da; }

  Device dev_;
  int64_t N_, K_ = 0;
  T lr_;
  int64_t step_ = 0;
  kernels::cpu::ActParams<T> relu_;
  IntArray labels_;
  std::vector<std::unique_ptr<ConvBlock>> convs_;
  std::vector<std::unique_ptr<DenseBlock>> dense_;
  std::vector<Param*> params_;
  Tensor<T> probs_, losses_, scale_;
  const T* input_ = nullptr;
};

}  // namespace tinycnn::gpu_bench
