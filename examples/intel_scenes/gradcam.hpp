#pragma once
// Grad-CAM (Selvaraju et al. 2017): where a CNN looked when it scored a class.
//
//   GradCam g = grad_cam(model, x);                  // x: [1, C, H, W] as the model takes it
//   data::Image over = overlay_cam(image, g.cam, g.width, g.height);   // jet heat map on the photo
//   write_png("out.png", over);  std::string uri = png_data_uri(over); // file / inline <img src=...>
//
// Computed through autograd: the model runs layer by layer (Sequential or Graph), the output of the
// last Conv2D/DepthwiseConv2D layer (or a named one) becomes a leaf A that requires grad, the target
// class' logit is back-propagated to it, the channel weights are the spatial means of dlogit/dA,
// cam = ReLU(sum_c w_c A_c), bilinearly upsampled to the input size and divided by its maximum, so it
// lies in [0, 1] with 1 at the strongest evidence (all zeros when nothing speaks for the class). The model runs in inference mode and
// its parameters collect no gradient; both are restored afterwards.
//
// PNG output is written here without a library: zlib's compress2 when tinycnn found zlib
// (TINYCNN_HAS_ZLIB), else stored (uncompressed) deflate blocks; CRC-32 and Adler-32 are our own.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#ifdef TINYCNN_HAS_ZLIB
#include <zlib.h>
#endif

#include <tinycnn/autograd/variable.hpp>
#include <tinycnn/core/error.hpp>
#include <tinycnn/data/image.hpp>
#include <tinycnn/nn/model.hpp>

