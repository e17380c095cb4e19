#pragma once
// Layers by name: construct any nn/ layer from its Keras type name and its Config (as the model file
// stores it), Config <-> JSON, and the shapes of a layer's parameters and buffers predicted from its
// config and input shapes WITHOUT building it (so a loader can check a file's tensors before the
// layer allocates anything).
//
//   auto layer = io::make_layer<float>("Dense", {{"units", int64_t(10)}}, "head");
//
// Config values come from untrusted files: integers are bounded (|v| <= 2^31), unknown keys, wrong
// value types and unknown layer types are tinycnn::FormatError naming the layer and what is wrong;
// a value the layer's constructor refuses (e.g. units 0) is reported the same way.
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../nn/activation.hpp"
#include "../nn/add.hpp"
#include "../nn/average.hpp"
#include "../nn/avg_pool2d.hpp"
#include "../nn/batch_normalization.hpp"
#include "../nn/conv2d.hpp"
#include "../nn/cropping2d.hpp"
#include "../nn/dense.hpp"
#include "../nn/depthwise_conv2d.hpp"
#include "../nn/dropout.hpp"
#include "../nn/flatten.hpp"
#include "../nn/flip.hpp"
#include "../nn/global_avg_pool2d.hpp"
#include "../nn/layer.hpp"
#include "../nn/leaky_relu.hpp"
#include "../nn/max_pool2d.hpp"
#include "../nn/relu.hpp"
#include "../nn/rescaling.hpp"
#include "../nn/reshape.hpp"
#include "../nn/resizing.hpp"
#include "../nn/sigmoid.hpp"
#include "../nn/softmax.hpp"
#include "../nn/tanh.hpp"
#include "../nn/zero_padding2d.hpp"

namespace tinycnn::io {

// Largest magnitude of an integer config value read from a file.
constexpr int64_t kMaxConfigInt = int64_t(1) << 31;

// Every layer type the registry can construct (Keras class names).
inline const std::vector<std::string>& known_layer_types() {
  static const std::vector<std::string> types{
      "Activation", "Add",     "Average", "AveragePooling2D", "BatchNormalization", "Conv2D", "Cropping2D", "Dense", "DepthwiseConv2D",
      "Dropout",    "Flatten", "Flip", "GlobalAveragePooling2D", "LeakyReLU", "MaxPooling2D", "ReLU", "Rescaling", "Reshape",
      "Resizing",   "Sigmoid", "Softmax", "Tanh", "ZeroPadding2D"};
  return types;
}
inline bool is_known_layer_type(const std::string& t) {
  for (const auto& k : known_layer_types())
    if (k == t) return true;
  return false;
}

// ---- Config <-> JSON ----------------------------------------------------------------------------
inline nlohmann::json config_to_json(const nn::Config& cfg) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& kv : cfg) {
    if (j.contains(kv.first)) throw ValueError("config_to_json: duplicate key '" + kv.first + "'");
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, double>) {
            if (!std::isfinite(v)) throw ValueError("config_to_json: '" + kv.first + "' is not finite");
          }
          j[kv.first] = v;
        },
        kv.second);
  }
  return j;
}

// `what` names the layer in error messages, e.g. "layer 'dense_1' (Dense)".
inline nn::Config config_from_json(const nlohmann::json& j, const std::string& what) {
  if (!j.is_object()) throw FormatError(what + ": config is not a JSON object");
  auto int_of = [&](const nlohmann::json& v, const std::string& key) -> int64_t {
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(kMaxConfigInt)) throw FormatError(what + ": config '" + key + "' is out of range (" + v.dump() + ")");
      return static_cast<int64_t>(u);
    }
    const int64_t i = v.get<int64_t>();
    if (i < -kMaxConfigInt || i > kMaxConfigInt) throw FormatError(what + ": config '" + key + "' is out of range (" + v.dump() + ")");
    return i;
  };
  nn::Config cfg;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const nlohmann::json& v = it.value();
    if (v.is_boolean()) {
      cfg.emplace_back(k, v.get<bool>());
    } else if (v.is_number_integer()) {
      cfg.emplace_back(k, int_of(v, k));
    } else if (v.is_number_float()) {
      const double d = v.get<double>();
      if (!std::isfinite(d)) throw FormatError(what + ": config '" + k + "' is not finite");
      cfg.emplace_back(k, d);
    } else if (v.is_string()) {
      cfg.emplace_back(k, v.get<std::string>());
    } else if (v.is_array()) {
      // Integer arrays are shapes, sizes and paddings (a few entries); number arrays with a fraction
      // are per-channel constants (Rescaling), at most one per channel of a large layer.
      bool all_int = true;
      for (const auto& e : v) {
        if (!e.is_number()) throw FormatError(what + ": config '" + k + "' must be an array of numbers");
        all_int = all_int && e.is_number_integer();
      }
      if (all_int) {
        if (v.size() > 8) throw FormatError(what + ": config '" + k + "' has more than 8 entries");
        std::vector<int64_t> a;
        for (const auto& e : v) a.push_back(int_of(e, k));
        cfg.emplace_back(k, std::move(a));
      } else {
        if (v.size() > 4096) throw FormatError(what + ": config '" + k + "' has more than 4096 entries");
        std::vector<double> a;
        for (const auto& e : v) {
          a.push_back(e.get<double>());
          if (!std::isfinite(a.back())) throw FormatError(what + ": config '" + k + "' is not finite");
        }
        cfg.emplace_back(k, std::move(a));
      }
    } else {
      throw FormatError(what + ": config '" + k + "' has an unsupported JSON type (" + std::string(v.type_name()) + ")");
    }
  }
  return cfg;
}

