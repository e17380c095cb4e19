#pragma once
// intel_scenes (no arguments) / intel_scenes demo: evaluate the shipped model on the shipped
// sample, then sort the sample into a fresh temporary folder.
#include <chrono>
#include <string>

#include "cmd_evaluate.hpp"
#include "cmd_sort.hpp"
#include "common.hpp"

namespace intel_scenes {

struct DemoArgs {
  std::string model;  // empty: the shipped model
  std::string dest;   // empty: a fresh folder under the system temp directory
};

struct DemoResult {
  double accuracy = 0, macro_f1 = 0;
  std::string sorted_dir, report;
};

inline std::string fresh_temp_dir() {
  const auto base = fs::temp_directory_path();
  const auto t = std::chrono::steady_clock::now().time_since_epoch().count();
  for (int i = 0; i < 1000; ++i) {
    fs::path p = base / ("intel_scenes_demo_" + std::to_string(t) + "_" + std::to_string(i));
    std::error_code ec;
    if (fs::create_directory(p, ec)) return p.string();
  }
  throw IOError("cannot create a temporary folder under '" + base.string() + "'");
}

inline DemoResult run_demo(const DemoArgs& a, std::ostream& os) {
  DemoResult r;
  const std::string sample = sample_dir();
  std::error_code ec;
  if (!fs::is_directory(sample, ec)) throw IOError("the shipped sample '" + sample + "' is missing");
  const std::string model = a.model.empty() ? default_model_path() : a.model;
  os << "intel_scenes demo: the shipped model " << model << " on the shipped sample " << sample << "\n";
  const std::string root = a.dest.empty() ? fresh_temp_dir() : a.dest;
  EvalArgs ea;
  ea.model = model;
  ea.data = sample;
#ifdef INTEL_SCENES_HAVE_REPORT
  ea.report = root + "/report.html";
#endif
  EvalResult er = run_evaluate(ea, os);
  r.accuracy = er.accuracy;
  r.macro_f1 = er.macro_f1;
  r.report = ea.report;
#ifdef INTEL_SCENES_HAVE_SORTER
  r.sorted_dir = root + "/sorted";
  SortArgs sa;
  sa.model = model;
  sa.src = sample;
  sa.dest = r.sorted_dir;
  run_sort(sa, os);
  os << "sorted photos: " << r.sorted_dir << "/<class>/\n";
#else
  os << "sorting skipped: the photo archiver (sorter.hpp) is not available in this build\n";
#endif
  if (!r.report.empty()) os << "report: " << r.report << "\n";
  return r;
}

}  // namespace intel_scenes
