// Keras .h5 import (io/keras_h5.hpp) and transfer learning (nn/transfer.hpp).
// The pretrained models and CIFAR-10 images live in ../shared (beside the repository); the tests that
// need them are skipped with a message when it is absent.
#include <doctest/doctest.h>

#include <tinycnn/tinycnn.hpp>

#if defined(TINYCNN_HAS_HDF5) && defined(TINYCNN_HAS_JSON)

#include <hdf5.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <iostream>
#include <string>
#include <vector>

using namespace tinycnn;
namespace fs = std::filesystem;

namespace {

std::string shared_dir() { return std::string(TINYCNN_SOURCE_DIR) + "/../shared"; }
bool have_shared(const std::string& rel) {
  if (fs::exists(shared_dir() + "/" + rel)) return true;
  MESSAGE("skipped: " << shared_dir() << "/" << rel << " is absent");
  return false;
}

std::string temp_path(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "tinycnn_test_keras";
  fs::create_directories(dir);
  return (dir / name).string();
}

// ---- a tiny HDF5 writer for crafted Keras files ----
void write_strings_attr(hid_t loc, const char* name, const std::vector<std::string>& v, bool scalar = false) {
  size_t len = 1;
  for (const auto& s : v) len = std::max(len, s.size());
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, len);
  H5Tset_strpad(type, H5T_STR_NULLPAD);
  hsize_t n = v.size();
  hid_t space = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr);
  std::vector<char> buf(len * std::max<size_t>(v.size(), 1), '\0');
  for (size_t i = 0; i < v.size(); ++i) std::copy(v[i].begin(), v[i].end(), buf.begin() + static_cast<std::ptrdiff_t>(i * len));
  hid_t a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(a >= 0);
  REQUIRE(H5Awrite(a, type, buf.data()) >= 0);
  H5Aclose(a);
  H5Sclose(space);
  H5Tclose(type);
}
void write_dataset(hid_t loc, const std::string& path, const std::vector<hsize_t>& dims, const std::vector<float>& v) {
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t d = H5Dcreate2(loc, path.c_str(), H5T_IEEE_F32LE, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(d >= 0);
  REQUIRE(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
  H5Dclose(d);
  H5Sclose(space);
  H5Pclose(lcpl);
}
struct CraftedLayer {
  std::string name;
  std::vector<std::pair<std::string, std::pair<std::vector<hsize_t>, std::vector<float>>>> weights;  // "kernel:0" -> data
};
void write_keras_file(const std::string& path, const std::string& model_config, const std::vector<CraftedLayer>& layers) {
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(f >= 0);
  write_strings_attr(f, "model_config", {model_config}, true);
  write_strings_attr(f, "keras_version", {"2.4.0"}, true);
  hid_t mw = H5Gcreate2(f, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  std::vector<std::string> names;
  for (const auto& l : layers) names.push_back(l.name);
  write_strings_attr(mw, "layer_names", names);
  for (const auto& l : layers) {
    hid_t g = H5Gcreate2(mw, l.name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    std::vector<std::string> wn;
    for (const auto& w : l.weights) {
      wn.push_back(l.name + "/" + w.first);
      write_dataset(g, l.name + "/" + w.first, w.second.first, w.second.second);
    }
    write_strings_attr(g, "weight_names", wn);
    H5Gclose(g);
  }
  H5Gclose(mw);
  H5Fclose(f);
}

std::vector<float> seq_values(size_t n, float scale, float offset) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::sin(static_cast<float>(i) * 0.7f + offset) * scale;
  return v;
}

}  // namespace

TEST_CASE("keras import: Conv2D 'same' stride 2 + Flatten + Dense match a channels-last reference") {
  // Input 5x4x2 (H, W, C); Conv2D 3 filters 3x3 stride 2 'same' -> 3x2x3; Flatten (HWC) -> 18; Dense 4.
  const int64_t H = 5, W = 4, C = 2, K = 3, R = 3, S = 3, OH = 3, OW = 2, U = 4;
  const std::vector<float> kernel = seq_values(static_cast<size_t>(R * S * C * K), 0.5f, 0.1f);
  const std::vector<float> cbias = seq_values(static_cast<size_t>(K), 0.2f, 1.0f);
  const std::vector<float> dkernel = seq_values(static_cast<size_t>(OH * OW * K * U), 0.3f, 2.0f);
  const std::vector<float> dbias = seq_values(static_cast<size_t>(U), 0.1f, 3.0f);
  const std::string cfg = R"({"class_name": "Sequential", "config": {"name": "s", "layers": [
    {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 5, 4, 2], "dtype": "float32", "name": "in"}},
    {"class_name": "Conv2D", "config": {"name": "c", "trainable": true, "filters": 3, "kernel_size": [3, 3], "strides": [2, 2],
      "padding": "same", "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1, "activation": "relu", "use_bias": true}},
    {"class_name": "Flatten", "config": {"name": "f", "data_format": "channels_last"}},
    {"class_name": "Dense", "config": {"name": "d", "units": 4, "activation": "softmax", "use_bias": true}}]}})";
  const std::string path = temp_path("conv_flatten_dense.h5");
  write_keras_file(path, cfg,
                   {{"c", {{"kernel:0", {{3, 3, 2, 3}, kernel}}, {"bias:0", {{3}, cbias}}}},
                    {"f", {}},
                    {"d", {{"kernel:0", {{18, 4}, dkernel}}, {"bias:0", {{4}, dbias}}}}});
  io::KerasModel k = io::import_keras_h5(path);
  CHECK(k.softmax_removed);
  CHECK(k.model->type() == "Sequential");
  CHECK(k.input_shape == Shape{2, 5, 4});
  CHECK(k.model->output_shape() == Shape{4});

  const std::vector<float> x = seq_values(static_cast<size_t>(H * W * C), 1.0f, 0.5f);  // HWC
  // Reference (TF 'same': pad_total = (OH-1)*2 + 3 - H, top = total / 2).
  const int64_t pt = ((OH - 1) * 2 + R - H) / 2, pl = ((OW - 1) * 2 + S - W) / 2;
  std::vector<double> feat(static_cast<size_t>(OH * OW * K));
  for (int64_t oh = 0; oh < OH; ++oh)
    for (int64_t ow = 0; ow < OW; ++ow)
      for (int64_t o = 0; o < K; ++o) {
        double acc = cbias[static_cast<size_t>(o)];
        for (int64_t r = 0; r < R; ++r)
          for (int64_t s = 0; s < S; ++s) {
            const int64_t ih = oh * 2 + r - pt, iw = ow * 2 + s - pl;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            for (int64_t c = 0; c < C; ++c)
              acc += double(x[static_cast<size_t>((ih * W + iw) * C + c)]) * kernel[static_cast<size_t>(((r * S + s) * C + c) * K + o)];
          }
        feat[static_cast<size_t>((oh * OW + ow) * K + o)] = std::max(acc, 0.0);
      }
  std::vector<double> ref(static_cast<size_t>(U));
  for (int64_t u = 0; u < U; ++u) {
    double acc = dbias[static_cast<size_t>(u)];
    for (int64_t i = 0; i < OH * OW * K; ++i) acc += feat[static_cast<size_t>(i)] * dkernel[static_cast<size_t>(i * U + u)];
    ref[static_cast<size_t>(u)] = acc;
  }
  Tensor<float> xt({1, C, H, W});
  for (int64_t h = 0; h < H; ++h)
    for (int64_t w = 0; w < W; ++w)
      for (int64_t c = 0; c < C; ++c) xt.data()[(c * H + h) * W + w] = x[static_cast<size_t>((h * W + w) * C + c)];
  const Tensor<float> y = (*k.model)(xt);
  REQUIRE(y.shape() == Shape{1, 4});
  for (int64_t u = 0; u < U; ++u) CHECK(y.data()[u] == doctest::Approx(ref[static_cast<size_t>(u)]).epsilon(1e-5));
}