// ---- reading a Config with types, defaults and unknown-key detection ----------------------------
class ConfigReader {
 public:
  ConfigReader(nn::Config cfg, std::string what) : cfg_(std::move(cfg)), what_(std::move(what)) {}

  bool get_bool(const std::string& k, bool def) {
    const nn::ConfigValue* v = find(k);
    if (!v) return def;
    if (auto p = std::get_if<bool>(v)) return *p;
    fail(k, "a boolean");
  }
  int64_t get_int(const std::string& k, int64_t def) {
    const nn::ConfigValue* v = find(k);
    if (!v) return def;
    if (auto p = std::get_if<int64_t>(v)) return *p;
    fail(k, "an integer");
  }
  double get_double(const std::string& k, double def) {
    const nn::ConfigValue* v = find(k);
    if (!v) return def;
    if (auto p = std::get_if<double>(v)) return *p;
    if (auto p = std::get_if<int64_t>(v)) return static_cast<double>(*p);
    fail(k, "a number");
  }
  std::string get_string(const std::string& k, const std::string& def) {
    const nn::ConfigValue* v = find(k);
    if (!v) return def;
    if (auto p = std::get_if<std::string>(v)) return *p;
    fail(k, "a string");
  }
  std::vector<int64_t> get_ints(const std::string& k, const std::vector<int64_t>& def) {
    const nn::ConfigValue* v = find(k);
    if (!v) return def;
    if (auto p = std::get_if<std::vector<int64_t>>(v)) return *p;
    if (auto p = std::get_if<int64_t>(v)) return {*p};
    fail(k, "an integer array");
  }
  // Numbers: [a, b, ...] (integers too) or a single number.
  std::vector<double> get_doubles(const std::string& k, const std::vector<double>& def) {
    const nn::ConfigValue* v = find(k);
    if (!v) return def;
    if (auto p = std::get_if<std::vector<double>>(v)) return *p;
    if (auto p = std::get_if<std::vector<int64_t>>(v)) return std::vector<double>(p->begin(), p->end());
    if (auto p = std::get_if<double>(v)) return {*p};
    if (auto p = std::get_if<int64_t>(v)) return {static_cast<double>(*p)};
    fail(k, "a number or an array of numbers");
  }
  // An (h, w) pair from [v] or [h, w] (or a single integer).
  nn::Size2 get_size2(const std::string& k, nn::Size2 def) {
    const std::vector<int64_t> v = get_ints(k, def.vec());
    if (v.size() == 1) return nn::Size2(v[0]);
    if (v.size() == 2) return nn::Size2(v[0], v[1]);
    throw FormatError(what_ + ": config '" + k + "' must have 1 or 2 entries");
  }
  // Throws if the config holds a key no getter asked for.
  void finish() const {
    std::set<std::string> seen;
    for (const auto& kv : cfg_) {
      if (!seen.insert(kv.first).second) throw FormatError(what_ + ": duplicate config key '" + kv.first + "'");
      if (!used_.count(kv.first)) throw FormatError(what_ + ": unknown config key '" + kv.first + "'");
    }
  }

 private:
  const nn::ConfigValue* find(const std::string& k) {
    used_.insert(k);
    for (const auto& kv : cfg_)
      if (kv.first == k) return &kv.second;
    return nullptr;
  }
  [[noreturn]] void fail(const std::string& k, const char* want) const {
    throw FormatError(what_ + ": config '" + k + "' must be " + want);
  }
  nn::Config cfg_;
  std::string what_;
  std::set<std::string> used_;
};

