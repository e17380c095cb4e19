#pragma once
// Resumable training checkpoints, in the safetensors container (io/safetensors.hpp: atomic write,
// hostile-input reader).
//
// Tensors: "param/<layer>/<name>" (weights), "buffer/<layer>/<name>" (batch-norm running
// statistics), "optimizer/<layer>/<name>/<slot>" (momentum, Adam moments). Metadata: format and
// version, the configuration hash and its text, epoch/batch (the data-order position of the next
// batch), iteration, optimizer steps and learning rate, the dropout layers' generator states, the
// epoch's running metric sums, the History so far and the callbacks' states.
//
// The configuration is the architecture (layer types, names, hyperparameters, shapes, frozen
// flags) plus the optimizer (type, initial learning rate, its parameters and state slots, and
// config() where the optimizer has one) plus the training setup fit() adds (loss, class weights,
// batch count, ...). Loading into another configuration throws ResumeError naming the first
// difference.
#include <cstdint>
#include <cstdio>
#include <iomanip>
#include <map>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../io/safetensors.hpp"
#include "../nn/dropout.hpp"
#include "../nn/model.hpp"
#include "../optim/optimizer.hpp"
#include "history.hpp"

namespace tinycnn::train {

// A checkpoint does not fit the model/optimizer/configuration it is loaded into.
class ResumeError : public ValueError {
  using ValueError::ValueError;
};

constexpr const char* kCheckpointFormat = "tinycnn-checkpoint";
constexpr int kCheckpointVersion = 1;

// Everything of a run that is not a tensor.
struct CheckpointState {
  int64_t epoch = 0;       // epoch of the next batch
  int64_t batch = 0;       // index of the next batch in that epoch (0: the epoch has not started)
  int64_t iteration = 0;   // optimizer steps taken
  nlohmann::json metrics;  // running sums of the current epoch (mid-epoch checkpoints)
  nlohmann::json history;  // History::to_json_value() of the finished epochs
  nlohmann::json callbacks;
  std::map<std::string, std::string> extra;  // anything else, stored as "extra/<key>"
};

namespace detail {

inline std::string config_value_str(const nn::ConfigValue& v) {
  std::ostringstream o;
  std::visit(
      [&](const auto& x) {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, bool>) o << (x ? "true" : "false");
        else if constexpr (std::is_same_v<X, std::vector<int64_t>>) o << shape_str(x);
        else if constexpr (std::is_same_v<X, double>) o << format_double(x);
        else if constexpr (std::is_same_v<X, std::vector<double>>) {
          o << '[';
          for (size_t i = 0; i < x.size(); ++i) o << (i ? ", " : "") << format_double(x[i]);
          o << ']';
        }
        else o << x;
      },
      v);
  return o.str();
}

template <class O, class = void>
struct has_config : std::false_type {};
template <class O>
struct has_config<O, std::void_t<decltype(std::declval<const O&>().config())>> : std::true_type {};

inline uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace detail

// The configuration as text, one line per item, and its hash.
struct RunConfig {
  std::vector<std::string> lines;
  std::string text() const {
    std::string t;
    for (const auto& l : lines) t += l + "\n";
    return t;
  }
  std::string hash() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(detail::fnv1a64(text())));
    return buf;
  }
};

// Describes model + optimizer (+ extra key/values, e.g. fit()'s loss and batch size).
template <class T>
RunConfig describe_config(nn::Model<T>& model, optim::Optimizer<T>& opt, const std::map<std::string, std::string>& extra = {}) {
  RunConfig c;
  c.lines.push_back("model " + model.type() + " input " + shape_str(model.input_shape()) + " dtype " + io::dtype_of<T>());
  const auto& es = model.entries();
  for (size_t i = 0; i < es.size(); ++i) {
    auto& L = *es[i].layer;
    std::ostringstream o;
    o << "layer " << i << ' ' << L.name() << ' ' << L.type() << " out " << shape_str(es[i].output_shape);
    if (model.type() != "Sequential") {
      o << " inputs";
      for (int id : es[i].inputs) o << ' ' << id;
    }
    for (const auto& kv : L.config()) o << ' ' << kv.first << '=' << detail::config_value_str(kv.second);
    if (!L.trainable()) o << " frozen";
    for (auto& p : L.parameters()) o << " param " << p.first << shape_str(p.second.shape());
    for (auto& b : L.buffers()) o << " buffer " << b.first << shape_str(b.second.shape());
    c.lines.push_back(o.str());
  }
  std::ostringstream o;
  o << "optimizer " << opt.type() << " lr " << format_double(opt.lr());
  if constexpr (detail::has_config<optim::Optimizer<T>>::value)
    for (const auto& kv : opt.config()) o << ' ' << kv.first << '=' << detail::config_value_str(kv.second);
  c.lines.push_back(o.str());
  std::string params = "optimizer params";
  for (auto& p : opt.params()) params += ' ' + p.first;
  c.lines.push_back(params);
  std::string slots = "optimizer state";
  for (auto& s : opt.state()) slots += ' ' + s.first;
  c.lines.push_back(slots);
  for (const auto& kv : extra) c.lines.push_back(kv.first + " " + kv.second);
  return c;
}

