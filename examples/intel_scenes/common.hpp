#pragma once
// Shared pieces of the intel_scenes commands: errors with exit codes, where the shipped model and
// sample live, preprocessing from a model file, image listing.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <ostream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <tinycnn/tinycnn.hpp>

// The photo archiver, the HTML report and Grad-CAM live in their own headers; the commands use
// them when they are present.
#if __has_include("sorter.hpp") && !defined(INTEL_SCENES_NO_SORTER)
#include "sorter.hpp"
#define INTEL_SCENES_HAVE_SORTER 1
#endif
#if __has_include("gradcam.hpp") && !defined(INTEL_SCENES_NO_GRADCAM)
#include "gradcam.hpp"
#define INTEL_SCENES_HAVE_GRADCAM 1
#endif
#if __has_include("report.hpp") && defined(INTEL_SCENES_HAVE_GRADCAM) && defined(TINYCNN_HAS_JSON)
#include "report.hpp"
#define INTEL_SCENES_HAVE_REPORT 1
#endif

#ifndef INTEL_SCENES_DIR
#define INTEL_SCENES_DIR "examples/intel_scenes"
#endif

namespace intel_scenes {

using namespace tinycnn;
namespace fs = std::filesystem;

// A usage error (bad argument value, missing argument): exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Where the example's shipped files are (the source folder, baked in at build time; the
// INTEL_SCENES_DIR environment variable overrides it for relocated installs).
inline std::string scenes_dir() {
  if (const char* e = std::getenv("INTEL_SCENES_DIR"); e && *e) return e;
  return INTEL_SCENES_DIR;
}
inline std::string default_model_path() { return scenes_dir() + "/pretrained/scenes.safetensors"; }
inline std::string sample_dir() { return scenes_dir() + "/sample"; }

// --device cpu|cuda for train and bench. "cuda" needs a build that links tinycnn::cuda
// (-DTINYCNN_USE_CUDA=ON) and a usable GPU; each missing piece is a UsageError that says which.
// The description names the device the command then prints ("cuda: NVIDIA H100 ... (sm_90, ...)").
struct DeviceChoice {
  Device device = Device::CPU;
  std::string description = "cpu";
};
inline DeviceChoice parse_device(const std::string& name) {
  DeviceChoice d;
  if (name == "cpu") {
    // The kernels' instruction set too (TINYCNN_MAX_ISA can cap it), so timings say what they ran.
    d.description = "cpu (" + std::to_string(get_num_threads()) + " threads, " + kernels::cpu::cpu_isa_name() + ")";
    return d;
  }
  if (name != "cuda") throw UsageError("--device: must be cpu or cuda, got '" + name + "'");
#ifdef TINYCNN_HAS_CUDA
  if (!cuda::available()) throw UsageError("--device cuda: no usable GPU (" + cuda::unavailable_reason() + ")");
  d.device = Device::CUDA;
  d.description = "cuda: " + cuda::device_description(0);
  return d;
#else
  throw UsageError("--device cuda: this intel_scenes was built without CUDA kernels (configure with "
                   "-DTINYCNN_USE_CUDA=ON; docs/cuda.md)");
#endif
}
// Waits for queued device work (kernels run asynchronously on a GPU), so timings are honest.
inline void sync_device(Device d) {
#ifdef TINYCNN_HAS_CUDA
  if (d == Device::CUDA) cuda::synchronize();
#else
  (void)d;
#endif
}

inline std::string fixed4(double v) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(4) << v;
  return o.str();
}

inline std::string fixed1(double v) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(1) << v;
  return o.str();
}

inline data::ResizeMode resize_mode_of(const std::string& s) {
  if (s == "center_crop") return data::ResizeMode::CenterCrop;
  if (s == "pad") return data::ResizeMode::Pad;
  return data::ResizeMode::Stretch;
}

inline data::Normalize normalize_of(const io::Preprocessing& p) {
  data::Normalize n;
  n.rescale = static_cast<float>(p.rescale);
  for (size_t c = 0; c < 3; ++c) {
    if (p.mean.size() == 3) n.mean[c] = static_cast<float>(p.mean[c]);
    else if (p.mean.size() == 1) n.mean[c] = static_cast<float>(p.mean[0]);
    if (p.std.size() == 3) n.std[c] = static_cast<float>(p.std[c]);
    else if (p.std.size() == 1) n.std[c] = static_cast<float>(p.std[0]);
  }
  return n;
}

