#pragma once
// The uniform layer contract.
//
// A layer is built once from its per-sample input shape(s) — no batch axis; images are [C, H, W] —
// creating its weights with Keras' default initialisers, and returns its per-sample output shape.
// No layer asks the user for its input size. forward() takes batched Vars ([N, ...]) and records
// autograd ops. parameters() are trainable leaves; buffers() are non-trainable state (e.g. batch-norm
// running statistics) that Keras also counts as non-trainable parameters. config() lists the
// hyperparameters, in a JSON-free form that io/ turns into the model file's architecture.
#include <cctype>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "../autograd/ops/pool.hpp"
#include "../autograd/variable.hpp"
#include "../core/random.hpp"

namespace tinycnn::nn {

using ConfigValue = std::variant<bool, int64_t, double, std::string, std::vector<int64_t>, std::vector<double>>;
using Config = std::vector<std::pair<std::string, ConfigValue>>;

template <class T>
using NamedVar = std::pair<std::string, Var<T>>;

// A per-channel affine y = x * scale + shift (a batch norm on its moving statistics) that inference
// fusion folds into a neighbouring layer's weights (nn/inference_fusion.hpp).
template <class T>
struct ChannelAffine {
  Tensor<T> scale, shift;  // [C]
  bool defined() const { return scale.defined(); }
};

template <class T>
class Layer {
 public:
  explicit Layer(std::string name = "") : name_(std::move(name)) {}
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  // Keras class name, e.g. "Conv2D"; used by summary() and the model file.
  virtual std::string type() const = 0;
  // Creates weights for these per-sample input shapes; returns the per-sample output shape.
  virtual Shape build(const std::vector<Shape>& inputs, Rng& rng) = 0;
  virtual Var<T> forward(const std::vector<Var<T>>& inputs) = 0;
  Var<T> operator()(const Var<T>& x) { return forward({x}); }

  virtual std::vector<NamedVar<T>> parameters() { return {}; }
  virtual std::vector<NamedVar<T>> buffers() { return {}; }
  virtual Config config() const { return {}; }

  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }
  bool built() const { return built_; }
  void mark_built() { built_ = true; }
  // Training mode (dropout active, batch norm uses batch statistics). A frozen layer (trainable
  // false) behaves as in inference and its parameters are not updated, as in Keras.
  virtual void set_training(bool t) { training_ = t; }
  bool training() const { return training_ && trainable_; }
  bool trainable() const { return trainable_; }
  void set_trainable(bool t) { trainable_ = t; }

  int64_t count_params() { return count(parameters()) + count(buffers()); }

