#pragma once
// DataLoader: batches of (images [N, 3, H, W] float, labels int32) from an ImageFolder subset.
//
//   auto folder = std::make_shared<ImageFolder>(root);
//   Split split = stratified_split(folder->labels(), 0.2, 42);
//   LoaderOptions o; o.width = o.height = 150; o.batch_size = 32; o.augment = true; o.num_workers = 2;
//   DataLoader train(folder, split.train, o);
//   Batch b;
//   while (train.next(b)) { ... b.images, b.labels ... }   // one epoch; the next call starts the next
//
// Order: epoch e visits the samples in a permutation drawn from Rng(hash(seed, e)) (or in index order
// without shuffle). Sample j of an epoch is augmented with its own Rng(hash(seed, e, j)), and each
// batch is built by one worker, so the batches are identical whatever num_workers is. Workers run
// ahead of the consumer by at most `prefetch` batches. position()/seek() report and restore
// (epoch, batch) for resumable checkpoints. A file that fails to decode (non-strict folder) is
// recorded in folder->skipped() and replaced by the next sample of the epoch order that decodes.
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/tensor.hpp"
#include "augment.hpp"
#include "image_folder.hpp"
#include "normalize.hpp"
#include "resize.hpp"

namespace tinycnn {
namespace data {

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = true;
  bool drop_last = false;
  uint64_t seed = 0;
  int num_workers = 2;   // 0: batches are built in the calling thread
  int prefetch = 4;      // batches ready ahead of the consumer (>= 1)
  int width = 0, height = 0;  // output size (required)
  ResizeMode resize_mode = ResizeMode::Stretch;  // without augmentation
  Resampler resampler = Resampler::Bilinear;
  bool augment = false;  // training: AugmentOptions below (one affine warp straight to width x height)
  AugmentOptions aug;
  Normalize normalize;
};

struct Batch {
  Tensor<float> images;          // [n, 3, height, width]
  std::vector<int32_t> labels;   // n
  std::vector<size_t> indices;   // folder indices of the samples (after any substitution)
  int64_t epoch = 0, index = 0;  // which batch this is
};

struct LoaderPosition {
  int64_t epoch = 0;  // epoch of the next batch
  int64_t batch = 0;  // index of the next batch within that epoch
};

namespace detail {
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
inline uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b) {
  return splitmix64(splitmix64(splitmix64(seed) ^ a) ^ (b * 0xD6E8FEB86659FD93ull));
}
}  // namespace detail

class DataLoader {
 public:
  DataLoader() = default;
  DataLoader(std::shared_ptr<const ImageFolder> folder, std::vector<size_t> indices, LoaderOptions opt)
      : s_(std::make_unique<State>()) {
    if (!folder) throw ValueError("DataLoader: no folder");
    if (opt.batch_size < 1) throw ValueError("DataLoader: batch_size must be >= 1");
    if (opt.width < 1 || opt.height < 1) throw ValueError("DataLoader: set width and height (the output size)");
    if (opt.num_workers < 0) throw ValueError("DataLoader: num_workers must be >= 0");
    if (opt.prefetch < 1) opt.prefetch = 1;
    for (size_t i : indices)
      if (i >= folder->size()) throw ValueError("DataLoader: index " + std::to_string(i) + " out of range");
    s_->folder = std::move(folder);
    s_->indices = std::move(indices);
    s_->opt = opt;
  }
  DataLoader(std::shared_ptr<const ImageFolder> folder, LoaderOptions opt)
      : DataLoader(folder, all_indices(folder ? folder->size() : 0), opt) {}
  DataLoader(DataLoader&&) = default;
  DataLoader& operator=(DataLoader&& o) noexcept {
    if (s_) stop();
    s_ = std::move(o.s_);
    return *this;
  }
  ~DataLoader() {
    if (s_) stop();
  }

  const LoaderOptions& options() const { return s_->opt; }
  const ImageFolder& folder() const { return *s_->folder; }
  const std::vector<size_t>& indices() const { return s_->indices; }
  int64_t size() const { return static_cast<int64_t>(s_->indices.size()); }
  int64_t num_batches() const {
    const int64_t n = size(), b = s_->opt.batch_size;
    return s_->opt.drop_last ? n / b : (n + b - 1) / b;
  }

