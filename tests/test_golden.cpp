// Golden test against PyTorch (values made by tests/golden/make_golden.py with Debian's python3-torch),
// plus end-to-end determinism and the Fashion-MNIST smoke training.
#include "grad_util.hpp"

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "../examples/fashion_mnist/fashion_mnist.hpp"

using namespace tinycnn;

namespace {
std::map<std::string, Tensor<double>> read_golden(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  std::map<std::string, Tensor<double>> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string name, colon;
    int rank = 0;
    s >> name >> rank;
    Shape shape(static_cast<size_t>(rank));
    for (auto& d : shape) s >> d;
    s >> colon;
    Tensor<double> t(shape);
    for (int64_t i = 0; i < t.numel(); ++i) s >> t[i];
    REQUIRE_MESSAGE(!s.fail(), "bad golden line for " << name);
    out[name] = t;
  }
  return out;
}

void check_close(const Tensor<double>& got, const Tensor<double>& want, double tol, const std::string& what) {
  INFO(what);
  REQUIRE(got.shape() == want.shape());
  double worst = 0;
  for (int64_t i = 0; i < got.numel(); ++i)
    worst = std::max(worst, std::fabs(got[i] - want[i]) / (1.0 + std::fabs(want[i])));
  CHECK(worst <= tol);
}

struct SmallCnn {
  nn::Sequential<double> m{0};
  explicit SmallCnn(std::map<std::string, Tensor<double>>& g) {
    m.add<nn::Conv2D>(6, 3, 1, "same", "", true, "conv");
    m.add<nn::BatchNormalization>(0.99, 1e-3, "bn");
    m.add<nn::ReLU>();
    m.add<nn::MaxPool2D>(2);
    m.add<nn::Flatten>();
    m.add<nn::Dense>(5, "", true, "dense");
    m.build({3, 8, 8});
    for (auto& p : m.parameters()) p.second.value().copy_from(g.at("init/" + p.first));
  }
};
}  // namespace

TEST_CASE("golden: small CNN forward, loss, gradients and optimizer steps match PyTorch") {
  auto g = read_golden(std::string(TINYCNN_TEST_DATA_DIR) + "/golden_small_cnn.txt");
  std::vector<int32_t> labels;
  for (int64_t i = 0; i < g.at("labels").numel(); ++i) labels.push_back(static_cast<int32_t>(g.at("labels")[i]));
  Var<double> x(g.at("input"));
  {
    SmallCnn net(g);
    Var<double> logits = net.m(x);
    check_close(logits.value(), g.at("logits"), 1e-10, "logits");
    Var<double> loss = ops::softmax_cross_entropy(logits, labels);
    check_close(loss.value(), g.at("loss"), 1e-10, "loss");
    loss.backward();
    for (auto& p : net.m.parameters()) check_close(p.second.grad(), g.at("grad/" + p.first), 1e-9, "grad " + p.first);
  }
  for (std::string opt_name : {"sgd", "adam"}) {
    SmallCnn net(g);
    std::unique_ptr<optim::Optimizer<double>> opt;
    if (opt_name == "sgd")
      opt = std::make_unique<optim::SGD<double>>(net.m.parameters(true), 0.1, 0.9);
    else
      opt = std::make_unique<optim::Adam<double>>(net.m.parameters(true), 0.01, 0.9, 0.999, 1e-8);
    for (int step = 0; step < 5; ++step) {
      opt->zero_grad();
      ops::softmax_cross_entropy(net.m(x), labels).backward();
      opt->step();
    }
    for (auto& p : net.m.parameters()) check_close(p.second.value(), g.at(opt_name + "/" + p.first), 1e-8, opt_name + " " + p.first);
    for (auto& b : net.m.buffers()) check_close(b.second.value(), g.at(opt_name + "/" + b.first), 1e-8, opt_name + " " + b.first);
  }
}

TEST_CASE("determinism: same seed, one thread, bitwise-identical weights") {
  const int prev = get_num_threads();
  set_num_threads(1);
  auto run = [] {
    nn::Sequential<float> m(7);
    m.add<nn::Conv2D>(4, 3, 2, "same", "relu");
    m.add<nn::BatchNormalization>();
    m.add<nn::Flatten>();
    m.add<nn::Dropout>(0.3);
    m.add<nn::Dense>(3);
    m.build({2, 9, 9});
    optim::Adam<float> opt(m.parameters(true), 1e-2);
    Rng data(99);
    for (int step = 0; step < 5; ++step) {
      Tensor<float> x({8, 2, 9, 9});
      x.fill_normal(0, 1, data);
      std::vector<int32_t> y(8);
      for (auto& v : y) v = static_cast<int32_t>(data.below(3));
      opt.zero_grad();
      ops::softmax_cross_entropy(m(Var<float>(x)), y).backward();
      opt.step();
    }
    std::vector<float> w;
    for (auto& p : m.parameters()) {
      auto v = p.second.value().to_vector();
      w.insert(w.end(), v.begin(), v.end());
    }
    return w;
  };
  const auto a = run(), b = run();
  set_num_threads(prev);
  REQUIRE(a.size() == b.size());
  CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

TEST_CASE("end-to-end: a short Fashion-MNIST run learns (a broken backward pass cannot pass)") {
  fmnist::Options o;
  std::ifstream probe(o.data_dir + "/train-images-idx3-ubyte.gz");
  if (!probe.good()) {
    MESSAGE("skipped: Debian package dataset-fashion-mnist is not installed (" << o.data_dir << ")");
    return;
  }
  o.epochs = 1;
  o.train_limit = 5000;
  o.test_limit = 2000;
  o.verbose = false;
  fmnist::Result r = fmnist::run(o);
  MESSAGE("Fashion-MNIST, 5,000 images, 1 epoch: test accuracy " << r.test_accuracy << " in " << r.seconds << " s");
  CHECK(r.test_accuracy >= 0.70);
}
