// Behaviour of the core beyond gradients: loss validation and stability, optimizers, schedules,
// graph freeing, no-grad, the gradient checker's own ability to fail, determinism.
#include "grad_util.hpp"

#include <cmath>
#include <set>

using namespace tinycnn;
using tt::rand_t;

TEST_CASE("cross-entropy is stable for extreme logits") {
  for (double big : {1e4, 88.0, -1e4}) {
    Var<float> logits(Tensor<float>::from({2, 3}, {static_cast<float>(big), 0, static_cast<float>(-big), 0, 0, 0}), true);
    Var<float> loss = ops::softmax_cross_entropy(logits, std::vector<int32_t>{2, 1});
    CHECK(std::isfinite(loss.value()[0]));
    loss.backward();
    for (int64_t i = 0; i < 6; ++i) CHECK(std::isfinite(logits.grad()[i]));
  }
  Var<float> eq(Tensor<float>::full({1, 4}, 3.0f), true);
  Var<float> l = ops::softmax_cross_entropy(eq, std::vector<int32_t>{1});
  CHECK(l.value()[0] == doctest::Approx(std::log(4.0)).epsilon(1e-6));
}

TEST_CASE("loss validation names the sample and value") {
  Var<float> logits(Tensor<float>({3, 4}), true);
  try {
    ops::softmax_cross_entropy(logits, std::vector<int32_t>{0, 4, 1});
    FAIL("expected ValueError");
  } catch (const ValueError& e) {
    const std::string m = e.what();
    CHECK(m.find("sample 1") != std::string::npos);
    CHECK(m.find("is 4") != std::string::npos);
  }
  CHECK_THROWS_AS(ops::softmax_cross_entropy(logits, std::vector<int32_t>{0, -1, 1}), ValueError);
  CHECK_THROWS_AS(ops::softmax_cross_entropy(logits, std::vector<int32_t>{0, 1}), ValueError);
}

TEST_CASE("integer labels fed to binary cross-entropy are refused (the original study's bug)") {
  // The study fed labels 0..7 to binary cross-entropy and "trained" to a loss of -1.5e10.
  Var<float> logits(Tensor<float>({4, 1}), true);
  Tensor<float> labels = Tensor<float>::from({4, 1}, {0, 3, 7, 1});
  try {
    ops::binary_cross_entropy(logits, labels);
    FAIL("expected ValueError");
  } catch (const ValueError& e) {
    const std::string m = e.what();
    CHECK(m.find("sample 1") != std::string::npos);
    CHECK(m.find("softmax_cross_entropy") != std::string::npos);
    CHECK(m.find("multi-hot") != std::string::npos);
  }
}

TEST_CASE("a non-finite loss is an error, never trained on") {
  Var<float> logits(Tensor<float>::from({1, 2}, {std::nanf(""), 0}), true);
  CHECK_THROWS_AS(ops::softmax_cross_entropy(logits, std::vector<int32_t>{0}), LossError);
  Var<float> p(Tensor<float>::from({1}, {std::numeric_limits<float>::infinity()}), true);
  CHECK_THROWS_AS(ops::mse(p, Tensor<float>({1})), LossError);
}

TEST_CASE("gradient checker detects wrong, overwriting and unwritten backward passes") {
  Var<double> x(rand_t({6}, 1));
  auto custom = [&](int mode) {
    return [&, mode] {
      Tensor<double> y = Tensor<double>::empty({6});
      for (int64_t i = 0; i < 6; ++i) y[i] = 3 * x.value()[i];
      if (mode == 3) y = Tensor<double>::empty({6});  // forgot to write the output: poisoned NaN
      return make_result<double>(y, {x}, "custom", [mode](VarNode<double>& n) {
        double* g = input_grad(n, 0);
        for (int64_t i = 0; i < 6; ++i) {
          if (mode == 0) g[i] += 3 * n.grad[i];  // correct
          if (mode == 1) g[i] += 2 * n.grad[i];  // wrong derivative
          if (mode == 2) g[i] = 3 * n.grad[i];   // overwrites instead of accumulating
          if (mode == 3) g[i] += 3 * n.grad[i];
        }
      });
    };
  };
  CHECK(gradcheck(custom(0), {x}).ok);
  CHECK_FALSE(gradcheck(custom(1), {x}).ok);
  CHECK_FALSE(gradcheck(custom(2), {x}).ok);
  CHECK_FALSE(gradcheck(custom(3), {x}).ok);
}