// The dropout layers' generator states, by layer name.
template <class T>
std::map<std::string, std::string> rng_states(nn::Model<T>& model) {
  std::map<std::string, std::string> out;
  for (auto& e : model.entries())
    if (auto* d = dynamic_cast<nn::Dropout<T>*>(e.layer.get())) out[e.layer->name()] = d->rng().state();
  return out;
}

template <class T>
void save_checkpoint(const std::string& path, nn::Model<T>& model, optim::Optimizer<T>& opt, const RunConfig& config,
                     const CheckpointState& st) {
  std::vector<io::TensorRecord> recs;
  for (auto& p : model.parameters()) recs.push_back(io::to_record("param/" + p.first, p.second.value()));
  for (auto& b : model.buffers()) recs.push_back(io::to_record("buffer/" + b.first, b.second.value()));
  for (auto& s : opt.state()) recs.push_back(io::to_record("optimizer/" + s.first, s.second));
  std::map<std::string, std::string> md;
  md["format"] = kCheckpointFormat;
  md["version"] = std::to_string(kCheckpointVersion);
  md["config_hash"] = config.hash();
  md["config"] = config.text();
  md["epoch"] = std::to_string(st.epoch);
  md["batch"] = std::to_string(st.batch);
  md["iteration"] = std::to_string(st.iteration);
  md["optimizer_type"] = opt.type();
  md["optimizer_steps"] = std::to_string(opt.steps());
  md["lr"] = format_double(opt.lr());
  md["rng_states"] = nlohmann::json(rng_states(model)).dump();
  md["metrics"] = st.metrics.dump();
  md["history"] = st.history.dump();
  md["callbacks"] = st.callbacks.dump();
  for (const auto& kv : st.extra) md["extra/" + kv.first] = kv.second;
  io::write_safetensors(path, recs, md);
}

namespace detail {
inline const std::string& md_at(const std::map<std::string, std::string>& md, const std::string& key, const std::string& path) {
  auto it = md.find(key);
  if (it == md.end()) throw FormatError("checkpoint '" + path + "': metadata has no '" + key + "'");
  return it->second;
}
inline int64_t md_int(const std::map<std::string, std::string>& md, const std::string& key, const std::string& path) {
  const std::string& s = md_at(md, key, path);
  try {
    size_t used = 0;
    const long long v = std::stoll(s, &used);
    if (used != s.size() || v < 0) throw std::invalid_argument(s);
    return v;
  } catch (const std::exception&) {
    throw FormatError("checkpoint '" + path + "': metadata '" + key + "' is not a non-negative integer: '" + s + "'");
  }
}
inline nlohmann::json md_json(const std::map<std::string, std::string>& md, const std::string& key, const std::string& path) {
  try {
    return nlohmann::json::parse(md_at(md, key, path));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError("checkpoint '" + path + "': metadata '" + key + "' is not JSON: " + e.what());
  }
}
template <class T>
void load_into(const io::SafetensorsFile& f, const std::string& name, Tensor<T>& dst, const std::string& path) {
  const io::TensorRecord* r = f.find(name);
  if (!r) throw ResumeError("checkpoint '" + path + "' has no tensor '" + name + "'");
  Tensor<T> t = io::from_record<T>(*r);
  if (t.shape() != dst.shape())
    throw ResumeError("checkpoint '" + path + "': tensor '" + name + "' is " + shape_str(t.shape()) + ", the model's is " +
                      shape_str(dst.shape()));
  dst.copy_from(t);
}
}  // namespace detail

