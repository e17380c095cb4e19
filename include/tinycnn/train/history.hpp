#pragma once
// History: what fit() returns — one row per epoch with the training loss and metrics, the
// validation ones ("val_" prefix), the learning rate ("lr") and the epoch's wall time ("seconds"),
// as Keras' History.history. Saveable as CSV (columns: epoch, then the keys in sorted order, as
// Keras' CSVLogger) and as JSON ({"epoch": [...], "<key>": [...]}).
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iomanip>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"

namespace tinycnn::train {

using Logs = std::map<std::string, double>;

// Shortest text that reads back as the same double ("nan"/"inf" for the non-finite).
inline std::string format_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  for (int prec = 6; prec <= 17; ++prec) {
    std::ostringstream o;
    o << std::setprecision(prec) << v;
    if (std::stod(o.str()) == v) return o.str();
  }
  std::ostringstream o;
  o << std::setprecision(17) << v;
  return o.str();
}

struct History {
  std::vector<int64_t> epochs;  // 0-based epoch numbers, one per row
  std::vector<Logs> logs;       // the row of each epoch
  // Why fit() stopped before the last epoch ("" when it ran them all): "early stopping",
  // "non-finite loss", "interrupted (SIGINT)", "stopped by a callback".
  std::string stop_reason;
  bool interrupted = false;       // SIGINT: a checkpoint was written, fit can be resumed
  bool terminated_on_nan = false;  // a loss went non-finite; the model's weights are unreliable
  int64_t iterations = 0;          // optimizer steps taken in total (including before a resume)

  void add(int64_t epoch, const Logs& l) {
    epochs.push_back(epoch);
    logs.push_back(l);
  }
  size_t size() const { return epochs.size(); }
  bool empty() const { return epochs.empty(); }
  // The column of one key ("loss", "val_accuracy", "lr", ...); NaN where an epoch lacks it.
  std::vector<double> operator[](const std::string& key) const {
    std::vector<double> v;
    for (const Logs& l : logs) {
      auto it = l.find(key);
      v.push_back(it == l.end() ? std::numeric_limits<double>::quiet_NaN() : it->second);
    }
    return v;
  }
  bool has(const std::string& key) const {
    for (const Logs& l : logs)
      if (l.count(key)) return true;
    return false;
  }
  std::vector<std::string> keys() const {
    std::set<std::string> k;
    for (const Logs& l : logs)
      for (const auto& kv : l) k.insert(kv.first);
    return {k.begin(), k.end()};
  }

  std::string to_csv() const {
    const std::vector<std::string> k = keys();
    std::ostringstream o;
    o << "epoch";
    for (const auto& key : k) o << ',' << key;
    o << '\n';
    for (size_t r = 0; r < logs.size(); ++r) {
      o << epochs[r];
      for (const auto& key : k) {
        auto it = logs[r].find(key);
        o << ',';
        if (it != logs[r].end()) o << format_double(it->second);
      }
      o << '\n';
    }
    return o.str();
  }
  nlohmann::json to_json_value() const {
    nlohmann::json j = nlohmann::json::object();
    j["epoch"] = epochs;
    for (const auto& key : keys()) {
      nlohmann::json col = nlohmann::json::array();
      for (const Logs& l : logs) {
        auto it = l.find(key);
        if (it == l.end() || !std::isfinite(it->second)) col.push_back(nullptr);  // JSON has no NaN
        else col.push_back(it->second);
      }
      j[key] = col;
    }
    return j;
  }
  std::string to_json(int indent = 2) const { return to_json_value().dump(indent); }
  static History from_json_value(const nlohmann::json& j) {
    History h;
    if (!j.is_object() || !j.contains("epoch") || !j["epoch"].is_array()) throw FormatError("History JSON: no \"epoch\" array");
    for (const auto& e : j["epoch"]) h.epochs.push_back(e.get<int64_t>());
    h.logs.resize(h.epochs.size());
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "epoch") continue;
      if (!it.value().is_array() || it.value().size() != h.epochs.size())
        throw FormatError("History JSON: column '" + it.key() + "' does not have one value per epoch");
      for (size_t r = 0; r < h.epochs.size(); ++r)
        h.logs[r][it.key()] = it.value()[r].is_null() ? std::numeric_limits<double>::quiet_NaN() : it.value()[r].get<double>();
    }
    return h;
  }
  static History from_json(const std::string& s) {
    try {
      return from_json_value(nlohmann::json::parse(s));
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(std::string("History JSON: ") + e.what());
    }
  }

  void save_csv(const std::string& path) const { write_file(path, to_csv()); }
  void save_json(const std::string& path) const { write_file(path, to_json() + "\n"); }

 private:
  static void write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) throw IOError("History: cannot open '" + path + "' for writing");
    f << text;
    f.flush();
    if (!f) throw IOError("History: writing '" + path + "' failed");
  }
};

}  // namespace tinycnn::train
