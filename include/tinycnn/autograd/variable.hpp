#pragma once
// Define-by-run autograd. A Var<T> is a shared handle to a node holding a value, a gradient and,
// for results of differentiable ops, the inputs and a backward function. backward() walks the
// recorded graph in reverse topological order; every backward function ADDS into its inputs'
// gradients (so a value feeding several ops, e.g. a residual connection, accumulates), and the
// graph is freed as it is consumed.
#include <functional>
#include <memory>
#include <unordered_set>
#include <utility>
#include <vector>

#include "../backend/dispatch.hpp"
#include "../core/tensor.hpp"

namespace tinycnn {

// Gradient recording switch (per thread). NoGradGuard turns it off for inference.
inline bool& grad_enabled() {
  static thread_local bool on = true;
  return on;
}
struct NoGradGuard {
  bool prev;
  NoGradGuard() : prev(grad_enabled()) { grad_enabled() = false; }
  ~NoGradGuard() { grad_enabled() = prev; }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;
};

template <class T>
struct VarNode {
  Tensor<T> value;
  Tensor<T> grad;  // allocated (zeros) on the first accumulation
  // zero_grad() only marks the gradient: its stale contents read as zeros. The fill happens when
  // something adds into it or reads it (grad_buffer, Var::grad); an op that writes every element
  // (input_grad_fresh) skips it. A dense layer's weight gradient is then written by its GEMM with
  // beta = 0 instead of being zero-filled and read back (2 x 151 MB per step for model3's).
  bool grad_zero_pending = false;
  bool requires_grad = false;
  // Where value is a fused ReLU's output (conv2d with relu): its cap (0: uncapped), else negative.
  // A consumer whose backward applies that ReLU's mask at no cost (max pooling: a window's mask is its
  // pooled value's) writes its gradient masked and sets grad_masked; any other write into grad clears
  // it (grad_buffer, input_grad_fresh), so the producer skips its own pass over y and dY only when
  // every contribution came masked.
  T relu_cap = T(-1);
  bool grad_masked = false;
  const char* op = "leaf";
  std::vector<std::shared_ptr<VarNode>> inputs;
  std::function<void(VarNode&)> backward_fn;  // reads this->grad, adds into inputs' grads

  Tensor<T>& grad_buffer() {
    grad_masked = false;  // the caller adds an unmasked contribution
    if (!grad.defined()) grad = Tensor<T>::zeros(value.shape(), value.device());  // where the value lives
    materialize_grad();
    return grad;
  }
  void materialize_grad() {
    if (grad_zero_pending) {
      grad.fill(T(0));
      grad_zero_pending = false;
    }
  }
};

template <class T>
class Var {
 public:
  Var() = default;
  explicit Var(Tensor<T> value, bool requires_grad = false) : n_(std::make_shared<VarNode<T>>()) {
    n_->value = std::move(value);
    n_->requires_grad = requires_grad;
  }
  explicit Var(std::shared_ptr<VarNode<T>> n) : n_(std::move(n)) {}

  bool defined() const { return n_ != nullptr; }
  const Tensor<T>& value() const { return n_->value; }
  Tensor<T>& value() { return n_->value; }
  const Shape& shape() const { return n_->value.shape(); }
  bool requires_grad() const { return n_ && n_->requires_grad; }
  void set_requires_grad(bool r) { n_->requires_grad = r; }
  // The accumulated gradient (undefined Tensor until a backward pass reached this Var).
  const Tensor<T>& grad() const {
    n_->materialize_grad();
    return n_->grad;
  }
  Tensor<T>& grad() {
    n_->materialize_grad();
    return n_->grad;
  }
  // Zeros the gradient (deferred: see VarNode::grad_zero_pending; grad() always reads zeros after it).
  void zero_grad() {
    if (n_->grad.defined()) n_->grad_zero_pending = true;
  }
  VarNode<T>* node() const { return n_.get(); }
  const std::shared_ptr<VarNode<T>>& node_ptr() const { return n_; }

