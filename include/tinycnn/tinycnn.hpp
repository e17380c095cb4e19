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
