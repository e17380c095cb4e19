// libFuzzer target: tinycnn's own load-from-memory (header probe, limits, stb with the allocation
// budget, EXIF parsing and rotation). Any outcome but an image or a tinycnn::ImageError is a bug.
#include <cstddef>
#include <cstdint>
#include <tinycnn/data/decode.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tinycnn::data::DecodeLimits lim;
  lim.max_pixels = 4000000;  // keep each input fast; the logic is the same as with the defaults
  lim.max_file_bytes = 1 << 20;
  try {
    tinycnn::data::Image im = tinycnn::data::load_image_from_memory(data, size, "fuzz", lim);
    if (im.pixels.size() != static_cast<size_t>(im.width) * static_cast<size_t>(im.height) * 3) __builtin_trap();
  } catch (const tinycnn::ImageError&) {
  }
  (void)tinycnn::data::jpeg_exif_orientation(data, size);
  return 0;
}
