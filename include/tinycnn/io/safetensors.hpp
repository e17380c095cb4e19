#pragma once
// The safetensors container (https://github.com/huggingface/safetensors), read as hostile input.
//
// Layout: u64 little-endian N | N bytes of JSON header (UTF-8, padded with spaces) | data section.
// The header maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative
// to the data section) and may hold "__metadata__": {string: string}.
//
//   io::write_safetensors("w.safetensors", {io::to_record("dense/kernel", t)}, {{"k", "v"}});
//   io::SafetensorsFile f = io::read_safetensors("w.safetensors");
//   Tensor<float> t = io::from_record<float>(f.at("dense/kernel"));
//
// Reading checks everything before trusting it: a header-length cap, a JSON nesting cap, duplicate
// keys, known dtypes only, rank <= 8, every dimension and byte count with checked 64-bit arithmetic,
// byte size == dtype size x elements, offsets in range and exactly tiling the data section (no
// overlap, no gap, no trailing bytes). Every failure is a tinycnn::FormatError naming the file.
// Writing is atomic: an unnamed (O_TMPFILE) or temporary file in the target's directory, fsync,
// rename over the target, fsync of the directory; on failure nothing is left behind and the old
// file is untouched (an IOError naming the path).
//
// Needs nlohmann-json (TINYCNN_HAS_JSON). CRC-32 uses zlib when TINYCNN_HAS_ZLIB, else its own table
// (same polynomial, same values).
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

#ifdef TINYCNN_HAS_ZLIB
#include <zlib.h>
#endif

