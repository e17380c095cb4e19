// Model files (io/safetensors.hpp, io/layer_registry.hpp, io/model_file.hpp): round trips, hostile
// input (truncation, bit flips, crafted headers), atomic saves, and an independent Python reader.
#include <doctest/doctest.h>

#ifdef TINYCNN_HAS_JSON

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <tinycnn/io/model_file.hpp>
#include <tinycnn/nn/avg_pool2d.hpp>
#include <tinycnn/nn/batch_normalization.hpp>
#include <tinycnn/nn/conv2d.hpp>
#include <tinycnn/nn/depthwise_conv2d.hpp>
#include <tinycnn/nn/global_avg_pool2d.hpp>
#include <tinycnn/nn/max_pool2d.hpp>
#include <tinycnn/nn/zero_padding2d.hpp>
#include <tinycnn/tinycnn.hpp>

using namespace tinycnn;

namespace {

using Bytes = std::vector<uint8_t>;

struct ModelFileTempDir {
  std::string path;
  ModelFileTempDir() {
    char tmpl[] = "/tmp/tinycnn_model_file_XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path = p;
  }
  ~ModelFileTempDir() {
    ::chmod(path.c_str(), 0700);
    for (const auto& f : files()) ::unlink((path + "/" + f).c_str());
    ::rmdir(path.c_str());
  }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(path.c_str())) {
      while (dirent* e = ::readdir(d))
        if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) out.push_back(e->d_name);
      ::closedir(d);
    }
    return out;
  }
};

bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

io::LoadedModel load_mem(const Bytes& b) { return io::load_model_from_memory(b.data(), b.size(), "model file 'test'"); }

// The loader's FormatError message; "NO ERROR" or "WRONG TYPE: ..." otherwise.
std::string load_error(const Bytes& b) {
  try {
    load_mem(b);
  } catch (const FormatError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("WRONG TYPE: ") + e.what();
  }
  return "NO ERROR";
}
bool is_format_error(const std::string& msg) { return msg != "NO ERROR" && msg.rfind("WRONG TYPE", 0) != 0; }

Bytes raw_file(const std::string& header, size_t data_bytes) {
  Bytes b(8);
  io::detail::store_u64_le(b.data(), header.size());
  b.insert(b.end(), header.begin(), header.end());
  b.resize(b.size() + data_bytes, 0);
  return b;
}
std::string container_error(const Bytes& b) {
  try {
    io::read_safetensors_from_memory(b.data(), b.size(), "safetensors file 'crafted'", io::ReadLimits{});
  } catch (const FormatError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("WRONG TYPE: ") + e.what();
  }
  return "NO ERROR";
}

using Contents = std::pair<std::vector<io::TensorRecord>, std::map<std::string, std::string>>;
Bytes reseal(Contents c) {
  c.second["checksum"] = io::content_checksum(c.first, c.second, "checksum");
  return io::safetensors_to_bytes(c.first, c.second);
}

std::unique_ptr<nn::Sequential<float>> dense_model(uint64_t seed = 1, int64_t in = 4, int64_t hidden = 8, int64_t out = 3) {
  auto m = std::make_unique<nn::Sequential<float>>(seed);
  m->add<nn::Dense>(hidden, "relu");
  m->add<nn::Dense>(out);
  m->build({in});
  Rng rng(seed + 7);
  for (auto& p : m->parameters()) p.second.value().fill_normal(0.f, 0.5f, rng);
  return m;
}

std::unique_ptr<nn::Graph<float>> graph_model(uint64_t seed = 2) {
  auto g = std::make_unique<nn::Graph<float>>(Shape{6}, seed);
  auto x = g->input();
  auto a = g->add<nn::Dense>({x}, 6, "relu");
  auto b = g->add<nn::Dense>({a}, 6);
  auto s = g->add<nn::Add>({x, b});
  auto h = g->add<nn::Dense>({s}, 4, "tanh");
  g->add<nn::Dense>({s}, 3, "sigmoid");  // a dangling branch: the output is set explicitly below
  g->set_output(h);
  Rng rng(seed);
  for (auto& p : g->parameters()) p.second.value().fill_normal(0.f, 0.5f, rng);
  return g;
}

std::unique_ptr<nn::Sequential<float>> conv_model(uint64_t seed = 3) {
  auto m = std::make_unique<nn::Sequential<float>>(seed);
  m->add<nn::ZeroPadding2D>(1);
  m->add<nn::Conv2D>(4, 3, 1, "same", "relu");
  m->add<nn::BatchNormalization>();
  m->add<nn::DepthwiseConv2D>(3, 2, "same", 2, "relu6");
  m->add<nn::MaxPool2D>(2);
  m->add<nn::AvgPool2D>(2, 1);
  m->add<nn::Dropout>(0.25);
  m->add<nn::GlobalAvgPool2D>();
  m->add<nn::Dense>(5, "softmax");
  m->build({3, 12, 12});
  Rng rng(seed);
  for (auto& p : m->parameters()) p.second.value().fill_normal(0.f, 0.3f, rng);
  for (auto& b : m->buffers()) b.second.value().fill_uniform(0.5f, 1.5f, rng);  // BN running statistics
  return m;
}

io::ModelInfo sample_info(size_t classes) {
  io::ModelInfo info;
  for (size_t i = 0; i < classes; ++i) info.class_names.push_back("class_" + std::to_string(i) + (i == 1 ? " \xc3\xa9t\xc3\xa9" : ""));
  info.preprocessing.rescale = 1.0 / 255;
  info.preprocessing.resize = "center_crop";
  info.multi_label = true;
  info.thresholds.assign(classes, 0.1);
  info.extras["trained_by"] = "tests";
  return info;
}