  // The sample order of an epoch (folder indices).
  std::vector<size_t> epoch_order(int64_t epoch) const {
    std::vector<size_t> order = s_->indices;
    if (s_->opt.shuffle) {
      Rng rng(detail::mix_seed(s_->opt.seed, static_cast<uint64_t>(epoch), 0x5348554646ull));
      for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
    }
    return order;
  }

  LoaderPosition position() const { return s_->pos; }
  // Continue from a saved position (the next next() returns batch p.batch of epoch p.epoch).
  void seek(LoaderPosition p) {
    if (p.epoch < 0 || p.batch < 0 || p.batch > num_batches()) throw ValueError("DataLoader::seek: bad position");
    stop();
    s_->pos = p;
  }

  // Next batch of the current epoch; false (and the position moves to the next epoch) at its end.
  bool next(Batch& out) {
    State& s = *s_;
    if (s.pos.batch >= num_batches()) {
      stop();
      s.pos = {s.pos.epoch + 1, 0};
      return false;
    }
    if (s.opt.num_workers == 0) {
      if (!s.order_valid || s.order_epoch != s.pos.epoch) {
        s.order = epoch_order(s.pos.epoch);
        s.order_epoch = s.pos.epoch;
        s.order_valid = true;
      }
      out = make_batch(s.pos.epoch, s.pos.batch);
      ++s.pos.batch;
      return true;
    }
    if (!s.running) start();
    std::unique_lock<std::mutex> lk(s.mu);
    s.cv.wait(lk, [&] { return s.error || s.ready.count(s.pos.batch); });
    if (s.error) {
      std::exception_ptr e = s.error;
      lk.unlock();
      stop();
      std::rethrow_exception(e);
    }
    out = std::move(s.ready[s.pos.batch]);
    s.ready.erase(s.pos.batch);
    ++s.pos.batch;
    s.consumed = s.pos.batch;
    lk.unlock();
    s.cv.notify_all();
    return true;
  }

  // Builds batch b of epoch e directly (no threads; the epoch order must be current).
  Batch make_batch(int64_t epoch, int64_t b) const {
    const State& s = *s_;
    const int64_t n = size();
    const int64_t begin = b * s.opt.batch_size, end = std::min(n, begin + s.opt.batch_size);
    Batch out;
    out.epoch = epoch;
    out.index = b;
    out.images = Tensor<float>::empty({end - begin, 3, s.opt.height, s.opt.width});
    const size_t per = size_t(3) * static_cast<size_t>(s.opt.width) * static_cast<size_t>(s.opt.height);
    for (int64_t j = begin; j < end; ++j) {
      std::shared_ptr<const Image> im;
      size_t idx = 0;
      for (int64_t t = 0; t < n && !im; ++t) {  // deterministic substitute for a file that fails
        idx = s.order[static_cast<size_t>((j + t) % n)];
        im = s.folder->load_or_skip(idx);
      }
      if (!im) throw ImageError("DataLoader: no image in the dataset could be decoded");
      Image px;
      if (s.opt.augment) {
        Rng rng(detail::mix_seed(s.opt.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(j) + 1));
        px = augment(*im, s.opt.width, s.opt.height, s.opt.aug, rng);
      } else {
        px = resize_to(*im, s.opt.width, s.opt.height, s.opt.resize_mode, s.opt.resampler);
      }
      if (px.channels != 3) throw ImageError("DataLoader: image with " + std::to_string(px.channels) + " channels");
      image_to_chw(px, out.images.data() + static_cast<size_t>(j - begin) * per, s.opt.normalize);
      out.labels.push_back(s.folder->label(idx));
      out.indices.push_back(idx);
    }
    return out;
  }

 private:
  static std::vector<size_t> all_indices(size_t n) {
    std::vector<size_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = i;
    return v;
  }

  struct State {
    std::shared_ptr<const ImageFolder> folder;
    std::vector<size_t> indices;
    LoaderOptions opt;
    LoaderPosition pos;
    std::vector<size_t> order;
    int64_t order_epoch = -1;
    bool order_valid = false;
    // worker state
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::thread> workers;
    std::map<int64_t, Batch> ready;
    int64_t next_produce = 0, consumed = 0;
    bool stopping = false, running = false;
    std::exception_ptr error;
  };