// ---- construction -------------------------------------------------------------------------------
namespace detail {

template <class T>
std::unique_ptr<nn::Layer<T>> make_layer_unchecked(const std::string& type, ConfigReader& r, const std::string& name,
                                                   const std::string& what) {
  using std::make_unique;
  auto activation = [&r] {
    std::string a = r.get_string("activation", "linear");
    return a == "linear" ? std::string() : a;
  };
  if (type == "Dense") {
    const int64_t units = r.get_int("units", 0);
    const std::string act = activation();
    return make_unique<nn::Dense<T>>(units, act, r.get_bool("use_bias", true), name);
  }
  if (type == "Conv2D") {
    const int64_t filters = r.get_int("filters", 0);
    const nn::Size2 k = r.get_size2("kernel_size", nn::Size2(0));
    const nn::Size2 s = r.get_size2("strides", nn::Size2(1));
    const std::string pad = r.get_string("padding", "valid");
    const std::string act = activation();
    return make_unique<nn::Conv2D<T>>(filters, k, s, pad, act, r.get_bool("use_bias", true), name);
  }
  if (type == "DepthwiseConv2D") {
    const nn::Size2 k = r.get_size2("kernel_size", nn::Size2(0));
    const nn::Size2 s = r.get_size2("strides", nn::Size2(1));
    const std::string pad = r.get_string("padding", "valid");
    const int64_t m = r.get_int("depth_multiplier", 1);
    const std::string act = activation();
    return make_unique<nn::DepthwiseConv2D<T>>(k, s, pad, m, act, r.get_bool("use_bias", true), name);
  }
  if (type == "MaxPooling2D" || type == "AveragePooling2D") {
    const nn::Size2 p = r.get_size2("pool_size", nn::Size2(2));
    const nn::Size2 s = r.get_size2("strides", p);
    const std::string pad = r.get_string("padding", "valid");
    if (s.h <= 0 || s.w <= 0) throw FormatError(what + ": strides must be positive");
    if (type == "MaxPooling2D") return make_unique<nn::MaxPool2D<T>>(p, s, pad, name);
    return make_unique<nn::AvgPool2D<T>>(p, s, pad, name);
  }
  if (type == "GlobalAveragePooling2D") return make_unique<nn::GlobalAvgPool2D<T>>(name);
  if (type == "BatchNormalization") {
    const double momentum = r.get_double("momentum", 0.99);
    return make_unique<nn::BatchNormalization<T>>(momentum, r.get_double("epsilon", 1e-3), name);
  }
  if (type == "ZeroPadding2D") {
    const std::vector<int64_t> p = r.get_ints("padding", {1, 1, 1, 1});
    if (p.size() == 1) return make_unique<nn::ZeroPadding2D<T>>(p[0], name);
    if (p.size() == 2) return make_unique<nn::ZeroPadding2D<T>>(p[0], p[1], name);
    if (p.size() == 4)
      return make_unique<nn::ZeroPadding2D<T>>(std::make_pair(p[0], p[1]), std::make_pair(p[2], p[3]), name);
    throw FormatError(what + ": config 'padding' must have 1, 2 or 4 entries");
  }
  if (type == "Cropping2D") {
    const std::vector<int64_t> c = r.get_ints("cropping", {0, 0, 0, 0});
    if (c.size() != 4) throw FormatError(what + ": config 'cropping' must have 4 entries (top, bottom, left, right)");
    return make_unique<nn::Cropping2D<T>>(std::make_pair(c[0], c[1]), std::make_pair(c[2], c[3]), name);
  }
  if (type == "Activation") return make_unique<nn::Activation<T>>(r.get_string("activation", ""), name);
  if (type == "ReLU") return make_unique<nn::ReLU<T>>(r.get_double("max_value", 0), name);
  if (type == "LeakyReLU") return make_unique<nn::LeakyReLU<T>>(r.get_double("alpha", 0.3), name);
  if (type == "Dropout") return make_unique<nn::Dropout<T>>(r.get_double("rate", 0), name);
  if (type == "Reshape") {
    const std::vector<int64_t> t = r.get_ints("target_shape", {});
    // Keep Reshape's own arithmetic in range: positive dims or one -1, with a bounded product.
    int64_t prod = 1, infer = 0;
    for (int64_t d : t) {
      if (d == -1) {
        ++infer;
        continue;
      }
      if (d <= 0) throw FormatError(what + ": target_shape entries must be positive or -1");
      if (prod > (int64_t(1) << 40) / d) throw FormatError(what + ": target_shape is too large");
      prod *= d;
    }
    if (infer > 1) throw FormatError(what + ": target_shape has more than one -1");
    return make_unique<nn::Reshape<T>>(Shape(t.begin(), t.end()), name);
  }
  if (type == "Flatten") return make_unique<nn::Flatten<T>>(name);
  if (type == "Flip") return make_unique<nn::Flip<T>>(r.get_string("mode", "horizontal"), name);
  if (type == "Rescaling") {
    const std::vector<double> scale = r.get_doubles("scale", {1.0});
    return make_unique<nn::Rescaling<T>>(scale, r.get_doubles("offset", {0.0}), name);
  }
  if (type == "Resizing") {
    const int64_t h = r.get_int("height", 0), w = r.get_int("width", 0);
    return make_unique<nn::Resizing<T>>(h, w, r.get_string("interpolation", "bilinear"), r.get_bool("antialias", false), name);
  }
  if (type == "Add") return make_unique<nn::Add<T>>(name);
  if (type == "Average") return make_unique<nn::Average<T>>(name);
  if (type == "Sigmoid") return make_unique<nn::Sigmoid<T>>(name);
  if (type == "Softmax") return make_unique<nn::Softmax<T>>(name);
  if (type == "Tanh") return make_unique<nn::Tanh<T>>(name);
  return nullptr;
}

}  // namespace detail