TEST_CASE("no-grad scope records nothing; the graph is freed after backward") {
  Var<float> w(Tensor<float>::full({2}, 1.0f), true);
  {
    NoGradGuard ng;
    Var<float> y = ops::mul(w, w);
    CHECK_FALSE(y.requires_grad());
  }
  Var<float> y = ops::sum(ops::mul(w, w));
  CHECK(y.node()->inputs.size() == 1);
  y.backward();
  CHECK(y.node()->inputs.empty());
  CHECK_FALSE(static_cast<bool>(y.node()->backward_fn));
  CHECK(w.grad()[0] == 2.0f);
  // Leaf gradients accumulate across backward passes until zero_grad, as in PyTorch.
  ops::sum(ops::mul(w, w)).backward();
  CHECK(w.grad()[0] == 4.0f);
  w.zero_grad();
  CHECK(w.grad()[0] == 0.0f);
}

TEST_CASE("zero_grad is deferred: later passes see zeros whether an op adds into the gradient or overwrites it") {
  // linear's weight gradient is written with beta = 0 after zero_grad (input_grad_fresh); the bias
  // and the input add into theirs (grad_buffer). Stale contents must never show through.
  Var<double> x(tt::rand_t({3, 4}, 21), true), W(tt::rand_t({4, 2}, 22), true), b(tt::rand_t({2}, 23), true);
  auto loss = [&] { return ops::sum(ops::mul(ops::linear(x, W, b), ops::linear(x, W, b))); };
  loss().backward();
  const Tensor<double> gW = W.grad().clone(), gb = b.grad().clone(), gx = x.grad().clone();
  loss().backward();  // no zero_grad: accumulates
  for (int64_t i = 0; i < gW.numel(); ++i) CHECK(W.grad()[i] == doctest::Approx(2 * gW[i]));
  for (Var<double>* v : {&x, &W, &b}) v->zero_grad();
  CHECK(W.node()->grad_zero_pending);
  for (int64_t i = 0; i < gb.numel(); ++i) CHECK(b.grad()[i] == 0.0);  // read before any backward: zeros
  for (Var<double>* v : {&x, &W, &b}) v->zero_grad();
  loss().backward();
  CHECK_FALSE(W.node()->grad_zero_pending);
  for (int64_t i = 0; i < gW.numel(); ++i) CHECK(W.grad()[i] == doctest::Approx(gW[i]));
  for (int64_t i = 0; i < gb.numel(); ++i) CHECK(b.grad()[i] == doctest::Approx(gb[i]));
  for (int64_t i = 0; i < gx.numel(); ++i) CHECK(x.grad()[i] == doctest::Approx(gx[i]));
  // An optimizer step right after zero_grad sees a zero gradient (SGD without momentum: no change).
  W.zero_grad();
  const Tensor<double> w0 = W.value().clone();
  optim::SGD<double> sgd({{"W", W}}, 0.5);
  sgd.step();
  for (int64_t i = 0; i < w0.numel(); ++i) CHECK(W.value()[i] == w0[i]);
}

TEST_CASE("SGD and Adam follow the PyTorch update rules") {
  Var<double> w(Tensor<double>::from({2}, {1.0, -2.0}), true);
  std::vector<nn::NamedVar<double>> ps{{"w", w}};
  optim::SGD<double> sgd(ps, 0.1, 0.9, true, 0.01);
  w.grad() = Tensor<double>::from({2}, {0.5, 0.25});
  sgd.step();
  // d = g + wd*w; v = d; w -= lr*(d + mu*v)
  const double d0 = 0.5 + 0.01 * 1.0, d1 = 0.25 + 0.01 * -2.0;
  CHECK(w.value()[0] == doctest::Approx(1.0 - 0.1 * (d0 + 0.9 * d0)));
  CHECK(w.value()[1] == doctest::Approx(-2.0 - 0.1 * (d1 + 0.9 * d1)));

  Var<double> a(Tensor<double>::from({1}, {1.0}), true);
  optim::Adam<double> adam({{"a", a}}, 0.01, 0.9, 0.999, 1e-8);
  double m = 0, v = 0, x = 1.0;
  for (int t = 1; t <= 3; ++t) {
    const double g = 2 * x;  // gradient of x^2
    a.grad() = Tensor<double>::from({1}, {g});
    adam.step();
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * g * g;
    x -= 0.01 * (m / (1 - std::pow(0.9, t))) / (std::sqrt(v / (1 - std::pow(0.999, t))) + 1e-8);
    CHECK(a.value()[0] == doctest::Approx(x).epsilon(1e-12));
  }
  CHECK(adam.steps() == 3);
  CHECK(adam.state().size() == 2);
  CHECK_THROWS_AS(adam.set_lr(-1), ValueError);
}

