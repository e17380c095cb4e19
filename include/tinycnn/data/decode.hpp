#pragma once
// Safe image decoding: JPEG, PNG and BMP through a private, restricted copy of stb_image.
//
//   tinycnn::data::Image im = tinycnn::data::load_image_file("photo.jpg");   // RGB, upright
//
// Every file is untrusted. Before decoding, the header is read (stbi_info) and the image refused when
// the file is over DecodeLimits::max_file_bytes, a side is outside 1..max_side or the area is over
// max_pixels; the decoder's allocations then go through a per-thread budget derived from the header,
// so a lying header cannot make it allocate more. GIF, PSD, TGA, HDR, PNM, PIC, WebP, TIFF, ...: an
// "unsupported format" error. Output is always 8-bit RGB (grayscale is replicated, alpha dropped,
// 16-bit PNG reduced to 8 bits). JPEG EXIF orientations 1-8 are applied (DecodeLimits::apply_exif).
//
// Every failure throws DecodeError (a tinycnn::ImageError) whose message names the file and the
// reason, and whose kind() tells the reasons apart.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "detail/stb.hpp"
#include "exif.hpp"
#include "image.hpp"

namespace tinycnn {
namespace data {

struct DecodeLimits {
  int64_t max_file_bytes = int64_t(64) << 20;  // 64 MiB
  int max_side = 16384;                        // each side must be in 1..max_side (stb is built with 16384)
  int64_t max_pixels = 100000000;              // 100 megapixels
  // Decoder working memory allowed per image, on top of what the header predicts (0: derived as
  // 16 bytes per pixel + 2x the file size + 16 MiB, enough for 16-bit RGBA PNG).
  int64_t max_decode_bytes = 0;
  bool apply_exif = true;          // turn JPEGs upright from their EXIF orientation
  bool allow_truncated_jpeg = false;  // stb fills the missing part grey; by default we refuse
};

enum class ImageErrorKind {
  NotAnImage,         // empty file or content that is not an image at all
  UnsupportedFormat,  // a real image format other than JPEG/PNG/BMP (GIF, PSD, TGA, ...)
  Truncated,          // a JPEG/PNG/BMP whose data ends early
  Corrupt,            // a JPEG/PNG/BMP the decoder rejects
  TooLarge,           // file, side, area or decoder memory over DecodeLimits
  IO                  // cannot open/read the file
};

inline const char* image_error_kind_name(ImageErrorKind k) {
  switch (k) {
    case ImageErrorKind::NotAnImage: return "not an image";
    case ImageErrorKind::UnsupportedFormat: return "unsupported format";
    case ImageErrorKind::Truncated: return "truncated";
    case ImageErrorKind::Corrupt: return "corrupt";
    case ImageErrorKind::TooLarge: return "too large";
    case ImageErrorKind::IO: return "cannot read";
  }
  return "error";
}

class DecodeError : public ImageError {
 public:
  DecodeError(ImageErrorKind kind, const std::string& name, const std::string& detail)
      : ImageError("image '" + name + "': " + image_error_kind_name(kind) + (detail.empty() ? "" : " (" + detail + ")")),
        kind_(kind) {}
  ImageErrorKind kind() const { return kind_; }

 private:
  ImageErrorKind kind_;
};

enum class ImageFormat { Unknown, JPEG, PNG, BMP, GIF, PSD, TGA, HDR, PNM, PIC, WEBP, TIFF, ICO };

inline const char* image_format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::JPEG: return "JPEG";
    case ImageFormat::PNG: return "PNG";
    case ImageFormat::BMP: return "BMP";
    case ImageFormat::GIF: return "GIF";
    case ImageFormat::PSD: return "PSD";
    case ImageFormat::TGA: return "TGA";
    case ImageFormat::HDR: return "HDR";
    case ImageFormat::PNM: return "PNM";
    case ImageFormat::PIC: return "PIC";
    case ImageFormat::WEBP: return "WebP";
    case ImageFormat::TIFF: return "TIFF";
    case ImageFormat::ICO: return "ICO";
    default: return "unknown";
  }
}

