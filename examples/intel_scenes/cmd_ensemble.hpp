#pragma once
// intel_scenes ensemble: several trained model files -> one model file that averages their logits
// (nn::ensemble), a drop-in replacement for evaluate/predict/sort and the shipped model. The members
// must agree on classes, resize mode and resize sampling. Members with other input sizes or pixel
// scalings (a MobileNet at 224 in [-1, 1] and a ResNet at 128 in [0, 1]) are combined too: the
// ensemble then takes raw 0-255 pixels at --input-size (default: the first member's), and each member
// gets its own Resizing (the resize sampling its training used) and Rescaling layers in front, so it
// sees its inputs as in training. Give the photos' own size as --input-size when they all have one
// (150 for the scene photos), so each member resamples them once. --flip builds test-time flip
// averaging in: every member also runs on the mirrored input (an nn::Flip adapter), so every
// evaluate/predict/sort averages the photo and its mirror without --tta. --zoom F (repeatable) adds
// views of the photo's centre: the central fraction F of each side (nn::Cropping2D), resized back to
// what each member takes — the zoom-in half of the training augmentation's 0.8-1.2 range, so
// multi-crop test-time averaging is built in as well (with --flip, every view is also mirrored).
// A member may itself be an ensemble file (e.g. the shipped model): its members join the new one
// with equal weight (nn::ensemble), so adding a fourth model to three gives each a quarter. It must
// have been built with the same --flip and --zoom (it brings those views already). --drop NAME
// leaves one of a nested ensemble's members out (NAME as its `ensemble_of` lists it), e.g. to swap a
// member of the shipped model for a new one when the member files are gone.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "common.hpp"

