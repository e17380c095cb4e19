#pragma once
// Keras-style model summary.
//
//   Model: "sequential"
//   _________________________________________________________________
//    Layer (type)                Output Shape              Param #
//   =================================================================
//    conv2d (Conv2D)             (None, 148, 148, 32)      896
//    ...
//   =================================================================
//   Total params: 2,046,406
//   Trainable params: 2,045,446
//   Non-trainable params: 960
//   _________________________________________________________________
//
// tinycnn stores images channels-first (per sample [C, H, W]), but the Output Shape column is
// printed in Keras' channels-last order ((None, H, W, C)), so a summary reads exactly like the one
// Keras prints for the same architecture; parameter counts are layout-independent and equal Keras'.
// Non-trainable parameters are the layers' buffers (batch-norm moving mean and variance) plus all
// parameters of frozen layers, as in Keras. Functional models get a "Connected to" column and an
// input row.
#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "../nn/model.hpp"

namespace tinycnn::train {

// 2046406 -> "2,046,406"
inline std::string thousands(int64_t n) {
  std::string d = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i && (d.size() - i) % 3 == 0) out += ',';
    out += d[i];
  }
  return n < 0 ? "-" + out : out;
}

// Per-sample channels-first shape -> Keras' "(None, H, W, C)".
inline std::string keras_shape(const Shape& s) {
  Shape k = s;
  if (k.size() >= 2) std::rotate(k.begin(), k.begin() + 1, k.end());  // [C, H, W] -> [H, W, C]
  std::string o = "(None";
  for (int64_t d : k) o += ", " + std::to_string(d);
  return o + (k.empty() ? ",)" : ")");
}

struct ParamCounts {
  int64_t total = 0, trainable = 0, non_trainable = 0;
};

template <class T>
ParamCounts count_params(nn::Model<T>& model) {
  ParamCounts c;
  for (auto& e : model.entries()) {
    int64_t p = 0, b = 0;
    for (auto& v : e.layer->parameters()) p += v.second.value().numel();
    for (auto& v : e.layer->buffers()) b += v.second.value().numel();
    c.total += p + b;
    if (e.layer->trainable()) {
      c.trainable += p;
      c.non_trainable += b;
    } else {
      c.non_trainable += p + b;
    }
  }
  return c;
}

template <class T>
std::string summary(nn::Model<T>& model, const std::string& name = "") {
  const bool functional = model.type() != "Sequential";
  struct Row {
    std::string layer, shape, params, connected;
  };
  std::vector<Row> rows;
  const auto& es = model.entries();
  auto node_name = [&](int id) { return id < 0 ? std::string("input") : es[static_cast<size_t>(id)].layer->name(); };
  if (functional) rows.push_back({"input (InputLayer)", keras_shape(model.input_shape()), "0", ""});
  for (auto& e : es) {
    Row r;
    r.layer = e.layer->name() + " (" + e.layer->type() + ")";
    r.shape = model.built() ? keras_shape(e.output_shape) : "(unbuilt)";
    r.params = thousands(e.layer->count_params());
    if (functional)
      for (size_t i = 0; i < e.inputs.size(); ++i) r.connected += (i ? ", " : "") + node_name(e.inputs[i]);
    rows.push_back(r);
  }
  size_t w0 = 28, w1 = 25, w2 = 10, w3 = 0;
  for (const auto& r : rows) {
    w0 = std::max(w0, r.layer.size() + 1);
    w1 = std::max(w1, r.shape.size() + 1);
    w2 = std::max(w2, r.params.size() + 1);
    w3 = std::max(w3, r.connected.size());
  }
  if (functional) w3 = std::max<size_t>(w3, 12);
  const size_t width = 1 + w0 + w1 + w2 + (functional ? w3 : 0);
  auto cell = [](const std::string& s, size_t w) { return s + std::string(w > s.size() ? w - s.size() : 1, ' '); };
  std::ostringstream o;
  o << "Model: \"" << (name.empty() ? (functional ? std::string("model") : std::string("sequential")) : name) << "\"\n";
  o << std::string(width, '_') << "\n";
  o << ' ' << cell("Layer (type)", w0) << cell("Output Shape", w1) << cell("Param #", w2);
  if (functional) o << "Connected to";
  o << "\n" << std::string(width, '=') << "\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    std::string line = " " + cell(rows[i].layer, w0) + cell(rows[i].shape, w1) + cell(rows[i].params, w2) + rows[i].connected;
    while (!line.empty() && line.back() == ' ') line.pop_back();
    o << line << "\n";
    if (i + 1 < rows.size()) o << (functional ? std::string(width, '_') + "\n" : "\n");
  }
  const ParamCounts c = count_params(model);
  o << std::string(width, '=') << "\n";
  o << "Total params: " << thousands(c.total) << "\n";
  o << "Trainable params: " << thousands(c.trainable) << "\n";
  o << "Non-trainable params: " << thousands(c.non_trainable) << "\n";
  o << std::string(width, '_') << "\n";
  return o.str();
}

}  // namespace tinycnn::train
