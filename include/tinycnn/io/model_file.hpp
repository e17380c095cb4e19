#pragma once
// Model files: weights + architecture + class names + preprocessing in one safetensors file
// (docs/model_format.md describes it byte for byte).
//
//   io::ModelInfo info;
//   info.class_names = {"cat", "dog"};
//   info.preprocessing.rescale = 1.0 / 255;
//   io::save_model("pets.safetensors", model, info);          // atomic
//   io::LoadedModel m = io::load_model("pets.safetensors");    // m.model (built, eval mode), m.info
//
// Tensors are named "<layer>/<param>" (parameters and buffers, F32, little-endian); tinycnn's own
// metadata lives in the safetensors "__metadata__" map ("format": "tinycnn-model", "format_version":
// "1", "architecture" JSON, class names, input shape, preprocessing, and a CRC-32 "checksum" that
// covers every tensor and every other metadata entry; format_version "2" adds "same_as", the tensors
// left out because they repeat a stored one byte for byte). The loader treats the file as hostile: on top
// of the container checks (io/safetensors.hpp) it refuses another format, a newer format_version,
// unknown layer types and config keys, tensor shapes that differ from what the architecture builds
// (compared before the layer allocates), missing or extra tensors, a checksum mismatch and NaN/Inf
// weights. Every such failure is a tinycnn::FormatError naming the file and what is wrong.
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../nn/graph.hpp"
#include "../nn/model.hpp"
#include "../nn/sequential.hpp"
#include "layer_registry.hpp"
#include "safetensors.hpp"