TEST_CASE("learning-rate schedules and gradient clipping") {
  optim::StepDecay st(0.1, 10, 0.5);
  CHECK(st.lr_at(9) == doctest::Approx(0.1));
  CHECK(st.lr_at(10) == doctest::Approx(0.05));
  optim::CosineDecay cd(1.0, 100);
  CHECK(cd.lr_at(0) == doctest::Approx(1.0));
  CHECK(cd.lr_at(50) == doctest::Approx(0.5));
  CHECK(cd.lr_at(100) == doctest::Approx(0.0));
  optim::ExponentialDecay ed(1.0, 0.9);
  CHECK(ed.lr_at(2) == doctest::Approx(0.81));
  optim::OneCycle oc(1.0, 101, 0.3);
  CHECK(oc.lr_at(0) == doctest::Approx(1.0 / 25));
  CHECK(oc.lr_at(30) == doctest::Approx(1.0));
  CHECK(oc.lr_at(100) == doctest::Approx(1.0 / 25 / 1e4));
  optim::Warmup wu(std::make_shared<optim::StepDecay>(0.1, 10, 0.5), 5);
  CHECK(wu.lr_at(0) == doctest::Approx(0.02));
  CHECK(wu.lr_at(4) == doctest::Approx(0.1));
  CHECK(wu.lr_at(15) == doctest::Approx(0.05));

  Var<double> p(Tensor<double>({2}), true);
  p.grad() = Tensor<double>::from({2}, {3.0, 4.0});
  std::vector<nn::NamedVar<double>> ps{{"p", p}};
  CHECK(optim::clip_grad_norm(ps, 1.0) == doctest::Approx(5.0));
  CHECK(p.grad()[0] == doctest::Approx(0.6).epsilon(1e-5));
  CHECK(p.grad()[1] == doctest::Approx(0.8).epsilon(1e-5));
}

TEST_CASE("Sequential: Keras default names, shape inference, input check") {
  nn::Sequential<float> m(1);
  m.add<nn::Flatten>();
  m.add<nn::Dense>(8, "relu");
  m.add<nn::Dense>(3);
  m.build({2, 4});
  CHECK(m.layer(1).name() == "dense");
  CHECK(m.layer(2).name() == "dense_1");
  CHECK(m.output_shape() == Shape{3});
  CHECK(m.parameters().size() == 4);
  CHECK(m.parameters()[0].first == "dense/kernel");
  Tensor<float> bad({5, 3, 4});
  CHECK_THROWS_AS(m(bad), ShapeError);
  m.set_trainable("dense", false);
  CHECK(m.parameters(true).size() == 2);
}

TEST_CASE("frozen layers: no gradient for their parameters; backward stops below the lowest trainable layer") {
  nn::Sequential<double> m(3);
  m.add<nn::Conv2D>(2, 3, 1, "same", "relu");
  m.add<nn::BatchNormalization>();
  m.add<nn::DepthwiseConv2D>(3, 1, "same", 1, "relu6");
  m.add<nn::Flatten>();
  m.add<nn::Dense>(4, "relu");
  m.add<nn::Dense>(3);
  m.build({1, 5, 5});
  const std::vector<int32_t> labels{0, 2};
  Var<double> x(tt::rand_t({2, 1, 5, 5}, 70));
  auto step = [&] {
    for (auto& p : m.parameters()) p.second.grad() = Tensor<double>();  // forget earlier gradients
    ops::softmax_cross_entropy(m.forward(x), labels).backward();
  };
  auto has_grad = [&](size_t layer) {
    bool any = false;
    for (auto& p : m.layer(layer).parameters()) {
      if (!p.second.grad().defined()) continue;
      for (int64_t i = 0; i < p.second.grad().numel(); ++i) any = any || p.second.grad()[i] != 0.0;
    }
    return any;
  };
  nn::set_trainable_until(m, "dense", false);  // conv, batch norm, depthwise and the first Dense frozen
  step();
  for (size_t i = 0; i < 5; ++i) {
    CHECK(!has_grad(i));
    for (auto& p : m.layer(i).parameters()) CHECK(p.second.requires_grad());  // the flags themselves stay
  }
  CHECK(has_grad(5));
  m.layer(2).set_trainable(true);  // the depthwise layer again: the gradient reaches it through the Dense
  step();
  CHECK(has_grad(2));
  CHECK(!has_grad(0));
  CHECK(!has_grad(4));
  nn::unfreeze_all(m);
  step();
  for (size_t i : {0, 1, 2, 4, 5}) CHECK(has_grad(i));
}

