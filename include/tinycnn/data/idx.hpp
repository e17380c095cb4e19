#pragma once
// IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
//
//   auto train = tinycnn::data::load_fashion_mnist("/usr/share/datasets/fashion-mnist", true);
//   train.images   // Tensor<float> [60000, 1, 28, 28], values in 0..1
//   train.labels   // std::vector<int32_t>, 60000 entries in 0..9
//
// Files are untrusted input: the header is checked against the real payload size and every failure
// is a tinycnn::FormatError naming the file and what is wrong. `.gz` files need zlib
// (TINYCNN_HAS_ZLIB, defined by the CMake package when zlib is found); compression is detected from
// the gzip magic bytes, not from the file name.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

#ifdef TINYCNN_HAS_ZLIB
#include <zlib.h>
#endif

namespace tinycnn {
namespace data {

// One IDX array of unsigned bytes (type code 0x08, the only type MNIST-style data sets use).
struct IdxArray {
  std::vector<int64_t> dims;  // e.g. {60000, 28, 28} for images, {60000} for labels
  std::vector<uint8_t> data;  // row-major, product(dims) bytes
  int64_t count() const { return dims.empty() ? 0 : dims[0]; }
};

// Largest payload read_idx_file accepts (a corrupt header must not make us allocate gigabytes).
constexpr int64_t kIdxMaxBytes = int64_t(1) << 31;

namespace detail {

[[noreturn]] inline void idx_fail(const std::string& path, const std::string& why) {
  throw FormatError("IDX file '" + path + "': " + why);
}

// Reads the whole file, decompressing gzip when the magic bytes say so. At most max_bytes of
// (decompressed) data are kept; `over` is set when there was more.
inline std::vector<uint8_t> idx_read_bytes(const std::string& path, int64_t max_bytes, bool& over) {
  over = false;
  std::ifstream f(path, std::ios::binary);
  if (!f) idx_fail(path, "cannot open file");
  unsigned char magic[2] = {0, 0};
  f.read(reinterpret_cast<char*>(magic), 2);
  const bool gz = f.gcount() == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  f.close();
  std::vector<uint8_t> out;
  if (gz) {
#ifdef TINYCNN_HAS_ZLIB
    gzFile g = gzopen(path.c_str(), "rb");
    if (!g) idx_fail(path, "cannot open gzip stream");
    std::vector<uint8_t> buf(1 << 16);
    for (;;) {
      const int n = gzread(g, buf.data(), static_cast<unsigned>(buf.size()));
      if (n < 0) {
        int errnum = 0;
        const char* msg = gzerror(g, &errnum);
        std::string why = std::string("corrupt gzip data (") + (msg ? msg : "unknown") + ")";
        gzclose(g);
        idx_fail(path, why);
      }
      if (n == 0) break;
      if (static_cast<int64_t>(out.size()) + n > max_bytes) {
        over = true;
        out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(max_bytes - static_cast<int64_t>(out.size())));
        break;
      }
      out.insert(out.end(), buf.begin(), buf.begin() + n);
    }
    // gzread reports a truncated stream only at the end: check the close status too.
    int errnum = 0;
    gzerror(g, &errnum);
    const int rc = gzclose(g);
    if (!over && (errnum != Z_OK && errnum != Z_BUF_ERROR)) idx_fail(path, "corrupt gzip data");
    if (!over && rc == Z_BUF_ERROR) idx_fail(path, "truncated gzip data");
#else
    idx_fail(path, "gzip-compressed but tinycnn was built without zlib (install zlib1g-dev)");
#endif
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) idx_fail(path, "cannot open file");
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    in.seekg(0, std::ios::beg);
    if (size < 0) idx_fail(path, "cannot determine file size");
    const int64_t keep = std::min<int64_t>(static_cast<int64_t>(size), max_bytes);
    over = static_cast<int64_t>(size) > max_bytes;
    out.resize(static_cast<size_t>(keep));
    if (keep > 0) in.read(reinterpret_cast<char*>(out.data()), keep);
    if (in.gcount() != keep) idx_fail(path, "read error");
  }
  return out;
}

inline uint32_t idx_be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

}  // namespace detail

