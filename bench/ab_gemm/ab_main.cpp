// Old against new GEMM code in one process (run.sh builds it; see docs/performance.md, "How a change is
// measured"). Each product is called in pairs, the order inside a pair alternating, so both sides
// see the same phases of the host (its vCPUs run at different speeds for minutes at a time); the
// result per round is the median of the pairs' time ratios new / old. Before each round, --probe
// times one thread of --probe-shape pinned to each CPU in turn, so rounds with one CPU slow can be
// told apart (--probe-shape implies --probe).
//
//   ab_gemm [--rounds R] [--calls C] [--threads T] [--probe] [--probe-shape MxNxK/FORM] MxNxK/FORM...
//
// FORM: NN, NT, TN or TT (op(A), op(B); T = transposed). Both sides compute C = op(A) op(B) on the same
// operands once first, and their difference is printed ("same bits" where there is none).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <tinycnn/core/host_alloc.hpp>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__linux__)
#include <sched.h>
#endif

void ab_gemm_old(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t);
void ab_gemm_new(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t);

namespace {

using Fn = void (*)(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*,
                    int64_t);

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "ab_gemm: %s\nusage: ab_gemm [--rounds R] [--calls C] [--threads T] [--probe] "
               "[--probe-shape MxNxK/FORM] MxNxK/FORM...\n",
               why.c_str());
  std::exit(2);
}

struct Product {
  std::string name;
  int64_t M = 0, N = 0, K = 0;
  bool ta = false, tb = false;
  // Allocated like tensor storage and bench_gemm.cpp's operands (huge pages where large): A^T read in
  // place crosses a page every k, so 4 KiB pages put TLB misses in the times that the library does not see.
  std::vector<float, tinycnn::HostAllocator<float>> A, B, C;
  double gflop() const { return 2.0 * double(M) * double(N) * double(K) / 1e9; }
  double call(Fn f) {
    const int64_t lda = ta ? M : K, ldb = tb ? K : N;
    const auto s = std::chrono::steady_clock::now();
    f(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, C.data(), N);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count();
  }
};

Product parse(const std::string& s) {
  Product p;
  p.name = s;
  char form[3] = {};
  long long m = 0, n = 0, k = 0;
  char tail = 0;
  if (std::sscanf(s.c_str(), "%lldx%lldx%lld/%2[NT]%c", &m, &n, &k, form, &tail) != 4 || std::strlen(form) != 2 ||
      m <= 0 || n <= 0 || k <= 0)
    usage("product '" + s + "' is not MxNxK/FORM with positive sizes and FORM one of NN, NT, TN, TT");
  if (double(m) * double(k) + double(k) * double(n) + double(m) * double(n) > double(int64_t(1) << 31))
    usage("product '" + s + "' needs more than 8 GiB of operands");
  p.M = m, p.N = n, p.K = k;
  p.ta = form[0] == 'T', p.tb = form[1] == 'T';
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  p.A.resize(size_t(m * k));
  p.B.resize(size_t(k * n));
  p.C.resize(size_t(m * n));
  for (float& x : p.A) x = u(rng);
  for (float& x : p.B) x = u(rng);
  return p;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
void set_threads(int t) {
#ifdef _OPENMP
  omp_set_num_threads(t);
#else
  (void)t;
#endif
}

// GFLOP/s of one thread on each CPU the process may run on (at most 8), pinned in turn; empty where
// the platform cannot pin.
std::vector<double> probe(Product& p) {
  std::vector<double> out;
#if defined(__linux__)
  cpu_set_t all;
  if (sched_getaffinity(0, sizeof(all), &all) != 0) return out;
  const int saved = max_threads();
  set_threads(1);
  for (int cpu = 0; cpu < CPU_SETSIZE && out.size() < 8; ++cpu) {
    if (!CPU_ISSET(cpu, &all)) continue;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof(one), &one) != 0) continue;
    std::vector<double> t;
    for (int i = 0; i < 7; ++i) t.push_back(p.call(&ab_gemm_new));
    out.push_back(p.gflop() / median(t));
  }
  sched_setaffinity(0, sizeof(all), &all);
  set_threads(saved);
#else
  (void)p;
