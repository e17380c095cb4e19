#pragma once
// A private copy of stb_image (JPEG, PNG and BMP only) and stb_image_resize for every translation
// unit that includes tinycnn's data headers.
//
// Why it is safe next to a user's own stb:
//  * every STBI_ / STBIR_ / stb macro name the headers define or test (list generated from the Debian
//    libstb-dev headers; the lists are stb_macros_save.inc / stb_macros_restore.inc) is saved with
//    push_macro and #undef'd before the include and restored after it, so a user's STBI_NO_JPEG,
//    STBI_ONLY_GIF, STBI_MALLOC, STB_IMAGE_IMPLEMENTATION, include guard, ... neither reach our copy
//    nor are changed by it;
//  * the stb headers are included inside namespace tinycnn::data::detail::stb with STB_IMAGE_STATIC /
//    STB_IMAGE_RESIZE_STATIC, so our functions have internal linkage and a namespaced name: no ODR or
//    link clash with a user's stb_image compiled anywhere else, or even in the same translation unit;
//  * the C headers stb includes are included first, at global scope, so the include inside the
//    namespace only re-enters their guards.
// Configuration: STBI_ONLY_JPEG/PNG/BMP, STBI_MAX_DIMENSIONS 16384, STBI_NO_STDIO (we read files
// ourselves), STBI_NO_LINEAR/HDR, and every allocation goes through a per-thread budget (below).
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__) || defined(_M_X64) || defined(__x86_64__)
#include <emmintrin.h>
#endif
#if defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace tinycnn {
namespace data {
namespace detail {

// Per-thread allocation budget for the stb decoder. decode.hpp arms it around each decode with a
// limit derived from the image header; an allocation that would go past the limit fails (stb then
// reports "outofmem", which we turn into a "too large" ImageError). The counters are public so tests
// can check that a decompression bomb is refused without allocating its pixels.
struct StbAllocBudget {
  size_t limit = SIZE_MAX;  // bytes allowed live at once
  size_t in_use = 0;        // bytes live now
  size_t peak = 0;          // high-water mark since the last reset()
  size_t allocations = 0;   // successful malloc/realloc calls since reset()
  size_t refused = 0;       // calls refused for the budget since reset()
  size_t largest_request = 0;
  void reset(size_t new_limit) {
    limit = new_limit;
    peak = in_use;
    allocations = refused = largest_request = 0;
  }
};
inline StbAllocBudget& stb_budget() {
  static thread_local StbAllocBudget b;
  return b;
}

// Each block carries its size in a 16-byte header (keeps 16-byte alignment for stb's SIMD paths).
constexpr size_t kStbHeader = 16;
inline void* stb_budget_malloc(size_t n) {
  StbAllocBudget& b = stb_budget();
  if (n > b.largest_request) b.largest_request = n;
  if (n > SIZE_MAX - kStbHeader || n > b.limit || b.in_use > b.limit - n) {
    ++b.refused;
    return nullptr;
  }
  // Zeroed: stb reads parts of its JPEG state (e.g. Huffman tables a file uses without defining)
  // that it never wrote; zeroing makes that deterministic and in range.
  void* raw = std::calloc(1, n + kStbHeader);
  if (!raw) return nullptr;
  std::memcpy(raw, &n, sizeof n);
  b.in_use += n;
  if (b.in_use > b.peak) b.peak = b.in_use;
  ++b.allocations;
  return static_cast<unsigned char*>(raw) + kStbHeader;
}
inline void stb_budget_free(void* p) {
  if (!p) return;
  unsigned char* raw = static_cast<unsigned char*>(p) - kStbHeader;
  size_t n;
  std::memcpy(&n, raw, sizeof n);
  stb_budget().in_use -= n;
  std::free(raw);
}
inline void* stb_budget_realloc(void* p, size_t n) {
  if (!p) return stb_budget_malloc(n);
  unsigned char* raw = static_cast<unsigned char*>(p) - kStbHeader;
  size_t old;
  std::memcpy(&old, raw, sizeof old);
  StbAllocBudget& b = stb_budget();
  if (n > b.largest_request) b.largest_request = n;
  const size_t others = b.in_use - old;
  if (n > SIZE_MAX - kStbHeader || n > b.limit || others > b.limit - n) {
    ++b.refused;
    return nullptr;  // stb keeps (and later frees) the old block
  }
  void* nr = std::realloc(raw, n + kStbHeader);
  if (!nr) return nullptr;
  std::memcpy(nr, &n, sizeof n);
  if (n > old) std::memset(static_cast<unsigned char*>(nr) + kStbHeader + old, 0, n - old);
  b.in_use = others + n;
  if (b.in_use > b.peak) b.peak = b.in_use;
  ++b.allocations;
  return static_cast<unsigned char*>(nr) + kStbHeader;
}

}  // namespace detail
}  // namespace data
}  // namespace tinycnn

#include "stb_macros_save.inc"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MAX_DIMENSIONS 16384
#define STBI_ASSERT(x) ((void)0)
#define STBI_MALLOC(sz) ::tinycnn::data::detail::stb_budget_malloc(sz)
#define STBI_REALLOC(p, newsz) ::tinycnn::data::detail::stb_budget_realloc(p, newsz)
#define STBI_FREE(p) ::tinycnn::data::detail::stb_budget_free(p)
#define STB_IMAGE_RESIZE_STATIC
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#define STBIR_ASSERT(x) ((void)0)

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wpedantic"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#endif

namespace tinycnn {
namespace data {
namespace detail {
namespace stb {
// Through <stb/...> when possible: /usr/include is a system directory, so the compiler also
// silences the warnings it finds only after inlining stb code into ours.
#if __has_include(<stb/stb_image.h>)
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#else
#include <stb_image.h>
#include <stb_image_resize.h>
#endif
}  // namespace stb

// The only entry points tinycnn uses. Not inlined: GCC reports some warnings about stb code only
// after inlining it, at the caller's location, where the pragmas above no longer apply.
#if defined(__GNUC__) || defined(__clang__)
#define TINYCNN_STB_NOINLINE __attribute__((noinline))
#else
#define TINYCNN_STB_NOINLINE
#endif
TINYCNN_STB_NOINLINE inline int stb_info(const unsigned char* p, int len, int* w, int* h, int* comp) {
  return stb::stbi_info_from_memory(p, len, w, h, comp);
}
TINYCNN_STB_NOINLINE inline int stb_is_16_bit(const unsigned char* p, int len) {
  return stb::stbi_is_16_bit_from_memory(p, len);
}
// 8 bits per channel, converted to `channels` (16-bit PNGs are reduced to 8 bits by stb).
TINYCNN_STB_NOINLINE inline unsigned char* stb_load_8bit(const unsigned char* p, int len, int* w, int* h,
                                                         int* comp, int channels) {
  return stb::stbi_load_from_memory(p, len, w, h, comp, channels);
}
TINYCNN_STB_NOINLINE inline void stb_free(void* p) { stb::stbi_image_free(p); }
TINYCNN_STB_NOINLINE inline const char* stb_failure_reason() { return stb::stbi_failure_reason(); }
TINYCNN_STB_NOINLINE inline int stb_resize_uint8(const unsigned char* in, int iw, int ih, unsigned char* out,
                                                 int ow, int oh, int channels) {
  return stb::stbir_resize_uint8(in, iw, ih, 0, out, ow, oh, 0, channels);
}
#undef TINYCNN_STB_NOINLINE
}  // namespace detail
}  // namespace data
}  // namespace tinycnn

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include "stb_macros_restore.inc"
