#pragma once
// ImageFolder: root/<class>/*.{jpg,jpeg,png,bmp} (extensions case-insensitive), like Keras'
// image_dataset_from_directory and torchvision's ImageFolder.
//
//   ImageFolder folder("../shared/data/intel-scenes/train");
//   folder.classes();        // sorted sub-folder names -> label indices 0..K-1
//   folder.skipped();        // files left out, each with the reason (hidden, not an image, corrupt...)
//   auto split = stratified_split(folder.labels(), 0.2, /*seed=*/42);   // per-class fractions
//
// Listing checks each file's header (probe: format, size limits, truncation) unless
// ImageFolderOptions::verify is None; with strict = true the first bad file throws instead of being
// skipped. Symlinks are not followed unless follow_symlinks. The optional cache keeps decoded uint8
// images in memory, so epochs after the first decode nothing.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "decode.hpp"
#include "image.hpp"

namespace tinycnn {
namespace data {

enum class Verify { None, Header, Full };

struct ImageFolderOptions {
  std::vector<std::string> classes;  // explicit class list (in label order); empty: sorted sub-folders
  bool follow_symlinks = false;
  bool strict = false;               // throw on the first unreadable/corrupt/unsupported file
  Verify verify = Verify::Header;    // Header: read each file and probe it; Full: also decode it
  DecodeLimits limits;
};

struct SkippedFile {
  std::string path;
  std::string reason;
};

class ImageFolder {
 public:
  struct Sample {
    std::string path;
    int32_t label;
  };

