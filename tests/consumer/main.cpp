// Built by the install_consumer test against an installed tinycnn: proves the package is usable.
#include <tinycnn/tinycnn.hpp>

#include <cstdio>

int main() {
  tinycnn::Tensor<float> t({2, 3});
  t.fill(1.5f);
  double s = 0;
  for (int64_t i = 0; i < t.numel(); ++i) s += t[i];
  std::printf("tinycnn %s consumer: sum=%.1f\n", TINYCNN_VERSION_STRING, s);
  return s == 9.0 ? 0 : 1;
}