namespace intel_scenes {

struct GradCam {
  std::vector<float> cam;  // height * width values in [0, 1], row-major, at the model input's size
  int width = 0, height = 0;
  int target_class = -1;       // the class explained (the arg-max when none was asked for)
  std::vector<float> logits;   // the model's outputs for this input
  std::string layer;           // the convolution layer used
  int map_width = 0, map_height = 0;  // that layer's spatial size (before upsampling)
};

namespace detail {

// The node a model returns: the last layer for Sequential; for Graph (which keeps it private) the
// single unconsumed layer of the output shape, else the last layer (as io/model_file.hpp decides).
template <class T>
int model_output_id(const tinycnn::nn::Model<T>& m) {
  const auto& es = m.entries();
  if (es.empty()) return -1;
  if (m.type() == "Sequential") return static_cast<int>(es.size()) - 1;
  std::vector<bool> consumed(es.size(), false);
  for (const auto& e : es)
    for (int id : e.inputs)
      if (id >= 0) consumed[static_cast<size_t>(id)] = true;
  std::vector<int> sinks;
  for (size_t i = 0; i < es.size(); ++i)
    if (!consumed[i] && es[i].output_shape == m.output_shape()) sinks.push_back(static_cast<int>(i));
  return sinks.size() == 1 ? sinks[0] : static_cast<int>(es.size()) - 1;
}

// Restores the model's mode and its parameters' requires_grad flags.
template <class T>
struct ModelStateGuard {
  tinycnn::nn::Model<T>& m;
  bool was_training;
  std::vector<std::pair<tinycnn::Var<T>, bool>> params;
  explicit ModelStateGuard(tinycnn::nn::Model<T>& model) : m(model), was_training(model.is_training()) {
    for (auto& p : m.parameters()) {
      params.push_back({p.second, p.second.requires_grad()});
      p.second.set_requires_grad(false);
    }
    m.eval();
  }
  ~ModelStateGuard() {
    for (auto& p : params) p.first.set_requires_grad(p.second);
    if (was_training) m.train();
  }
  ModelStateGuard(const ModelStateGuard&) = delete;
  ModelStateGuard& operator=(const ModelStateGuard&) = delete;
};

}  // namespace detail

// Bilinear resampling of a one-channel map (pixel centres aligned, edges clamped).
inline std::vector<float> resize_map(const std::vector<float>& src, int sw, int sh, int dw, int dh) {
  if (sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0 || src.size() != static_cast<size_t>(sw) * static_cast<size_t>(sh))
    throw tinycnn::ValueError("resize_map: bad sizes");
  std::vector<float> out(static_cast<size_t>(dw) * static_cast<size_t>(dh));
  for (int y = 0; y < dh; ++y) {
    const double fy = std::clamp((y + 0.5) * sh / dh - 0.5, 0.0, double(sh - 1));
    const int y0 = static_cast<int>(fy), y1 = std::min(y0 + 1, sh - 1);
    const double ty = fy - y0;
    for (int x = 0; x < dw; ++x) {
      const double fx = std::clamp((x + 0.5) * sw / dw - 0.5, 0.0, double(sw - 1));
      const int x0 = static_cast<int>(fx), x1 = std::min(x0 + 1, sw - 1);
      const double tx = fx - x0;
      auto at = [&](int yy, int xx) { return double(src[static_cast<size_t>(yy) * static_cast<size_t>(sw) + static_cast<size_t>(xx)]); };
      const double v = (1 - ty) * ((1 - tx) * at(y0, x0) + tx * at(y0, x1)) + ty * ((1 - tx) * at(y1, x0) + tx * at(y1, x1));
      out[static_cast<size_t>(y) * static_cast<size_t>(dw) + static_cast<size_t>(x)] = static_cast<float>(v);
    }
  }
  return out;
}

// Grad-CAM of one input [1, C, H, W] for target_class (-1: the highest-scoring class), on the layer
// named `layer` ("": the last Conv2D/DepthwiseConv2D). Throws ValueError when the model has no such
// layer or its output does not depend on it. The model must output logits (tinycnn's convention);
// a trailing Softmax/Sigmoid layer is skipped so that its input logits are explained.
template <class T>
GradCam grad_cam(tinycnn::nn::Model<T>& model, const tinycnn::Tensor<T>& input, int target_class = -1,
                 const std::string& layer = "") {
  using tinycnn::Var;
  if (input.rank() != 4 || input.dim(0) != 1) tinycnn::throw_shape("grad_cam", "input must be one image [1, C, H, W]", input.shape());
  if (!model.built()) model.build(tinycnn::Shape(input.shape().begin() + 1, input.shape().end()));
  const auto& es = model.entries();
  int out_id = detail::model_output_id(model);
  if (out_id >= 0 && (es[static_cast<size_t>(out_id)].layer->type() == "Softmax" || es[static_cast<size_t>(out_id)].layer->type() == "Sigmoid") &&
      es[static_cast<size_t>(out_id)].inputs.size() == 1)
    out_id = es[static_cast<size_t>(out_id)].inputs[0];
  int conv = -1;
  for (int i = 0; i <= out_id; ++i) {
    const std::string t = es[static_cast<size_t>(i)].layer->type();
    if (layer.empty() ? (t == "Conv2D" || t == "DepthwiseConv2D") : es[static_cast<size_t>(i)].layer->name() == layer) conv = i;
  }
  if (conv < 0)
    throw tinycnn::ValueError(layer.empty() ? "grad_cam: the model has no Conv2D/DepthwiseConv2D layer"
                                            : "grad_cam: no layer named '" + layer + "' before the output");
  const tinycnn::Shape& cs = es[static_cast<size_t>(conv)].output_shape;
  if (cs.size() != 3) tinycnn::throw_shape("grad_cam", "layer '" + es[static_cast<size_t>(conv)].layer->name() + "' output is not [C, H, W]", cs);

  detail::ModelStateGuard<T> guard(model);
  std::vector<Var<T>> vals(es.size());
  Var<T> x(input);
  Var<T> A;
  {
    tinycnn::NoGradGuard ng;  // nothing before the explained layer needs a gradient
    for (int i = 0; i <= conv; ++i) {
      std::vector<Var<T>> in;
      for (int id : es[static_cast<size_t>(i)].inputs) in.push_back(id < 0 ? x : vals[static_cast<size_t>(id)]);
      vals[static_cast<size_t>(i)] = es[static_cast<size_t>(i)].layer->forward(in);
    }
  }
  A = Var<T>(vals[static_cast<size_t>(conv)].value(), true);  // the leaf whose gradient we want
  vals[static_cast<size_t>(conv)] = A;
  for (int i = conv + 1; i <= out_id; ++i) {
    std::vector<Var<T>> in;
    for (int id : es[static_cast<size_t>(i)].inputs) in.push_back(id < 0 ? x : vals[static_cast<size_t>(id)]);
    vals[static_cast<size_t>(i)] = es[static_cast<size_t>(i)].layer->forward(in);
  }
  Var<T> out = vals[static_cast<size_t>(out_id)];
  if (out.value().rank() != 2 || out.value().dim(0) != 1) tinycnn::throw_shape("grad_cam", "the model output must be [1, classes]", out.shape());
  const int K = static_cast<int>(out.value().dim(1));
  GradCam g;
  for (int k = 0; k < K; ++k) g.logits.push_back(static_cast<float>(out.value()[k]));
  if (target_class < 0) target_class = static_cast<int>(std::max_element(g.logits.begin(), g.logits.end()) - g.logits.begin());
  if (target_class >= K)
    throw tinycnn::ValueError("grad_cam: class " + std::to_string(target_class) + " of a model with " + std::to_string(K) + " outputs");
  g.target_class = target_class;
  g.layer = es[static_cast<size_t>(conv)].layer->name();
  if (!out.requires_grad()) throw tinycnn::ValueError("grad_cam: the output does not depend on layer '" + g.layer + "'");
  tinycnn::Tensor<T> seed(out.shape());
  seed[target_class] = T(1);
  out.backward(seed);
  const tinycnn::Tensor<T>& grad = A.grad();
  const tinycnn::Tensor<T>& act = A.value();
  const int C = static_cast<int>(cs[0]), h = static_cast<int>(cs[1]), w = static_cast<int>(cs[2]);
  const size_t plane = static_cast<size_t>(h) * static_cast<size_t>(w);
  std::vector<double> map(plane, 0.0);
  if (grad.defined()) {
    for (int c = 0; c < C; ++c) {
      const T* gc = grad.data() + static_cast<size_t>(c) * plane;
      const T* ac = act.data() + static_cast<size_t>(c) * plane;
      double wc = 0;
      for (size_t i = 0; i < plane; ++i) wc += double(gc[i]);
      wc /= double(plane);
      for (size_t i = 0; i < plane; ++i) map[i] += wc * double(ac[i]);
    }
  }
  std::vector<float> coarse(plane);
  for (size_t i = 0; i < plane; ++i) coarse[i] = static_cast<float>(std::max(0.0, map[i]));
  g.map_width = w;
  g.map_height = h;
  g.height = static_cast<int>(input.dim(2));
  g.width = static_cast<int>(input.dim(3));
  g.cam = resize_map(coarse, w, h, g.width, g.height);
  const float mx = *std::max_element(g.cam.begin(), g.cam.end());  // >= 0 after the ReLU
  for (float& v : g.cam) v = mx > 1e-20f ? std::clamp(v / mx, 0.0f, 1.0f) : 0.0f;
  return g;
}

// Jet-like colour map: 0 blue, 0.5 green-yellow, 1 red.
inline void jet(float t, uint8_t rgb[3]) {
  t = std::clamp(t, 0.0f, 1.0f);
  auto ch = [](float v) { return static_cast<uint8_t>(std::lround(255.0f * std::clamp(v, 0.0f, 1.0f))); };
  rgb[0] = ch(1.5f - std::fabs(4.0f * t - 3.0f));
  rgb[1] = ch(1.5f - std::fabs(4.0f * t - 2.0f));
  rgb[2] = ch(1.5f - std::fabs(4.0f * t - 1.0f));
}

// The CAM (cam_w x cam_h, values in [0, 1]) as a jet heat map blended over the image:
// out = (1 - alpha) * image + alpha * jet(cam), so the photo stays visible everywhere. The CAM is
// bilinearly resized to the image when the sizes differ.
inline tinycnn::data::Image overlay_cam(const tinycnn::data::Image& image, const std::vector<float>& cam, int cam_w, int cam_h,
                                        float alpha = 0.45f) {
  if (image.empty() || image.channels != 3) throw tinycnn::ValueError("overlay_cam: needs an RGB image");
  const std::vector<float> m =
      (cam_w == image.width && cam_h == image.height) ? cam : resize_map(cam, cam_w, cam_h, image.width, image.height);
  if (m.size() != static_cast<size_t>(image.width) * static_cast<size_t>(image.height))
    throw tinycnn::ValueError("overlay_cam: the map has " + std::to_string(m.size()) + " values");
  tinycnn::data::Image out(image.width, image.height, 3);
  for (size_t i = 0; i < m.size(); ++i) {
    uint8_t c[3];
    jet(m[i], c);
    for (size_t k = 0; k < 3; ++k)
      out.pixels[3 * i + k] = static_cast<uint8_t>(std::lround((1.0f - alpha) * image.pixels[3 * i + k] + alpha * c[k]));
  }
  return out;
}
inline tinycnn::data::Image overlay_cam(const tinycnn::data::Image& image, const GradCam& g, float alpha = 0.45f) {
  return overlay_cam(image, g.cam, g.width, g.height, alpha);
}

// ---- PNG ---------------------------------------------------------------------------------------
namespace detail {
inline uint32_t crc32_update(uint32_t crc, const uint8_t* p, size_t n) {
  static uint32_t table[256];
  static bool init = [] {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    return true;
  }();
  (void)init;
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}
inline void put_be32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
}
inline void png_chunk(std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& data) {
  put_be32(out, static_cast<uint32_t>(data.size()));
  const size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  put_be32(out, crc32_update(0, out.data() + start, out.size() - start));
}
// zlib stream of `raw`: compressed with zlib when available, else stored blocks.
inline std::vector<uint8_t> zlib_stream(const std::vector<uint8_t>& raw) {
#ifdef TINYCNN_HAS_ZLIB
  uLongf len = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> zc(len);
  if (compress2(zc.data(), &len, raw.data(), static_cast<uLong>(raw.size()), 6) == Z_OK) {
    zc.resize(len);
    return zc;
  }
#endif
  std::vector<uint8_t> z{0x78, 0x01};
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(65535, raw.size() - pos);
    z.push_back(pos + n == raw.size() ? 1 : 0);  // BFINAL, BTYPE = stored
    z.push_back(static_cast<uint8_t>(n));
    z.push_back(static_cast<uint8_t>(n >> 8));
    z.push_back(static_cast<uint8_t>(~n));
    z.push_back(static_cast<uint8_t>(~n >> 8));
    z.insert(z.end(), raw.begin() + static_cast<std::ptrdiff_t>(pos), raw.begin() + static_cast<std::ptrdiff_t>(pos + n));
    pos += n;
  } while (pos < raw.size());
  uint32_t a = 1, b = 0;  // Adler-32
  for (uint8_t c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  put_be32(z, (b << 16) | a);
  return z;
}
}  // namespace detail

