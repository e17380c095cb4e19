#pragma once
// The photo sorter: archives the photos under SRC into DEST/<class>/ by what a classifier says.
//
//   intel_scenes::SortOptions o;  o.src = "camera"; o.dest = "archive"; o.class_names = {...};
//   intel_scenes::SortSummary s = intel_scenes::sort_photos(o, classify);   // classify(path) -> probabilities
//   std::cout << s.to_string() << "\n";   // scanned=N copied=N duplicates=N skipped=N failed=N
//
// Safety rules (docs/intel_scenes.md, "Sorting photos safely"; each has a test in tests/test_sort_report.cpp):
//  * copy is the default; a file is never overwritten: targets are created with O_CREAT|O_EXCL;
//  * an identical file (same sha256) already at the target is a duplicate and is not copied again; a
//    different one makes the new copy take a `_2` (then `_3`, ...) suffix; so a second run copies nothing;
//  * --move: copy, fsync, re-read and re-hash the copy, fsync the folder, then unlink the source; a
//    source that was skipped or failed is never deleted, nor one whose target is the same file;
//  * --dry-run writes nothing at all (no folders, no manifest) and reports what a real run would do;
//  * a destination inside the source (or equal to it) is refused, on canonical paths;
//  * symlinks are not followed unless follow_symlinks (then directory loops are cut);
//  * special files (FIFOs, sockets, devices) are never opened; zero-byte, non-image, unreadable,
//    corrupt and over-limit files are reported and left untouched, and the run goes on: every file is
//    first read with a size cap and its header probed with DecodeLimits (a decompression bomb is
//    refused before any pixel is allocated), and everything a file's processing throws — tinycnn
//    errors, std::bad_alloc, anything — is caught for that file alone;
//  * single-label: the top class (unclassified when below min_confidence); multi-label: every class
//    whose probability is >= its threshold, or DEST/unclassified/ when none is;
//  * the manifest CSV (default DEST/manifest.csv, appended to) has a row per scanned file.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <tinycnn/core/error.hpp>
#include <tinycnn/data/decode.hpp>

#include "sha256.hpp"

