#pragma once
// Graph: a functional model (any DAG, e.g. residual blocks), built eagerly as layers are added.
//   nn::Graph<float> g({3, 32, 32});
//   auto x = g.input();
//   auto y = g.add<nn::Conv2D>({x}, 16, 3, 1, "same");
//   auto z = g.add<nn::Add>({x, y});
//   g.set_output(z);
#include "inference_fusion.hpp"
#include "model.hpp"

namespace tinycnn::nn {

template <class T>
class Graph : public Model<T> {
 public:
  struct Node {
    int id;  // -1 = the model input, otherwise the index of the producing layer
  };
  explicit Graph(Shape input_shape, uint64_t seed = 0) : Model<T>(seed) {
    this->input_shape_ = std::move(input_shape);
    this->built_ = true;
  }
  std::string type() const override { return "Functional"; }
  Node input() const { return Node{-1}; }

  template <template <class> class L, class... Args>
  Node add(std::vector<Node> inputs, Args&&... args) {
    return add(std::make_unique<L<T>>(std::forward<Args>(args)...), std::move(inputs));
  }
  Node add(std::unique_ptr<Layer<T>> l, std::vector<Node> inputs) {
    this->name_layer(*l);
    l->set_training(this->training_);
    std::vector<Shape> shapes;
    std::vector<int> ids;
    for (Node n : inputs) {
      if (n.id < -1 || n.id >= static_cast<int>(this->entries_.size()))
        throw ValueError("Graph::add: input node " + std::to_string(n.id) + " does not exist");
      shapes.push_back(n.id < 0 ? this->input_shape_ : this->entries_[n.id].output_shape);
      ids.push_back(n.id);
    }
    Shape out = l->build(shapes, this->rng_);
    l->mark_built();
    this->entries_.push_back({std::move(l), out, ids});
    output_ = static_cast<int>(this->entries_.size()) - 1;
    return Node{output_};
  }
  // The node whose value forward() returns (default: the last layer added).
  void set_output(Node n) { output_ = n.id; }
  // Node id forward() returns (-1 = the input itself); model files store it.
  int output_id() const { return output_; }

  void build(const Shape& input_shape) override {
    if (input_shape != this->input_shape_) throw_shape("Graph::build", "the graph was built for another input shape", input_shape, this->input_shape_);
  }
  // Each node's value is dropped after its last consumer has run, as a reference-counted framework
  // does: under NoGradGuard nothing else holds it, so inference keeps only the live activations (the
  // shipped three-member ensemble held every layer's output: 3.6 GB at batch 32); in training the
  // consumers' autograd nodes keep what backward needs.
  Var<T> forward(const Var<T>& x) override {
    this->check_input(x);
    const size_t n = this->entries_.size();
    std::vector<size_t> last_use(n, 0);
    for (size_t i = 0; i < n; ++i)
      for (int id : this->entries_[i].inputs)
        if (id >= 0) last_use[static_cast<size_t>(id)] = i;
    if (output_ >= 0) last_use[static_cast<size_t>(output_)] = n;  // returned: never dropped
    std::vector<FusionStep<T>> plan;
    if (inference_fusion_applies(this->inference_fusion_ || this->pool_fusion_, x))
      plan = inference_fusion_plan(this->entries_, output_, grad_enabled(), this->inference_fusion_,
                                   this->pool_fusion_, x.shape().at(0));
    std::vector<char> absorbed(n, 0);  // computed by the fused step of the chain's convolution
    std::vector<Var<T>> vals(n);
    for (size_t i = 0; i < n; ++i) {
      if (absorbed[i]) continue;  // its only input, the chain's previous link, never had a value
      std::vector<Var<T>> in;
      for (int id : this->entries_[i].inputs) in.push_back(id < 0 ? x : vals[id]);
      if (fusion_passes(plan, i)) {
        vals[i] = in.at(0);  // a batch norm folded into a later layer
      } else if (fusion_step_runs(plan, i, in.empty() ? x : in[0])) {
        const FusionStep<T>& s = plan[i];
        vals[static_cast<size_t>(s.tail)] = run_fusion_step(this->entries_, i, s, in.at(0));
        for (int id : fusion_step_absorbs(s)) absorbed[static_cast<size_t>(id)] = 1;
        if (last_use[static_cast<size_t>(s.tail)] == 0) vals[static_cast<size_t>(s.tail)] = Var<T>();  // a dead end
      } else {
        vals[i] = this->entries_[i].layer->forward(in);
      }
      in.clear();
      for (int id : this->entries_[i].inputs)
        if (id >= 0 && last_use[static_cast<size_t>(id)] == i) vals[static_cast<size_t>(id)] = Var<T>();
      if (last_use[i] == 0) vals[i] = Var<T>();  // a dead end: neither consumed nor returned
    }
    return output_ < 0 ? x : vals[static_cast<size_t>(output_)];
  }
  Shape output_shape() const override { return output_shape_of(Node{output_}); }
  Shape output_shape_of(Node n) const { return n.id < 0 ? this->input_shape_ : this->entries_[n.id].output_shape; }

 private:
  int output_ = -1;
};

}  // namespace tinycnn::nn
