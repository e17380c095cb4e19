#pragma once
// intel_scenes evaluate: accuracy, macro F1 and the confusion matrix of a model file on a folder
// DIR/<class>/*.jpg whose class names are the model's (a subset is fine).
#include <string>
#include <vector>

#include "common.hpp"

namespace intel_scenes {

struct EvalArgs {
  std::string model;   // empty: the shipped model
  std::string data;
  std::string report;  // HTML report path
  bool tta = false;
  int threads = 0;
  // Evaluate only the validation part of train's split (the same --val-split, --seed, --exclude).
  double val_split = 0;
  uint64_t seed = 0;
  std::string exclude;
  std::string sampling;  // "", "area" or "warp": override the model file's resize sampling
};

struct EvalResult {
  double accuracy = 0, macro_f1 = 0;
  int64_t images = 0;
  train::ConfusionMatrix cm;
  std::vector<std::string> classes;
  Tensor<float> probs;            // [N, K]
  std::vector<int32_t> labels;    // N (model class indices)
  std::vector<std::string> paths; // N
  std::vector<std::string> skipped;  // "path: reason"
};

// Predictions and metrics for labelled files (labels are model class indices). Files that fail
// to decode are listed in `skipped` and left out.
inline EvalResult evaluate_files(ScenesModel& s, const std::vector<std::string>& paths, const std::vector<int32_t>& labels,
                                 bool tta) {
  EvalResult r;
  r.classes = s.classes();
  const int K = static_cast<int>(s.m.model->output_shape().back());
  if (r.classes.empty())
    for (int k = 0; k < K; ++k) r.classes.push_back(s.class_name(static_cast<size_t>(k)));
  std::vector<data::Image> ims;
  ims.reserve(paths.size());
  for (size_t i = 0; i < paths.size(); ++i) {
    try {
      ims.push_back(data::load_image_file(paths[i]));
      r.labels.push_back(labels[i]);
      r.paths.push_back(paths[i]);
    } catch (const Error& e) {
      r.skipped.push_back(paths[i] + ": " + e.what());
    }
  }
  if (ims.empty()) throw IOError("no readable images to evaluate");
  std::vector<const data::Image*> ptrs;
  for (const auto& im : ims) ptrs.push_back(&im);
  r.images = static_cast<int64_t>(ims.size());
  r.probs = predict_images(s, ptrs, tta);
  r.cm = train::ConfusionMatrix(K);
  r.cm.add(r.labels, train::argmax(r.probs));
  const train::ClassificationReport rep = r.cm.report();
  r.accuracy = rep.accuracy;
  r.macro_f1 = rep.macro_f1;
  return r;
}

inline EvalResult evaluate_model(ScenesModel& s, const std::string& dir, bool tta, double val_split = 0, uint64_t seed = 0,
                                 const std::string& exclude = "") {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IOError("--data: '" + dir + "' is not a directory");
  data::ImageFolder folder(dir);
  std::vector<int32_t> map(static_cast<size_t>(folder.num_classes()), -1);
  for (size_t c = 0; c < folder.classes().size(); ++c)
    for (size_t k = 0; k < s.classes().size(); ++k)
      if (s.classes()[k] == folder.classes()[c]) map[c] = static_cast<int32_t>(k);
  for (size_t c = 0; c < map.size(); ++c)
    if (map[c] < 0)
      throw ValueError("--data: class folder '" + folder.classes()[c] + "' in '" + dir + "' is not one of the model's classes");
  std::vector<size_t> idx = select_samples(folder, exclude, 0);
  if (val_split > 0) idx = validation_part(folder, idx, val_split, seed);
  std::vector<std::string> paths;
  std::vector<int32_t> labels;
  for (size_t i : idx) {
    paths.push_back(folder.samples()[i].path);
    labels.push_back(map[static_cast<size_t>(folder.label(i))]);
  }
  EvalResult r = evaluate_files(s, paths, labels, tta);
  for (const auto& sk : folder.skipped()) r.skipped.insert(r.skipped.begin(), sk.path + ": " + sk.reason);
  return r;
}

#ifdef INTEL_SCENES_HAVE_REPORT
// The evaluation part of report.html: confusion matrix, per-class metrics, and up to `max_wrong`
// misclassified images with their Grad-CAM.
inline void fill_report(ReportData& rd, ScenesModel& s, const EvalResult& r, size_t max_wrong = 12) {
  rd.class_names = r.classes;
  rd.confusion = r.cm;
  rd.model_summary = train::summary(s.model());
  const std::vector<int32_t> pred = train::argmax(r.probs);
  const int64_t K = r.probs.dim(1);
  for (size_t i = 0; i < r.paths.size() && rd.misclassified.size() < max_wrong; ++i) {
    if (pred[i] == r.labels[i]) continue;
    try {
      data::Image view = model_view(data::load_image_file(r.paths[i]), s);
      Tensor<float> x = data::to_tensor(view, s.normalize);
      add_misclassified(rd, s.model(), view, x, r.labels[i], pred[i],
                        r.probs[static_cast<int64_t>(i) * K + pred[i]], fs::path(r.paths[i]).filename().string());
    } catch (const Error&) {
      // an image that fails here was already evaluated; leave it out of the grid
    }
  }
}
#endif

inline EvalResult run_evaluate(const EvalArgs& a, std::ostream& os) {
  if (a.data.empty()) throw UsageError("--data: required");
  if (a.threads > 0) set_num_threads(a.threads);
#ifndef INTEL_SCENES_HAVE_REPORT
  if (!a.report.empty()) throw std::runtime_error("--report: the HTML report (report.hpp) is not available in this build");
#endif
  if (a.val_split != 0 && !(a.val_split > 0 && a.val_split < 1)) throw UsageError("--val-split: must be in (0, 1)");
  if (!a.sampling.empty() && a.sampling != "area" && a.sampling != "warp") throw UsageError("--sampling: must be area or warp");
  ScenesModel s = load_scenes_model(a.model);
  if (!a.sampling.empty()) s.sampling = a.sampling;
  EvalResult r = evaluate_model(s, a.data, a.tta, a.val_split, a.seed, a.exclude);
  for (const auto& sk : r.skipped) os << "skipped " << sk << "\n";
  os << "model " << s.path << " on " << a.data << (a.val_split > 0 ? " (validation part of the split)" : "") << ": " << r.images
     << " images" << (a.tta ? " (flip TTA)" : "") << ", " << s.sampling << " resize\n";
  const train::ClassificationReport rep = r.cm.report();
  os << "accuracy: " << fixed4(r.accuracy) << "\n";
  os << "macro F1: " << fixed4(r.macro_f1) << "\n";
  print_confusion(os, r.cm, r.classes);
  os << "per class: precision recall F1 support\n";
  for (size_t k = 0; k < r.classes.size(); ++k)
    os << "  " << r.classes[k] << " " << fixed4(rep.precision[k]) << " " << fixed4(rep.recall[k]) << " " << fixed4(rep.f1[k])
       << " " << rep.support[k] << "\n";
#ifdef INTEL_SCENES_HAVE_REPORT
  if (!a.report.empty()) {
    ReportData rd;
    rd.title = "intel_scenes evaluation report";
    fill_report(rd, s, r);
    rd.config = {{"model file", s.path}, {"data", a.data}, {"images", std::to_string(r.images)},
                 {"test-time flip averaging", a.tta ? "yes" : "no"}};
    write_report(a.report, rd);
    os << "wrote " << a.report << "\n";
  }
#endif
  return r;
}

}  // namespace intel_scenes
