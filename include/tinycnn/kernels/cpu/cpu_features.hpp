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
    f.avx512 = false;
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
