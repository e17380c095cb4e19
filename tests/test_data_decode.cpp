// Image decoding: the bad-image corpus (tests/data/bad_images/MANIFEST.tsv), the decompression-bomb
// budget, EXIF orientations, the private stb copy, and the IDX reader.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <tinycnn/data/decode.hpp>
#include <tinycnn/data/idx.hpp>

using namespace tinycnn;
using namespace tinycnn::data;

namespace {
std::string kind_token(ImageErrorKind k) {
  switch (k) {
    case ImageErrorKind::NotAnImage: return "not_an_image";
    case ImageErrorKind::UnsupportedFormat: return "unsupported_format";
    case ImageErrorKind::Truncated: return "truncated";
    case ImageErrorKind::Corrupt: return "corrupt";
    case ImageErrorKind::TooLarge: return "too_large";
    case ImageErrorKind::IO: return "io";
  }
  return "?";
}
const std::string kBad = std::string(TINYCNN_TEST_DATA_DIR) + "/bad_images/";
}  // namespace

TEST_CASE("data decode: every corpus file has its documented outcome") {
  std::ifstream m(kBad + "MANIFEST.tsv");
  REQUIRE(m);
  std::string line;
  int checked = 0;
  while (std::getline(m, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream row(line);
    std::string file, expected;
    std::getline(row, file, '\t');
    std::getline(row, expected, '\t');
    INFO(file << " expected " << expected);
    const std::string path = kBad + file;
    REQUIRE(std::filesystem::exists(path));
    if (expected.rfind("ok ", 0) == 0) {
      int w = 0, h = 0;
      REQUIRE(std::sscanf(expected.c_str() + 3, "%dx%d", &w, &h) == 2);
      Image im = load_image_file(path);
      CHECK(im.width == w);
      CHECK(im.height == h);
      CHECK(im.channels == 3);
      CHECK(im.pixels.size() == size_t(w) * size_t(h) * 3);
    } else {
      const std::string want = expected.substr(6);
      bool threw = false;
      try {
        (void)load_image_file(path);
      } catch (const DecodeError& e) {
        threw = true;
        CHECK(kind_token(e.kind()) == want);
        CHECK(std::string(e.what()).find(file) != std::string::npos);  // names the file
      }
      CHECK(threw);
    }
    ++checked;
  }
  CHECK(checked >= 20);
}

TEST_CASE("data decode: errors are ImageErrors and Errors") {
  CHECK_THROWS_AS(load_image_file(kBad + "text.jpg"), ImageError);
  CHECK_THROWS_AS(load_image_file(kBad + "does-not-exist.png"), Error);
  const uint8_t junk[3] = {0xFF, 0xD8, 0xFF};
  CHECK_THROWS_AS(load_image_from_memory(junk, 3), ImageError);
  CHECK_THROWS_AS(load_image_from_memory(nullptr, 0), ImageError);
}

TEST_CASE("data decode: a decompression bomb is refused without allocating its pixels") {
  CHECK_THROWS_AS(load_image_file(kBad + "bomb_16384x16384.png"), DecodeError);
  const auto& mem = last_decode_memory();
  CHECK(mem.peak < (size_t(1) << 16));             // header parsing only: far below 768 MiB
  CHECK(mem.largest_request < (size_t(1) << 16));
  // With the area limit raised, the allocation budget still refuses it.
  DecodeLimits lim;
  lim.max_pixels = int64_t(16384) * 16384;
  lim.max_decode_bytes = int64_t(8) << 20;
  try {
    (void)load_image_file(kBad + "bomb_16384x16384.png", lim);
    FAIL("bomb decoded");
  } catch (const DecodeError& e) {
    CHECK(e.kind() == ImageErrorKind::TooLarge);
  }
  CHECK(last_decode_memory().refused >= 1);
  CHECK(last_decode_memory().peak <= (size_t(8) << 20));
  CHECK(last_decode_memory().in_use == 0);  // nothing leaked
}

TEST_CASE("data decode: limits are configurable") {
  DecodeLimits lim;
  lim.max_side = 32;
  CHECK_THROWS_AS(load_image_file(kBad + "good.jpg", lim), DecodeError);  // 40x30
  lim = DecodeLimits{};
  lim.max_pixels = 100;
  CHECK_THROWS_AS(load_image_file(kBad + "good.png", lim), DecodeError);
  lim = DecodeLimits{};
  lim.max_file_bytes = 100;
  CHECK_THROWS_AS(load_image_file(kBad + "good.jpg", lim), DecodeError);
  CHECK(load_image_file(kBad + "good.jpg").width == 40);
}

TEST_CASE("data decode: pixel values of simple images") {
  Image one = load_image_file(kBad + "one_pixel.png");
  CHECK(one.pixels == std::vector<uint8_t>{10, 20, 30});
  Image g = load_image_file(kBad + "gray.png");  // replicated to RGB
  for (size_t i = 0; i < g.pixels.size(); i += 3) {
    CHECK(g.pixels[i] == g.pixels[i + 1]);
    CHECK(g.pixels[i] == g.pixels[i + 2]);
  }
  Image p16 = load_image_file(kBad + "rgb16.png");  // 16 bit -> 8 bit: 65535 -> 255, 32768 -> 128
  CHECK(p16.at(5, 0, 0) == 255);
  CHECK(p16.at(0, 3, 1) == 255);
  CHECK(p16.at(0, 0, 2) == 128);
  CHECK(probe_image_file(kBad + "rgb16.png").is_16_bit);
}

TEST_CASE("data decode: EXIF orientations 1-8 load upright") {
  for (int o = 1; o <= 8; ++o) {
    INFO("orientation " << o);
    const std::string path = std::string(TINYCNN_TEST_DATA_DIR) + "/exif/orient_" + std::to_string(o) + ".jpg";
    CHECK(probe_image_file(path).exif_orientation == o);
    Image im = load_image_file(path);
    REQUIRE(im.width == 48);
    REQUIRE(im.height == 32);
    // quadrant centres: TL red, TR green, BL blue, BR white
    auto near = [&](int x, int y, int r, int g, int b) {
      return std::abs(im.at(x, y, 0) - r) < 40 && std::abs(im.at(x, y, 1) - g) < 40 && std::abs(im.at(x, y, 2) - b) < 40;
    };
    CHECK(near(12, 8, 255, 0, 0));
    CHECK(near(36, 8, 0, 255, 0));
    CHECK(near(12, 24, 0, 0, 255));
    CHECK(near(36, 24, 255, 255, 255));
    DecodeLimits raw;
    raw.apply_exif = false;
    const Image stored = load_image_file(path, raw);
    CHECK(stored.width == (o >= 5 ? 32 : 48));
  }
}

TEST_CASE("data decode: malformed EXIF falls back to orientation 1") {
  std::ifstream f(std::string(TINYCNN_TEST_DATA_DIR) + "/exif/orient_6.jpg", std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  REQUIRE(jpeg_exif_orientation(bytes.data(), bytes.size()) == 6);
  // Cut the file inside the EXIF segment, and corrupt the IFD entry count: never read out of bounds.
  for (size_t cut = 0; cut < 64 && cut < bytes.size(); ++cut) CHECK(jpeg_exif_orientation(bytes.data(), cut) >= 1);
  std::vector<uint8_t> b = bytes;
  for (size_t i = 0; i + 6 < b.size() && i < 64; ++i)
    if (b[i] == 'E' && b[i + 1] == 'x' && b[i + 2] == 'i' && b[i + 3] == 'f') {
      b[i + 6 + 8] = 0xFF;  // IFD0 entry count (first byte, either byte order) -> huge
      b[i + 6 + 9] = 0xFF;
    }
  CHECK(jpeg_exif_orientation(b.data(), b.size()) == 1);
  CHECK(jpeg_exif_orientation(nullptr, 0) == 1);
}

TEST_CASE("data decode: format sniffing ignores the file name") {
  const uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a', 0, 0};
  CHECK(sniff_image_format(gif, sizeof gif) == ImageFormat::GIF);
  const uint8_t webp[] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P'};
  CHECK(sniff_image_format(webp, sizeof webp) == ImageFormat::WEBP);
  try {
    (void)load_image_from_memory(webp, sizeof webp, "x.png");
    FAIL("webp decoded");
  } catch (const DecodeError& e) {
    CHECK(e.kind() == ImageErrorKind::UnsupportedFormat);
  }
}

TEST_CASE("data idx: Fashion-MNIST and bad files") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (std::filesystem::exists(dir + "/t10k-labels-idx1-ubyte.gz")) {
    IdxDataset t = load_fashion_mnist(dir, false);
    CHECK(t.images.shape() == Shape{10000, 1, 28, 28});
    CHECK(t.labels.size() == 10000);
    for (int32_t l : t.labels) CHECK((l >= 0 && l <= 9));
    float mx = 0;
    for (int64_t i = 0; i < t.images.numel(); ++i) mx = std::max(mx, t.images[i]);
    CHECK(mx <= 1.0f);
    CHECK(mx > 0.9f);
  } else {
    MESSAGE("skipped: " << dir << " missing (install dataset-fashion-mnist)");
  }
  const std::string tmp = (std::filesystem::temp_directory_path() / "tinycnn_idx_test.bin").string();
  auto write = [&](const std::vector<uint8_t>& b) {
    std::ofstream o(tmp, std::ios::binary);
    o.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  };
  write({0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9});
  IdxArray a = read_idx_file(tmp);
  CHECK(a.dims == std::vector<int64_t>{3});
  CHECK(a.data == std::vector<uint8_t>{7, 8, 9});
  write({0, 0, 8, 1, 0, 0, 0, 4, 7, 8, 9});  // truncated
  CHECK_THROWS_AS(read_idx_file(tmp), FormatError);
  write({0, 0, 8, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF});  // huge claim
  CHECK_THROWS_AS(read_idx_file(tmp), FormatError);
  write({1, 2, 3});
  try {
    (void)read_idx_file(tmp);
    FAIL("read");
  } catch (const FormatError& e) {
    CHECK(std::string(e.what()).find(tmp) != std::string::npos);
  }
  std::filesystem::remove(tmp);
  CHECK_THROWS_AS(read_idx_file(tmp), FormatError);
}