// Identifies the format from the first bytes (never from the file name).
inline ImageFormat sniff_image_format(const uint8_t* p, size_t n) {
  auto starts = [&](const char* m, size_t k) { return n >= k && std::memcmp(p, m, k) == 0; };
  if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return ImageFormat::JPEG;
  if (starts("\x89PNG\r\n\x1a\n", 8)) return ImageFormat::PNG;
  if (starts("BM", 2) && n >= 14) return ImageFormat::BMP;
  if (starts("GIF87a", 6) || starts("GIF89a", 6)) return ImageFormat::GIF;
  if (starts("8BPS", 4)) return ImageFormat::PSD;
  if (starts("#?RADIANCE", 10) || starts("#?RGBE", 6)) return ImageFormat::HDR;
  if (n >= 2 && p[0] == 'P' && p[1] >= '1' && p[1] <= '7') return ImageFormat::PNM;
  if (starts("\x53\x80\xF6\x34", 4)) return ImageFormat::PIC;
  if (n >= 12 && starts("RIFF", 4) && std::memcmp(p + 8, "WEBP", 4) == 0) return ImageFormat::WEBP;
  if (starts("II*\0", 4) || starts("MM\0*", 4)) return ImageFormat::TIFF;
  if (starts("\0\0\1\0", 4)) return ImageFormat::ICO;
  // TGA has no magic number: accept a plausible header (colour-map type 0/1, a known image type and
  // pixel depth), the same test stb uses.
  if (n >= 18 && p[1] <= 1 &&
      (p[2] == 1 || p[2] == 2 || p[2] == 3 || p[2] == 9 || p[2] == 10 || p[2] == 11) &&
      (p[16] == 8 || p[16] == 15 || p[16] == 16 || p[16] == 24 || p[16] == 32) && (p[12] | p[13]) && (p[14] | p[15]))
    return ImageFormat::TGA;
  return ImageFormat::Unknown;
}

// Header facts (no pixels decoded).
struct ImageInfo {
  ImageFormat format = ImageFormat::Unknown;
  int width = 0, height = 0;  // as stored (before EXIF rotation)
  int channels = 0;           // in the file (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA)
  bool is_16_bit = false;
  int exif_orientation = 1;
};

namespace detail {

// JPEG: the entropy-coded data never contains FF D9, so a file with no EOI marker after its first
// scan ended early. Markers are walked by their lengths, so an EXIF thumbnail's EOI is skipped.
inline bool jpeg_looks_truncated(const uint8_t* p, size_t n) {
  size_t pos = 2;
  while (pos + 4 <= n) {
    if (p[pos] != 0xFF) return false;  // malformed: let stb judge
    const uint8_t m = p[pos + 1];
    if (m == 0xFF) { ++pos; continue; }
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) { pos += 2; continue; }
    if (m == 0xD9) return false;
    const size_t len = (size_t(p[pos + 2]) << 8) | p[pos + 3];
    if (m == 0xDA) {
      for (size_t i = n; i-- > pos + 2;)
        if (p[i] == 0xD9 && p[i - 1] == 0xFF) return false;
      return true;
    }
    if (pos + 2 + len > n) return true;
    pos += 2 + len;
  }
  return true;
}

// Debian's stb_image 2.27 does not check that a JPEG Huffman table (DHT) has at most 256 symbols,
// and then writes past its tables (found by fuzz/fuzz_image_load.cpp; corpus file bad_dht.jpg).
// Every DHT segment, including those between progressive scans, is checked here first.
// Returns false when a DHT segment is malformed.
inline bool jpeg_dht_ok(const uint8_t* p, size_t n) {
  size_t pos = 2;
  while (pos + 4 <= n) {
    if (p[pos] != 0xFF) {  // entropy-coded data: skip to the next real marker
      ++pos;
      continue;
    }
    const uint8_t m = p[pos + 1];
    if (m == 0xFF || m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) { pos += (m == 0xFF) ? 1 : 2; continue; }
    if (m == 0xD9) return true;
    const size_t len = (size_t(p[pos + 2]) << 8) | p[pos + 3];
    if (len < 2) return false;
    if (m == 0xC4) {
      size_t q = pos + 4;
      const size_t end = std::min(n, pos + 2 + len);
      while (q < end) {
        if (q + 17 > end) return false;
        if ((p[q] >> 4) > 1 || (p[q] & 15) > 3) return false;
        size_t total = 0;
        for (int i = 1; i <= 16; ++i) total += p[q + static_cast<size_t>(i)];
        if (total > 256) return false;
        q += 17 + total;
      }
    }
    pos += 2 + len;
  }
  return true;
}

