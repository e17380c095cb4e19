#pragma once
// A private copy of stb_image (JPEG, PNG and BMP only) and stb_image_resize for every translation
// unit that includes tinycnn's data headers.
//
// Why it is safe next to a user's own stb:
//  * every STBI_ / STBIR_ / stb macro name the headers define or test (list generated from the Debian
//    libstb-dev headers) is saved with push_macro and #undef'd before the include and restored after
//    it, so a user's STBI_NO_JPEG, STBI_ONLY_GIF, STBI_MALLOC, STB_IMAGE_IMPLEMENTATION, include guard,
//    ... neither reach our copy nor are changed by it;
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

#pragma push_macro("FAST_BITS")
#undef FAST_BITS
#pragma push_macro("OVERWRITE_ARRAY_SIZE")
#undef OVERWRITE_ARRAY_SIZE
#pragma push_macro("STBIDEF")
#undef STBIDEF
#pragma push_macro("STBIRDEF")
#undef STBIRDEF
#pragma push_macro("STBIR_ALPHA_CHANNEL_NONE")
#undef STBIR_ALPHA_CHANNEL_NONE
#pragma push_macro("STBIR_ALPHA_EPSILON")
#undef STBIR_ALPHA_EPSILON
#pragma push_macro("STBIR_ASSERT")
#undef STBIR_ASSERT
#pragma push_macro("STBIR_DEBUG_OVERWRITE_TEST")
#undef STBIR_DEBUG_OVERWRITE_TEST
#pragma push_macro("STBIR_DEFAULT_FILTER_DOWNSAMPLE")
#undef STBIR_DEFAULT_FILTER_DOWNSAMPLE
#pragma push_macro("STBIR_DEFAULT_FILTER_UPSAMPLE")
#undef STBIR_DEFAULT_FILTER_UPSAMPLE
#pragma push_macro("STBIR_FLAG_ALPHA_PREMULTIPLIED")
#undef STBIR_FLAG_ALPHA_PREMULTIPLIED
#pragma push_macro("STBIR_FLAG_ALPHA_USES_COLORSPACE")
#undef STBIR_FLAG_ALPHA_USES_COLORSPACE
#pragma push_macro("STBIR_FREE")
#undef STBIR_FREE
#pragma push_macro("STBIR_INCLUDE_STB_IMAGE_RESIZE_H")
#undef STBIR_INCLUDE_STB_IMAGE_RESIZE_H
#pragma push_macro("STBIR_MALLOC")
#undef STBIR_MALLOC
#pragma push_macro("STBIR_MAX_CHANNELS")
#undef STBIR_MAX_CHANNELS
#pragma push_macro("STBIR_NON_IEEE_FLOAT")
#undef STBIR_NON_IEEE_FLOAT
#pragma push_macro("STBIR_NO_ALPHA_EPSILON")
#undef STBIR_NO_ALPHA_EPSILON
#pragma push_macro("STBIR_PROGRESS_REPORT")
#undef STBIR_PROGRESS_REPORT
#pragma push_macro("STBIR_SATURATE_INT")
#undef STBIR_SATURATE_INT
#pragma push_macro("STBIR__ARRAY_SIZE")
#undef STBIR__ARRAY_SIZE
#pragma push_macro("STBIR__DECODE")
#undef STBIR__DECODE
#pragma push_macro("STBIR__ENCODE_LINEAR16")
#undef STBIR__ENCODE_LINEAR16
#pragma push_macro("STBIR__ENCODE_LINEAR8")
#undef STBIR__ENCODE_LINEAR8
#pragma push_macro("STBIR__NEXT_MEMPTR")
#undef STBIR__NEXT_MEMPTR
#pragma push_macro("STBIR__NOTUSED")
#undef STBIR__NOTUSED
#pragma push_macro("STBIR__ROUND_INT")
#undef STBIR__ROUND_INT
#pragma push_macro("STBIR__ROUND_UINT")
#undef STBIR__ROUND_UINT
#pragma push_macro("STBIR__SATURATE_INT")
#undef STBIR__SATURATE_INT
#pragma push_macro("STBIR__UNUSED_PARAM")
#undef STBIR__UNUSED_PARAM
#pragma push_macro("STBI_ASSERT")
#undef STBI_ASSERT
#pragma push_macro("STBI_EXTERN")
#undef STBI_EXTERN
#pragma push_macro("STBI_FAILURE_USERMSG")
#undef STBI_FAILURE_USERMSG
#pragma push_macro("STBI_FREE")
#undef STBI_FREE
#pragma push_macro("STBI_HAS_LROTL")
#undef STBI_HAS_LROTL
#pragma push_macro("STBI_INCLUDE_STB_IMAGE_H")
#undef STBI_INCLUDE_STB_IMAGE_H
#pragma push_macro("STBI_MALLOC")
#undef STBI_MALLOC
#pragma push_macro("STBI_MAX_DIMENSIONS")
#undef STBI_MAX_DIMENSIONS
#pragma push_macro("STBI_MINGW_ENABLE_SSE2")
#undef STBI_MINGW_ENABLE_SSE2
#pragma push_macro("STBI_NEON")
#undef STBI_NEON
#pragma push_macro("STBI_NOTUSED")
#undef STBI_NOTUSED
#pragma push_macro("STBI_NO_BMP")
#undef STBI_NO_BMP
#pragma push_macro("STBI_NO_FAILURE_STRINGS")
#undef STBI_NO_FAILURE_STRINGS
#pragma push_macro("STBI_NO_GIF")
#undef STBI_NO_GIF
#pragma push_macro("STBI_NO_HDR")
#undef STBI_NO_HDR
#pragma push_macro("STBI_NO_JPEG")
#undef STBI_NO_JPEG
#pragma push_macro("STBI_NO_LINEAR")
#undef STBI_NO_LINEAR
#pragma push_macro("STBI_NO_PIC")
#undef STBI_NO_PIC
#pragma push_macro("STBI_NO_PNG")
#undef STBI_NO_PNG
#pragma push_macro("STBI_NO_PNM")
#undef STBI_NO_PNM
#pragma push_macro("STBI_NO_PSD")
#undef STBI_NO_PSD
#pragma push_macro("STBI_NO_SIMD")
#undef STBI_NO_SIMD
#pragma push_macro("STBI_NO_STDIO")
#undef STBI_NO_STDIO
#pragma push_macro("STBI_NO_TGA")
#undef STBI_NO_TGA
#pragma push_macro("STBI_NO_THREAD_LOCALS")
#undef STBI_NO_THREAD_LOCALS
#pragma push_macro("STBI_NO_ZLIB")
#undef STBI_NO_ZLIB
#pragma push_macro("STBI_ONLY_BMP")
#undef STBI_ONLY_BMP
#pragma push_macro("STBI_ONLY_GIF")
#undef STBI_ONLY_GIF
#pragma push_macro("STBI_ONLY_HDR")
#undef STBI_ONLY_HDR
#pragma push_macro("STBI_ONLY_JPEG")
#undef STBI_ONLY_JPEG
#pragma push_macro("STBI_ONLY_PIC")
#undef STBI_ONLY_PIC
#pragma push_macro("STBI_ONLY_PNG")
#undef STBI_ONLY_PNG
#pragma push_macro("STBI_ONLY_PNM")
#undef STBI_ONLY_PNM
#pragma push_macro("STBI_ONLY_PSD")
#undef STBI_ONLY_PSD
#pragma push_macro("STBI_ONLY_TGA")
#undef STBI_ONLY_TGA
#pragma push_macro("STBI_REALLOC")
#undef STBI_REALLOC
#pragma push_macro("STBI_REALLOC_SIZED")
#undef STBI_REALLOC_SIZED
#pragma push_macro("STBI_SIMD_ALIGN")
#undef STBI_SIMD_ALIGN
#pragma push_macro("STBI_SSE2")
#undef STBI_SSE2
#pragma push_macro("STBI_SUPPORT_ZLIB")
#undef STBI_SUPPORT_ZLIB
#pragma push_macro("STBI_THREAD_LOCAL")
#undef STBI_THREAD_LOCAL
#pragma push_macro("STBI_VERSION")
#undef STBI_VERSION
#pragma push_macro("STBI_WINDOWS_UTF8")
#undef STBI_WINDOWS_UTF8
#pragma push_macro("STBI__BYTECAST")
#undef STBI__BYTECAST
#pragma push_macro("STBI__CASE")
#undef STBI__CASE
#pragma push_macro("STBI__COMBO")
#undef STBI__COMBO
#pragma push_macro("STBI__HDR_BUFLEN")
#undef STBI__HDR_BUFLEN
#pragma push_macro("STBI__IDCT_1D")
#undef STBI__IDCT_1D
#pragma push_macro("STBI__MARKER_none")
#undef STBI__MARKER_none
#pragma push_macro("STBI__PNG_TYPE")
#undef STBI__PNG_TYPE
#pragma push_macro("STBI__RESTART")
#undef STBI__RESTART
#pragma push_macro("STBI__X64_TARGET")
#undef STBI__X64_TARGET
#pragma push_macro("STBI__X86_TARGET")
#undef STBI__X86_TARGET
#pragma push_macro("STBI__ZFAST_BITS")
#undef STBI__ZFAST_BITS
#pragma push_macro("STBI__ZFAST_MASK")
#undef STBI__ZFAST_MASK
#pragma push_macro("STBI__ZNSYMS")
#undef STBI__ZNSYMS
#pragma push_macro("STB_IMAGE_IMPLEMENTATION")
#undef STB_IMAGE_IMPLEMENTATION
#pragma push_macro("STB_IMAGE_RESIZE_IMPLEMENTATION")
#undef STB_IMAGE_RESIZE_IMPLEMENTATION
#pragma push_macro("STB_IMAGE_RESIZE_STATIC")
#undef STB_IMAGE_RESIZE_STATIC
#pragma push_macro("STB_IMAGE_STATIC")
#undef STB_IMAGE_STATIC
#pragma push_macro("dct_bfly32o")
#undef dct_bfly32o
#pragma push_macro("dct_const")
#undef dct_const
#pragma push_macro("dct_interleave16")
#undef dct_interleave16
#pragma push_macro("dct_interleave8")
#undef dct_interleave8
#pragma push_macro("dct_long_mac")
#undef dct_long_mac
#pragma push_macro("dct_long_mul")
#undef dct_long_mul
#pragma push_macro("dct_pass")
#undef dct_pass
#pragma push_macro("dct_rot")
#undef dct_rot
#pragma push_macro("dct_trn16")
#undef dct_trn16
#pragma push_macro("dct_trn32")
#undef dct_trn32
#pragma push_macro("dct_trn64")
#undef dct_trn64
#pragma push_macro("dct_trn8_16")
#undef dct_trn8_16
#pragma push_macro("dct_trn8_32")
#undef dct_trn8_32
#pragma push_macro("dct_trn8_8")
#undef dct_trn8_8
#pragma push_macro("dct_wadd")
#undef dct_wadd
#pragma push_macro("dct_widen")
#undef dct_widen
#pragma push_macro("dct_wsub")
#undef dct_wsub
#pragma push_macro("stbi__DNL")
#undef stbi__DNL
#pragma push_macro("stbi__EOI")
#undef stbi__EOI
#pragma push_macro("stbi__SOF")
#undef stbi__SOF
#pragma push_macro("stbi__SOF_progressive")
#undef stbi__SOF_progressive
#pragma push_macro("stbi__SOI")
#undef stbi__SOI
#pragma push_macro("stbi__SOS")
#undef stbi__SOS
#pragma push_macro("stbi__de_iphone_flag")
#undef stbi__de_iphone_flag
#pragma push_macro("stbi__div16")
#undef stbi__div16
#pragma push_macro("stbi__div4")
#undef stbi__div4
#pragma push_macro("stbi__err")
#undef stbi__err
#pragma push_macro("stbi__errpf")
#undef stbi__errpf
#pragma push_macro("stbi__errpuc")
#undef stbi__errpuc
#pragma push_macro("stbi__f2f")
#undef stbi__f2f
#pragma push_macro("stbi__float2fixed")
#undef stbi__float2fixed
#pragma push_macro("stbi__float2int")
#undef stbi__float2int
#pragma push_macro("stbi__fsh")
#undef stbi__fsh
#pragma push_macro("stbi__unpremultiply_on_load")
#undef stbi__unpremultiply_on_load
#pragma push_macro("stbi__vertically_flip_on_load")
#undef stbi__vertically_flip_on_load
#pragma push_macro("stbi_inline")
#undef stbi_inline
#pragma push_macro("stbi_lrot")
#undef stbi_lrot
#pragma push_macro("stbir__inline")
#undef stbir__inline

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

