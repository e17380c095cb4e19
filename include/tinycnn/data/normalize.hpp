#pragma once
// uint8 HWC images -> float NCHW tensors: value = (pixel * rescale - mean[c]) / std[c].
// Defaults give pixel/255 in 0..1 (Keras' Rescaling(1/255)); ImageNet statistics are
// Normalize::imagenet().
#include <array>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "image.hpp"

namespace tinycnn {
namespace data {

struct Normalize {
  float rescale = 1.0f / 255.0f;
  std::array<float, 3> mean{{0.f, 0.f, 0.f}};
  std::array<float, 3> std{{1.f, 1.f, 1.f}};
  static Normalize imagenet() {
    Normalize n;
    n.mean = {{0.485f, 0.456f, 0.406f}};
    n.std = {{0.229f, 0.224f, 0.225f}};
    return n;
  }
};

// Writes one image as C planes of H*W floats at dst (a [3,H,W] slot of a batch tensor).
inline void image_to_chw(const Image& im, float* dst, const Normalize& n = {}) {
  const int C = im.channels;
  if (C > 3) throw ValueError("image_to_chw: at most 3 channels, got " + std::to_string(C));
  const size_t plane = static_cast<size_t>(im.width) * static_cast<size_t>(im.height);
  for (int c = 0; c < C; ++c) {
    const float a = n.rescale / n.std[static_cast<size_t>(c)];
    const float b = -n.mean[static_cast<size_t>(c)] / n.std[static_cast<size_t>(c)];
    float* out = dst + static_cast<size_t>(c) * plane;
    const uint8_t* src = im.pixels.data() + c;
    for (size_t i = 0; i < plane; ++i) out[i] = static_cast<float>(src[i * static_cast<size_t>(C)]) * a + b;
  }
}

// [1, C, H, W]
inline Tensor<float> to_tensor(const Image& im, const Normalize& n = {}) {
  Tensor<float> t = Tensor<float>::empty({1, im.channels, im.height, im.width});
  image_to_chw(im, t.data(), n);
  return t;
}

// [N, C, H, W]; all images must have the same size.
inline Tensor<float> to_tensor(const std::vector<Image>& ims, const Normalize& n = {}) {
  if (ims.empty()) throw ValueError("to_tensor: no images");
  const Image& f = ims.front();
  Tensor<float> t = Tensor<float>::empty({static_cast<int64_t>(ims.size()), f.channels, f.height, f.width});
  const size_t per = static_cast<size_t>(f.channels) * static_cast<size_t>(f.width) * static_cast<size_t>(f.height);
  for (size_t i = 0; i < ims.size(); ++i) {
    if (ims[i].width != f.width || ims[i].height != f.height || ims[i].channels != f.channels)
      throw ShapeError("to_tensor: image " + std::to_string(i) + " is " + std::to_string(ims[i].width) + "x" +
                       std::to_string(ims[i].height) + ", first is " + std::to_string(f.width) + "x" + std::to_string(f.height));
    image_to_chw(ims[i], t.data() + i * per, n);
  }
  return t;
}

}  // namespace data
}  // namespace tinycnn
