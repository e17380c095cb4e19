#pragma once
// intel_scenes train: image folder -> RUNDIR/model.safetensors (best by validation accuracy),
// RUNDIR/history.csv, RUNDIR/checkpoint.ckpt (for --resume) and RUNDIR/report.html.
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "cmd_evaluate.hpp"
#include "common.hpp"
#include "models.hpp"

namespace intel_scenes {

struct TrainArgs {
  std::string data;                 // root/<class>/*.jpg
  std::string val_dir;              // a separate validation folder (else a stratified split)
  double val_split = 0.15;
  std::string exclude_dir;          // files with the same <class>/<name> here are left out (the shipped sample)
  std::string model;                // a model name (make_model) ...
  std::string init;                 // ... or a model file to continue from (fine-tuning)
  std::string trainable_from;       // freeze the layers before this one; "all": everything trainable
  double bn_momentum = -1;          // >= 0: the moving-statistics momentum of every batch norm layer
  bool bn_recalibrate = false;      // after training: re-estimate BN statistics on unaugmented training photos
  int epochs = 20;
  int batch = 32;
  double lr = 1e-3;
  std::string augment = "keras";    // keras | strong | none
  std::string schedule = "constant";  // constant | cosine (per step, to lr/100)
  double label_smoothing = 0;       // softmax CE targets: (1 - e) * one-hot + e / classes
  int swa_from = 0;                 // >0: average the weights of epochs swa_from..epochs (1-based), then re-estimate BN
  bool multi_label = false;
  int threads = 0;
  uint64_t seed = 0;
  int64_t split_seed = -1;  // seed of the validation split; -1: --seed (so members of an ensemble share a split)
  std::string resume;               // RUNDIR of an interrupted run
  std::string out;                  // RUNDIR
  int input_size = 0;               // 0: the model's own
  int max_per_class = 0;            // > 0: at most this many images per class (quick runs, tests)
  bool cache = true;                // keep decoded images in memory
  int workers = 2;
  int verbose = 1;
  std::string device = "cpu";       // cpu | cuda (parse_device)
};

inline uint64_t split_seed_of(const TrainArgs& a) {
  return a.split_seed >= 0 ? static_cast<uint64_t>(a.split_seed) : a.seed;
}

struct TrainResult {
  double best_val_accuracy = 0;
  int best_epoch = -1;
  std::vector<std::string> classes;
  int64_t train_images = 0, val_images = 0;
  std::vector<std::string> val_files;  // the validation split's photos, in split order
  double val_macro_f1 = 0;          // of the best model (top-1 of its outputs against the first label)
  double seconds = 0, images_per_second = 0;
};

namespace detail {

// Adds multi-hot targets to the batches of a loader over representative files.
class MultiHotSource : public train::BatchSource {
 public:
  MultiHotSource(data::DataLoader& l, const std::unordered_map<size_t, std::vector<int32_t>>& labels, int K)
      : inner_(l), labels_(labels), K_(K) {}
  int64_t num_batches() const override { return inner_.num_batches(); }
  int64_t num_samples() const override { return inner_.num_samples(); }
  train::DataPosition position() const override { return inner_.position(); }
  void seek(train::DataPosition p) override { inner_.seek(p); }
  bool next(train::Batch& out) override {
    data::Batch b;
    if (!inner_.loader().next(b)) return false;
    out.x = std::move(b.images);
    out.labels.clear();
    out.targets = Tensor<float>({out.x.dim(0), K_});
    for (size_t i = 0; i < b.indices.size(); ++i)
      for (int32_t k : labels_.at(b.indices[i])) out.targets[static_cast<int64_t>(i) * K_ + k] = 1.f;
    return true;
  }

 private:
  train::LoaderSource inner_;
  const std::unordered_map<size_t, std::vector<int32_t>>& labels_;
  int K_;
};

// Saves the model whenever val_accuracy improves.
class SaveBest : public train::Callback<float> {
 public:
  SaveBest(std::string path, io::ModelInfo info) : path_(std::move(path)), info_(std::move(info)) {}
  std::string name() const override { return "SaveBest"; }
  void on_epoch_end(train::TrainContext<float>& ctx, int64_t epoch, train::Logs& logs) override {
    auto it = logs.find("val_accuracy");
    const double v = it == logs.end() ? logs["accuracy"] : it->second;
    if (best_epoch < 0 || v > best) {
      best = v;
      best_epoch = static_cast<int>(epoch);
      io::save_model(path_, *ctx.model, info_);
    }
  }
  nlohmann::json state() const override { return {{"best", best}, {"best_epoch", best_epoch}}; }
  void set_state(const nlohmann::json& j) override {
    best = j.value("best", 0.0);
    best_epoch = j.value("best_epoch", -1);
  }
  double best = 0;
  int best_epoch = -1;

