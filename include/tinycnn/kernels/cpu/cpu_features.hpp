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

namespace tinycnn::kernels::cpu {

struct CpuFeatures {
  bool avx2_fma = false;  // AVX2 + FMA3
  bool avx512 = false;    // AVX-512 F + BW + DQ + VL (and FMA)
};

inline CpuFeatures detect_cpu_features() {
  CpuFeatures f;
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  f.avx512 = f.avx2_fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#endif
  return f;
}

// Detected once per process.
inline const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect_cpu_features();
  return f;
}

}  // namespace tinycnn::kernels::cpu
