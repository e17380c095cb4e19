#pragma once
// The Fashion-MNIST example's model and training loop, shared by the program (main.cpp) and the
// end-to-end test (tests/test_fashion_mnist.cpp). Written against the low-level API — autograd,
// layers, loss, optimizer — so it shows every step a training loop takes.
#include <tinycnn/tinycnn.hpp>

#include <chrono>
#include <cstdio>
#include <numeric>
#include <string>

namespace fmnist {
using namespace tinycnn;

// A small CNN: two conv/pool stages and a dense head (about 420k parameters).
inline void build_cnn(nn::Sequential<float>& m) {
  m.add<nn::Conv2D>(32, 3, 1, "same", "relu");
  m.add<nn::MaxPool2D>(2);
  m.add<nn::Conv2D>(64, 3, 1, "same", "relu");
  m.add<nn::MaxPool2D>(2);
  m.add<nn::Flatten>();
  m.add<nn::Dropout>(0.25);
  m.add<nn::Dense>(128, "relu");
  m.add<nn::Dense>(10);  // logits; softmax is fused into the loss
  m.build({1, 28, 28});
}

// Copies samples idx[begin, end) of images [N, 1, 28, 28] into one batch tensor.
inline Tensor<float> gather(const Tensor<float>& images, const std::vector<int64_t>& idx, int64_t begin, int64_t end,
                            std::vector<int32_t>& labels_out, const std::vector<int32_t>& labels) {
  const int64_t per = images.numel() / images.dim(0);
  Shape s = images.shape();
  s[0] = end - begin;
  Tensor<float> b = Tensor<float>::empty(s);
  labels_out.resize(static_cast<size_t>(end - begin));
  for (int64_t i = begin; i < end; ++i) {
    std::copy(images.data() + idx[i] * per, images.data() + (idx[i] + 1) * per, b.data() + (i - begin) * per);
    labels_out[i - begin] = labels[idx[i]];
  }
  return b;
}

inline double accuracy(nn::Model<float>& m, const Tensor<float>& images, const std::vector<int32_t>& labels,
                       int64_t batch = 250) {
  NoGradGuard ng;
  m.eval();
  const int64_t n = images.dim(0);
  int64_t correct = 0;
  for (int64_t b = 0; b < n; b += batch) {
    const int64_t e = std::min(n, b + batch);
    Tensor<float> logits = m(images.slice0(b, e));
    const int64_t k = logits.dim(1);
    for (int64_t i = 0; i < e - b; ++i) {
      const float* row = logits.data() + i * k;
      correct += (std::max_element(row, row + k) - row) == labels[b + i];
    }
  }
  m.train();
  return static_cast<double>(correct) / static_cast<double>(n);
}

struct Options {
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  int epochs = 3;
  int64_t train_limit = 0;  // 0 = all 60,000
  int64_t test_limit = 0;   // 0 = all 10,000
  int64_t batch = 64;
  double lr = 1e-3;
  uint64_t seed = 1;
  bool verbose = true;
};

struct Result {
  double test_accuracy = 0;
  double seconds = 0;
  std::vector<double> epoch_loss, epoch_train_acc;
};

inline Result run(const Options& o) {
  auto t0 = std::chrono::steady_clock::now();
  data::IdxDataset train = data::load_fashion_mnist(o.data_dir, true);
  data::IdxDataset test = data::load_fashion_mnist(o.data_dir, false);
  auto limit = [](data::IdxDataset& d, int64_t n) {
    if (n > 0 && n < d.images.dim(0)) {
      d.images = d.images.slice0(0, n);
      d.labels.resize(static_cast<size_t>(n));
    }
  };
  limit(train, o.train_limit);
  limit(test, o.test_limit);

  nn::Sequential<float> model(o.seed);
  build_cnn(model);
  optim::Adam<float> opt(model.parameters(true), o.lr);
  Rng shuffle_rng(o.seed + 1);
  const int64_t n = train.images.dim(0);
  std::vector<int64_t> idx(static_cast<size_t>(n));
  Result r;
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    std::iota(idx.begin(), idx.end(), 0);
    for (int64_t i = n - 1; i > 0; --i) std::swap(idx[i], idx[shuffle_rng.below(static_cast<uint64_t>(i + 1))]);
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    std::vector<int32_t> labels;
    for (int64_t b = 0; b < n; b += o.batch) {
      const int64_t e = std::min(n, b + o.batch);
      Var<float> x(gather(train.images, idx, b, e, labels, train.labels));
      Var<float> logits = model(x);
      Var<float> loss = ops::softmax_cross_entropy(logits, labels);
      opt.zero_grad();
      loss.backward();
      opt.step();
      const int64_t k = logits.shape()[1];
      for (int64_t i = 0; i < e - b; ++i) {
        const float* row = logits.value().data() + i * k;
        correct += (std::max_element(row, row + k) - row) == labels[i];
      }
      loss_sum += loss.value()[0] * static_cast<double>(e - b);
      seen += e - b;
    }
    r.epoch_loss.push_back(loss_sum / static_cast<double>(seen));
    r.epoch_train_acc.push_back(static_cast<double>(correct) / static_cast<double>(seen));
    if (o.verbose) {
      const double val = accuracy(model, test.images, test.labels);
      std::printf("epoch %d/%d: loss %.4f, train accuracy %.4f, test accuracy %.4f (%.1f s)\n", epoch, o.epochs,
                  r.epoch_loss.back(), r.epoch_train_acc.back(), val,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      std::fflush(stdout);
    }
  }
  r.test_accuracy = accuracy(model, test.images, test.labels);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace fmnist
