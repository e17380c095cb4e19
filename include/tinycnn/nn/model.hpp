#pragma once
// Model: what Sequential and Graph (functional DAG) share — the layer list with output shapes,
// stable parameter names ("<layer>/<param>"), train()/eval(), freezing, Keras-style unique names.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
struct LayerEntry {
  std::unique_ptr<Layer<T>> layer;
  Shape output_shape;               // per sample
  std::vector<int> inputs;          // graph node ids feeding it (-1 = model input)
};

template <class T>
class Model {
 public:
  explicit Model(uint64_t seed = 0) : seed_(seed), rng_(seed) {}
  virtual ~Model() = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  virtual std::string type() const = 0;  // "Sequential" or "Functional"
  // Builds every layer for a per-sample input shape ([C, H, W] for images).
  virtual void build(const Shape& input_shape) = 0;
  virtual Var<T> forward(const Var<T>& x) = 0;
  Var<T> operator()(const Var<T>& x) { return forward(x); }
  Tensor<T> operator()(const Tensor<T>& x) { return forward(Var<T>(x)).value(); }

  bool built() const { return built_; }
  const Shape& input_shape() const { return input_shape_; }
  virtual Shape output_shape() const { return entries_.empty() ? input_shape_ : entries_.back().output_shape; }
  const std::vector<LayerEntry<T>>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  Layer<T>& layer(size_t i) { return *entries_.at(i).layer; }
  Layer<T>& layer(const std::string& name) {
    for (auto& e : entries_)
      if (e.layer->name() == name) return *e.layer;
    throw ValueError(type() + ": no layer named '" + name + "'");
  }
  int index_of(const std::string& name) const {
    for (size_t i = 0; i < entries_.size(); ++i)
      if (entries_[i].layer->name() == name) return static_cast<int>(i);
    throw ValueError(type() + ": no layer named '" + name + "'");
  }

  // All parameters ("<layer>/<name>"); with trainable_only, frozen layers are left out.
  std::vector<NamedVar<T>> parameters(bool trainable_only = false) {
    std::vector<NamedVar<T>> out;
    for (auto& e : entries_)
      if (!trainable_only || e.layer->trainable())
        for (auto& p : e.layer->parameters()) out.push_back({e.layer->name() + "/" + p.first, p.second});
    return out;
  }
  std::vector<NamedVar<T>> buffers() {
    std::vector<NamedVar<T>> out;
    for (auto& e : entries_)
      for (auto& b : e.layer->buffers()) out.push_back({e.layer->name() + "/" + b.first, b.second});
    return out;
  }
  void zero_grad() {
    for (auto& p : parameters()) p.second.zero_grad();
  }
  // Moves every parameter, gradient and buffer to `dev` (explicit copies; the layers share the Vars,
  // so they see the moved tensors). All copies are made before any is installed, so a failure (e.g.
  // out of device memory) leaves the model where it was. Inputs must then be on `dev` too:
  // fit/evaluate/predict upload each batch to the model's device. Device::CUDA needs tinycnn::cuda
  // (else an Error says so).
  void to(Device dev) {
    std::vector<NamedVar<T>> vars = parameters();
    for (auto& b : buffers()) vars.push_back(b);
    std::vector<std::pair<Tensor<T>, Tensor<T>>> moved;  // value, grad
    for (auto& v : vars)
      moved.push_back({v.second.value().to(dev),
                       v.second.grad().defined() ? v.second.grad().to(dev) : Tensor<T>()});
    for (size_t i = 0; i < vars.size(); ++i) {
      vars[i].second.value() = moved[i].first;
      vars[i].second.grad() = moved[i].second;
    }
#ifdef TINYCNN_HAS_CUDA
    if (dev == Device::CUDA) {
      cuda::synchronize();  // the copies ran on the caller's stream; the model's own stream must see them
      if (!stream_.handle()) stream_ = cuda::Stream::create();
    }
#endif
  }
#ifdef TINYCNN_HAS_CUDA
  // The model's own CUDA stream (created by to(Device::CUDA)): DeviceScope queues its work there.
  const cuda::Stream& stream() const { return stream_; }
#endif
  // Where the parameters live (CPU for a model without any).
  Device device() {
    for (auto& p : parameters()) return p.second.value().device();
    for (auto& b : buffers()) return b.second.value().device();
    return Device::CPU;
  }
  void train() { set_training(true); }
  void eval() { set_training(false); }
  bool is_training() const { return training_; }
  // Inference fusion (nn/inference_fusion.hpp): on by default; off runs every layer as written.
  void set_inference_fusion(bool on) { inference_fusion_ = on; }
  bool inference_fusion() const { return inference_fusion_; }
  // Pool fusion (nn/inference_fusion.hpp): a convolution and the max pooling after it as one op, in
  // training too; on by default; off runs them as written.
  void set_pool_fusion(bool on) { pool_fusion_ = on; }
  bool pool_fusion() const { return pool_fusion_; }

