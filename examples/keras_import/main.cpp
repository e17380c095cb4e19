// keras_import: evaluates an imported Keras 2 .h5 classifier on an image folder.
//   keras_import --model resnet8_cifar10.h5 --data cifar10-test --input-size 32 --preprocess raw
// Class folders sorted by name give the label indices. Prints `accuracy: 0.xxxx`; with --predictions
// writes one line per image, `<class>/<file> <predicted index>`, sorted. See docs/keras_import.md.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <tinycnn/tinycnn.hpp>

using namespace tinycnn;

int main(int argc, char** argv) {
  CLI::App app{"keras_import: evaluate an imported Keras .h5 classifier on DIR/<class>/*.jpg"};
  std::string model_path, data_dir, preprocess = "raw", predictions_path;
  int input_size = 0;
  int limit = 0;
  int batch = 64;
  app.add_option("--model", model_path, "Keras 2 full-model .h5 file")->required();
  app.add_option("--data", data_dir, "image folder, one subfolder per class (sorted names = label indices)")->required();
  app.add_option("--input-size", input_size, "images are resized to N x N")->required()->check(CLI::Range(1, 4096));
  app.add_option("--preprocess", preprocess, "raw (0..255), unit (/255) or pm1 (/127.5 - 1)")
      ->check(CLI::IsMember({"raw", "unit", "pm1"}));
  app.add_option("--predictions", predictions_path, "write '<class>/<file> <predicted index>' lines, sorted");
  app.add_option("--limit-per-class", limit, "use the first K files (by name) of each class")->check(CLI::Range(0, 1 << 30));
  app.add_option("--batch", batch, "images per forward pass (default 64)")->check(CLI::Range(1, 4096));
  CLI11_PARSE(app, argc, argv);

  try {
    const auto t0 = std::chrono::steady_clock::now();
    io::KerasImportOptions opt;
    opt.input_height = opt.input_width = input_size;
    io::KerasModel k = io::import_keras_h5(model_path, opt);
    const Shape& in = k.input_shape;
    if (in.size() != 3 || in[0] != 3 || in[1] != input_size || in[2] != input_size)
      throw ValueError("the model's input is " + train::keras_shape(in) + ", not (None, " + std::to_string(input_size) + ", " +
                       std::to_string(input_size) + ", 3)");
    std::cerr << "imported " << model_path << " (Keras " << (k.keras_version.empty() ? "?" : k.keras_version) << ", "
              << k.model->size() << " layers" << (k.softmax_removed ? ", final softmax removed" : "") << ")\n";

    data::ImageFolderOptions fo;
    fo.verify = data::Verify::None;
    data::ImageFolder folder(data_dir, fo);
    std::vector<size_t> picked;
    std::vector<int> per_class(folder.classes().size(), 0);
    for (size_t i = 0; i < folder.size(); ++i) {
      int& n = per_class[static_cast<size_t>(folder.label(i))];
      if (limit > 0 && n >= limit) continue;
      ++n;
      picked.push_back(i);
    }
    const int64_t K = k.model->output_shape().empty() ? 0 : k.model->output_shape()[0];
    if (k.model->output_shape().size() != 1 || K < static_cast<int64_t>(folder.classes().size()))
      throw ValueError("the model outputs " + train::keras_shape(k.model->output_shape()) + " for " +
                       std::to_string(folder.classes().size()) + " class folders");

    data::Normalize norm;
    norm.rescale = preprocess == "raw" ? 1.0f : preprocess == "unit" ? 1.0f / 255.0f : 1.0f / 127.5f;
    if (preprocess == "pm1") norm.mean = {{1.f, 1.f, 1.f}};

    std::vector<std::string> lines;
    int64_t correct = 0;
    k.model->eval();
    NoGradGuard ng;
    for (size_t b0 = 0; b0 < picked.size(); b0 += static_cast<size_t>(batch)) {
      const size_t b1 = std::min(picked.size(), b0 + static_cast<size_t>(batch));
      std::vector<data::Image> ims(b1 - b0);
      std::vector<std::string> errors(b1 - b0);
#pragma omp parallel for schedule(dynamic)
      for (size_t j = b0; j < b1; ++j) {
        try {
          data::Image im = data::load_image_file(folder.samples()[picked[j]].path);
          if (im.width != input_size || im.height != input_size) im = data::resize(im, input_size, input_size);
          ims[j - b0] = std::move(im);
        } catch (const std::exception& e) {
          errors[j - b0] = e.what();
        }
      }
      for (const auto& e : errors)
        if (!e.empty()) throw IOError(e);
      const Tensor<float> logits = (*k.model)(data::to_tensor(ims, norm));
      const std::vector<int32_t> pred = train::argmax(logits);
      for (size_t j = b0; j < b1; ++j) {
        const auto& s = folder.samples()[picked[j]];
        correct += pred[j - b0] == s.label;
        lines.push_back(folder.classes()[static_cast<size_t>(s.label)] + "/" +
                        std::filesystem::path(s.path).filename().string() + " " + std::to_string(pred[j - b0]));
      }
    }
    std::sort(lines.begin(), lines.end());
    if (!predictions_path.empty()) {
      std::ofstream f(predictions_path);
      for (const auto& l : lines) f << l << "\n";
      if (!f) throw IOError("cannot write '" + predictions_path + "'");
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double acc = picked.empty() ? 0.0 : static_cast<double>(correct) / static_cast<double>(picked.size());
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4f", acc);
    std::cout << "accuracy: " << buf << "\n";
    std::cerr << correct << " / " << picked.size() << " images correct, " << secs << " s\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "keras_import: " << e.what() << "\n";
    return 1;
  }
}
