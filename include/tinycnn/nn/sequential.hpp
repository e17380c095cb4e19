#pragma once
// Sequential: a plain stack of single-input layers, built from the first input it sees (or build()).
//   nn::Sequential<float> m(seed);
//   m.add<nn::Conv2D>(32, 3, 1, "same", "relu");  // filters, kernel, strides, padding, activation  m.add<nn::Flatten>();  m.add<nn::Dense>(10);
#include "inference_fusion.hpp"
#include "model.hpp"

namespace tinycnn::nn {

template <class T>
class Sequential : public Model<T> {
 public:
  explicit Sequential(uint64_t seed = 0) : Model<T>(seed) {}
  std::string type() const override { return "Sequential"; }

  template <template <class> class L, class... Args>
  L<T>& add(Args&&... args) {
    auto l = std::make_unique<L<T>>(std::forward<Args>(args)...);
    L<T>& ref = *l;
    add(std::move(l));
    return ref;
  }
  Layer<T>& add(std::unique_ptr<Layer<T>> l) {
    this->name_layer(*l);
    l->set_training(this->training_);
    this->entries_.push_back({std::move(l), {}, {static_cast<int>(this->entries_.size()) - 1}});
    if (this->built_) build_entry(this->entries_.size() - 1);
    return *this->entries_.back().layer;
  }
  // Removes the last layer (e.g. a classifier head before adding a new one).
  void pop() {
    if (this->entries_.empty()) throw ValueError("Sequential::pop: the model has no layers");
    this->entries_.pop_back();
  }

  void build(const Shape& input_shape) override {
    if (this->built_) {  // building twice must not re-initialise the weights
      if (input_shape != this->input_shape_)
        throw_shape("Sequential::build", "the model is already built for another input shape", input_shape, this->input_shape_);
      return;
    }
    this->input_shape_ = input_shape;
    for (size_t i = 0; i < this->entries_.size(); ++i) build_entry(i);
    this->built_ = true;
  }
  Var<T> forward(const Var<T>& x) override {
    if (!this->built_) {
      if (x.value().rank() < 2) throw_shape("Sequential", "input needs a batch axis", x.shape());
      build(Shape(x.shape().begin() + 1, x.shape().end()));
    }
    this->check_input(x);
    Var<T> h = x;
    std::vector<FusionStep<T>> plan;
    if (inference_fusion_applies(this->inference_fusion_ || this->pool_fusion_, x))
      plan = inference_fusion_plan(this->entries_, static_cast<int>(this->entries_.size()) - 1, grad_enabled(),
                                   this->inference_fusion_, this->pool_fusion_, x.shape().at(0));
    for (size_t i = 0; i < this->entries_.size(); ++i) {
      if (fusion_passes(plan, i)) continue;  // a batch norm folded into a later layer
      if (fusion_step_runs(plan, i, h)) {  // conv -> bn [-> relu], or conv -> max pooling, as one step
        h = run_fusion_step(this->entries_, i, plan[i], h);
        i = static_cast<size_t>(plan[i].tail);
      } else {
        h = this->entries_[i].layer->forward({h});
      }
    }
    return h;
  }

 private:
  void build_entry(size_t i) {
    auto& e = this->entries_[i];
    const Shape in = i == 0 ? this->input_shape_ : this->entries_[i - 1].output_shape;
    if (e.layer->built())
      throw ValueError("Sequential: layer '" + e.layer->name() + "' was already built elsewhere; add a fresh layer");
    e.output_shape = e.layer->build({in}, this->rng_);
    e.layer->mark_built();
  }
};

}  // namespace tinycnn::nn
