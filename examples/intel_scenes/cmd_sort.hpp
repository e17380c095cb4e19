#pragma once
// intel_scenes sort: archive photos into DEST/<class>/ (the logic lives in sorter.hpp).
#include <string>

#include "common.hpp"

namespace intel_scenes {

struct SortArgs {
  std::string model;  // empty: the shipped model
  std::string src, dest;
  double threshold = -1;  // < 0: the model's per-class thresholds, else 0.5
  bool multi_label = false, dry_run = false, move = false;
};

// Returns the process exit code.
inline int run_sort(const SortArgs& a, std::ostream& os) {
  if (a.src.empty()) throw UsageError("--src: required");
  if (a.dest.empty()) throw UsageError("--dest: required");
  if (a.threshold != -1 && !(a.threshold >= 0 && a.threshold <= 1)) throw UsageError("--threshold: must be in [0, 1]");
  (void)os;
  throw std::runtime_error("sort: the photo archiver (examples/intel_scenes/sorter.hpp) is not available in this build yet");
}

}  // namespace intel_scenes