#undef FAST_BITS
#pragma pop_macro("FAST_BITS")
#undef OVERWRITE_ARRAY_SIZE
#pragma pop_macro("OVERWRITE_ARRAY_SIZE")
#undef STBIDEF
#pragma pop_macro("STBIDEF")
#undef STBIRDEF
#pragma pop_macro("STBIRDEF")
#undef STBIR_ALPHA_CHANNEL_NONE
#pragma pop_macro("STBIR_ALPHA_CHANNEL_NONE")
#undef STBIR_ALPHA_EPSILON
#pragma pop_macro("STBIR_ALPHA_EPSILON")
#undef STBIR_ASSERT
#pragma pop_macro("STBIR_ASSERT")
#undef STBIR_DEBUG_OVERWRITE_TEST
#pragma pop_macro("STBIR_DEBUG_OVERWRITE_TEST")
#undef STBIR_DEFAULT_FILTER_DOWNSAMPLE
#pragma pop_macro("STBIR_DEFAULT_FILTER_DOWNSAMPLE")
#undef STBIR_DEFAULT_FILTER_UPSAMPLE
#pragma pop_macro("STBIR_DEFAULT_FILTER_UPSAMPLE")
#undef STBIR_FLAG_ALPHA_PREMULTIPLIED
#pragma pop_macro("STBIR_FLAG_ALPHA_PREMULTIPLIED")
#undef STBIR_FLAG_ALPHA_USES_COLORSPACE
#pragma pop_macro("STBIR_FLAG_ALPHA_USES_COLORSPACE")
#undef STBIR_FREE
#pragma pop_macro("STBIR_FREE")
#undef STBIR_INCLUDE_STB_IMAGE_RESIZE_H
#pragma pop_macro("STBIR_INCLUDE_STB_IMAGE_RESIZE_H")
#undef STBIR_MALLOC
#pragma pop_macro("STBIR_MALLOC")
#undef STBIR_MAX_CHANNELS
#pragma pop_macro("STBIR_MAX_CHANNELS")
#undef STBIR_NON_IEEE_FLOAT
#pragma pop_macro("STBIR_NON_IEEE_FLOAT")
#undef STBIR_NO_ALPHA_EPSILON
#pragma pop_macro("STBIR_NO_ALPHA_EPSILON")
#undef STBIR_PROGRESS_REPORT
#pragma pop_macro("STBIR_PROGRESS_REPORT")
#undef STBIR_SATURATE_INT
#pragma pop_macro("STBIR_SATURATE_INT")
#undef STBIR__ARRAY_SIZE
#pragma pop_macro("STBIR__ARRAY_SIZE")
#undef STBIR__DECODE
#pragma pop_macro("STBIR__DECODE")
#undef STBIR__ENCODE_LINEAR16
#pragma pop_macro("STBIR__ENCODE_LINEAR16")
#undef STBIR__ENCODE_LINEAR8
#pragma pop_macro("STBIR__ENCODE_LINEAR8")
#undef STBIR__NEXT_MEMPTR
#pragma pop_macro("STBIR__NEXT_MEMPTR")
#undef STBIR__NOTUSED
#pragma pop_macro("STBIR__NOTUSED")
#undef STBIR__ROUND_INT
#pragma pop_macro("STBIR__ROUND_INT")
#undef STBIR__ROUND_UINT
#pragma pop_macro("STBIR__ROUND_UINT")
#undef STBIR__SATURATE_INT
#pragma pop_macro("STBIR__SATURATE_INT")
#undef STBIR__UNUSED_PARAM
#pragma pop_macro("STBIR__UNUSED_PARAM")
#undef STBI_ASSERT
#pragma pop_macro("STBI_ASSERT")
#undef STBI_EXTERN
#pragma pop_macro("STBI_EXTERN")
#undef STBI_FAILURE_USERMSG
#pragma pop_macro("STBI_FAILURE_USERMSG")
#undef STBI_FREE
#pragma pop_macro("STBI_FREE")
#undef STBI_HAS_LROTL
#pragma pop_macro("STBI_HAS_LROTL")
#undef STBI_INCLUDE_STB_IMAGE_H
#pragma pop_macro("STBI_INCLUDE_STB_IMAGE_H")
#undef STBI_MALLOC
#pragma pop_macro("STBI_MALLOC")
#undef STBI_MAX_DIMENSIONS
#pragma pop_macro("STBI_MAX_DIMENSIONS")
#undef STBI_MINGW_ENABLE_SSE2
#pragma pop_macro("STBI_MINGW_ENABLE_SSE2")
#undef STBI_NEON
#pragma pop_macro("STBI_NEON")
#undef STBI_NOTUSED
#pragma pop_macro("STBI_NOTUSED")
#undef STBI_NO_BMP
#pragma pop_macro("STBI_NO_BMP")
#undef STBI_NO_FAILURE_STRINGS
#pragma pop_macro("STBI_NO_FAILURE_STRINGS")
#undef STBI_NO_GIF
#pragma pop_macro("STBI_NO_GIF")
#undef STBI_NO_HDR
#pragma pop_macro("STBI_NO_HDR")
#undef STBI_NO_JPEG
#pragma pop_macro("STBI_NO_JPEG")
#undef STBI_NO_LINEAR
#pragma pop_macro("STBI_NO_LINEAR")
#undef STBI_NO_PIC
#pragma pop_macro("STBI_NO_PIC")
#undef STBI_NO_PNG
#pragma pop_macro("STBI_NO_PNG")
#undef STBI_NO_PNM
#pragma pop_macro("STBI_NO_PNM")
#undef STBI_NO_PSD
#pragma pop_macro("STBI_NO_PSD")
#undef STBI_NO_SIMD
#pragma pop_macro("STBI_NO_SIMD")
#undef STBI_NO_STDIO
#pragma pop_macro("STBI_NO_STDIO")
#undef STBI_NO_TGA
#pragma pop_macro("STBI_NO_TGA")
#undef STBI_NO_THREAD_LOCALS
#pragma pop_macro("STBI_NO_THREAD_LOCALS")
#undef STBI_NO_ZLIB
#pragma pop_macro("STBI_NO_ZLIB")
#undef STBI_ONLY_BMP
#pragma pop_macro("STBI_ONLY_BMP")
#undef STBI_ONLY_GIF
#pragma pop_macro("STBI_ONLY_GIF")
#undef STBI_ONLY_HDR
#pragma pop_macro("STBI_ONLY_HDR")
#undef STBI_ONLY_JPEG
#pragma pop_macro("STBI_ONLY_JPEG")
#undef STBI_ONLY_PIC
#pragma pop_macro("STBI_ONLY_PIC")
#undef STBI_ONLY_PNG
#pragma pop_macro("STBI_ONLY_PNG")
#undef STBI_ONLY_PNM
#pragma pop_macro("STBI_ONLY_PNM")
#undef STBI_ONLY_PSD
#pragma pop_macro("STBI_ONLY_PSD")
#undef STBI_ONLY_TGA
#pragma pop_macro("STBI_ONLY_TGA")
#undef STBI_REALLOC
#pragma pop_macro("STBI_REALLOC")
#undef STBI_REALLOC_SIZED
#pragma pop_macro("STBI_REALLOC_SIZED")
#undef STBI_SIMD_ALIGN
#pragma pop_macro("STBI_SIMD_ALIGN")
#undef STBI_SSE2
#pragma pop_macro("STBI_SSE2")
#undef STBI_SUPPORT_ZLIB
#pragma pop_macro("STBI_SUPPORT_ZLIB")
#undef STBI_THREAD_LOCAL
#pragma pop_macro("STBI_THREAD_LOCAL")
#undef STBI_VERSION
#pragma pop_macro("STBI_VERSION")
#undef STBI_WINDOWS_UTF8
#pragma pop_macro("STBI_WINDOWS_UTF8")
#undef STBI__BYTECAST
#pragma pop_macro("STBI__BYTECAST")
#undef STBI__CASE
#pragma pop_macro("STBI__CASE")
#undef STBI__COMBO
#pragma pop_macro("STBI__COMBO")
#undef STBI__HDR_BUFLEN
#pragma pop_macro("STBI__HDR_BUFLEN")
#undef STBI__IDCT_1D
#pragma pop_macro("STBI__IDCT_1D")
#undef STBI__MARKER_none
#pragma pop_macro("STBI__MARKER_none")
#undef STBI__PNG_TYPE
#pragma pop_macro("STBI__PNG_TYPE")
#undef STBI__RESTART
#pragma pop_macro("STBI__RESTART")
#undef STBI__X64_TARGET
#pragma pop_macro("STBI__X64_TARGET")
#undef STBI__X86_TARGET
#pragma pop_macro("STBI__X86_TARGET")
#undef STBI__ZFAST_BITS
#pragma pop_macro("STBI__ZFAST_BITS")
#undef STBI__ZFAST_MASK
#pragma pop_macro("STBI__ZFAST_MASK")
#undef STBI__ZNSYMS
#pragma pop_macro("STBI__ZNSYMS")
#undef STB_IMAGE_IMPLEMENTATION
#pragma pop_macro("STB_IMAGE_IMPLEMENTATION")
#undef STB_IMAGE_RESIZE_IMPLEMENTATION
#pragma pop_macro("STB_IMAGE_RESIZE_IMPLEMENTATION")
#undef STB_IMAGE_RESIZE_STATIC
#pragma pop_macro("STB_IMAGE_RESIZE_STATIC")
#undef STB_IMAGE_STATIC
#pragma pop_macro("STB_IMAGE_STATIC")
#undef dct_bfly32o
#pragma pop_macro("dct_bfly32o")
#undef dct_const
#pragma pop_macro("dct_const")
#undef dct_interleave16
#pragma pop_macro("dct_interleave16")
#undef dct_interleave8
#pragma pop_macro("dct_interleave8")
#undef dct_long_mac
#pragma pop_macro("dct_long_mac")
#undef dct_long_mul
#pragma pop_macro("dct_long_mul")
#undef dct_pass
#pragma pop_macro("dct_pass")
#undef dct_rot
#pragma pop_macro("dct_rot")
#undef dct_trn16
#pragma pop_macro("dct_trn16")
#undef dct_trn32
#pragma pop_macro("dct_trn32")
#undef dct_trn64
#pragma pop_macro("dct_trn64")
#undef dct_trn8_16
#pragma pop_macro("dct_trn8_16")
#undef dct_trn8_32
#pragma pop_macro("dct_trn8_32")
#undef dct_trn8_8
#pragma pop_macro("dct_trn8_8")
#undef dct_wadd
#pragma pop_macro("dct_wadd")
#undef dct_widen
#pragma pop_macro("dct_widen")
#undef dct_wsub
#pragma pop_macro("dct_wsub")
#undef stbi__DNL
#pragma pop_macro("stbi__DNL")
#undef stbi__EOI
#pragma pop_macro("stbi__EOI")
#undef stbi__SOF
#pragma pop_macro("stbi__SOF")
#undef stbi__SOF_progressive
#pragma pop_macro("stbi__SOF_progressive")
#undef stbi__SOI
#pragma pop_macro("stbi__SOI")
#undef stbi__SOS
#pragma pop_macro("stbi__SOS")
#undef stbi__de_iphone_flag
#pragma pop_macro("stbi__de_iphone_flag")
#undef stbi__div16
#pragma pop_macro("stbi__div16")
#undef stbi__div4
#pragma pop_macro("stbi__div4")
#undef stbi__err
#pragma pop_macro("stbi__err")
#undef stbi__errpf
#pragma pop_macro("stbi__errpf")
#undef stbi__errpuc
#pragma pop_macro("stbi__errpuc")
#undef stbi__f2f
#pragma pop_macro("stbi__f2f")
#undef stbi__float2fixed
#pragma pop_macro("stbi__float2fixed")
#undef stbi__float2int
#pragma pop_macro("stbi__float2int")
#undef stbi__fsh
#pragma pop_macro("stbi__fsh")
#undef stbi__unpremultiply_on_load
#pragma pop_macro("stbi__unpremultiply_on_load")
#undef stbi__vertically_flip_on_load
#pragma pop_macro("stbi__vertically_flip_on_load")
#undef stbi_inline
#pragma pop_macro("stbi_inline")
#undef stbi_lrot
#pragma pop_macro("stbi_lrot")
#undef stbir__inline
#pragma pop_macro("stbir__inline")
