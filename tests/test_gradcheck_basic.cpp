// float64 gradient checks of the basic ops, activations, losses and dense-family layers.
#include "grad_util.hpp"

using namespace tinycnn;
using tt::rand_t;

TEST_CASE("gradcheck: element-wise ops and reductions") {
  Var<double> a(rand_t({3, 4}, 1)), b(rand_t({3, 4}, 2));
  tt::expect_grad_ok(gradcheck([&] { return ops::add(a, b); }, {a, b}));
  tt::expect_grad_ok(gradcheck([&] { return ops::sub(a, b); }, {a, b}));
  tt::expect_grad_ok(gradcheck([&] { return ops::mul(a, b); }, {a, b}));
  tt::expect_grad_ok(gradcheck([&] { return ops::scale(a, 2.5); }, {a}));
  tt::expect_grad_ok(gradcheck([&] { return ops::mean(a); }, {a}));
  tt::expect_grad_ok(gradcheck([&] { return ops::reshape(a, {4, 3}); }, {a}));
  // reshape and flatten are views (no copy of the activation), with a gradient buffer of their own.
  Var<double> r = ops::flatten(ops::reshape(a, {2, 3, 2}));
  CHECK(r.value().shares_storage_with(a.value()));
  CHECK(r.shape() == Shape{2, 6});
  tt::expect_grad_ok(gradcheck([&] { return ops::mul(ops::flatten(ops::reshape(a, {2, 3, 2})), ops::reshape(b, {2, 6})); }, {a, b}));
  // A value feeding two ops accumulates both contributions.
  tt::expect_grad_ok(gradcheck([&] { return ops::mul(a, ops::add(a, b)); }, {a, b}));
}

TEST_CASE("gradcheck: linear with and without bias") {
  Var<double> x(rand_t({5, 7}, 3)), W(rand_t({7, 4}, 4)), bias(rand_t({4}, 5));
  tt::expect_grad_ok(gradcheck([&] { return ops::linear(x, W, bias); }, {x, W, bias}));
  tt::expect_grad_ok(gradcheck([&] { return ops::linear(x, W, Var<double>()); }, {x, W}));
}

TEST_CASE("gradcheck: activations away from kinks") {
  Var<double> x(rand_t({4, 6}, 6, -3, 3, 0.05));
  tt::expect_grad_ok(gradcheck([&] { return ops::relu(x); }, {x}));
  Var<double> x6(rand_t({4, 6}, 7, -8, 8, 0.05));
  for (int64_t i = 0; i < x6.value().numel(); ++i)
    if (std::fabs(x6.value()[i] - 6) < 0.05) x6.value()[i] += 0.1;
  tt::expect_grad_ok(gradcheck([&] { return ops::relu(x6, 6.0); }, {x6}));
  // fed by another op: the activation's gradient buffer is fresh and written, not added into
  tt::expect_grad_ok(gradcheck([&] { return ops::relu(ops::scale(x6, 1.0), 6.0); }, {x6}));
  tt::expect_grad_ok(gradcheck([&] { return ops::tanh(ops::scale(x, 0.5)); }, {x}));
  tt::expect_grad_ok(gradcheck([&] { return ops::leaky_relu(x, 0.2); }, {x}));
  tt::expect_grad_ok(gradcheck([&] { return ops::sigmoid(x); }, {x}));
  tt::expect_grad_ok(gradcheck([&] { return ops::tanh(x); }, {x}));
  tt::expect_grad_ok(gradcheck([&] { return ops::softmax(x); }, {x}));
}

TEST_CASE("gradcheck: losses") {
  Var<double> logits(rand_t({5, 4}, 8, -2, 2));
  std::vector<int32_t> labels{0, 3, 1, 2, 3};
  tt::expect_grad_ok(gradcheck([&] { return ops::softmax_cross_entropy(logits, labels); }, {logits}));
  ops::CrossEntropyOptions<double> o;
  o.label_smoothing = 0.1;
  o.reduction = ops::Reduction::Sum;
  o.class_weights = {1.0, 2.0, 0.5, 1.5};
  tt::expect_grad_ok(gradcheck([&] { return ops::softmax_cross_entropy(logits, labels, o); }, {logits}));
  Tensor<double> soft = rand_t({5, 4}, 9, 0, 1);
  for (int64_t n = 0; n < 5; ++n) {
    double s = 0;
    for (int k = 0; k < 4; ++k) s += soft[n * 4 + k];
    for (int k = 0; k < 4; ++k) soft[n * 4 + k] /= s;
  }
  tt::expect_grad_ok(gradcheck([&] { return ops::softmax_cross_entropy(logits, soft); }, {logits}));
  Tensor<double> multi = Tensor<double>::from({5, 4}, {1, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0.5, 0, 1, 0});
  tt::expect_grad_ok(gradcheck([&] { return ops::binary_cross_entropy(logits, multi); }, {logits}));
  tt::expect_grad_ok(gradcheck([&] { return ops::mse(logits, multi); }, {logits}));
}

