#pragma once
// The intel_scenes models, selectable by name (docs/intel_scenes.md explains each one).
//
//   auto m = intel_scenes::make_model("model2", /*num_classes=*/6, /*seed=*/0);   // built, logits out
//
// Every model outputs logits (no softmax): train::fit applies the softmax (or, with --multi-label,
// a sigmoid per class) in the loss, and train::predict returns probabilities.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <tinycnn/tinycnn.hpp>

namespace intel_scenes {

using namespace tinycnn;

// Names make_model() knows, in the order `summary`/`--help` list them.
inline const std::vector<std::string>& model_names() {
  static const std::vector<std::string> n = {"baseline", "model2",  "model3", "model004",
                                             "sorter_cnn", "resnet", "mobilenet_transfer"};
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
  if (name == "resnet") return 64;
  if (name == "mobilenet_transfer") return 224;
  return 150;
}

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
// pooling, dropout, Dense(num_classes). About 0.3 M parameters.
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

inline std::unique_ptr<nn::Model<float>> make_model(const std::string& name, int num_classes, uint64_t seed) {
  if (num_classes < 1) throw ValueError("make_model: num_classes must be >= 1, got " + std::to_string(num_classes));
  const int n = model_input_size(name);
  if (name == "resnet") return make_resnet(num_classes, seed);
  if (name == "mobilenet_transfer")
    throw ValueError("model 'mobilenet_transfer' needs the Keras .h5 import (include/tinycnn/io/keras_h5.hpp), which is "
                     "not available in this build yet; pick one of baseline, model2, model3, model004, sorter_cnn, resnet");
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