#endif
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5, calls = 15;
  bool do_probe = false;
  std::string probe_shape = "576x256x4608/NT";
  std::vector<std::string> names;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    auto count = [&](int lo) {
      const std::string v = value();
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || n < lo || n > 100000) usage(a + " " + v + ": not a whole number >= " + std::to_string(lo));
      return static_cast<int>(n);
    };
    if (a == "--rounds") rounds = count(1);
    else if (a == "--calls") calls = count(1);
    else if (a == "--threads") set_threads(count(1));
    else if (a == "--probe") do_probe = true;
    else if (a == "--probe-shape") probe_shape = value(), do_probe = true;
    else if (a == "-h" || a == "--help") {
      std::printf("usage: ab_gemm [--rounds R] [--calls C] [--threads T] [--probe] [--probe-shape MxNxK/FORM] "
                  "MxNxK/FORM...\n(bench/ab_gemm/run.sh builds it; docs/performance.md)\n");
      return 0;
    }
    else if (!a.empty() && a[0] == '-') usage("unknown option " + a);
    else names.push_back(a);
  }
  if (names.empty()) usage("no product given");
  std::vector<Product> products;
  for (const std::string& n : names) products.push_back(parse(n));
  Product probe_product = do_probe ? parse(probe_shape) : Product{};

  std::printf("ab_gemm: %d thread(s), %d round(s) of %d pairs of calls per product\n", max_threads(), rounds, calls);
  for (Product& p : products) {  // both sides once: warm-up, and whether they agree
    p.call(&ab_gemm_old);
    const std::vector<float> old_c(p.C.begin(), p.C.end());
    p.call(&ab_gemm_new);
    double most = 0.0;
    bool same = true;
    for (size_t i = 0; i < old_c.size(); ++i) {
      same = same && std::memcmp(&old_c[i], &p.C[i], sizeof(float)) == 0;
      most = std::max(most, double(std::fabs(old_c[i] - p.C[i])) / (1.0 + std::fabs(double(old_c[i]))));
    }
    if (same)
      std::printf("%s: same bits\n", p.name.c_str());
    else
      std::printf("%s: results differ, largest |new - old| / (1 + |old|) = %.3g\n", p.name.c_str(), most);
  }

  // ratio[r][p]: round r's median ratio for product p; skew[r]: fastest probe / slowest probe.
  std::vector<std::vector<double>> ratio(size_t(rounds), std::vector<double>(products.size()));
  std::vector<double> skew(size_t(rounds), 1.0);
  for (int r = 0; r < rounds; ++r) {
    if (do_probe) {
      const std::vector<double> g = probe(probe_product);
      std::printf("round %d probe (%s, one thread per CPU, GFLOP/s):", r + 1, probe_product.name.c_str());
      for (double x : g) std::printf(" %.1f", x);
      std::printf("\n");
      if (g.size() >= 2) skew[size_t(r)] = *std::max_element(g.begin(), g.end()) / *std::min_element(g.begin(), g.end());
    }
    for (size_t pi = 0; pi < products.size(); ++pi) {
      Product& p = products[pi];
      std::vector<double> rat, t_old, t_new;
      for (int c = 0; c < calls; ++c) {
        double t[2];
        for (int j = 0; j < 2; ++j) {
          const int side = (c & 1) ? 1 - j : j;  // alternate which side goes first
          t[side] = p.call(side == 0 ? &ab_gemm_old : &ab_gemm_new);
        }
        t_old.push_back(t[0]), t_new.push_back(t[1]), rat.push_back(t[1] / t[0]);
      }
      ratio[size_t(r)][pi] = median(rat);
      std::printf("round %d %-22s new/old %.3f   old %.1f new %.1f GFLOP/s\n", r + 1, p.name.c_str(), median(rat),
                  p.gflop() / median(t_old), p.gflop() / median(t_new));
      std::fflush(stdout);
    }
  }

  // Summary: the rounds' medians per product, apart for rounds where the probe's CPUs differ by more
  // than 15% (one CPU slow).
  std::printf("\n| product | rounds | new/old time, median of rounds | range |\n|---|--:|--:|--:|\n");
  for (int slow = 0; slow < 2; ++slow)
    for (size_t pi = 0; pi < products.size(); ++pi) {
      std::vector<double> v;
      for (int r = 0; r < rounds; ++r)
        if ((skew[size_t(r)] > 1.15) == (slow == 1)) v.push_back(ratio[size_t(r)][pi]);
      if (v.empty()) continue;
      const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
      std::printf("| %s%s | %zu | %.3f | %.3f-%.3f |\n", products[pi].name.c_str(), slow ? " (one CPU slow)" : "",
                  v.size(), median(v), *lo, *hi);
    }
  return 0;
}