// A loaded model file with what the commands need to feed it.
struct ScenesModel {
  std::string path;
  io::LoadedModel m;
  int height = 0, width = 0;
  data::Normalize normalize;
  data::ResizeMode resize = data::ResizeMode::Stretch;
  // "warp": resize with the augmentation's single bilinear warp (no antialiasing pre-filter), as the
  // training batches were made; "area" (default): the data pipeline's antialiased resize_to.
  std::string sampling = "area";
  nn::Model<float>& model() { return *m.model; }
  const std::vector<std::string>& classes() const { return m.info.class_names; }
  bool multi_label() const { return m.info.multi_label; }
  std::string class_name(size_t k) const { return k < classes().size() ? classes()[k] : "class" + std::to_string(k); }
};

// Loads a model file (empty path: the shipped model). Errors name the file.
inline ScenesModel load_scenes_model(std::string path) {
  if (path.empty()) path = default_model_path();
  std::error_code ec;
  if (!fs::exists(path, ec)) throw IOError("model file '" + path + "' does not exist");
  ScenesModel s;
  s.path = path;
  try {
    s.m = io::load_model(path);
  } catch (const Error& e) {
    const std::string w = e.what();
    throw IOError(w.find(path) == std::string::npos ? "model file '" + path + "': " + w : w);
  }
  const Shape in = s.m.model->input_shape();
  if (in.size() != 3 || in[0] != 3)
    throw IOError("model file '" + path + "': the model does not take [3, H, W] images");
  s.height = static_cast<int>(in[1]);
  s.width = static_cast<int>(in[2]);
  s.normalize = normalize_of(s.m.info.preprocessing);
  s.resize = resize_mode_of(s.m.info.preprocessing.resize);
  auto it = s.m.info.extras.find("resize_sampling");
  if (it != s.m.info.extras.end() && it->second == "warp") s.sampling = "warp";
  s.m.model->eval();
  return s;
}

// A decoded image as the model sees it: resized to its input, RGB.
inline data::Image model_view(const data::Image& im, const ScenesModel& s) {
  data::Image px;
  if (s.sampling == "warp" && s.resize == data::ResizeMode::Stretch) {
    Rng rng(0);  // identity augmentation: draws nothing
    px = data::augment(im, s.width, s.height, data::AugmentOptions{}, rng);
  } else {
    px = data::resize_to(im, s.width, s.height, s.resize);
  }
  if (px.channels == 1) {  // grey -> RGB
    data::Image rgb(px.width, px.height, 3);
    for (size_t i = 0; i < px.pixels.size(); ++i)
      for (int c = 0; c < 3; ++c) rgb.pixels[i * 3 + static_cast<size_t>(c)] = px.pixels[i];
    px = std::move(rgb);
  }
  return px;
}

// One decoded image as a [3, H, W] slot of a batch (optionally mirrored).
inline void image_into(const data::Image& im, const ScenesModel& s, float* dst, bool flip = false) {
  data::Image px = model_view(im, s);
  if (flip) {
    for (int y = 0; y < px.height; ++y) {
      uint8_t* r = px.row(y);
      for (int x = 0; x < px.width / 2; ++x)
        for (int c = 0; c < px.channels; ++c)
          std::swap(r[x * px.channels + c], r[(px.width - 1 - x) * px.channels + c]);
    }
  }
  data::image_to_chw(px, dst, s.normalize);
}

// Probabilities [N, K] for decoded images (softmax, or sigmoid for a multi-label model); with tta
// the average over the image and its horizontal mirror.
inline Tensor<float> predict_images(ScenesModel& s, const std::vector<const data::Image*>& ims, bool tta = false,
                                    int64_t batch = 32) {
  const int64_t N = static_cast<int64_t>(ims.size());
  const size_t per = size_t(3) * static_cast<size_t>(s.height) * static_cast<size_t>(s.width);
  Tensor<float> out;
  for (int pass = 0; pass < (tta ? 2 : 1); ++pass) {
    Tensor<float> x = Tensor<float>::empty({N, 3, s.height, s.width});
    for (int64_t i = 0; i < N; ++i) image_into(*ims[static_cast<size_t>(i)], s, x.data() + static_cast<size_t>(i) * per, pass == 1);
    Tensor<float> p = train::predict(s.model(), x, batch, s.multi_label());
    if (pass == 0) out = p;
    else
      for (int64_t i = 0; i < out.numel(); ++i) out[i] = 0.5f * (out[i] + p[i]);
  }
  return out;
}

