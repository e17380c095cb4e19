#pragma once
// intel_scenes evaluate: accuracy, macro F1 and the confusion matrix of a model file on a folder
// DIR/<class>/*.jpg whose class names match the model's.
#include <string>
#include <vector>

#include "common.hpp"

namespace intel_scenes {

struct EvalArgs {
  std::string model;   // empty: the shipped model
  std::string data;
  std::string report;  // HTML report path (needs report.hpp)
  bool tta = false;
  int threads = 0;
};

struct EvalResult {
  double accuracy = 0, macro_f1 = 0;
  int64_t images = 0;
  train::ConfusionMatrix cm;
  std::vector<std::string> classes;
  Tensor<float> probs;            // [N, K]
  std::vector<int32_t> labels;    // N (model class indices)
  std::vector<std::string> paths;
};

inline EvalResult evaluate_model(ScenesModel& s, const std::string& dir, bool tta, std::ostream* skipped_to = nullptr) {
  if (!fs::is_directory(dir)) throw IOError("--data: '" + dir + "' is not a directory");
  data::ImageFolder folder(dir);
  // Map the folder's classes onto the model's.
  std::vector<int32_t> map(static_cast<size_t>(folder.num_classes()), -1);
  for (size_t c = 0; c < folder.classes().size(); ++c)
    for (size_t k = 0; k < s.classes().size(); ++k)
      if (s.classes()[k] == folder.classes()[c]) map[c] = static_cast<int32_t>(k);
  for (size_t c = 0; c < map.size(); ++c)
    if (map[c] < 0) throw ValueError("--data: class folder '" + folder.classes()[c] + "' is not one of the model's classes");
  EvalResult r;
  r.classes = s.classes();
  const int K = static_cast<int>(s.classes().size());
  std::vector<std::shared_ptr<const data::Image>> keep;
  std::vector<const data::Image*> ims;
  for (size_t i = 0; i < folder.size(); ++i) {
    auto im = folder.load_or_skip(i);
    if (!im) continue;
    keep.push_back(im);
    ims.push_back(im.get());
    r.labels.push_back(map[static_cast<size_t>(folder.label(i))]);
    r.paths.push_back(folder.samples()[i].path);
  }
  if (skipped_to)
    for (const auto& sk : folder.skipped()) *skipped_to << "skipped " << sk.path << ": " << sk.reason << "\n";
  if (ims.empty()) throw IOError("--data: no readable images under '" + dir + "'");
  r.images = static_cast<int64_t>(ims.size());
  r.probs = predict_images(s, ims, tta);
  r.cm = train::ConfusionMatrix(K);
  r.cm.add(r.labels, train::argmax(r.probs));
  const train::ClassificationReport rep = r.cm.report();
  r.accuracy = rep.accuracy;
  r.macro_f1 = rep.macro_f1;
  return r;
}

inline EvalResult run_evaluate(const EvalArgs& a, std::ostream& os) {
  if (a.data.empty()) throw UsageError("--data: required");
  if (a.threads > 0) set_num_threads(a.threads);
  ScenesModel s = load_scenes_model(a.model);
  EvalResult r = evaluate_model(s, a.data, a.tta, &os);
  os << "model " << s.path << " on " << a.data << ": " << r.images << " images" << (a.tta ? " (flip TTA)" : "") << "\n";
  const train::ClassificationReport rep = r.cm.report();
  os << "accuracy: " << fixed4(r.accuracy) << "\n";
  os << "macro F1: " << fixed4(r.macro_f1) << "\n";
  print_confusion(os, r.cm, r.classes);
  os << "per class (precision recall F1 support):\n";
  for (size_t k = 0; k < r.classes.size(); ++k)
    os << "  " << r.classes[k] << " " << fixed4(rep.precision[k]) << " " << fixed4(rep.recall[k]) << " " << fixed4(rep.f1[k])
       << " " << rep.support[k] << "\n";
  if (!a.report.empty()) {
#ifdef INTEL_SCENES_HAVE_REPORT
    write_evaluate_report(a.report, s, r);
    os << "report: " << a.report << "\n";
#else
    throw std::runtime_error("--report: the HTML report (report.hpp) is not available in this build yet");
#endif
  }
  return r;
}

}  // namespace intel_scenes
