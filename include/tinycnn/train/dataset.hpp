#pragma once
// What fit()/evaluate()/predict() read batches from.
//
// BatchSource: batches of NCHW float images with integer labels (single-label) or multi-hot
// targets (multi-label). An epoch is num_batches() batches; seek({epoch, batch}) moves to batch
// `batch` of epoch `epoch`, and position() says which batch comes next — a checkpoint stores it,
// so a resumed run sees exactly the batches the interrupted run would have seen.
//
//   TensorDataset      in-memory tensors, seeded shuffling per epoch (the order of epoch e is a pure
//                      function of (seed, e), so seeking is free), batch size, drop_last, split().
//   LoaderSource       adapts data::DataLoader (data/loader.hpp: image folders, augmentation, workers).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/tensor.hpp"

#if __has_include("../data/loader.hpp")
#include "../data/loader.hpp"
#define TINYCNN_TRAIN_HAS_LOADER 1
#endif

namespace tinycnn::train {

struct Batch {
  Tensor<float> x;               // [n, C, H, W] (or [n, features])
  std::vector<int32_t> labels;   // n class indices (single-label); may be empty when targets are given
  Tensor<float> targets;         // [n, classes] multi-hot (multi-label); undefined for single-label data
  int64_t size() const { return x.defined() && x.rank() > 0 ? x.dim(0) : 0; }
};

struct DataPosition {
  int64_t epoch = 0;  // epoch of the next batch
  int64_t batch = 0;  // index of the next batch within it
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // Batches per epoch.
  virtual int64_t num_batches() const = 0;
  // Samples per epoch (for images/s and progress; -1 when unknown).
  virtual int64_t num_samples() const { return -1; }
  // The next batch of the current epoch; false at the end of the epoch.
  virtual bool next(Batch& out) = 0;
  virtual DataPosition position() const = 0;
  // The next next() returns batch p.batch of epoch p.epoch (0 <= p.batch <= num_batches()).
  virtual void seek(DataPosition p) = 0;
  void start_epoch(int64_t epoch) { seek({epoch, 0}); }
  // Keras' validation_split: (training part, validation part), the validation part being the last
  // `fraction` of the samples before any shuffling. Sources that cannot split throw.
  virtual std::pair<std::unique_ptr<BatchSource>, std::unique_ptr<BatchSource>> split(double /*fraction*/) const {
    throw ValueError("validation_split: this batch source cannot be split; pass a validation source instead");
  }
};

// In-memory samples: images [N, ...] with labels (N) and/or multi-hot targets [N, K].
class TensorDataset : public BatchSource {
 public:
  struct Options {
    int64_t batch_size = 32;
    bool shuffle = true;
    uint64_t seed = 0;
    bool drop_last = false;
  };
  TensorDataset(Tensor<float> images, std::vector<int32_t> labels, Options o, Tensor<float> targets = Tensor<float>())
      : x_(std::move(images)), labels_(std::move(labels)), targets_(std::move(targets)), o_(o) {
    if (x_.rank() < 2) throw_shape("TensorDataset", "images need a batch axis and at least one feature axis", x_.shape());
    const int64_t N = x_.dim(0);
    if (!labels_.empty() && static_cast<int64_t>(labels_.size()) != N)
      throw ValueError("TensorDataset: " + std::to_string(labels_.size()) + " labels for " + std::to_string(N) + " images");
    if (targets_.defined() && (targets_.rank() != 2 || targets_.dim(0) != N))
      throw_shape("TensorDataset", "targets must be [N, classes] for N images", targets_.shape(), x_.shape());
    if (labels_.empty() && !targets_.defined()) throw ValueError("TensorDataset: needs labels or targets");
    if (o_.batch_size < 1) throw ValueError("TensorDataset: batch_size must be >= 1");
    index_.resize(static_cast<size_t>(N));
    for (int64_t i = 0; i < N; ++i) index_[static_cast<size_t>(i)] = i;
  }
  TensorDataset(Tensor<float> images, std::vector<int32_t> labels, int64_t batch_size = 32, bool shuffle = true,
                uint64_t seed = 0)
      : TensorDataset(std::move(images), std::move(labels), Options{batch_size, shuffle, seed, false}) {}

