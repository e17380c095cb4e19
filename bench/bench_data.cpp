// Data pipeline throughput on the shared Intel scenes JPEGs (../shared/data/intel-scenes/train):
// decode + augment through the DataLoader with 1 and 2 workers, from the in-memory cache, decode
// alone, and the two resamplers. items_per_second = images/s. Skips when ../shared is missing.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <memory>
#include <tinycnn/data/loader.hpp>

using namespace tinycnn::data;

namespace {
const std::string& intel_root() {
  // ../shared relative to the repository root (found from this file's path), else to the working directory.
  static const std::string r = [] {
    const std::filesystem::path repo = std::filesystem::path(__FILE__).parent_path().parent_path();
    const std::filesystem::path p = repo / ".." / "shared" / "data" / "intel-scenes" / "train";
    return std::filesystem::is_directory(p) ? p.string() : std::string("../shared/data/intel-scenes/train");
  }();
  return r;
}
std::shared_ptr<ImageFolder> intel(bool cache) {
  static std::shared_ptr<ImageFolder> plain, cached;
  if (!std::filesystem::is_directory(intel_root())) return nullptr;
  auto& f = cache ? cached : plain;
  if (!f) {
    ImageFolderOptions o;
    o.verify = Verify::None;  // listing only; the benchmark measures decoding
    f = std::make_shared<ImageFolder>(intel_root(), o);
    if (cache) f->enable_cache(true);
  }
  return f;
}
LoaderOptions train_options(int workers) {
  LoaderOptions o;
  o.width = o.height = 150;
  o.batch_size = 32;
  o.num_workers = workers;
  o.augment = true;
  o.aug = default_augment();
  o.seed = 1;
  return o;
}

// Decode + augment + normalise to NCHW float through the loader.
void BM_LoaderDecodeAugment(benchmark::State& st, bool cache) {
  auto f = intel(cache);
  if (!f) {
    st.SkipWithError("../shared/data/intel-scenes/train is missing");
    return;
  }
  const int workers = static_cast<int>(st.range(0));
  DataLoader dl(f, train_options(workers));
  if (cache) {  // fill the cache once, outside the timing
    Batch b;
    while (dl.next(b)) {
    }
  }
  int64_t images = 0;
  Batch b;
  for (auto _ : st) {
    if (!dl.next(b) && !dl.next(b)) break;
    images += b.images.dim(0);
    benchmark::DoNotOptimize(b.images.data());
  }
  st.SetItemsProcessed(images);
}
void BM_LoaderDecodeAugment_Files(benchmark::State& st) { BM_LoaderDecodeAugment(st, false); }
void BM_LoaderAugment_Cache(benchmark::State& st) { BM_LoaderDecodeAugment(st, true); }
BENCHMARK(BM_LoaderDecodeAugment_Files)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_LoaderAugment_Cache)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);

// Decode only (file read + JPEG decode), one thread.
void BM_DecodeJpeg(benchmark::State& st) {
  auto f = intel(false);
  if (!f) {
    st.SkipWithError("../shared/data/intel-scenes/train is missing");
    return;
  }
  size_t i = 0;
  for (auto _ : st) {
    Image im = load_image_file(f->samples()[i++ % f->size()].path);
    benchmark::DoNotOptimize(im.pixels.data());
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
}
BENCHMARK(BM_DecodeJpeg)->Unit(benchmark::kMicrosecond);

// Resize one 150x150 image: arg 0 = own bilinear resampler, 1 = stb_image_resize; to 224 and to 64.
void BM_Resize(benchmark::State& st) {
  auto f = intel(false);
  if (!f) {
    st.SkipWithError("../shared/data/intel-scenes/train is missing");
    return;
  }
  const Image im = load_image_file(f->samples()[0].path);
  const Resampler r = st.range(0) ? Resampler::Stb : Resampler::Bilinear;
  const int side = static_cast<int>(st.range(1));
  for (auto _ : st) {
    Image out = resize(im, side, side, r);
    benchmark::DoNotOptimize(out.pixels.data());
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
  st.SetLabel(st.range(0) ? "stb" : "own bilinear");
}
BENCHMARK(BM_Resize)->Args({0, 224})->Args({1, 224})->Args({0, 64})->Args({1, 64})->Unit(benchmark::kMicrosecond);

// The single-warp augmentation alone (150x150 -> 150x150).
void BM_Augment(benchmark::State& st) {
  auto f = intel(false);
  if (!f) {
    st.SkipWithError("../shared/data/intel-scenes/train is missing");
    return;
  }
  const Image im = load_image_file(f->samples()[0].path);
  const AugmentOptions a = default_augment();
  tinycnn::Rng rng(3);
  for (auto _ : st) {
    Image out = augment(im, 150, 150, a, rng);
    benchmark::DoNotOptimize(out.pixels.data());
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
}
BENCHMARK(BM_Augment)->Unit(benchmark::kMicrosecond);
}  // namespace