TEST_CASE("keras import: unsupported layers and broken files are FormatErrors naming them") {
  const std::string cfg = R"({"class_name": "Functional", "config": {"name": "m", "layers": [
    {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 10, 8], "name": "input_1"}, "name": "input_1", "inbound_nodes": []},
    {"class_name": "LSTM", "config": {"name": "my_lstm", "units": 4}, "name": "my_lstm", "inbound_nodes": [[["input_1", 0, 0, {}]]]}],
    "input_layers": [["input_1", 0, 0]], "output_layers": [["my_lstm", 0, 0]]}})";
  const std::string path = temp_path("lstm.h5");
  write_keras_file(path, cfg, {{"input_1", {}}, {"my_lstm", {}}});
  try {
    io::import_keras_h5(path);
    FAIL("no error");
  } catch (const FormatError& e) {
    const std::string m = e.what();
    CHECK(m.find("my_lstm") != std::string::npos);
    CHECK(m.find("LSTM") != std::string::npos);
    CHECK(m.find(path) != std::string::npos);
  }
  // Not HDF5, missing, no model_config, wrong weight shape.
  const std::string junk = temp_path("junk.h5");
  std::ofstream(junk) << "not an hdf5 file";
  CHECK_THROWS_WITH_AS(io::import_keras_h5(junk), doctest::Contains("junk.h5"), FormatError);
  CHECK_THROWS_AS(io::import_keras_h5(temp_path("missing.h5")), FormatError);
  const std::string bad_shape = temp_path("bad_shape.h5");
  write_keras_file(bad_shape, R"({"class_name": "Sequential", "config": {"layers": [
    {"class_name": "Dense", "config": {"name": "d", "units": 3, "batch_input_shape": [null, 5]}}]}})",
                   {{"d", {{"kernel:0", {{4, 3}, std::vector<float>(12, 0.f)}}, {"bias:0", {{3}, std::vector<float>(3, 0.f)}}}}});
  CHECK_THROWS_WITH_AS(io::import_keras_h5(bad_shape), doctest::Contains("'d' (Dense): weight 'kernel' has shape (4, 3), expected (5, 3)"),
                       FormatError);
}