  const Options& options() const { return o_; }
  int64_t num_samples() const override { return static_cast<int64_t>(index_.size()); }
  int64_t num_batches() const override {
    const int64_t n = num_samples(), b = o_.batch_size;
    return o_.drop_last ? n / b : (n + b - 1) / b;
  }
  DataPosition position() const override { return pos_; }
  void seek(DataPosition p) override {
    if (p.epoch < 0 || p.batch < 0 || p.batch > num_batches())
      throw ValueError("TensorDataset::seek: position (epoch " + std::to_string(p.epoch) + ", batch " + std::to_string(p.batch) +
                       ") outside the " + std::to_string(num_batches()) + " batches of an epoch");
    pos_ = p;
  }
  // The sample order of an epoch (indices into the images).
  std::vector<int64_t> epoch_order(int64_t epoch) const {
    std::vector<int64_t> order = index_;
    if (o_.shuffle) {
      Rng rng(mix(o_.seed, static_cast<uint64_t>(epoch)));
      for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
    }
    return order;
  }
  bool next(Batch& out) override {
    if (pos_.batch >= num_batches()) {
      pos_ = {pos_.epoch + 1, 0};
      return false;
    }
    if (order_epoch_ != pos_.epoch) {
      order_ = epoch_order(pos_.epoch);
      order_epoch_ = pos_.epoch;
    }
    const int64_t n = num_samples(), begin = pos_.batch * o_.batch_size, end = std::min(n, begin + o_.batch_size);
    const int64_t per = x_.numel() / x_.dim(0);
    Shape s = x_.shape();
    s[0] = end - begin;
    out.x = Tensor<float>::empty(s);
    out.labels.clear();
    out.targets = Tensor<float>();
    int64_t K = 0;
    if (targets_.defined()) {
      K = targets_.dim(1);
      out.targets = Tensor<float>::empty({end - begin, K});
    }
    for (int64_t j = begin; j < end; ++j) {
      const int64_t i = order_[static_cast<size_t>(j)];
      std::memcpy(out.x.data() + (j - begin) * per, x_.data() + i * per, static_cast<size_t>(per) * sizeof(float));
      if (!labels_.empty()) out.labels.push_back(labels_[static_cast<size_t>(i)]);
      if (K) std::memcpy(out.targets.data() + (j - begin) * K, targets_.data() + i * K, static_cast<size_t>(K) * sizeof(float));
    }
    ++pos_.batch;
    return true;
  }
  std::pair<std::unique_ptr<BatchSource>, std::unique_ptr<BatchSource>> split(double fraction) const override {
    if (!(fraction > 0 && fraction < 1)) throw ValueError("validation_split must be in (0, 1), got " + std::to_string(fraction));
    const int64_t n = num_samples();
    const int64_t nval = static_cast<int64_t>(static_cast<double>(n) * fraction);
    if (nval < 1 || nval >= n)
      throw ValueError("validation_split " + std::to_string(fraction) + " of " + std::to_string(n) + " samples leaves an empty part");
    auto tr = std::make_unique<TensorDataset>(*this);
    auto va = std::make_unique<TensorDataset>(*this);
    tr->index_.assign(index_.begin(), index_.end() - nval);
    va->index_.assign(index_.end() - nval, index_.end());
    va->o_.shuffle = false;
    va->o_.drop_last = false;
    tr->pos_ = va->pos_ = {};
    tr->order_epoch_ = va->order_epoch_ = -1;
    return {std::move(tr), std::move(va)};
  }

 private:
  static uint64_t mix(uint64_t seed, uint64_t epoch) {
    auto sm = [](uint64_t x) {
      x += 0x9E3779B97F4A7C15ull;
      x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
      x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
      return x ^ (x >> 31);
    };
    return sm(sm(seed) ^ (epoch * 0xD6E8FEB86659FD93ull + 0x7472616E));
  }

  Tensor<float> x_;
  std::vector<int32_t> labels_;
  Tensor<float> targets_;
  Options o_;
  std::vector<int64_t> index_;  // the samples this dataset covers (a split covers a part)
  DataPosition pos_;
  std::vector<int64_t> order_;
  int64_t order_epoch_ = -1;
};

#ifdef TINYCNN_TRAIN_HAS_LOADER
// A data::DataLoader as a BatchSource (the loader is borrowed; it must outlive the adapter). Its
// (epoch, batch) position and per-epoch seeded order make resumed runs see the same batches.
class LoaderSource : public BatchSource {
 public:
  explicit LoaderSource(data::DataLoader& loader) : l_(&loader) {}
  int64_t num_batches() const override { return l_->num_batches(); }
  int64_t num_samples() const override {
    return l_->options().drop_last ? l_->num_batches() * l_->options().batch_size : l_->size();
  }
  bool next(Batch& out) override {
    data::Batch b;
    if (!l_->next(b)) return false;
    out.x = std::move(b.images);
    out.labels = std::move(b.labels);
    out.targets = Tensor<float>();
    return true;
  }
  DataPosition position() const override {
    const data::LoaderPosition p = l_->position();
    return {p.epoch, p.batch};
  }
  void seek(DataPosition p) override {
    const data::LoaderPosition cur = l_->position();
    if (cur.epoch == p.epoch && cur.batch == p.batch) return;  // keep prefetched batches
    l_->seek(data::LoaderPosition{p.epoch, p.batch});
  }
  data::DataLoader& loader() { return *l_; }

 private:
  data::DataLoader* l_;
};
#endif

}  // namespace tinycnn::train
