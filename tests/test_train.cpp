// Training: summary, fit/evaluate/predict, callbacks, History, checkpoints and resume, SIGINT.
#include <doctest/doctest.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tinycnn/core/parallel.hpp>
#include <tinycnn/nn/dense.hpp>
#include <tinycnn/nn/dropout.hpp>
#include <tinycnn/nn/flatten.hpp>
#include <tinycnn/nn/sequential.hpp>
#include <tinycnn/optim/adam.hpp>
#include <tinycnn/optim/sgd.hpp>
#include <tinycnn/train/callbacks.hpp>
#include <tinycnn/train/checkpoint.hpp>
#include <tinycnn/train/dataset.hpp>
#include <tinycnn/train/history.hpp>
#include <tinycnn/train/summary.hpp>
#include <tinycnn/train/swa.hpp>
#include <tinycnn/train/trainer.hpp>
#include <tinycnn/train/update_bn.hpp>
#include <tinycnn/nn/batch_normalization.hpp>

#if __has_include(<tinycnn/nn/conv2d.hpp>) && __has_include(<tinycnn/nn/max_pool2d.hpp>) && \
    __has_include(<tinycnn/nn/batch_normalization.hpp>)
#include <tinycnn/nn/batch_normalization.hpp>
#include <tinycnn/nn/conv2d.hpp>
#include <tinycnn/nn/max_pool2d.hpp>
#define TT_HAS_CONV 1
#endif

using namespace tinycnn;
using namespace tinycnn::train;

namespace {

// A scratch directory removed at scope exit.
struct TrainTempDir {
  std::string path;
  TrainTempDir() {
    char tmpl[] = "/tmp/tinycnn_train_XXXXXX";
    const char* p = mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path = p;
  }
  ~TrainTempDir() { (void)std::system(("rm -rf '" + path + "'").c_str()); }
  std::string operator/(const std::string& f) const { return path + "/" + f; }
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream o;
  o << f.rdbuf();
  return o.str();
}
bool file_exists(const std::string& p) { return access(p.c_str(), F_OK) == 0; }

// Three Gaussian blobs in 4-D: an easy problem a small MLP learns in a few epochs.
struct Blobs {
  Tensor<float> x;
  std::vector<int32_t> y;
};
Blobs make_blobs(int64_t n, uint64_t seed) {
  Rng r(seed);
  Blobs b{Tensor<float>({n, 4}), {}};
  const float centers[3][4] = {{2, 0, 0, 1}, {0, 2, 1, 0}, {-2, -1, 0, -1}};
  for (int64_t i = 0; i < n; ++i) {
    const int32_t c = static_cast<int32_t>(i % 3);
    b.y.push_back(c);
    for (int j = 0; j < 4; ++j) b.x[i * 4 + j] = centers[c][j] + static_cast<float>(0.6 * r.normal());
  }
  return b;
}

void build_mlp(nn::Sequential<float>& m, int64_t hidden = 16, bool dropout = true) {
  m.add<nn::Dense>(hidden, "relu");
  if (dropout) m.add<nn::Dropout>(0.2);
  m.add<nn::Dense>(3);
  m.build({4});
}

std::vector<float> all_weights(nn::Model<float>& m) {
  std::vector<float> w;
  for (auto& p : m.parameters()) w.insert(w.end(), p.second.value().data(), p.second.value().data() + p.second.value().numel());
  for (auto& p : m.buffers()) w.insert(w.end(), p.second.value().data(), p.second.value().data() + p.second.value().numel());
  return w;
}
bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Overwrites logs[key] with a scripted value per epoch (to drive monitor-based callbacks exactly).
struct Script : Callback<float> {
  std::string key;
  std::vector<double> values;
  std::vector<std::vector<float>> weights;  // model weights at each epoch end (before later callbacks)
  Script(std::string k, std::vector<double> v) : key(std::move(k)), values(std::move(v)) {}
  void on_epoch_end(TrainContext<float>& ctx, int64_t epoch, Logs& logs) override {
    logs[key] = values.at(static_cast<size_t>(epoch));
    weights.push_back(all_weights(*ctx.model));
  }
};

struct Threads1 {
  int prev = get_num_threads();
  Threads1() { set_num_threads(1); }
  ~Threads1() { set_num_threads(prev); }
};

}  // namespace

// ---- gradients between steps ----------------------------------------------------------------

TEST_CASE("fit's gradient reset zeroes the model's gradients and an optimizer parameter outside the model") {
  nn::Sequential<float> m;
  build_mlp(m, 8, false);
  std::vector<nn::NamedVar<float>> params = m.parameters(true);
  Var<float> extra(Tensor<float>::full({3}, 1.0f), true);  // a parameter the model does not own
  params.push_back({"extra", extra});
  optim::SGD<float> opt(params, 0.1);
  for (auto& p : params) p.second.node()->grad_buffer().fill(5.0f);
  train::detail::zero_grads_once(m, opt);
  for (auto& p : params) {
    CAPTURE(p.first);
    const Tensor<float>& g = p.second.grad();
    for (int64_t i = 0; i < g.numel(); ++i) CHECK(g.data()[i] == 0.0f);
  }
}

