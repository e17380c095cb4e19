// Fashion-MNIST: trains a small CNN on Debian's dataset-fashion-mnist and reports test accuracy.
//   fashion_mnist [--epochs N] [--data DIR] [--batch B] [--lr X] [--seed S] [--threads T]
#include <CLI/CLI.hpp>

#include "fashion_mnist.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Train a small CNN on Fashion-MNIST (Debian package dataset-fashion-mnist)"};
  fmnist::Options o;
  int threads = 0;
  app.add_option("--epochs", o.epochs, "training epochs")->check(CLI::PositiveNumber);
  app.add_option("--data", o.data_dir, "folder with the four IDX .gz files")->capture_default_str();
  app.add_option("--batch", o.batch, "batch size")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--lr", o.lr, "Adam learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--seed", o.seed, "random seed")->capture_default_str();
  app.add_option("--train-limit", o.train_limit, "use only the first N training images (0 = all)");
  app.add_option("--threads", threads, "worker threads (0 = OpenMP default)");
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) tinycnn::set_num_threads(threads);
  try {
    std::printf("tinycnn %s: Fashion-MNIST, %d epoch(s), %d thread(s)\n", TINYCNN_VERSION_STRING, o.epochs,
                tinycnn::get_num_threads());
    fmnist::Result r = fmnist::run(o);
    std::printf("wall time: %.1f s\n", r.seconds);
    std::printf("test accuracy: %.4f\n", r.test_accuracy);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fashion_mnist: %s\n", e.what());
    return 1;
  }
  return 0;
}
