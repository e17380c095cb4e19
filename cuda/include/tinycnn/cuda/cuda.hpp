#pragma once
// Everything tinycnn::cuda offers to host code (plain C++ headers; no CUDA header needed).
#include "buffer.hpp"
#include "conv.hpp"
#include "counter_rng.hpp"
#include "gemm.hpp"
#include "ops.hpp"
#include "runtime.hpp"