// ---- summary --------------------------------------------------------------------------------

TEST_CASE("summary: Keras-style table and parameter counts of a dense model, frozen layers non-trainable") {
  nn::Sequential<float> m;
  m.add<nn::Flatten>();
  m.add<nn::Dense>(128, "relu");
  m.add<nn::Dropout>(0.2);
  m.add<nn::Dense>(10);
  m.build({1, 28, 28});
  std::string s = summary(m);
  CHECK(s.find("Layer (type)") != std::string::npos);
  CHECK(s.find("Output Shape") != std::string::npos);
  CHECK(s.find("Param #") != std::string::npos);
  CHECK(s.find("flatten (Flatten)") != std::string::npos);
  CHECK(s.find("(None, 784)") != std::string::npos);
  CHECK(s.find("dense (Dense)") != std::string::npos);
  CHECK(s.find("100,480") != std::string::npos);
  CHECK(s.find("dense_1 (Dense)") != std::string::npos);
  CHECK(s.find("Total params: 101,770\n") != std::string::npos);
  CHECK(s.find("Trainable params: 101,770\n") != std::string::npos);
  CHECK(s.find("Non-trainable params: 0\n") != std::string::npos);
  m.set_trainable("dense", false);
  s = summary(m);
  CHECK(s.find("Trainable params: 1,290\n") != std::string::npos);
  CHECK(s.find("Non-trainable params: 100,480\n") != std::string::npos);
  CHECK(keras_shape({32, 148, 148}) == "(None, 148, 148, 32)");
  CHECK(thousands(2046406) == "2,046,406");
}

#ifdef TT_HAS_CONV
TEST_CASE("summary: the BN/Dropout model has Keras' 2,046,406 / 2,045,446 / 960 parameters") {
  nn::Sequential<float> m;
  for (int64_t f : {32, 64, 128, 256}) {
    m.add<nn::Conv2D>(f, 3, 1, "valid", "relu");
    m.add<nn::MaxPool2D>(2);
    m.add<nn::BatchNormalization>();
    m.add<nn::Dropout>(0.2);
  }
  m.add<nn::Flatten>();
  for (int i = 0; i < 4; ++i) {
    m.add<nn::Dense>(128, "relu");
    m.add<nn::Dropout>(0.2);
  }
  m.add<nn::Dense>(6);
  m.build({3, 150, 150});
  const std::string s = summary(m);
  INFO(s);
  CHECK(s.find("conv2d (Conv2D)") != std::string::npos);
  CHECK(s.find("(None, 148, 148, 32)") != std::string::npos);
  CHECK(s.find("(None, 74, 74, 32)") != std::string::npos);
  CHECK(s.find("(None, 7, 7, 256)") != std::string::npos);
  CHECK(s.find("(None, 12544)") != std::string::npos);
  CHECK(s.find("batch_normalization (BatchNormalization)") != std::string::npos);
  CHECK(s.find("Total params: 2,046,406\n") != std::string::npos);
  CHECK(s.find("Trainable params: 2,045,446\n") != std::string::npos);
  CHECK(s.find("Non-trainable params: 960\n") != std::string::npos);
  const ParamCounts c = count_params(m);
  CHECK(c.total == 2046406);
  CHECK(c.trainable == 2045446);
  CHECK(c.non_trainable == 960);
}
#endif

// ---- datasets -------------------------------------------------------------------------------

TEST_CASE("TensorDataset: seeded per-epoch shuffling, drop_last, seek and split") {
  Blobs b = make_blobs(10, 1);
  TensorDataset ds(b.x, b.y, TensorDataset::Options{4, true, 7, false});
  CHECK(ds.num_batches() == 3);
  CHECK(ds.epoch_order(0) == ds.epoch_order(0));
  CHECK(ds.epoch_order(0) != ds.epoch_order(1));
  Batch batch;
  ds.start_epoch(1);
  REQUIRE(ds.next(batch));
  REQUIRE(ds.next(batch));
  const std::vector<int32_t> second = batch.labels;
  ds.seek({1, 1});
  REQUIRE(ds.next(batch));
  CHECK(batch.labels == second);
  REQUIRE(ds.next(batch));
  CHECK(batch.size() == 2);  // the last, partial batch
  CHECK_FALSE(ds.next(batch));
  CHECK(ds.position().epoch == 2);
  TensorDataset dl(b.x, b.y, TensorDataset::Options{4, false, 0, true});
  CHECK(dl.num_batches() == 2);
  auto parts = ds.split(0.2);
  CHECK(parts.first->num_samples() == 8);
  CHECK(parts.second->num_samples() == 2);
  CHECK_THROWS_AS(ds.seek({0, 4}), ValueError);
}

// ---- fit / evaluate / predict ---------------------------------------------------------------