namespace intel_scenes {

// Per-class probabilities for one image file (one per class name, in order). Throws on a file it
// cannot decode or classify; it should decode with SortOptions::limits.
using Classifier = std::function<std::vector<float>(const std::string& path)>;

// Optional: probabilities for several photos at once (one forward pass over a batch instead of one
// per photo). Entry i belongs to paths[i]: its probabilities, or empty when that photo could not be
// decoded or classified, and the single-photo classifier then runs on it (and reports its error).
// The paths have passed the same checks as the single classifier's (regular file, size cap, header
// probed with SortOptions::limits). A throw or a result of the wrong length falls back to the
// single classifier for the whole batch.
using BatchClassifier = std::function<std::vector<std::vector<float>>(const std::vector<std::string>& paths)>;

enum class FileStatus { Copied, Duplicate, Skipped, Failed };
inline const char* file_status_name(FileStatus s) {
  switch (s) {
    case FileStatus::Copied: return "copied";
    case FileStatus::Duplicate: return "duplicate";
    case FileStatus::Skipped: return "skipped";
    case FileStatus::Failed: return "failed";
  }
  return "?";
}

// What happened to one scanned source file.
struct FileResult {
  std::string source;
  FileStatus status = FileStatus::Failed;
  std::vector<std::string> destinations;  // one per label: the new copy, or the identical file already there
  std::vector<std::string> labels;        // the folders chosen ("unclassified" included)
  std::vector<float> probabilities;       // the classifier's output (empty when it did not run)
  std::string sha256;                     // of the source bytes (empty when they could not be read)
  std::string reason;                     // why skipped/failed, or a note (e.g. source not removed)
  bool source_removed = false;            // --move deleted the source
};

struct SortOptions {
  std::string src, dest;
  std::vector<std::string> class_names;  // folder names, in the classifier's output order
  bool multi_label = false;
  double threshold = 0.5;                // multi-label: a class is chosen when its probability >= threshold
  std::vector<double> class_thresholds;  // multi-label, optional: one per class, overrides threshold
  double min_confidence = 0.0;           // single-label: a top probability below this goes to unclassified
  bool dry_run = false;
  bool move = false;
  bool follow_symlinks = false;
  std::string manifest;                  // "" = DEST/manifest.csv
  tinycnn::data::DecodeLimits limits;    // caps on the file size, image size and decoder memory
  size_t batch = 32;                     // photos per BatchClassifier call; a batch also stops growing
  size_t batch_bytes = size_t(256) << 20;  // once its files' bytes (held until copied) reach this
  std::function<void(const FileResult&)> on_file;  // optional: called after each file (progress, log)
};

// Counts are per scanned source file: every file the scan meets lands in exactly one bucket, so
// scanned = copied + duplicates + skipped + failed.
//  scanned     every non-directory entry under SRC (regular files, symlinks, FIFOs, ...), plus each
//              sub-folder that could not be listed;
//  copied      a photo written to at least one new file (counted once however many labels it has);
//              in a dry run, the photos a real run would copy;
//  duplicates  a photo whose every target folder already holds an identical file (nothing written);
//  skipped     not a photo to sort: symlinks (unless followed), special files, zero-byte files,
//              files that are not images or are in an unsupported format (GIF, TIFF, text, ...);
//  failed      a photo that could not be archived: unreadable, truncated, corrupt, over the decode
//              limits, the classifier threw, or writing/verifying a copy failed; a folder that could
//              not be listed.
struct SortSummary {
  int64_t scanned = 0, copied = 0, duplicates = 0, skipped = 0, failed = 0;
  std::vector<FileResult> files;  // in scan order
  std::string manifest_path;      // the manifest written ("" in a dry run)
  bool reconciles() const { return scanned == copied + duplicates + skipped + failed; }
  std::string to_string() const {
    return "scanned=" + std::to_string(scanned) + " copied=" + std::to_string(copied) +
           " duplicates=" + std::to_string(duplicates) + " skipped=" + std::to_string(skipped) +
           " failed=" + std::to_string(failed);
  }
};

// One CSV field, quoted when it holds a comma, quote, CR/LF or leading/trailing space (RFC 4180).
inline std::string csv_field(const std::string& s) {
  const bool quote = s.find_first_of(",\"\r\n") != std::string::npos ||
                     (!s.empty() && (s.front() == ' ' || s.back() == ' '));
  if (!quote) return s;
  std::string o = "\"";
  for (char c : s) {
    if (c == '"') o += '"';
    o += c;
  }
  return o + "\"";
}

namespace detail {
namespace fs = std::filesystem;

inline bool path_within(const fs::path& inner, const fs::path& outer) {  // both canonical
  auto i = inner.begin(), o = outer.begin();
  for (; o != outer.end(); ++o, ++i)
    if (i == inner.end() || *i != *o) return false;
  return true;
}

inline std::string errno_text(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

inline void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw tinycnn::IOError(errno_text("cannot open folder", dir));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw tinycnn::IOError(errno_text("fsync failed on folder", dir));
}

// Creates `path` exclusively and writes the bytes. Returns false (nothing written) when the path
// already exists; throws IOError on other failures (after removing its own partial file).
inline bool write_exclusive(const std::string& path, const std::vector<uint8_t>& bytes, bool sync) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return false;
    throw tinycnn::IOError(errno_text("cannot create", path));
  }
  size_t done = 0;
  std::string err;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      err = errno_text("write failed on", path);
      break;
    }
    done += static_cast<size_t>(w);
  }
  if (err.empty() && sync && ::fsync(fd) != 0) err = errno_text("fsync failed on", path);
  if (::close(fd) != 0 && err.empty()) err = errno_text("close failed on", path);
  if (!err.empty()) {
    ::unlink(path.c_str());  // our own partial file
    throw tinycnn::IOError(err);
  }
  return true;
}