// PNG: stb 2.27 passes a null buffer to memcpy (undefined behaviour, found by the fuzzer; corpus file
// fuzz_empty_idat.png) when the first IDAT chunk is empty. Such files are refused. Returns false
// for that case; other chunk problems are left to stb.
inline bool png_chunks_ok(const uint8_t* p, size_t n) {
  size_t pos = 8;
  bool data = false;
  while (pos + 8 <= n) {
    const uint32_t len = (uint32_t(p[pos]) << 24) | (uint32_t(p[pos + 1]) << 16) | (uint32_t(p[pos + 2]) << 8) | p[pos + 3];
    const bool idat = std::memcmp(p + pos + 4, "IDAT", 4) == 0;
    if (idat && len == 0 && !data) return false;
    if (idat && len > 0) data = true;
    if (std::memcmp(p + pos + 4, "IEND", 4) == 0) return true;
    if (len > n) return true;  // truncated/corrupt: stb reports it
    pos += 12 + size_t(len);
  }
  return true;
}

// PNG: a file that does not contain its IEND chunk ended early.
inline bool png_looks_truncated(const uint8_t* p, size_t n) {
  if (n < 20) return true;
  for (size_t i = n - 8 + 1; i-- > 8;)
    if (std::memcmp(p + i, "IEND", 4) == 0) return false;
  return true;
}

// Width and height straight from a PNG/BMP/JPEG header, for a clear "too large" message when stb
// refuses a side over its 16384 limit. Returns false when the header is not readable.
inline bool header_dims(ImageFormat f, const uint8_t* p, size_t n, int64_t& w, int64_t& h) {
  auto be32 = [&](size_t o) { return (int64_t(p[o]) << 24) | (int64_t(p[o + 1]) << 16) | (int64_t(p[o + 2]) << 8) | p[o + 3]; };
  auto le32 = [&](size_t o) { return int64_t(int32_t(uint32_t(p[o]) | (uint32_t(p[o + 1]) << 8) | (uint32_t(p[o + 2]) << 16) | (uint32_t(p[o + 3]) << 24))); };
  if (f == ImageFormat::PNG && n >= 24 && std::memcmp(p + 12, "IHDR", 4) == 0) {
    w = be32(16);
    h = be32(20);
    return true;
  }
  if (f == ImageFormat::BMP && n >= 26) {
    w = le32(18);
    h = le32(22);
    if (h < 0) h = -h;
    return true;
  }
  if (f == ImageFormat::JPEG) {
    size_t pos = 2;
    while (pos + 4 <= n) {
      if (p[pos] != 0xFF) return false;
      const uint8_t m = p[pos + 1];
      if (m == 0xFF) { ++pos; continue; }
      if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) { pos += 2; continue; }
      const size_t len = (size_t(p[pos + 2]) << 8) | p[pos + 3];
      if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
        if (pos + 9 > n) return false;
        h = (int64_t(p[pos + 5]) << 8) | p[pos + 6];
        w = (int64_t(p[pos + 7]) << 8) | p[pos + 8];
        return true;
      }
      if (m == 0xDA || m == 0xD9) return false;
      pos += 2 + len;
    }
  }
  return false;
}

}  // namespace detail