TEST_CASE("fit: a small MLP learns three blobs; evaluate and predict agree") {
  Blobs tr = make_blobs(300, 2), va = make_blobs(90, 3);
  nn::Sequential<float> m(1);
  build_mlp(m);
  optim::Adam<float> opt(m.parameters(true), 0.02);
  TensorDataset train(tr.x, tr.y, 32, true, 5);
  TensorDataset val(va.x, va.y, 64, false);
  FitOptions<float> o;
  o.epochs = 6;
  o.verbose = 0;
  o.validation = &val;
  o.metrics = {"accuracy", "top2_accuracy", "macro_f1"};
  History h = fit(m, opt, train, o);
  REQUIRE(h.size() == 6);
  CHECK(h["loss"].back() < h["loss"].front());
  CHECK(h["val_accuracy"].back() > 0.9);
  CHECK(h["val_top2_accuracy"].back() >= h["val_accuracy"].back());
  CHECK(h.has("lr"));
  CHECK(h.has("seconds"));
  CHECK(h.iterations == 6 * 10);
  CHECK(h.stop_reason.empty());
  CHECK(m.is_training());

  const Logs ev = evaluate(m, val, EvalOptions{LossKind::SoftmaxCrossEntropy, {"accuracy"}});
  CHECK(ev.at("loss") == doctest::Approx(h["val_loss"].back()).epsilon(1e-6));
  CHECK(ev.at("accuracy") == doctest::Approx(h["val_accuracy"].back()));
  const Tensor<float> p = predict(m, va.x, 16);
  REQUIRE(p.shape() == Shape{90, 3});
  for (int64_t i = 0; i < 90; ++i) CHECK((p[i * 3] + p[i * 3 + 1] + p[i * 3 + 2]) == doctest::Approx(1.0f).epsilon(1e-5));
  CHECK(accuracy(p, va.y) == doctest::Approx(ev.at("accuracy")));
  CHECK(m.is_training());  // predict/evaluate restore the mode
}

TEST_CASE("fit: validation_split, verbose output without control characters off a terminal") {
  Blobs tr = make_blobs(120, 4);
  nn::Sequential<float> m(2);
  build_mlp(m, 8, false);
  optim::SGD<float> opt(m.parameters(true), 0.1, 0.9);
  TensorDataset train(tr.x, tr.y, 20, true, 1);
  std::ostringstream out;
  FitOptions<float> o;
  o.epochs = 2;
  o.verbose = 1;
  o.out = &out;
  o.validation_split = 0.25;
  History h = fit(m, opt, train, o);
  CHECK(h.has("val_loss"));
  CHECK(h.has("val_accuracy"));
  const std::string s = out.str();
  CHECK(s.find("Epoch 1/2") != std::string::npos);
  CHECK(s.find("val_loss: ") != std::string::npos);
  CHECK(s.find("img/s") != std::string::npos);
  for (char c : s) CHECK_MESSAGE((c == '\n' || static_cast<unsigned char>(c) >= 32), "control character in output");
  std::ostringstream out2;
  o.verbose = 2;
  o.out = &out2;
  fit(m, opt, train, o);
  int lines = 0;
  for (char c : out2.str()) lines += c == '\n';
  CHECK(lines == 2);
  // On a terminal, verbose 1 redraws with '\r'.
  ProgressPrinter pp(1, &out2);
  pp.set_terminal(true);
  pp.epoch_begin(0, 1, 2);
  pp.batch_end(1, 10, {{"loss", 0.5}});
  CHECK(out2.str().find('\r') != std::string::npos);
}

TEST_CASE("fit: multi-label with binary cross-entropy; predict gives sigmoids") {
  Blobs tr = make_blobs(150, 5);
  // multi-hot: class c plus "class 2 when c == 0"
  Tensor<float> t({150, 3});
  for (int64_t i = 0; i < 150; ++i) {
    t[i * 3 + tr.y[static_cast<size_t>(i)]] = 1;
    if (tr.y[static_cast<size_t>(i)] == 0) t[i * 3 + 2] = 1;
  }
  nn::Sequential<float> m(3);
  build_mlp(m, 16, false);
  optim::Adam<float> opt(m.parameters(true), 0.02);
  TensorDataset train(tr.x, {}, TensorDataset::Options{25, true, 2, false}, t);
  FitOptions<float> o;
  o.epochs = 8;
  o.verbose = 0;
  o.loss = LossKind::BinaryCrossEntropy;
  o.metrics = {"accuracy", "f1", "macro_f1"};
  History h = fit(m, opt, train, o);
  CHECK(h["loss"].back() < h["loss"].front());
  CHECK(h["f1"].back() > 0.9);
  const Tensor<float> p = predict(m, tr.x, 64, true);
  for (int64_t i = 0; i < p.numel(); ++i) CHECK((p[i] >= 0 && p[i] <= 1));
  CHECK(multilabel_f1(p, t, 0.5) > 0.9);
}

