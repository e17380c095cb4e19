#pragma once
// The intel_scenes models, selectable by name (docs/intel_scenes.md explains each one).
//
//   auto m = intel_scenes::make_model("model2", /*num_classes=*/6, /*seed=*/0);   // built, logits out
//
// Every model outputs logits (no softmax): train::fit applies the softmax (or, with --multi-label,
// a sigmoid per class) in the loss, and train::predict returns probabilities.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <tinycnn/tinycnn.hpp>

namespace intel_scenes {

using namespace tinycnn;

// Names make_model() knows, in the order `summary`/`--help` list them.
inline const std::vector<std::string>& model_names() {
  static const std::vector<std::string> n = {"baseline", "model2",  "model3", "model004",
                                             "sorter_cnn", "resnet", "resnet14", "mobilenet_transfer"};
  return n;
}

inline bool is_model_name(const std::string& name) {
  for (const auto& n : model_names())
    if (n == name) return true;
  return false;
}

// Per-sample input size (square) each architecture is defined for.
inline int model_input_size(const std::string& name) {
  if (name == "sorter_cnn") return 256;
  if (name == "resnet" || name == "resnet14") return 64;
  if (name == "mobilenet_transfer") return 224;
  return 150;
}

// The resnets are fully convolutional up to their global pooling, so they are built for any input
// size (`--input-size`); mobilenet_transfer is re-shaped after import (nn::with_input_shape).
inline bool builds_at_any_size(const std::string& name) { return name == "resnet" || name == "resnet14"; }

inline std::string model_names_list() {
  std::string s;
  for (const auto& n : model_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

namespace detail {

// ResNet basic block: conv3x3(stride)-BN-ReLU-conv3x3-BN, + identity (or 1x1 conv-BN projection
// when the shape changes), ReLU.
inline nn::Graph<float>::Node basic_block(nn::Graph<float>& g, nn::Graph<float>::Node x, int64_t in_ch, int64_t out_ch,
                                          int stride) {
  using G = nn::Graph<float>;
  G::Node y = g.add<nn::Conv2D>({x}, out_ch, 3, stride, "same", "", false);
  y = g.add<nn::BatchNormalization>({y}, 0.9, 1e-5);
  y = g.add<nn::ReLU>({y});
  y = g.add<nn::Conv2D>({y}, out_ch, 3, 1, "same", "", false);
  y = g.add<nn::BatchNormalization>({y}, 0.9, 1e-5);
  G::Node shortcut = x;
  if (stride != 1 || in_ch != out_ch) {
    shortcut = g.add<nn::Conv2D>({x}, out_ch, 1, stride, "same", "", false);
    shortcut = g.add<nn::BatchNormalization>({shortcut}, 0.9, 1e-5);
  }
  G::Node s = g.add<nn::Add>({y, shortcut});
  return g.add<nn::ReLU>({s});
}

}  // namespace detail

// A small ResNet for 64x64 scene photos: stem conv 3x3/32 (stride 2 -> 32x32) BN ReLU, three stages
// of basic blocks (32 ch @32x32, 64 ch @16x16, 128 ch @8x8; `blocks` basic blocks per stage, 1 by default), global average
// pooling, dropout, Dense(num_classes). About 0.3 M parameters; "resnet14" is the same with two blocks
// per stage (12 convolutions + the stem + the head, 0.7 M parameters, about twice the compute).
inline std::unique_ptr<nn::Model<float>> make_resnet(int num_classes, uint64_t seed, int input = 64, int blocks = 1) {
  auto g = std::make_unique<nn::Graph<float>>(Shape{3, input, input}, seed);
  using G = nn::Graph<float>;
  G::Node x = g->add<nn::Conv2D>({g->input()}, 32, 3, 2, "same", "", false);
  x = g->add<nn::BatchNormalization>({x}, 0.9, 1e-5);
  x = g->add<nn::ReLU>({x});
  int64_t ch = 32;
  const int64_t widths[3] = {32, 64, 128};
  for (int s = 0; s < 3; ++s)
    for (int b = 0; b < blocks; ++b) {
      x = detail::basic_block(*g, x, ch, widths[s], (s > 0 && b == 0) ? 2 : 1);
      ch = widths[s];
    }
  x = g->add<nn::GlobalAvgPool2D>({x});
  x = g->add<nn::Dropout>({x}, 0.2);
  g->add<nn::Dense>({x}, num_classes);
  return g;
}

// How pixels are scaled for a model: /255 for the from-scratch models, [-1, 1] for MobileNet (as
// it was trained on ImageNet).
struct PixelScaling {
  double rescale = 1.0 / 255;
  double mean = 0;  // subtracted from every channel after rescaling
};
inline PixelScaling model_pixel_scaling(const std::string& name) {
  if (name == "mobilenet_transfer") return {1.0 / 127.5, 1.0};
  return {};
}

// The ImageNet MobileNetV1 0.25 weights: $TINYCNN_MOBILENET_H5, else ../shared/models/ next to the
// repository.
inline std::string mobilenet_h5_path() {
  if (const char* e = std::getenv("TINYCNN_MOBILENET_H5"); e && *e) return e;
#ifdef INTEL_SCENES_DIR
  return std::string(INTEL_SCENES_DIR) + "/../../../shared/models/mobilenet_v1_0.25_224_imagenet.h5";
#else
  return "../shared/models/mobilenet_v1_0.25_224_imagenet.h5";
#endif
}

// MobileNetV1 0.25 (224x224, ImageNet) cut at its global average pooling, the base frozen except
// the last depthwise-separable block (conv_dw_13 onwards, batch norm included), then Dropout 0.2
// and a new Dense(num_classes) head.
inline std::unique_ptr<nn::Model<float>> make_mobilenet_transfer(int num_classes, uint64_t seed) {
#if defined(TINYCNN_HAS_HDF5) && defined(TINYCNN_HAS_JSON)
  const std::string path = mobilenet_h5_path();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw IOError("mobilenet_transfer: the ImageNet weights '" + path +
                  "' do not exist (set TINYCNN_MOBILENET_H5 to mobilenet_v1_0.25_224_imagenet.h5)");
  io::KerasModel k = io::import_keras_h5(path);
  std::unique_ptr<nn::Graph<float>> g = nn::cut_at(*k.model, "global_average_pooling2d_1");
  nn::freeze_all(*g);
  nn::set_trainable_from(*g, "conv_dw_13", true);
  (void)seed;  // the head is initialised from the cut graph's own generator
  auto d = g->add<nn::Dropout>({nn::output_node(*g)}, 0.2, "head_dropout");
  g->add<nn::Dense>({d}, num_classes, "", true, "head");
  return g;
#else
  (void)num_classes;
  (void)seed;
  throw ValueError("model 'mobilenet_transfer' needs the Keras .h5 import, which this build does not have (HDF5 or "
                   "nlohmann-json was not found); pick one of baseline, model2, model3, model004, sorter_cnn, resnet");
#endif
}

// `input` (square side, 0 = the model's own) only for the models that builds_at_any_size().
inline std::unique_ptr<nn::Model<float>> make_model(const std::string& name, int num_classes, uint64_t seed,
                                                    int input = 0) {
  if (num_classes < 1) throw ValueError("make_model: num_classes must be >= 1, got " + std::to_string(num_classes));
  const int n = model_input_size(name);
  if (input < 0) throw ValueError("make_model: input size must be >= 0, got " + std::to_string(input));
  if (input == 0) input = n;
  if (name == "resnet") return make_resnet(num_classes, seed, input, 1);
  if (name == "resnet14") return make_resnet(num_classes, seed, input, 2);
  if (input != n)
    throw ValueError("make_model: '" + name + "' is built for " + std::to_string(n) + "x" + std::to_string(n) +
                     " input only, got " + std::to_string(input));
  if (name == "mobilenet_transfer") return make_mobilenet_transfer(num_classes, seed);
  auto m = std::make_unique<nn::Sequential<float>>(seed);
  if (name == "baseline") {
    m->add<nn::Flatten>();
    m->add<nn::Dense>(128, "relu");
    m->add<nn::Dense>(num_classes);
  } else if (name == "model2") {
    m->add<nn::Conv2D>(32, 3, 1, "valid", "relu");
    m->add<nn::MaxPool2D>(3);
    m->add<nn::Conv2D>(64, 3, 1, "valid", "relu");
    m->add<nn::MaxPool2D>(2);
    m->add<nn::Conv2D>(128, 3, 1, "valid", "relu");
    m->add<nn::Flatten>();
    m->add<nn::Dense>(128, "relu");
    m->add<nn::Dense>(num_classes);
  } else if (name == "model3") {
    // 'same' padding everywhere: with 'valid' the input of the last conv would be 2x2 (no room for 3x3).
    m->add<nn::Conv2D>(32, 3, 1, "same", "relu");
    m->add<nn::MaxPool2D>(3);
    m->add<nn::Conv2D>(64, 3, 1, "same", "relu");
    m->add<nn::MaxPool2D>(2);
    m->add<nn::Conv2D>(128, 3, 1, "same", "relu");
    m->add<nn::MaxPool2D>(2);
    m->add<nn::Conv2D>(256, 3, 1, "same", "relu");
    m->add<nn::MaxPool2D>(2);
    m->add<nn::Conv2D>(512, 3, 1, "same", "relu");
    m->add<nn::Conv2D>(1024, 3, 1, "same", "relu");
    m->add<nn::Flatten>();
    m->add<nn::Dense>(1024, "relu");
    m->add<nn::Dense>(num_classes);
  } else if (name == "model004") {
    for (int64_t f : {32, 64, 128, 256}) {
      m->add<nn::Conv2D>(f, 3, 1, "valid", "relu");
      m->add<nn::MaxPool2D>(2);
      m->add<nn::BatchNormalization>();
      m->add<nn::Dropout>(0.2);
    }
    m->add<nn::Flatten>();
    for (int i = 0; i < 4; ++i) {
      m->add<nn::Dense>(128, "relu");
      m->add<nn::Dropout>(0.2);
    }
    m->add<nn::Dense>(num_classes);
  } else if (name == "sorter_cnn") {
    for (int64_t f : {16, 32, 64, 128}) {
      m->add<nn::Conv2D>(f, 2, 1, "same", "relu");
      m->add<nn::MaxPool2D>(2);
    }
    m->add<nn::Dropout>(0.2);
    m->add<nn::Flatten>();
    m->add<nn::Dense>(512, "relu");
    m->add<nn::Dropout>(0.5);
    m->add<nn::Dense>(512, "relu");
    m->add<nn::Dropout>(0.5);
    m->add<nn::Dense>(num_classes);
  } else {
    throw ValueError("unknown model '" + name + "' (known: " + model_names_list() + ")");
  }
  m->build({3, n, n});
  return m;
}

}  // namespace intel_scenes
