// model2 (input 3x150x150, 6 classes) in tiny-dnn 1.0.0a3 (Debian package `tiny-dnn`), for the CPU
// comparison with tinycnn (bench/other_libs/README.md). Build and run it with bench/other_libs/run.sh.
//
//   Conv2D 32 3x3 valid ReLU -> MaxPool 3x3/3 -> Conv2D 64 3x3 ReLU -> MaxPool 2x2/2
//   -> Conv2D 128 3x3 ReLU -> Flatten -> Dense 128 ReLU -> Dense 6 (softmax + cross-entropy)
//   150 -> 148 -> 49 -> 47 -> 23 -> 21; 21*21*128 = 56448 -> 128 -> 6; 7,319,494 parameters.
//
// One training step = forward + backward + Adam update of one mini-batch of `--batch` images, done by
// tiny-dnn's own network::fit (epochs 1, batch_size = --batch) over (steps + 1) * batch samples: the
// first mini-batch is the warm-up, the clock runs from the end of the warm-up batch to the end of the
// last one (fit's per-batch callback). Inference: network::predict on a std::vector<tensor_t> of
// `--batch` samples (tiny-dnn's batched forward). Threads: OpenMP (omp_set_num_threads(--threads)).
//
// Usage: tinydnn_model2 [--batch 32] [--steps N] [--threads T]
// Prints the parameter count, then `train images/s: X` and `infer images/s: Y` as the last lines.
#include <tiny_dnn/tiny_dnn.h>

#include <omp.h>

#include "bench_args.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

namespace {


}  // namespace

int main(int argc, char** argv) {
  using namespace tiny_dnn;
  using namespace tiny_dnn::activation;
  const BenchArgs args = parse_bench_args(argc, argv, "model2 in tiny-dnn (batch, steps, threads)");
  omp_set_num_threads(args.threads);

  network<sequential> net;
  net << convolutional_layer<relu>(150, 150, 3, 3, 32, padding::valid)   // -> 32 x 148 x 148
      << max_pooling_layer<identity>(148, 148, 32, 3, 3)                 // -> 32 x 49 x 49
      << convolutional_layer<relu>(49, 49, 3, 32, 64, padding::valid)    // -> 64 x 47 x 47
      << max_pooling_layer<identity>(47, 47, 64, 2, 2)                   // -> 64 x 23 x 23
      << convolutional_layer<relu>(23, 23, 3, 64, 128, padding::valid)   // -> 128 x 21 x 21
      << fully_connected_layer<relu>(21 * 21 * 128, 128)                 // flatten is implicit
      << fully_connected_layer<softmax>(128, 6);
  net.init_weight();
  for (size_t i = 0; i < net.layer_size(); ++i) net[i]->set_parallelize(true);

  size_t params = 0;
  for (size_t i = 0; i < net.layer_size(); ++i)
    for (const vec_t* w : net[i]->weights()) params += w->size();
  std::printf("tiny-dnn 1.0.0a3 model2: batch %d, steps %d, threads %d (OpenMP, %s backend)\n",
              args.batch, args.steps, args.threads,
              core::default_engine() == core::backend_t::avx ? "avx" : "internal");
  std::printf("parameters: %zu\n", params);
  std::fflush(stdout);

  // Synthetic data: uniform [0,1) images, random labels; (steps + 1) mini-batches for training.
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> uni(0.0f, 1.0f);
  std::uniform_int_distribution<int> cls(0, 5);
  const size_t in_size = 3 * 150 * 150;
  const size_t n_train = static_cast<size_t>(args.batch) * static_cast<size_t>(args.steps + 1);
  std::vector<vec_t> images(n_train, vec_t(in_size));
  std::vector<label_t> labels(n_train);
  for (size_t s = 0; s < n_train; ++s) {
    for (auto& v : images[s]) v = uni(gen);
    labels[s] = static_cast<label_t>(cls(gen));
  }

  // Training: fit() over all of it, 1 epoch; batch 0 is the warm-up.
  adam opt;  // alpha (lr) 1e-3, b1 0.9, b2 0.999, eps 1e-8
  int batches_done = 0;
  BenchClock::time_point t_train0;
  double train_s = 0.0;
  auto on_batch = [&]() {
    ++batches_done;
    if (batches_done == 1) {
      t_train0 = BenchClock::now();
    } else if (batches_done == args.steps + 1) {
      train_s = seconds_since(t_train0);
    }
  };
  auto on_epoch = []() {};
  net.train<cross_entropy_multiclass>(opt, images, labels, static_cast<size_t>(args.batch), 1,
                                      on_batch, on_epoch);
  if (batches_done != args.steps + 1) {
    std::fprintf(stderr, "expected %d mini-batches, fit ran %d\n", args.steps + 1, batches_done);
    return 1;
  }

  // Inference: the first mini-batch of images as one batched tensor input (N samples x 1 channel).
  std::vector<tensor_t> batch(static_cast<size_t>(args.batch));
  for (int s = 0; s < args.batch; ++s) batch[static_cast<size_t>(s)] = tensor_t{images[static_cast<size_t>(s)]};
  net.set_netphase(net_phase::test);
  float checksum = 0.0f;
  {
    auto out = net.predict(batch);  // warm-up
    checksum += out[0][0][0];
  }
  const BenchClock::time_point t_infer0 = BenchClock::now();
  for (int i = 0; i < args.steps; ++i) {
    auto out = net.predict(batch);
    checksum += out[0][0][0];
  }
  const double infer_s = seconds_since(t_infer0);

  const double images_timed = static_cast<double>(args.batch) * args.steps;
  std::printf("train s/step: %.3f, infer s/batch: %.3f (checksum %g)\n", train_s / args.steps,
              infer_s / args.steps, static_cast<double>(checksum));
  std::printf("train images/s: %.1f\n", images_timed / train_s);
  std::printf("infer images/s: %.1f\n", images_timed / infer_s);
  return 0;
}
