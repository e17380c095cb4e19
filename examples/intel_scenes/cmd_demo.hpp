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
  ScenesModel s = load_scenes_model(a.model);
  os << "intel_scenes demo: model " << s.path << " (" << s.classes().size() << " classes, input " << s.width << "x"
     << s.height << ")\n";
  EvalArgs ea;
  ea.model = s.path;
  ea.data = sample;
  EvalResult er = run_evaluate(ea, os);
  r.accuracy = er.accuracy;
  r.macro_f1 = er.macro_f1;
  r.sorted_dir = a.dest.empty() ? fresh_temp_dir() : a.dest;
#ifdef INTEL_SCENES_HAVE_SORTER
  SortArgs sa;
  sa.model = s.path;
  sa.src = sample;
  sa.dest = r.sorted_dir;
  run_sort(sa, os);
  os << "sorted photos: " << r.sorted_dir << "\n";
#else
  os << "sorting skipped: the photo archiver (sorter.hpp) is not available in this build yet\n";
#endif
  return r;
}

}  // namespace intel_scenes
