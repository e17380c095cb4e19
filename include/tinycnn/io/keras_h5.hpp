#pragma once
// Keras 2 full-model .h5 import (model.save("m.h5") in Keras 2.x / tf.keras, HDF5 format), through
// the HDF5 C library. Optional: compiled only when CMake found HDF5 (TINYCNN_HAS_HDF5) — nlohmann-json
// is needed as well (TINYCNN_HAS_JSON).
//
//   io::KerasModel k = io::import_keras_h5("resnet8_cifar10.h5");
//   Tensor<float> probs = train::predict(*k.model, images);  // images [N, C, H, W], as k.input_shape
//
// What is read: the root attribute `model_config` (the architecture as JSON: Sequential or
// Functional) and the group `model_weights` (per layer a group with a `weight_names` attribute
// naming its datasets). Supported layers: InputLayer, Conv2D, DepthwiseConv2D, BatchNormalization,
// Dense, Activation, ReLU (max_value), Add, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D
// (keepdims too), ZeroPadding2D, Flatten, Reshape, Dropout; any other layer (or option tinycnn lacks:
// dilation, groups, channels_first, ...) is a FormatError naming the layer and its type.
//
// Layout (Keras is channels-last, tinycnn channels-first):
//   Conv2D kernel (R, S, C, K) -> [K, C, R, S]; DepthwiseConv2D (R, S, C, M) -> [C, M, R, S];
//   Dense kernel [in, out] as is, except after a Flatten of an [H, W, C] map with both H*W > 1 and
//   C > 1: Keras flattens HWC, tinycnn CHW, so the kernel's rows are permuted (and so are the
//   per-feature weights of a BatchNormalization in between) — the outputs are identical.
//   Reshape is imported when the data order does not change between layouts (every [H, W, C]
//   tensor on either side has H*W == 1 or C == 1, e.g. MobileNet's (1, 1, 1000) -> (1000)); a
//   target (h, w, c) becomes [c, h, w]. Other reshapes are a FormatError.
//   GlobalAveragePooling2D(keepdims=True) becomes GlobalAvgPool2D + Reshape [C, 1, 1] (named
//   "<layer>_keepdims").
//   'same' padding: tinycnn's conv/pool geometry is TensorFlow's (extra odd padding at the bottom/right).
// Softmax: tinycnn models output logits (fit()'s loss and predict() apply the softmax). A softmax
// at the model's output — an Activation('softmax') layer (dropped) or a Dense/Conv2D with
// activation 'softmax' (made linear) — is removed and `softmax_removed` set, unless
// options.keep_softmax. Arg-max predictions and train::predict() probabilities are unchanged.
// Every HDF5 or format problem is a tinycnn::FormatError naming the file; HDF5's own error printing
// is silenced while importing.
#if defined(TINYCNN_HAS_HDF5)

#include <hdf5.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "detail/hdf5_file.hpp"
#include "detail/keras_layout.hpp"
#include "../nn/activation.hpp"
#include "../nn/add.hpp"
#include "../nn/avg_pool2d.hpp"
#include "../nn/batch_normalization.hpp"
#include "../nn/conv2d.hpp"
#include "../nn/dense.hpp"
#include "../nn/depthwise_conv2d.hpp"
#include "../nn/dropout.hpp"
#include "../nn/flatten.hpp"
#include "../nn/global_avg_pool2d.hpp"
#include "../nn/graph.hpp"
#include "../nn/max_pool2d.hpp"
#include "../nn/relu.hpp"
#include "../nn/reshape.hpp"
#include "../nn/sequential.hpp"
#include "../nn/zero_padding2d.hpp"