TEST_CASE("keras import: resnet8 (CIFAR-10) accuracy on 50 test images per class") {
  if (!have_shared("models/resnet8_cifar10.h5") || !have_shared("data/cifar10-test")) return;
  io::KerasModel k = io::import_keras_h5(shared_dir() + "/models/resnet8_cifar10.h5");
  CHECK(k.model->type() == "Functional");
  CHECK(k.input_shape == Shape{3, 32, 32});
  CHECK(k.softmax_removed);
  CHECK(train::count_params(*k.model).total == 78666);
  CHECK(k.layer_names.at("dense") == "dense");
  CHECK(k.layer_names.at("input_1").empty());
  data::ImageFolderOptions fo;
  fo.verify = data::Verify::None;
  data::ImageFolder folder(shared_dir() + "/data/cifar10-test", fo);
  REQUIRE(folder.classes().size() == 10);
  std::vector<data::Image> ims;
  std::vector<int32_t> labels;
  std::vector<int> per(10, 0);
  for (const auto& s : folder.samples())
    if (per[static_cast<size_t>(s.label)]++ < 50) {
      ims.push_back(data::load_image_file(s.path));
      labels.push_back(s.label);
    }
  data::Normalize raw;
  raw.rescale = 1.0f;
  const Tensor<float> probs = train::predict(*k.model, data::to_tensor(ims, raw), 100);
  const std::vector<int32_t> pred = train::argmax(probs);
  int correct = 0;
  for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == labels[i];
  const double acc = correct / static_cast<double>(pred.size());
  MESSAGE("resnet8 accuracy on 500 cifar10-test images: " << acc);
  CHECK(acc >= 0.65);
}