inline void check_folder_name(const std::string& n) {
  if (n.empty() || n == "." || n == ".." || n.find('/') != std::string::npos || n.find('\0') != std::string::npos)
    throw tinycnn::ValueError("sort: class name '" + n + "' cannot be a folder name");
}

class Sorter {
 public:
  Sorter(const SortOptions& o, const Classifier& c, const BatchClassifier* b = nullptr)
      : o_(o), classify_(c), classify_batch_(b && *b ? b : nullptr) {}

  SortSummary run() {
    if (!classify_) throw tinycnn::ValueError("sort: no classifier");
    if (o_.batch == 0) throw tinycnn::ValueError("sort: batch size must be >= 1");
    if (o_.class_names.empty()) throw tinycnn::ValueError("sort: no class names");
    for (const auto& n : o_.class_names) check_folder_name(n);
    if (!o_.class_thresholds.empty() && o_.class_thresholds.size() != o_.class_names.size())
      throw tinycnn::ValueError("sort: " + std::to_string(o_.class_thresholds.size()) + " thresholds for " +
                                std::to_string(o_.class_names.size()) + " classes");
    std::error_code ec;
    if (o_.src.empty() || !fs::is_directory(o_.src, ec)) throw tinycnn::IOError("sort: source '" + o_.src + "' is not a folder");
    if (o_.dest.empty()) throw tinycnn::ValueError("sort: no destination folder");
    src_ = fs::canonical(o_.src);
    dest_ = fs::weakly_canonical(o_.dest);
    if (path_within(dest_, src_))
      throw tinycnn::ValueError("sort: the destination '" + o_.dest + "' is inside the source '" + o_.src +
                                "' (a second run would sort the sorted copies); choose a folder outside it");
    if (fs::exists(fs::symlink_status(dest_, ec)) && !fs::is_directory(dest_, ec))
      throw tinycnn::IOError("sort: destination '" + o_.dest + "' exists and is not a folder");

    std::vector<Entry> entries;
    std::set<std::string> visited{src_.string()};
    scan(src_, entries, visited);

    SortSummary s;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> manifest(nullptr, &std::fclose);
    if (!o_.dry_run) {
      fs::create_directories(dest_);
      s.manifest_path = o_.manifest.empty() ? (dest_ / "manifest.csv").string() : o_.manifest;
      const bool fresh = fs::file_size(s.manifest_path, ec) == 0 || ec;
      manifest.reset(std::fopen(s.manifest_path.c_str(), "ab"));
      if (!manifest) throw tinycnn::IOError(errno_text("sort: cannot open the manifest", s.manifest_path));
      if (fresh)
        std::fputs("source,status,destinations,labels,probabilities,sha256,reason\n", manifest.get());
    }
    // Files go in batches: each is checked and read (prepare), the ready ones are classified together
    // when there is a batch classifier, then each is finished in scan order.
    const size_t per_batch = classify_batch_ ? o_.batch : 1;  // without one, a file at a time as before
    for (size_t i = 0; i < entries.size();) {
      std::vector<Prepared> batch;
      std::vector<std::string> ready;
      size_t bytes = 0;
      for (; i < entries.size() && ready.size() < per_batch && bytes < o_.batch_bytes; ++i) {
        const Entry& e = entries[i];
        Prepared p;
        if (e.listing_error.empty()) {
          p = prepare(e.path);
        } else {
          p.r.source = e.path;
          p.r.reason = e.listing_error;  // status Failed
        }
        if (p.ready) ready.push_back(e.path), bytes += p.bytes.size();
        batch.push_back(std::move(p));
      }
      std::vector<std::vector<float>> probs;
      if (classify_batch_ && ready.size() > 1) {
        try {
          probs = (*classify_batch_)(ready);
        } catch (...) {  // e.g. out of memory for the whole batch: one photo at a time instead
          probs.clear();
        }
        if (probs.size() != ready.size()) probs.clear();
      }
      size_t k = 0;
      for (Prepared& p : batch) {
        const std::vector<float>* pre = p.ready && !probs.empty() ? &probs[k] : nullptr;
        if (p.ready) ++k;
        count(s, manifest.get(), p.ready ? finish(std::move(p), pre) : std::move(p.r));
      }
    }
    if (manifest && std::fflush(manifest.get()) != 0) throw tinycnn::IOError("sort: writing the manifest failed");
    return s;
  }

