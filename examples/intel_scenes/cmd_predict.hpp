#pragma once
// intel_scenes predict: top classes with probabilities per image; text, --json or --csv.
#include <algorithm>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common.hpp"

namespace intel_scenes {

struct PredictArgs {
  std::string model;  // empty: the shipped model
  std::vector<std::string> paths;
  int top = 3;
  bool json = false, csv = false, tta = false;
  std::string explain;  // Grad-CAM PNGs (needs gradcam.hpp)
  int threads = 0;
  size_t chunk = 256;  // photos decoded and classified at a time (memory stays flat for any folder)
};

struct Prediction {
  std::string path;
  std::string error;  // non-empty: the file could not be read/decoded
  std::vector<std::pair<std::string, double>> top;  // (class, probability), best first
  std::vector<double> probs;                         // all classes
  std::string explanation;                           // --explain: the Grad-CAM PNG
};

inline std::string predict_csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

// Returns the predictions; failed files are reported in them (and make the exit code 1 in main).
inline std::vector<Prediction> run_predict(const PredictArgs& a, std::ostream& os) {
  if (a.paths.empty()) throw UsageError("PATH: give at least one image file or folder");
  if (a.top < 1) throw UsageError("--top: must be >= 1");
  if (a.threads > 0) set_num_threads(a.threads);
  ScenesModel s = load_scenes_model(a.model);
  std::vector<std::string> files;
  for (const auto& p : a.paths) {
    std::error_code ec;
    if (!fs::exists(p, ec)) throw IOError("'" + p + "' does not exist");
    for (auto& f : list_images(p)) files.push_back(f);
  }
  if (files.empty()) throw IOError("no image files (.jpg, .jpeg, .png, .bmp) in the given paths");
  if (a.chunk == 0) throw UsageError("predict: chunk size must be >= 1");
  std::vector<Prediction> out(files.size());
#ifdef INTEL_SCENES_HAVE_GRADCAM
  std::set<std::string> used;  // --explain: PNG names given so far
  if (!a.explain.empty()) {
    std::error_code ec;
    fs::create_directories(a.explain, ec);
    if (!fs::is_directory(a.explain, ec)) throw IOError("--explain: cannot create '" + a.explain + "'");
  }
#else
  if (!a.explain.empty())
    throw std::runtime_error("--explain: Grad-CAM (gradcam.hpp) is not available in this build yet");
#endif
  // A chunk of photos at a time: decoding every photo first held them all, and their input tensor,
  // in memory at once (0.6 MB per photo at the shipped model's 224x224 input).
  for (size_t c0 = 0; c0 < files.size(); c0 += a.chunk) {
    const size_t c1 = std::min(files.size(), c0 + a.chunk);
    std::vector<data::Image> ims;
    std::vector<size_t> ok;
    for (size_t i = c0; i < c1; ++i) {
      out[i].path = files[i];
      try {
        ims.push_back(data::load_image_file(files[i]));
        ok.push_back(i);
      } catch (const Error& e) {
        out[i].error = e.what();
      }
    }
    if (ims.empty()) continue;
    std::vector<const data::Image*> ptrs;
    for (auto& im : ims) ptrs.push_back(&im);
    Tensor<float> p = predict_images(s, ptrs, a.tta);
    const int64_t K = p.dim(1);
    for (size_t j = 0; j < ok.size(); ++j) {
      Prediction& pr = out[ok[j]];
      for (int64_t k = 0; k < K; ++k) pr.probs.push_back(p[static_cast<int64_t>(j) * K + k]);
      std::vector<size_t> order(static_cast<size_t>(K));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return pr.probs[x] > pr.probs[y]; });
      for (size_t t = 0; t < order.size() && t < static_cast<size_t>(a.top); ++t)
        pr.top.emplace_back(s.class_name(order[t]), pr.probs[order[t]]);
    }
#ifdef INTEL_SCENES_HAVE_GRADCAM
    if (!a.explain.empty()) {
      // A Grad-CAM overlay per image (explaining its top class), OUT_DIR/<name>.png.
      for (size_t j = 0; j < ok.size(); ++j) {
        const data::Image view = model_view(ims[j], s);
        const GradCam g = grad_cam(s.model(), data::to_tensor(view, s.normalize));
        std::string stem = fs::path(files[ok[j]]).stem().string();
        for (int n = 2; used.count(stem); ++n) stem = fs::path(files[ok[j]]).stem().string() + "_" + std::to_string(n);
        used.insert(stem);
        const std::string png = (fs::path(a.explain) / (stem + ".png")).string();
        write_png(png, overlay_cam(view, g));
        out[ok[j]].explanation = png;
      }
    }
#endif
  }
  if (a.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& pr : out) {
      nlohmann::json j{{"path", pr.path}};
      if (!pr.error.empty()) j["error"] = pr.error;
      if (!pr.explanation.empty()) j["explanation"] = pr.explanation;
      else {
        nlohmann::json t = nlohmann::json::array();
        for (const auto& c : pr.top) t.push_back({{"class", c.first}, {"probability", c.second}});
        j["top"] = t;
        nlohmann::json all = nlohmann::json::object();
        for (size_t k = 0; k < pr.probs.size(); ++k) all[s.class_name(k)] = pr.probs[k];
        j["probabilities"] = all;
      }
      arr.push_back(j);
    }
    os << arr.dump(2) << "\n";
  } else if (a.csv) {
    os << "path,error";
    for (size_t k = 0; k < s.classes().size(); ++k) os << "," << predict_csv_field(s.class_name(k));
    os << ",top_class,top_probability\n";
    for (const auto& pr : out) {
      os << predict_csv_field(pr.path) << "," << predict_csv_field(pr.error);
      for (size_t k = 0; k < s.classes().size(); ++k) os << "," << (pr.error.empty() ? fixed4(pr.probs[k]) : std::string());
      os << "," << (pr.top.empty() ? std::string() : predict_csv_field(pr.top[0].first)) << ","
         << (pr.top.empty() ? std::string() : fixed4(pr.top[0].second)) << "\n";
    }
  } else {
    for (const auto& pr : out) {
      os << pr.path << ":";
      if (!pr.error.empty()) os << " error: " << pr.error;
      for (const auto& c : pr.top) os << " " << c.first << " " << fixed4(c.second);
      if (!pr.explanation.empty()) os << " (Grad-CAM: " << pr.explanation << ")";
      os << "\n";
    }
  }
  return out;
}

}  // namespace intel_scenes
