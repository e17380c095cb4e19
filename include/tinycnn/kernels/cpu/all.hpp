#pragma once
// Every CPU kernel header (the dispatch facade includes this).
#include "activation.hpp"
#include "dropout.hpp"
#include "elementwise.hpp"
#include "gemm.hpp"
#include "loss.hpp"
#include "optim.hpp"