 private:
  // Books one file's result: the summary's counts, its manifest row, the progress callback.
  void count(SortSummary& s, std::FILE* manifest, FileResult r) {
    ++s.scanned;
    switch (r.status) {
      case FileStatus::Copied: ++s.copied; break;
      case FileStatus::Duplicate: ++s.duplicates; break;
      case FileStatus::Skipped: ++s.skipped; break;
      case FileStatus::Failed: ++s.failed; break;
    }
    if (manifest) {
      std::fputs(manifest_row(r).c_str(), manifest);
      std::fflush(manifest);
    }
    if (o_.on_file) o_.on_file(r);
    s.files.push_back(std::move(r));
  }

  struct Entry {
    std::string path;
    std::string listing_error;  // a folder that could not be listed
  };

  void scan(const fs::path& dir, std::vector<Entry>& out, std::set<std::string>& visited) {
    std::error_code ec;
    std::vector<fs::path> names;
    fs::directory_iterator it(dir, ec), end;
    for (; !ec && it != end; it.increment(ec)) names.push_back(it->path());
    if (ec) {
      out.push_back({dir.string(), "cannot list folder: " + ec.message()});
      return;
    }
    std::sort(names.begin(), names.end());
    for (const fs::path& p : names) {
      const fs::file_status ls = fs::symlink_status(p, ec);
      if (fs::is_directory(ls)) {
        scan(p, out, visited);
      } else if (fs::is_symlink(ls) && o_.follow_symlinks && fs::is_directory(p, ec)) {
        const fs::path c = fs::canonical(p, ec);
        if (ec || path_within(c, dest_) || !visited.insert(c.string()).second) continue;  // loop or into DEST
        scan(p, out, visited);
      } else {
        out.push_back({p.string(), ""});
      }
    }
  }

  static FileResult skipped(FileResult r, const std::string& why) {
    r.status = FileStatus::Skipped;
    r.reason = why;
    return r;
  }
  static FileResult failed(FileResult r, const std::string& why) {
    r.status = FileStatus::Failed;
    r.reason = why;
    return r;
  }

  // A file checked and read: ready for the classifier, or already final in r (skipped or failed).
  struct Prepared {
    FileResult r;
    std::vector<uint8_t> bytes;
    bool ready = false;
  };

  Prepared prepare(const std::string& path) {
    Prepared p;
    p.r = check(path, p.bytes, p.ready);
    if (!p.ready) std::vector<uint8_t>().swap(p.bytes);  // a final result keeps no bytes
    return p;
  }

  // Everything before the classifier: the file's kind, its bytes (size-capped), their hash and the
  // image header probed with the decode limits. ready = true when the classifier may run on it.
  FileResult check(const std::string& path, std::vector<uint8_t>& bytes, bool& ready) {
    FileResult r;
    r.source = path;
    try {
      std::error_code ec;
      const fs::file_status ls = fs::symlink_status(path, ec);
      if (ec) return failed(r, "cannot stat: " + ec.message());
      if (fs::is_symlink(ls) && !o_.follow_symlinks) return skipped(r, "symlink (not followed)");
      const fs::file_status st = fs::status(path, ec);
      if (ec) return failed(r, "cannot stat: " + ec.message());
      if (!fs::is_regular_file(st)) return skipped(r, "not a regular file");
      if (fs::file_size(path, ec) == 0 && !ec) return skipped(r, "zero-byte file");
      try {
        bytes = tinycnn::data::read_file_bytes(path, o_.limits.max_file_bytes);
        r.sha256 = sha256_hex(bytes);
        (void)tinycnn::data::probe_image_from_memory(bytes.data(), bytes.size(), path, o_.limits);
      } catch (const tinycnn::data::DecodeError& e) {
        using K = tinycnn::data::ImageErrorKind;
        if (e.kind() == K::NotAnImage || e.kind() == K::UnsupportedFormat) return skipped(r, e.what());
        return failed(r, e.what());
      }
      ready = true;
      return r;
    } catch (const std::bad_alloc&) {
      return failed(r, "out of memory");
    } catch (const std::exception& e) {
      return failed(r, e.what());
    } catch (...) {
      return failed(r, "unknown error");
    }
  }