// Every parameter and buffer bitwise equal, and the same outputs in eval mode.
void check_same(nn::Model<float>& a, nn::Model<float>& b, const Tensor<float>& x) {
  REQUIRE(a.type() == b.type());
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a.layer(i).name() == b.layer(i).name());
    CHECK(a.layer(i).type() == b.layer(i).type());
    CHECK(a.entries()[i].output_shape == b.entries()[i].output_shape);
    CHECK(a.entries()[i].inputs == b.entries()[i].inputs);
  }
  auto sa = a.parameters(), sb = b.parameters();
  auto ba = a.buffers(), bb = b.buffers();
  sa.insert(sa.end(), ba.begin(), ba.end());
  sb.insert(sb.end(), bb.begin(), bb.end());
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    CHECK(sa[i].first == sb[i].first);
    const Tensor<float>& ta = sa[i].second.value();
    const Tensor<float>& tb = sb[i].second.value();
    REQUIRE(ta.shape() == tb.shape());
    CHECK(std::memcmp(ta.data(), tb.data(), static_cast<size_t>(ta.numel()) * sizeof(float)) == 0);
  }
  a.eval();
  b.eval();
  NoGradGuard ng;
  const Tensor<float> ya = a(x), yb = b(x);
  REQUIRE(ya.shape() == yb.shape());
  CHECK(std::memcmp(ya.data(), yb.data(), static_cast<size_t>(ya.numel()) * sizeof(float)) == 0);
}

Tensor<float> random_input(const Shape& per_sample, int64_t n, uint64_t seed) {
  Shape s{n};
  s.insert(s.end(), per_sample.begin(), per_sample.end());
  Tensor<float> x(s);
  Rng rng(seed);
  x.fill_normal(0.f, 1.f, rng);
  return x;
}

}  // namespace

TEST_CASE("model file: Sequential Dense round trip is bitwise, with the model info") {
  ModelFileTempDir dir;
  auto m = dense_model();
  const io::ModelInfo info = sample_info(3);
  const std::string path = dir.path + "/dense.safetensors";
  io::save_model(path, *m, info);
  io::LoadedModel l = io::load_model(path);
  REQUIRE(l.model);
  CHECK(l.model->type() == "Sequential");
  check_same(*m, *l.model, random_input({4}, 5, 11));
  CHECK(l.info.class_names == info.class_names);
  CHECK(l.info.input_shape == Shape{4});
  CHECK(l.info.preprocessing == info.preprocessing);
  CHECK(l.info.multi_label);
  CHECK(l.info.thresholds == info.thresholds);
  CHECK(l.info.extras == info.extras);
  CHECK_FALSE(l.model->is_training());
  CHECK(dir.files() == std::vector<std::string>{"dense.safetensors"});

  // Also a plain safetensors file: the tensors are there under "<layer>/<param>", F32.
  io::SafetensorsFile f = io::read_safetensors(path);
  const Tensor<float> k = io::from_record<float>(f.at("dense/kernel"));
  CHECK(k.shape() == Shape{4, 8});
  CHECK(std::memcmp(k.data(), m->layer("dense").parameters()[0].second.value().data(), 32 * sizeof(float)) == 0);
  CHECK(f.metadata.at("format") == "tinycnn-model");
  CHECK(f.metadata.at("format_version") == "1");
}

TEST_CASE("model file: Graph (residual Add, explicit output) round trip is bitwise") {
  ModelFileTempDir dir;
  auto g = graph_model();
  const std::string path = dir.path + "/graph.safetensors";
  io::save_model(path, *g, {});
  io::LoadedModel l = io::load_model(path);
  CHECK(l.model->type() == "Functional");
  CHECK(l.model->output_shape() == Shape{4});
  check_same(*g, *l.model, random_input({6}, 3, 12));
}

TEST_CASE("model file: conv / batch-norm / pooling model round trip is bitwise (BN running stats too)") {
  ModelFileTempDir dir;
  auto m = conv_model();
  m->layer("conv2d").set_trainable(false);
  const std::string path = dir.path + "/conv.safetensors";
  io::save_model(path, *m, sample_info(5));
  io::LoadedModel l = io::load_model(path);
  check_same(*m, *l.model, random_input({3, 12, 12}, 2, 13));
  CHECK_FALSE(l.model->layer("conv2d").trainable());
  CHECK(l.model->layer("dense").trainable());
  CHECK(l.model->buffers().size() == 2);
}

TEST_CASE("model file: safetensors container round trip of several dtypes and metadata") {
  ModelFileTempDir dir;
  io::TensorRecord u8{"bytes", "U8", {3}, {1, 2, 3}};
  io::TensorRecord empty{"empty", "F32", {0, 4}, {}};
  const Tensor<double> d = Tensor<double>::from({2}, {1.5, -2.25});
  const std::string path = dir.path + "/x.safetensors";
  io::write_safetensors(path, {u8, io::to_record("d", d), empty}, {{"k", "v"}});
  io::SafetensorsFile f = io::read_safetensors(path);
  REQUIRE(f.tensors.size() == 3);
  CHECK(f.at("bytes").bytes == u8.bytes);
  CHECK(f.at("empty").shape == Shape{0, 4});
  CHECK(io::from_record<double>(f.at("d")).to_vector() == d.to_vector());
  CHECK(f.metadata == std::map<std::string, std::string>{{"k", "v"}});
  CHECK_THROWS_AS(io::from_record<float>(f.at("d")), FormatError);
  // The data section starts 8-byte aligned (header padded with spaces).
  const Bytes b = io::read_file_bytes(path);
  CHECK((8 + io::detail::load_u64_le(b.data())) % 8 == 0);
}