  void start() {
    State& s = *s_;
    if (!s.order_valid || s.order_epoch != s.pos.epoch) {
      s.order = epoch_order(s.pos.epoch);
      s.order_epoch = s.pos.epoch;
      s.order_valid = true;
    }
    s.ready.clear();
    s.error = nullptr;
    s.stopping = false;
    s.next_produce = s.consumed = s.pos.batch;
    const int64_t epoch = s.pos.epoch, nb = num_batches();
    for (int w = 0; w < s.opt.num_workers; ++w) {
      s.workers.emplace_back([this, &s, epoch, nb] {
        for (;;) {
          int64_t b;
          {
            std::unique_lock<std::mutex> lk(s.mu);
            s.cv.wait(lk, [&] { return s.stopping || s.error || s.next_produce >= nb || s.next_produce < s.consumed + s.opt.prefetch; });
            if (s.stopping || s.error || s.next_produce >= nb) return;
            b = s.next_produce++;
          }
          try {
            Batch batch = make_batch(epoch, b);
            std::lock_guard<std::mutex> g(s.mu);
            s.ready[b] = std::move(batch);
          } catch (...) {
            std::lock_guard<std::mutex> g(s.mu);
            if (!s.error) s.error = std::current_exception();
          }
          s.cv.notify_all();
        }
      });
    }
    s.running = true;
  }

  void stop() {
    State& s = *s_;
    {
      std::lock_guard<std::mutex> g(s.mu);
      s.stopping = true;
    }
    s.cv.notify_all();
    for (auto& t : s.workers) t.join();
    s.workers.clear();
    s.ready.clear();
    s.running = false;
    s.stopping = false;
  }

  std::unique_ptr<State> s_;
};

// Keras-like defaults for training augmentation: flips, +-15 degrees, 10% shifts and zoom.
inline AugmentOptions default_augment() {
  AugmentOptions a;
  a.horizontal_flip = true;
  a.rotation_range = 15;
  a.width_shift_range = 0.1;
  a.height_shift_range = 0.1;
  a.set_zoom_range(0.1);
  a.fill_mode = FillMode::Reflect;
  return a;
}

struct DirectoryOptions {
  int width = 150, height = 150;
  int64_t batch_size = 32;
  double validation_split = 0.2;  // stratified, seeded
  uint64_t seed = 42;
  int num_workers = 2;
  int prefetch = 4;
  bool augment = true;            // training loader only
  AugmentOptions aug = default_augment();
  Normalize normalize;
  bool cache = false;             // keep decoded uint8 images in memory
  ImageFolderOptions folder;
};

// Everything a training script needs from root/<class>/*.jpg.
struct DirectoryDataset {
  std::shared_ptr<ImageFolder> folder;
  Split split;
  DataLoader train;  // shuffled, augmented (if asked)
  DataLoader val;    // in order, resized only
  std::vector<float> class_weights;  // from the training split
  int num_classes() const { return folder->num_classes(); }
  const std::vector<std::string>& class_names() const { return folder->classes(); }
};

// One call: list + verify the folder, stratified validation split, training and validation loaders.
inline DirectoryDataset image_dataset_from_directory(const std::string& root, const DirectoryOptions& o = {}) {
  DirectoryDataset d;
  d.folder = std::make_shared<ImageFolder>(root, o.folder);
  if (o.cache) d.folder->enable_cache(true);
  d.split = stratified_split(d.folder->labels(), o.validation_split, o.seed);
  LoaderOptions lo;
  lo.width = o.width;
  lo.height = o.height;
  lo.batch_size = o.batch_size;
  lo.seed = o.seed;
  lo.num_workers = o.num_workers;
  lo.prefetch = o.prefetch;
  lo.normalize = o.normalize;
  lo.augment = o.augment;
  lo.aug = o.aug;
  lo.shuffle = true;
  d.train = DataLoader(d.folder, d.split.train, lo);
  lo.augment = false;
  lo.shuffle = false;
  d.val = DataLoader(d.folder, d.split.val, lo);
  d.class_weights = d.folder->class_weights(&d.split.train);
  return d;
}

}  // namespace data
}  // namespace tinycnn
