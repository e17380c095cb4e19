// ImageFolder, stratified split, DataLoader (determinism across thread counts, resume, cache), and
// the one-call loading of the shared Intel scenes folder.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <tinycnn/data/loader.hpp>

using namespace tinycnn;
using namespace tinycnn::data;
namespace fs = std::filesystem;

namespace {
const std::string kBadImages = std::string(TINYCNN_TEST_DATA_DIR) + "/bad_images/";

// root/{cats: 5 images, dogs: 3 images, zebra: 2 images} plus files that must be skipped.
struct TempFolder {
  fs::path root;
  TempFolder() {
    root = fs::temp_directory_path() /
           ("tinycnn_folder_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(root / "cats");
    fs::create_directories(root / "dogs");
    fs::create_directories(root / "zebra");
    const char* goods[] = {"good.jpg", "good.png", "image.bmp", "gray.png", "rgba.png"};
    int i = 0;
    for (const char* g : goods) fs::copy_file(kBadImages + g, root / "cats" / ("c" + std::to_string(i++) + "_" + g));
    fs::copy_file(kBadImages + "good.jpg", root / "dogs" / "d0.JPG");   // extension case-insensitive
    fs::copy_file(kBadImages + "progressive.jpg", root / "dogs" / "d1.jpeg");
    fs::copy_file(kBadImages + "palette.png", root / "dogs" / "d2.png");
    fs::copy_file(kBadImages + "one_pixel.png", root / "zebra" / "z0.png");
    fs::copy_file(kBadImages + "gray.jpg", root / "zebra" / "z1.jpg");
    // to be skipped:
    fs::copy_file(kBadImages + "text.jpg", root / "cats" / "x_text.jpg");
    fs::copy_file(kBadImages + "truncated.jpg", root / "dogs" / "x_trunc.jpg");
    fs::copy_file(kBadImages + "anim.gif", root / "dogs" / "x_anim.gif");       // not an image extension
    fs::copy_file(kBadImages + "good.jpg", root / "zebra" / ".hidden.jpg");
    fs::create_directories(root / ".git");
  }
  ~TempFolder() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};
}  // namespace

TEST_CASE("data folder: classes, samples, skipped files, counts and weights") {
  TempFolder t;
  ImageFolder f(t.root.string());
  CHECK(f.classes() == std::vector<std::string>{"cats", "dogs", "zebra"});
  CHECK(f.size() == 10);
  CHECK(f.class_counts() == std::vector<int64_t>{5, 3, 2});
  const auto w = f.class_weights();
  CHECK(w[0] == doctest::Approx(10.0 / (3 * 5)));
  CHECK(w[2] == doctest::Approx(10.0 / (3 * 2)));
  const auto sk = f.skipped();
  CHECK(sk.size() == 4);  // text, truncated, gif, hidden
  bool saw_trunc = false;
  for (const auto& s : sk) saw_trunc = saw_trunc || (s.path.find("x_trunc") != std::string::npos && s.reason.find("truncated") != std::string::npos);
  CHECK(saw_trunc);
  CHECK(f.load(0)->channels == 3);

  ImageFolderOptions strict;
  strict.strict = true;
  CHECK_THROWS_AS(ImageFolder(t.root.string(), strict), ImageError);

  ImageFolderOptions expl;
  expl.classes = {"zebra", "cats"};
  ImageFolder g(t.root.string(), expl);
  CHECK(g.size() == 7);
  CHECK(g.label(0) == 0);  // zebra first
  CHECK_THROWS_AS(ImageFolder((t.root / "nope").string()), IOError);
}

TEST_CASE("data folder: stratified split is per class, seeded and disjoint") {
  std::vector<int32_t> labels;
  for (int c = 0; c < 4; ++c)
    for (int i = 0; i < 50 + 25 * c; ++i) labels.push_back(c);
  const Split a = stratified_split(labels, 0.2, 5), b = stratified_split(labels, 0.2, 5), c = stratified_split(labels, 0.2, 6);
  CHECK(a.val == b.val);
  CHECK(a.val != c.val);
  CHECK(a.train.size() + a.val.size() == labels.size());
  std::vector<int> per(4, 0);
  for (size_t i : a.val) ++per[static_cast<size_t>(labels[i])];
  CHECK(per == std::vector<int>{10, 15, 20, 25});
  std::vector<size_t> all = a.train;
  all.insert(all.end(), a.val.begin(), a.val.end());
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i < all.size(); ++i) CHECK(all[i] == i);
}