TEST_CASE("model file: every truncated prefix fails with a FormatError") {
  auto m = dense_model(4, 2, 2, 2);
  const Bytes full = io::model_to_bytes(*m, sample_info(2));
  REQUIRE(is_format_error(load_error(full)) == false);
  int bad = 0;
  std::string example;
  for (size_t n = 0; n < full.size(); ++n) {
    const Bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string e = load_error(prefix);
    if (!is_format_error(e)) {
      if (bad++ == 0) example = "prefix " + std::to_string(n) + ": " + e;
    }
  }
  INFO(example);
  CHECK(bad == 0);
  CHECK(contains(load_error(Bytes(full.begin(), full.begin() + 5)), "truncated"));
  CHECK(contains(load_error(Bytes(full.begin(), full.end() - 1)), "model file 'test'"));
}

TEST_CASE("model file: every single-bit flip is rejected") {
  auto m = dense_model(5, 2, 2, 2);
  const Bytes full = io::model_to_bytes(*m, sample_info(2));
  int accepted = 0, wrong_type = 0;
  std::string example;
  for (size_t i = 0; i < full.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes b = full;
      b[i] = static_cast<uint8_t>(b[i] ^ (1u << bit));
      const std::string e = load_error(b);
      if (e == "NO ERROR") {
        if (accepted++ == 0) example = "byte " + std::to_string(i) + " bit " + std::to_string(bit) + " accepted";
      } else if (!is_format_error(e)) {
        if (wrong_type++ == 0) example = "byte " + std::to_string(i) + " bit " + std::to_string(bit) + ": " + e;
      }
    }
  }
  INFO(example);
  CHECK(accepted == 0);
  CHECK(wrong_type == 0);
}