  // The classifier (its output for this file from the batch when pre is given and not empty), the
  // labels, the copies and, with --move, the verified removal of the source.
  FileResult finish(Prepared prep, const std::vector<float>* pre) {
    FileResult r = std::move(prep.r);
    const std::string path = r.source;
    const std::vector<uint8_t>& bytes = prep.bytes;
    std::vector<std::string> written;  // copies made for this file (removed again if it then fails)
    try {
      std::error_code ec;
      r.probabilities = pre && !pre->empty() ? *pre : classify_(path);
      if (r.probabilities.size() != o_.class_names.size())
        return failed(r, "classifier returned " + std::to_string(r.probabilities.size()) + " probabilities for " +
                             std::to_string(o_.class_names.size()) + " classes");
      for (float p : r.probabilities)
        if (!std::isfinite(p)) return failed(r, "classifier returned a non-finite probability");
      r.labels = choose_labels(r.probabilities);

      bool any_new = false;
      for (const std::string& label : r.labels) {
        const fs::path dir = dest_ / label;
        if (!o_.dry_run) fs::create_directories(dir);
        bool created = false;
        const std::string target = place(dir, fs::path(path).filename(), bytes, r.sha256, created);
        if (created) {
          any_new = true;
          if (!o_.dry_run) written.push_back(target);
        }
        r.destinations.push_back(target);
      }
      r.status = any_new ? FileStatus::Copied : FileStatus::Duplicate;

      if (o_.move && !o_.dry_run) {
        for (const std::string& d : r.destinations) {
          // re-read every target from disk (new copies were fsync'ed) and compare with the source
          if (sha256_file(d) != r.sha256) throw tinycnn::IOError("verification failed: '" + d + "' differs from the source");
          if (fs::equivalent(d, path, ec)) {
            r.reason = "source not removed: it is the target file itself";
            return r;
          }
        }
        for (const std::string& d : r.destinations) fsync_dir(fs::path(d).parent_path().string());
        if (::unlink(path.c_str()) != 0) r.reason = errno_text("source not removed: unlink failed on", path);
        else r.source_removed = true;
      }
      return r;
    } catch (const std::bad_alloc&) {
      r = failed(r, "out of memory");
    } catch (const std::exception& e) {
      r = failed(r, e.what());
    } catch (...) {
      r = failed(r, "unknown error");
    }
    for (const std::string& w : written) {  // a failed photo leaves no half-done copies of this run
      ::unlink(w.c_str());
      known_.erase(w);
    }
    r.destinations.clear();
    return r;
  }

  std::vector<std::string> choose_labels(const std::vector<float>& p) const {
    std::vector<std::string> out;
    if (o_.multi_label) {
      for (size_t k = 0; k < p.size(); ++k) {
        const double t = o_.class_thresholds.empty() ? o_.threshold : o_.class_thresholds[k];
        if (p[k] >= t) out.push_back(o_.class_names[k]);
      }
    } else {
      const size_t k = static_cast<size_t>(std::max_element(p.begin(), p.end()) - p.begin());
      if (p[k] >= o_.min_confidence) out.push_back(o_.class_names[k]);
    }
    if (out.empty()) out.push_back("unclassified");
    return out;
  }