  // Freezing for transfer learning: frozen layers keep their weights and run in inference mode.
  void set_trainable(const std::string& name, bool trainable) { layer(name).set_trainable(trainable); }
  void set_trainable_range(size_t begin, size_t end, bool trainable) {
    for (size_t i = begin; i < end && i < entries_.size(); ++i) entries_[i].layer->set_trainable(trainable);
  }
  uint64_t seed() const { return seed_; }

 protected:
  void set_training(bool t) {
    training_ = t;
    for (auto& e : entries_) e.layer->set_training(t);
  }
  // Keras-style default names: conv2d, conv2d_1, ...; explicit names must be unique.
  void name_layer(Layer<T>& l) {
    if (l.name().empty()) {
      const std::string base = snake_case(l.type());
      int& k = name_counts_[base];
      std::string n = k == 0 ? base : base + "_" + std::to_string(k);
      ++k;
      while (has_name(n)) n = base + "_" + std::to_string(k++);
      l.set_name(n);
    } else if (has_name(l.name())) {
      throw ValueError(type() + ": a layer named '" + l.name() + "' already exists");
    }
  }
  bool has_name(const std::string& n) const {
    for (auto& e : entries_)
      if (e.layer->name() == n) return true;
    return false;
  }
  void check_input(const Var<T>& x) {
    const Shape& s = x.shape();
    if (s.size() != input_shape_.size() + 1 || !std::equal(input_shape_.begin(), input_shape_.end(), s.begin() + 1)) {
      Shape want{-1};
      want.insert(want.end(), input_shape_.begin(), input_shape_.end());
      throw_shape(type() + " input", "batch shape does not match the model's input (-1 = any batch)", s, want);
    }
  }

  std::vector<LayerEntry<T>> entries_;
  Shape input_shape_;
  bool built_ = false;
  bool training_ = true;
  bool inference_fusion_ = true;
  bool pool_fusion_ = true;
  uint64_t seed_;
  Rng rng_;  // weight initialisation stream
  std::map<std::string, int> name_counts_;
#ifdef TINYCNN_HAS_CUDA
  cuda::Stream stream_;
#endif
};

// For its lifetime, the device work of a model on the GPU is queued on the model's own stream (one
// stream per model: its kernels are ordered without device-wide synchronisation); at the end the
// scope waits for that stream, so work outside it (on the caller's stream) never races with the
// model's; on entry it waits for the caller's stream, for the same reason. fit/evaluate/predict/
// update_batch_norm open one. A no-op for a CPU model or build.
template <class T>
class DeviceScope {
 public:
  explicit DeviceScope(Model<T>& m) {
#ifdef TINYCNN_HAS_CUDA
    if (m.device() == Device::CUDA && m.stream().handle()) {
      cuda::current_stream().synchronize();  // work queued before (e.g. a checkpoint's uploads) is done
      stream_ = m.stream();
      guard_.emplace(stream_);
    }
#else
    (void)m;
#endif
  }
  ~DeviceScope() {
#ifdef TINYCNN_HAS_CUDA
    if (!guard_) return;
    guard_.reset();
    try {
      stream_.synchronize();
    } catch (...) {  // a destructor must not throw; a sticky CUDA error resurfaces at the next call
    }
#endif
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
#ifdef TINYCNN_HAS_CUDA
  cuda::Stream stream_;
  std::optional<cuda::StreamGuard> guard_;
#endif
};

}  // namespace tinycnn::nn
