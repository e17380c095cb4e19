// examples/intel_scenes: model parameter counts, and the CLI's commands through the functions they
// call (train a short epoch into a temporary RUNDIR, evaluate/predict on the shipped sample, bench),
// plus exit codes and error lines of the built binary.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "../examples/intel_scenes/cmd_bench.hpp"
#include "../examples/intel_scenes/cmd_demo.hpp"
#include "../examples/intel_scenes/cmd_ensemble.hpp"
#include "../examples/intel_scenes/cmd_evaluate.hpp"
#include "../examples/intel_scenes/cmd_predict.hpp"
#include "../examples/intel_scenes/cmd_train.hpp"
#include "../examples/intel_scenes/models.hpp"

namespace {

namespace fs = std::filesystem;
using namespace intel_scenes;

std::string scenes_src() { return std::string(TINYCNN_SOURCE_DIR) + "/examples/intel_scenes"; }
std::string sample() { return scenes_src() + "/sample"; }
std::string shipped() { return scenes_src() + "/pretrained/scenes.safetensors"; }

struct ScenesTempDir {
  fs::path p;
  ScenesTempDir() {
    p = fs::temp_directory_path() / ("tinycnn_scenes_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    fs::remove_all(p);
    fs::create_directories(p);
  }
  ~ScenesTempDir() {
    std::error_code ec;
    fs::remove_all(p, ec);
  }
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::string str(const std::string& sub = "") const { return sub.empty() ? p.string() : (p / sub).string(); }
};

std::string last_line(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  const auto nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

// A small model file for the sample's six classes (a 1-epoch resnet at size x size, default 32).
std::string tiny_model(const ScenesTempDir& d, uint64_t seed = 0, int size = 32) {
  TrainArgs a;
  a.data = sample();
  a.seed = seed;
  a.model = "resnet";
  a.input_size = size;
  a.epochs = 1;
  a.max_per_class = 4;
  a.val_split = 0.25;
  a.workers = 0;
  a.verbose = 0;
  a.out = d.str("run");
  std::ostringstream os;
  run_train(a, os);
  return d.str("run/model.safetensors");
}

int run_binary(const std::string& args, std::string* err = nullptr) {
  const std::string bin = std::string(TINYCNN_BINARY_DIR) + "/examples/intel_scenes/intel_scenes";
  const std::string errf = (fs::temp_directory_path() / ("tinycnn_scenes_err_" + std::to_string(::getpid()))).string();
  const int st = std::system((bin + " " + args + " >/dev/null 2>" + errf).c_str());
  if (err) {
    std::ifstream in(errf);
    std::stringstream ss;
    ss << in.rdbuf();
    *err = ss.str();
  }
  std::remove(errf.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace

TEST_CASE("intel_scenes: every model's summary shows the issue's parameter count") {
  const std::vector<std::pair<std::string, int64_t>> want = {
      {"baseline", 8640902}, {"model2", 7319494}, {"model3", 44044102}, {"model004", 2046406}, {"sorter_cnn", 17086902}};
  for (const auto& w : want) {
    INFO(w.first);
    auto m = make_model(w.first, 6, 0);
    CHECK(train::count_params(*m).total == w.second);
    CHECK(train::summary(*m).find("Total params: " + train::thousands(w.second) + "\n") != std::string::npos);
  }
  CHECK(make_model("sorter_cnn", 6, 0)->input_shape() == Shape{3, 256, 256});
  CHECK(make_model("model3", 6, 0)->output_shape() == Shape{6});
  auto r = make_model("resnet", 6, 0);
  CHECK(r->type() == "Functional");
  CHECK(r->input_shape() == Shape{3, 64, 64});
  CHECK(train::count_params(*r).total == 309478);
  auto r14 = make_model("resnet14", 6, 0, 128);  // two blocks per stage, built at another input size
  CHECK(r14->input_shape() == Shape{3, 128, 128});
  CHECK(train::count_params(*r14).total == 698342);
  CHECK_THROWS_WITH_AS(make_model("model3", 6, 0, 128), doctest::Contains("built for 150x150"), ValueError);
  CHECK(train::count_params(*make_model("baseline", 3, 0)).total == 8640128 + 129 * 3);  // classes come from the data
#if defined(TINYCNN_HAS_HDF5) && defined(TINYCNN_HAS_JSON)
  if (fs::exists(mobilenet_h5_path())) {
    auto mb = make_model("mobilenet_transfer", 6, 0);
    const train::ParamCounts c = train::count_params(*mb);
    CHECK(c.total == 220086);      // MobileNetV1 0.25 up to its global pooling + Dense(6)
    CHECK(c.trainable == 70406);   // the last block and the head
    CHECK(mb->input_shape() == Shape{3, 224, 224});
  } else {
    MESSAGE("no " << mobilenet_h5_path() << "; mobilenet_transfer not checked");
  }
#else
  try {
    (void)make_model("mobilenet_transfer", 6, 0);
    FAIL("mobilenet_transfer should need the Keras import");
  } catch (const ValueError& e) {
    CHECK(std::string(e.what()).find("Keras .h5 import") != std::string::npos);
  }
#endif
  CHECK_THROWS_AS(make_model("nope", 6, 0), ValueError);
}

TEST_CASE("intel_scenes train: one short epoch writes the model, history.csv and the last line") {
  ScenesTempDir d;
  TrainArgs a;
  a.data = sample();
  a.model = "resnet";
  a.input_size = 32;
  a.epochs = 1;
  a.max_per_class = 4;
  a.val_split = 0.25;
  a.workers = 1;
  a.out = d.str("run");
  std::ostringstream os;
  TrainResult r = run_train(a, os);
  const std::string out = os.str();
  INFO(out);
  CHECK(fs::exists(d.str("run/model.safetensors")));
  CHECK(fs::exists(d.str("run/history.csv")));
  CHECK(std::regex_match(last_line(out), std::regex("best val accuracy: [01]\\.[0-9]{4}")));
  CHECK(r.train_images == 18);
  CHECK(r.val_images == 6);
  io::LoadedModel m = io::load_model(d.str("run/model.safetensors"));
  CHECK(m.info.class_names == std::vector<std::string>{"buildings", "forest", "glacier", "mountain", "sea", "street"});
  CHECK(m.info.preprocessing.rescale == doctest::Approx(1.0 / 255));
  CHECK(m.model->input_shape() == Shape{3, 32, 32});
  std::ifstream h(d.str("run/history.csv"));
  std::string header;
  std::getline(h, header);
  CHECK(header.find("val_accuracy") != std::string::npos);

  // Bad arguments name the argument.
  TrainArgs bad = a;
  bad.epochs = 0;
  CHECK_THROWS_WITH_AS(run_train(bad, os), doctest::Contains("--epochs"), UsageError);
  bad = a;
  bad.augment = "wild";
  CHECK_THROWS_WITH_AS(run_train(bad, os), doctest::Contains("--augment"), UsageError);
  bad = a;
  bad.bn_momentum = 1.5;
  CHECK_THROWS_WITH_AS(run_train(bad, os), doctest::Contains("--bn-momentum"), UsageError);
  bad = a;
  bad.device = "tpu";
  CHECK_THROWS_WITH_AS(run_train(bad, os), doctest::Contains("--device"), UsageError);
  bad = a;
  bad.label_smoothing = 1.0;
  CHECK_THROWS_WITH_AS(run_train(bad, os), doctest::Contains("--label-smoothing"), UsageError);
  bad = a;
  bad.label_smoothing = 0.1;
  bad.multi_label = true;
  CHECK_THROWS_WITH_AS(run_train(bad, os), doctest::Contains("--label-smoothing"), UsageError);
  bad = a;
  bad.model = "model2";  // no batch norm to set
  bad.input_size = 0;
  bad.bn_momentum = 0.9;
  CHECK_THROWS_WITH_AS(run_train(bad, os), doctest::Contains("no BatchNormalization"), UsageError);

  // --bn-momentum reaches every batch norm layer and the saved file (the resnet's own is 0.9).
  TrainArgs mom = a;
  mom.bn_momentum = 0.5;
  mom.bn_recalibrate = true;  // and the statistics re-estimated on the unaugmented training images
  mom.label_smoothing = 0.1;  // recorded in the file's extras
  mom.verbose = 0;
  mom.out = d.str("run_mom");
  std::ostringstream mos;
  run_train(mom, mos);
  CHECK(mos.str().find("unaugmented training images: val accuracy") != std::string::npos);
  bad = a;
  bad.model = "model2";
  bad.input_size = 0;
  bad.bn_recalibrate = true;
  CHECK_THROWS_WITH_AS(run_train(bad, os), doctest::Contains("--bn-recalibrate"), UsageError);
  io::LoadedModel mm = io::load_model(d.str("run_mom/model.safetensors"));
  int bn_layers = 0;
  for (const auto& e : mm.model->entries())
    if (auto* bn = dynamic_cast<nn::BatchNormalization<float>*>(e.layer.get())) {
      CHECK(bn->momentum() == 0.5);
      ++bn_layers;
    }
  CHECK(bn_layers > 0);
  CHECK(mm.info.extras.at("bn_momentum") == "0.500000");
  CHECK(mm.info.extras.at("label_smoothing") == "0.1");
  CHECK(io::load_model(d.str("run/model.safetensors")).info.extras.count("label_smoothing") == 0);

  // --swa-from 1 over 2 epochs: the mean of both epochs' weights, batch norm re-estimated, evaluated,
  // and kept only if validation accuracy does not drop (either way the line says which).
  TrainArgs sw = a;
  sw.epochs = 2;
  sw.swa_from = 1;
  sw.verbose = 0;
  sw.out = d.str("run_swa");
  std::ostringstream sos;
  const TrainResult sr = run_train(sw, sos);
  const std::string so = sos.str();
  INFO(so);
  const auto at = so.find("SWA: the mean of 2 epochs' weights (epochs 1-2), batch-norm statistics of ");
  REQUIRE(at != std::string::npos);
  const bool kept = so.find("(kept)", at) != std::string::npos;
  CHECK(kept != (so.find("(not kept)", at) != std::string::npos));
  CHECK(io::load_model(d.str("run_swa/model.safetensors")).info.extras.count("swa") == (kept ? 1u : 0u));
  CHECK(last_line(so) == "best val accuracy: " + fixed4(sr.best_val_accuracy));
  bad = a;
  bad.swa_from = 2;  // after the last epoch
  CHECK_THROWS_WITH_AS(run_train(bad, os), doctest::Contains("--swa-from"), UsageError);
  bad = a;
  bad.swa_from = 1;
  bad.resume = d.str("run");
  CHECK_THROWS_WITH_AS(run_train(bad, os), doctest::Contains("--swa-from: cannot be combined with --resume"), UsageError);
}

TEST_CASE("intel_scenes train --split-seed: members of an ensemble train with other seeds on one validation split") {
  ScenesTempDir d;
  TrainArgs a;
  a.data = sample();
  a.model = "resnet";
  a.input_size = 16;
  a.epochs = 1;
  a.max_per_class = 8;
  a.val_split = 0.25;
  a.workers = 0;
  a.verbose = 0;
  std::ostringstream os;
  auto run = [&](uint64_t seed, int64_t split_seed) {
    TrainArgs b = a;
    b.seed = seed;
    b.split_seed = split_seed;
    b.out = d.str("run_" + std::to_string(seed) + "_" + std::to_string(split_seed));
    return run_train(b, os);
  };
  const TrainResult r0 = run(0, -1), r1 = run(1, 0), r2 = run(1, -1);
  REQUIRE(r0.val_files.size() == 12);
  CHECK(r1.val_files == r0.val_files);  // --seed 1 --split-seed 0: seed 0's split
  CHECK(r2.val_files != r0.val_files);  // --seed 1 alone moves the split too
}

TEST_CASE("intel_scenes train --init --trainable-from: fine-tunes a model file, frozen layers stay bitwise") {
  ScenesTempDir d;
  const std::string init = tiny_model(d);
  io::LoadedModel before = io::load_model(init);
  const size_t n = before.model->size();
  REQUIRE(n >= 3);
  const std::string last = before.model->layer(n - 1).name();  // the Dense head

  TrainArgs a;
  a.data = sample();
  a.init = init;
  a.trainable_from = last;
  a.epochs = 1;
  a.max_per_class = 4;
  a.val_split = 0.25;
  a.workers = 0;
  a.verbose = 0;
  a.out = d.str("ft");
  std::ostringstream os;
  run_train(a, os);
  io::LoadedModel after = io::load_model(d.str("ft/model.safetensors"));
  CHECK(after.model->input_shape() == Shape{3, 32, 32});  // the size comes from the file
  CHECK(after.info.preprocessing.rescale == before.info.preprocessing.rescale);
  CHECK(after.info.extras.at("init") == init);
  CHECK(after.info.extras.at("model") == "resnet");
  CHECK_FALSE(after.model->layer(0).trainable());
  CHECK(after.model->layer(n - 1).trainable());
  auto pb = before.model->parameters(), pa = after.model->parameters();
  REQUIRE(pb.size() == pa.size());
  bool head_changed = false;
  for (size_t i = 0; i < pb.size(); ++i) {
    const auto& x = pb[i].second.value();
    const auto& y = pa[i].second.value();
    const bool same = std::equal(x.data(), x.data() + x.numel(), y.data());
    if (pb[i].first.rfind(last + "/", 0) == 0) {
      head_changed = head_changed || !same;
    } else {
      INFO(pb[i].first);
      CHECK(same);  // frozen
    }
  }
  CHECK(head_changed);

  // Errors name the argument.
  TrainArgs bad = a;
  bad.trainable_from = "no_such_layer";
  CHECK_THROWS_WITH_AS(run_train(bad, os), doctest::Contains("--trainable-from"), UsageError);
  bad = a;
  bad.model = "resnet";
  CHECK_THROWS_WITH_AS(run_train(bad, os), doctest::Contains("--init"), UsageError);
  bad = a;
  bad.multi_label = true;
  CHECK_THROWS_WITH_AS(run_train(bad, os), doctest::Contains("single-label"), UsageError);

  // --input-size with --init: the (fully convolutional) resnet continues at 40x40, weights carried over.
  TrainArgs up = a;
  up.trainable_from.clear();
  up.input_size = 40;
  up.out = d.str("ft40");
  run_train(up, os);
  io::LoadedModel at40 = io::load_model(d.str("ft40/model.safetensors"));
  CHECK(at40.model->input_shape() == Shape{3, 40, 40});
  CHECK(at40.info.preprocessing.input_size == std::vector<int64_t>{40, 40});
  CHECK(train::count_params(*at40.model).total == train::count_params(*before.model).total);
  bad = a;
  bad.init.clear();
  bad.trainable_from.clear();
  bad.model = "model2";  // Flatten + Dense: its weights depend on the input size
  bad.input_size = 64;
  CHECK_THROWS_WITH_AS(run_train(bad, os), doctest::Contains("take another input size"), UsageError);
}

TEST_CASE("intel_scenes ensemble: two model files -> one that averages their logits; mismatches refused") {
  ScenesTempDir d1, d2, d3;
  const std::string m1 = tiny_model(d1, 1), m2 = tiny_model(d2, 2);
  EnsembleArgs a;
  a.models = {m1, m2};
  a.out = d3.str("ens.safetensors");
  std::ostringstream os;
  run_ensemble(a, os);
  CHECK(os.str().find("wrote ") == 0);
  ScenesModel e = load_scenes_model(a.out), s1 = load_scenes_model(m1), s2 = load_scenes_model(m2);
  CHECK(e.m.info.class_names == s1.m.info.class_names);
  CHECK(e.m.info.extras.at("ensemble_of") == m1 + "," + m2);
  const data::Image im = data::load_image_file(list_images(sample() + "/forest").at(0));
  const Tensor<float> pe = predict_images(e, {&im}), p1 = predict_images(s1, {&im}), p2 = predict_images(s2, {&im});
  // predict_images gives softmax probabilities; log p minus its mean over the classes is the logits
  // minus their mean, so the ensemble's centred log-probabilities are the mean of the members'.
  auto centred = [](const Tensor<float>& p) {
    std::vector<double> l(static_cast<size_t>(p.numel()));
    double m = 0;
    for (size_t k = 0; k < l.size(); ++k) m += l[k] = std::log(static_cast<double>(p[static_cast<int64_t>(k)]));
    for (auto& v : l) v -= m / static_cast<double>(l.size());
    return l;
  };
  const auto ce = centred(pe), c1 = centred(p1), c2 = centred(p2);
  REQUIRE(ce.size() == 6);
  CHECK(c1 != c2);  // two different members
  for (size_t k = 0; k < ce.size(); ++k) CHECK(ce[k] == doctest::Approx(0.5 * (c1[k] + c2[k])).epsilon(1e-4));

  // Members with another input size and pixel scaling: each gets its own Resizing/Rescaling in front
  // and the ensemble takes raw pixels at --input-size. Member 2 here: trained at 40, then its file is
  // rewritten with MobileNet's [-1, 1] scaling (x / 127.5 - 1).
  ScenesTempDir d4, d5;
  io::LoadedModel m40 = io::load_model(tiny_model(d4, 3, 40));
  m40.info.preprocessing.rescale = 1 / 127.5;
  m40.info.preprocessing.mean = {1.0, 1.0, 1.0};
  const std::string m3 = d4.str("pm1.safetensors");
  io::save_model(m3, *m40.model, m40.info);
  EnsembleArgs mixed = a;
  mixed.models = {m1, m3};
  mixed.out = d5.str("mixed.safetensors");
  mixed.input_size = 36;
  run_ensemble(mixed, os);
  ScenesModel em = load_scenes_model(mixed.out), s3 = load_scenes_model(m3);
  CHECK(em.height == 36);
  CHECK(em.m.info.preprocessing.rescale == 1.0);
  CHECK(em.m.info.preprocessing.mean.empty());
  CHECK(em.sampling == "warp");
  // The ensemble's logits = the mean of the members' on the input as each member's adapters make it.
  Tensor<float> x = Tensor<float>::empty({1, 3, 36, 36});
  image_into(im, em, x.data());
  Var<float> xv(x);
  const Tensor<float> l1 = s1.model()(ops::channel_affine(ops::resize2d(xv, 32, 32, false), {1 / 255.0}, {0.0}).value());
  const Tensor<float> l3 = s3.model()(ops::channel_affine(ops::resize2d(xv, 40, 40, false), {1 / 127.5}, {-1.0}).value());
  const Tensor<float> le = em.model()(x);
  for (int64_t k = 0; k < le.numel(); ++k) CHECK(le[k] == doctest::Approx(0.5 * (l1[k] + l3[k])).epsilon(1e-4));
  // --flip: every member also on the mirrored input; the logits are the mean of all four.
  EnsembleArgs fl = mixed;
  fl.flip = true;
  fl.out = d5.str("flip.safetensors");
  run_ensemble(fl, os);
  ScenesModel ef = load_scenes_model(fl.out);
  CHECK(ef.m.info.extras.at("flip_averaged") == "true");
  std::string last_conv;  // Grad-CAM's layer: in a member that sees the photo unmirrored (m2, m3)
  for (const auto& en : ef.model().entries())
    if (en.layer->type() == "Conv2D") last_conv = en.layer->name();
  CHECK(last_conv.rfind("m3_", 0) == 0);
  const Var<float> xf = ops::flip_w(xv);
  const Tensor<float> l1f = s1.model()(ops::channel_affine(ops::resize2d(xf, 32, 32, false), {1 / 255.0}, {0.0}).value());
  const Tensor<float> l3f = s3.model()(ops::channel_affine(ops::resize2d(xf, 40, 40, false), {1 / 127.5}, {-1.0}).value());
  const Tensor<float> lf = ef.model()(x);
  for (int64_t k = 0; k < lf.numel(); ++k)
    CHECK(lf[k] == doctest::Approx(0.25 * (l1[k] + l3[k] + l1f[k] + l3f[k])).epsilon(1e-4));
  // --zoom 0.8: every member also on the central 28x28 of the 36x36 input (4 pixels cut from each
  // side: round(36 * 0.2 / 2)), mirrored too with --flip; the logits are the mean of all eight.
  EnsembleArgs zo = fl;
  zo.zoom = {0.8};
  zo.out = d5.str("zoom.safetensors");
  run_ensemble(zo, os);
  ScenesModel ez = load_scenes_model(zo.out);
  CHECK(ez.m.info.extras.at("zoom_views").rfind("0.8", 0) == 0);
  last_conv.clear();
  for (const auto& en : ez.model().entries())
    if (en.layer->type() == "Conv2D") last_conv = en.layer->name();
  CHECK(last_conv.rfind("m7_", 0) == 0);  // the whole, unmirrored photo comes last
  auto zoomed = [&](const Var<float>& v, int64_t size, double scale, double offset, const io::LoadedModel& mm) {
    return mm.model->operator()(
        ops::channel_affine(ops::resize2d(ops::crop2d(v, 4, 4, 4, 4), size, size, false), {scale}, {offset}).value());
  };
  const Tensor<float> z1 = zoomed(xv, 32, 1 / 255.0, 0.0, s1.m), z3 = zoomed(xv, 40, 1 / 127.5, -1.0, s3.m);
  const Tensor<float> z1f = zoomed(xf, 32, 1 / 255.0, 0.0, s1.m), z3f = zoomed(xf, 40, 1 / 127.5, -1.0, s3.m);
  const Tensor<float> lz = ez.model()(x);
  for (int64_t k = 0; k < lz.numel(); ++k)
    CHECK(lz[k] == doctest::Approx((l1[k] + l3[k] + l1f[k] + l3f[k] + z1[k] + z3[k] + z1f[k] + z3f[k]) / 8).epsilon(1e-4));
  // An ensemble file as a member: its members join with equal weight. The flipped pair (m1, m3) plus
  // m2 with --flip = the mean of six logit vectors, as an ensemble of all three built at once.
  EnsembleArgs nest = fl;
  nest.models = {fl.out, m2};
  nest.out = d5.str("nested.safetensors");
  run_ensemble(nest, os);
  CHECK(os.str().find("the mean of 3 models' logits on the photo and its mirror") != std::string::npos);
  EnsembleArgs all3 = fl;
  all3.models = {m1, m3, m2};
  all3.out = d5.str("all3.safetensors");
  run_ensemble(all3, os);
  ScenesModel en = load_scenes_model(nest.out), e3 = load_scenes_model(all3.out);
  CHECK(en.m.info.extras.at("ensemble_of") == m1 + "," + m3 + "," + m2);
  CHECK(en.m.info.extras.at("flip_averaged") == "true");
  const Tensor<float> ln = en.model()(x), l3all = e3.model()(x);
  for (int64_t k = 0; k < ln.numel(); ++k) CHECK(ln[k] == doctest::Approx(l3all[k]).epsilon(1e-4));
  // --drop leaves a member of the nested ensemble out: {m1, m3} + m2 without m3 = {m1, m2}.
  EnsembleArgs dr = nest;
  dr.drop = {m3};
  dr.out = d5.str("dropped.safetensors");
  run_ensemble(dr, os);
  EnsembleArgs pair = fl;
  pair.models = {m1, m2};
  pair.out = d5.str("pair.safetensors");
  run_ensemble(pair, os);
  ScenesModel ed = load_scenes_model(dr.out), ep = load_scenes_model(pair.out);
  CHECK(ed.m.info.extras.at("ensemble_of") == m1 + "," + m2);
  REQUIRE(ep.height == 36);
  Tensor<float> xp = Tensor<float>::empty({1, 3, 36, 36});  // the pair keeps its members' 1/255 scaling
  image_into(im, ep, xp.data());
  const Tensor<float> ld = ed.model()(x), lp = ep.model()(xp);
  for (int64_t k = 0; k < ld.numel(); ++k) CHECK(ld[k] == doctest::Approx(lp[k]).epsilon(1e-4));
  dr.drop = {"no/such/model.safetensors"};
  CHECK_THROWS_WITH_AS(run_ensemble(dr, os), doctest::Contains("--drop: 'no/such/model.safetensors'"), UsageError);
  // ... built with other views than the new one: refused, naming the file; alone: refused.
  nest.flip = false;
  CHECK_THROWS_WITH_AS(run_ensemble(nest, os), doctest::Contains(fl.out.c_str()), UsageError);
  nest.flip = true;  // one ensemble file alone is rebuilt as it was (with --drop: without that member)
  nest.models = {fl.out};
  nest.out = d5.str("rebuilt.safetensors");
  run_ensemble(nest, os);
  const Tensor<float> lr = load_scenes_model(nest.out).model()(x);
  for (int64_t k = 0; k < lr.numel(); ++k) CHECK(lr[k] == doctest::Approx(lf[k]).epsilon(1e-5));
  nest.drop = {m1, m3};
  CHECK_THROWS_WITH_AS(run_ensemble(nest, os), doctest::Contains("fewer than two members left"), UsageError);
  // One model with views is an ensemble of its views; fractions outside (0, 1) or that crop nothing are refused.
  EnsembleArgs one = zo;
  one.models = {m1};
  one.flip = false;
  one.out = d5.str("one.safetensors");
  run_ensemble(one, os);
  // (one member: no raw-pixel adapters, the ensemble keeps m1's own 1/255 scaling for its caller to apply)
  const Tensor<float> lo = load_scenes_model(one.out).model()(ops::channel_affine(xv, {1 / 255.0}, {0.0}).value());
  for (int64_t k = 0; k < lo.numel(); ++k) CHECK(lo[k] == doctest::Approx((l1[k] + z1[k]) / 2).epsilon(1e-4));
  one.zoom = {1.0};
  CHECK_THROWS_WITH_AS(run_ensemble(one, os), doctest::Contains("--zoom"), UsageError);
  one.zoom = {0.99};
  CHECK_THROWS_WITH_AS(run_ensemble(one, os), doctest::Contains("crops nothing from 36 pixels"), UsageError);

  // A different resize mode is refused, naming the file.
  m40.info.preprocessing.resize = "center_crop";
  const std::string m4 = d4.str("crop.safetensors");
  io::save_model(m4, *m40.model, m40.info);
  EnsembleArgs bad = a;
  bad.models = {m1, m4};
  CHECK_THROWS_WITH_AS(run_ensemble(bad, os), doctest::Contains(m4.c_str()), UsageError);
  bad = a;
  bad.models = {m1};
  CHECK_THROWS_WITH_AS(run_ensemble(bad, os), doctest::Contains("--models"), UsageError);
  bad = a;
  bad.out = m1;
  CHECK_THROWS_WITH_AS(run_ensemble(bad, os), doctest::Contains("--out"), UsageError);
}

TEST_CASE("intel_scenes train --multi-label: copies of a photo in several folders become one multi-hot sample") {
  ScenesTempDir d;
  const std::vector<std::string> cls = {"buildings", "forest", "sea"};
  for (const auto& c : cls) {
    fs::create_directories(d.str("data/" + c));
    int n = 0;
    for (const auto& e : fs::directory_iterator(sample() + "/" + c)) {
      if (n++ >= 5) break;
      fs::copy_file(e.path(), d.str("data/" + c + "/" + e.path().filename().string()));
    }
  }
  // Two forest photos are also "sea" (the same bytes in both folders).
  int copied = 0;
  for (const auto& e : fs::directory_iterator(d.str("data/forest"))) {
    if (copied++ >= 2) break;
    fs::copy_file(e.path(), d.str("data/sea/copy_" + e.path().filename().string()));
  }
  TrainArgs a;
  a.data = d.str("data");
  a.model = "resnet";
  a.input_size = 32;
  a.epochs = 1;
  a.val_split = 0.4;
  a.multi_label = true;
  a.workers = 0;
  a.verbose = 0;
  a.out = d.str("run");
  std::ostringstream os;
  TrainResult r = run_train(a, os);
  INFO(os.str());
  CHECK(r.train_images + r.val_images == 15);  // 17 files, 15 distinct photos
  io::LoadedModel m = io::load_model(d.str("run/model.safetensors"));
  CHECK(m.info.multi_label);
  REQUIRE(m.info.thresholds.size() == 3);
  for (double t : m.info.thresholds) CHECK((t > 0 && t < 1));
  CHECK(std::regex_match(last_line(os.str()), std::regex("best val accuracy: [01]\\.[0-9]{4}")));
}

TEST_CASE("intel_scenes evaluate and predict on the shipped sample") {
  ScenesTempDir d;
  const std::string model = fs::exists(shipped()) ? shipped() : tiny_model(d);
  EvalArgs ea;
  ea.model = model;
  ea.data = sample();
  std::ostringstream os;
  EvalResult r = run_evaluate(ea, os);
  const std::string out = os.str();
  INFO(out);
  CHECK(r.images == 120);
  CHECK(r.cm.total() == 120);
  CHECK(std::regex_search(out, std::regex("\naccuracy: [01]\\.[0-9]{4}\n")));
  CHECK(std::regex_search(out, std::regex("\nmacro F1: [01]\\.[0-9]{4}\n")));
  CHECK(out.find("confusion matrix") != std::string::npos);
  if (model == shipped()) CHECK(r.accuracy > 0.7);

  PredictArgs pa;
  pa.model = model;
  pa.paths = {sample() + "/sea", sample() + "/forest/" + fs::directory_iterator(sample() + "/forest")->path().filename().string()};
  pa.json = true;
  std::ostringstream pj;
  auto preds = run_predict(pa, pj);
  CHECK(preds.size() == 21);
  const auto j = nlohmann::json::parse(pj.str());
  REQUIRE(j.size() == 21);
  CHECK(j[0]["top"].size() == 3);
  double sum = 0;
  for (const auto& kv : j[0]["probabilities"].items()) sum += kv.value().get<double>();
  CHECK(sum == doctest::Approx(1.0).epsilon(1e-4));
  pa.json = false;
  pa.csv = true;
  std::ostringstream pc;
  run_predict(pa, pc);
  CHECK(pc.str().rfind("path,error,buildings,forest,glacier,mountain,sea,street,top_class,top_probability\n", 0) == 0);
  // Decoded and classified 4 photos at a time (the last chunk 1): the same predictions, in order
  pa.chunk = 4;
  std::ostringstream pc4;
  const auto preds4 = run_predict(pa, pc4);
  REQUIRE(preds4.size() == preds.size());
  for (size_t i = 0; i < preds.size(); ++i) {
    CHECK(preds4[i].path == preds[i].path);
    REQUIRE(preds4[i].probs.size() == preds[i].probs.size());
    for (size_t k = 0; k < preds[i].probs.size(); ++k) CHECK(preds4[i].probs[k] == doctest::Approx(preds[i].probs[k]).epsilon(1e-5));
  }
  pa.chunk = 0;
  CHECK_THROWS_WITH(run_predict(pa, pc4), doctest::Contains("chunk"));
  pa.chunk = 256;
  pa.csv = false;
  pa.paths = {d.str("missing.jpg")};
  CHECK_THROWS_WITH(run_predict(pa, pc), doctest::Contains("missing.jpg"));
  ea.model = d.str("nope.safetensors");
  CHECK_THROWS_WITH(run_evaluate(ea, os), doctest::Contains("nope.safetensors"));
}

TEST_CASE("intel_scenes bench: one step prints the two throughput lines") {
  BenchArgs b;
  b.model = "resnet";
  b.batch = 4;
  b.steps = 1;
  b.input_size = 32;
  std::ostringstream os;
  BenchResult r = run_bench(b, os);
  CHECK(r.train_images_per_second > 0);
  CHECK(r.infer_images_per_second > 0);
  std::string s = os.str();
  s.pop_back();
  const std::string last = last_line(s + "\n");
  s = s.substr(0, s.rfind('\n'));
  CHECK(std::regex_match(last, std::regex("infer images/s: [0-9]+\\.[0-9]")));
  CHECK(std::regex_match(last_line(s), std::regex("train images/s: [0-9]+\\.[0-9]")));
  CHECK(os.str().find("device cpu (") != std::string::npos);  // the header names the device
  CHECK(os.str().find(std::string(" threads, ") + tinycnn::kernels::cpu::cpu_isa_name() + ")") != std::string::npos);

  // --scaling: pairs of steps on 1 and on T threads, a line with the median speed-up before the two
  // throughput lines; it needs 2 or more threads.
  const int saved_threads = get_num_threads();
  b.threads = 2;
  b.scaling = 2;
  std::ostringstream sc;
  r = run_bench(b, sc);
  CHECK(r.scaling > 0);
  CHECK(std::regex_search(sc.str(), std::regex("\nscaling: 2 pairs of training steps, 1 thread [0-9.]+ s, 2 threads "
                                               "[0-9.]+ s \\(medians\\); speed-up median [0-9.]+x, quartiles "
                                               "[0-9.]+-[0-9.]+\ntrain images/s: [0-9.]+\ninfer images/s: [0-9.]+\n$")));
  b.threads = 1;
  CHECK_THROWS_WITH_AS(run_bench(b, sc), doctest::Contains("--scaling: needs 2 or more threads"), UsageError);
  b.threads = 2;
  b.scaling = -1;
  CHECK_THROWS_WITH_AS(run_bench(b, sc), doctest::Contains("--scaling: must be >= 1"), UsageError);
  b.scaling = 0;
  b.threads = 0;
  set_num_threads(saved_threads);

  // --device: only cpu and cuda; cuda needs a CUDA build (this test binary is the CPU-only one).
  b.device = "gpu";
  CHECK_THROWS_WITH_AS(run_bench(b, os), doctest::Contains("--device: must be cpu or cuda"), UsageError);
#ifndef TINYCNN_HAS_CUDA
  b.device = "cuda";
  CHECK_THROWS_WITH_AS(run_bench(b, os), doctest::Contains("built without CUDA"), UsageError);
#endif
}

TEST_CASE("intel_scenes binary: exit codes and one-line errors") {
  const std::string bin = std::string(TINYCNN_BINARY_DIR) + "/examples/intel_scenes/intel_scenes";
  if (!fs::exists(bin)) {
    MESSAGE("intel_scenes binary not built; skipping");
    return;
  }
  std::string err;
  CHECK(run_binary("--help") == 0);
  CHECK(run_binary("train --help") == 0);
  CHECK(run_binary("train --data x --model model2 --epochs nope --out y", &err) == 2);
  CHECK(err.find("--epochs") != std::string::npos);
  CHECK(run_binary("bench --model nope", &err) == 2);
  CHECK(err.find("nope") != std::string::npos);
  CHECK(run_binary("evaluate --model /nonexistent/m.safetensors --data " + sample(), &err) == 1);
  CHECK(err.find("/nonexistent/m.safetensors") != std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  CHECK(run_binary("summary --model model004") == 0);
}