  // The hash of an existing target file ("" when it is not a regular file), cached.
  std::string hash_of_existing(const std::string& p, uint64_t want_size) {
    auto it = known_.find(p);
    if (it != known_.end()) return it->second;
    std::error_code ec;
    const fs::file_status ls = fs::symlink_status(p, ec);
    if (!fs::is_regular_file(ls)) return known_[p] = "";
    if (fs::file_size(p, ec) != want_size || ec) return "size-differs";  // not cached: cheap to redo
    return known_[p] = sha256_file(p);
  }

  // Finds the target for `name` in `dir`: an identical file already there (created = false), or a
  // new exclusive file at the first free name of name, name_2, name_3, ... (created = true).
  std::string place(const fs::path& dir, const fs::path& name, const std::vector<uint8_t>& bytes,
                    const std::string& sha, bool& created) {
    const std::string stem = name.stem().string(), ext = name.extension().string();
    for (int k = 1;; ++k) {
      if (k > 100000) throw tinycnn::IOError("too many files named like '" + name.string() + "' in '" + dir.string() + "'");
      const std::string cand = (dir / (k == 1 ? name.string() : stem + "_" + std::to_string(k) + ext)).string();
      std::error_code ec;
      const bool exists = fs::exists(fs::symlink_status(cand, ec)) || (o_.dry_run && known_.count(cand));
      if (exists) {
        if (hash_of_existing(cand, bytes.size()) == sha) {
          created = false;
          return cand;
        }
        continue;
      }
      if (o_.dry_run) {
        known_[cand] = sha;  // what a real run would have created
        created = true;
        return cand;
      }
      if (!write_exclusive(cand, bytes, o_.move)) continue;  // appeared meanwhile: look at it again
      if (o_.move && sha256_file(cand) != sha) {  // re-hash the copy as stored
        ::unlink(cand.c_str());
        throw tinycnn::IOError("verification failed: the copy '" + cand + "' differs from the source");
      }
      known_[cand] = sha;
      created = true;
      return cand;
    }
  }

  std::string manifest_row(const FileResult& r) const {
    auto join = [](const std::vector<std::string>& v) {
      std::string s;
      for (size_t i = 0; i < v.size(); ++i) s += (i ? ";" : "") + v[i];
      return s;
    };
    std::string probs;
    for (size_t k = 0; k < r.probabilities.size() && k < o_.class_names.size(); ++k) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.6f", static_cast<double>(r.probabilities[k]));
      probs += (k ? ";" : "") + o_.class_names[k] + "=" + buf;
    }
    return csv_field(r.source) + "," + file_status_name(r.status) + "," + csv_field(join(r.destinations)) + "," +
           csv_field(join(r.labels)) + "," + csv_field(probs) + "," + r.sha256 + "," + csv_field(r.reason) + "\n";
  }

  const SortOptions& o_;
  const Classifier& classify_;
  const BatchClassifier* classify_batch_;
  fs::path src_, dest_;
  std::map<std::string, std::string> known_;  // target path -> sha256 (files hashed or created this run)
};

}  // namespace detail

// Sorts SRC into DEST (see the rules at the top). Throws tinycnn::ValueError/IOError before touching
// anything when the options are unusable (destination inside the source, bad class names, SRC not a
// folder, the manifest cannot be opened); per-file problems never throw, they are counted.
inline SortSummary sort_photos(const SortOptions& options, const Classifier& classify) {
  return detail::Sorter(options, classify).run();
}
// The same with a batch classifier for the photos that pass the checks (SortOptions::batch at a
// time); classify still serves the photos the batch could not classify.
inline SortSummary sort_photos(const SortOptions& options, const Classifier& classify,
                               const BatchClassifier& classify_batch) {
  return detail::Sorter(options, classify, &classify_batch).run();
}

}  // namespace intel_scenes
