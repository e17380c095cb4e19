#pragma once
// Umbrella header: #include <tinycnn/tinycnn.hpp> gives the whole library.
#include <tinycnn/version.hpp>

#include "core/device.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/random.hpp"
#include "core/tensor.hpp"

#include "kernels/cpu/gemm.hpp"

#include "data/idx.hpp"