TEST_CASE("fit: refuses a model ending in softmax and mismatched class weights") {
  Blobs tr = make_blobs(30, 6);
  nn::Sequential<float> m;
  m.add<nn::Dense>(3, "softmax");
  m.build({4});
  optim::SGD<float> opt(m.parameters(true), 0.1);
  TensorDataset train(tr.x, tr.y, 10);
  FitOptions<float> o;
  o.verbose = 0;
  CHECK_THROWS_AS(fit(m, opt, train, o), ValueError);
  nn::Sequential<float> m2;
  build_mlp(m2);
  optim::SGD<float> opt2(m2.parameters(true), 0.1);
  o.class_weights = {1, 2};
  CHECK_THROWS_AS(fit(m2, opt2, train, o), ValueError);
  o.class_weights = {1, 2, 0.5};
  CHECK_NOTHROW(fit(m2, opt2, train, o));
}

// ---- callbacks ------------------------------------------------------------------------------

TEST_CASE("callbacks: EarlyStopping with restore_best_weights puts the best epoch's weights back") {
  Blobs tr = make_blobs(60, 7);
  nn::Sequential<float> m(4);
  build_mlp(m);
  optim::SGD<float> opt(m.parameters(true), 0.05);
  TensorDataset train(tr.x, tr.y, 20, true, 3);
  auto script = std::make_shared<Script>("val_loss", std::vector<double>{1.0, 0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2});
  auto es = std::make_shared<EarlyStopping<float>>("val_loss", 0.0, 2, Mode::Auto, true);
  FitOptions<float> o;
  o.epochs = 8;
  o.verbose = 0;
  o.callbacks = {script, es};
  History h = fit(m, opt, train, o);
  CHECK(h.size() == 4);  // best at epoch 1, no improvement at 2 and 3 -> stop after epoch 3
  CHECK(es->stopped_epoch() == 3);
  CHECK(es->best_epoch() == 1);
  CHECK(es->best() == 0.5);
  CHECK(h.stop_reason == "early stopping");
  CHECK(es->restored());
  CHECK(bitwise_equal(all_weights(m), script->weights.at(1)));
  CHECK_FALSE(bitwise_equal(all_weights(m), script->weights.at(3)));
  // min_delta: 0.5 -> 0.45 is not an improvement of more than 0.1
  auto s2 = std::make_shared<Script>("val_loss", std::vector<double>{0.5, 0.45, 0.44, 0.43});
  auto es2 = std::make_shared<EarlyStopping<float>>("val_loss", 0.1, 1);
  o.callbacks = {s2, es2};
  History h2 = fit(m, opt, train, o);
  CHECK(h2.size() == 2);
  // A monitored key that does not exist is an error naming the available ones.
  o.callbacks = {std::make_shared<EarlyStopping<float>>("val_acc", 0.0, 1)};
  CHECK_THROWS_WITH_AS(fit(m, opt, train, o), doctest::Contains("val_acc"), ValueError);
}

TEST_CASE("callbacks: SWA averages the weights of the epochs from start_epoch on; frozen layers untouched") {
  Blobs tr = make_blobs(60, 8);
  nn::Sequential<float> m(5);
  build_mlp(m, 16, false);
  m.layer(0).set_trainable(false);  // averaged: the trainable weights only (here the second Dense)
  optim::SGD<float> opt(m.parameters(true), 0.05);
  TensorDataset train(tr.x, tr.y, 20, true, 3);
  auto script = std::make_shared<Script>("unused", std::vector<double>{0, 0, 0, 0});
  auto swa = std::make_shared<SWA<float>>(m, 1);
  FitOptions<float> o;
  o.epochs = 4;
  o.verbose = 0;
  o.callbacks = {script, swa};
  CHECK_THROWS_WITH_AS(swa->apply(), doctest::Contains("no epoch was averaged"), ValueError);
  fit(m, opt, train, o);
  CHECK(swa->count() == 3);
  const std::vector<float> last = all_weights(m);
  swa->apply();
  const std::vector<float> avg = all_weights(m);
  REQUIRE(avg.size() == last.size());
  const size_t frozen = static_cast<size_t>(4 * 16 + 16);  // the first Dense's kernel and bias
  int moved = 0;
  for (size_t i = 0; i < avg.size(); ++i) {
    const auto& w = script->weights;
    const double mean = (static_cast<double>(w[1][i]) + w[2][i] + w[3][i]) / 3;
    CHECK(avg[i] == doctest::Approx(mean).epsilon(1e-5));
    if (i < frozen) CHECK(avg[i] == w[0][i]);
    moved += avg[i] != last[i];
  }
  CHECK(moved > 0);  // the average is not the last epoch's weights
  CHECK_THROWS_WITH_AS(SWA<float>(m, -1), doctest::Contains("start_epoch"), ValueError);
  // The trainable set changed since averaging started: refused, not silently mixed.
  m.layer(0).set_trainable(true);
  CHECK_THROWS_WITH_AS(swa->apply(), doctest::Contains("trainable parameters changed"), ValueError);
}

