#pragma once
// RAII wrappers over the HDF5 C library used by the Keras .h5 importer (io/keras_h5.hpp): ids that
// close themselves, HDF5's own error printing silenced, and a read-only file with typed attribute
// and dataset readers whose every failure is a tinycnn::FormatError naming the file.
#if defined(TINYCNN_HAS_HDF5)

#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "../../core/error.hpp"

namespace tinycnn::io::keras_detail {

// ---- HDF5 plumbing ------------------------------------------------------------------------------
class H5Id {
 public:
  H5Id() = default;
  H5Id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  H5Id(H5Id&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  H5Id& operator=(H5Id&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      close_ = o.close_;
      o.id_ = -1;
    }
    return *this;
  }
  ~H5Id() { reset(); }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = -1;
  }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

// Silences HDF5's automatic error printing for the guard's lifetime (restored afterwards).
class H5ErrorSilencer {
 public:
  H5ErrorSilencer() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~H5ErrorSilencer() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  H5ErrorSilencer(const H5ErrorSilencer&) = delete;
  H5ErrorSilencer& operator=(const H5ErrorSilencer&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

constexpr int64_t kMaxStringBytes = int64_t(1) << 28;   // model_config JSON and name lists
constexpr int64_t kMaxWeightElems = int64_t(1) << 31;    // one weight tensor

class H5File {
 public:
  explicit H5File(const std::string& path) : path_(path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) fail("no such file (or not a regular file)");
    htri_t is = H5Fis_hdf5(path.c_str());
    if (is <= 0) fail("not an HDF5 file");
    file_ = H5Id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!file_.valid()) fail("HDF5 cannot open it");
  }
  [[noreturn]] void fail(const std::string& why) const { throw FormatError("keras .h5 '" + path_ + "': " + why); }
  hid_t id() const { return file_.get(); }
  const std::string& path() const { return path_; }

  bool has_attr(hid_t obj, const std::string& name) const { return H5Aexists(obj, name.c_str()) > 0; }
  bool has_link(hid_t loc, const std::string& name) const { return H5Lexists(loc, name.c_str(), H5P_DEFAULT) > 0; }

  H5Id open_group(hid_t loc, const std::string& name, const std::string& what) const {
    if (!has_link(loc, name)) fail(what + ": group '" + name + "' is missing");
    H5Id g(H5Gopen2(loc, name.c_str(), H5P_DEFAULT), H5Gclose);
    if (!g.valid()) fail(what + ": cannot open group '" + name + "'");
    return g;
  }

  // A string attribute (scalar or 1-D; fixed-length or variable-length) as a list of strings.
  std::vector<std::string> read_strings(hid_t obj, const std::string& name, const std::string& what) const {
    const std::string where = what + ": attribute '" + name + "'";
    H5Id attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose);
    if (!attr.valid()) fail(where + " is missing");
    H5Id type(H5Aget_type(attr.get()), H5Tclose);
    H5Id space(H5Aget_space(attr.get()), H5Sclose);
    if (!type.valid() || !space.valid()) fail(where + ": cannot read its type");
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0 || rank > 1) fail(where + " is not a scalar or a 1-D list");
    const hssize_t npts = H5Sget_simple_extent_npoints(space.get());
    if (npts < 0 || npts > (int64_t(1) << 24)) fail(where + ": bad number of entries");
    const size_t n = static_cast<size_t>(npts);
    std::vector<std::string> out;
    if (n == 0) return out;
    if (H5Tget_class(type.get()) != H5T_STRING) fail(where + " is not a string");
    const htri_t vlen = H5Tis_variable_str(type.get());
    if (vlen < 0) fail(where + ": cannot read its type");
    H5Id mem(H5Tcopy(H5T_C_S1), H5Tclose);
    if (vlen > 0) {
      H5Tset_size(mem.get(), H5T_VARIABLE);
      H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
      std::vector<char*> ptrs(n, nullptr);
      if (H5Aread(attr.get(), mem.get(), ptrs.data()) < 0) fail(where + ": read failed");
      int64_t total = 0;
      bool too_big = false;
      for (char* p : ptrs) {
        std::string s = p ? std::string(p) : std::string();
        total += static_cast<int64_t>(s.size());
        if (total > kMaxStringBytes) too_big = true;
        if (!too_big) out.push_back(std::move(s));
        if (p) H5free_memory(p);
      }
      if (too_big) fail(where + " is too large");
    } else {
      const size_t sz = H5Tget_size(type.get());
      if (sz == 0 || static_cast<int64_t>(sz) * static_cast<int64_t>(n) > kMaxStringBytes) fail(where + ": bad string size");
      H5Tset_size(mem.get(), sz);
      H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
      std::vector<char> buf(sz * n, '\0');
      if (H5Aread(attr.get(), mem.get(), buf.data()) < 0) fail(where + ": read failed");
      for (size_t i = 0; i < n; ++i) {
        const char* p = buf.data() + i * sz;
        size_t len = 0;
        while (len < sz && p[len] != '\0') ++len;
        out.emplace_back(p, len);
      }
    }
    return out;
  }
  std::string read_string(hid_t obj, const std::string& name, const std::string& what) const {
    auto v = read_strings(obj, name, what);
    if (v.size() != 1) fail(what + ": attribute '" + name + "' is not a single string");
    return v[0];
  }

  // A float dataset at `path` below `loc`; its dims (row-major) and values.
  std::vector<float> read_floats(hid_t loc, const std::string& path, const std::string& what, Shape& dims) const {
    const std::string where = what + ": weight '" + path + "'";
    if (H5LTpath_valid_safe(loc, path) == false) fail(where + " is missing");
    H5Id ds(H5Dopen2(loc, path.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.valid()) fail(where + ": cannot open the dataset");
    H5Id type(H5Dget_type(ds.get()), H5Tclose);
    H5Id space(H5Dget_space(ds.get()), H5Sclose);
    if (!type.valid() || !space.valid()) fail(where + ": cannot read its type");
    if (H5Tget_class(type.get()) != H5T_FLOAT) fail(where + " is not a floating-point dataset");
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0 || rank > 8) fail(where + ": bad rank");
    std::vector<hsize_t> d(static_cast<size_t>(rank));
    if (rank > 0 && H5Sget_simple_extent_dims(space.get(), d.data(), nullptr) < 0) fail(where + ": cannot read its dims");
    dims.clear();
    int64_t n = 1;
    for (hsize_t x : d) {
      if (x > static_cast<hsize_t>(kMaxWeightElems)) fail(where + " is too large");
      dims.push_back(static_cast<int64_t>(x));
      n *= static_cast<int64_t>(x);
      if (n > kMaxWeightElems) fail(where + " is too large");
    }
    std::vector<float> v(static_cast<size_t>(n));
    if (n > 0 && H5Dread(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0) fail(where + ": read failed");
    return v;
  }

 private:
  // Every intermediate link of a relative path must exist before H5Dopen2 (else HDF5 errors deeply).
  static bool H5LTpath_valid_safe(hid_t loc, const std::string& path) {
    size_t pos = 0;
    while (true) {
      const size_t slash = path.find('/', pos);
      const std::string prefix = path.substr(0, slash);
      if (prefix.empty() || H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
      if (slash == std::string::npos) return true;
      pos = slash + 1;
    }
  }

  std::string path_;
  H5Id file_;
};

}  // namespace tinycnn::io::keras_detail

#endif  // TINYCNN_HAS_HDF5
