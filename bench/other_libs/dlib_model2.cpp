// model2 (input 3x150x150, 6 classes) in dlib 19.24 (Debian package libdlib-dev, CPU build with BLAS),
// for the CPU comparison with tinycnn (bench/other_libs/README.md). Build and run it with
// bench/other_libs/run.sh.
//
//   Conv2D 32 3x3 valid ReLU -> MaxPool 3x3/3 -> Conv2D 64 3x3 ReLU -> MaxPool 2x2/2
//   -> Conv2D 128 3x3 ReLU -> Flatten -> Dense 128 ReLU -> Dense 6 (softmax + cross-entropy)
//   150 -> 148 -> 49 -> 47 -> 23 -> 21; 21*21*128 = 56448 -> 128 -> 6; 7,319,494 parameters.
//
// dlib's con<> alias pads 'same' for stride 1, so the layers are spelled with explicit zero padding
// (con_<N,3,3,1,1,0,0>, max_pool_<3,3,3,3,0,0>, max_pool_<2,2,2,2,0,0>). dlib's fc flattens its input.
//
// One training step = what dnn_trainer does per mini-batch, but synchronously in this thread (the
// trainer's train_one_step() hands the batch to a worker thread and returns early):
// net.compute_parameter_gradients(x, labels) (forward, softmax log-loss, backward) and
// net.update_parameters(adam solvers, lr 1e-3). x is a pre-filled N x 3 x 150 x 150 float tensor
// (uniform [0,1)), the layout input_rgb_image::to_tensor() produces, so no image conversion is timed
// (as in tinycnn's bench_models, which also reuses one batch tensor). Inference: net.forward(x)
// (the logits; the loss layer's label output is not computed). Threads: dlib's CPU layers run in the
// calling thread, the convolution / fc GEMMs go to the BLAS dlib links (libblas.so.3, an OpenBLAS
// alternative on Debian): run.sh sets OPENBLAS_NUM_THREADS / OMP_NUM_THREADS from --threads.
//
// Usage: dlib_model2 [--batch 32] [--steps N] [--threads T]   (--threads is only printed)
// Prints the parameter count, then `train images/s: X` and `infer images/s: Y` as the last lines.
#include <dlib/dnn.h>
#include <dlib/revision.h>

#include "bench_args.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

namespace {

using namespace dlib;

template <long N, typename SUBNET>
using con3_valid = add_layer<con_<N, 3, 3, 1, 1, 0, 0>, SUBNET>;
template <typename SUBNET>
using pool3 = add_layer<max_pool_<3, 3, 3, 3, 0, 0>, SUBNET>;
template <typename SUBNET>
using pool2 = add_layer<max_pool_<2, 2, 2, 2, 0, 0>, SUBNET>;

using net_type = loss_multiclass_log<
    fc<6,
    relu<fc<128,
    relu<con3_valid<128,
    pool2<relu<con3_valid<64,
    pool3<relu<con3_valid<32,
    input_rgb_image>>>>>>>>>>>>;


}  // namespace

int main(int argc, char** argv) {
  const BenchArgs args = parse_bench_args(argc, argv, "model2 in dlib (batch, steps, threads)");
  const char* blas_threads = std::getenv("OPENBLAS_NUM_THREADS");
  std::printf("dlib %d.%d model2: batch %d, steps %d, threads %d (OPENBLAS_NUM_THREADS=%s)\n",
              DLIB_MAJOR_VERSION, DLIB_MINOR_VERSION, args.batch, args.steps, args.threads,
              blas_threads ? blas_threads : "unset");

  // Synthetic batch: uniform [0,1) images, random labels in 0..5.
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> uni(0.0f, 1.0f);
  std::uniform_int_distribution<unsigned long> cls(0, 5);
  std::vector<unsigned long> labels(static_cast<size_t>(args.batch));
  for (auto& l : labels) l = cls(gen);

  net_type net;
  // to_tensor() once on real rgb images: sizes x as N x 3 x 150 x 150 and sets the sample expansion
  // factor the network checks; then the pixels are replaced by uniform [0,1) floats.
  resizable_tensor x;
  {
    std::vector<matrix<rgb_pixel>> images(static_cast<size_t>(args.batch), matrix<rgb_pixel>(150, 150));
    net.to_tensor(images.begin(), images.end(), x);
  }
  if (x.num_samples() != args.batch || x.k() != 3 || x.nr() != 150 || x.nc() != 150) {
    std::fprintf(stderr, "unexpected input tensor shape\n");
    return 1;
  }
  for (float* p = x.host(); p != x.host() + x.size(); ++p) *p = uni(gen);
  std::vector<adam> solvers(net_type::num_computational_layers, adam(0.0f, 0.9f, 0.999f));
  const double lr = 1e-3;
  auto train_step = [&]() {
    const double loss = net.compute_parameter_gradients(x, labels.begin());
    net.update_parameters(solvers, lr);
    return loss;
  };

  double loss = train_step();  // warm-up; also allocates the parameters
  std::printf("parameters: %zu\n", count_parameters(net));
  std::fflush(stdout);
  const BenchClock::time_point t_train0 = BenchClock::now();
  for (int i = 0; i < args.steps; ++i) loss = train_step();
  const double train_s = seconds_since(t_train0);

  float checksum = net.forward(x).host()[0];  // warm-up
  const BenchClock::time_point t_infer0 = BenchClock::now();
  for (int i = 0; i < args.steps; ++i) checksum += net.forward(x).host()[0];
  const double infer_s = seconds_since(t_infer0);

  const double images_timed = static_cast<double>(args.batch) * args.steps;
  std::printf("train s/step: %.3f, infer s/batch: %.3f (last loss %.4f, checksum %g)\n",
              train_s / args.steps, infer_s / args.steps, loss, static_cast<double>(checksum));
  std::printf("train images/s: %.1f\n", images_timed / train_s);
  std::printf("infer images/s: %.1f\n", images_timed / infer_s);
  return 0;
}