TEST_CASE("callbacks: ReduceLROnPlateau and LearningRateScheduler") {
  Blobs tr = make_blobs(30, 8);
  nn::Sequential<float> m(5);
  build_mlp(m);
  optim::SGD<float> opt(m.parameters(true), 0.08);
  TensorDataset train(tr.x, tr.y, 10, true, 3);
  auto script = std::make_shared<Script>("val_loss", std::vector<double>{1.0, 1.0, 1.0, 0.5, 0.6});
  auto rl = std::make_shared<ReduceLROnPlateau<float>>("val_loss", 0.5, 1);
  FitOptions<float> o;
  o.epochs = 5;
  o.verbose = 0;
  o.callbacks = {script, rl};
  History h = fit(m, opt, train, o);
  // lr is logged before the callbacks run: epoch 0 0.08, plateau at 1 -> 0.04, at 2 -> 0.02,
  // improvement at 3, plateau at 4 -> 0.01.
  const std::vector<double> lr = h["lr"];
  CHECK(lr[0] == doctest::Approx(0.08));
  CHECK(lr[1] == doctest::Approx(0.08));
  CHECK(lr[2] == doctest::Approx(0.04));
  CHECK(lr[3] == doctest::Approx(0.02));
  CHECK(lr[4] == doctest::Approx(0.02));
  CHECK(opt.lr() == doctest::Approx(0.01));
  CHECK(rl->reductions() == 3);

  auto sched = std::make_shared<LearningRateScheduler<float>>(std::make_shared<optim::StepDecay>(0.1, 2, 0.5));
  o.callbacks = {sched};
  o.epochs = 4;
  h = fit(m, opt, train, o);
  CHECK(h["lr"] == std::vector<double>{0.1, 0.1, 0.05, 0.05});
  auto fn = std::make_shared<LearningRateScheduler<float>>([](int64_t epoch, double) { return 0.01 * static_cast<double>(epoch + 1); });
  o.callbacks = {fn};
  h = fit(m, opt, train, o);
  CHECK(h["lr"][3] == doctest::Approx(0.04));
}

TEST_CASE("callbacks: ModelCheckpoint save_best_only saves only on improvement; CSVLogger") {
  TrainTempDir dir;
  Blobs tr = make_blobs(30, 9);
  nn::Sequential<float> m(6);
  build_mlp(m);
  optim::SGD<float> opt(m.parameters(true), 0.05);
  TensorDataset train(tr.x, tr.y, 10, true, 3);
  std::vector<std::string> saved;
  auto script = std::make_shared<Script>("val_loss", std::vector<double>{1.0, 0.5, 0.7, 0.4, 0.4});
  auto mc = std::make_shared<ModelCheckpoint<float>>(dir / "m-{epoch:02d}.bin", [&](const std::string& p) { saved.push_back(p); },
                                                     "val_loss", Mode::Min, true);
  auto csv = std::make_shared<CSVLogger<float>>(dir / "log.csv");
  FitOptions<float> o;
  o.epochs = 5;
  o.verbose = 0;
  o.callbacks = {script, mc, csv};
  fit(m, opt, train, o);
  CHECK(saved == std::vector<std::string>{dir / "m-01.bin", dir / "m-02.bin", dir / "m-04.bin"});
  CHECK(mc->best() == 0.4);
  // every epoch without save_best_only
  saved.clear();
  o.callbacks = {std::make_shared<ModelCheckpoint<float>>(dir / "e{epoch}.bin", [&](const std::string& p) { saved.push_back(p); })};
  o.epochs = 2;
  o.callbacks.insert(o.callbacks.begin(), std::make_shared<Script>("val_loss", std::vector<double>{1, 1}));
  fit(m, opt, train, o);
  CHECK(saved == std::vector<std::string>{dir / "e1.bin", dir / "e2.bin"});
  const std::string log = read_bytes(dir / "log.csv");
  CHECK(log.rfind("epoch,accuracy,loss,lr,seconds,val_loss\n", 0) == 0);
  int lines = 0;
  for (char c : log) lines += c == '\n';
  CHECK(lines == 6);
}