// An 8-bit RGB (or gray, RGBA) image as PNG bytes.
inline std::vector<uint8_t> encode_png(const tinycnn::data::Image& im) {
  if (im.width <= 0 || im.height <= 0 || im.channels < 1 || im.channels > 4 ||
      im.pixels.size() != static_cast<size_t>(im.width) * static_cast<size_t>(im.height) * static_cast<size_t>(im.channels))
    throw tinycnn::ValueError("encode_png: bad image");
  static const uint8_t color_type[5] = {0, 0, 4, 2, 6};
  std::vector<uint8_t> raw;
  raw.reserve((im.row_bytes() + 1) * static_cast<size_t>(im.height));
  for (int y = 0; y < im.height; ++y) {
    raw.push_back(0);  // filter: none
    raw.insert(raw.end(), im.row(y), im.row(y) + im.row_bytes());
  }
  std::vector<uint8_t> out{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> ihdr;
  detail::put_be32(ihdr, static_cast<uint32_t>(im.width));
  detail::put_be32(ihdr, static_cast<uint32_t>(im.height));
  ihdr.insert(ihdr.end(), {8, color_type[im.channels], 0, 0, 0});
  detail::png_chunk(out, "IHDR", ihdr);
  detail::png_chunk(out, "IDAT", detail::zlib_stream(raw));
  detail::png_chunk(out, "IEND", {});
  return out;
}

// Writes bytes to `path` atomically: a temporary file beside it, then rename.
inline void write_file_atomic(const std::string& path, const void* data, size_t n) {
  const std::string tmp = path + ".tmp." + std::to_string(static_cast<long>(::getpid()));
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw tinycnn::IOError("cannot create '" + tmp + "'");
  const bool ok = std::fwrite(data, 1, n, f) == n && std::fflush(f) == 0;
  if (std::fclose(f) != 0 || !ok) {
    std::remove(tmp.c_str());
    throw tinycnn::IOError("writing '" + tmp + "' failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw tinycnn::IOError("cannot rename '" + tmp + "' to '" + path + "': " + ec.message());
  }
}

inline void write_png(const std::string& path, const tinycnn::data::Image& im) {
  const std::vector<uint8_t> png = encode_png(im);
  write_file_atomic(path, png.data(), png.size());
}

inline std::string base64(const std::vector<uint8_t>& in) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = uint32_t(in[i]) << 16 | uint32_t(in[i + 1]) << 8 | in[i + 2];
    for (int s = 18; s >= 0; s -= 6) out += tbl[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint32_t(in[i]) << 16;
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = uint32_t(in[i]) << 16 | uint32_t(in[i + 1]) << 8;
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// "data:image/png;base64,..." for an <img src> in a self-contained HTML page.
inline std::string png_data_uri(const tinycnn::data::Image& im) { return "data:image/png;base64," + base64(encode_png(im)); }

}  // namespace intel_scenes