namespace tinycnn::io {

struct KerasImportOptions {
  // Input height/width for models saved with an unknown (None) spatial size; 0: from the file.
  int64_t input_height = 0;
  int64_t input_width = 0;
  bool keep_softmax = false;  // keep a final softmax (the model then outputs probabilities)
};

struct KerasModel {
  std::unique_ptr<nn::Model<float>> model;  // nn::Sequential (Keras Sequential) or nn::Graph (Functional); built, eval mode
  Shape input_shape;                        // per sample, tinycnn layout: [C, H, W] (or [features])
  Shape keras_input_shape;                  // per sample as Keras has it: [H, W, C]
  // Keras layer name -> tinycnn layer name (the same name; "" for layers that became nothing:
  // InputLayer, a dropped final softmax).
  std::map<std::string, std::string> layer_names;
  bool softmax_removed = false;
  std::string keras_version, backend;       // root attributes, "" when absent
};

// Imports a Keras 2 full-model .h5 file. See the top of this header for what is supported.
inline KerasModel import_keras_h5(const std::string& path, const KerasImportOptions& options = {}) {
  using namespace keras_detail;
  using nlohmann::json;
  H5ErrorSilencer silence;
  H5File f(path);
  KerasModel out;
  const hid_t root = f.id();
  if (f.has_attr(root, "keras_version")) out.keras_version = f.read_string(root, "keras_version", "root");
  if (f.has_attr(root, "backend")) out.backend = f.read_string(root, "backend", "root");
  if (!f.has_attr(root, "model_config"))
    f.fail("no 'model_config' attribute: not a Keras full-model file (saved with save_weights() or by Keras 3?)");
  const std::string config_text = f.read_string(root, "model_config", "root");
  json mc;
  try {
    mc = json::parse(config_text);
  } catch (const json::exception& e) {
    f.fail(std::string("model_config is not valid JSON: ") + e.what());
  }
  if (!mc.is_object() || !mc.contains("class_name") || !mc["class_name"].is_string() || !mc.contains("config"))
    f.fail("model_config has no class_name/config");
  const std::string model_class = mc["class_name"].get<std::string>();
  const bool sequential = model_class == "Sequential";
  if (!sequential && model_class != "Functional" && model_class != "Model")
    f.fail("model class '" + model_class + "' is not supported (Sequential, Functional/Model)");
  const json& mcfg = mc["config"];
  const json* layers_json = nullptr;
  if (mcfg.is_array()) layers_json = &mcfg;  // Keras < 2.2.3 Sequential: a bare layer list
  else if (mcfg.is_object() && mcfg.contains("layers") && mcfg["layers"].is_array()) layers_json = &mcfg["layers"];
  else f.fail("model_config has no layer list");
  if (layers_json->empty()) f.fail("the model has no layers");
  if (layers_json->size() > 100000) f.fail("too many layers");

  // Weights: model_weights/<layer>/ with attribute weight_names.
  if (!f.has_link(root, "model_weights")) f.fail("no 'model_weights' group: the file holds no weights");
  H5Id mw = f.open_group(root, "model_weights", "model_weights");
  std::set<std::string> weight_layers;
  if (f.has_attr(mw.get(), "layer_names"))
    for (auto& n : f.read_strings(mw.get(), "layer_names", "model_weights")) weight_layers.insert(n);
  auto load_weights = [&](const KLayer& l) {
    Weights w;
    if (!weight_layers.count(l.name) && !f.has_link(mw.get(), l.name)) return w;
    if (!f.has_link(mw.get(), l.name)) l.fail("its weight group model_weights/" + l.name + " is missing");
    H5Id g = f.open_group(mw.get(), l.name, l.what);
    if (!f.has_attr(g.get(), "weight_names")) return w;
    for (const auto& wn : f.read_strings(g.get(), "weight_names", l.what)) {
      // "conv2d/kernel:0" -> "kernel"
      std::string key = wn;
      if (auto c = key.rfind(':'); c != std::string::npos) key = key.substr(0, c);
      if (auto s = key.rfind('/'); s != std::string::npos) key = key.substr(s + 1);
      Shape dims;
      std::vector<float> v = f.read_floats(g.get(), wn, l.what, dims);
      if (w.by_name.count(key)) l.fail("weight '" + key + "' appears twice");
      w.by_name[key] = {dims, std::move(v)};
      w.order.push_back(key);
    }
    return w;
  };

  // Input shape.
  auto input_shape_from = [&](const KLayer& l) -> Shape {
    const json& c = *l.cfg;
    const json* bis = nullptr;
    if (c.contains("batch_input_shape") && c["batch_input_shape"].is_array()) bis = &c["batch_input_shape"];
    else if (c.contains("batch_shape") && c["batch_shape"].is_array()) bis = &c["batch_shape"];
    if (!bis) l.fail("no batch_input_shape");
    if (bis->size() != 4 && bis->size() != 2) l.fail("input rank " + std::to_string(bis->size() - 1) + " is not supported (images (H, W, C) or vectors)");
    Shape s;
    for (size_t i = 1; i < bis->size(); ++i) {
      const json& d = (*bis)[i];
      int64_t v = -1;
      if (d.is_number_integer()) v = KLayer::int_value(d, l, "batch_input_shape");
      else if (!d.is_null()) l.fail("batch_input_shape entries must be integers or null");
      if (bis->size() == 4 && i == 1 && options.input_height > 0) v = options.input_height;
      if (bis->size() == 4 && i == 2 && options.input_width > 0) v = options.input_width;
      if (v <= 0) l.fail("input dimension " + std::to_string(i) + " is unknown (None): pass KerasImportOptions::input_height/input_width");
      if (v > (int64_t(1) << 16)) l.fail("input dimension too large");
      s.push_back(v);
    }
    return s;
  };

  // Parse layer list into KLayer records with inbound layer names.
  struct Entry {
    KLayer l;
    std::vector<std::string> inbound;
  };
  std::vector<Entry> entries;
  std::set<std::string> seen;
  for (size_t i = 0; i < layers_json->size(); ++i) {
    const json& lj = (*layers_json)[i];
    if (!lj.is_object() || !lj.contains("class_name") || !lj["class_name"].is_string() || !lj.contains("config") ||
        !lj["config"].is_object())
      f.fail("layer " + std::to_string(i) + " of model_config has no class_name/config");
    Entry e;
    e.l.cls = lj["class_name"].get<std::string>();
    e.l.cfg = &lj["config"];
    e.l.file = &f.path();
    if (lj.contains("name") && lj["name"].is_string()) e.l.name = lj["name"].get<std::string>();
    else if (e.l.cfg->contains("name") && (*e.l.cfg)["name"].is_string()) e.l.name = (*e.l.cfg)["name"].get<std::string>();
    else e.l.name = "layer_" + std::to_string(i);
    e.l.what = "layer '" + e.l.name + "' (" + e.l.cls + ")";
    if (e.l.name.empty() || e.l.name.size() > 1024) f.fail("layer " + std::to_string(i) + " has a bad name");
    if (!seen.insert(e.l.name).second) f.fail("two layers are named '" + e.l.name + "'");
    if (!sequential) {
      if (!lj.contains("inbound_nodes") || !lj["inbound_nodes"].is_array()) e.l.fail("no inbound_nodes");
      const json& nodes = lj["inbound_nodes"];
      if (nodes.size() > 1) e.l.fail("is called more than once (shared layers are not supported)");
      if (nodes.size() == 1) {
        const json& node = nodes[0];
        if (!node.is_array()) e.l.fail("inbound_nodes is not in the Keras 2 format");
        for (const json& in : node) {
          if (!in.is_array() || in.size() < 3 || !in[0].is_string() || !in[1].is_number_integer() || !in[2].is_number_integer())
            e.l.fail("inbound_nodes is not in the Keras 2 format");
          if (in[1].get<int64_t>() != 0 || in[2].get<int64_t>() != 0) e.l.fail("uses a layer's second node/output (not supported)");
          e.inbound.push_back(in[0].get<std::string>());
        }
      }
    }
    entries.push_back(std::move(e));
  }

  // Supported types (checked up front, so an unsupported layer is named before anything is built).
  static const std::set<std::string> supported{"InputLayer", "Conv2D", "Convolution2D", "DepthwiseConv2D", "BatchNormalization",
                                               "Dense", "Activation", "ReLU", "Add", "MaxPooling2D", "MaxPool2D",
                                               "AveragePooling2D", "AvgPool2D", "GlobalAveragePooling2D",
                                               "GlobalAvgPool2D", "ZeroPadding2D", "Flatten", "Reshape", "Dropout"};
  for (const auto& e : entries)
    if (!supported.count(e.l.cls))
      e.l.fail("layer type '" + e.l.cls +
               "' is not supported (supported: InputLayer, Conv2D, DepthwiseConv2D, BatchNormalization, Dense, Activation, "
               "ReLU, Add, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, ZeroPadding2D, Flatten, Reshape, Dropout)");

  // Model input.
  Shape keras_in;
  std::string input_name;
  if (entries.front().l.cls == "InputLayer") {
    keras_in = input_shape_from(entries.front().l);
    input_name = entries.front().l.name;
  } else if (sequential) {
    keras_in = input_shape_from(entries.front().l);  // batch_input_shape on the first layer
  } else {
    entries.front().l.fail("a Functional model must start with an InputLayer");
  }
  if (!sequential) {
    size_t n_inputs = 0;
    for (const auto& e : entries) n_inputs += e.l.cls == "InputLayer";
    if (n_inputs != 1) f.fail("models with " + std::to_string(n_inputs) + " inputs are not supported (one)");
  }
  std::string output_name = entries.back().l.name;
  if (!sequential) {
    const json* ol = mcfg.contains("output_layers") ? &mcfg["output_layers"] : nullptr;
    if (!ol || !ol->is_array() || ol->empty()) f.fail("model_config has no output_layers");
    if (ol->size() != 1) f.fail("models with " + std::to_string(ol->size()) + " outputs are not supported (one)");
    const json& o = (*ol)[0];
    if (!o.is_array() || o.empty() || !o[0].is_string()) f.fail("output_layers is not understood");
    output_name = o[0].get<std::string>();
    if (!seen.count(output_name)) f.fail("output layer '" + output_name + "' does not exist");
  }

  out.keras_input_shape = keras_in;
  out.input_shape = to_tinycnn_shape(keras_in);
  std::unique_ptr<nn::Graph<float>> graph;
  std::unique_ptr<nn::Sequential<float>> seq;
  if (sequential) {
    seq = std::make_unique<nn::Sequential<float>>();
    seq->build(out.input_shape);
  } else {
    graph = std::make_unique<nn::Graph<float>>(out.input_shape);
  }
  nn::Model<float>& model = sequential ? static_cast<nn::Model<float>&>(*seq) : static_cast<nn::Model<float>&>(*graph);

  std::map<std::string, KTensor> tensors;  // Keras layer name -> its output
  KTensor input_info{-1, keras_in, {}};
  if (!input_name.empty()) tensors[input_name] = input_info;
  KTensor prev = input_info;  // Sequential chaining
  const int64_t max_elems = int64_t(1) << 28;  // per-sample elements of any layer output

  auto add_layer = [&](std::unique_ptr<nn::Layer<float>> layer, const std::vector<KTensor>& ins, const KLayer& l) -> int {
    try {
      if (sequential) {
        seq->add(std::move(layer));
        return static_cast<int>(seq->size()) - 1;
      }
      std::vector<nn::Graph<float>::Node> nodes;
      for (const auto& t : ins) nodes.push_back({t.node});
      return graph->add(std::move(layer), nodes).id;
    } catch (const FormatError&) {
      throw;
    } catch (const Error& e) {
      l.fail(std::string("cannot build it: ") + e.what());
    }
  };
  auto check_weights = [&](const KLayer& l, const Weights& w, const std::vector<std::pair<std::string, Shape>>& want) {
    std::set<std::string> expected;
    for (const auto& [k, s] : want) {
      expected.insert(k);
      auto it = w.by_name.find(k);
      if (it == w.by_name.end()) l.fail("weight '" + k + "' is missing in the file");
      if (it->second.first != s)
        l.fail("weight '" + k + "' has shape " + shape_str(it->second.first) + ", expected " + shape_str(s));
    }
    for (const auto& k : w.order)
      if (!expected.count(k)) l.fail("unexpected weight '" + k + "' in the file");
  };
  auto copy_into = [](Var<float>& v, const std::vector<float>& src) { std::copy(src.begin(), src.end(), v.value().data()); };

  for (size_t idx = 0; idx < entries.size(); ++idx) {
    const KLayer& l = entries[idx].l;
    const std::string& cls = l.cls;
    if (cls == "InputLayer") {
      if (idx != 0) l.fail("an InputLayer must come first");
      out.layer_names[l.name] = "";
      continue;
    }
    // Inputs.
    std::vector<KTensor> ins;
    if (sequential) {
      ins.push_back(prev);
    } else {
      if (entries[idx].inbound.empty()) l.fail("has no inputs");
      for (const auto& n : entries[idx].inbound) {
        auto it = tensors.find(n);
        if (it == tensors.end()) l.fail("input '" + n + "' is not defined before it");
        ins.push_back(it->second);
      }
    }
    if (cls != "Add" && ins.size() != 1) l.fail("takes one input, got " + std::to_string(ins.size()));
    const KTensor& in = ins[0];
    const Shape& ks = in.keras_shape;
    const bool is_output = l.name == output_name;
    const bool trainable = l.boolean("trainable", true);
    Weights w = load_weights(l);
    KTensor res;
    res.keras_shape = ks;
    std::unique_ptr<nn::Layer<float>> layer;
    auto no_weights = [&] {
      if (!w.order.empty()) l.fail("has weights in the file but takes none");
    };
    auto need_map = [&] {
      if (ks.size() != 3) l.fail("needs an (H, W, C) input, got " + shape_str(ks));
    };
    auto not_permuted = [&] {
      if (!in.chw_origin.empty())
        l.fail("follows a Flatten of an (H, W, C) map whose element order differs between Keras and tinycnn; only Dense, "
               "BatchNormalization, Dropout, Activation, ReLU and Add may follow it");
    };

    if (cls == "Conv2D" || cls == "Convolution2D") {
      need_map();
      l.require_channels_last();
      l.require_no_dilation();
      if (l.integer("groups", 1) != 1) l.fail("groups other than 1 are not supported");
      const int64_t filters = l.integer("filters", 0);
      const nn::Size2 k = l.size2("kernel_size", nn::Size2(0));
      const nn::Size2 s = l.size2("strides", nn::Size2(1));
      const std::string pad = l.str("padding", "valid");
      std::string act = l.activation();
      const bool bias = l.boolean("use_bias", true);
      if (pad != "valid" && pad != "same") l.fail("padding '" + pad + "' is not supported");
      if (filters <= 0 || k.h <= 0 || k.w <= 0) l.fail("bad filters/kernel_size");
      if (act == "softmax" && is_output && !options.keep_softmax) {
        act = "";
        out.softmax_removed = true;
      } else if (act == "softmax") {
        l.fail("a softmax activation inside a convolution is only supported at the model's output");
      }
      const int64_t C = ks[2];
      check_weights(l, w, bias ? std::vector<std::pair<std::string, Shape>>{{"kernel", {k.h, k.w, C, filters}}, {"bias", {filters}}}
                               : std::vector<std::pair<std::string, Shape>>{{"kernel", {k.h, k.w, C, filters}}});
      auto conv = std::make_unique<nn::Conv2D<float>>(filters, k, s, pad, act, bias, l.name);
      auto* c = conv.get();
      res.node = add_layer(std::move(conv), ins, l);
      // (R, S, C, K) -> [K, C, R, S]
      const auto& src = w.by_name["kernel"].second;
      float* dst = c->kernel().value().data();
      for (int64_t r = 0; r < k.h; ++r)
        for (int64_t q = 0; q < k.w; ++q)
          for (int64_t ci = 0; ci < C; ++ci)
            for (int64_t o = 0; o < filters; ++o)
              dst[((o * C + ci) * k.h + r) * k.w + q] = src[static_cast<size_t>(((r * k.w + q) * C + ci) * filters + o)];
      if (bias) copy_into(c->bias(), w.by_name["bias"].second);
    } else if (cls == "DepthwiseConv2D") {
      need_map();
      l.require_channels_last();
      l.require_no_dilation();
      const nn::Size2 k = l.size2("kernel_size", nn::Size2(0));
      const nn::Size2 s = l.size2("strides", nn::Size2(1));
      const std::string pad = l.str("padding", "valid");
      const int64_t M = l.integer("depth_multiplier", 1);
      const std::string act = l.activation();
      const bool bias = l.boolean("use_bias", true);
      if (pad != "valid" && pad != "same") l.fail("padding '" + pad + "' is not supported");
      if (act == "softmax") l.fail("a softmax activation in a DepthwiseConv2D is not supported");
      if (M <= 0 || k.h <= 0 || k.w <= 0) l.fail("bad depth_multiplier/kernel_size");
      const int64_t C = ks[2];
      check_weights(l, w, bias ? std::vector<std::pair<std::string, Shape>>{{"depthwise_kernel", {k.h, k.w, C, M}}, {"bias", {C * M}}}
                               : std::vector<std::pair<std::string, Shape>>{{"depthwise_kernel", {k.h, k.w, C, M}}});
      auto conv = std::make_unique<nn::DepthwiseConv2D<float>>(k, s, pad, M, act, bias, l.name);
      auto* c = conv.get();
      res.node = add_layer(std::move(conv), ins, l);
      // (R, S, C, M) -> [C, M, R, S]
      const auto& src = w.by_name["depthwise_kernel"].second;
      float* dst = c->depthwise_kernel().value().data();
      for (int64_t r = 0; r < k.h; ++r)
        for (int64_t q = 0; q < k.w; ++q)
          for (int64_t ci = 0; ci < C; ++ci)
            for (int64_t m = 0; m < M; ++m)
              dst[((ci * M + m) * k.h + r) * k.w + q] = src[static_cast<size_t>(((r * k.w + q) * C + ci) * M + m)];
      if (bias) copy_into(c->bias(), w.by_name["bias"].second);
    } else if (cls == "Dense") {
      if (ks.size() != 1) l.fail("needs a flat input (Keras applies Dense to the last axis of " + shape_str(ks) + "; not supported)");
      const int64_t units = l.integer("units", 0);
      std::string act = l.activation();
      const bool bias = l.boolean("use_bias", true);
      if (units <= 0) l.fail("units must be positive");
      if (act == "softmax" && is_output && !options.keep_softmax) {
        act = "";
        out.softmax_removed = true;
      }
      const int64_t F = ks[0];
      check_weights(l, w, bias ? std::vector<std::pair<std::string, Shape>>{{"kernel", {F, units}}, {"bias", {units}}}
                               : std::vector<std::pair<std::string, Shape>>{{"kernel", {F, units}}});
      auto dense = std::make_unique<nn::Dense<float>>(units, act, bias, l.name);
      auto* d = dense.get();
      res.node = add_layer(std::move(dense), ins, l);
      const auto& src = w.by_name["kernel"].second;
      float* dst = d->kernel().value().data();
      if (in.chw_origin.empty()) {
        std::copy(src.begin(), src.end(), dst);
      } else {  // tinycnn row (c*H + h)*W + w holds Keras row (h*W + w)*C + c
        const int64_t C = in.chw_origin[0], H = in.chw_origin[1], W = in.chw_origin[2];
        for (int64_t c = 0; c < C; ++c)
          for (int64_t h = 0; h < H; ++h)
            for (int64_t x = 0; x < W; ++x)
              std::copy_n(src.begin() + ((h * W + x) * C + c) * units, units, dst + ((c * H + h) * W + x) * units);
      }
      if (bias) copy_into(d->bias(), w.by_name["bias"].second);
    } else if (cls == "BatchNormalization") {
      const auto axis = l.ints("axis", {-1});
      const int64_t rank = static_cast<int64_t>(ks.size());
      if (axis.size() != 1 || !(axis[0] == -1 || axis[0] == rank)) l.fail("only normalisation over the channel (last) axis is supported");
      if (rank != 1 && rank != 3) l.fail("needs an (H, W, C) or flat input, got " + shape_str(ks));
      const bool center = l.boolean("center", true), scale = l.boolean("scale", true);
      const int64_t C = ks.back();
      std::vector<std::pair<std::string, Shape>> want;
      if (scale) want.push_back({"gamma", {C}});
      if (center) want.push_back({"beta", {C}});
      want.push_back({"moving_mean", {C}});
      want.push_back({"moving_variance", {C}});
      check_weights(l, w, want);
      auto bn = std::make_unique<nn::BatchNormalization<float>>(l.number("momentum", 0.99), l.number("epsilon", 1e-3), l.name);
      auto* b = bn.get();
      res.node = add_layer(std::move(bn), ins, l);
      res.chw_origin = in.chw_origin;
      // Per-feature vectors follow the tinycnn element order (permuted after a Flatten).
      auto put = [&](Var<float>& v, const std::vector<float>& src) {
        float* dst = v.value().data();
        if (in.chw_origin.empty()) {
          std::copy(src.begin(), src.end(), dst);
          return;
        }
        const int64_t Cc = in.chw_origin[0], H = in.chw_origin[1], W = in.chw_origin[2];
        for (int64_t c = 0; c < Cc; ++c)
          for (int64_t h = 0; h < H; ++h)
            for (int64_t x = 0; x < W; ++x) dst[(c * H + h) * W + x] = src[static_cast<size_t>((h * W + x) * Cc + c)];
      };
      if (scale) put(b->gamma(), w.by_name["gamma"].second);
      if (center) put(b->beta(), w.by_name["beta"].second);
      put(b->moving_mean(), w.by_name["moving_mean"].second);
      put(b->moving_variance(), w.by_name["moving_variance"].second);
      if (!scale) b->gamma().set_requires_grad(false);  // Keras has no gamma: stays 1
      if (!center) b->beta().set_requires_grad(false);  // Keras has no beta: stays 0
    } else if (cls == "Activation") {
      no_weights();
      const std::string act = l.activation();
      if (act == "softmax" && is_output && !options.keep_softmax) {
        out.softmax_removed = true;
        out.layer_names[l.name] = "";
        tensors[l.name] = in;
        prev = in;
        if (!sequential) graph->set_output({in.node});
        continue;
      }
      if (act == "softmax" && ks.size() != 1) l.fail("softmax is only supported on flat (N, classes) tensors");
      res.node = add_layer(std::make_unique<nn::Activation<float>>(act.empty() ? "linear" : act, l.name), ins, l);
      res.chw_origin = in.chw_origin;
    } else if (cls == "ReLU") {
      no_weights();
      if (l.number("negative_slope", 0) != 0) l.fail("negative_slope other than 0 is not supported");
      if (l.number("threshold", 0) != 0) l.fail("threshold other than 0 is not supported");
      const double mv = l.number("max_value", 0);
      if (mv < 0) l.fail("max_value must be >= 0");
      res.node = add_layer(std::make_unique<nn::ReLU<float>>(mv, l.name), ins, l);
      res.chw_origin = in.chw_origin;
    } else if (cls == "Add") {
      no_weights();
      if (ins.size() < 2) l.fail("needs at least two inputs");
      for (const auto& t : ins) {
        if (t.keras_shape != ks) l.fail("inputs have different shapes " + shape_str(ks) + " and " + shape_str(t.keras_shape));
        if (t.chw_origin != in.chw_origin) l.fail("inputs have different element orders (flattened from different maps)");
      }
      res.node = add_layer(std::make_unique<nn::Add<float>>(l.name), ins, l);
      res.chw_origin = in.chw_origin;
    } else if (cls == "MaxPooling2D" || cls == "MaxPool2D" || cls == "AveragePooling2D" || cls == "AvgPool2D") {
      no_weights();
      need_map();
      l.require_channels_last();
      const nn::Size2 p = l.size2("pool_size", nn::Size2(2));
      const nn::Size2 s = l.size2("strides", p);
      const std::string pad = l.str("padding", "valid");
      if (pad != "valid" && pad != "same") l.fail("padding '" + pad + "' is not supported");
      if (cls == "MaxPooling2D" || cls == "MaxPool2D")
        res.node = add_layer(std::make_unique<nn::MaxPool2D<float>>(p, s, pad, l.name), ins, l);
      else
        res.node = add_layer(std::make_unique<nn::AvgPool2D<float>>(p, s, pad, l.name), ins, l);
    } else if (cls == "GlobalAveragePooling2D" || cls == "GlobalAvgPool2D") {
      no_weights();
      need_map();
      l.require_channels_last();
      res.node = add_layer(std::make_unique<nn::GlobalAvgPool2D<float>>(l.name), ins, l);
      res.keras_shape = {ks[2]};
      if (l.boolean("keepdims", false)) {
        KTensor mid{res.node, {ks[2]}, {}};
        res.node = add_layer(std::make_unique<nn::Reshape<float>>(Shape{ks[2], 1, 1}, l.name + "_keepdims"), {mid}, l);
        res.keras_shape = {1, 1, ks[2]};
      }
    } else if (cls == "ZeroPadding2D") {
      no_weights();
      need_map();
      l.require_channels_last();
      const auto p = zero_padding_of(l);
      for (int64_t v : p)
        if (v < 0 || v > (int64_t(1) << 16)) l.fail("padding out of range");
      res.node = add_layer(std::make_unique<nn::ZeroPadding2D<float>>(std::make_pair(p[0], p[1]), std::make_pair(p[2], p[3]), l.name), ins, l);
    } else if (cls == "Flatten") {
      no_weights();
      not_permuted();
      l.require_channels_last();
      res.node = add_layer(std::make_unique<nn::Flatten<float>>(l.name), ins, l);
      int64_t n = 1;
      for (int64_t d : ks) n *= d;
      res.keras_shape = {n};
      if (!layout_neutral(ks)) res.chw_origin = {ks[2], ks[0], ks[1]};
    } else if (cls == "Reshape") {
      no_weights();
      not_permuted();
      auto t = l.ints("target_shape", {});
      if (t.empty() || t.size() > 3) l.fail("target_shape must have 1 to 3 entries");
      int64_t n = 1, known = 1, infer = -1;
      for (int64_t d : ks) n *= d;
      for (size_t i = 0; i < t.size(); ++i) {
        if (t[i] == -1 && infer < 0) infer = static_cast<int64_t>(i);
        else if (t[i] <= 0) l.fail("target_shape entries must be positive (or one -1)");
        else known *= t[i];
      }
      if (infer >= 0) {
        if (known == 0 || n % known != 0) l.fail("cannot reshape " + shape_str(ks) + " to " + shape_str(t));
        t[static_cast<size_t>(infer)] = n / known;
      }
      if (known * (infer >= 0 ? t[static_cast<size_t>(infer)] : 1) != n) l.fail("cannot reshape " + shape_str(ks) + " to " + shape_str(t));
      if (!layout_neutral(ks) || !layout_neutral(t))
        l.fail("reshaping " + shape_str(ks) + " to " + shape_str(t) +
               " changes the element order between channels-last and channels-first (not supported)");
      res.node = add_layer(std::make_unique<nn::Reshape<float>>(to_tinycnn_shape(t), l.name), ins, l);
      res.keras_shape = t;
    } else if (cls == "Dropout") {
      no_weights();
      const double rate = l.number("rate", 0);
      if (!(rate >= 0 && rate < 1)) l.fail("rate must be in [0, 1)");
      res.node = add_layer(std::make_unique<nn::Dropout<float>>(rate, l.name), ins, l);
      res.chw_origin = in.chw_origin;
    } else {
      l.fail("layer type '" + cls + "' is not supported");
    }
    // Keep the Keras shape bookkeeping consistent with what tinycnn built.
    if (cls == "Conv2D" || cls == "Convolution2D" || cls == "DepthwiseConv2D" || cls == "MaxPooling2D" || cls == "MaxPool2D" ||
        cls == "AveragePooling2D" || cls == "AvgPool2D" || cls == "ZeroPadding2D" || cls == "Dense") {
      const Shape ts = sequential ? seq->entries().back().output_shape : graph->output_shape_of({res.node});
      res.keras_shape = ts.size() == 3 ? Shape{ts[1], ts[2], ts[0]} : ts;
    }
    int64_t numel = 1;
    for (int64_t d : res.keras_shape) numel *= d;
    if (numel > max_elems) l.fail("its output is too large");
    model.layer(l.name).set_trainable(trainable);
    out.layer_names[l.name] = l.name;
    tensors[l.name] = res;
    prev = res;
  }
  if (!sequential) {
    auto it = tensors.find(output_name);
    if (it == tensors.end()) f.fail("output layer '" + output_name + "' was not built");
    graph->set_output({it->second.node});
  }
  // Dangling weight groups for layers the config does not have are tolerated (Keras writes only
  // what it saves), but every layer with weights in the config got them above.
  model.eval();
  if (sequential) out.model = std::move(seq);
  else out.model = std::move(graph);
  return out;
}

}  // namespace tinycnn::io

#endif  // TINYCNN_HAS_HDF5