 private:
  std::string path_;
  io::ModelInfo info_;
};

inline data::AugmentOptions augment_options(const std::string& a) {
  data::AugmentOptions o;
  if (a == "keras") {  // the studies' recipe: horizontal flip + zoom 0.8-1.2
    o.horizontal_flip = true;
    o.set_zoom_range(0.2);
    o.fill_mode = data::FillMode::Reflect;
  } else if (a == "strong") {
    o = data::default_augment();
    o.set_zoom_range(0.2);
    o.brightness_lo = 0.8;
    o.brightness_hi = 1.2;
    o.contrast_lo = 0.8;
    o.contrast_hi = 1.2;
  }
  return o;
}

// --init: a model file to continue training from. Its classes must be the data folder's, and its
// preprocessing (input size, rescale, mean) is kept so the weights see what they were trained on.
struct InitModel {
  std::unique_ptr<nn::Model<float>> model;
  int size = 0;
  PixelScaling px;
  std::string name;
};
inline std::string names_list(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s + "]";
}
inline InitModel load_init_model(const std::string& path, const std::vector<std::string>& classes, bool multi_label,
                                 int input_size) {
  io::LoadedModel lm = io::load_model(path);
  if (lm.info.class_names != classes)
    throw UsageError("--init: '" + path + "' was trained on the classes " + names_list(lm.info.class_names) +
                     ", the data folder has " + names_list(classes));
  if (lm.info.multi_label != multi_label)
    throw UsageError("--init: '" + path + "' is a " + (lm.info.multi_label ? "multi-label" : "single-label") +
                     " model; pass " + (lm.info.multi_label ? "--multi-label" : "no --multi-label") + " to continue it");
  const auto& pp = lm.info.preprocessing;
  const Shape in = lm.model->input_shape();  // [C, H, W]
  if (in.size() != 3 || in[0] != 3 || in[1] != in[2])
    throw UsageError("--init: '" + path + "' does not take square RGB images");
  InitModel r;
  r.size = static_cast<int>(in[1]);
  if (input_size > 0 && input_size != in[1]) {  // continue at another resolution, the weights shared
    try {
      lm.model = nn::with_input_shape(*lm.model, Shape{3, input_size, input_size});
    } catch (const Error& e) {
      throw UsageError("--input-size: '" + path + "' is built for " + std::to_string(in[1]) + " and cannot take " +
                       std::to_string(input_size) + " (" + e.what() + ")");
    }
    r.size = input_size;
  }
  r.px.rescale = pp.rescale;
  if (!pp.mean.empty()) {
    for (double m : pp.mean)
      if (m != pp.mean[0]) throw UsageError("--init: '" + path + "' has per-channel means; not supported here");
    r.px.mean = pp.mean[0];
  }
  if (!pp.std.empty()) throw UsageError("--init: '" + path + "' divides by a std; not supported here");
  auto it = lm.info.extras.find("model");
  r.name = it != lm.info.extras.end() ? it->second : "custom";
  r.model = std::move(lm.model);
  return r;
}

}  // namespace detail

inline void check_train_args(const TrainArgs& a) {
  if (a.data.empty()) throw UsageError("--data: required");
  (void)parse_device(a.device);  // a bad or unavailable --device fails before any data is read
  if (a.out.empty() && a.resume.empty()) throw UsageError("--out: required");
  if (a.model.empty() && a.init.empty()) throw UsageError("--model or --init: one is required");
  if (!a.model.empty() && !a.init.empty()) throw UsageError("--model and --init: give one, not both");
  if (a.init.empty() && !is_model_name(a.model))
    throw UsageError("--model: unknown model '" + a.model + "' (known: " + model_names_list() + ")");
  if (a.epochs < 1) throw UsageError("--epochs: must be >= 1");
  if (a.batch < 1) throw UsageError("--batch: must be >= 1");
  if (!(a.lr > 0)) throw UsageError("--lr: must be > 0");
  if (a.val_dir.empty() && !(a.val_split > 0 && a.val_split < 1)) throw UsageError("--val-split: must be in (0, 1)");
  if (a.augment != "keras" && a.augment != "strong" && a.augment != "none")
    throw UsageError("--augment: must be keras, strong or none, got '" + a.augment + "'");
  if (a.schedule != "constant" && a.schedule != "cosine") throw UsageError("--schedule: must be constant or cosine");
  if (!(a.label_smoothing >= 0 && a.label_smoothing < 1))
    throw UsageError("--label-smoothing: must be in [0, 1), got " + std::to_string(a.label_smoothing));
  if (a.swa_from < 0 || a.swa_from > a.epochs)
    throw UsageError("--swa-from: must be an epoch between 1 and --epochs (" + std::to_string(a.epochs) + "), got " +
                     std::to_string(a.swa_from));
  if (a.swa_from > 0 && !a.resume.empty())
    throw UsageError("--swa-from: cannot be combined with --resume (the running weight average is not checkpointed)");
  if (a.multi_label && a.label_smoothing > 0)
    throw UsageError("--label-smoothing: only for single-label (softmax) training, not with --multi-label");
}

inline TrainResult run_train(TrainArgs a, std::ostream& os) {
  check_train_args(a);
  if (a.out.empty()) a.out = a.resume;
  if (a.threads > 0) set_num_threads(a.threads);
  std::error_code ec;
  fs::create_directories(a.out, ec);
  if (!fs::is_directory(a.out)) throw IOError("--out: cannot create '" + a.out + "'");

  auto folder = std::make_shared<data::ImageFolder>(a.data);
  const int K = folder->num_classes();
  const auto& classes = folder->classes();

  // Samples to use: everything except --exclude's <class>/<file> names, at most max_per_class per class.
  std::vector<size_t> use = select_samples(*folder, a.exclude_dir, a.max_per_class);

  // Multi-label: one sample per distinct file content; its targets are every folder it is in.
  std::unordered_map<size_t, std::vector<int32_t>> multi;  // representative folder index -> classes
  if (a.multi_label) {
    std::map<std::pair<uint64_t, uintmax_t>, size_t> rep;
    std::vector<size_t> reps;
    for (size_t i : use) {
      const auto& s = folder->samples()[i];
      const auto key = std::make_pair(file_hash(s.path), fs::file_size(s.path, ec));
      auto it = rep.find(key);
      if (it == rep.end()) {
        rep[key] = i;
        reps.push_back(i);
        multi[i] = {s.label};
      } else {
        auto& l = multi[it->second];
        if (std::find(l.begin(), l.end(), s.label) == l.end()) l.push_back(s.label);
      }
    }
    use = reps;
  }

  // Validation: a separate folder (same classes) or a stratified split of `use`.
  std::vector<size_t> train_idx, val_idx;
  std::shared_ptr<data::ImageFolder> val_folder = folder;
  if (!a.val_dir.empty()) {
    data::ImageFolderOptions vo;
    vo.classes = classes;
    val_folder = std::make_shared<data::ImageFolder>(a.val_dir, vo);
    train_idx = use;
    for (size_t i = 0; i < val_folder->size(); ++i) val_idx.push_back(i);
  } else {
    val_idx = validation_part(*folder, use, a.val_split, split_seed_of(a), &train_idx);
  }
  if (train_idx.empty() || val_idx.empty()) throw ValueError("--data: not enough images for a training and a validation part");
  if (a.cache) {
    folder->enable_cache(true);
    if (val_folder != folder) val_folder->enable_cache(true);
  }

  std::unique_ptr<nn::Model<float>> model;
  int size = 0;
  PixelScaling px;
  if (!a.init.empty()) {
    detail::InitModel im = detail::load_init_model(a.init, classes, a.multi_label, a.input_size);
    model = std::move(im.model);
    size = im.size;
    px = im.px;
    a.model = im.name;
  } else {
    size = a.input_size > 0 ? a.input_size : model_input_size(a.model);
    const bool any_size = builds_at_any_size(a.model);
    if (!any_size && size != model_input_size(a.model) && a.model != "mobilenet_transfer")
      throw UsageError("--input-size: only resnet, resnet14 and mobilenet_transfer take another input size (" +
                       a.model + " is built for " + std::to_string(model_input_size(a.model)) + ")");
    model = make_model(a.model, K, a.seed, any_size ? size : 0);
    if (!any_size && size != model_input_size(a.model)) {
      model = nn::with_input_shape(*model, Shape{3, size, size});  // fully convolutional up to its pooling
    }
    px = model_pixel_scaling(a.model);
  }
  if (!a.trainable_from.empty()) {
    nn::freeze_all(*model);
    if (a.trainable_from == "all") {
      nn::unfreeze_all(*model);
    } else {
      try {
        nn::set_trainable_from(*model, a.trainable_from, true);
      } catch (const std::exception& e) {
        throw UsageError("--trainable-from: " + std::string(e.what()));
      }
    }
  }
  if (a.bn_recalibrate) {
    bool any = false;
    for (const auto& e : model->entries())
      any = any || (dynamic_cast<nn::BatchNormalization<float>*>(e.layer.get()) && e.layer->trainable());
    if (!any) throw UsageError("--bn-recalibrate: model " + a.model + " has no trainable BatchNormalization layer");
  }
  if (a.bn_momentum >= 0) {
    if (!(a.bn_momentum <= 1)) throw UsageError("--bn-momentum: must be in [0, 1], got " + std::to_string(a.bn_momentum));
    if (nn::set_batch_norm_momentum(*model, a.bn_momentum) == 0)
      throw UsageError("--bn-momentum: model " + a.model + " has no BatchNormalization layer");
  }
  data::LoaderOptions lo;
  lo.normalize.rescale = static_cast<float>(px.rescale);
  lo.normalize.mean = {{static_cast<float>(px.mean), static_cast<float>(px.mean), static_cast<float>(px.mean)}};
  lo.width = lo.height = size;
  lo.batch_size = a.batch;
  lo.seed = a.seed;
  lo.num_workers = a.workers;
  lo.augment = a.augment != "none";
  lo.aug = detail::augment_options(a.augment);
  data::DataLoader train_loader(folder, train_idx, lo);
  // Validation images go through the same single bilinear warp as the training batches (identity
  // parameters), so a model never sees differently resampled pixels at validation and inference
  // time than in training (the warp has no antialiasing pre-filter; resize_to has one). The model
  // file records it (extras "resize_sampling" = "warp") for evaluate/predict/sort.
  lo.augment = true;
  lo.aug = data::AugmentOptions{};
  lo.shuffle = false;
  data::DataLoader val_loader(val_folder, val_idx, lo);
  const data::LoaderOptions plain_lo = lo;  // unaugmented, in order: for --bn-recalibrate

  std::unique_ptr<train::BatchSource> train_src, val_src;
  std::unordered_map<size_t, std::vector<int32_t>> val_multi;
  if (a.multi_label) {
    if (!a.val_dir.empty()) {
      for (size_t i : val_idx) val_multi[i] = {val_folder->label(i)};
      val_src = std::make_unique<detail::MultiHotSource>(val_loader, val_multi, K);
    } else {
      val_src = std::make_unique<detail::MultiHotSource>(val_loader, multi, K);
    }
    train_src = std::make_unique<detail::MultiHotSource>(train_loader, multi, K);
  } else {
    train_src = std::make_unique<train::LoaderSource>(train_loader);
    val_src = std::make_unique<train::LoaderSource>(val_loader);
  }

  io::ModelInfo info;
  info.class_names = classes;
  info.preprocessing.rescale = px.rescale;
  if (px.mean != 0) info.preprocessing.mean = {px.mean, px.mean, px.mean};
  info.preprocessing.resize = "stretch";
  info.preprocessing.input_size = {size, size};
  info.multi_label = a.multi_label;
  info.extras["model"] = a.model;
  info.extras["trained_on"] = a.data;
  info.extras["augment"] = a.augment;
  info.extras["epochs"] = std::to_string(a.epochs);
  if (!a.init.empty()) info.extras["init"] = a.init;
  if (!a.trainable_from.empty()) info.extras["trainable_from"] = a.trainable_from;
  if (a.bn_momentum >= 0) info.extras["bn_momentum"] = std::to_string(a.bn_momentum);
  if (a.label_smoothing > 0) info.extras["label_smoothing"] = train::format_double(a.label_smoothing);
  info.extras["resize_sampling"] = "warp";

  const DeviceChoice dc = parse_device(a.device);
  model->to(dc.device);  // the optimizer below creates its state beside the parameters
  optim::Adam<float> opt(model->parameters(true), a.lr);
  train::FitOptions<float> fo;
  fo.epochs = a.epochs;
  fo.verbose = a.verbose;
  fo.out = &os;
  fo.validation = val_src.get();
  fo.loss = a.multi_label ? train::LossKind::BinaryCrossEntropy : train::LossKind::SoftmaxCrossEntropy;
  fo.label_smoothing = a.label_smoothing;
  fo.checkpoint_path = a.out + "/checkpoint.ckpt";
  fo.hyperparameters = {{"augment", a.augment}, {"schedule", a.schedule}, {"input_size", std::to_string(size)},
                        {"exclude", a.exclude_dir}, {"seed", std::to_string(a.seed)}, {"split_seed", std::to_string(split_seed_of(a))},
                        {"init", a.init}, {"trainable_from", a.trainable_from},
                        {"bn_momentum", a.bn_momentum >= 0 ? std::to_string(a.bn_momentum) : std::string("model's")}};
  if (!a.resume.empty()) {
    fo.resume_from = a.resume + "/checkpoint.ckpt";
    if (!fs::exists(fo.resume_from)) throw IOError("--resume: '" + fo.resume_from + "' does not exist");
  }
  const std::string model_path = a.out + "/model.safetensors";
  auto best = std::make_shared<detail::SaveBest>(model_path, info);
  fo.callbacks.push_back(best);
  fo.callbacks.push_back(std::make_shared<train::CSVLogger<float>>(a.out + "/history.csv", ',', !a.resume.empty()));
  std::shared_ptr<train::SWA<float>> swa;
  if (a.swa_from > 0) {
    swa = std::make_shared<train::SWA<float>>(*model, a.swa_from - 1);
    fo.callbacks.push_back(swa);
  }
  if (a.schedule == "cosine")
    fo.callbacks.push_back(std::make_shared<train::LearningRateScheduler<float>>(
        std::make_shared<optim::CosineDecay>(a.lr, int64_t(a.epochs) * train_src->num_batches(), a.lr / 100), true));

  os << "model " << a.model << " (" << train::thousands(train::count_params(*model).total) << " parameters), input "
     << size << "x" << size << ", " << K << " classes, " << train_idx.size() << " training / " << val_idx.size()
     << " validation " << (a.multi_label ? "photos (multi-label)" : "images") << ", device " << dc.description
     << "\n";
  const auto t0 = std::chrono::steady_clock::now();
  train::History h = train::fit(*model, opt, *train_src, fo);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (h.interrupted) throw std::runtime_error("interrupted: continue with --resume " + a.out);
  if (h.terminated_on_nan) throw std::runtime_error("training stopped: the loss became non-finite");

  TrainResult r;
  r.classes = classes;
  r.train_images = static_cast<int64_t>(train_idx.size());
  r.val_images = static_cast<int64_t>(val_idx.size());
  for (size_t i : val_idx) r.val_files.push_back(val_folder->samples()[i].path);
  r.seconds = secs;
  r.best_val_accuracy = best->best;
  r.best_epoch = best->best_epoch;
  double imgs = 0, tsec = 0;
  for (const auto& l : h.logs) {
    tsec += l.count("seconds") ? l.at("seconds") : 0;
    imgs += static_cast<double>(train_idx.size());
  }
  r.images_per_second = tsec > 0 ? imgs / tsec : 0;

  // --swa-from: the average of the last epochs' weights, its batch-norm statistics re-estimated on the
  // training photos without augmentation (no epoch's moving averages belong to the averaged weights);
  // kept when its validation accuracy is at least the best single epoch's.
  if (swa) {
    swa->apply();
    data::DataLoader plain_loader(folder, train_idx, plain_lo);
    train::LoaderSource plain(plain_loader);
    const int layers = train::update_batch_norm(*model, plain);
    train::EvalOptions eo;
    eo.loss = fo.loss;
    val_src->seek({0, 0});
    const double acc = train::evaluate(*model, *val_src, eo).at("accuracy");
    const bool keep = acc >= r.best_val_accuracy;
    os << "SWA: the mean of " << swa->count() << " epochs' weights (epochs " << a.swa_from << "-" << a.epochs << ")";
    if (layers > 0) os << ", batch-norm statistics of " << layers << " layers re-estimated";
    os << ": val accuracy " << fixed4(acc) << " (best single epoch " << fixed4(r.best_val_accuracy) << ", epoch "
       << r.best_epoch + 1 << ")" << (keep ? " (kept)" : " (not kept)") << "\n";
    if (keep) {
      io::ModelInfo si = info;
      si.extras["swa"] = "mean of epochs " + std::to_string(a.swa_from) + "-" + std::to_string(a.epochs) +
                         (layers > 0 ? ", batch norm re-estimated on unaugmented training images" : "");
      io::save_model(model_path, *model, si);
      r.best_val_accuracy = acc;
      r.best_epoch = a.epochs - 1;
    }
  }

  // --bn-recalibrate: the best model's batch-norm statistics re-estimated on the training photos
  // without augmentation (train::update_batch_norm); kept only when validation accuracy does not drop.
  if (a.bn_recalibrate) {
    io::LoadedModel bm = io::load_model(model_path);
    data::DataLoader plain_loader(folder, train_idx, plain_lo);
    train::LoaderSource plain(plain_loader);
    const int layers = train::update_batch_norm(*bm.model, plain);
    train::EvalOptions eo;
    eo.loss = fo.loss;
    val_src->seek({0, 0});
    const double after = train::evaluate(*bm.model, *val_src, eo).at("accuracy");
    const bool keep = after >= r.best_val_accuracy;
    os << "batch-norm statistics of " << layers << " layers re-estimated on " << train_idx.size()
       << " unaugmented training images: val accuracy " << fixed4(r.best_val_accuracy) << " -> " << fixed4(after)
       << (keep ? " (kept)" : " (not kept)") << "\n";
    if (keep) {
      bm.info.extras["bn_recalibrated"] = "training images, unaugmented";
      io::save_model(model_path, *bm.model, bm.info);
      r.best_val_accuracy = after;
    }
  }

  // Multi-label: per-class thresholds that maximise F1 on the validation data, with the best model.
  if (a.multi_label) {
    io::LoadedModel bm = io::load_model(model_path);
    Tensor<float> probs = train::predict(*bm.model, *val_src, true);
    Tensor<float> targets({probs.dim(0), K});
    val_src->seek({0, 0});
    train::Batch b;
    int64_t row = 0;
    while (val_src->next(b)) {
      std::copy(b.targets.data(), b.targets.data() + b.targets.numel(), targets.data() + row * K);
      row += b.size();
    }
    bm.info.thresholds = train::choose_thresholds(probs, targets);
    io::save_model(model_path, *bm.model, bm.info);
    os << "thresholds:";
    for (size_t k = 0; k < bm.info.thresholds.size(); ++k) os << " " << classes[k] << "=" << fixed4(bm.info.thresholds[k]);
    os << "\n";
  }

  os << "wrote " << model_path << " (epoch " << r.best_epoch + 1 << "), " << a.out << "/history.csv";
  // The best model on the validation data (macro F1, confusion matrix, mistakes for the report).
  ScenesModel best_model = load_scenes_model(model_path);
  std::vector<std::string> vpaths;
  std::vector<int32_t> vlabels;
  for (size_t i : val_idx) {
    vpaths.push_back(val_folder->samples()[i].path);
    vlabels.push_back(val_folder->label(i));
  }
  EvalResult er = evaluate_files(best_model, vpaths, vlabels, false);
  r.val_macro_f1 = er.macro_f1;
#ifdef INTEL_SCENES_HAVE_REPORT
  {
    ReportData rd;
    fill_report(rd, best_model, er);
    set_curves(rd, h);
    rd.config = {{"model", a.model},
                 {"data", a.data},
                 {"validation", a.val_dir.empty() ? "stratified split " + train::format_double(a.val_split) + " (seed " +
                                                        std::to_string(split_seed_of(a)) + ")"
                                                  : a.val_dir},
                 {"excluded", a.exclude_dir.empty() ? "-" : a.exclude_dir},
                 {"training / validation images", std::to_string(train_idx.size()) + " / " + std::to_string(val_idx.size())},
                 {"input", std::to_string(size) + "x" + std::to_string(size)},
                 {"epochs", std::to_string(a.epochs)},
                 {"batch", std::to_string(a.batch)},
                 {"optimizer", "Adam, lr " + train::format_double(a.lr) + ", " + a.schedule},
                 {"augment", a.augment},
                 {"multi-label", a.multi_label ? "yes" : "no"},
                 {"seed", std::to_string(a.seed)},
                 {"best epoch", std::to_string(r.best_epoch + 1)},
                 {"training time", train::format_double(secs) + " s"}};
    write_report(a.out + "/report.html", rd);
    os << ", " << a.out << "/report.html";
  }
#endif
  os << "\n";
  os << "training: " << fixed1(secs) << " s, " << fixed1(r.images_per_second)
     << " images/s; best model (epoch " << r.best_epoch + 1 << ") on the validation data: macro F1 " << fixed4(r.val_macro_f1) << "\n";
  os << "best val accuracy: " << fixed4(r.best_val_accuracy) << "\n";
  return r;
}

}  // namespace intel_scenes