namespace {
// Batch norms with non-trivial statistics and non-zero biases, so a fold that drops a term shows.
template <class T>
void randomise_batch_norms(nn::Model<T>& m, uint64_t seed) {
  for (size_t i = 0; i < m.size(); ++i) {
    for (auto& p : m.layer(i).parameters())
      if (p.first == "bias") {
        const Tensor<double> r = tt::rand_t(p.second.shape(), seed + 100 + i);
        for (int64_t k = 0; k < r.numel(); ++k) p.second.value()[k] = static_cast<T>(0.5 * r[k]);
      }
    if (m.layer(i).type() != "BatchNormalization") continue;
    auto& bn = static_cast<nn::BatchNormalization<T>&>(m.layer(i));
    const Tensor<double> r = tt::rand_t({4, bn.gamma().value().numel()}, seed + i);
    for (int64_t c = 0; c < bn.gamma().value().numel(); ++c) {
      const int64_t C = bn.gamma().value().numel();
      bn.gamma().value()[c] = static_cast<T>(1 + 0.5 * r[c]);
      bn.beta().value()[c] = static_cast<T>(0.5 * r[C + c]);
      bn.moving_mean().value()[c] = static_cast<T>(0.3 * r[2 * C + c]);
      bn.moving_variance().value()[c] = static_cast<T>(0.5 + 0.4 * r[3 * C + c]);
    }
  }
}

template <class T>
Tensor<T> rand_as(const Shape& s, uint64_t seed) {
  const Tensor<double> d = tt::rand_t(s, seed);
  Tensor<T> t(s);
  for (int64_t i = 0; i < d.numel(); ++i) t[i] = static_cast<T>(d[i]);
  return t;
}

template <class T>
Tensor<T> infer(nn::Model<T>& m, const Tensor<T>& x, bool fuse) {
  NoGradGuard ng;
  m.set_inference_fusion(fuse);
  Tensor<T> y = m.forward(Var<T>(x)).value();
  m.set_inference_fusion(true);
  return y;
}

template <class T>
double max_abs_diff(const Tensor<T>& a, const Tensor<T>& b) {
  REQUIRE(a.shape() == b.shape());
  double d = 0;
  for (int64_t i = 0; i < a.numel(); ++i) d = std::max(d, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  return d;
}

template <class T>
void check_fusion_sequential(double tol) {
  nn::Sequential<T> m(5);
  m.template add<nn::Conv2D>(6, 3, 1, "same", "", false);       // 0 conv (no bias) -> bn -> ReLU6: one step
  m.template add<nn::BatchNormalization>();                     // 1
  m.template add<nn::ReLU>(6.0);                                // 2
  m.template add<nn::DepthwiseConv2D>(3, 2, "same", 2);         // 3 depthwise (bias, M = 2) -> bn -> relu
  m.template add<nn::BatchNormalization>();                     // 4
  m.template add<nn::Activation>("relu");                       // 5
  m.template add<nn::Conv2D>(4, 1, 1, "valid", "relu");         // 6 has its own activation: not folded
  m.template add<nn::BatchNormalization>();                     // 7
  m.template add<nn::Conv2D>(5, 3, 1, "valid");                 // 8 conv -> bn, the bn the model's output
  m.template add<nn::BatchNormalization>();                     // 9
  m.build({3, 9, 9});
  randomise_batch_norms(m, 40);
  m.eval();
  const auto plan = nn::inference_fusion_plan(m.entries(), static_cast<int>(m.size()) - 1);
  for (size_t i = 0; i < m.size(); ++i) {
    INFO("layer " << i);
    CHECK(plan[i].tail == (i == 0 ? 2 : i == 3 ? 5 : i == 8 ? 9 : -1));
  }
  CHECK(plan[0].relu_max == T(6));
  CHECK(plan[3].relu == 5);
  CHECK(plan[3].relu_max == T(0));
  const Tensor<T> x = rand_as<T>({3, 3, 9, 9}, 41);
  const Tensor<T> fused = infer(m, x, true), plain = infer(m, x, false);
  CHECK(max_abs_diff(fused, plain) <= tol);
  CHECK(max_abs_diff(fused, plain) > 0.0);  // the folded path really ran (it rounds differently)
  // recording a graph: no fusion, exactly the layers' own forward
  const Tensor<T> recorded = m.forward(Var<T>(x)).value();
  CHECK(max_abs_diff(recorded, plain) == 0.0);
  // batch norm in training (batch statistics): nothing to fold
  m.train();
  for (const auto& s : nn::inference_fusion_plan(m.entries(), static_cast<int>(m.size()) - 1)) CHECK(s.tail == -1);
  // a frozen batch norm runs on its moving statistics even in a training model: its chain folds
  m.layer(1).set_trainable(false);
  CHECK(nn::inference_fusion_plan(m.entries(), static_cast<int>(m.size()) - 1)[0].tail == 2);
}
}  // namespace

TEST_CASE("inference fusion: conv -> batch norm -> ReLU folded into one convolution (Sequential)") {
  check_fusion_sequential<float>(2e-5);
  check_fusion_sequential<double>(1e-12);
}

namespace {
template <class T>
void check_input_fold_sequential(double tol) {
  nn::Sequential<T> m(7);
  m.template add<nn::Conv2D>(4, 3, 1, "valid", "relu");  // 0 -> pool 1
  m.template add<nn::MaxPool2D>(2);                      // 1
  m.template add<nn::BatchNormalization>();              // 2: folded into conv 4 (through the dropout)
  m.template add<nn::Dropout>(0.3);                      // 3
  m.template add<nn::Conv2D>(5, 3, 1, "valid", "relu");  // 4 -> pool 5, with bn 2's affine on its input
  m.template add<nn::MaxPool2D>(2);                      // 5
  m.template add<nn::BatchNormalization>();              // 6: before a Flatten, not folded
  m.template add<nn::Flatten>();                         // 7
  m.template add<nn::BatchNormalization>();              // 8: over the features, folded into dense 9
  m.template add<nn::Dense>(6, "relu");                  // 9
  m.template add<nn::BatchNormalization>();              // 10: before a 'same' conv (via reshape): not folded
  m.template add<nn::Reshape>(Shape{6, 1, 1});           // 11
  m.template add<nn::BatchNormalization>();              // 12: 'same' padding: not folded
  m.template add<nn::Conv2D>(3, 3, 1, "same");           // 13
  m.template add<nn::Flatten>();                         // 14
  m.template add<nn::BatchNormalization>();              // 15: folded into dense 16
  m.template add<nn::Dense>(4);                          // 16
  m.template add<nn::BatchNormalization>();              // 17: the output
  m.build({2, 16, 16});
  randomise_batch_norms(m, 60);
  m.eval();
  const int out = static_cast<int>(m.size()) - 1;
  const auto plan = nn::inference_fusion_plan(m.entries(), out);
  for (size_t i = 0; i < m.size(); ++i) {
    INFO("layer " << i);
    CHECK(plan[i].pass == (i == 2 || i == 8 || i == 15));
    CHECK(plan[i].input.defined() == (i == 4 || i == 9 || i == 16));
    CHECK(plan[i].tail == (i == 0 ? 1 : i == 4 ? 5 : i == 9 ? 9 : i == 16 ? 16 : -1));
  }
  const Tensor<T> x = rand_as<T>({3, 2, 16, 16}, 61);
  const Tensor<T> fused = infer(m, x, true), plain = infer(m, x, false);
  CHECK(max_abs_diff(fused, plain) <= tol);
  CHECK(max_abs_diff(fused, plain) > 0.0);  // the folded path really ran (it rounds differently)
  // a batch whose activations are fewer than the layer's parameters: the batch norm runs (bn 8's 20
  // features per sample against dense 9's 126 parameters; bn 2's 196 values against conv 4's 185)
  for (int64_t batch : {1, 6, 7}) {
    CAPTURE(batch);
    const auto pb = nn::inference_fusion_plan(m.entries(), out, false, true, true, batch);
    CHECK(pb[2].pass);
    CHECK(pb[8].pass == (batch >= 7));
    CHECK(pb[9].input.defined() == (batch >= 7));
  }
  CHECK(max_abs_diff(infer(m, x.slice0(0, 1), true), plain.slice0(0, 1)) <= tol);
  // recording (training, or a forward that keeps the graph): the batch norms run as layers
  for (const auto& s : nn::inference_fusion_plan(m.entries(), out, true)) CHECK(!s.pass);
  CHECK(max_abs_diff(m.forward(Var<T>(x)).value(), plain) == 0.0);
  // the dropout in training is not the identity: bn 2 stays (the other folds need inference only)
  m.layer(3).set_training(true);
  CHECK(!nn::inference_fusion_plan(m.entries(), out)[2].pass);
  CHECK(nn::inference_fusion_plan(m.entries(), out)[8].pass);
  m.layer(3).set_training(false);
  // a batch norm folded into the convolution before it is not folded again into the one after
  nn::Sequential<T> m2(8);
  m2.template add<nn::Conv2D>(3, 3, 1, "valid");  // 0 -> bn 1
  m2.template add<nn::BatchNormalization>();      // 1
  m2.template add<nn::Conv2D>(2, 3, 1, "valid");  // 2
  m2.build({2, 8, 8});
  randomise_batch_norms(m2, 62);
  m2.eval();
  const auto plan2 = nn::inference_fusion_plan(m2.entries(), 2);
  CHECK(plan2[0].tail == 1);
  CHECK(!plan2[1].pass);
  CHECK(!plan2[2].input.defined());
}
}  // namespace

TEST_CASE("inference fusion: a batch norm before a 'valid' conv or a dense layer folds into its weights") {
  check_input_fold_sequential<float>(2e-5);
  check_input_fold_sequential<double>(1e-12);
  // the op: w' = w * scale per input channel, b' = b + sum w * shift (conv kernel axis 1, dense axis 0)
  const Tensor<double> w = rand_as<double>({2, 3, 2, 2}, 63), b = rand_as<double>({2}, 64);
  const Tensor<double> sc = rand_as<double>({3}, 65), sh = rand_as<double>({3}, 66);
  const auto [wf, bf] = ops::fold_input_channel_affine(w, b, sc, sh, 1);
  for (int64_t f = 0; f < 2; ++f) {
    double want = b[f];
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < 4; ++p) {
        CHECK(wf[(f * 3 + c) * 4 + p] == doctest::Approx(w[(f * 3 + c) * 4 + p] * sc[c]));
        want += w[(f * 3 + c) * 4 + p] * sh[c];
      }
    CHECK(bf[f] == doctest::Approx(want));
  }
  const Tensor<double> wd = rand_as<double>({3, 5}, 67);
  const auto [wdf, bdf] = ops::fold_input_channel_affine(wd, Tensor<double>(), sc, sh, 0);
  for (int64_t u = 0; u < 5; ++u) {
    double want = 0;
    for (int64_t c = 0; c < 3; ++c) {
      CHECK(wdf[c * 5 + u] == doctest::Approx(wd[c * 5 + u] * sc[c]));
      want += wd[c * 5 + u] * sh[c];
    }
    CHECK(bdf[u] == doctest::Approx(want));
  }
  CHECK_THROWS_WITH_AS(ops::fold_input_channel_affine(wd, Tensor<double>(), rand_as<double>({4}, 68), sh, 0),
                       doctest::Contains("fold_input_channel_affine"), ShapeError);
}