// Reads the header and checks it against the limits without decoding pixels. Throws DecodeError.
inline ImageInfo probe_image_from_memory(const uint8_t* data, size_t size, const std::string& name = "<memory>",
                                         const DecodeLimits& lim = {}) {
  detail::StbAllocBudget& budget = detail::stb_budget();
  budget.reset(size_t(1) << 20);  // the header parsers need at most a few kB
  if (size == 0 || !data) throw DecodeError(ImageErrorKind::NotAnImage, name, "empty file (0 bytes)");
  if (static_cast<uint64_t>(size) > static_cast<uint64_t>(lim.max_file_bytes))
    throw DecodeError(ImageErrorKind::TooLarge, name,
                      "file is " + std::to_string(size) + " bytes, limit " + std::to_string(lim.max_file_bytes));
  ImageInfo info;
  info.format = sniff_image_format(data, size);
  switch (info.format) {
    case ImageFormat::JPEG: case ImageFormat::PNG: case ImageFormat::BMP: break;
    case ImageFormat::Unknown:
      throw DecodeError(ImageErrorKind::NotAnImage, name, "unrecognised content, expected JPEG, PNG or BMP");
    default:
      throw DecodeError(ImageErrorKind::UnsupportedFormat, name,
                        std::string(image_format_name(info.format)) + "; only JPEG, PNG and BMP are decoded");
  }
  if (size > static_cast<size_t>(INT32_MAX)) throw DecodeError(ImageErrorKind::TooLarge, name, "file over 2 GiB");
  const int len = static_cast<int>(size);
  // Before any stb call: stb's header parser already reads the Huffman tables.
  if (info.format == ImageFormat::JPEG && !detail::jpeg_dht_ok(data, size))
    throw DecodeError(ImageErrorKind::Corrupt, name, "JPEG Huffman table (DHT) is malformed");
  if (info.format == ImageFormat::PNG && !detail::png_chunks_ok(data, size))
    throw DecodeError(ImageErrorKind::Corrupt, name, "PNG image data starts with an empty IDAT chunk");
  int w = 0, h = 0, comp = 0;
  if (!detail::stb_info(data, len, &w, &h, &comp)) {
    const char* why = detail::stb_failure_reason();
    const std::string reason = why ? why : "unreadable header";
    int64_t hw = 0, hh = 0;
    if (detail::header_dims(info.format, data, size, hw, hh) && (hw > lim.max_side || hh > lim.max_side || hw > 16384 || hh > 16384))
      throw DecodeError(ImageErrorKind::TooLarge, name,
                        std::to_string(hw) + "x" + std::to_string(hh) + ", each side must be 1.." + std::to_string(std::min(lim.max_side, 16384)));
    const bool short_file = (info.format == ImageFormat::PNG && detail::png_looks_truncated(data, size)) ||
                            (info.format == ImageFormat::JPEG && detail::jpeg_looks_truncated(data, size)) ||
                            (info.format == ImageFormat::BMP && size < 54);
    throw DecodeError(short_file ? ImageErrorKind::Truncated : ImageErrorKind::Corrupt, name,
                      std::string(image_format_name(info.format)) + " header: " + reason);
  }
  info.width = w;
  info.height = h;
  info.channels = comp;
  if (w < 1 || h < 1 || w > lim.max_side || h > lim.max_side)
    throw DecodeError(ImageErrorKind::TooLarge, name,
                      std::to_string(w) + "x" + std::to_string(h) + ", each side must be 1.." + std::to_string(lim.max_side));
  if (int64_t(w) * int64_t(h) > lim.max_pixels)
    throw DecodeError(ImageErrorKind::TooLarge, name,
                      std::to_string(w) + "x" + std::to_string(h) + " is over " + std::to_string(lim.max_pixels) + " pixels");
  info.is_16_bit = info.format == ImageFormat::PNG && detail::stb_is_16_bit(data, len);
  if (info.format == ImageFormat::JPEG) {
    if (!lim.allow_truncated_jpeg && detail::jpeg_looks_truncated(data, size))
      throw DecodeError(ImageErrorKind::Truncated, name, "JPEG data ends before its end-of-image marker");
    info.exif_orientation = jpeg_exif_orientation(data, size);
  } else if (info.format == ImageFormat::PNG && detail::png_looks_truncated(data, size)) {
    throw DecodeError(ImageErrorKind::Truncated, name, "PNG has no IEND chunk");
  }
  return info;
}