  // Inference fusion (nn/inference_fusion.hpp: models fuse conv -> batch norm [-> ReLU] where no
  // gradient is needed). Three roles, each layer taking the ones it can play:
  // - a per-channel affine in inference: writes scale and shift [C] (y = x * scale + shift) and
  //   returns true; batch norm on its moving statistics does;
  virtual bool inference_affine(Tensor<T>& /*scale*/, Tensor<T>& /*shift*/) const { return false; }
  // - a ReLU with cap max_value (0 = none): returns true and sets it;
  virtual bool fusable_relu(T& /*max_value*/) const { return false; }
  // - a layer linear per output channel (no activation of its own) that can run with that affine
  //   folded into its weights and the ReLU applied to its output: forward_folded() computes
  //   relu?(affine(forward(x))) for batched x, rounding differently from the separate layers only.
  //   `input` (nullptr: none) is an affine folded in on the input side as well (below).
  virtual bool can_fold_affine() const { return false; }
  virtual Var<T> forward_folded(const Var<T>& /*x*/, const Tensor<T>& /*scale*/, const Tensor<T>& /*shift*/,
                                bool /*relu*/, T /*relu_max*/, const ChannelAffine<T>* /*input*/) {
    throw Error(type() + " '" + name() + "': cannot fold a following affine");
  }
  // - a layer whose input carries nothing padded, so that a per-channel affine of its input (the
  //   batch norm before a 'valid' convolution or a dense layer) folds into its weights:
  //   can_fold_input_affine(C) says whether an affine of C channels (the input's axis 1) does, and
  //   forward_input_folded(x, input) computes forward(x * scale + shift);
  virtual bool can_fold_input_affine(int64_t /*channels*/) const { return false; }
  virtual Var<T> forward_input_folded(const Var<T>& /*x*/, const ChannelAffine<T>& /*input*/) {
    throw Error(type() + " '" + name() + "': cannot fold a preceding affine");
  }
  // - a layer that is the identity in inference (Dropout): such links may stand between that batch
  //   norm and the layer it folds into.
  virtual bool inference_identity() const { return false; }
  // Pool fusion (nn/inference_fusion.hpp: a convolution followed by max pooling runs as one op,
  // ops::conv2d_max_pool2d, in training and inference). Two roles:
  // - a max pooling: writes its window and returns true;
  virtual bool fusable_max_pool(ops::MaxPoolSpec& /*pool*/) const { return false; }
  // - a layer that can end its forward in that pooling: forward_max_pooled(x, pool) computes the
  //   pooling of forward(x), with the same values and gradients up to rounding (`input`: as above).
  virtual bool can_fuse_max_pool() const { return false; }
  virtual Var<T> forward_max_pooled(const Var<T>& /*x*/, const ops::MaxPoolSpec& /*pool*/,
                                    const ChannelAffine<T>* /*input*/) {
    throw Error(type() + " '" + name() + "': cannot fuse a following max pooling");
  }

 protected:
  // A parameter as forward() passes it to the ops: a frozen layer passes a constant handle on the same
  // tensor, so backward neither computes its gradient nor runs through the layer at all when nothing
  // below it trains (PyTorch's requires_grad = False, Keras's frozen layers). Phase-1 transfer learning
  // (a frozen MobileNet base) used to run the whole base's backward for gradients nobody applied.
  Var<T> param_for_forward(const Var<T>& p) const {
    return trainable_ || !p.requires_grad() ? p : Var<T>(p.value(), false);
  }
  static int64_t count(const std::vector<NamedVar<T>>& vs) {
    int64_t n = 0;
    for (const auto& v : vs) n += v.second.value().numel();
    return n;
  }
  // A trainable leaf of the given shape.
  static Var<T> make_param(const Shape& s) { return Var<T>(Tensor<T>(s), true); }
  static void glorot_uniform(Var<T>& w, int64_t fan_in, int64_t fan_out, Rng& rng) {
    const double limit = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
    w.value().fill_uniform(static_cast<T>(-limit), static_cast<T>(limit), rng);
  }

 private:
  std::string name_;
  bool built_ = false;
  bool training_ = true;
  bool trainable_ = true;
};

// Base for single-input layers: implement build1() and forward1().
template <class T>
class UnaryLayer : public Layer<T> {
 public:
  using Layer<T>::Layer;
  Shape build(const std::vector<Shape>& in, Rng& rng) override {
    if (in.size() != 1) throw ValueError(this->type() + " '" + this->name() + "': takes one input, got " + std::to_string(in.size()));
    return build1(in[0], rng);
  }
  Var<T> forward(const std::vector<Var<T>>& in) override {
    if (in.size() != 1) throw ValueError(this->type() + " '" + this->name() + "': takes one input, got " + std::to_string(in.size()));
    return forward1(in[0]);
  }
  virtual Shape build1(const Shape& in, Rng& rng) = 0;
  virtual Var<T> forward1(const Var<T>& x) = 0;
};

// "Conv2D" -> "conv2d", "BatchNormalization" -> "batch_normalization" (Keras' default layer names).
inline std::string snake_case(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (std::isupper(static_cast<unsigned char>(c))) {
      if (i > 0 && (std::islower(static_cast<unsigned char>(s[i - 1])) ||
                    (i + 1 < s.size() && std::islower(static_cast<unsigned char>(s[i + 1])) &&
                     std::isupper(static_cast<unsigned char>(s[i - 1])))))
        out += '_';
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace tinycnn::nn