TEST_CASE("keras import: MobileNet v1 0.25 structure, counts and transfer learning") {
  if (!have_shared("models/mobilenet_v1_0.25_224_imagenet.h5")) return;
  io::KerasModel k = io::import_keras_h5(shared_dir() + "/models/mobilenet_v1_0.25_224_imagenet.h5");
  CHECK(k.keras_version == "2.8.0");
  CHECK(k.input_shape == Shape{3, 224, 224});
  CHECK(k.model->output_shape() == Shape{1000});
  CHECK(k.softmax_removed);
  CHECK(k.layer_names.at("predictions").empty());
  CHECK(k.model->size() == 90);  // Keras' 91 layers - InputLayer - final softmax + the keepdims Reshape
  const auto counts = train::count_params(*k.model);  // Keras: 475,544 total, 5,472 non-trainable (BN moving stats)
  CHECK(counts.total == 475544);
  CHECK(counts.trainable == 470072);
  CHECK(counts.non_trainable == 5472);
  CHECK(train::summary(*k.model).find("Total params: 475,544") != std::string::npos);

  // Cut at the global average pooling, freeze the base, new 6-class head, 2 training steps.
  auto g = nn::cut_at(*k.model, "global_average_pooling2d_1");
  CHECK(g->output_shape() == Shape{256});
  CHECK(g->parameters()[0].second.value().shares_storage_with(k.model->parameters()[0].second.value()));
  nn::freeze_all(*g);
  g->add<nn::Dense>({nn::output_node(*g)}, 6, "", true, "head");
  CHECK(g->output_shape() == Shape{6});
  const auto tc = train::count_params(*g);
  CHECK(tc.trainable == 256 * 6 + 6);
  CHECK(tc.total == 475544 - (256 * 1000 + 1000) + 256 * 6 + 6);

  std::vector<std::pair<std::string, Tensor<float>>> before;
  for (auto& p : g->parameters()) before.push_back({p.first, p.second.value().clone()});
  for (auto& b : g->buffers()) before.push_back({b.first, b.second.value().clone()});

  Tensor<float> x({4, 3, 224, 224});
  Rng rng(7);
  x.fill_uniform(-1.f, 1.f, rng);
  train::TensorDataset ds(x, {0, 3, 5, 1}, 2, false);
  optim::Adam<float> opt(g->parameters(true), 1e-2);
  train::FitOptions<float> o;
  o.epochs = 1;
  o.verbose = 0;
  o.handle_sigint = false;
  train::fit(*g, opt, ds, o);

  int changed = 0, unchanged_base = 0, base_total = 0;
  std::map<std::string, Var<float>> now;
  for (auto& p : g->parameters()) now[p.first] = p.second;
  for (auto& b : g->buffers()) now[b.first] = b.second;
  for (const auto& [name, t] : before) {
    const Tensor<float>& v = now.at(name).value();
    bool same = true;
    for (int64_t i = 0; i < t.numel(); ++i) same = same && t.data()[i] == v.data()[i];
    if (name.rfind("head/", 0) == 0) {
      changed += !same;
    } else {
      ++base_total;
      unchanged_base += same;
      if (!same) MESSAGE("frozen weight changed: " << name);
    }
  }
  CHECK(changed == 2);                      // head kernel and bias
  CHECK(unchanged_base == base_total);      // incl. every BN moving_mean / moving_variance
  CHECK(base_total == 27 * 4 + 15 - 1 + 13);  // BN x27 (4 each), Conv2D kernels (conv_preds cut off), depthwise kernels

  // The fine-tuned model saves and loads as a tinycnn model file (no HDF5 needed to read it back).
  const std::string saved = temp_path("mobilenet_cut.safetensors");
  io::save_model(saved, *g);
  io::LoadedModel back = io::load_model(saved);
  Tensor<float> one({1, 3, 224, 224});
  one.fill_uniform(-1.f, 1.f, rng);
  g->eval();
  const Tensor<float> y1 = (*g)(one), y2 = (*back.model)(one);
  REQUIRE(y2.shape() == Shape{1, 6});
  for (int64_t i = 0; i < 6; ++i) CHECK(y1.data()[i] == y2.data()[i]);

  // Unfreezing by name range.
  nn::set_trainable_from(*g, "conv_pw_13", true);
  CHECK(g->layer("conv_pw_13").trainable());
  CHECK(!g->layer("conv_dw_13").trainable());
}

#else
TEST_CASE("keras import: not built (needs HDF5 and nlohmann-json)") { MESSAGE("skipped: TINYCNN_HAS_HDF5 is not defined"); }
#endif