namespace tinycnn::io {

constexpr const char* kModelFormat = "tinycnn-model";
// The newest version this reader loads. save_model writes version 2 only for a file that uses its one
// addition ("same_as": identical tensors stored once), else version 1, so version-1 readers still
// load every model without repeated tensors.
constexpr int kModelFormatVersion = 2;

// How raw images become model input (applied by the data pipeline / application, stored for it).
struct Preprocessing {
  double rescale = 1.0;              // pixels (0..255) are multiplied by this first
  std::vector<double> mean;          // per channel, subtracted after rescaling (empty: none)
  std::vector<double> std;           // per channel, divided by after the mean (empty: none)
  std::string resize = "stretch";    // "stretch", "center_crop" or "pad" (data::ResizeMode)
  std::vector<int64_t> input_size;   // {height, width}; empty: the model input's H and W
  bool operator==(const Preprocessing& o) const {
    return rescale == o.rescale && mean == o.mean && std == o.std && resize == o.resize && input_size == o.input_size;
  }
};

struct ModelInfo {
  std::vector<std::string> class_names;  // index -> name (empty: unnamed)
  Shape input_shape;                     // per sample, e.g. {3, 150, 150}; empty on save: the model's
  Preprocessing preprocessing;
  bool multi_label = false;              // sigmoid outputs, thresholded per class
  std::vector<double> thresholds;        // per class, in [0, 1] (empty: none)
  std::map<std::string, std::string> extras;  // free-form
};

struct LoadedModel {
  std::unique_ptr<nn::Model<float>> model;  // nn::Sequential<float> or nn::Graph<float>, built, eval mode
  ModelInfo info;
};

// Caps on what a model file may ask for (on top of the container's ReadLimits).
struct ModelLoadLimits {
  ReadLimits read;
  size_t max_layers = 100000;
  size_t max_inputs_per_layer = 64;
  int64_t max_activation_elems = int64_t(1) << 26;  // per-sample elements of the input and of every layer's output
  size_t max_classes = size_t(1) << 20;
  size_t max_name_bytes = 4096;
};

namespace detail {

[[noreturn]] inline void mf_fail(const std::string& what, const std::string& why) { throw FormatError(what + ": " + why); }

// The node id a Graph returns.
inline int graph_output_id(const nn::Graph<float>& g) { return g.output_id(); }

inline nlohmann::json doubles_json(const std::vector<double>& v, const std::string& what) {
  nlohmann::json a = nlohmann::json::array();
  for (double d : v) {
    if (!std::isfinite(d)) throw ValueError("save_model: " + what + " has a non-finite value");
    a.push_back(d);
  }
  return a;
}

inline void check_info(const ModelInfo& info, const Shape& output_shape,
                       const std::function<void(const std::string&)>& fail) {
  const auto& p = info.preprocessing;
  if (!std::isfinite(p.rescale)) fail("preprocessing rescale is not finite");
  if (!p.std.empty() && p.std.size() != p.mean.size() && !p.mean.empty())
    fail("preprocessing mean and std have different lengths");
  for (double s : p.std)
    if (!(std::isfinite(s) && s > 0)) fail("preprocessing std values must be positive and finite");
  for (double m : p.mean)
    if (!std::isfinite(m)) fail("preprocessing mean values must be finite");
  if (p.resize != "stretch" && p.resize != "center_crop" && p.resize != "pad")
    fail("preprocessing resize must be 'stretch', 'center_crop' or 'pad', got '" + p.resize + "'");
  if (!p.input_size.empty() && (p.input_size.size() != 2 || p.input_size[0] <= 0 || p.input_size[1] <= 0 ||
                                p.input_size[0] > (1 << 20) || p.input_size[1] > (1 << 20)))
    fail("preprocessing input_size must be {height, width}, positive");
  const bool flat = output_shape.size() == 1;
  if (!info.class_names.empty() && flat && static_cast<int64_t>(info.class_names.size()) != output_shape[0])
    fail(std::to_string(info.class_names.size()) + " class names for a model with " + std::to_string(output_shape[0]) +
         " outputs");
  if (!info.thresholds.empty() && flat && static_cast<int64_t>(info.thresholds.size()) != output_shape[0])
    fail(std::to_string(info.thresholds.size()) + " thresholds for a model with " + std::to_string(output_shape[0]) +
         " outputs");
  for (double t : info.thresholds)
    if (!(t >= 0 && t <= 1)) fail("thresholds must be in [0, 1]");
}

}  // namespace detail

// The safetensors records and metadata of a model file (what save_model writes).
inline std::pair<std::vector<TensorRecord>, std::map<std::string, std::string>> model_file_contents(
    nn::Model<float>& model, const ModelInfo& info) {
  if (!model.built()) throw ValueError("save_model: the model is not built (call build(input_shape) or run it once)");
  if (!info.input_shape.empty() && info.input_shape != model.input_shape())
    throw_shape("save_model", "ModelInfo::input_shape differs from the model's input shape", info.input_shape,
                model.input_shape());
  detail::check_info(info, model.output_shape(), [](const std::string& why) { throw ValueError("save_model: " + why); });
  const bool graph = model.type() == "Functional";
  if (!graph && model.type() != "Sequential") throw ValueError("save_model: unknown model type '" + model.type() + "'");

  nlohmann::json arch;
  arch["model_type"] = model.type();
  arch["input_shape"] = model.input_shape();
  nlohmann::json layers = nlohmann::json::array();
  std::vector<TensorRecord> records;
  for (const auto& e : model.entries()) {
    nn::Layer<float>& l = *e.layer;
    if (!is_known_layer_type(l.type())) throw ValueError("save_model: layer '" + l.name() + "' has a type the model file does not know: " + l.type());
    if (l.name().empty() || l.name().find('/') != std::string::npos)
      throw ValueError("save_model: layer name '" + l.name() + "' must be non-empty and contain no '/'");
    nlohmann::json lj;
    lj["type"] = l.type();
    lj["name"] = l.name();
    lj["config"] = config_to_json(l.config());
    lj["trainable"] = l.trainable();
    if (graph) lj["inbound"] = e.inputs;
    layers.push_back(std::move(lj));
    auto add = [&](const std::vector<nn::NamedVar<float>>& vs) {
      for (const auto& v : vs) {
        const Tensor<float> t = v.second.value().to(Device::CPU);  // a model on the GPU is saved from a host copy
        for (int64_t i = 0; i < t.numel(); ++i)
          if (!std::isfinite(t[i]))
            throw ValueError("save_model: '" + l.name() + "/" + v.first + "' holds a non-finite value at index " + std::to_string(i));
        records.push_back(to_record(l.name() + "/" + v.first, t));
      }
    };
    add(l.parameters());
    add(l.buffers());
  }
  arch["layers"] = std::move(layers);
  if (graph) arch["output"] = detail::graph_output_id(static_cast<nn::Graph<float>&>(model));

  // Identical tensors are stored once: an ensemble with flip averaging runs every member twice (its
  // layers copied), and without this its file holds every weight twice. A repeat is left out and
  // listed in "same_as" (its name -> the stored tensor's); it loads as its own copy of those values.
  nlohmann::json same_as = nlohmann::json::object();
  {
    std::unordered_map<size_t, std::vector<size_t>> by_hash;  // hash of the bytes -> indices into kept
    std::vector<TensorRecord> kept;
    for (auto& r : records) {
      auto& candidates =
          by_hash[std::hash<std::string_view>{}({reinterpret_cast<const char*>(r.bytes.data()), r.bytes.size()})];
      const TensorRecord* same = nullptr;
      for (size_t k : candidates)
        if (kept[k].dtype == r.dtype && kept[k].shape == r.shape && kept[k].bytes == r.bytes) same = &kept[k];
      if (same) {
        same_as[r.name] = same->name;
        continue;
      }
      candidates.push_back(kept.size());
      kept.push_back(std::move(r));
    }
    records = std::move(kept);
  }

  std::map<std::string, std::string> md;
  md["format"] = kModelFormat;
  md["format_version"] = same_as.empty() ? "1" : "2";
  if (!same_as.empty()) md["same_as"] = same_as.dump();
  md["architecture"] = arch.dump();
  md["class_names"] = nlohmann::json(info.class_names).dump();
  md["input_shape"] = nlohmann::json(model.input_shape()).dump();
  const auto& p = info.preprocessing;
  nlohmann::json pj;
  pj["rescale"] = p.rescale;
  pj["mean"] = detail::doubles_json(p.mean, "preprocessing mean");
  pj["std"] = detail::doubles_json(p.std, "preprocessing std");
  pj["resize"] = p.resize;
  pj["input_size"] = p.input_size;
  md["preprocessing"] = pj.dump();
  md["multi_label"] = info.multi_label ? "true" : "false";
  md["thresholds"] = detail::doubles_json(info.thresholds, "thresholds").dump();
  md["extras"] = nlohmann::json(info.extras).dump();
  md["checksum"] = content_checksum(records, md, "checksum");
  return {std::move(records), std::move(md)};
}

// Writes the model atomically (IOError naming the path on failure; the old file stays intact).
inline void save_model(const std::string& path, nn::Model<float>& model, const ModelInfo& info = {}) {
  auto c = model_file_contents(model, info);
  write_safetensors(path, c.first, c.second);
}

// The file image save_model would write.
inline std::vector<uint8_t> model_to_bytes(nn::Model<float>& model, const ModelInfo& info = {}) {
  auto c = model_file_contents(model, info);
  return safetensors_to_bytes(c.first, c.second);
}

// Loads a model file image; `what` names it in errors (e.g. "model file 'x.safetensors'").
inline LoadedModel load_model_from_memory(const uint8_t* data, size_t size, const std::string& what,
                                          const ModelLoadLimits& lim = {}) {
  using detail::mf_fail;
  const SafetensorsHeader h = parse_safetensors_header(data, size, what, lim.read);
  auto meta = [&](const std::string& key) -> const std::string& {
    auto it = h.metadata.find(key);
    if (it == h.metadata.end()) mf_fail(what, "metadata entry '" + key + "' is missing");
    return it->second;
  };
  {
    auto it = h.metadata.find("format");
    if (it == h.metadata.end() || it->second != kModelFormat)
      mf_fail(what, "not a tinycnn model file (metadata 'format' is " +
                        (it == h.metadata.end() ? std::string("missing") : "'" + it->second + "'") + ", expected '" +
                        kModelFormat + "')");
  }
  long version = 1;
  {
    const std::string& v = meta("format_version");
    bool digits = !v.empty() && v.size() <= 9 && (v.size() == 1 || v[0] != '0');
    for (char c : v) digits = digits && c >= '0' && c <= '9';
    if (!digits) mf_fail(what, "format_version '" + v + "' is not a version number");
    const long ver = std::stol(v);
    if (ver > kModelFormatVersion)
      mf_fail(what, "format_version " + v + " is newer than this tinycnn reads (up to " +
                        std::to_string(kModelFormatVersion) + "); upgrade tinycnn to load it");
    if (ver < 1) mf_fail(what, "format_version " + v + " is not valid");
    version = ver;
  }
  std::set<std::string> known_keys{"format", "format_version", "architecture", "class_names", "input_shape",
                                   "preprocessing", "multi_label", "thresholds", "extras", "checksum"};
  if (version >= 2) known_keys.insert("same_as");
  for (const auto& kv : h.metadata)
    if (!known_keys.count(kv.first)) mf_fail(what, "unknown metadata entry '" + kv.first + "'");

  auto parse = [&](const std::string& key) {
    const std::string& s = meta(key);
    return detail::parse_json_strict(s.data(), s.data() + s.size(), what + " metadata '" + key + "'", 8);
  };
  auto shape_of = [&](const nlohmann::json& j, const std::string& field, size_t min_rank) {
    if (!j.is_array() || j.size() < min_rank || j.size() > 8) mf_fail(what, field + " must be an array of 1 to 8 integers");
    Shape s;
    int64_t n = 1;
    for (const auto& d : j) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() == 0 || d.get<uint64_t>() > (uint64_t(1) << 24))
        mf_fail(what, field + " dimensions must be integers in [1, 2^24], got " + d.dump());
      s.push_back(d.get<int64_t>());
      if (n > lim.max_activation_elems / s.back())
        mf_fail(what, field + " " + j.dump() + " has more than " + std::to_string(lim.max_activation_elems) + " elements");
      n *= s.back();
    }
    return s;
  };

  // ---- same_as (version 2): tensors left out because they repeat a stored one ----
  std::map<std::string, std::string> same_as;
  if (h.metadata.count("same_as")) {
    const nlohmann::json j = parse("same_as");
    if (!j.is_object()) mf_fail(what, "same_as must be a JSON object of tensor names");
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!it.value().is_string()) mf_fail(what, "same_as: the entry for '" + it.key() + "' is not a tensor name");
      const std::string& target = it.value().get_ref<const std::string&>();
      if (h.find(it.key())) mf_fail(what, "same_as: tensor '" + it.key() + "' is stored and listed as a repeat too");
      if (!h.find(target))
        mf_fail(what, "same_as: '" + it.key() + "' repeats '" + target + "', which is not a stored tensor");
      same_as[it.key()] = target;
    }
  }
  // The stored tensor that holds a name's values: itself, or the one it repeats (nullptr: neither).
  auto stored = [&](const std::string& name) -> const TensorInfo* {
    if (const TensorInfo* t = h.find(name)) return t;
    auto it = same_as.find(name);
    return it == same_as.end() ? nullptr : h.find(it->second);
  };

  // ---- architecture -> a built model, each layer's tensors checked before it is built ----
  const nlohmann::json arch = parse("architecture");
  if (!arch.is_object()) mf_fail(what, "architecture is not a JSON object");
  for (auto it = arch.begin(); it != arch.end(); ++it)
    if (it.key() != "model_type" && it.key() != "input_shape" && it.key() != "layers" && it.key() != "output")
      mf_fail(what, "architecture has an unknown field '" + it.key() + "'");
  if (!arch.contains("model_type") || !arch["model_type"].is_string()) mf_fail(what, "architecture has no model_type");
  const std::string mtype = arch["model_type"].get<std::string>();
  if (mtype != "Sequential" && mtype != "Functional")
    mf_fail(what, "architecture model_type '" + mtype + "' is not Sequential or Functional");
  const bool graph = mtype == "Functional";
  if (!arch.contains("input_shape")) mf_fail(what, "architecture has no input_shape");
  const Shape input_shape = shape_of(arch["input_shape"], "architecture input_shape", 1);
  if (!arch.contains("layers") || !arch["layers"].is_array()) mf_fail(what, "architecture has no layers array");
  const nlohmann::json& layers = arch["layers"];
  if (layers.size() > lim.max_layers) mf_fail(what, "architecture has more than " + std::to_string(lim.max_layers) + " layers");
  if (graph != arch.contains("output")) mf_fail(what, graph ? "Functional architecture has no output" : "Sequential architecture has an output field");

  std::unique_ptr<nn::Model<float>> model;
  nn::Sequential<float>* seq = nullptr;
  nn::Graph<float>* g = nullptr;
  if (graph) {
    auto gp = std::make_unique<nn::Graph<float>>(input_shape);
    g = gp.get();
    model = std::move(gp);
  } else {
    auto sp = std::make_unique<nn::Sequential<float>>();
    sp->build(input_shape);  // built (empty): every add() below builds its layer at once
    seq = sp.get();
    model = std::move(sp);
  }

  std::set<std::string> names, used, expected;  // used: stored tensors read; expected: the names layers take
  size_t index = 0;
  for (const auto& lj : layers) {
    const std::string lw = "layer " + std::to_string(index);
    if (!lj.is_object()) mf_fail(what, lw + " is not a JSON object");
    for (auto it = lj.begin(); it != lj.end(); ++it)
      if (it.key() != "type" && it.key() != "name" && it.key() != "config" && it.key() != "trainable" &&
          !(graph && it.key() == "inbound"))
        mf_fail(what, lw + " has an unknown field '" + it.key() + "'");
    if (!lj.contains("type") || !lj["type"].is_string()) mf_fail(what, lw + " has no type");
    if (!lj.contains("name") || !lj["name"].is_string()) mf_fail(what, lw + " has no name");
    const std::string type = lj["type"].get<std::string>();
    const std::string name = lj["name"].get<std::string>();
    if (name.empty() || name.size() > lim.max_name_bytes || name.find('/') != std::string::npos)
      mf_fail(what, lw + ": layer name '" + name + "' is empty, too long or contains '/'");
    if (!names.insert(name).second) mf_fail(what, "two layers are named '" + name + "'");
    const std::string lname = "layer '" + name + "' (" + type + ")";
    if (!is_known_layer_type(type)) mf_fail(what, "layer '" + name + "': unknown layer type '" + type + "'");
    if (!lj.contains("config")) mf_fail(what, lname + " has no config");
    std::unique_ptr<nn::Layer<float>> layer;
    std::vector<Shape> in_shapes;
    std::vector<nn::Graph<float>::Node> in_nodes;
    try {
      layer = make_layer<float>(type, config_from_json(lj["config"], lname), name);
    } catch (const FormatError& e) {
      mf_fail(what, e.what());
    }
    if (lj.contains("trainable")) {
      if (!lj["trainable"].is_boolean()) mf_fail(what, lname + ": trainable must be true or false");
      layer->set_trainable(lj["trainable"].get<bool>());
    }
    if (graph) {
      if (!lj.contains("inbound") || !lj["inbound"].is_array() || lj["inbound"].empty() ||
          lj["inbound"].size() > lim.max_inputs_per_layer)
        mf_fail(what, lname + ": inbound must be a non-empty array of node ids");
      for (const auto& n : lj["inbound"]) {
        if (!n.is_number_integer() || n.get<int64_t>() < -1 || n.get<int64_t>() >= static_cast<int64_t>(index))
          mf_fail(what, lname + ": inbound node " + n.dump() + " is not the input (-1) or an earlier layer");
        const int id = static_cast<int>(n.get<int64_t>());
        in_nodes.push_back({id});
        in_shapes.push_back(g->output_shape_of({id}));
      }
    } else {
      in_shapes.push_back(model->output_shape());
    }
    // The file's tensors for this layer must be exactly what the layer will build.
    std::optional<std::vector<std::pair<std::string, Shape>>> expect;
    try {
      expect = expected_state_shapes(*layer, in_shapes);
    } catch (const Error& e) {
      mf_fail(what, e.what());
    }
    if (expect) {
      for (const auto& [pname, pshape] : *expect) {
        const std::string tname = name + "/" + pname;
        const TensorInfo* t = stored(tname);
        if (!t) mf_fail(what, "tensor '" + tname + "' is missing (" + lname + " needs " + shape_str(pshape) + ")");
        if (t->dtype != "F32") mf_fail(what, "tensor '" + tname + "' has dtype " + t->dtype + ", expected F32");
        if (t->shape != pshape)
          mf_fail(what, "tensor '" + tname + "' has shape " + shape_str(t->shape) + " but the architecture builds " +
                            shape_str(pshape));
        used.insert(t->name);
        expected.insert(tname);
      }
    }
    try {
      if (graph)
        g->add(std::move(layer), in_nodes);
      else
        seq->add(std::move(layer));
    } catch (const std::bad_alloc&) {
      mf_fail(what, lname + ": out of memory building the layer");
    } catch (const Error& e) {
      mf_fail(what, lname + " does not fit its input: " + e.what());
    }
    const Shape out = model->entries().back().output_shape;
    int64_t n = 1;
    for (int64_t d : out) {
      if (d <= 0 || n > lim.max_activation_elems / d)
        mf_fail(what, lname + ": output shape " + shape_str(out) + " is empty or has more than " +
                          std::to_string(lim.max_activation_elems) + " elements per sample");
      n *= d;
    }
    ++index;
  }
  if (graph) {
    const auto& o = arch["output"];
    if (!o.is_number_integer() || o.get<int64_t>() < -1 || o.get<int64_t>() >= static_cast<int64_t>(layers.size()))
      mf_fail(what, "architecture output " + o.dump() + " is not a node id");
    g->set_output({static_cast<int>(o.get<int64_t>())});
  }
  for (const auto& t : h.tensors)
    if (!used.count(t.name)) mf_fail(what, "unexpected tensor '" + t.name + "' (no layer of the architecture has it)");
  // Whatever the layers built must be exactly what was checked (guards layer types the predictor misses).
  std::vector<nn::NamedVar<float>> state = model->parameters();
  for (auto& b : model->buffers()) state.push_back(b);
  for (const auto& kv : same_as)
    if (!expected.count(kv.first)) mf_fail(what, "same_as: no layer of the architecture has a tensor '" + kv.first + "'");
  if (state.size() != expected.size()) mf_fail(what, "the architecture builds " + std::to_string(state.size()) + " tensors, the file has " + std::to_string(expected.size()));
  for (const auto& s : state) {
    const TensorInfo* t = stored(s.first);
    if (!t || t->shape != s.second.value().shape()) mf_fail(what, "tensor '" + s.first + "' does not match the built layer");
  }

  // ---- checksum, then the weights ----
  {
    std::vector<TensorView> views;
    for (const auto& t : h.tensors)
      views.push_back({&t.name, &t.dtype, &t.shape, data + h.data_offset + t.begin, t.nbytes()});
    const std::string want = content_checksum(std::move(views), h.metadata, "checksum");
    const std::string& got = meta("checksum");
    if (got != want) mf_fail(what, "checksum mismatch (file says '" + got + "', content gives '" + want + "'): the file is corrupt");
  }
  for (auto& s : state) {
    const TensorInfo* t = stored(s.first);
    Tensor<float>& dst = s.second.value();
    decode_le(data + h.data_offset + t->begin, dst.data(), static_cast<size_t>(dst.numel()));
    for (int64_t i = 0; i < dst.numel(); ++i)
      if (!std::isfinite(dst[i]))
        mf_fail(what, "tensor '" + s.first + "' holds a non-finite value (NaN or Inf) at index " + std::to_string(i));
  }

  // ---- model info ----
  LoadedModel out;
  ModelInfo& info = out.info;
  {
    const nlohmann::json cn = parse("class_names");
    if (!cn.is_array() || cn.size() > lim.max_classes) mf_fail(what, "class_names must be an array of strings");
    for (const auto& c : cn) {
      if (!c.is_string() || c.get_ref<const std::string&>().size() > lim.max_name_bytes)
        mf_fail(what, "class_names must be an array of strings");
      info.class_names.push_back(c.get<std::string>());
    }
  }
  info.input_shape = shape_of(parse("input_shape"), "input_shape", 1);
  if (info.input_shape != input_shape)
    mf_fail(what, "input_shape " + shape_str(info.input_shape) + " differs from the architecture's " + shape_str(input_shape));
  auto doubles = [&](const nlohmann::json& j, const std::string& field) {
    if (!j.is_array() || j.size() > lim.max_classes) mf_fail(what, field + " must be an array of numbers");
    std::vector<double> v;
    for (const auto& d : j) {
      if (!d.is_number()) mf_fail(what, field + " must be an array of numbers");
      v.push_back(d.get<double>());
    }
    return v;
  };
  {
    const nlohmann::json pj = parse("preprocessing");
    if (!pj.is_object()) mf_fail(what, "preprocessing is not a JSON object");
    for (auto it = pj.begin(); it != pj.end(); ++it)
      if (it.key() != "rescale" && it.key() != "mean" && it.key() != "std" && it.key() != "resize" && it.key() != "input_size")
        mf_fail(what, "preprocessing has an unknown field '" + it.key() + "'");
    Preprocessing& p = info.preprocessing;
    if (pj.contains("rescale")) {
      if (!pj["rescale"].is_number()) mf_fail(what, "preprocessing rescale must be a number");
      p.rescale = pj["rescale"].get<double>();
    }
    if (pj.contains("mean")) p.mean = doubles(pj["mean"], "preprocessing mean");
    if (pj.contains("std")) p.std = doubles(pj["std"], "preprocessing std");
    if (pj.contains("resize")) {
      if (!pj["resize"].is_string()) mf_fail(what, "preprocessing resize must be a string");
      p.resize = pj["resize"].get<std::string>();
    }
    if (pj.contains("input_size")) {
      const auto& is = pj["input_size"];
      if (!is.is_array() || is.size() > 2) mf_fail(what, "preprocessing input_size must be [height, width]");
      for (const auto& d : is) {
        if (!d.is_number_integer()) mf_fail(what, "preprocessing input_size must be [height, width]");
        p.input_size.push_back(d.get<int64_t>());
      }
    }
  }
  {
    const std::string& ml = meta("multi_label");
    if (ml != "true" && ml != "false") mf_fail(what, "multi_label must be 'true' or 'false', got '" + ml + "'");
    info.multi_label = ml == "true";
  }
  info.thresholds = doubles(parse("thresholds"), "thresholds");
  {
    const nlohmann::json ej = parse("extras");
    if (!ej.is_object()) mf_fail(what, "extras must be a JSON object of strings");
    for (auto it = ej.begin(); it != ej.end(); ++it) {
      if (!it.value().is_string()) mf_fail(what, "extras must be a JSON object of strings");
      info.extras[it.key()] = it.value().get<std::string>();
    }
  }
  detail::check_info(info, model->output_shape(), [&](const std::string& why) { mf_fail(what, why); });
  model->eval();
  out.model = std::move(model);
  return out;
}

inline LoadedModel load_model(const std::string& path, const ModelLoadLimits& lim = {}) {
  const std::vector<uint8_t> buf = read_file_bytes(path, lim.read);
  return load_model_from_memory(buf.data(), buf.size(), "model file '" + path + "'", lim);
}

}  // namespace tinycnn::io
