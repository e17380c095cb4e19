#pragma once
// Where a tensor's storage lives. Only CPU storage exists in the header-only core; the CUDA backend
// (cuda/, TINYCNN_USE_CUDA) adds device storage behind the same tag.
#include <string>

namespace tinycnn {

enum class Device { CPU, CUDA };

inline const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

}  // namespace tinycnn