TEST_CASE("inference fusion: Graph chains stop where a value has another consumer or is returned") {
  nn::Graph<float> g({4, 8, 8}, 6);
  auto x = g.input();
  auto c0 = g.add<nn::Conv2D>({x}, 4, 3, 1, "same");     // 0 -> bn 1 -> relu 2, but bn 1 also feeds the Add
  auto b0 = g.add<nn::BatchNormalization>({c0});        // 1
  auto r0 = g.add<nn::ReLU>({b0});                      // 2
  auto c1 = g.add<nn::Conv2D>({r0}, 4, 3, 1, "same");   // 3: two consumers (bn 4 and the Add) -> no chain
  auto b1 = g.add<nn::BatchNormalization>({c1});        // 4
  auto s = g.add<nn::Add>({b0, b1, c1});                // 5
  auto c2 = g.add<nn::Conv2D>({s}, 3, 1, 1, "valid");   // 6 -> bn 7 -> relu 8 (the output)
  auto b2 = g.add<nn::BatchNormalization>({c2});        // 7
  auto r2 = g.add<nn::Activation>({b2}, "relu6");       // 8
  auto c3 = g.add<nn::Conv2D>({r2}, 2, 1, 1, "valid");  // 9 -> bn 10, a dead end (neither used nor returned)
  g.add<nn::BatchNormalization>({c3});                  // 10
  g.set_output(r2);
  randomise_batch_norms(g, 50);
  g.eval();
  const auto plan = nn::inference_fusion_plan(g.entries(), g.output_id());
  for (size_t i = 0; i < g.size(); ++i) {
    INFO("layer " << i);
    CHECK(plan[i].tail == (i == 0 ? 1 : i == 6 ? 8 : i == 9 ? 10 : -1));
  }
  const Tensor<float> xin = rand_as<float>({2, 4, 8, 8}, 51);
  const Tensor<float> fused = infer(g, xin, true), plain = infer(g, xin, false);
  CHECK(fused.shape() == Shape{2, 3, 8, 8});
  CHECK(max_abs_diff(fused, plain) <= 2e-5);
  CHECK(max_abs_diff(fused, plain) > 0.0);
  // the conv's value returned: it cannot be folded away
  g.set_output(c0);
  CHECK(nn::inference_fusion_plan(g.entries(), g.output_id())[0].tail == -1);
  CHECK(max_abs_diff(infer(g, xin, true), infer(g, xin, false)) == 0.0);
}