namespace intel_scenes {

struct EnsembleArgs {
  std::vector<std::string> models;  // model files
  std::string out;                  // the ensemble's model file
  int input_size = 0;               // the ensemble's input (square); 0: the first member's
  bool flip = false;                // also run every member on the mirrored input (flip averaging built in)
  std::vector<double> zoom;         // also run every member on these central fractions of the input
  std::vector<std::string> drop;    // members of nested ensembles to leave out, as their ensemble_of names them
};

namespace detail {
// Layers that turn the ensemble's input (raw 0-255 pixels at `size`, when `raw`) into what a member
// was trained on: its input size (resized with its training's sampling) and its pixel scaling.
inline std::vector<std::unique_ptr<nn::Layer<float>>> member_adapters(const io::LoadedModel& m, int64_t size, bool raw,
                                                                      bool antialias) {
  std::vector<std::unique_ptr<nn::Layer<float>>> a;
  const Shape in = m.model->input_shape();
  if (in[1] != size || in[2] != size)
    a.push_back(std::make_unique<nn::Resizing<float>>(in[1], in[2], "bilinear", antialias, "resizing"));
  if (!raw) return a;
  const io::Preprocessing& p = m.info.preprocessing;
  auto at = [](const std::vector<double>& v, size_t c, double def) { return v.empty() ? def : v[v.size() == 1 ? 0 : c]; };
  std::vector<double> scale(3), offset(3);  // (x * rescale - mean) / std = x * scale + offset
  bool identity = true;
  for (size_t c = 0; c < 3; ++c) {
    const double sd = at(p.std, c, 1.0), mu = at(p.mean, c, 0.0);
    scale[c] = p.rescale / sd;
    offset[c] = -mu / sd;
    identity = identity && scale[c] == 1.0 && offset[c] == 0.0;
  }
  if (!identity) a.push_back(std::make_unique<nn::Rescaling<float>>(scale, offset, "rescaling"));
  return a;
}
}  // namespace detail

inline void run_ensemble(const EnsembleArgs& a, std::ostream& os) {
  if (a.models.empty() || (a.models.size() < 2 && !a.flip && a.zoom.empty()))
    throw UsageError("--models: give at least two model files (or one with --flip or --zoom)");
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
  auto extra = [](const io::ModelInfo& i, const char* key) {  // an extras entry, "" when absent
    auto it = i.extras.find(key);
    return it == i.extras.end() ? std::string() : it->second;
  };
  auto sampling = [&](const io::ModelInfo& i) { return extra(i, "resize_sampling"); };
  for (size_t k = 1; k < ms.size(); ++k) {
    const io::ModelInfo& i = ms[k].info;
    const std::string who = "--models: '" + a.models[k] + "' ";
    if (i.class_names != first.class_names) throw UsageError(who + "has other classes than '" + a.models[0] + "'");
    if (sampling(i) != sampling(first))
      throw UsageError(who + "resizes with other sampling than '" + a.models[0] + "'");
    if (i.preprocessing.resize != first.preprocessing.resize)
      throw UsageError(who + "resizes photos another way ('" + i.preprocessing.resize + "') than '" + a.models[0] + "' ('" +
                       first.preprocessing.resize + "')");
  }
  for (size_t k = 0; k < ms.size(); ++k) {
    if (ms[k].info.multi_label)
      throw UsageError("--models: '" + a.models[k] + "' is multi-label; its per-class thresholds were chosen for it "
                       "alone, so ensembles are single-label only");
    const Shape in = ms[k].model->input_shape();
    if (in.size() != 3 || in[0] != 3)
      throw UsageError("--models: '" + a.models[k] + "' does not take [3, H, W] images");
  }
  if (a.input_size < 0) throw UsageError("--input-size: must be positive");
  const int64_t size = a.input_size > 0 ? a.input_size : first.input_shape.empty() ? ms[0].model->input_shape()[1]
                                                                                  : first.input_shape[1];
  bool same = true;  // every member takes the ensemble's input as it is: no adapters
  for (const auto& m : ms) {
    const Shape in = m.model->input_shape();
    same = same && in[1] == size && in[2] == size && m.info.preprocessing == first.preprocessing;
  }
  // The views: each --zoom's central crop (pixels cut from every side), then the whole input (0).
  std::vector<int64_t> crops;
  for (double z : a.zoom) {
    if (!(z > 0 && z < 1)) throw UsageError("--zoom: " + std::to_string(z) + " is not a fraction in (0, 1)");
    const int64_t c = static_cast<int64_t>(std::lround(static_cast<double>(size) * (1 - z) / 2));
    if (c < 1) throw UsageError("--zoom: " + std::to_string(z) + " crops nothing from " + std::to_string(size) + " pixels");
    crops.push_back(c);
  }
  crops.push_back(0);
  // With --flip each member runs on the mirrored views first (m0.., its layers shared, its weights
  // saved once per view) and then on the views themselves, the whole photo last, so the graph's last
  // convolution (where Grad-CAM looks) sees the whole photo the right way round.
  // A nested ensemble brings its own views: it joins once, on the input as it is, and must have the
  // views asked for here (otherwise its members would count twice, or lack views the others have).
  std::string zoom_views;
  for (size_t k = 0; k < a.zoom.size(); ++k) zoom_views += (k ? "," : "") + std::to_string(a.zoom[k]);
  std::vector<bool> nested(ms.size());
  for (size_t k = 0; k < ms.size(); ++k) {
    nested[k] = extra(ms[k].info, "model") == "ensemble";
    if (nested[k] && ((extra(ms[k].info, "flip_averaged") == "true") != a.flip || extra(ms[k].info, "zoom_views") != zoom_views))
      throw UsageError("--models: '" + a.models[k] + "' is an ensemble built " +
                       (extra(ms[k].info, "flip_averaged") == "true" ? "with" : "without") + " --flip and with --zoom '" +
                       extra(ms[k].info, "zoom_views") + "'; build the new one with the same views");
  }
  // A nested ensemble is taken apart into the entries its average takes (nn::cut_at, weights shared),
  // so that --drop can leave members out: entry e belongs to member e % n of its n-name ensemble_of
  // list (the order this function writes: views outer, members inner).
  std::vector<std::vector<std::unique_ptr<nn::Model<float>>>> parts(ms.size());
  std::vector<std::string> kept_names;  // for the new ensemble_of
  std::vector<bool> dropped(a.drop.size(), false);
  for (size_t k = 0; k < ms.size(); ++k) {
    if (!nested[k]) {
      kept_names.push_back(a.models[k]);
      continue;
    }
    std::vector<std::string> names;
    {
      std::string list = extra(ms[k].info, "ensemble_of"), item;
      for (size_t i = 0; i <= list.size(); ++i)
        if (i == list.size() || list[i] == ',') {
          names.push_back(item);
          item.clear();
        } else {
          item += list[i];
        }
    }
    auto* graph = dynamic_cast<nn::Graph<float>*>(ms[k].model.get());
    const size_t out = graph ? static_cast<size_t>(graph->output_id()) : 0;
    const size_t entries = graph ? graph->entries()[out].inputs.size() : 0;
    if (!graph || names.empty() || entries % names.size() != 0)
      throw UsageError("--models: '" + a.models[k] + "' says it is an ensemble of " + std::to_string(names.size()) +
                       " models, but its average takes " + std::to_string(entries) + " outputs");
    for (size_t e = 0; e < entries; ++e) {
      const std::string& member = names[e % names.size()];
      const auto hit = std::find(a.drop.begin(), a.drop.end(), member);
      if (hit != a.drop.end()) {
        dropped[static_cast<size_t>(hit - a.drop.begin())] = true;
        continue;
      }
      const int id = graph->entries()[out].inputs[e];
      if (id < 0) throw UsageError("--models: '" + a.models[k] + "' averages its own input");
      parts[k].push_back(nn::cut_at(*graph, static_cast<size_t>(id)));
      if (e < names.size()) kept_names.push_back(member);
    }
  }
  for (size_t i = 0; i < a.drop.size(); ++i)
    if (!dropped[i])
      throw UsageError("--drop: '" + a.drop[i] + "' is not a member of an ensemble in --models (their ensemble_of lists)");
  std::vector<nn::Model<float>*> members;
  std::vector<size_t> source;                     // per member entry: its model in ms
  std::vector<std::pair<bool, int64_t>> view_of;  // per member entry: (mirrored, crop)
  for (int pass = a.flip ? 0 : 1; pass < 2; ++pass)
    for (int64_t c : crops)
      for (size_t k = 0; k < ms.size(); ++k) {
        if (nested[k] && (pass == 0 || c != 0)) continue;
        std::vector<nn::Model<float>*> models{ms[k].model.get()};
        if (nested[k]) {
          models.clear();
          for (auto& part : parts[k]) models.push_back(part.get());
        }
        for (nn::Model<float>* m : models) {
          members.push_back(m);
          source.push_back(k);
          view_of.emplace_back(pass == 0, c);
        }
      }
  if (members.size() < 2)
    throw UsageError("--models: fewer than two members left (every member dropped?)");
  std::vector<std::vector<std::unique_ptr<nn::Layer<float>>>> adapters;
  const bool raw = !same && !std::all_of(ms.begin(), ms.end(), [&](const io::LoadedModel& m) {
    return m.info.preprocessing.rescale == first.preprocessing.rescale && m.info.preprocessing.mean == first.preprocessing.mean &&
           m.info.preprocessing.std == first.preprocessing.std;
  });
  const bool antialias = sampling(first) != "warp";
  if (!same || members.size() > ms.size())
    for (size_t k = 0; k < members.size(); ++k) {
      const auto [mirrored, c] = view_of[k];
      adapters.push_back(detail::member_adapters(ms[source[k]], size - 2 * c, raw, antialias));
      if (c > 0) adapters.back().insert(adapters.back().begin(), std::make_unique<nn::Cropping2D<float>>(c, "crop"));
      if (mirrored)
        adapters.back().insert(adapters.back().begin(), std::make_unique<nn::Flip<float>>("horizontal", "flip"));
    }
  auto e = nn::ensemble<float>(members, {3, size, size}, std::move(adapters));
  io::ModelInfo info = first;
  info.input_shape = {3, size, size};
  info.preprocessing.input_size = {size, size};
  if (raw) {  // the members' Rescaling layers do the pixel scaling
    info.preprocessing.rescale = 1.0;
    info.preprocessing.mean.clear();
    info.preprocessing.std.clear();
  }
  std::string names;
  for (size_t k = 0; k < kept_names.size(); ++k) names += (k ? "," : "") + kept_names[k];
  info.extras["ensemble_of"] = names;
  if (a.flip) info.extras["flip_averaged"] = "true";
  else info.extras.erase("flip_averaged");
  if (!a.zoom.empty()) info.extras["zoom_views"] = zoom_views;
  else info.extras.erase("zoom_views");
  info.extras["model"] = "ensemble";
  io::save_model(a.out, *e, info);
  const size_t n_models = static_cast<size_t>(std::count(names.begin(), names.end(), ',')) + 1;
  os << "wrote " << a.out << ": the mean of " << n_models << " models' logits" << (a.flip ? " on the photo and its mirror" : "")
     << (a.zoom.empty() ? "" : " (and " + std::to_string(a.zoom.size()) + " central crop" + (a.zoom.size() > 1 ? "s" : "") + ")")
     << ", "
     << train::thousands(train::count_params(*e).total) << " parameters, "
     << std::filesystem::file_size(a.out) << " bytes\n";
}

}  // namespace intel_scenes