TEST_CASE("model file: crafted container headers give named errors") {
  const std::string f32x2 = R"("dtype":"F32","shape":[2])";
  // Overflowing dimensions: each within the per-dimension cap, the product past 2^64.
  CHECK(contains(container_error(raw_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}})", 4)),
                 "element count overflows"));
  CHECK(contains(container_error(raw_file(R"({"a":{"dtype":"F32","shape":[1099511627777],"data_offsets":[0,4]}})", 4)),
                 "exceeds the limit"));
  CHECK(contains(container_error(raw_file(R"({"a":{"dtype":"F64","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}})", 4)),
                 "overflow"));
  // Overlapping offsets.
  CHECK(contains(container_error(raw_file("{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]},\"b\":{" + f32x2 + ",\"data_offsets\":[4,12]}}", 12)),
                 "overlaps"));
  // A gap, trailing bytes, a span that does not match the shape, an end past the data.
  CHECK(contains(container_error(raw_file("{\"a\":{" + f32x2 + ",\"data_offsets\":[4,12]}}", 12)), "gap"));
  CHECK(contains(container_error(raw_file("{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]}}", 12)), "trailing bytes"));
  CHECK(contains(container_error(raw_file("{}", 3)), "trailing bytes"));
  CHECK(contains(container_error(raw_file("{\"a\":{" + f32x2 + ",\"data_offsets\":[0,12]}}", 12)), "needs 8"));
  CHECK(contains(container_error(raw_file("{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]}}", 4)), "past the data section"));
  CHECK(contains(container_error(raw_file("{\"a\":{" + f32x2 + ",\"data_offsets\":[8,0]}}", 8)), "begin 8 > end 0"));
  // Rank > 8, unknown dtype, negative and non-integer dimensions, unknown fields, duplicate keys.
  CHECK(contains(container_error(raw_file(R"({"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}})", 4)),
                 "rank 9 exceeds the limit of 8"));
  CHECK(contains(container_error(raw_file(R"({"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", 4)), "unknown dtype 'F33'"));
  CHECK(contains(container_error(raw_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4)), "negative"));
  CHECK(contains(container_error(raw_file(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4)), "not a non-negative integer"));
  CHECK(contains(container_error(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", 4)), "unknown field 'x'"));
  CHECK(contains(container_error(raw_file("{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]},\"a\":{" + f32x2 + ",\"data_offsets\":[8,16]}}", 16)),
                 "duplicate JSON key 'a'"));
  CHECK(contains(container_error(raw_file(R"({"__metadata__":{"k":1}})", 0)), "not a string"));
  CHECK(contains(container_error(raw_file(std::string(20, '[') + std::string(20, ']'), 0)), "header does not start with '{'"));
  CHECK(contains(container_error(raw_file("{\"a\":" + std::string(20, '[') + std::string(20, ']') + "}", 0)), "nested deeper"));
  CHECK(contains(container_error(raw_file("{\"a\":}", 0)), "invalid JSON"));
  CHECK(contains(container_error(raw_file("{\"a\":1}\n", 0)), "followed only by spaces"));
  // Header length past the end of the file, and past the cap.
  Bytes past = raw_file("{}", 0);
  io::detail::store_u64_le(past.data(), 1000);
  CHECK(contains(container_error(past), "runs past the end"));
  io::detail::store_u64_le(past.data(), uint64_t(1) << 40);
  CHECK(contains(container_error(past), "exceeds the limit"));
  io::detail::store_u64_le(past.data(), ~uint64_t(0));
  CHECK(contains(container_error(past), "exceeds the limit"));
  CHECK(contains(container_error(Bytes{1, 2, 3}), "truncated"));
  // Every message names the file.
  CHECK(contains(container_error(past), "safetensors file 'crafted'"));
}

TEST_CASE("model file: crafted model metadata gives named errors") {
  auto m = dense_model(6);
  const Contents good = io::model_file_contents(*m, sample_info(3));
  REQUIRE(load_error(reseal(good)) == "NO ERROR");
  {  // unknown layer type
    Contents c = good;
    std::string& a = c.second["architecture"];
    a.replace(a.find("\"Dense\""), 7, "\"Dense3D\"");
    const std::string e = load_error(reseal(c));
    CHECK(contains(e, "layer 'dense': unknown layer type 'Dense3D'"));
  }
  {  // unknown config key, bad config value
    Contents c = good;
    std::string& a = c.second["architecture"];
    a.replace(a.find("\"units\""), 7, "\"unitz\"");
    CHECK(contains(load_error(reseal(c)), "unknown config key 'unitz'"));
    c = good;
    std::string& a2 = c.second["architecture"];
    a2.replace(a2.find("\"units\":8"), 9, "\"units\":0");
    CHECK(contains(load_error(reseal(c)), "units must be positive"));
  }
  {  // a newer format version, another format
    Contents c = good;
    c.second["format_version"] = "3";
    CHECK(contains(load_error(reseal(c)), "format_version 3 is newer than this tinycnn reads (up to 2)"));
    c = good;  // version 2's key in a version-1 file
    c.second["same_as"] = R"({"dense_1/bias":"dense/bias"})";
    CHECK(contains(load_error(reseal(c)), "unknown metadata entry 'same_as'"));
    c = good;
    c.second["format"] = "pt";
    CHECK(contains(load_error(reseal(c)), "not a tinycnn model file"));
    c = good;
    c.second.erase("format");
    CHECK(contains(load_error(reseal(c)), "not a tinycnn model file"));
  }
  {  // tensor shape differs from the architecture (checked before the layer is built)
    Contents c = good;
    c.first[0] = io::to_record("dense/kernel", Tensor<float>({4, 9}));
    CHECK(contains(load_error(reseal(c)), "tensor 'dense/kernel' has shape [4, 9] but the architecture builds [4, 8]"));
    c = good;
    c.first[0] = io::to_record("dense/kernel", Tensor<float>({40000, 8}));
    CHECK(contains(load_error(reseal(c)), "has shape [40000, 8]"));
  }
  {  // missing, extra and wrongly typed tensors
    Contents c = good;
    c.first.erase(c.first.begin() + 1);
    CHECK(contains(load_error(reseal(c)), "tensor 'dense/bias' is missing"));
    c = good;
    c.first.push_back(io::to_record("extra/w", Tensor<float>({2})));
    CHECK(contains(load_error(reseal(c)), "unexpected tensor 'extra/w'"));
    c = good;
    c.first[1] = io::to_record("dense/bias", Tensor<double>({8}));
    CHECK(contains(load_error(reseal(c)), "dtype F64, expected F32"));
  }
  {  // NaN and Inf weights
    Contents c = good;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(c.first[0].bytes.data() + 12, &nan, 4);
    CHECK(contains(load_error(reseal(c)), "tensor 'dense/kernel' holds a non-finite value (NaN or Inf) at index 3"));
    c = good;
    const float inf = std::numeric_limits<float>::infinity();
    std::memcpy(c.first[2].bytes.data(), &inf, 4);
    CHECK(contains(load_error(reseal(c)), "non-finite"));
  }
  {  // checksum: corrupt data, corrupt metadata, missing
    Contents c = good;
    c.first[0].bytes[0] ^= 1;
    CHECK(contains(load_error(io::safetensors_to_bytes(c.first, c.second)), "checksum mismatch"));
    c = good;
    c.second["class_names"] = R"(["x","y","z"])";
    CHECK(contains(load_error(io::safetensors_to_bytes(c.first, c.second)), "checksum mismatch"));
    c = good;
    c.second.erase("checksum");
    CHECK(contains(load_error(io::safetensors_to_bytes(c.first, c.second)), "'checksum' is missing"));
  }
  {  // model info that does not fit the model
    Contents c = good;
    c.second["class_names"] = R"(["x","y"])";
    CHECK(contains(load_error(reseal(c)), "2 class names for a model with 3 outputs"));
    c = good;
    c.second["input_shape"] = "[5]";
    CHECK(contains(load_error(reseal(c)), "differs from the architecture's"));
    c = good;
    c.second["multi_label"] = "yes";
    CHECK(contains(load_error(reseal(c)), "multi_label"));
    c = good;
    c.second["surprise"] = "1";
    CHECK(contains(load_error(reseal(c)), "unknown metadata entry 'surprise'"));
  }
  {  // an architecture asking for huge activations or a layer that does not fit
    Contents c = good;
    std::string& a = c.second["architecture"];
    a.replace(a.find("\"input_shape\":[4]"), 17, "\"input_shape\":[16777216,16777216]");
    CHECK(contains(load_error(reseal(c)), "elements"));
    c = good;
    std::string& a2 = c.second["architecture"];
    a2.replace(a2.find("\"input_shape\":[4]"), 17, "\"input_shape\":[4,4]");
    CHECK(contains(load_error(reseal(c)), "does not fit its input"));
  }
}

TEST_CASE("model file: crafted Graph architectures are refused") {
  auto g = graph_model();
  const Contents good = io::model_file_contents(*g, {});
  REQUIRE(load_error(reseal(good)) == "NO ERROR");
  Contents c = good;
  std::string& a = c.second["architecture"];
  a.replace(a.find("\"inbound\":[-1]"), 14, "\"inbound\":[7]");
  CHECK(contains(load_error(reseal(c)), "is not the input (-1) or an earlier layer"));
  c = good;
  std::string& a2 = c.second["architecture"];
  a2.replace(a2.find("\"output\":3"), 10, "\"output\":9");
  CHECK(contains(load_error(reseal(c)), "is not a node id"));
}

TEST_CASE("model file: layer registry knows every layer type and round-trips configs") {
  std::vector<std::unique_ptr<nn::Layer<float>>> protos;
  protos.push_back(std::make_unique<nn::Activation<float>>("tanh"));
  protos.push_back(std::make_unique<nn::Add<float>>());
  protos.push_back(std::make_unique<nn::Average<float>>());
  protos.push_back(std::make_unique<nn::AvgPool2D<float>>(3, 2, "same"));
  protos.push_back(std::make_unique<nn::BatchNormalization<float>>(0.9, 1e-5));
  protos.push_back(std::make_unique<nn::Conv2D<float>>(8, nn::Size2(3, 5), nn::Size2(2, 1), "same", "relu", false));
  protos.push_back(std::make_unique<nn::Dense<float>>(7, "sigmoid", false));
  protos.push_back(std::make_unique<nn::DepthwiseConv2D<float>>(3, 2, "valid", 3, "relu6"));
  protos.push_back(std::make_unique<nn::Dropout<float>>(0.3));
  protos.push_back(std::make_unique<nn::Flatten<float>>());
  protos.push_back(std::make_unique<nn::GlobalAvgPool2D<float>>());
  protos.push_back(std::make_unique<nn::LeakyReLU<float>>(0.1));
  protos.push_back(std::make_unique<nn::MaxPool2D<float>>(2, 1, "same"));
  protos.push_back(std::make_unique<nn::ReLU<float>>(6.0));
  protos.push_back(std::make_unique<nn::Reshape<float>>(Shape{-1, 4}));
  protos.push_back(std::make_unique<nn::Rescaling<float>>(std::vector<double>{1 / 58.4, 1 / 57.1, 1 / 57.4},
                                                          std::vector<double>{-2.1, -2.0, -1.8}));
  protos.push_back(std::make_unique<nn::Resizing<float>>(128, 96, "bilinear", true));
  protos.push_back(std::make_unique<nn::Flip<float>>());
  protos.push_back(std::make_unique<nn::Cropping2D<float>>(std::make_pair<int64_t, int64_t>(0, 1), std::make_pair<int64_t, int64_t>(2, 3)));
  protos.push_back(std::make_unique<nn::Sigmoid<float>>());
  protos.push_back(std::make_unique<nn::Softmax<float>>());
  protos.push_back(std::make_unique<nn::Tanh<float>>());
  protos.push_back(std::make_unique<nn::ZeroPadding2D<float>>(std::make_pair<int64_t, int64_t>(0, 1), std::make_pair<int64_t, int64_t>(2, 3)));
  std::set<std::string> covered;
  for (const auto& p : protos) {
    CAPTURE(p->type());
    const nlohmann::json j = io::config_to_json(p->config());
    const nn::Config back = io::config_from_json(nlohmann::json::parse(j.dump()), "test");
    auto l = io::make_layer<float>(p->type(), back, "x");
    CHECK(l->type() == p->type());
    CHECK(io::config_to_json(l->config()) == j);
    covered.insert(p->type());
  }
  CHECK(covered.size() == io::known_layer_types().size());
  CHECK_THROWS_WITH_AS(io::make_layer<float>("Conv3D", {}, "c"), doctest::Contains("layer 'c': unknown layer type 'Conv3D'"),
                       FormatError);
  CHECK_THROWS_WITH_AS(io::make_layer<float>("Dense", {{"units", std::string("ten")}}, "d"),
                       doctest::Contains("config 'units' must be an integer"), FormatError);
  CHECK_THROWS_AS(io::config_from_json(nlohmann::json::parse(R"({"a":{"b":1}})"), "t"), FormatError);
  CHECK_THROWS_AS(io::config_from_json(nlohmann::json::parse(R"({"a":99999999999})"), "t"), FormatError);
}

TEST_CASE("model file: a save killed midway leaves the old file intact and no temporary file") {
  ModelFileTempDir dir;
  const std::string path = dir.path + "/model.safetensors";
  auto old_model = dense_model(7);
  io::save_model(path, *old_model, {});
  auto big = dense_model(8, 4, 512, 512);  // ~1 MiB of weights: written in several chunks

  // A child process starts writing the big model and dies in the middle of the data.
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    io::detail::write_hook() = [](uint64_t written) {
      if (written > 4096) ::_exit(42);
      return true;
    };
    try {
      io::save_model(path, *big, {});
    } catch (...) {
    }
    ::_exit(0);  // not reached when the hook fires
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 42);
  CHECK(dir.files() == std::vector<std::string>{"model.safetensors"});
  io::LoadedModel l = io::load_model(path);
  check_same(*old_model, *l.model, random_input({4}, 2, 14));

  // An I/O error in the middle (injected): IOError naming the path, nothing left behind.
  io::detail::write_hook() = [](uint64_t written) { return written < 4096; };
  std::string msg;
  try {
    io::save_model(path, *big, {});
  } catch (const IOError& e) {
    msg = e.what();
  }
  io::detail::write_hook() = nullptr;
  CHECK(contains(msg, path));
  CHECK(dir.files() == std::vector<std::string>{"model.safetensors"});
  check_same(*old_model, *io::load_model(path).model, random_input({4}, 2, 15));

  // And a complete save replaces it.
  io::save_model(path, *big, {});
  CHECK(io::load_model(path).model->output_shape() == Shape{512});
  CHECK(dir.files() == std::vector<std::string>{"model.safetensors"});
}

TEST_CASE("model file: saving into a non-writable or missing directory is an IOError naming the path") {
  auto m = dense_model(9);
  const std::string missing = "/proc/tinycnn-no-such-dir/m.safetensors";
  CHECK_THROWS_WITH_AS(io::save_model(missing, *m, {}), doctest::Contains(missing.c_str()), IOError);
  ModelFileTempDir dir;
  ::chmod(dir.path.c_str(), 0555);
  const std::string ro = dir.path + "/m.safetensors";
  if (::access(dir.path.c_str(), W_OK) != 0) {
    CHECK_THROWS_WITH_AS(io::save_model(ro, *m, {}), doctest::Contains(ro.c_str()), IOError);
    CHECK(dir.files().empty());
  } else {
    MESSAGE("running with permission to write anywhere (root): the read-only directory case is not observable");
  }
  CHECK_THROWS_WITH_AS(io::load_model(dir.path + "/absent.safetensors"), doctest::Contains("absent.safetensors"), IOError);
}

TEST_CASE("model file: a Python reader (stdlib + numpy) reproduces the logits within 1e-5") {
  if (::access("/usr/bin/python3", X_OK) != 0 || std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    MESSAGE("skipped: /usr/bin/python3 with numpy is not available");
    return;
  }
  ModelFileTempDir dir;
  nn::Sequential<float> m(21);
  m.add<nn::Dense>(16, "relu");
  m.add<nn::Dense>(8);
  m.add<nn::ReLU>();
  m.add<nn::Dense>(4);
  m.build({6});
  const std::string model = dir.path + "/m.safetensors", input = dir.path + "/x.f32", out = dir.path + "/y.txt";
  io::save_model(model, m, sample_info(4));
  const Tensor<float> x = random_input({6}, 1, 22);
  {
    std::ofstream f(input, std::ios::binary);
    Bytes le(24);
    io::detail::copy_le(x.data(), le.data(), 6, 4);
    f.write(reinterpret_cast<const char*>(le.data()), 24);
  }
  const std::string cmd = "/usr/bin/python3 '" TINYCNN_SOURCE_DIR "/tests/python/read_model.py' '" + model + "' '" + input +
                          "' > '" + out + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  m.eval();
  const Tensor<float> y = m(x);
  std::ifstream f(out);
  std::vector<double> py;
  for (double v; f >> v;) py.push_back(v);
  REQUIRE(py.size() == 4);
  for (int i = 0; i < 4; ++i) CHECK(std::fabs(py[static_cast<size_t>(i)] - static_cast<double>(y[i])) < 1e-5);
}

TEST_CASE("model file version 2: repeated tensors (an ensemble running a model twice) are stored once") {
  auto a = dense_model(3, 6, 8, 4);
  a->eval();
  auto twice = nn::ensemble<float>({a.get(), a.get()});  // m0_ and m1_ share a's weights
  Rng rng(2);
  Tensor<float> x({3, 6});
  x.fill_normal(0.f, 1.f, rng);
  const Tensor<float> y = (*twice)(x);
  ModelFileTempDir d;
  const std::string path = d.path + "/twice.safetensors", one = d.path + "/one.safetensors";
  io::save_model(path, *twice);
  io::save_model(one, *a);
  io::SafetensorsFile f = io::read_safetensors(path);
  CHECK(f.metadata.at("format_version") == "2");
  CHECK(f.tensors.size() == a->parameters().size());  // the m1_ copies are not stored
  const nlohmann::json same = nlohmann::json::parse(f.metadata.at("same_as"));
  CHECK(same.at("m1_" + a->layer(0).name() + "/kernel") == "m0_" + a->layer(0).name() + "/kernel");
  CHECK(io::read_safetensors(one).metadata.at("format_version") == "1");  // nothing repeated: still version 1
  io::LoadedModel l = io::load_model(path);
  const Tensor<float> yl = (*l.model)(x);
  for (int64_t i = 0; i < y.numel(); ++i) CHECK(yl[i] == y[i]);
  // A repeat loads as its own copy: changing one leaves the other.
  Tensor<float> k0 = l.model->layer("m0_" + a->layer(0).name()).parameters()[0].second.value();
  const Tensor<float> k1 = l.model->layer("m1_" + a->layer(0).name()).parameters()[0].second.value();
  const float before = k1[0];
  k0[0] += 1.f;
  CHECK(k1[0] == before);

  // Crafted same_as entries give named errors.
  const Contents good = io::model_file_contents(*twice, {});
  REQUIRE(load_error(reseal(good)) == "NO ERROR");
  const std::string k = "m1_" + a->layer(0).name() + "/kernel", src = "m0_" + a->layer(0).name() + "/kernel";
  auto with = [&](nlohmann::json j) {
    Contents c = good;
    c.second["same_as"] = j.dump();
    return load_error(reseal(c));
  };
  nlohmann::json j = nlohmann::json::parse(good.second.at("same_as"));
  j[k] = "nope/kernel";
  CHECK(contains(with(j), "'" + k + "' repeats 'nope/kernel', which is not a stored tensor"));
  j = nlohmann::json::parse(good.second.at("same_as"));
  j.erase(k);
  CHECK(contains(with(j), "tensor '" + k + "' is missing"));
  j = nlohmann::json::parse(good.second.at("same_as"));
  j["ghost/w"] = src;
  CHECK(contains(with(j), "no layer of the architecture has a tensor 'ghost/w'"));
  j = nlohmann::json::parse(good.second.at("same_as"));
  j[src] = src;
  CHECK(contains(with(j), "stored and listed as a repeat too"));
  CHECK(contains(with(nlohmann::json::array()), "same_as must be a JSON object"));
  j = nlohmann::json::parse(good.second.at("same_as"));
  j[k] = 3;
  CHECK(contains(with(j), "is not a tensor name"));
}

// Writes the fuzzer's seed corpus (tests/data/model_corpus) when TINYCNN_WRITE_MODEL_CORPUS is set.
TEST_CASE("model file: seed corpus for fuzz/fuzz_model_load.cpp") {
  auto m = dense_model(31, 3, 4, 2);
  auto g = graph_model(32);
  nn::Sequential<float> c(33);
  c.add<nn::Conv2D>(2, 3, 1, "same", "relu");
  c.add<nn::BatchNormalization>();
  c.add<nn::MaxPool2D>(2);
  c.add<nn::Flatten>();
  c.add<nn::Dense>(2);
  c.build({1, 4, 4});
  std::vector<std::pair<std::string, Bytes>> files{{"valid_dense.safetensors", io::model_to_bytes(*m, sample_info(2))},
                                                  {"valid_graph.safetensors", io::model_to_bytes(*g, {})},
                                                  {"valid_conv.safetensors", io::model_to_bytes(c, {})}};
  auto twice = nn::ensemble<float>({m.get(), m.get()});  // format version 2: the repeats in same_as
  files.push_back({"valid_same_as.safetensors", io::model_to_bytes(*twice, {})});
  for (const auto& f : files) CHECK(load_error(f.second) == "NO ERROR");
  const Contents good = io::model_file_contents(*m, sample_info(2));
  Contents u = good;
  u.second["architecture"].replace(u.second["architecture"].find("\"Dense\""), 7, "\"Dense9\"");
  files.push_back({"bad_unknown_layer.safetensors", reseal(u)});
  Contents n = good;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(n.first[0].bytes.data(), &nan, 4);
  files.push_back({"bad_nan.safetensors", reseal(n)});
  Bytes t = files[0].second;
  t.resize(t.size() / 2);
  files.push_back({"bad_truncated.safetensors", t});
  files.push_back({"bad_overlap.safetensors",
                   raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12)});
  files.push_back({"bad_rank9.safetensors", raw_file(R"({"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}})", 4)});
  for (size_t i = 4; i < files.size(); ++i) CHECK(is_format_error(load_error(files[i].second)));
  if (!std::getenv("TINYCNN_WRITE_MODEL_CORPUS")) return;
  const std::string dir = TINYCNN_TEST_DATA_DIR "/model_corpus";
  ::mkdir(dir.c_str(), 0755);
  for (const auto& f : files) {
    std::ofstream o(dir + "/" + f.first, std::ios::binary | std::ios::trunc);
    o.write(reinterpret_cast<const char*>(f.second.data()), static_cast<std::streamsize>(f.second.size()));
  }
  MESSAGE("wrote " << files.size() << " files to " << dir);
}

#endif  // TINYCNN_HAS_JSON

TEST_CASE("ensemble: a Sequential and a Graph averaged into one Graph; saves, loads, predicts the mean of the logits") {
  auto a = dense_model(3, 6, 8, 4);
  auto b = graph_model(4);  // 5 layers; its output is the 4th, the 5th dangles and is left out
  REQUIRE(a->input_shape() == b->input_shape());
  REQUIRE(a->output_shape() == b->output_shape());
  a->eval();
  b->eval();
  Rng rng(9);
  Tensor<float> x({5, a->input_shape()[0]});
  x.fill_normal(0.f, 1.f, rng);
  const Tensor<float> ya = (*a)(x), yb = (*b)(x);

  auto e = nn::ensemble<float>({a.get(), b.get()});
  CHECK(e->size() == a->size() + 4 + 1);
  CHECK(e->layer(0).name() == "m0_" + a->layer(0).name());
  CHECK(e->layer(a->size()).name() == "m1_" + b->layer(0).name());
  CHECK(e->parameters().size() == a->parameters().size() + b->parameters().size() - 2);
  const Tensor<float> ye = (*e)(x);
  REQUIRE(ye.shape() == ya.shape());
  for (int64_t i = 0; i < ye.numel(); ++i) CHECK(ye[i] == doctest::Approx(0.5f * (ya[i] + yb[i])).epsilon(1e-6));

  ModelFileTempDir d;
  const std::string path = d.path + "/ensemble.safetensors";
  io::save_model(path, *e);
  io::LoadedModel m = io::load_model(path);
  const Tensor<float> yl = (*m.model)(x);
  for (int64_t i = 0; i < ye.numel(); ++i) CHECK(yl[i] == ye[i]);

  // An ensemble as a member brings its members: ensemble({ensemble({a, b}), c}) = (a + b + c) / 3.
  auto c = dense_model(7, 6, 8, 4);
  c->eval();
  const Tensor<float> yc = (*c)(x);
  auto nested = nn::ensemble<float>({e.get(), c.get()});
  CHECK(nested->size() == e->size() - 1 + c->size() + 1);  // e's average replaced by the new one
  CHECK(nested->layer(0).name() == "m0_m0_" + a->layer(0).name());
  const Tensor<float> yn = (*nested)(x);
  for (int64_t i = 0; i < yn.numel(); ++i) CHECK(yn[i] == doctest::Approx((ya[i] + yb[i] + yc[i]) / 3).epsilon(1e-5));

  auto other = dense_model(5, 6, 8, 2);  // 2 outputs, not 4
  CHECK_THROWS_AS(nn::ensemble<float>({a.get(), other.get()}), ShapeError);
  CHECK_THROWS_AS(nn::ensemble<float>({a.get()}), ValueError);
}

TEST_CASE("ensemble: members with other input sizes and pixel scalings behind their own Resizing/Rescaling") {
  // Member 0 takes [1, 6, 6] in [0, 1]; member 1 takes [1, 4, 4] in [-1, 1]; the ensemble takes raw
  // 0-255 pixels at 6x6.
  auto conv_model = [](Shape in, uint64_t seed) {
    auto m = std::make_unique<nn::Sequential<float>>(seed);
    m->add<nn::Conv2D>(2, 3, 1, "same", "relu");
    m->add<nn::GlobalAvgPool2D>();
    m->add<nn::Dense>(3);
    m->build(in);
    m->eval();
    return m;
  };
  auto a = conv_model({1, 6, 6}, 1), b = conv_model({1, 4, 4}, 2);
  std::vector<std::vector<std::unique_ptr<nn::Layer<float>>>> adapt(2);
  adapt[0].push_back(std::make_unique<nn::Rescaling<float>>(1 / 255.0));
  adapt[1].push_back(std::make_unique<nn::Resizing<float>>(4, 4, "bilinear", true));
  adapt[1].push_back(std::make_unique<nn::Rescaling<float>>(1 / 127.5, -1.0, "to_pm1"));
  auto e = nn::ensemble<float>({a.get(), b.get()}, {1, 6, 6}, std::move(adapt));
  CHECK(e->layer(0).name() == "m0_rescaling");
  CHECK(e->index_of("m1_to_pm1") >= 0);
  CHECK(train::count_params(*e).total == train::count_params(*a).total + train::count_params(*b).total);

  Rng rng(3);
  Tensor<float> x({2, 1, 6, 6});
  x.fill_uniform(0.f, 255.f, rng);
  Var<float> xv(x);
  const Tensor<float> ya = (*a)(ops::channel_affine(xv, {1 / 255.0}, {0.0}).value());
  const Tensor<float> yb = (*b)(ops::channel_affine(ops::resize2d(xv, 4, 4, true), {1 / 127.5}, {-1.0}).value());
  const Tensor<float> ye = (*e)(x);
  REQUIRE(ye.shape() == Shape{2, 3});
  for (int64_t i = 0; i < ye.numel(); ++i) CHECK(ye[i] == doctest::Approx(0.5f * (ya[i] + yb[i])).epsilon(1e-5));

  ModelFileTempDir d;  // the adapters save and load with the ensemble
  io::save_model(d.path + "/e.safetensors", *e);
  const Tensor<float> yl = (*io::load_model(d.path + "/e.safetensors").model)(x);
  for (int64_t i = 0; i < ye.numel(); ++i) CHECK(yl[i] == ye[i]);

  // Adapters that do not end in the member's input shape are refused, naming the member.
  std::vector<std::vector<std::unique_ptr<nn::Layer<float>>>> wrong(2);
  wrong[1].push_back(std::make_unique<nn::Resizing<float>>(5, 5));
  CHECK_THROWS_WITH_AS(nn::ensemble<float>({a.get(), b.get()}, {1, 6, 6}, std::move(wrong)),
                       doctest::Contains("model 1"), ShapeError);
  CHECK_THROWS_WITH_AS(nn::ensemble<float>({a.get(), b.get()}), doctest::Contains("model 1"), ShapeError);
}

TEST_CASE("with_input_shape: a fully convolutional model at another input size shares its weights; others are refused") {
  auto m = std::make_unique<nn::Sequential<float>>(3);
  m->add<nn::Conv2D>(4, 3, 1, "same", "relu");
  m->add<nn::BatchNormalization>();
  m->add<nn::MaxPool2D>(2);
  m->add<nn::GlobalAvgPool2D>();
  m->add<nn::Dense>(3);
  m->build({2, 8, 8});
  m->layer(0).set_trainable(false);
  m->eval();
  auto big = nn::with_input_shape(*m, {2, 12, 12});
  CHECK(big->input_shape() == Shape{2, 12, 12});
  CHECK(big->output_shape() == Shape{3});
  CHECK(!big->is_training());
  CHECK(!big->layer(0).trainable());
  CHECK(train::count_params(*big).total == train::count_params(*m).total);
  for (size_t k = 0; k < m->parameters().size(); ++k)
    CHECK(big->parameters()[k].second.value().shares_storage_with(m->parameters()[k].second.value()));
  // Back at the original size it computes exactly what the model computes.
  auto same = nn::with_input_shape(*big, {2, 8, 8});
  Tensor<float> x({2, 2, 8, 8});
  Rng rng(5);
  x.fill_uniform(-1.f, 1.f, rng);
  const Tensor<float> y0 = (*m)(x), y1 = (*same)(x);
  for (int64_t i = 0; i < y0.numel(); ++i) CHECK(y0[i] == y1[i]);
  Tensor<float> xb({1, 2, 12, 12});
  xb.fill_uniform(-1.f, 1.f, rng);
  CHECK((*big)(xb).shape() == Shape{1, 3});
  // A Dense after Flatten has weights sized by the input: refused, naming the layer.
  auto flat = std::make_unique<nn::Sequential<float>>(4);
  flat->add<nn::Conv2D>(2, 3, 1, "valid");
  flat->add<nn::Flatten>();
  flat->add<nn::Dense>(3, "", true, "head");
  flat->build({1, 6, 6});
  CHECK_THROWS_WITH_AS(nn::with_input_shape(*flat, {1, 8, 8}), doctest::Contains("at layer 'head'"), ShapeError);
  CHECK_THROWS_WITH_AS(nn::with_input_shape(*m, {2, 1, 1}), doctest::Contains("cannot take input [2, 1, 1]"), ShapeError);
}