TEST_CASE("callbacks: TerminateOnNaN — a blown-up loss stops training and the last good checkpoint stays intact") {
  TrainTempDir dir;
  Blobs tr = make_blobs(60, 10);
  nn::Sequential<float> m(7);
  build_mlp(m, 16, false);
  optim::SGD<float> opt(m.parameters(true), 0.05);
  TensorDataset train(tr.x, tr.y, 10, true, 3);
  const std::string ck = dir / "run.ckpt";
  std::string good;
  struct Blowup : Callback<float> {
    std::string* good;
    std::string path;
    void on_epoch_begin(TrainContext<float>& ctx, int64_t epoch) override {
      if (epoch == 2) {
        *good = read_bytes(path);
        ctx.optimizer->set_lr(1e30);  // huge: the weights overflow within a few steps
      }
    }
  };
  auto blow = std::make_shared<Blowup>();
  blow->good = &good;
  blow->path = ck;
  FitOptions<float> o;
  o.epochs = 6;
  o.verbose = 0;
  o.checkpoint_path = ck;
  o.callbacks = {blow, std::make_shared<TerminateOnNaN<float>>()};
  History h = fit(m, opt, train, o);
  CHECK(h.terminated_on_nan);
  CHECK(h.stop_reason == "non-finite loss");
  CHECK(h.size() == 2);  // epochs 0 and 1 finished
  REQUIRE_FALSE(good.empty());
  CHECK(read_bytes(ck) == good);
  // The checkpoint loads into fresh objects and its weights are finite.
  nn::Sequential<float> m2(7);
  build_mlp(m2, 16, false);
  optim::SGD<float> opt2(m2.parameters(true), 0.05);
  const CheckpointState st = load_checkpoint(ck, m2, opt2, fit_config(m2, opt2, train, o));
  CHECK(st.epoch == 2);
  for (float w : all_weights(m2)) CHECK(std::isfinite(w));
  // With terminate_on_nan off, the LossError reaches the caller.
  nn::Sequential<float> m3(7);
  build_mlp(m3, 16, false);
  optim::SGD<float> opt3(m3.parameters(true), 1e30);
  o.terminate_on_nan = false;
  o.checkpoint_path.clear();
  o.callbacks.clear();
  CHECK_THROWS_AS(fit(m3, opt3, train, o), LossError);
}

// ---- History --------------------------------------------------------------------------------

TEST_CASE("History: CSV and JSON") {
  TrainTempDir dir;
  History h;
  h.add(0, {{"loss", 0.5}, {"accuracy", 0.75}, {"lr", 0.001}});
  h.add(1, {{"loss", 0.25}, {"accuracy", 0.875}, {"lr", 0.0005}, {"val_loss", 0.3}});
  CHECK(h.to_csv() == "epoch,accuracy,loss,lr,val_loss\n0,0.75,0.5,0.001,\n1,0.875,0.25,0.0005,0.3\n");
  CHECK(h["loss"] == std::vector<double>{0.5, 0.25});
  CHECK(std::isnan(h["val_loss"][0]));
  const History back = History::from_json(h.to_json());
  CHECK(back.epochs == h.epochs);
  CHECK(back.logs[1] == h.logs[1]);
  CHECK(back.logs[0].at("loss") == 0.5);
  CHECK(std::isnan(back.logs[0].at("val_loss")));
  h.save_csv(dir / "h.csv");
  h.save_json(dir / "h.json");
  CHECK(read_bytes(dir / "h.csv") == h.to_csv());
  CHECK(History::from_json(read_bytes(dir / "h.json")).logs[1] == h.logs[1]);
  CHECK_THROWS_AS(History::from_json("{\"loss\": [1]}"), FormatError);
  CHECK_THROWS_AS(History::from_json("not json"), FormatError);
  CHECK(format_double(0.1) == "0.1");
  CHECK(std::stod(format_double(1.0 / 3)) == 1.0 / 3);
}

// ---- checkpoints and resume -----------------------------------------------------------------

namespace {
struct ResumeRun {
  nn::Sequential<float> model;
  optim::Adam<float> opt;
  TensorDataset data;
  FitOptions<float> o;
  ResumeRun(uint64_t seed, const Blobs& b, int64_t hidden = 16)
      : model(seed), opt((build_mlp(model, hidden), model.parameters(true)), 0.01), data(b.x, b.y, 12, true, 11) {
    o.epochs = 3;
    o.verbose = 0;
    o.metrics = {"accuracy", "macro_f1"};
  }
};
// Stops the process right after a checkpoint at step k, as a kill after the save would.
struct DieAt : Callback<float> {
  int64_t k;
  std::string path;
  DieAt(int64_t k_, std::string p) : k(k_), path(std::move(p)) {}
  void on_batch_end(TrainContext<float>& ctx, int64_t, const Logs&) override {
    if (ctx.iteration == k) {
      ctx.save_checkpoint(path);
      std::_Exit(0);
    }
  }
};
}  // namespace

TEST_CASE("resume: k steps, process killed, resumed in fresh objects == straight through, bitwise") {
  Threads1 one;
  TrainTempDir dir;
  const Blobs b = make_blobs(96, 12);  // 8 batches per epoch, 24 steps
  ResumeRun straight(21, b);
  const History hs = fit(straight.model, straight.opt, straight.data, straight.o);
  REQUIRE(hs.iterations == 24);

  const std::string ck = dir / "resume.ckpt";
  for (int64_t k : {11, 16}) {  // mid-epoch 1, and an epoch boundary (step 16 = end of epoch 1's last batch)
    CAPTURE(k);
    std::remove(ck.c_str());
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      try {
        ResumeRun child(21, b);
        child.o.callbacks = {std::make_shared<DieAt>(k, ck)};
        fit(child.model, child.opt, child.data, child.o);
      } catch (...) {
      }
      std::_Exit(3);  // did not reach step k
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    REQUIRE(file_exists(ck));

    ResumeRun resumed(99, b);  // another seed: everything must come from the checkpoint
    resumed.o.resume_from = ck;
    const History hr = fit(resumed.model, resumed.opt, resumed.data, resumed.o);
    CHECK(hr.iterations == 24);
    CHECK(resumed.opt.steps() == straight.opt.steps());
    CHECK(bitwise_equal(all_weights(resumed.model), all_weights(straight.model)));
    std::vector<float> sa, sb;
    for (auto& s : straight.opt.state()) sa.insert(sa.end(), s.second.data(), s.second.data() + s.second.numel());
    for (auto& s : resumed.opt.state()) sb.insert(sb.end(), s.second.data(), s.second.data() + s.second.numel());
    CHECK(bitwise_equal(sa, sb));
    REQUIRE(hr.size() == 3);
    CHECK(hr["loss"] == hs["loss"]);
    CHECK(hr["accuracy"] == hs["accuracy"]);
  }
}

