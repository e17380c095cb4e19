#pragma once
// Umbrella header: #include <tinycnn/tinycnn.hpp> gives the whole library.
#include <tinycnn/version.hpp>

#include "core/device.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/random.hpp"
#include "core/tensor.hpp"

#include "backend/dispatch.hpp"

#include "autograd/gradcheck.hpp"
#include "autograd/ops/activation.hpp"
#include "autograd/ops/basic.hpp"
#include "autograd/ops/dropout.hpp"
#include "autograd/ops/loss.hpp"
#include "autograd/variable.hpp"

#include "nn/activation.hpp"
#include "nn/add.hpp"
#include "nn/average.hpp"
#include "nn/dense.hpp"
#include "nn/dropout.hpp"
#include "nn/flatten.hpp"
#include "nn/graph.hpp"
#include "nn/leaky_relu.hpp"
#include "nn/relu.hpp"
#include "nn/reshape.hpp"
#include "nn/sequential.hpp"
#include "nn/sigmoid.hpp"
#include "nn/softmax.hpp"
#include "nn/tanh.hpp"

#include "data/idx.hpp"
#include "optim/adam.hpp"
#include "optim/optimizer.hpp"
#include "optim/schedule.hpp"
#include "optim/sgd.hpp"
#include "data/image.hpp"
#include "data/decode.hpp"
#include "data/exif.hpp"
#include "data/resize.hpp"
#include "data/normalize.hpp"
#include "data/augment.hpp"
#include "data/image_folder.hpp"
#include "data/loader.hpp"

#include "autograd/ops/batchnorm.hpp"
#include "autograd/ops/conv.hpp"
#include "autograd/ops/conv_pool.hpp"
#include "autograd/ops/pad.hpp"
#include "autograd/ops/pool.hpp"
#include "autograd/ops/resize.hpp"
#include "nn/avg_pool2d.hpp"
#include "nn/batch_normalization.hpp"
#include "nn/conv2d.hpp"
#include "nn/cropping2d.hpp"
#include "nn/depthwise_conv2d.hpp"
#include "nn/global_avg_pool2d.hpp"
#include "nn/flip.hpp"
#include "nn/max_pool2d.hpp"
#include "nn/rescaling.hpp"
#include "nn/resizing.hpp"
#include "nn/zero_padding2d.hpp"

#include "train/dataset.hpp"
#include "train/metrics.hpp"
#include "train/signal.hpp"
#include "train/summary.hpp"
#ifdef TINYCNN_HAS_JSON  // History/checkpoints use nlohmann-json
#include "train/callbacks.hpp"
#include "train/checkpoint.hpp"
#include "train/history.hpp"
#include "train/progress.hpp"
#include "train/trainer.hpp"
#include "train/swa.hpp"
#include "train/update_bn.hpp"
#endif

#ifdef TINYCNN_HAS_JSON  // model files (safetensors + architecture) use nlohmann-json
#include "io/layer_registry.hpp"
#include "io/model_file.hpp"
#include "io/safetensors.hpp"
#endif

#ifdef TINYCNN_HAS_JSON  // transfer learning (cut_at copies layers through the layer registry)
#include "nn/transfer.hpp"
#include "nn/ensemble.hpp"
#endif
#if defined(TINYCNN_HAS_HDF5) && defined(TINYCNN_HAS_JSON)  // Keras .h5 import (HDF5 C library)
#include "io/keras_h5.hpp"
#endif