// Constructs a layer (not built). Unknown types, bad or unknown config keys, and values the layer
// refuses are FormatError naming the layer and its type.
template <class T>
std::unique_ptr<nn::Layer<T>> make_layer(const std::string& type, const nn::Config& cfg, const std::string& name = "") {
  const std::string what = "layer '" + name + "' (" + type + ")";
  if (!is_known_layer_type(type)) {
    std::string known;
    for (const auto& k : known_layer_types()) known += (known.empty() ? "" : ", ") + k;
    throw FormatError("layer '" + name + "': unknown layer type '" + type + "' (known: " + known + ")");
  }
  ConfigReader r(cfg, what);
  std::unique_ptr<nn::Layer<T>> l;
  try {
    l = detail::make_layer_unchecked<T>(type, r, name, what);
  } catch (const FormatError&) {
    throw;
  } catch (const Error& e) {
    r.finish();  // an unknown key explains a missing value better than the constructor's message
    throw FormatError(what + ": bad config: " + e.what());
  }
  r.finish();
  if (!l) throw FormatError(what + ": unknown layer type");
  return l;
}

// The shapes build() will give the layer's parameters and buffers ("<param>" names), predicted from
// the (already constructed) layer's config and the per-sample input shapes, without allocating.
// std::nullopt when the inputs do not suit the layer (build() would throw a ShapeError itself).
// Element counts use checked arithmetic; a product past 2^62 is a FormatError.
template <class T>
std::optional<std::vector<std::pair<std::string, Shape>>> expected_state_shapes(const nn::Layer<T>& layer,
                                                                                const std::vector<Shape>& inputs) {
  const std::string type = layer.type();
  const std::string what = "layer '" + layer.name() + "' (" + type + ")";
  ConfigReader r(layer.config(), what);
  std::vector<std::pair<std::string, Shape>> out;
  auto check = [&](const Shape& s) {
    uint64_t n = 1;
    for (int64_t d : s) {
      if (d < 0) throw FormatError(what + ": negative dimension in " + shape_str(s));
      if (d != 0 && n > (uint64_t(1) << 62) / static_cast<uint64_t>(d))
        throw FormatError(what + ": parameter shape " + shape_str(s) + " is too large");
      n *= static_cast<uint64_t>(d);
    }
    return s;
  };
  if (type == "Dense") {
    if (inputs.size() != 1 || inputs[0].size() != 1) return std::nullopt;
    const int64_t units = r.get_int("units", 0);
    out.push_back({"kernel", check({inputs[0][0], units})});
    if (r.get_bool("use_bias", true)) out.push_back({"bias", check({units})});
  } else if (type == "Conv2D") {
    if (inputs.size() != 1 || inputs[0].size() != 3) return std::nullopt;
    const int64_t f = r.get_int("filters", 0);
    const auto k = r.get_ints("kernel_size", {});
    if (k.size() != 2) return std::nullopt;
    out.push_back({"kernel", check({f, inputs[0][0], k[0], k[1]})});
    if (r.get_bool("use_bias", true)) out.push_back({"bias", check({f})});
  } else if (type == "DepthwiseConv2D") {
    if (inputs.size() != 1 || inputs[0].size() != 3) return std::nullopt;
    const int64_t m = r.get_int("depth_multiplier", 1);
    const auto k = r.get_ints("kernel_size", {});
    if (k.size() != 2) return std::nullopt;
    const int64_t C = inputs[0][0];
    out.push_back({"depthwise_kernel", check({C, m, k[0], k[1]})});
    if (r.get_bool("use_bias", true)) {
      check({C, m});
      out.push_back({"bias", check({C * m})});
    }
  } else if (type == "BatchNormalization") {
    if (inputs.size() != 1 || (inputs[0].size() != 3 && inputs[0].size() != 1)) return std::nullopt;
    const Shape c{inputs[0][0]};
    for (const char* n : {"gamma", "beta", "moving_mean", "moving_variance"}) out.push_back({n, check(c)});
  }
  return out;
}

}  // namespace tinycnn::io