// Image files under a folder (recursively, sorted), or the path itself when it is a file.
inline std::vector<std::string> list_images(const std::string& path) {
  std::vector<std::string> files;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return {path};
  if (!fs::is_directory(path, ec)) throw IOError("'" + path + "' does not exist");
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec) && data::ImageFolder::has_image_extension(it->path().filename().string()))
      files.push_back(it->path().string());
  std::sort(files.begin(), files.end());
  return files;
}

// The folder indices training uses: all samples except those whose <class>/<file name> exists under
// exclude_dir, at most max_per_class (> 0) per class, in folder order.
inline std::vector<size_t> select_samples(const data::ImageFolder& folder, const std::string& exclude_dir, int max_per_class) {
  std::error_code ec;
  const auto& classes = folder.classes();
  std::set<std::string> excluded;
  if (!exclude_dir.empty()) {
    if (!fs::is_directory(exclude_dir, ec)) throw IOError("--exclude: '" + exclude_dir + "' is not a directory");
    for (const auto& c : classes) {
      const fs::path d = fs::path(exclude_dir) / c;
      if (fs::is_directory(d, ec))
        for (const auto& e : fs::directory_iterator(d, ec)) excluded.insert(c + "/" + e.path().filename().string());
    }
  }
  std::vector<size_t> use;
  std::vector<int> per_class(classes.size(), 0);
  for (size_t i = 0; i < folder.size(); ++i) {
    const auto& smp = folder.samples()[i];
    const size_t c = static_cast<size_t>(smp.label);
    if (excluded.count(classes[c] + "/" + fs::path(smp.path).filename().string())) continue;
    if (max_per_class > 0 && per_class[c] >= max_per_class) continue;
    ++per_class[c];
    use.push_back(i);
  }
  return use;
}

// The validation part of train's stratified split of `use` (same function, same seed).
inline std::vector<size_t> validation_part(const data::ImageFolder& folder, const std::vector<size_t>& use, double fraction,
                                           uint64_t seed, std::vector<size_t>* train_part = nullptr) {
  std::vector<int32_t> labels;
  for (size_t i : use) labels.push_back(folder.label(i));
  const data::Split sp = data::stratified_split(labels, fraction, seed);
  std::vector<size_t> val;
  for (size_t j : sp.val) val.push_back(use[j]);
  if (train_part)
    for (size_t j : sp.train) train_part->push_back(use[j]);
  return val;
}

// FNV-1a 64 of a file's bytes (groups identical copies of a photo across class folders).
inline uint64_t file_hash(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IOError("cannot read '" + path + "'");
  uint64_t h = 1469598103934665603ull;
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof buf);
    for (std::streamsize i = 0; i < in.gcount(); ++i) h = (h ^ static_cast<uint8_t>(buf[i])) * 1099511628211ull;
  }
  return h;
}

inline void print_confusion(std::ostream& os, const train::ConfusionMatrix& cm, const std::vector<std::string>& names) {
  size_t w = 6;
  for (const auto& n : names) w = std::max(w, n.size() + 1);
  os << "confusion matrix (rows: true, columns: predicted):\n" << std::setw(static_cast<int>(w)) << "";
  for (const auto& n : names) os << std::setw(static_cast<int>(w)) << n;
  os << "\n";
  const int64_t K = cm.num_classes();
  for (int64_t t = 0; t < K; ++t) {
    os << std::setw(static_cast<int>(w)) << names[static_cast<size_t>(t)];
    for (int64_t p = 0; p < K; ++p) os << std::setw(static_cast<int>(w)) << cm.at(static_cast<int32_t>(t), static_cast<int32_t>(p));
    os << "\n";
  }
}

}  // namespace intel_scenes