namespace {
// The op names of the graph recorded below v, one per node.
template <class T>
std::multiset<std::string> recorded_ops(const Var<T>& v) {
  std::multiset<std::string> names;
  std::vector<const VarNode<T>*> todo{v.node()};
  std::set<const VarNode<T>*> seen;
  while (!todo.empty()) {
    const VarNode<T>* n = todo.back();
    todo.pop_back();
    if (!n || !seen.insert(n).second) continue;
    names.insert(n->op);
    for (const auto& in : n->inputs) todo.push_back(in.get());
  }
  return names;
}
}  // namespace

TEST_CASE("pool fusion: a convolution and the max pooling after it as one op, in training and inference") {
  nn::Sequential<float> m(9);
  m.add<nn::Conv2D>(4, 3, 1, "same", "relu");    // 0 -> pool 1
  m.add<nn::MaxPool2D>(2);                       // 1
  m.add<nn::Conv2D>(5, 2, 1, "valid", "relu6");  // 2 -> pool 3 (overlapping, 'same')
  m.add<nn::MaxPool2D>(3, 2, "same");            // 3
  m.add<nn::Conv2D>(16, 3, 1, "same");           // 4 -> pool 5 (no activation; Winograd's 16 channels)
  m.add<nn::MaxPool2D>(2);                       // 5
  m.add<nn::Conv2D>(3, 1, 1, "valid", "tanh");   // 6: an activation the op cannot fuse
  m.add<nn::MaxPool2D>(1);                       // 7
  m.add<nn::Flatten>();
  m.add<nn::Dense>(3);
  m.build({3, 13, 12});
  const int out = static_cast<int>(m.size()) - 1;
  const auto plan = nn::inference_fusion_plan(m.entries(), out, true);
  for (size_t i = 0; i < m.size(); ++i) {
    INFO("layer " << i);
    CHECK(plan[i].tail == (i == 0 ? 1 : i == 2 ? 3 : i == 4 ? 5 : -1));
  }
  CHECK(plan[2].pool_spec.pool_h == 3);
  CHECK(plan[2].pool_spec.stride_w == 2);
  CHECK(plan[2].pool_spec.padding == "same");
  for (const auto& s : nn::inference_fusion_plan(m.entries(), out, true, true, false)) CHECK(s.pool == -1);
  const Tensor<float> x = rand_as<float>({4, 3, 13, 12}, 70);
  const std::vector<int32_t> labels{0, 2, 1, 1};
  auto step = [&](bool fuse) {
    m.set_pool_fusion(fuse);
    for (auto& p : m.parameters()) p.second.zero_grad();
    const Var<float> logits = m.forward(Var<float>(x));
    const std::multiset<std::string> names = recorded_ops(logits);
    CHECK(names.count("conv2d_relu_max_pool2d") == (fuse ? 2u : 0u));  // layers 0 and 2
    CHECK(names.count("conv2d_max_pool2d") == (fuse ? 1u : 0u));       // layer 4
    CHECK(names.count("max_pool2d") == (fuse ? 1u : 4u));              // layer 7 (and all four unfused)
    ops::softmax_cross_entropy(logits, labels).backward();
    std::vector<Tensor<float>> g{logits.value().clone()};
    for (auto& p : m.parameters()) g.push_back(p.second.grad().clone());
    m.set_pool_fusion(true);
    return g;
  };
  const auto fused = step(true), plain = step(false);
  REQUIRE(fused.size() == plain.size());
  CHECK(max_abs_diff(fused[0], plain[0]) == 0.0);  // the same logits
  for (size_t i = 1; i < fused.size(); ++i) {
    INFO("parameter " << i - 1);
    CHECK(max_abs_diff(fused[i], plain[i]) <= 1e-5);
  }
  // inference (no graph): the same outputs
  {
    NoGradGuard ng;
    m.eval();
    const Tensor<float> a = m.forward(Var<float>(x)).value();
    m.set_pool_fusion(false);
    const Tensor<float> b = m.forward(Var<float>(x)).value();
    m.set_pool_fusion(true);
    CHECK(max_abs_diff(a, b) == 0.0);
  }
  // Graph: a convolution with a second consumer, or returned, keeps its output (no pool step)
  nn::Graph<float> g({3, 8, 8}, 8);
  auto in = g.input();
  auto c0 = g.add<nn::Conv2D>({in}, 4, 3, 1, "same", "relu");  // 0 -> pool 1
  auto p0 = g.add<nn::MaxPool2D>({c0}, 2);                      // 1
  auto c1 = g.add<nn::Conv2D>({p0}, 4, 3, 1, "same", "relu");   // 2: feeds pool 3 and the Add
  auto p1 = g.add<nn::MaxPool2D>({c1}, 1);                      // 3
  auto s = g.add<nn::Add>({p1, c1});                            // 4
  g.set_output(s);
  const auto gp = nn::inference_fusion_plan(g.entries(), g.output_id(), true);
  CHECK(gp[0].tail == 1);
  CHECK(gp[2].tail == -1);
  const Tensor<float> xg = rand_as<float>({2, 3, 8, 8}, 71);
  g.set_pool_fusion(false);
  const Tensor<float> yplain = g.forward(Var<float>(xg)).value();
  g.set_pool_fusion(true);
  CHECK(max_abs_diff(g.forward(Var<float>(xg)).value(), yplain) == 0.0);
  g.set_output(c0);
  CHECK(nn::inference_fusion_plan(g.entries(), g.output_id(), true)[0].tail == -1);
}

