#pragma once
// Layer and tensor bookkeeping for the Keras .h5 importer (io/keras_h5.hpp): a Keras layer's parsed
// config, the Keras shape of each tensor and its channels-last -> channels-first conversion.
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../core/error.hpp"
#include "../../core/tensor.hpp"
#include "../../nn/size2.hpp"

namespace tinycnn::io::keras_detail {

// ---- per-tensor layout bookkeeping ------------------------------------------------------------
// What a tinycnn tensor is relative to the Keras one: the Keras shape, and for flat tensors made by
// Flatten from an [H, W, C] map, that map's size (tinycnn's element order is then CHW, Keras' HWC).
struct KTensor {
  int node = -1;        // tinycnn Graph node (-1 = model input)
  Shape keras_shape;    // per sample, Keras layout
  Shape chw_origin;     // {C, H, W} when flat and in CHW order (needs permuting), else empty
};

inline bool layout_neutral(const Shape& keras_shape) {
  if (keras_shape.size() != 3) return true;
  return keras_shape[2] == 1 || keras_shape[0] * keras_shape[1] == 1;
}
inline Shape to_tinycnn_shape(const Shape& k) {
  if (k.size() == 3) return {k[2], k[0], k[1]};
  return k;
}
inline std::string shape_str(const Shape& s) {
  std::string o = "(";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + (s.size() == 1 ? ",)" : ")");
}

// A JSON config reader for one Keras layer: typed getters with errors naming the layer.
struct KLayer {
  std::string cls, name, what;  // what = "layer 'name' (Class)"
  const nlohmann::json* cfg = nullptr;
  const std::string* file = nullptr;

  [[noreturn]] void fail(const std::string& why) const { throw FormatError("keras .h5 '" + *file + "': " + what + ": " + why); }
  bool has(const char* k) const { return cfg->contains(k) && !(*cfg)[k].is_null(); }
  std::string str(const char* k, const std::string& def) const {
    if (!has(k)) return def;
    if (!(*cfg)[k].is_string()) fail(std::string("config '") + k + "' must be a string");
    return (*cfg)[k].get<std::string>();
  }
  bool boolean(const char* k, bool def) const {
    if (!has(k)) return def;
    if (!(*cfg)[k].is_boolean()) fail(std::string("config '") + k + "' must be a boolean");
    return (*cfg)[k].get<bool>();
  }
  double number(const char* k, double def) const {
    if (!has(k)) return def;
    if (!(*cfg)[k].is_number()) fail(std::string("config '") + k + "' must be a number");
    return (*cfg)[k].get<double>();
  }
  static int64_t int_value(const nlohmann::json& v, const KLayer& l, const std::string& k) {
    if (!v.is_number_integer()) l.fail("config '" + k + "' must hold integers");
    const int64_t i = v.get<int64_t>();
    if (i < -(int64_t(1) << 31) || i > (int64_t(1) << 31)) l.fail("config '" + k + "' is out of range");
    return i;
  }
  int64_t integer(const char* k, int64_t def) const { return has(k) ? int_value((*cfg)[k], *this, k) : def; }
  // An int or a list of ints.
  std::vector<int64_t> ints(const char* k, std::vector<int64_t> def) const {
    if (!has(k)) return def;
    const auto& v = (*cfg)[k];
    std::vector<int64_t> out;
    if (v.is_array()) {
      if (v.size() > 8) fail(std::string("config '") + k + "' has too many entries");
      for (const auto& e : v) out.push_back(int_value(e, *this, k));
    } else {
      out.push_back(int_value(v, *this, k));
    }
    return out;
  }
  nn::Size2 size2(const char* k, nn::Size2 def) const {
    if (!has(k)) return def;
    auto v = ints(k, {});
    if (v.size() == 1) return nn::Size2(v[0]);
    if (v.size() != 2) fail(std::string("config '") + k + "' must have 2 entries");
    if (v[0] <= 0 || v[1] <= 0) fail(std::string("config '") + k + "' must be positive");
    return nn::Size2(v[0], v[1]);
  }
  void require_channels_last() const {
    const std::string df = str("data_format", "channels_last");
    if (df != "channels_last") fail("data_format '" + df + "' is not supported (only channels_last)");
  }
  void require_no_dilation() const {
    for (int64_t d : ints("dilation_rate", {1}))
      if (d != 1) fail("dilation_rate other than 1 is not supported");
  }
  std::string activation(const char* k = "activation") const {
    std::string a;
    if (has(k) && (*cfg)[k].is_object()) {  // serialised activation object
      const auto& o = (*cfg)[k];
      if (!o.contains("class_name") || !o["class_name"].is_string()) fail("config 'activation' is not understood");
      a = o["class_name"].get<std::string>();
    } else {
      a = str(k, "linear");
    }
    if (a == "linear" || a == "relu" || a == "sigmoid" || a == "tanh" || a == "softmax" || a == "relu6") return a == "linear" ? "" : a;
    fail("activation '" + a + "' is not supported (linear, relu, relu6, sigmoid, tanh, softmax)");
  }
};

// Reads the 2-D padding of ZeroPadding2D: int, (h, w) or ((top, bottom), (left, right)).
inline std::array<int64_t, 4> zero_padding_of(const KLayer& l) {
  if (!l.has("padding")) return {1, 1, 1, 1};
  const auto& v = (*l.cfg)["padding"];
  if (v.is_number_integer()) {
    const int64_t p = KLayer::int_value(v, l, "padding");
    return {p, p, p, p};
  }
  if (!v.is_array() || v.size() != 2) l.fail("config 'padding' must be an int or a pair");
  if (v[0].is_number_integer() && v[1].is_number_integer()) {
    const int64_t h = KLayer::int_value(v[0], l, "padding"), w = KLayer::int_value(v[1], l, "padding");
    return {h, h, w, w};
  }
  std::array<int64_t, 4> out{};
  for (size_t i = 0; i < 2; ++i) {
    if (!v[i].is_array() || v[i].size() != 2) l.fail("config 'padding' must be ((top, bottom), (left, right))");
    out[2 * i] = KLayer::int_value(v[i][0], l, "padding");
    out[2 * i + 1] = KLayer::int_value(v[i][1], l, "padding");
  }
  return out;
}

struct Weights {
  std::map<std::string, std::pair<Shape, std::vector<float>>> by_name;  // "kernel", "bias", ... (Keras dims)
  std::vector<std::string> order;
};

}  // namespace tinycnn::io::keras_detail
