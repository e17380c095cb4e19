#pragma once
// intel_scenes ensemble: several trained model files -> one model file that averages their logits
// (nn::ensemble). The members must agree on classes, input size and preprocessing, so the ensemble
// is a drop-in replacement for evaluate/predict/sort and the shipped model.
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "common.hpp"

namespace intel_scenes {

struct EnsembleArgs {
  std::vector<std::string> models;  // model files
  std::string out;                  // the ensemble's model file
};

inline void run_ensemble(const EnsembleArgs& a, std::ostream& os) {
  if (a.models.size() < 2) throw UsageError("--models: give at least two model files");
  if (a.out.empty()) throw UsageError("--out: required");
  for (const auto& m : a.models)
    if (std::filesystem::weakly_canonical(m) == std::filesystem::weakly_canonical(a.out))
      throw UsageError("--out: '" + a.out + "' is one of the --models; write the ensemble to a new file");
  std::vector<io::LoadedModel> ms;
  for (const auto& path : a.models) {
    try {
      ms.push_back(io::load_model(path));
    } catch (const Error& e) {
      const std::string w = e.what();
      throw IOError(w.find(path) == std::string::npos ? "model file '" + path + "': " + w : w);
    }
  }
  const io::ModelInfo& first = ms[0].info;
  auto sampling = [](const io::ModelInfo& i) {
    auto it = i.extras.find("resize_sampling");
    return it == i.extras.end() ? std::string() : it->second;
  };
  for (size_t k = 1; k < ms.size(); ++k) {
    const io::ModelInfo& i = ms[k].info;
    const std::string who = "--models: '" + a.models[k] + "' ";
    if (i.class_names != first.class_names) throw UsageError(who + "has other classes than '" + a.models[0] + "'");
    if (!(i.preprocessing == first.preprocessing))
      throw UsageError(who + "has another preprocessing (input size, rescale, mean/std or resize) than '" +
                       a.models[0] + "'");
    if (sampling(i) != sampling(first))
      throw UsageError(who + "resizes with other sampling than '" + a.models[0] + "'");
  }
  for (size_t k = 0; k < ms.size(); ++k)
    if (ms[k].info.multi_label)
      throw UsageError("--models: '" + a.models[k] + "' is multi-label; its per-class thresholds were chosen for it "
                       "alone, so ensembles are single-label only");
  std::vector<nn::Model<float>*> members;
  for (auto& m : ms) members.push_back(m.model.get());
  auto e = nn::ensemble<float>(members);
  io::ModelInfo info = first;
  std::string names;
  for (size_t k = 0; k < a.models.size(); ++k) names += (k ? "," : "") + a.models[k];
  info.extras["ensemble_of"] = names;
  info.extras["model"] = "ensemble";
  io::save_model(a.out, *e, info);
  os << "wrote " << a.out << ": the mean of " << ms.size() << " models' logits, "
     << train::thousands(train::count_params(*e).total) << " parameters, "
     << std::filesystem::file_size(a.out) << " bytes\n";
}

}  // namespace intel_scenes