namespace tinycnn::io {

// One tensor of a safetensors file: raw little-endian bytes.
struct TensorRecord {
  std::string name;
  std::string dtype;  // "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL"
  Shape shape;
  std::vector<uint8_t> bytes;
};

// A tensor's description in the header; begin/end are byte offsets into the data section.
struct TensorInfo {
  std::string name;
  std::string dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;
  uint64_t nbytes() const { return end - begin; }
};

// A validated header. data_offset is where the data section starts in the file (8 + header length).
struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // sorted by data offset (file order)
  std::map<std::string, std::string> metadata;
  uint64_t header_bytes = 0;
  uint64_t data_offset = 0;
  uint64_t data_bytes = 0;
  const TensorInfo* find(const std::string& name) const {
    for (const auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
};

struct SafetensorsFile {
  std::vector<TensorRecord> tensors;  // in file order
  std::map<std::string, std::string> metadata;
  const TensorRecord* find(const std::string& name) const {
    for (const auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
  const TensorRecord& at(const std::string& name) const {
    if (const TensorRecord* r = find(name)) return *r;
    throw FormatError("safetensors: no tensor named '" + name + "'");
  }
};

// Caps applied to untrusted input.
struct ReadLimits {
  uint64_t max_header_bytes = uint64_t(16) << 20;  // 16 MiB
  uint64_t max_file_bytes = uint64_t(1) << 36;     // 64 GiB
  uint64_t max_tensors = 1u << 20;
  size_t max_rank = 8;
  uint64_t max_dim = uint64_t(1) << 40;
  int max_json_depth = 8;  // the header needs 3
};

// Element size of a safetensors dtype, 0 when unknown.
inline size_t dtype_size(const std::string& d) {
  static const std::map<std::string, size_t> sizes{
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I64", 8},
      {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U64", 8},  {"U32", 4},     {"U16", 2},     {"U8", 1}, {"BOOL", 1}};
  auto it = sizes.find(d);
  return it == sizes.end() ? 0 : it->second;
}

// ---- byte order and CRC-32 ----------------------------------------------------------------------
namespace detail {

inline bool host_is_little_endian() {
  const uint16_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}
// Copies n elements of `size` bytes, reversing each element's bytes on a big-endian host.
inline void copy_le(const void* src, void* dst, size_t n, size_t size) {
  if (n == 0) return;
  std::memcpy(dst, src, n * size);
  if (host_is_little_endian() || size == 1) return;
  auto* d = static_cast<unsigned char*>(dst);
  for (size_t i = 0; i < n; ++i) std::reverse(d + i * size, d + (i + 1) * size);
}
inline uint64_t load_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline void store_u64_le(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace detail

// CRC-32 (IEEE 802.3, as zlib's crc32 and Python's zlib.crc32), continuing from `crc`.
inline uint32_t crc32_update(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
#ifdef TINYCNN_HAS_ZLIB
  while (n > 0) {
    const uInt chunk = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    crc = static_cast<uint32_t>(::crc32(crc, p, chunk));
    p += chunk;
    n -= chunk;
  }
  return crc;
#else
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
#endif
}

// A tensor as the checksum sees it (name, dtype, shape, bytes).
struct TensorView {
  const std::string* name;
  const std::string* dtype;
  const Shape* shape;
  const uint8_t* bytes;
  uint64_t nbytes;
};

// The content checksum tinycnn stores in __metadata__[checksum_key]: "crc32:" + 8 lowercase hex
// digits of the CRC-32 of a canonical stream that covers every tensor (sorted by name: name, dtype,
// rank, dims, byte count as u64 LE, bytes) and every other metadata entry (sorted by key: key,
// value, each u64-length-prefixed). A change to any name, shape, value or metadata string changes it.
inline std::string content_checksum(std::vector<TensorView> tensors, const std::map<std::string, std::string>& metadata,
                                    const std::string& checksum_key) {
  std::sort(tensors.begin(), tensors.end(), [](const TensorView& a, const TensorView& b) { return *a.name < *b.name; });
  uint32_t crc = 0;
  auto put_u64 = [&crc](uint64_t v) {
    uint8_t b[8];
    detail::store_u64_le(b, v);
    crc = crc32_update(crc, b, 8);
  };
  auto put_str = [&](const std::string& s) {
    put_u64(s.size());
    crc = crc32_update(crc, s.data(), s.size());
  };
  put_str("tinycnn-checksum-v1");
  put_u64(tensors.size());
  for (const auto& t : tensors) {
    put_str(*t.name);
    put_str(*t.dtype);
    put_u64(t.shape->size());
    for (int64_t d : *t.shape) put_u64(static_cast<uint64_t>(d));
    put_u64(t.nbytes);
    crc = crc32_update(crc, t.bytes, static_cast<size_t>(t.nbytes));
  }
  for (const auto& kv : metadata) {
    if (kv.first == checksum_key) continue;
    put_str(kv.first);
    put_str(kv.second);
  }
  char hex[16];
  std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(crc));
  return std::string("crc32:") + hex;
}
inline std::string content_checksum(const std::vector<TensorRecord>& records,
                                    const std::map<std::string, std::string>& metadata,
                                    const std::string& checksum_key) {
  std::vector<TensorView> v;
  for (const auto& r : records) v.push_back({&r.name, &r.dtype, &r.shape, r.bytes.data(), r.bytes.size()});
  return content_checksum(std::move(v), metadata, checksum_key);
}

// ---- Tensor <-> record --------------------------------------------------------------------------
template <class T>
constexpr const char* dtype_of() {
  return std::is_same<T, float>::value ? "F32" : "F64";
}

template <class T>
TensorRecord to_record(const std::string& name, const Tensor<T>& device_tensor) {
  const Tensor<T> t = device_tensor.to(Device::CPU);  // a device tensor (model on the GPU) is copied back
  TensorRecord r;
  r.name = name;
  r.dtype = dtype_of<T>();
  r.shape = t.shape();
  r.bytes.resize(static_cast<size_t>(t.numel()) * sizeof(T));
  detail::copy_le(t.data(), r.bytes.data(), static_cast<size_t>(t.numel()), sizeof(T));
  return r;
}

// Decodes n little-endian elements of T into dst.
template <class T>
void decode_le(const uint8_t* src, T* dst, size_t n) {
  detail::copy_le(src, dst, n, sizeof(T));
}

// The record as a Tensor<T>; its dtype must be T's ("F32" for float, "F64" for double).
template <class T>
Tensor<T> from_record(const TensorRecord& r) {
  if (r.dtype != dtype_of<T>())
    throw FormatError("safetensors: tensor '" + r.name + "' has dtype " + r.dtype + ", expected " + dtype_of<T>());
  if (r.shape.size() > 8) throw FormatError("safetensors: tensor '" + r.name + "' has rank > 8");
  uint64_t n = 1;
  for (int64_t d : r.shape) {
    if (d < 0 || (d != 0 && n > (uint64_t(1) << 62) / static_cast<uint64_t>(d)))
      throw FormatError("safetensors: tensor '" + r.name + "' has a bad shape " + shape_str(r.shape));
    n *= static_cast<uint64_t>(d);
  }
  if (n > (uint64_t(1) << 62) / sizeof(T) || n * sizeof(T) != r.bytes.size())
    throw FormatError("safetensors: tensor '" + r.name + "' has " + std::to_string(r.bytes.size()) +
                      " bytes, its shape " + shape_str(r.shape) + " needs " + std::to_string(n * sizeof(T)));
  Tensor<T> t = Tensor<T>::empty(r.shape);
  decode_le(r.bytes.data(), t.data(), static_cast<size_t>(n));
  return t;
}

// ---- reading ------------------------------------------------------------------------------------
namespace detail {

[[noreturn]] inline void st_fail(const std::string& what, const std::string& why) {
  throw FormatError(what + ": " + why);
}

// Parses JSON text with a nesting cap and duplicate-key detection (both are silent in plain
// nlohmann::json::parse). `what` names the source in errors.
inline nlohmann::json parse_json_strict(const char* begin, const char* end, const std::string& what, int max_depth) {
  std::vector<std::set<std::string>> keys;  // one set per open object; arrays push an empty marker
  std::vector<bool> is_object;
  auto cb = [&](int, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) -> bool {
    using E = nlohmann::json::parse_event_t;
    switch (ev) {
      case E::object_start:
      case E::array_start:
        if (static_cast<int>(is_object.size()) >= max_depth)
          st_fail(what, "JSON nested deeper than " + std::to_string(max_depth) + " levels");
        is_object.push_back(ev == E::object_start);
        keys.emplace_back();
        break;
      case E::object_end:
      case E::array_end:
        if (!is_object.empty()) {
          is_object.pop_back();
          keys.pop_back();
        }
        break;
      case E::key:
        if (!keys.empty() && parsed.is_string() && !keys.back().insert(parsed.get_ref<const std::string&>()).second)
          st_fail(what, "duplicate JSON key '" + parsed.get<std::string>() + "'");
        break;
      default:
        break;
    }
    return true;
  };
  try {
    return nlohmann::json::parse(begin, end, cb, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const nlohmann::json::exception& e) {
    st_fail(what, std::string("invalid JSON: ") + e.what());
  }
}

inline uint64_t json_u64(const nlohmann::json& v, const std::string& what, const std::string& field) {
  if (!v.is_number_unsigned()) {
    if (v.is_number_integer()) st_fail(what, field + " is negative (" + v.dump() + ")");
    st_fail(what, field + " is not a non-negative integer (" + v.dump() + ")");
  }
  return v.get<uint64_t>();
}

}  // namespace detail

// Validates the header of a safetensors image of `size` bytes (only the first 8 + N are read; the
// data section is checked by size, not content). `what` names the source in error messages.
inline SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t size, const std::string& what,
                                                  const ReadLimits& lim = {}) {
  using detail::st_fail;
  if (size < 8)
    st_fail(what, "truncated: " + std::to_string(size) + " bytes, too short for the 8-byte header length");
  const uint64_t n = detail::load_u64_le(data);
  if (n > lim.max_header_bytes)
    st_fail(what, "header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(lim.max_header_bytes) +
                      " bytes");
  if (n > size - 8)
    st_fail(what, "header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size - 8) +
                      " bytes follow the length; truncated?)");
  if (n < 2) st_fail(what, "header length " + std::to_string(n) + " is too small for a JSON object");
  const char* h = reinterpret_cast<const char*>(data + 8);
  if (h[0] != '{') st_fail(what, "header does not start with '{'");
  // Only spaces may pad the JSON object (what the reference writer emits).
  uint64_t len = n;
  while (len > 0 && h[len - 1] == ' ') --len;
  if (len == 0 || h[len - 1] != '}') st_fail(what, "header does not end with '}' followed only by spaces");
  nlohmann::json j = detail::parse_json_strict(h, h + len, what + " header", lim.max_json_depth);
  if (!j.is_object()) st_fail(what, "header is not a JSON object");

  SafetensorsHeader out;
  out.header_bytes = n;
  out.data_offset = 8 + n;
  out.data_bytes = size - 8 - n;
  if (j.size() > lim.max_tensors + 1)
    st_fail(what, "header lists " + std::to_string(j.size()) + " entries, more than the limit of " +
                      std::to_string(lim.max_tensors));
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const nlohmann::json& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) st_fail(what, "__metadata__ is not a JSON object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) st_fail(what, "__metadata__ value '" + m.key() + "' is not a string");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string tw = "tensor '" + key + "'";
    if (key.empty()) st_fail(what, "a tensor has an empty name");
    if (!v.is_object()) st_fail(what, tw + ": entry is not a JSON object");
    for (auto f = v.begin(); f != v.end(); ++f)
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
        st_fail(what, tw + ": unknown field '" + f.key() + "'");
    if (!v.contains("dtype") || !v["dtype"].is_string()) st_fail(what, tw + ": missing or non-string dtype");
    if (!v.contains("shape") || !v["shape"].is_array()) st_fail(what, tw + ": missing or non-array shape");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      st_fail(what, tw + ": data_offsets must be an array [begin, end]");
    TensorInfo t;
    t.name = key;
    t.dtype = v["dtype"].get<std::string>();
    const size_t esize = dtype_size(t.dtype);
    if (esize == 0) st_fail(what, tw + ": unknown dtype '" + t.dtype + "'");
    const auto& sh = v["shape"];
    if (sh.size() > lim.max_rank)
      st_fail(what, tw + ": rank " + std::to_string(sh.size()) + " exceeds the limit of " + std::to_string(lim.max_rank));
    uint64_t elems = 1;
    for (const auto& d : sh) {
      const uint64_t dim = detail::json_u64(d, what, tw + ": shape dimension");
      if (dim > lim.max_dim)
        st_fail(what, tw + ": dimension " + std::to_string(dim) + " exceeds the limit of " + std::to_string(lim.max_dim));
      if (dim != 0 && elems > std::numeric_limits<uint64_t>::max() / dim)
        st_fail(what, tw + ": element count overflows 64 bits");
      elems *= dim;
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    if (elems > (uint64_t(1) << 62) / esize) st_fail(what, tw + ": byte size overflows (element count " + std::to_string(elems) + ")");
    const uint64_t bytes = elems * esize;
    t.begin = detail::json_u64(v["data_offsets"][0], what, tw + ": data_offsets begin");
    t.end = detail::json_u64(v["data_offsets"][1], what, tw + ": data_offsets end");
    if (t.begin > t.end) st_fail(what, tw + ": data_offsets begin " + std::to_string(t.begin) + " > end " + std::to_string(t.end));
    if (t.end > out.data_bytes)
      st_fail(what, tw + ": data_offsets end " + std::to_string(t.end) + " is past the data section (" +
                        std::to_string(out.data_bytes) + " bytes; truncated?)");
    if (t.end - t.begin != bytes)
      st_fail(what, tw + ": data_offsets span " + std::to_string(t.end - t.begin) + " bytes, but " + t.dtype + " " +
                        shape_str(t.shape) + " needs " + std::to_string(bytes));
    out.tensors.push_back(std::move(t));
  }
  std::sort(out.tensors.begin(), out.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  for (const auto& t : out.tensors) {
    if (t.begin < pos)
      st_fail(what, "tensor '" + t.name + "' overlaps the previous tensor (data_offsets [" + std::to_string(t.begin) +
                        ", " + std::to_string(t.end) + ") start before byte " + std::to_string(pos) + ")");
    if (t.begin > pos)
      st_fail(what, "gap in the data section: bytes [" + std::to_string(pos) + ", " + std::to_string(t.begin) +
                        ") belong to no tensor (before '" + t.name + "')");
    pos = t.end;
  }
  if (pos != out.data_bytes)
    st_fail(what, "trailing bytes: the tensors cover " + std::to_string(pos) + " of the " +
                      std::to_string(out.data_bytes) + " data bytes");
  return out;
}

inline SafetensorsFile read_safetensors_from_memory(const uint8_t* data, size_t size, const std::string& what,
                                                    const ReadLimits& lim = {}) {
  SafetensorsHeader h = parse_safetensors_header(data, size, what, lim);
  SafetensorsFile f;
  f.metadata = std::move(h.metadata);
  f.tensors.reserve(h.tensors.size());
  for (auto& t : h.tensors) {
    TensorRecord r;
    r.name = std::move(t.name);
    r.dtype = std::move(t.dtype);
    r.shape = std::move(t.shape);
    const uint8_t* p = data + h.data_offset + t.begin;
    r.bytes.assign(p, p + (t.end - t.begin));
    f.tensors.push_back(std::move(r));
  }
  return f;
}

// The whole file (a regular file of at most lim.max_file_bytes). IOError when it cannot be read.
inline std::vector<uint8_t> read_file_bytes(const std::string& path, const ReadLimits& lim = {}) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IOError("cannot open '" + path + "': " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st{};
  if (::fstat(fd, &st) != 0) throw IOError("cannot stat '" + path + "': " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw FormatError("'" + path + "': not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > lim.max_file_bytes)
    throw FormatError("'" + path + "': " + std::to_string(size) + " bytes exceeds the limit of " +
                      std::to_string(lim.max_file_bytes));
  std::vector<uint8_t> buf(static_cast<size_t>(size));
  size_t got = 0;
  while (got < buf.size()) {
    const ssize_t r = ::read(fd, buf.data() + got, std::min<size_t>(buf.size() - got, size_t(1) << 30));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw IOError("cannot read '" + path + "': " + std::strerror(errno));
    }
    if (r == 0) break;  // shrank while reading
    got += static_cast<size_t>(r);
  }
  buf.resize(got);
  return buf;
}

inline SafetensorsFile read_safetensors(const std::string& path, const ReadLimits& lim = {}) {
  const std::vector<uint8_t> buf = read_file_bytes(path, lim);
  return read_safetensors_from_memory(buf.data(), buf.size(), "safetensors file '" + path + "'", lim);
}

// ---- writing ------------------------------------------------------------------------------------
namespace detail {

// Test hook: called before each chunk is written with the bytes written so far; returning false
// makes the write fail as an I/O error would (tests use it to simulate a failure or a crash).
inline std::function<bool(uint64_t)>& write_hook() {
  static std::function<bool(uint64_t)> hook;
  return hook;
}

inline std::string dir_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Writes `parts` (pointer, size) to `path` atomically. Throws IOError naming the path.
inline void atomic_write(const std::string& path, const std::vector<std::pair<const uint8_t*, size_t>>& parts) {
  auto fail = [&path](const std::string& step, int err) -> void {
    throw IOError("cannot write '" + path + "': " + step + ": " + std::strerror(err));
  };
  const std::string dir = dir_of(path);
  std::string tmp;  // named temporary, if one exists on disk
  int fd = -1;
#ifdef O_TMPFILE
  fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);  // unnamed: vanishes if we die
#endif
  if (fd < 0) {
    const std::string base = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
    for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
      tmp = dir + "/." + base + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(attempt);
      fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
      const int e = errno;
      fail("cannot create a temporary file in '" + dir + "'", e);
    }
  }
  bool named = !tmp.empty();
  auto cleanup = [&]() {
    if (fd >= 0) ::close(fd);
    fd = -1;
    if (named) ::unlink(tmp.c_str());
  };
  try {
    uint64_t written = 0;
    for (const auto& part : parts) {
      size_t off = 0;
      while (off < part.second) {
        const size_t chunk = std::min<size_t>(part.second - off, size_t(1) << 20);
        if (write_hook() && !write_hook()(written)) fail("write", EIO);
        const ssize_t r = ::write(fd, part.first + off, chunk);
        if (r < 0) {
          if (errno == EINTR) continue;
          fail("write", errno);
        }
        off += static_cast<size_t>(r);
        written += static_cast<uint64_t>(r);
      }
    }
    if (::fsync(fd) != 0) fail("fsync", errno);
    if (!named) {
      // Give the unnamed file a name next to the target, then rename it over the target.
      const std::string proc = "/proc/self/fd/" + std::to_string(fd);
      const std::string base = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
      for (int attempt = 0; attempt < 100; ++attempt) {
        tmp = dir + "/." + base + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(attempt);
        if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) == 0) {
          named = true;
          break;
        }
        if (errno != EEXIST) fail("link the temporary file", errno);
      }
      if (!named) fail("link the temporary file", EEXIST);
    }
    if (::close(fd) != 0) {
      fd = -1;
      fail("close", errno);
    }
    fd = -1;
    if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename", errno);
    named = false;  // the temporary is now the target
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      const int r = ::fsync(dfd);
      const int e = errno;
      ::close(dfd);
      if (r != 0 && e != EINVAL) fail("fsync of the directory", e);
    }
  } catch (...) {
    cleanup();
    throw;
  }
}

}  // namespace detail

// The header JSON text (without the length prefix, padded with spaces to a multiple of 8 bytes so
// the data section is 8-byte aligned, as the reference implementation does). Records keep their order.
inline std::string safetensors_header(const std::vector<TensorRecord>& records,
                                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json j = nlohmann::json::object();
  if (!metadata.empty()) {
    nlohmann::json m = nlohmann::json::object();
    for (const auto& kv : metadata) m[kv.first] = kv.second;
    j["__metadata__"] = std::move(m);
  }
  uint64_t pos = 0;
  std::set<std::string> names;
  for (const auto& r : records) {
    if (r.name.empty() || r.name == "__metadata__") throw ValueError("write_safetensors: bad tensor name '" + r.name + "'");
    if (!names.insert(r.name).second) throw ValueError("write_safetensors: duplicate tensor name '" + r.name + "'");
    const size_t es = dtype_size(r.dtype);
    if (es == 0) throw ValueError("write_safetensors: tensor '" + r.name + "' has unknown dtype '" + r.dtype + "'");
    if (r.shape.size() > 8) throw ValueError("write_safetensors: tensor '" + r.name + "' has rank > 8");
    uint64_t n = 1;
    for (int64_t d : r.shape) {
      if (d < 0) throw ValueError("write_safetensors: tensor '" + r.name + "' has a negative dimension");
      n *= static_cast<uint64_t>(d);
    }
    if (n * es != r.bytes.size())
      throw ValueError("write_safetensors: tensor '" + r.name + "' has " + std::to_string(r.bytes.size()) +
                       " bytes for " + r.dtype + " " + shape_str(r.shape));
    nlohmann::json t;
    t["dtype"] = r.dtype;
    t["shape"] = r.shape;
    t["data_offsets"] = {pos, pos + r.bytes.size()};
    j[r.name] = std::move(t);
    pos += r.bytes.size();
  }
  std::string h = j.dump();
  h.append((8 - (8 + h.size()) % 8) % 8, ' ');
  return h;
}

// The whole file image in memory (what write_safetensors writes).
inline std::vector<uint8_t> safetensors_to_bytes(const std::vector<TensorRecord>& records,
                                                 const std::map<std::string, std::string>& metadata) {
  const std::string h = safetensors_header(records, metadata);
  std::vector<uint8_t> out(8);
  detail::store_u64_le(out.data(), h.size());
  out.insert(out.end(), h.begin(), h.end());
  for (const auto& r : records) out.insert(out.end(), r.bytes.begin(), r.bytes.end());
  return out;
}

inline void write_safetensors(const std::string& path, const std::vector<TensorRecord>& records,
                              const std::map<std::string, std::string>& metadata) {
  const std::string h = safetensors_header(records, metadata);
  uint8_t len[8];
  detail::store_u64_le(len, h.size());
  std::vector<std::pair<const uint8_t*, size_t>> parts{{len, 8}, {reinterpret_cast<const uint8_t*>(h.data()), h.size()}};
  for (const auto& r : records) parts.push_back({r.bytes.data(), r.bytes.size()});
  detail::atomic_write(path, parts);
}

}  // namespace tinycnn::io