TEST_CASE("gradcheck: Dense and activation layers") {
  nn::Dense<double> d(3, "tanh");
  tt::check_layer(d, {4, 5}, 10);
  nn::Dense<double> d2(3, "", false);
  tt::check_layer(d2, {2, 6}, 11);
  nn::ReLU<double> r(6.0);
  tt::check_layer(r, {3, 4}, 12);
  nn::LeakyReLU<double> lr(0.1);
  tt::check_layer(lr, {3, 4}, 13);
  nn::Sigmoid<double> s;
  tt::check_layer(s, {3, 4}, 14);
  nn::Tanh<double> th;
  tt::check_layer(th, {3, 4}, 20);
  nn::Activation<double> act("sigmoid");
  tt::check_layer(act, {3, 4}, 21);
  nn::Softmax<double> sm;
  tt::check_layer(sm, {3, 4}, 15);
  nn::Flatten<double> f;
  tt::check_layer(f, {2, 3, 2, 2}, 16);
  nn::Reshape<double> rs({-1, 2});
  tt::check_layer(rs, {2, 3, 4}, 17);
}

TEST_CASE("gradcheck: Dropout with a fixed mask stream") {
  nn::Dropout<double> d(0.4);
  Rng rng(3);
  d.build({{10}}, rng);
  Var<double> x(rand_t({4, 10}, 18));
  const std::string state = d.rng().state();
  // Reset the layer's generator before each evaluation so every forward draws the same mask.
  tt::expect_grad_ok(gradcheck([&] { d.rng().set_state(state); return d.forward({x}); }, {x}));
}

TEST_CASE("gradcheck: Average layer over three branches") {
  nn::Graph<double> g({5}, 7);
  auto in = g.input();
  auto a = g.add<nn::Dense>({in}, 5, "tanh");
  auto b = g.add<nn::Dense>({in}, 5);
  g.set_output(g.add<nn::Average>({a, b, in}, "avg"));
  Var<double> x(rand_t({3, 5}, 23));
  std::vector<Var<double>> wrt{x};
  for (auto& p : g.parameters()) wrt.push_back(p.second);
  tt::expect_grad_ok(gradcheck([&] { return g.forward(x); }, wrt));

  nn::Graph<double> bad({5}, 7);
  auto bi = bad.input();
  auto c = bad.add<nn::Dense>({bi}, 4);
  CHECK_THROWS_AS(bad.add<nn::Average>({c}), ValueError);
  CHECK_THROWS_AS(bad.add<nn::Average>({c, bi}), ShapeError);
}

TEST_CASE("gradcheck: Add layer in a residual graph") {
  nn::Graph<double> g({6}, 5);
  auto in = g.input();
  auto h = g.add<nn::Dense>({in}, 6, "tanh");
  auto y = g.add<nn::Add>({in, h});
  g.set_output(y);
  Var<double> x(rand_t({3, 6}, 19));
  std::vector<Var<double>> wrt{x};
  for (auto& p : g.parameters()) wrt.push_back(p.second);
  tt::expect_grad_ok(gradcheck([&] { return g.forward(x); }, wrt));
}

namespace {
// Passes its input through a ReLU and remembers its output node; on each call it notes which of the
// earlier probes' outputs are still alive.
struct LiveProbe : nn::UnaryLayer<double> {
  std::vector<std::weak_ptr<VarNode<double>>>* outputs = nullptr;
  std::vector<std::vector<bool>>* alive = nullptr;
  std::string type() const override { return "LiveProbe"; }
  Shape build1(const Shape& in, Rng&) override { return in; }
  Var<double> forward1(const Var<double>& x) override {
    std::vector<bool> a;
    for (const auto& w : *outputs) a.push_back(!w.expired());
    alive->push_back(a);
    Var<double> y = ops::relu(x);
    outputs->push_back(y.node_ptr());
    return y;
  }
};
}  // namespace

TEST_CASE("Graph: a node's value is dropped after its last consumer (inference), kept for backward (training)") {
  // p0 -> p1 -> p2 -> p3, and p0 -> p3 (Add at the end): p1's value is dead once p2 has run, p0's
  // only after the Add.
  std::vector<std::weak_ptr<VarNode<double>>> outputs;
  std::vector<std::vector<bool>> alive;
  nn::Graph<double> g({4}, 3);
  auto probe = [&](nn::Graph<double>::Node in) {
    auto l = std::make_unique<LiveProbe>();
    l->outputs = &outputs;
    l->alive = &alive;
    return g.add(std::move(l), {in});
  };
  auto p0 = probe(g.input());
  auto p1 = probe(p0);
  auto p2 = probe(p1);
  auto p3 = probe(p2);
  g.set_output(g.add<nn::Add>({p0, p3}));
  Var<double> x(rand_t({2, 4}, 3), true);
  {
    NoGradGuard ng;
    const Var<double> y = g.forward(x);
    REQUIRE(alive.size() == 4);
    CHECK(alive[2] == std::vector<bool>{true, true});         // p2 runs: p0 (needed by the Add) and p1 live
    CHECK(alive[3] == std::vector<bool>{true, false, true});  // p3 runs: p1 dropped, p2 is its input
    CHECK(y.value().numel() == 8);
  }
  outputs.clear();
  alive.clear();
  const Var<double> y = g.forward(x);  // recording: the autograd nodes keep their inputs
  CHECK(alive[3] == std::vector<bool>{true, true, true});
  tt::expect_grad_ok(gradcheck([&] { return g.forward(x); }, {x}));
}