  ImageFolder() = default;
  explicit ImageFolder(const std::string& root, ImageFolderOptions opt = {}) : root_(root), opt_(std::move(opt)) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(root, ec)) throw IOError("ImageFolder: '" + root + "' is not a directory");
    classes_ = opt_.classes;
    if (classes_.empty()) {
      for (const auto& e : fs::directory_iterator(root, ec)) {
        const std::string n = e.path().filename().string();
        if (n.empty() || n[0] == '.') continue;
        const bool link = e.is_symlink(ec);
        if (link && !opt_.follow_symlinks) continue;
        if (e.is_directory(ec)) classes_.push_back(n);
      }
      if (ec) throw IOError("ImageFolder: cannot list '" + root + "': " + ec.message());
      std::sort(classes_.begin(), classes_.end());
    }
    if (classes_.empty()) throw IOError("ImageFolder: no class folders in '" + root + "'");
    for (size_t c = 0; c < classes_.size(); ++c) {
      const fs::path dir = fs::path(root) / classes_[c];
      if (!fs::is_directory(dir, ec)) throw IOError("ImageFolder: class folder '" + dir.string() + "' is missing");
      std::vector<std::string> files;
      for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string n = e.path().filename().string();
        const std::string p = e.path().string();
        if (n.empty() || n[0] == '.') { skipped_.push_back({p, "hidden file"}); continue; }
        if (e.is_symlink(ec) && !opt_.follow_symlinks) { skipped_.push_back({p, "symlink (follow_symlinks is off)"}); continue; }
        if (!e.is_regular_file(ec)) { skipped_.push_back({p, "not a regular file"}); continue; }
        if (!has_image_extension(n)) { skipped_.push_back({p, "not an image extension"}); continue; }
        files.push_back(p);
      }
      std::sort(files.begin(), files.end());
      for (auto& f : files) {
        if (opt_.verify != Verify::None) {
          try {
            if (opt_.verify == Verify::Full) (void)load_image_file(f, opt_.limits);
            else (void)probe_image_file(f, opt_.limits);
          } catch (const ImageError& err) {
            if (opt_.strict) throw;
            skipped_.push_back({f, err.what()});
            continue;
          }
        }
        samples_.push_back({std::move(f), static_cast<int32_t>(c)});
      }
    }
    if (samples_.empty()) throw IOError("ImageFolder: no images under '" + root + "'");
    cache_ready_ = std::make_unique<std::atomic<bool>[]>(samples_.size());
    for (size_t i = 0; i < samples_.size(); ++i) cache_ready_[i].store(false);
  }

  ImageFolder(const ImageFolder&) = delete;
  ImageFolder& operator=(const ImageFolder&) = delete;

  static bool has_image_extension(const std::string& name) {
    const auto dot = name.rfind('.');
    if (dot == std::string::npos) return false;
    std::string ext = name.substr(dot + 1);
    for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return ext == "jpg" || ext == "jpeg" || ext == "png" || ext == "bmp";
  }

  const std::string& root() const { return root_; }
  size_t size() const { return samples_.size(); }
  int num_classes() const { return static_cast<int>(classes_.size()); }
  const std::vector<std::string>& classes() const { return classes_; }
  const std::vector<Sample>& samples() const { return samples_; }
  int32_t label(size_t i) const { return samples_.at(i).label; }
  std::vector<int32_t> labels() const {
    std::vector<int32_t> l;
    l.reserve(samples_.size());
    for (const auto& s : samples_) l.push_back(s.label);
    return l;
  }
  // Files left out at listing time, and files that failed to decode later (load_or_skip).
  std::vector<SkippedFile> skipped() const {
    std::lock_guard<std::mutex> g(mu_);
    return skipped_;
  }
  const ImageFolderOptions& options() const { return opt_; }

  // Images per class (over all samples, or over the given subset).
  std::vector<int64_t> class_counts(const std::vector<size_t>* subset = nullptr) const {
    std::vector<int64_t> n(classes_.size(), 0);
    if (subset) for (size_t i : *subset) ++n[static_cast<size_t>(samples_.at(i).label)];
    else for (const auto& s : samples_) ++n[static_cast<size_t>(s.label)];
    return n;
  }
  // Keras/sklearn "balanced" weights: total / (num_classes * count[c]) (0 for an empty class).
  std::vector<float> class_weights(const std::vector<size_t>* subset = nullptr) const {
    const std::vector<int64_t> n = class_counts(subset);
    int64_t total = 0;
    for (int64_t v : n) total += v;
    std::vector<float> w(n.size(), 0.f);
    for (size_t c = 0; c < n.size(); ++c)
      if (n[c]) w[c] = static_cast<float>(double(total) / (double(n.size()) * double(n[c])));
    return w;
  }

  // Keep decoded images in memory (uint8); each image is decoded at most once. Call it before any
  // loader reads from this folder (loads themselves are thread-safe).
  void enable_cache(bool on = true) {
    std::lock_guard<std::mutex> g(mu_);
    cache_on_ = on;
    if (on && cache_.size() != samples_.size()) cache_.resize(samples_.size());
  }
  bool cache_enabled() const { return cache_on_; }
  size_t cache_bytes() const {
    std::lock_guard<std::mutex> g(mu_);
    size_t b = 0;
    for (size_t i = 0; i < cache_.size(); ++i)
      if (cache_ready_[i].load(std::memory_order_acquire)) b += cache_[i]->pixels.size();
    return b;
  }

  // Decoded image i (from the cache when enabled). Throws ImageError.
  std::shared_ptr<const Image> load(size_t i) const {
    if (i >= samples_.size()) throw ValueError("ImageFolder::load: index " + std::to_string(i) + " of " + std::to_string(samples_.size()));
    if (cache_on_ && cache_ready_[i].load(std::memory_order_acquire)) return cache_[i];
    auto im = std::make_shared<const Image>(load_image_file(samples_[i].path, opt_.limits));
    if (cache_on_) {
      std::lock_guard<std::mutex> g(mu_);
      if (!cache_ready_[i].load(std::memory_order_relaxed)) {
        cache_[i] = im;
        cache_ready_[i].store(true, std::memory_order_release);
      }
    }
    return im;
  }
  // As load(), but a decode failure is recorded in skipped() and returns nullptr (strict: throws).
  std::shared_ptr<const Image> load_or_skip(size_t i) const {
    try {
      return load(i);
    } catch (const ImageError& e) {
      if (opt_.strict) throw;
      std::lock_guard<std::mutex> g(mu_);
      bool seen = false;
      for (const auto& s : skipped_) seen = seen || s.path == samples_[i].path;
      if (!seen) skipped_.push_back({samples_[i].path, e.what()});
      return nullptr;
    }
  }

 private:
  std::string root_;
  ImageFolderOptions opt_;
  std::vector<std::string> classes_;
  std::vector<Sample> samples_;
  mutable std::vector<SkippedFile> skipped_;
  mutable std::mutex mu_;
  std::atomic<bool> cache_on_{false};
  mutable std::vector<std::shared_ptr<const Image>> cache_;
  std::unique_ptr<std::atomic<bool>[]> cache_ready_;
};

struct Split {
  std::vector<size_t> train, val;
};

// Per class, round(fraction * count) samples (at least 1 when the class has 2 or more and fraction
// > 0) go to `val`, chosen by a seeded shuffle; the rest to `train`. Both lists are sorted.
inline Split stratified_split(const std::vector<int32_t>& labels, double val_fraction, uint64_t seed) {
  if (!(val_fraction >= 0 && val_fraction < 1)) throw ValueError("stratified_split: fraction must be in [0, 1)");
  int32_t k = 0;
  for (int32_t l : labels) {
    if (l < 0) throw ValueError("stratified_split: negative label");
    k = std::max(k, l + 1);
  }
  std::vector<std::vector<size_t>> by(static_cast<size_t>(k));
  for (size_t i = 0; i < labels.size(); ++i) by[static_cast<size_t>(labels[i])].push_back(i);
  Rng rng(seed);
  Split s;
  for (auto& idx : by) {
    for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng.below(i)]);  // Fisher-Yates
    size_t nv = static_cast<size_t>(std::llround(val_fraction * double(idx.size())));
    if (val_fraction > 0 && nv == 0 && idx.size() >= 2) nv = 1;
    s.val.insert(s.val.end(), idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(nv));
    s.train.insert(s.train.end(), idx.begin() + static_cast<std::ptrdiff_t>(nv), idx.end());
  }
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.val.begin(), s.val.end());
  return s;
}

}  // namespace data
}  // namespace tinycnn