// Decodes JPEG/PNG/BMP bytes to an upright 8-bit RGB image. `name` is used in error messages.
inline Image load_image_from_memory(const uint8_t* data, size_t size, const std::string& name = "<memory>",
                                    const DecodeLimits& lim = {}) {
  const ImageInfo info = probe_image_from_memory(data, size, name, lim);
  const int64_t px = int64_t(info.width) * int64_t(info.height);
  const int64_t allowed = lim.max_decode_bytes > 0 ? lim.max_decode_bytes
                                                   : px * 16 + 2 * static_cast<int64_t>(size) + (int64_t(16) << 20);
  detail::StbAllocBudget& budget = detail::stb_budget();
  budget.reset(static_cast<size_t>(allowed));
  int w = 0, h = 0, comp = 0;
  unsigned char* pix = detail::stb_load_8bit(data, static_cast<int>(size), &w, &h, &comp, 3);
  if (!pix) {
    const char* why = detail::stb_failure_reason();
    const std::string reason = why ? why : "decoder failed";
    if (budget.refused > 0)
      throw DecodeError(ImageErrorKind::TooLarge, name,
                        "decoder needs more than " + std::to_string(allowed) + " bytes of memory");
    // stb's messages for data that ends early
    const bool trunc = reason == "outofdata" || reason == "bad zlib header" || reason == "no IDAT" ||
                       reason == "not enough pixels" || reason == "unexpected end";
    throw DecodeError(trunc ? ImageErrorKind::Truncated : ImageErrorKind::Corrupt, name,
                      std::string(image_format_name(info.format)) + ": " + reason);
  }
  Image im;
  if (w != info.width || h != info.height) {
    detail::stb_free(pix);
    throw DecodeError(ImageErrorKind::Corrupt, name, "decoded size differs from the header");
  }
  im.width = w;
  im.height = h;
  im.channels = 3;
  im.pixels.assign(pix, pix + static_cast<size_t>(w) * static_cast<size_t>(h) * 3);
  detail::stb_free(pix);
  if (lim.apply_exif && info.exif_orientation > 1) im = apply_exif_orientation(im, info.exif_orientation);
  return im;
}

inline Image load_image_from_memory(const std::vector<uint8_t>& bytes, const std::string& name = "<memory>",
                                    const DecodeLimits& lim = {}) {
  return load_image_from_memory(bytes.data(), bytes.size(), name, lim);
}

// The calling thread's decoder memory counters for its last probe/decode (peak bytes, allocation
// count, refusals): lets tests check that a decompression bomb was refused without allocating pixels.
inline const detail::StbAllocBudget& last_decode_memory() { return detail::stb_budget(); }

// Reads a whole file (refusing it when over max_bytes without reading it). Throws DecodeError(IO/TooLarge).
inline std::vector<uint8_t> read_file_bytes(const std::string& path, int64_t max_bytes) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw DecodeError(ImageErrorKind::IO, path, "cannot open file");
  std::vector<uint8_t> buf;
  if (std::fseek(f, 0, SEEK_END) == 0) {
    const long sz = std::ftell(f);
    if (sz > max_bytes) {
      std::fclose(f);
      throw DecodeError(ImageErrorKind::TooLarge, path,
                        "file is " + std::to_string(sz) + " bytes, limit " + std::to_string(max_bytes));
    }
    if (sz > 0) buf.reserve(static_cast<size_t>(sz));
    std::fseek(f, 0, SEEK_SET);
  }
  unsigned char chunk[65536];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (static_cast<int64_t>(buf.size() + got) > max_bytes) {
      std::fclose(f);
      throw DecodeError(ImageErrorKind::TooLarge, path, "file is over " + std::to_string(max_bytes) + " bytes");
    }
    buf.insert(buf.end(), chunk, chunk + got);
  }
  const bool err = std::ferror(f) != 0;
  std::fclose(f);
  if (err) throw DecodeError(ImageErrorKind::IO, path, "read error");
  return buf;
}

inline Image load_image_file(const std::string& path, const DecodeLimits& lim = {}) {
  const std::vector<uint8_t> bytes = read_file_bytes(path, lim.max_file_bytes);
  return load_image_from_memory(bytes.data(), bytes.size(), path, lim);
}

inline ImageInfo probe_image_file(const std::string& path, const DecodeLimits& lim = {}) {
  const std::vector<uint8_t> bytes = read_file_bytes(path, lim.max_file_bytes);
  return probe_image_from_memory(bytes.data(), bytes.size(), path, lim);
}

}  // namespace data
}  // namespace tinycnn
