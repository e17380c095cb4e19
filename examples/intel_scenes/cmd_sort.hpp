#pragma once
// intel_scenes sort: archive photos into DEST/<class>/ (the archiving rules live in sorter.hpp).
#include <string>
#include <vector>

#include "common.hpp"

namespace intel_scenes {

struct SortArgs {
  std::string model;  // empty: the shipped model
  std::string src, dest;
  double threshold = -1;  // < 0: the model's per-class thresholds (multi-label), else 0.5
  bool multi_label = false, dry_run = false, move = false;
};

// Returns the process exit code (0; 1 when some photos failed).
inline int run_sort(const SortArgs& a, std::ostream& os) {
  if (a.src.empty()) throw UsageError("--src: required");
  if (a.dest.empty()) throw UsageError("--dest: required");
  if (a.threshold != -1 && !(a.threshold >= 0 && a.threshold <= 1)) throw UsageError("--threshold: must be in [0, 1]");
#ifdef INTEL_SCENES_HAVE_SORTER
  ScenesModel s = load_scenes_model(a.model);
  SortOptions o;
  o.src = a.src;
  o.dest = a.dest;
  o.class_names = s.classes();
  if (o.class_names.empty())
    throw IOError("model file '" + s.path + "' has no class names (they name the archive folders)");
  o.multi_label = a.multi_label;
  o.dry_run = a.dry_run;
  o.move = a.move;
  if (a.multi_label) {
    if (a.threshold >= 0) o.threshold = a.threshold;
    else if (!s.m.info.thresholds.empty()) o.class_thresholds = s.m.info.thresholds;
  } else if (a.threshold >= 0) {
    o.min_confidence = a.threshold;
  }
  const data::DecodeLimits limits = o.limits;
  auto classify = [&s, limits](const std::string& path) {
    data::Image im = data::load_image_file(path, limits);
    std::vector<const data::Image*> one{&im};
    Tensor<float> p = predict_images(s, one);
    return std::vector<float>(p.data(), p.data() + p.numel());
  };
  // The photos that pass the sorter's checks go through the model 32 at a time (one forward pass per
  // batch); a photo that fails to decode here gets an empty entry and the single-photo path above.
  BatchClassifier classify_batch = [&s, limits](const std::vector<std::string>& paths) {
    std::vector<data::Image> ims;
    std::vector<size_t> ok;
    for (size_t i = 0; i < paths.size(); ++i) {
      try {
        ims.push_back(data::load_image_file(paths[i], limits));
        ok.push_back(i);
      } catch (const std::exception&) {
      }
    }
    std::vector<std::vector<float>> out(paths.size());
    if (ims.empty()) return out;
    std::vector<const data::Image*> ptrs;
    for (const auto& im : ims) ptrs.push_back(&im);
    const Tensor<float> p = predict_images(s, ptrs);
    const int64_t K = p.dim(1);
    for (size_t j = 0; j < ok.size(); ++j)
      out[ok[j]].assign(p.data() + static_cast<int64_t>(j) * K, p.data() + static_cast<int64_t>(j + 1) * K);
    return out;
  };
  o.on_file = [&os](const FileResult& f) {
    if (f.status == FileStatus::Skipped || f.status == FileStatus::Failed)
      os << file_status_name(f.status) << " " << f.source << ": " << f.reason << "\n";
  };
  const SortSummary sum = sort_photos(o, classify, classify_batch);
  if (!sum.manifest_path.empty()) os << "manifest: " << sum.manifest_path << "\n";
  os << sum.to_string() << "\n";
  return sum.failed > 0 ? 1 : 0;
#else
  (void)os;
  throw std::runtime_error("sort: the photo archiver (examples/intel_scenes/sorter.hpp) is not available in this build");
#endif
}

}  // namespace intel_scenes
