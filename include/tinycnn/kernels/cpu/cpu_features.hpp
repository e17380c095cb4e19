#pragma once
// Run-time CPU feature detection. The library is compiled for the baseline ISA (no -march=native);
// ISA-specific kernels carry function-level target attributes and are only called when the CPU (and
// the OS, which must save the wide registers) supports them. __builtin_cpu_supports checks both.
// Function-level target attributes for those kernels (x86-64 GCC/Clang only; TINYCNN_HAVE_X86_TARGETS
// says whether they exist). One definition, used by the GEMM kernels and the pooling copies.
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define TINYCNN_HAVE_X86_TARGETS 1
#define TINYCNN_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define TINYCNN_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#endif

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
#endif

namespace tinycnn::kernels::cpu {

struct CpuFeatures {
  bool avx2_fma = false;  // AVX2 + FMA3
  bool avx512 = false;    // AVX-512 F + BW + DQ + VL (and FMA)
  // AVX-512 executed on 256-bit units: an AMD family 19h CPU (Zen 4; Zen 3, the same family, has no
  // AVX-512). A few GEMM choices were measured to win there and to lose on a Zen 5 (family 1Ah, full
  // 512-bit FMA units, L1d 48 KiB against 32 KiB): they are taken only where this is set
  // (PackedKernel::flip_wide_nt, the dot-product tiles' prefetch; docs/performance.md, forty-ninth
  // session). CPUs never measured with them (Intel's) get the Zen 5 choices.
  bool avx512_half_width = false;
};

// The CPU's family as CPUID leaf 1 reports it (base family, plus the extended family where the base
// is 0xF), or 0 where unknown; *amd: whether the vendor is AuthenticAMD.
inline int cpu_family(bool* amd) {
  *amd = false;
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
  *amd = b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u;  // "Auth" "enti" "cAMD"
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  const int base = static_cast<int>((a >> 8) & 0xF), ext = static_cast<int>((a >> 20) & 0xFF);
  return base == 0xF ? base + ext : base;
#else
  return 0;
#endif
}

inline CpuFeatures detect_cpu_features() {
  CpuFeatures f;
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  f.avx512 = f.avx2_fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  bool amd = false;
  f.avx512_half_width = f.avx512 && cpu_family(&amd) == 0x19 && amd;
#endif
  return f;
}

// The highest instruction set the kernels may use, from the environment variable TINYCNN_MAX_ISA:
// "avx512" (or unset: whatever the CPU has), "avx2" (the AVX2 + FMA kernels even on an AVX-512 CPU)
// or "baseline" (the portable kernels), case-insensitive. As oneDNN's ONEDNN_MAX_CPU_ISA: one machine
// can run, test and time the code paths of the machines without its wider vectors (tests/CMakeLists.txt
// runs the kernel and model tests under each cap). The cap never adds an ISA the CPU lacks. Read once,
// with the detection: a process cannot switch, because prepacked operands (the Winograd filter cache)
// take the layout of the kernel in use. Any other value leaves f as it is and sets *valid to false;
// cpu_features() then says so on stderr and goes on uncapped (as libgomp does with a bad
// OMP_NUM_THREADS): the variable may be read first inside a parallel region, where an exception
// could not reach the caller.
inline CpuFeatures cap_cpu_features(CpuFeatures f, const char* max_isa, bool* valid = nullptr) {
  if (valid) *valid = true;
  if (max_isa == nullptr || *max_isa == '\0') return f;
  std::string v(max_isa);
  for (char& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (v == "avx512") return f;
  if (v == "avx2") {
    f.avx512 = f.avx512_half_width = false;
    return f;
  }
  if (v == "baseline") return CpuFeatures{};
  if (valid) *valid = false;
  return f;
}

// Detected (and capped) once per process.
inline const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    const char* e = std::getenv("TINYCNN_MAX_ISA");
    bool valid = true;
    const CpuFeatures c = cap_cpu_features(detect_cpu_features(), e, &valid);
    if (!valid)
      std::fprintf(stderr, "tinycnn: TINYCNN_MAX_ISA=\"%s\" is not one of avx512, avx2, baseline; ignored\n", e);
    return c;
  }();
  return f;
}

// The instruction set the kernels use: "avx512", "avx2" or "baseline".
inline const char* cpu_isa_name() {
  const CpuFeatures& f = cpu_features();
  return f.avx512 ? "avx512" : f.avx2_fma ? "avx2" : "baseline";
}

}  // namespace tinycnn::kernels::cpu