TEST_CASE("resume: another architecture or optimizer configuration is refused") {
  TrainTempDir dir;
  const Blobs b = make_blobs(48, 13);
  ResumeRun run(1, b);
  run.o.epochs = 1;
  run.o.checkpoint_path = dir / "a.ckpt";
  fit(run.model, run.opt, run.data, run.o);
  REQUIRE(file_exists(run.o.checkpoint_path));

  ResumeRun wider(1, b, 32);
  wider.o.resume_from = run.o.checkpoint_path;
  const std::vector<float> before = all_weights(wider.model);
  CHECK_THROWS_WITH_AS(fit(wider.model, wider.opt, wider.data, wider.o), doctest::Contains("another architecture"), ResumeError);
  CHECK(bitwise_equal(all_weights(wider.model), before));  // untouched

  nn::Sequential<float> m(1);
  build_mlp(m);
  optim::SGD<float> sgd(m.parameters(true), 0.01, 0.9);
  FitOptions<float> o = run.o;
  o.checkpoint_path.clear();
  o.resume_from = run.o.checkpoint_path;
  CHECK_THROWS_WITH_AS(fit(m, sgd, run.data, o), doctest::Contains("optimizer"), ResumeError);
  optim::Adam<float> adam2(m.parameters(true), 0.02);  // another learning rate
  CHECK_THROWS_AS(fit(m, adam2, run.data, o), ResumeError);
  optim::Adam<float> adam(m.parameters(true), 0.01);
  o.loss = LossKind::BinaryCrossEntropy;  // another training setup
  CHECK_THROWS_AS(fit(m, adam, run.data, o), ResumeError);
  o.loss = LossKind::SoftmaxCrossEntropy;
  o.epochs = 2;
  const History h = fit(m, adam, run.data, o);  // the same configuration resumes
  CHECK(h.size() == 2);
  CHECK(h.iterations == 8);
  // Not a checkpoint at all.
  std::ofstream(dir / "junk") << "junk";
  o.resume_from = dir / "junk";
  CHECK_THROWS_AS(fit(m, adam, run.data, o), FormatError);
}

// ---- SIGINT ---------------------------------------------------------------------------------

namespace {
volatile std::sig_atomic_t g_user_handler_hits = 0;
void user_handler(int) { g_user_handler_hits = 1; }
}  // namespace

TEST_CASE("SIGINT during fit: the step finishes, a checkpoint is written, fit returns; the old handler is restored") {
  TrainTempDir dir;
  const Blobs b = make_blobs(48, 14);  // 4 batches per epoch
  struct sigaction mine {}, old {};
  mine.sa_handler = user_handler;
  sigemptyset(&mine.sa_mask);
  REQUIRE(sigaction(SIGINT, &mine, &old) == 0);

  struct RaiseAt : Callback<float> {
    int64_t at;
    explicit RaiseAt(int64_t a) : at(a) {}
    void on_batch_end(TrainContext<float>& ctx, int64_t, const Logs&) override {
      if (ctx.iteration == at) std::raise(SIGINT);
    }
  };
  ResumeRun run(3, b);
  run.o.epochs = 3;
  run.o.checkpoint_path = dir / "int.ckpt";
  run.o.callbacks = {std::make_shared<RaiseAt>(6)};
  const History h = fit(run.model, run.opt, run.data, run.o);
  CHECK(h.interrupted);
  CHECK(h.stop_reason == "interrupted (SIGINT)");
  CHECK(h.iterations == 6);
  CHECK(run.opt.steps() == 6);
  CHECK(h.size() == 1);  // epoch 0 finished, epoch 1 interrupted after 2 steps
  CHECK(g_user_handler_hits == 0);
  const auto md = read_checkpoint_metadata(run.o.checkpoint_path);
  CHECK(md.at("iteration") == "6");
  CHECK(md.at("epoch") == "1");
  CHECK(md.at("batch") == "2");
  // The previous handler is back.
  struct sigaction now {};
  REQUIRE(sigaction(SIGINT, nullptr, &now) == 0);
  const bool restored = now.sa_handler == user_handler;
  CHECK(restored);
  CHECK_FALSE(interrupt_requested());
  // Resuming finishes the run.
  ResumeRun again(3, b);
  again.o.resume_from = run.o.checkpoint_path;
  const History h2 = fit(again.model, again.opt, again.data, again.o);
  CHECK(h2.iterations == 12);
  CHECK(h2.size() == 3);
  sigaction(SIGINT, &old, nullptr);
}