TEST_CASE("data loader: same batches for any thread count; drop_last; resume; cache") {
  TempFolder t;
  auto f = std::make_shared<ImageFolder>(t.root.string());
  LoaderOptions o;
  o.width = 24;
  o.height = 20;
  o.batch_size = 3;
  o.seed = 11;
  o.augment = true;
  o.aug = default_augment();
  auto run = [&](int workers, int epochs) {
    LoaderOptions oo = o;
    oo.num_workers = workers;
    DataLoader dl(f, oo);
    std::vector<std::vector<float>> out;
    Batch b;
    for (int e = 0; e < epochs; ++e)
      while (dl.next(b)) {
        out.push_back(b.images.to_vector());
        out.push_back(std::vector<float>(b.labels.begin(), b.labels.end()));
      }
    return out;
  };
  const auto r0 = run(0, 2), r1 = run(1, 2), r2 = run(2, 2);
  CHECK(r0 == r1);
  CHECK(r0 == r2);
  CHECK(r0.size() == 2 * 2 * 4);  // 10 samples / 3 -> 4 batches, 2 epochs
  CHECK(r0[0] != r0[8]);          // epochs differ (shuffle + augmentation)

  o.drop_last = true;
  o.num_workers = 2;
  DataLoader dl(f, o);
  CHECK(dl.num_batches() == 3);
  Batch b;
  int n = 0;
  while (dl.next(b)) {
    CHECK(b.images.shape() == Shape{3, 3, 20, 24});
    CHECK(b.labels.size() == 3);
    ++n;
  }
  CHECK(n == 3);
  CHECK(dl.position().epoch == 1);
  CHECK(dl.position().batch == 0);

  // Resume: batch 2 of epoch 1 after seek equals batch 2 of epoch 1 from a straight run.
  std::vector<float> straight;
  while (dl.next(b))
    if (b.index == 2) straight = b.images.to_vector();
  DataLoader resumed(f, o);
  resumed.seek({1, 2});
  REQUIRE(resumed.next(b));
  CHECK(b.epoch == 1);
  CHECK(b.index == 2);
  CHECK(b.images.to_vector() == straight);
  CHECK(resumed.position().batch == 3);

  // Cache: epochs after the first decode nothing (files deleted, images still there).
  f->enable_cache(true);
  o.drop_last = false;
  DataLoader cached(f, o);
  while (cached.next(b)) {
  }
  CHECK(f->cache_bytes() > 0);
  const auto before = run(2, 1);
  fs::remove_all(t.root / "cats");
  CHECK(run(2, 1) == before);
}

TEST_CASE("data loader: a file that fails late is skipped and replaced deterministically") {
  TempFolder t;
  ImageFolderOptions fo;
  fo.verify = Verify::None;  // the truncated JPEG gets in; decoding it fails in the loader
  auto f = std::make_shared<ImageFolder>(t.root.string(), fo);
  CHECK(f->size() == 12);  // + text.jpg and the truncated JPEG
  LoaderOptions o;
  o.width = o.height = 16;
  o.batch_size = 4;
  o.num_workers = 2;
  DataLoader dl(f, o);
  Batch b;
  int64_t seen = 0;
  while (dl.next(b)) seen += b.images.dim(0);
  CHECK(seen == 12);
  CHECK(f->skipped().size() == 4);  // gif + hidden at listing, text + truncated at load
}

TEST_CASE("data folder: one call loads the shared Intel scenes with a stratified split and augmentation") {
  const std::string root = std::string(TINYCNN_SOURCE_DIR) + "/../shared/data/intel-scenes/train";
  if (!fs::is_directory(root)) {
    MESSAGE("skipped: " << root << " is missing");
    return;
  }
  DirectoryOptions o;  // 150x150, batch 32, 20% validation, seed 42, augmentation, 2 workers
  DirectoryDataset d = image_dataset_from_directory(root, o);
  CHECK(d.num_classes() == 6);
  CHECK(d.class_names().front() == "buildings");
  CHECK(d.folder->size() >= 8700);
  const auto val = d.folder->class_counts(&d.split.val), all = d.folder->class_counts();
  for (size_t c = 0; c < all.size(); ++c) CHECK(std::abs(double(val[c]) / double(all[c]) - 0.2) < 0.01);
  CHECK(d.class_weights.size() == 6);
  Batch b;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(d.train.next(b));
    CHECK(b.images.shape() == Shape{32, 3, 150, 150});
    CHECK(b.labels.size() == 32);
  }
  REQUIRE(d.val.next(b));
  CHECK(b.images.shape() == Shape{32, 3, 150, 150});
  for (int64_t i = 0; i < b.images.numel(); ++i) REQUIRE((b.images[i] >= 0.0f && b.images[i] <= 1.0f));
}
