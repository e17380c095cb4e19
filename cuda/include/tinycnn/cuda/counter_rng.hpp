#pragma once
// The counter-based generator of the dropout kernels lives in the core (core/counter_rng.hpp) so the
// CPU kernel draws the same mask; the CUDA code refers to it by these names.
#include <tinycnn/core/counter_rng.hpp>

namespace tinycnn::cuda {
using ::tinycnn::counter_hash;
using ::tinycnn::counter_uniform;
}  // namespace tinycnn::cuda
