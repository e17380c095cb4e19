// examples/intel_scenes: the photo sorter's safety rules, SHA-256, Grad-CAM and report.html.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <tinycnn/tinycnn.hpp>

#include "../examples/intel_scenes/gradcam.hpp"
#include "../examples/intel_scenes/report.hpp"
#include "../examples/intel_scenes/sha256.hpp"
#include "../examples/intel_scenes/sorter.hpp"

namespace fs = std::filesystem;
using namespace intel_scenes;

namespace {

const std::string kImages = std::string(TINYCNN_TEST_DATA_DIR) + "/bad_images/";

struct SortTempDir {
  fs::path path;
  SortTempDir() {
    std::string t = (fs::temp_directory_path() / "tinycnn_sort_XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    path = t;
  }
  ~SortTempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& rel) const { return (path / rel).string(); }
};

void put(const std::string& from_test_image, const std::string& to) {
  fs::create_directories(fs::path(to).parent_path());
  fs::copy_file(kImages + from_test_image, to);
}
void write_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}
std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Every entry under root: relative path -> kind and content hash (or link target).
std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> m;
  if (!fs::exists(fs::symlink_status(root))) return m;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    const std::string rel = it->path().lexically_relative(root).string();
    const fs::file_status st = fs::symlink_status(it->path());
    if (fs::is_symlink(st)) m[rel] = "link:" + fs::read_symlink(it->path()).string();
    else if (fs::is_directory(st)) m[rel] = "dir";
    else if (fs::is_regular_file(st)) m[rel] = "file:" + sha256_file(it->path().string());
    else m[rel] = "special";
  }
  return m;
}

std::string str(const std::map<std::string, std::string>& m) {
  std::string s;
  for (const auto& kv : m) s += kv.first + "=" + kv.second + "\n";
  return s;
}

const std::vector<std::string> kClasses = {"forest", "sea", "street"};

// A fake model: decodes the file like a real classifier would, then decides by the file's name:
// "forest"/"sea"/"street" -> that class at 0.9; "both" -> forest 0.7 and sea 0.6 (multi-label);
// "none" -> all 0.2; "throw" -> tinycnn::ValueError; "oom" -> std::bad_alloc; "int" -> throws 42.
struct FakeModel {
  int calls = 0;
  std::vector<std::string> seen;
  tinycnn::data::DecodeLimits limits;
  Classifier fn() {
    return [this](const std::string& path) -> std::vector<float> {
      ++calls;
      const std::string n = fs::path(path).filename().string();
      seen.push_back(n);
      (void)tinycnn::data::load_image_file(path, limits);
      if (n.find("throw") != std::string::npos) throw tinycnn::ValueError("model refused " + n);
      if (n.find("oom") != std::string::npos) throw std::bad_alloc();
      if (n.find("int") != std::string::npos) throw 42;
      if (n.find("both") != std::string::npos) return {0.7f, 0.6f, 0.1f};
      if (n.find("none") != std::string::npos) return {0.2f, 0.2f, 0.2f};
      if (n.find("sea") != std::string::npos) return {0.05f, 0.9f, 0.05f};
      if (n.find("street") != std::string::npos) return {0.05f, 0.05f, 0.9f};
      return {0.9f, 0.05f, 0.05f};
    };
  }
};

SortOptions options(const SortTempDir& t) {
  SortOptions o;
  o.src = t / "src";
  o.dest = t / "dest";
  o.class_names = kClasses;
  return o;
}

const FileResult& result_for(const SortSummary& s, const std::string& name) {
  for (const auto& f : s.files)
    if (fs::path(f.source).filename() == name) return f;
  FAIL("no result for " << name);
  return s.files.front();
}

}  // namespace