// Reads one IDX file of unsigned bytes. Throws FormatError (naming the file) when the file is
// missing, not IDX, of another element type, truncated, longer than its header says, or too large.
inline IdxArray read_idx_file(const std::string& path, int64_t max_bytes = kIdxMaxBytes) {
  bool over = false;
  // Header is at most 4 + 255*4 bytes; read at most header + max payload.
  const std::vector<uint8_t> raw = detail::idx_read_bytes(path, max_bytes + 4 + 255 * 4 + 1, over);
  if (raw.size() < 4) detail::idx_fail(path, "too short for an IDX header (" + std::to_string(raw.size()) + " bytes)");
  if (raw[0] != 0 || raw[1] != 0) detail::idx_fail(path, "not an IDX file (bad magic number)");
  if (raw[2] != 0x08)
    detail::idx_fail(path, "unsupported IDX element type 0x" + std::to_string(raw[2] >> 4) +
                               std::to_string(raw[2] & 15) + " (only unsigned byte, 0x08, is supported)");
  const int ndim = raw[3];
  if (ndim < 1) detail::idx_fail(path, "IDX header has no dimensions");
  const size_t header = 4 + 4 * static_cast<size_t>(ndim);
  if (raw.size() < header) detail::idx_fail(path, "truncated IDX header");
  IdxArray a;
  int64_t total = 1;
  for (int i = 0; i < ndim; ++i) {
    const int64_t d = detail::idx_be32(raw.data() + 4 + 4 * i);
    if (d != 0 && total > max_bytes / d)
      detail::idx_fail(path, "IDX header claims more than " + std::to_string(max_bytes) + " bytes");
    total *= d;
    a.dims.push_back(d);
  }
  const int64_t payload = static_cast<int64_t>(raw.size() - header);
  if (payload < total)
    detail::idx_fail(path, "truncated: header claims " + std::to_string(total) + " bytes of data, file has " +
                               std::to_string(payload));
  if (payload > total || over)
    detail::idx_fail(path, "trailing data: header claims " + std::to_string(total) + " bytes of data, file has more");
  a.data.assign(raw.begin() + static_cast<std::ptrdiff_t>(header), raw.end());
  return a;
}

// An image classification set from IDX files.
struct IdxDataset {
  Tensor<float> images;           // [N, 1, rows, cols], pixel/255 (undefined when only uint8 was asked for)
  std::vector<uint8_t> images_u8;  // N*rows*cols raw bytes (filled only with IdxPixels::Uint8 or Both)
  std::vector<int32_t> labels;    // N labels
  int64_t rows = 0, cols = 0;
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

enum class IdxPixels { Float01, Uint8, Both };

// Pairs an images file ([N, rows, cols]) with a labels file ([N]); checks that the counts match.
inline IdxDataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                                   IdxPixels pixels = IdxPixels::Float01) {
  IdxArray im = read_idx_file(images_path);
  IdxArray lb = read_idx_file(labels_path);
  if (im.dims.size() != 3) detail::idx_fail(images_path, "expected 3 dimensions [N, rows, cols], got " + std::to_string(im.dims.size()));
  if (lb.dims.size() != 1) detail::idx_fail(labels_path, "expected 1 dimension [N], got " + std::to_string(lb.dims.size()));
  if (im.dims[0] != lb.dims[0])
    detail::idx_fail(labels_path, std::to_string(lb.dims[0]) + " labels for " + std::to_string(im.dims[0]) +
                                      " images in '" + images_path + "'");
  IdxDataset ds;
  ds.rows = im.dims[1];
  ds.cols = im.dims[2];
  ds.labels.assign(lb.data.begin(), lb.data.end());
  if (pixels != IdxPixels::Uint8) {
    ds.images = Tensor<float>::empty({im.dims[0], 1, ds.rows, ds.cols});
    float* dst = ds.images.data();
    const int64_t n = static_cast<int64_t>(im.data.size());
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(im.data[static_cast<size_t>(i)]) * (1.0f / 255.0f);
  }
  if (pixels != IdxPixels::Float01) ds.images_u8 = std::move(im.data);
  return ds;
}

namespace detail {
inline std::string idx_pick(const std::string& dir, const std::string& stem) {
  const std::string base = dir.empty() ? stem : (dir.back() == '/' ? dir + stem : dir + "/" + stem);
  for (const std::string& cand : {base + ".gz", base}) {
    std::ifstream f(cand, std::ios::binary);
    if (f) return cand;
  }
  throw FormatError("IDX file '" + base + "[.gz]': not found");
}
}  // namespace detail

// MNIST-layout folder: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. Debian's
// dataset-fashion-mnist installs them in /usr/share/datasets/fashion-mnist.
inline IdxDataset load_mnist_layout(const std::string& dir, bool train, IdxPixels pixels = IdxPixels::Float01) {
  const std::string pre = train ? "train" : "t10k";
  return load_idx_dataset(detail::idx_pick(dir, pre + "-images-idx3-ubyte"),
                          detail::idx_pick(dir, pre + "-labels-idx1-ubyte"), pixels);
}
inline IdxDataset load_fashion_mnist(const std::string& dir, bool train, IdxPixels pixels = IdxPixels::Float01) {
  return load_mnist_layout(dir, train, pixels);
}
inline IdxDataset load_mnist(const std::string& dir, bool train, IdxPixels pixels = IdxPixels::Float01) {
  return load_mnist_layout(dir, train, pixels);
}

}  // namespace data
}  // namespace tinycnn