// ---- the data pipeline's loader as a batch source -------------------------------------------

#ifdef TINYCNN_TRAIN_HAS_LOADER
TEST_CASE("LoaderSource: fit on an image folder through data::DataLoader, positions and seek") {
  TrainTempDir dir;
  const std::string bad = std::string(TINYCNN_TEST_DATA_DIR) + "/bad_images/";
  const char* goods[] = {"good.jpg", "good.png", "image.bmp"};
  for (const char* cls : {"a", "b", "c"}) {
    REQUIRE(std::system(("mkdir -p '" + dir / cls + "'").c_str()) == 0);
    for (const char* g : goods)
      REQUIRE(std::system(("cp '" + bad + g + "' '" + dir / cls + "/" + g + "'").c_str()) == 0);
  }
  auto folder = std::make_shared<data::ImageFolder>(dir.path);
  REQUIRE(folder->size() == 9);
  data::LoaderOptions lo;
  lo.width = lo.height = 8;
  lo.batch_size = 4;
  lo.seed = 5;
  lo.num_workers = 1;
  data::DataLoader loader(folder, lo);
  LoaderSource src(loader);
  CHECK(src.num_batches() == 3);
  CHECK(src.num_samples() == 9);
  Batch b;
  src.seek({2, 1});
  REQUIRE(src.next(b));
  CHECK(b.x.shape() == Shape{4, 3, 8, 8});
  const std::vector<float> second = b.x.to_vector();
  CHECK(src.position().batch == 2);
  src.seek({2, 1});
  REQUIRE(src.next(b));
  CHECK(b.x.to_vector() == second);

  nn::Sequential<float> m(8);
  m.add<nn::Flatten>();
  m.add<nn::Dense>(3);
  m.build({3, 8, 8});
  optim::SGD<float> opt(m.parameters(true), 0.01);
  FitOptions<float> o;
  o.epochs = 2;
  o.verbose = 0;
  o.checkpoint_path = dir / "l.ckpt";
  const History h = fit(m, opt, src, o);
  CHECK(h.size() == 2);
  CHECK(h.iterations == 6);
  CHECK(read_checkpoint_metadata(o.checkpoint_path).at("epoch") == "2");
}
#endif

TEST_CASE("update_batch_norm: moving statistics = the average of the batch statistics; momentum and mode restored") {
  // Dense(2) -> BatchNormalization -> Dropout: 3 batches of 4 rows with different scales.
  nn::Sequential<float> m(3);
  m.add<nn::Dense>(2);
  auto& bn = m.add<nn::BatchNormalization>(0.99);
  m.add<nn::Dropout>(0.5);
  m.build({3});
  Rng rng(11);
  Tensor<float> x({12, 3});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(rng.uniform(-1, 1) * (1 + i / 12));
  TensorDataset ds(x, std::vector<int32_t>(12, 0), TensorDataset::Options{4, false, 0, false});
  // Expected: mean over the 3 batches of each batch's mean / unbiased variance of Dense's output.
  std::vector<double> mean(2, 0), var(2, 0);
  {
    NoGradGuard ng;
    const Tensor<float> h = m.layer(0).forward({Var<float>(x)}).value();  // Dense output [12, 2]
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 2; ++c) {
        double s = 0, ss = 0;
        for (int r = 0; r < 4; ++r) s += h[(b * 4 + r) * 2 + c];
        const double mu = s / 4;
        for (int r = 0; r < 4; ++r) ss += (h[(b * 4 + r) * 2 + c] - mu) * (h[(b * 4 + r) * 2 + c] - mu);
        mean[c] += mu / 3;
        var[c] += ss / 3 / 3;  // unbiased (n - 1 = 3), averaged over 3 batches
      }
  }
  m.train();
  CHECK(train::update_batch_norm(m, ds) == 1);
  for (int c = 0; c < 2; ++c) {
    CHECK(bn.moving_mean().value()[c] == doctest::Approx(mean[c]).epsilon(1e-5));
    CHECK(bn.moving_variance().value()[c] == doctest::Approx(var[c]).epsilon(1e-5));
  }
  CHECK(bn.momentum() == 0.99);
  CHECK(m.is_training());
  CHECK(m.layer(2).training());  // dropout back in training mode
  // A frozen batch norm is left alone (0 layers); no batch at all is an error.
  bn.set_trainable(false);
  CHECK(train::update_batch_norm(m, ds) == 0);
  bn.set_trainable(true);
  CHECK_THROWS_WITH_AS(train::update_batch_norm(m, ds, 0), doctest::Contains("no batch"), ValueError);
}