TEST_CASE("sha256: FIPS 180-2 vectors") {
  CHECK(sha256_hex(std::string("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex(std::string("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex(std::string("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string a(1000000, 'a');
  CHECK(sha256_hex(a) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // the same through many small, unaligned updates
  Sha256 h;
  for (size_t i = 0; i < a.size();) {
    const size_t n = std::min<size_t>(1 + i % 97, a.size() - i);
    h.update(a.data() + i, n);
    i += n;
  }
  CHECK(h.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  SortTempDir t;
  write_text(t / "abc.txt", "abc");
  CHECK(sha256_file(t / "abc.txt") == sha256_hex(std::string("abc")));
  CHECK_THROWS_AS(sha256_file(t / "missing"), tinycnn::IOError);
}

TEST_CASE("sort: copy by top class, never overwrite, _2 suffix, duplicates, second run copies nothing") {
  SortTempDir t;
  put("good.jpg", t / "src/forest_a.jpg");
  put("good.png", t / "src/sea_b.png");
  put("gray.jpg", t / "src/sub/forest_a.jpg");   // same name, other content -> forest_a_2.jpg
  put("good.jpg", t / "src/sub2/forest_a.jpg");  // identical to the first -> duplicate
  put("image.bmp", t / "src/street_c.bmp");
  write_text(t / "dest/sea/sea_b.png", "someone else's file");  // must survive untouched
  const auto src_before = snapshot(t.path / "src");

  FakeModel m;
  SortOptions o = options(t);
  SortSummary s = sort_photos(o, m.fn());
  INFO(s.to_string());
  CHECK(s.scanned == 5);
  CHECK(s.copied == 4);
  CHECK(s.duplicates == 1);
  CHECK(s.skipped == 0);
  CHECK(s.failed == 0);
  CHECK(s.reconciles());
  CHECK(s.to_string() == "scanned=5 copied=4 duplicates=1 skipped=0 failed=0");
  CHECK(snapshot(t.path / "src") == src_before);  // copy is the default: sources untouched
  CHECK(sha256_file(t / "dest/forest/forest_a.jpg") == sha256_file(kImages + "good.jpg"));
  CHECK(sha256_file(t / "dest/forest/forest_a_2.jpg") == sha256_file(kImages + "gray.jpg"));
  CHECK(!fs::exists(t / "dest/forest/forest_a_3.jpg"));
  CHECK(read_text(t / "dest/sea/sea_b.png") == "someone else's file");
  CHECK(sha256_file(t / "dest/sea/sea_b_2.png") == sha256_file(kImages + "good.png"));
  CHECK(sha256_file(t / "dest/street/street_c.bmp") == sha256_file(kImages + "image.bmp"));
  CHECK(result_for(s, "street_c.bmp").labels == std::vector<std::string>{"street"});

  // the manifest: header + one row per scanned file, with the sha256 and all probabilities
  const std::string man = read_text(t / "dest/manifest.csv");
  CHECK(s.manifest_path == t / "dest/manifest.csv");
  CHECK(man.rfind("source,status,destinations,labels,probabilities,sha256,reason\n", 0) == 0);
  CHECK(std::count(man.begin(), man.end(), '\n') == 6);
  CHECK(man.find(sha256_file(kImages + "gray.jpg")) != std::string::npos);
  CHECK(man.find("forest=0.900000;sea=0.050000;street=0.050000") != std::string::npos);
  CHECK(man.find(t / "dest/forest/forest_a_2.jpg") != std::string::npos);

  // a second run over the same folders copies nothing and changes no archived file
  auto dest_before = snapshot(t.path / "dest");
  SortSummary s2 = sort_photos(o, m.fn());
  CHECK(s2.to_string() == "scanned=5 copied=0 duplicates=5 skipped=0 failed=0");
  auto dest_after = snapshot(t.path / "dest");
  dest_before.erase("manifest.csv");
  dest_after.erase("manifest.csv");
  CHECK(dest_after == dest_before);
  CHECK(result_for(s2, "sea_b.png").destinations == std::vector<std::string>{t / "dest/sea/sea_b_2.png"});
  const std::string man2 = read_text(t / "dest/manifest.csv");
  CHECK(std::count(man2.begin(), man2.end(), '\n') == 11);  // appended, one header
}

TEST_CASE("sort: multi-label goes to every class above its threshold, none -> unclassified") {
  SortTempDir t;
  put("good.jpg", t / "src/both.jpg");
  put("good.png", t / "src/none.png");
  put("gray.png", t / "src/sea.png");
  FakeModel m;
  SortOptions o = options(t);
  o.multi_label = true;
  SortSummary s = sort_photos(o, m.fn());
  CHECK(s.to_string() == "scanned=3 copied=3 duplicates=0 skipped=0 failed=0");
  CHECK(fs::exists(t / "dest/forest/both.jpg"));
  CHECK(fs::exists(t / "dest/sea/both.jpg"));
  CHECK(!fs::exists(t / "dest/street/both.jpg"));
  CHECK(fs::exists(t / "dest/unclassified/none.png"));
  CHECK(fs::exists(t / "dest/sea/sea.png"));
  CHECK(result_for(s, "both.jpg").labels == std::vector<std::string>{"forest", "sea"});

  // per-class thresholds: sea needs 0.65 now, so "both" (sea 0.6) goes to forest only
  SortTempDir t2;
  put("good.jpg", t2 / "src/both.jpg");
  SortOptions o2 = options(t2);
  o2.multi_label = true;
  o2.class_thresholds = {0.5, 0.65, 0.5};
  SortSummary s2 = sort_photos(o2, m.fn());
  CHECK(result_for(s2, "both.jpg").labels == std::vector<std::string>{"forest"});
  CHECK(!fs::exists(t2 / "dest/sea"));
  o2.class_thresholds = {0.5};
  CHECK_THROWS_AS(sort_photos(o2, m.fn()), tinycnn::ValueError);

  // single-label with a minimum confidence: below it -> unclassified
  SortTempDir t3;
  put("good.jpg", t3 / "src/none.jpg");
  SortOptions o3 = options(t3);
  o3.min_confidence = 0.5;
  sort_photos(o3, m.fn());
  CHECK(fs::exists(t3 / "dest/unclassified/none.jpg"));
}

TEST_CASE("sort: unreadable, corrupt, zero-byte, non-image and special files are reported, untouched, and the run goes on") {
  SortTempDir t;
  for (const char* bad : {"empty.jpg", "text.jpg", "truncated.jpg", "truncated.png", "bomb_16384x16384.png",
                          "wide_20000x1.png", "corrupt_idat.png", "anim.gif", "image.psd", "fuzz_bad_dht.jpg",
                          "fuzz_empty_idat.png", "zero_size.jpg"})
    put(bad, t / (std::string("src/bad/") + bad));
  put("good.jpg", t / "src/a_forest.jpg");
  put("good.png", t / "src/throw.png");  // the classifier throws a tinycnn error
  put("gray.png", t / "src/oom.png");    // ... std::bad_alloc
  put("gray.jpg", t / "src/int.jpg");    // ... something that is not an exception class
  put("image.bmp", t / "src/z_sea.bmp");
  write_text(t / "src/notes.txt", "not a photo");
  REQUIRE(::mkfifo((t / "src/pipe.jpg").c_str(), 0644) == 0);  // opening it would block forever
  const auto src_before = snapshot(t.path / "src");

  FakeModel m;
  SortOptions o = options(t);
  o.move = true;  // even with --move, nothing that failed or was skipped is deleted
  SortSummary s = sort_photos(o, m.fn());
  INFO(s.to_string());
  CHECK(s.scanned == 19);
  CHECK(s.copied == 2);
  CHECK(s.reconciles());
  const std::map<std::string, FileStatus> want = {
      {"empty.jpg", FileStatus::Skipped},      {"text.jpg", FileStatus::Skipped},
      {"anim.gif", FileStatus::Skipped},       {"image.psd", FileStatus::Skipped},
      {"notes.txt", FileStatus::Skipped},      {"pipe.jpg", FileStatus::Skipped},
      {"truncated.jpg", FileStatus::Failed},   {"truncated.png", FileStatus::Failed},
      {"bomb_16384x16384.png", FileStatus::Failed}, {"wide_20000x1.png", FileStatus::Failed},
      {"corrupt_idat.png", FileStatus::Failed}, {"fuzz_bad_dht.jpg", FileStatus::Failed},
      {"fuzz_empty_idat.png", FileStatus::Failed}, {"zero_size.jpg", FileStatus::Failed},
      {"throw.png", FileStatus::Failed},       {"oom.png", FileStatus::Failed},
      {"int.jpg", FileStatus::Failed},         {"a_forest.jpg", FileStatus::Copied},
      {"z_sea.bmp", FileStatus::Copied}};
  for (const auto& w : want) {
    // not a structured binding: INFO captures `name` in a lambda, which C++17 allows only for variables
    const std::string& name = w.first;
    const FileStatus st = w.second;
    const FileResult& r = result_for(s, name);
    INFO(name << ": " << r.reason);
    CHECK(file_status_name(r.status) == std::string(file_status_name(st)));
    if (st != FileStatus::Copied) {
      CHECK(!r.reason.empty());
      CHECK(!r.source_removed);
      CHECK(r.destinations.empty());
    }
  }
  CHECK(s.skipped == 6);
  CHECK(s.failed == 11);
  CHECK(result_for(s, "oom.png").reason == "out of memory");
  CHECK(result_for(s, "empty.jpg").reason == "zero-byte file");
  CHECK(result_for(s, "bomb_16384x16384.png").reason.find("too large") != std::string::npos);
  // the header is probed with the decode limits before the classifier runs: no bomb reaches it
  for (const char* never : {"bomb_16384x16384.png", "wide_20000x1.png", "empty.jpg", "text.jpg", "pipe.jpg", "anim.gif"})
    CHECK(std::find(m.seen.begin(), m.seen.end(), never) == m.seen.end());
  // the good ones were moved, everything else is exactly as it was
  auto src_after = snapshot(t.path / "src");
  auto expected = src_before;
  expected.erase("a_forest.jpg");
  expected.erase("z_sea.bmp");
  CHECK(src_after == expected);
  CHECK(fs::exists(t / "dest/forest/a_forest.jpg"));
  CHECK(fs::exists(t / "dest/sea/z_sea.bmp"));
  // nothing but the two photos (and the manifest) was written
  CHECK(snapshot(t.path / "dest").size() == 5);  // forest/, sea/, 2 files, manifest.csv

  if (::geteuid() != 0) {  // root reads mode-000 files, so this part needs an ordinary user
    put("good.jpg", t / "src2/locked.jpg");
    fs::permissions(t / "src2/locked.jpg", fs::perms::none);
    SortOptions o2 = options(t);
    o2.src = t / "src2";
    SortSummary s2 = sort_photos(o2, m.fn());
    CHECK(s2.failed == 1);
    fs::permissions(t / "src2/locked.jpg", fs::perms::owner_all);
  } else {
    MESSAGE("running as root: the mode-000 (unreadable) file check is skipped");
  }

  // a tighter file-size cap is a decode limit too
  SortTempDir t2;
  put("good.jpg", t2 / "src/big.jpg");
  SortOptions o3 = options(t2);
  o3.limits.max_file_bytes = 100;
  SortSummary s3 = sort_photos(o3, m.fn());
  CHECK(s3.failed == 1);
  CHECK(result_for(s3, "big.jpg").reason.find("too large") != std::string::npos);
}

TEST_CASE("sort: --move copies, verifies, then deletes the source; duplicates too; failures never") {
  SortTempDir t;
  put("good.jpg", t / "src/forest_1.jpg");
  put("good.png", t / "src/both.png");
  put("gray.jpg", t / "src/throw.jpg");
  put("rgba.png", t / "src/dup_sea.png");
  put("rgba.png", t / "dest/sea/dup_sea.png");  // already archived
  FakeModel m;
  SortOptions o = options(t);
  o.move = true;
  o.multi_label = true;
  SortSummary s = sort_photos(o, m.fn());
  CHECK(s.to_string() == "scanned=4 copied=2 duplicates=1 skipped=0 failed=1");
  CHECK(!fs::exists(t / "src/forest_1.jpg"));
  CHECK(!fs::exists(t / "src/both.png"));
  CHECK(!fs::exists(t / "src/dup_sea.png"));
  CHECK(fs::exists(t / "src/throw.jpg"));
  CHECK(result_for(s, "both.png").source_removed);
  CHECK(sha256_file(t / "dest/forest/forest_1.jpg") == sha256_file(kImages + "good.jpg"));
  CHECK(sha256_file(t / "dest/forest/both.png") == sha256_file(kImages + "good.png"));
  CHECK(sha256_file(t / "dest/sea/both.png") == sha256_file(kImages + "good.png"));
  CHECK(sha256_file(t / "dest/sea/dup_sea.png") == sha256_file(kImages + "rgba.png"));

  // a source that is itself the archived file (SRC is DEST/forest) is never deleted
  SortTempDir t2;
  put("good.jpg", t2 / "dest/forest/forest.jpg");
  SortOptions o2 = options(t2);
  o2.src = t2 / "dest/forest";
  o2.move = true;
  SortSummary s2 = sort_photos(o2, m.fn());
  CHECK(s2.duplicates == 1);
  CHECK(fs::exists(t2 / "dest/forest/forest.jpg"));
  CHECK(!result_for(s2, "forest.jpg").source_removed);
}

TEST_CASE("sort: --dry-run changes nothing on disk and reports what a real run would do") {
  SortTempDir t;
  put("good.jpg", t / "src/forest_a.jpg");
  put("gray.jpg", t / "src/sub/forest_a.jpg");
  put("good.png", t / "src/both.png");
  put("truncated.jpg", t / "src/broken.jpg");
  put("good.png", t / "dest/forest/both.png");  // already archived
  FakeModel m;
  for (bool move : {false, true}) {
    const auto src_before = snapshot(t.path / "src"), dest_before = snapshot(t.path / "dest");
    SortOptions o = options(t);
    o.dry_run = true;
    o.move = move;
    o.multi_label = true;
    SortSummary s = sort_photos(o, m.fn());
    CHECK(snapshot(t.path / "src") == src_before);
    CHECK(snapshot(t.path / "dest") == dest_before);
    CHECK(s.manifest_path.empty());
    CHECK(s.to_string() == "scanned=4 copied=3 duplicates=0 skipped=0 failed=1");
    CHECK(result_for(s, "both.png").destinations ==
          std::vector<std::string>{t / "dest/forest/both.png", t / "dest/sea/both.png"});
    // the second forest_a.jpg is planned as forest_a_2.jpg, as a real run would name it
    std::vector<std::string> planned;
    for (const auto& f : s.files)
      for (const auto& d : f.destinations) planned.push_back(d);
    CHECK(std::count(planned.begin(), planned.end(), t / "dest/forest/forest_a_2.jpg") == 1);
  }
  // a dry run into a destination that does not exist yet does not create it
  SortOptions o = options(t);
  o.dest = t / "fresh";
  o.dry_run = true;
  CHECK(sort_photos(o, m.fn()).copied == 3);
  CHECK(!fs::exists(t / "fresh"));
}

TEST_CASE("sort: a destination inside the source is refused") {
  SortTempDir t;
  put("good.jpg", t / "src/a.jpg");
  FakeModel m;
  const auto before = snapshot(t.path);
  for (const std::string& dest : {t / "src/archive", t / "src", t / "src/x/../archive", t / "src/"}) {
    SortOptions o = options(t);
    o.dest = dest;
    CHECK_THROWS_AS(sort_photos(o, m.fn()), tinycnn::ValueError);
  }
  fs::create_directory_symlink(t / "src", t / "alias");  // the same folder through a link
  SortOptions o = options(t);
  o.dest = t / "alias/archive";
  CHECK_THROWS_AS(sort_photos(o, m.fn()), tinycnn::ValueError);
  auto after = snapshot(t.path);
  after.erase("alias");
  CHECK(str(after) == str(before));
  CHECK(m.calls == 0);
  o.dest = t / "src-archive";  // a sibling with a common name prefix is fine
  CHECK(sort_photos(o, m.fn()).copied == 1);
  // bad class names would escape DEST
  o.class_names = {"forest", "../sea", "street"};
  CHECK_THROWS_AS(sort_photos(o, m.fn()), tinycnn::ValueError);
}

TEST_CASE("sort: symlinks are not followed by default") {
  SortTempDir t;
  put("good.jpg", t / "outside/sea_link_target.jpg");
  put("gray.jpg", t / "outside/dir/street_in_dir.jpg");
  put("good.png", t / "src/forest.png");
  fs::create_symlink(t / "outside/sea_link_target.jpg", t / "src/sea_link.jpg");
  fs::create_directory_symlink(t / "outside/dir", t / "src/linked_dir");
  fs::create_directory_symlink(t / "src", t / "src/loop");  // a cycle
  FakeModel m;
  SortOptions o = options(t);
  SortSummary s = sort_photos(o, m.fn());
  CHECK(s.to_string() == "scanned=4 copied=1 duplicates=0 skipped=3 failed=0");
  CHECK(result_for(s, "sea_link.jpg").reason == "symlink (not followed)");
  CHECK(!fs::exists(t / "dest/sea"));
  CHECK(!fs::exists(t / "dest/street"));

  SortTempDir t2;
  put("good.jpg", t2 / "outside/sea_link_target.jpg");
  put("gray.jpg", t2 / "outside/dir/street_in_dir.jpg");
  put("good.png", t2 / "src/forest.png");
  fs::create_symlink(t2 / "outside/sea_link_target.jpg", t2 / "src/sea_link.jpg");
  fs::create_directory_symlink(t2 / "outside/dir", t2 / "src/linked_dir");
  fs::create_directory_symlink(t2 / "src", t2 / "src/loop");
  SortOptions o2 = options(t2);
  o2.follow_symlinks = true;
  SortSummary s2 = sort_photos(o2, m.fn());
  CHECK(s2.to_string() == "scanned=3 copied=3 duplicates=0 skipped=0 failed=0");
  CHECK(fs::is_regular_file(fs::symlink_status(t2 / "dest/sea/sea_link.jpg")));  // a copy, not a link
  CHECK(fs::exists(t2 / "dest/street/street_in_dir.jpg"));
  CHECK(fs::exists(t2 / "outside/sea_link_target.jpg"));
}

TEST_CASE("sort: with a batch classifier the same archive; it sees only checked photos; its failures fall back") {
  // One source tree, sorted three times into fresh destinations: one photo at a time, with batches
  // of 3, and with a batch classifier that throws.
  SortTempDir t;
  const char* good[][2] = {{"good.jpg", "a_forest.jpg"}, {"good.png", "b_sea.png"},   {"gray.jpg", "c_street.jpg"},
                           {"gray.png", "d_sea.png"},    {"image.bmp", "e_none.bmp"}, {"good.jpg", "f_both.jpg"},
                           {"good.jpg", "g_forest_copy.jpg"}, {"good.png", "h_throw.png"}};
  for (const auto& g : good) put(g[0], t / (std::string("src/") + g[1]));
  for (const char* bad : {"bomb_16384x16384.png", "text.jpg", "truncated.jpg", "empty.jpg"})
    put(bad, t / (std::string("src/bad/") + bad));
  REQUIRE(::mkfifo((t / "src/pipe.jpg").c_str(), 0644) == 0);
  put("good.jpg", t / "outside/sea_link_target.jpg");
  fs::create_symlink(t / "outside/sea_link_target.jpg", t / "src/sea_link.jpg");

  auto run = [&](const std::string& dest, int mode, FakeModel& m, std::vector<std::vector<std::string>>& batches) {
    SortOptions o = options(t);
    o.dest = t / dest;
    o.batch = 3;
    BatchClassifier b = [&](const std::vector<std::string>& paths) {
      std::vector<std::string> names;
      for (const auto& p : paths) names.push_back(fs::path(p).filename().string());
      batches.push_back(names);
      if (mode == 2) throw std::bad_alloc();
      std::vector<std::vector<float>> out;
      Classifier one = m.fn();
      for (const auto& p : paths) {
        try {
          out.push_back(one(p));
        } catch (...) {
          out.emplace_back();  // this photo falls back to the single classifier
        }
      }
      return out;
    };
    return mode == 0 ? sort_photos(o, m.fn()) : sort_photos(o, m.fn(), b);
  };
  FakeModel m0, m1, m2;
  std::vector<std::vector<std::string>> b0, b1, b2;
  const SortSummary s0 = run("dest0", 0, m0, b0), s1 = run("dest1", 1, m1, b1), s2 = run("dest2", 2, m2, b2);
  INFO(s0.to_string());
  CHECK(s0.to_string() == "scanned=14 copied=7 duplicates=0 skipped=4 failed=3");
  CHECK(s1.to_string() == s0.to_string());
  CHECK(s2.to_string() == s0.to_string());
  auto archive = [&](const std::string& dest) {  // the copies (the manifests name their own folders)
    auto m = snapshot(t.path / dest);
    CHECK(m.erase("manifest.csv") == 1);
    return str(m);
  };
  CHECK(archive("dest1") == archive("dest0"));
  CHECK(archive("dest2") == archive("dest0"));
  CHECK(archive("dest0").find("forest/g_forest_copy.jpg=file:") != std::string::npos);
  for (size_t i = 0; i < s0.files.size(); ++i) {
    CHECK(s1.files[i].source == s0.files[i].source);
    CHECK(file_status_name(s1.files[i].status) == std::string(file_status_name(s0.files[i].status)));
    CHECK(s1.files[i].reason == s0.files[i].reason);
  }
  CHECK(b0.empty());
  // batches of at most 3, in scan order, only photos that passed the checks (the 8 good ones: the
  // bomb's and the truncated JPEG's headers fail the probe), each once
  std::vector<std::string> seen;
  for (const auto& b : b1) {
    CHECK(b.size() <= 3);
    seen.insert(seen.end(), b.begin(), b.end());
  }
  CHECK(seen == std::vector<std::string>{"a_forest.jpg", "b_sea.png", "c_street.jpg", "d_sea.png", "e_none.bmp",
                                         "f_both.jpg", "g_forest_copy.jpg", "h_throw.png"});
  // the single classifier ran only where the batch gave nothing: the photo the model refuses
  CHECK(m1.seen.size() == seen.size() + 1);
  CHECK(m1.seen.back() == "h_throw.png");
  CHECK(result_for(s1, "h_throw.png").reason == result_for(s0, "h_throw.png").reason);
  CHECK(b2.size() == b1.size());  // a throwing batch classifier: every photo one at a time instead
}

TEST_CASE("sort: manifest fields are CSV-quoted") {
  CHECK(csv_field("plain") == "plain");
  CHECK(csv_field("a,b") == "\"a,b\"");
  CHECK(csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(csv_field("two\nlines") == "\"two\nlines\"");
  CHECK(csv_field(" pad") == "\" pad\"");
  SortTempDir t;
  put("good.jpg", t / "src/sea, \"quoted\".jpg");
  FakeModel m;
  SortOptions o = options(t);
  o.manifest = t / "log.csv";
  sort_photos(o, m.fn());
  const std::string man = read_text(t / "log.csv");
  CHECK(man.find(csv_field(t / "src/sea, \"quoted\".jpg") + ",copied,") != std::string::npos);
  CHECK(!fs::exists(t / "dest/manifest.csv"));
}

// ---- Grad-CAM ----------------------------------------------------------------------------------

namespace {

// A red square at rows [y0, y0+s), cols [x0, x0+s) on a dark grey 3 x H x W input in [0, 1].
tinycnn::Tensor<float> red_square(int H, int W, int y0, int x0, int s) {
  tinycnn::Tensor<float> x({1, 3, H, W});
  x.fill(0.1f);
  for (int y = y0; y < y0 + s; ++y)
    for (int xx = x0; xx < x0 + s; ++xx) x.at({0, 0, y, xx}) = 1.0f;
  return x;
}

// AvgPool 2 -> the last conv: 1x1, one filter that copies the red channel (identity-like), no bias
// -> GlobalAvgPool -> Dense(2) with weights +1 (class 0) and -1 (class 1).
template <class M>
void make_identity_red(M& conv, tinycnn::nn::Dense<float>& dense) {
  conv.kernel().value().fill(0.0f);
  conv.kernel().value().at({0, 0, 0, 0}) = 1.0f;
  dense.kernel().value() = tinycnn::Tensor<float>::from({1, 2}, {1.0f, -1.0f});
  dense.bias().value().fill(0.0f);
}

void check_peak_in_square(const GradCam& g, int y0, int x0, int s) {
  REQUIRE(g.cam.size() == static_cast<size_t>(g.width * g.height));
  const size_t best = static_cast<size_t>(std::max_element(g.cam.begin(), g.cam.end()) - g.cam.begin());
  const int by = static_cast<int>(best) / g.width, bx = static_cast<int>(best) % g.width;
  CHECK(by >= y0);
  CHECK(by < y0 + s);
  CHECK(bx >= x0);
  CHECK(bx < x0 + s);
  double in = 0, out = 0;
  int nin = 0, nout = 0;
  for (int y = 0; y < g.height; ++y)
    for (int x = 0; x < g.width; ++x) {
      const float v = g.cam[static_cast<size_t>(y * g.width + x)];
      const bool inside = y >= y0 && y < y0 + s && x >= x0 && x < x0 + s;
      (inside ? in : out) += v;
      ++(inside ? nin : nout);
    }
  CHECK(in / nin > 0.8);
  CHECK(out / nout < 0.2);
}

}  // namespace

TEST_CASE("gradcam: size, range, and the peak where a constructed model looks (Sequential and Graph)") {
  using namespace tinycnn;
  // a tiny random CNN: the map is the input's size and in [0, 1]
  {
    nn::Sequential<float> m(3);
    m.add<nn::Conv2D>(4, 3, 1, "same", "relu");
    m.add<nn::MaxPool2D>(2);
    m.add<nn::Conv2D>(6, 3, 1, "same", "relu");
    m.add<nn::Flatten>();
    m.add<nn::Dense>(3);
    Rng rng(5);
    Tensor<float> x({1, 3, 12, 16});
    x.fill_uniform(0.0f, 1.0f, rng);
    m.train();
    const GradCam g = grad_cam(m, x);
    CHECK(g.width == 16);
    CHECK(g.height == 12);
    CHECK(g.map_width == 8);
    CHECK(g.map_height == 6);
    CHECK(g.layer == "conv2d_1");
    CHECK(g.logits.size() == 3);
    CHECK(g.target_class == static_cast<int>(std::max_element(g.logits.begin(), g.logits.end()) - g.logits.begin()));
    for (float v : g.cam) {
      CHECK(v >= 0.0f);
      CHECK(v <= 1.0f);
    }
    CHECK(m.is_training());  // the mode is restored
    for (auto& p : m.parameters()) {
      CHECK(p.second.requires_grad());
      CHECK(!p.second.grad().defined());  // no gradient leaked into the weights
    }
    CHECK_THROWS_AS(grad_cam(m, x, 7), ValueError);
    CHECK_THROWS_AS(grad_cam(m, x, 0, "dense"), Error);  // not a layer with a [C, H, W] output
    CHECK(grad_cam(m, x, 0, "conv2d").map_width == 16);  // an earlier conv by name
  }
  // identity-like last conv on the red channel: class 0's CAM is the (upsampled) red square
  {
    nn::Sequential<float> m(1);
    m.add<nn::AvgPool2D>(2);
    auto& conv = m.add<nn::Conv2D>(1, 1, 1, "valid", "", false);
    m.add<nn::GlobalAvgPool2D>();
    auto& dense = m.add<nn::Dense>(2);
    m.build({3, 32, 32});
    make_identity_red(conv, dense);
    const Tensor<float> x = red_square(32, 32, 8, 20, 8);
    const GradCam g = grad_cam(m, x, 0);
    CHECK(g.map_width == 16);
    check_peak_in_square(g, 8, 20, 8);
    CHECK(*std::max_element(g.cam.begin(), g.cam.end()) == doctest::Approx(1.0f));
    // class 1 (weight -1) has no positive evidence anywhere: the CAM is all zeros
    const GradCam g1 = grad_cam(m, x, 1);
    CHECK(*std::max_element(g1.cam.begin(), g1.cam.end()) == 0.0f);
  }
  {
    nn::Graph<float> gm({3, 32, 32}, 1);
    auto a = gm.add<nn::AvgPool2D>({gm.input()}, 2);
    auto c = gm.add<nn::Conv2D>({a}, 1, 1, 1, "valid", "", false);
    auto p = gm.add<nn::GlobalAvgPool2D>({c});
    gm.add<nn::Dense>({p}, 2);
    make_identity_red(static_cast<nn::Conv2D<float>&>(gm.layer(1)), static_cast<nn::Dense<float>&>(gm.layer(3)));
    const GradCam g = grad_cam(gm, red_square(32, 32, 16, 4, 12), 0);
    check_peak_in_square(g, 16, 4, 12);
  }
  {
    nn::Sequential<float> m(1);
    m.add<nn::Flatten>();
    m.add<nn::Dense>(2);
    CHECK_THROWS_AS(grad_cam(m, red_square(8, 8, 0, 0, 2)), ValueError);  // no convolution
  }
}

TEST_CASE("gradcam: overlay, PNG and base64") {
  using namespace tinycnn;
  CHECK(base64({}) == "");
  CHECK(base64({'f'}) == "Zg==");
  CHECK(base64({'f', 'o'}) == "Zm8=");
  CHECK(base64({'f', 'o', 'o'}) == "Zm9v");
  CHECK(base64({'f', 'o', 'o', 'b', 'a', 'r'}) == "Zm9vYmFy");
  uint8_t c[3];
  jet(0.0f, c);
  CHECK((c[2] > 100 && c[0] == 0));  // blue
  jet(1.0f, c);
  CHECK((c[0] > 100 && c[2] == 0));  // red

  data::Image im(40, 30);
  for (int y = 0; y < 30; ++y)
    for (int x = 0; x < 40; ++x)
      for (int k = 0; k < 3; ++k) im.at(x, y, k) = static_cast<uint8_t>((x * 5 + y * 3 + k * 60) % 256);
  std::vector<float> cam(10 * 5, 0.0f);
  cam[2 * 10 + 7] = 1.0f;
  const data::Image over = overlay_cam(im, cam, 10, 5);
  CHECK(over.width == 40);
  CHECK(over.height == 30);
  CHECK(over.at(29, 14, 0) > over.at(5, 25, 0));  // red where the map peaks
  // PNG round trip through tinycnn's own decoder
  const std::vector<uint8_t> png = encode_png(over);
  const data::Image back = data::load_image_from_memory(png, "overlay.png");
  CHECK(back.width == 40);
  CHECK(back.height == 30);
  CHECK(back.pixels == over.pixels);
  CHECK(png_data_uri(over).rfind("data:image/png;base64,iVBORw0KGgo", 0) == 0);
  SortTempDir t;
  write_png(t / "o.png", over);
  CHECK(data::load_image_file(t / "o.png").pixels == over.pixels);
  CHECK(std::distance(fs::directory_iterator(t.path), fs::directory_iterator()) == 1);  // no temp file left
  // a larger, less compressible image
  data::Image big(100, 100, 3);
  for (size_t i = 0; i < big.pixels.size(); ++i) big.pixels[i] = static_cast<uint8_t>(i * 13 + i / 300);
  CHECK(data::load_image_from_memory(encode_png(big), "big.png").pixels == big.pixels);
}

// ---- report.html -------------------------------------------------------------------------------

namespace {

ReportData sample_report() {
  using namespace tinycnn;
  ReportData r;
  r.title = "test <report> & \"quotes\"";
  r.class_names = {"buildings", "forest", "sea"};
  r.loss = {1.2, 0.8, 0.6, 0.5};
  r.val_loss = {1.1, 0.9, std::nan(""), 0.7};
  r.accuracy = {0.4, 0.6, 0.7, 0.75};
  r.val_accuracy = {0.45, 0.55, 0.65, 0.7};
  r.confusion = train::ConfusionMatrix(3);
  r.confusion.add(0, 0, 20);
  r.confusion.add(0, 1, 3);
  r.confusion.add(1, 1, 18);
  r.confusion.add(2, 2, 15);
  r.confusion.add(2, 0, 5);
  r.model_summary = "Model: \"sequential\"\nconv2d (Conv2D)  (None, 8, 16, 16)  224\n<script>alert(1)</script>";
  r.config = {{"model", "tiny"}, {"epochs", "4"}, {"lr", "0.001"}};
  nn::Sequential<float> m(2);
  m.add<nn::Conv2D>(4, 3, 1, "same", "relu");
  m.add<nn::MaxPool2D>(2);
  m.add<nn::Conv2D>(4, 3, 1, "same", "relu");
  m.add<nn::Flatten>();
  m.add<nn::Dense>(3);
  for (int i = 0; i < 3; ++i) {
    data::Image im(32, 32);
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        im.at(x, y, 0) = static_cast<uint8_t>(x * 8);
        im.at(x, y, 1) = static_cast<uint8_t>(y * 8);
        im.at(x, y, 2) = static_cast<uint8_t>(i * 100);
      }
    add_misclassified(r, m, im, data::to_tensor(im), i, (i + 1) % 3, 0.5 + 0.1 * i, "img_" + std::to_string(i) + "<b>.jpg");
  }
  return r;
}

}  // namespace

TEST_CASE("report: one self-contained, escaped HTML file with every section") {
  SortTempDir t;
  const ReportData r = sample_report();
  const std::string path = t / "report.html";
  write_report(path, r);
  const std::string html = read_text(path);
  CHECK(std::distance(fs::directory_iterator(t.path), fs::directory_iterator()) == 1);  // written atomically, no temp left
  for (const char* id : {"id=\"curves\"", "id=\"confusion\"", "id=\"per-class\"", "id=\"misclassified\"", "id=\"model\"", "id=\"config\""})
    CHECK(html.find(id) != std::string::npos);
  CHECK(html.find("<h2>Training curves</h2>") != std::string::npos);
  CHECK(std::count(html.begin(), html.end(), '\n') > 10);
  // two line charts and a heat map, inline
  size_t svgs = 0;
  for (size_t p = html.find("<svg"); p != std::string::npos; p = html.find("<svg", p + 1)) ++svgs;
  CHECK(svgs == 3);
  CHECK(html.find(">training<") != std::string::npos);
  CHECK(html.find(">validation<") != std::string::npos);
  // the captions, each with an image and its Grad-CAM inline
  CHECK(html.find("True: buildings / Predicted: forest (0.500)") != std::string::npos);
  CHECK(html.find("True: sea / Predicted: buildings (0.700)") != std::string::npos);
  size_t imgs = 0;
  for (size_t p = html.find("src=\"data:image/png;base64,"); p != std::string::npos; p = html.find("src=\"data:image/png;base64,", p + 1)) ++imgs;
  CHECK(imgs == 6);
  // per-class table from the confusion matrix
  CHECK(html.find("<td>buildings</td><td>0.8000</td><td>0.8696</td>") != std::string::npos);
  CHECK(html.find("macro avg") != std::string::npos);
  // escaping, and nothing that reaches the network
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(html.find("test &lt;report&gt; &amp; &quot;quotes&quot;") != std::string::npos);
  CHECK(html.find("img_0&lt;b&gt;.jpg") != std::string::npos);
  CHECK(html.find("http://") == html.find("http://www.w3.org/2000/svg"));  // only the SVG namespace name
  CHECK(html.find("https://") == std::string::npos);
  CHECK(html.find("src=\"http") == std::string::npos);
  CHECK(html_escape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&#39;");
  // an empty run still renders
  write_report(path, ReportData{});
  CHECK(read_text(path).find("No confusion matrix") != std::string::npos);
}

TEST_CASE("report: renders in headless Chromium (screenshot is not blank)") {
  const char* chromium = "/usr/bin/chromium";
  if (!fs::exists(chromium)) {
    MESSAGE("skipped: /usr/bin/chromium is not installed (scripts/install-deps.sh installs Debian's chromium)");
    return;
  }
  SortTempDir t;
  write_report(t / "report.html", sample_report());
  fs::create_directories(t.path / "profile");
  const std::string shot = t / "shot.png";
  const std::string cmd = std::string("timeout 60 ") + chromium +
                          " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking"
                          " --disable-component-update --disable-sync --disable-dev-shm-usage --hide-scrollbars"
                          " --user-data-dir=" + (t / "profile") + " --screenshot=" + shot +
                          " --window-size=1200,2000 file://" + (t / "report.html") + " > " + (t / "chromium.log") + " 2>&1";
  const int rc = std::system(cmd.c_str());
  INFO("chromium output: " << read_text(t / "chromium.log"));
  REQUIRE(rc == 0);
  REQUIRE(fs::exists(shot));
  if (const char* keep = std::getenv("TINYCNN_REPORT_SHOT")) {  // to look at it: TINYCNN_REPORT_SHOT=/tmp/shot.png
    fs::copy_file(shot, keep, fs::copy_options::overwrite_existing);
    fs::copy_file(t / "report.html", std::string(keep) + ".html", fs::copy_options::overwrite_existing);
  }
  const tinycnn::data::Image im = tinycnn::data::load_image_file(shot);
  CHECK(im.width == 1200);
  CHECK(im.height == 2000);
  // not blank: the pixels vary, and there is dark text and coloured (non-grey) chart/heat-map/CAM pixels
  double sum = 0, sum2 = 0;
  size_t dark = 0, colour = 0;
  const size_t n = static_cast<size_t>(im.width) * static_cast<size_t>(im.height);
  for (size_t i = 0; i < n; ++i) {
    const int r = im.pixels[3 * i], g = im.pixels[3 * i + 1], b = im.pixels[3 * i + 2];
    const double l = (r + g + b) / 3.0;
    sum += l;
    sum2 += l * l;
    dark += l < 80;
    colour += std::max({r, g, b}) - std::min({r, g, b}) > 60;
  }
  const double mean = sum / double(n), var = sum2 / double(n) - mean * mean;
  INFO("mean " << mean << " variance " << var << " dark " << dark << " colour " << colour);
  CHECK(var > 100.0);
  CHECK(dark > 2000);
  CHECK(colour > 2000);
}