TEST_CASE("inference fusion while training: a frozen conv -> batch norm -> ReLU base runs fused, gradients unchanged") {
  nn::Sequential<double> m(7);
  m.add<nn::Conv2D>(4, 3, 1, "same");  // the frozen base (transfer learning's phase 1)
  m.add<nn::BatchNormalization>();
  m.add<nn::ReLU>(6.0);
  m.add<nn::Flatten>();
  m.add<nn::Dense>(3);  // the trainable head
  m.build({2, 5, 5});
  randomise_batch_norms(m, 60);
  m.set_trainable_range(0, 3, false);
  m.train();
  const int out = static_cast<int>(m.size()) - 1;
  CHECK(nn::inference_fusion_plan(m.entries(), out, true)[0].tail == 2);
  const std::vector<int32_t> labels{0, 2, 1};
  Var<double> x(tt::rand_t({3, 2, 5, 5}, 61), true);
  // gradients of the head's kernel (and of x, when x requires one) with fusion on / off
  auto grads = [&](bool fuse, bool x_grad) {
    m.set_inference_fusion(fuse);
    x.set_requires_grad(x_grad);
    x.grad() = Tensor<double>();
    for (auto& p : m.parameters()) p.second.grad() = Tensor<double>();
    ops::softmax_cross_entropy(m.forward(x), labels).backward();
    m.set_inference_fusion(true);
    return std::make_pair(m.layer(4).parameters()[0].second.grad().clone(),
                          x_grad ? x.grad().clone() : Tensor<double>());
  };
  const auto fused = grads(true, false), plain = grads(false, false);
  CHECK(max_abs_diff(fused.first, plain.first) <= 1e-12);
  CHECK(max_abs_diff(fused.first, plain.first) > 0.0);  // the folded path ran
  // an input that needs a gradient: the chain runs as written, so x's gradient is exact
  const auto fx = grads(true, true), px = grads(false, true);
  CHECK(max_abs_diff(fx.first, px.first) == 0.0);
  CHECK(max_abs_diff(fx.second, px.second) == 0.0);
  // a trainable conv (or batch norm) needs its own gradient: no chain while recording
  m.layer(0).set_trainable(true);
  CHECK(nn::inference_fusion_plan(m.entries(), out, true)[0].tail == -1);
  m.layer(0).set_trainable(false);
  m.layer(1).set_trainable(true);
  CHECK(nn::inference_fusion_plan(m.entries(), out, true)[0].tail == -1);
}