  // Backpropagates from this Var: a scalar (one element) gets seed 1.
  void backward() {
    if (n_->value.numel() != 1) throw_shape("backward", "backward() without a seed needs a one-element output", shape());
    backward(Tensor<T>::full(shape(), T(1), n_->value.device()));
  }
  // Backpropagates with an explicit output gradient (cotangent) of this Var's shape.
  void backward(const Tensor<T>& seed) {
    if (seed.shape() != shape()) throw_shape("backward", "seed shape differs from output", seed.shape(), shape());
    if (!n_->requires_grad) throw ValueError("backward: the output does not require grad (no parameter or input feeds it, or it was computed under NoGradGuard)");
    // Shared pointers keep every node alive until the walk ends, although freeing a node's input list
    // below may drop the last other reference to an interior node.
    std::vector<std::shared_ptr<VarNode<T>>> order = topo_order(n_);
    Tensor<T>& g = n_->grad_buffer();
    const Tensor<T> s = seed.to(g.device());  // a host seed (the default 1) for a device output is uploaded
    backend::add_scaled(g.device(), s.data(), T(1), g.data(), g.numel());
    // Reverse topological order: a node runs only after every consumer has added its part.
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      VarNode<T>* node = it->get();
      if (node->backward_fn && node->grad.defined()) {
        node->materialize_grad();  // a zero_grad on an interior result: its backward reads zeros
        node->backward_fn(*node);
      }
      if (node->backward_fn) {  // interior node: free the graph and the intermediate gradient
        node->backward_fn = nullptr;
        node->inputs.clear();
        node->grad = Tensor<T>();
        node->grad_masked = false;
      }
    }
  }

 private:
  static std::vector<std::shared_ptr<VarNode<T>>> topo_order(const std::shared_ptr<VarNode<T>>& root) {
    std::vector<std::shared_ptr<VarNode<T>>> order;
    std::unordered_set<VarNode<T>*> seen;
    std::vector<std::pair<std::shared_ptr<VarNode<T>>, size_t>> stack{{root, 0}};
    seen.insert(root.get());
    while (!stack.empty()) {  // iterative post-order DFS: deep nets must not overflow the C++ stack
      auto& [node, next] = stack.back();
      if (next < node->inputs.size()) {
        std::shared_ptr<VarNode<T>> in = node->inputs[next++];
        if (in->requires_grad && seen.insert(in.get()).second) stack.push_back({in, 0});
      } else {
        order.push_back(node);
        stack.pop_back();
      }
    }
    return order;
  }

  std::shared_ptr<VarNode<T>> n_;
};

// Creates the result of a differentiable op. The backward function is recorded only when grad mode
// is on and some input requires grad; otherwise the result is a plain constant.
template <class T>
Var<T> make_result(Tensor<T> value, const std::vector<Var<T>>& inputs, const char* op,
                   std::function<void(VarNode<T>&)> backward_fn) {
  Var<T> out(std::move(value));
  bool needs = false;
  if (grad_enabled())
    for (const Var<T>& v : inputs) needs = needs || v.requires_grad();
  if (needs) {
    VarNode<T>* n = out.node();
    n->requires_grad = true;
    n->op = op;
    for (const Var<T>& v : inputs) n->inputs.push_back(v.node_ptr());
    n->backward_fn = std::move(backward_fn);
  }
  return out;
}

// The device every input of an op lives on; inputs on different devices are an Error naming the op
// (nothing is copied implicitly: move the model and its inputs with to(Device)).
template <class T>
Device same_device(const char* op, std::initializer_list<const Tensor<T>*> ts) {
  Device d = Device::CPU;
  bool first = true;
  for (const Tensor<T>* t : ts) {
    if (!t || !t->defined()) continue;
    if (first) {
      d = t->device();
      first = false;
    } else if (t->device() != d) {
      throw Error(std::string(op) + ": inputs live on different devices (" + device_name(d) + " and " +
                  device_name(t->device()) + "); move the model and the data to one device with to(Device)");
    }
  }
  return d;
}

// Gradient buffer of the i-th input of a node, or nullptr when that input needs no gradient.
template <class T>
T* input_grad(VarNode<T>& node, size_t i) {
  VarNode<T>* in = node.inputs[i].get();
  return in->requires_grad ? in->grad_buffer().data() : nullptr;
}

// The same for an op whose backward writes every element of that gradient: when no gradient has
// reached the input yet (or zero_grad zeroed it), the buffer is left unfilled and *assign is set, and
// the op writes (=) instead of adding into zeros (a zero fill of every activation's gradient was 6-8%
// of a MobileNet step).
template <class T>
T* input_grad_fresh(VarNode<T>& node, size_t i, bool* assign) {
  VarNode<T>* in = node.inputs[i].get();
  *assign = false;
  if (!in->requires_grad) return nullptr;
  in->grad_masked = false;  // the caller writes an unmasked contribution (a masking one sets it again)
  if (!in->grad.defined()) {
    in->grad = Tensor<T>::empty(in->value.shape(), in->value.device());  // NaN in poison mode: must be written
    *assign = true;
  } else if (in->grad_zero_pending) {  // zeroed by zero_grad: overwrite instead of filling and adding
    in->grad_zero_pending = false;
    *assign = true;
  }
  return in->grad.data();
}

}  // namespace tinycnn