// Reads only the metadata and checks format/version (no tensors are applied).
inline std::map<std::string, std::string> read_checkpoint_metadata(const std::string& path) {
  io::SafetensorsFile f = io::read_safetensors(path);
  auto it = f.metadata.find("format");
  if (it == f.metadata.end() || it->second != kCheckpointFormat)
    throw FormatError("'" + path + "' is not a tinycnn training checkpoint (a model file? use io::load_model)");
  return f.metadata;
}

// Loads a checkpoint into model and optimizer after checking it was written for `config`.
// Nothing is modified when the check fails.
template <class T>
CheckpointState load_checkpoint(const std::string& path, nn::Model<T>& model, optim::Optimizer<T>& opt, const RunConfig& config) {
  io::SafetensorsFile f = io::read_safetensors(path);
  const auto& md = f.metadata;
  auto fmt = md.find("format");
  if (fmt == md.end() || fmt->second != kCheckpointFormat)
    throw FormatError("'" + path + "' is not a tinycnn training checkpoint (a model file? use io::load_model)");
  if (detail::md_int(md, "version", path) != kCheckpointVersion)
    throw FormatError("checkpoint '" + path + "': version " + detail::md_at(md, "version", path) + ", this build reads " +
                      std::to_string(kCheckpointVersion));
  if (detail::md_at(md, "config_hash", path) != config.hash()) {
    // Name the first differing line.
    std::vector<std::string> theirs;
    std::istringstream in(detail::md_at(md, "config", path));
    for (std::string l; std::getline(in, l);) theirs.push_back(l);
    std::string diff = "the configuration hashes differ";
    for (size_t i = 0; i < std::max(theirs.size(), config.lines.size()); ++i) {
      const std::string a = i < theirs.size() ? theirs[i] : "(nothing)", b = i < config.lines.size() ? config.lines[i] : "(nothing)";
      if (a != b) {
        diff = "checkpoint has\n  " + a + "\nthis run has\n  " + b;
        break;
      }
    }
    throw ResumeError("cannot resume from checkpoint '" + path +
                      "': it was written for another architecture or training configuration; " + diff);
  }
  CheckpointState st;
  st.epoch = detail::md_int(md, "epoch", path);
  st.batch = detail::md_int(md, "batch", path);
  st.iteration = detail::md_int(md, "iteration", path);
  const int64_t steps = detail::md_int(md, "optimizer_steps", path);
  double lr = 0;
  try {
    lr = std::stod(detail::md_at(md, "lr", path));
  } catch (const std::exception&) {
    throw FormatError("checkpoint '" + path + "': bad learning rate");
  }
  st.metrics = detail::md_json(md, "metrics", path);
  st.history = detail::md_json(md, "history", path);
  st.callbacks = detail::md_json(md, "callbacks", path);
  const nlohmann::json rngs = detail::md_json(md, "rng_states", path);
  for (const auto& kv : md)
    if (kv.first.rfind("extra/", 0) == 0) st.extra[kv.first.substr(6)] = kv.second;
  // Decode every tensor before touching the model, so a bad file leaves it unchanged.
  std::vector<std::pair<Tensor<T>, Tensor<T>>> copies;  // (destination, loaded)
  auto stage = [&](const std::string& name, Tensor<T> dst) {
    Tensor<T> tmp = Tensor<T>::empty(dst.shape());
    detail::load_into(f, name, tmp, path);
    copies.push_back({dst, tmp});
  };
  for (auto& p : model.parameters()) stage("param/" + p.first, p.second.value());
  for (auto& b : model.buffers()) stage("buffer/" + b.first, b.second.value());
  for (auto& s : opt.state()) stage("optimizer/" + s.first, s.second);
  std::map<std::string, std::string> rng;
  if (!rngs.is_object()) throw FormatError("checkpoint '" + path + "': rng_states is not an object");
  for (auto& e : model.entries())
    if (dynamic_cast<nn::Dropout<T>*>(e.layer.get())) {
      if (!rngs.contains(e.layer->name()) || !rngs[e.layer->name()].is_string())
        throw ResumeError("checkpoint '" + path + "' has no generator state for dropout layer '" + e.layer->name() + "'");
      rng[e.layer->name()] = rngs[e.layer->name()].template get<std::string>();
    }
  for (auto& c : copies) c.first.copy_from(c.second);
  for (auto& e : model.entries())
    if (auto* d = dynamic_cast<nn::Dropout<T>*>(e.layer.get())) d->rng().set_state(rng[e.layer->name()]);
  opt.set_steps(steps);
  opt.set_lr(lr);
  return st;
}

}  // namespace tinycnn::train
