#pragma once
// The constant matrices of Winograd's F(m x m, 3x3) for m = 2, 3, 4 and the compile-time loops and dot
// products over them that winograd_transforms.hpp builds the transforms from.
#include <cstdint>
#include <type_traits>
#include <utility>

namespace tinycnn::kernels::cpu::detail {

// A^T [m, a], G [a, 3], B^T [a, a] of F(m, 3): y = A^T ((G g) . (B^T d)) in one dimension.
template <int m>
struct WinogradMatrices;
template <>
struct WinogradMatrices<2> {  // points 0, 1, -1, infinity (Lavin & Gray's signs)
  static constexpr double AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
  static constexpr double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  static constexpr double BT[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
};
template <>
struct WinogradMatrices<3> {  // points 0, 1, -1, 2, infinity
  static constexpr double AT[3][5] = {{1, 1, 1, 1, 0}, {0, 1, -1, 2, 0}, {0, 1, 1, 4, 1}};
  static constexpr double G[5][3] = {{1.0 / 2, 0, 0},
                                     {-1.0 / 2, -1.0 / 2, -1.0 / 2},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                     {1.0 / 6, 1.0 / 3, 2.0 / 3},
                                     {0, 0, 1}};
  static constexpr double BT[5][5] = {
      {2, -1, -2, 1, 0}, {0, -2, -1, 1, 0}, {0, 2, -3, 1, 0}, {0, -1, 0, 1, 0}, {0, 2, -1, -2, 1}};
};
template <>
struct WinogradMatrices<4> {  // points 0, 1, -1, 2, -2, infinity (Lavin & Gray's F(4x4, 3x3))
  static constexpr double AT[4][6] = {
      {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
  static constexpr double G[6][3] = {{1.0 / 4, 0, 0},
                                     {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                     {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                     {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                     {0, 0, 1}};
  static constexpr double BT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                      {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
};

// Calls f(std::integral_constant<int, m>) for the runtime tile size m (2, 3 or 4).
template <class F>
decltype(auto) winograd_dispatch(int64_t m, F&& f) {
  switch (m) {
    case 3:
      return f(std::integral_constant<int, 3>{});
    case 4:
      return f(std::integral_constant<int, 4>{});
    default:
      return f(std::integral_constant<int, 2>{});
  }
}

// Compile-time loops and dot products over the constant matrices, so that the transforms' inner
// loops over tiles hold only straight-line code and vectorise: winograd_for<n>(f) calls
// f(std::integral_constant<int, i>) for i = 0 .. n-1; winograd_dot<T, Row, n>(x) = sum over k < n of
// Row::c(k) * x(k) with the zero terms dropped and the unit ones without a multiply (x + -0.0 == x
// exactly, so the compiler removes the padding terms of the fold).
template <class F, int... i>
inline void winograd_for_impl(F&& f, std::integer_sequence<int, i...>) {
  (f(std::integral_constant<int, i>{}), ...);
}
template <int n, class F>
inline void winograd_for(F&& f) {
  winograd_for_impl(f, std::make_integer_sequence<int, n>{});
}
template <class T, class Row, int k, class X>
inline T winograd_term(const X& x) {
  constexpr double c = Row::c(k);
  if constexpr (c == 0)
    return T(-0.0);
  else if constexpr (c == 1)
    return x(k);
  else if constexpr (c == -1)
    return -x(k);
  else
    return T(c) * x(k);
}
template <class T, class Row, class X, int... k>
inline T winograd_dot_impl(const X& x, std::integer_sequence<int, k...>) {
  return (T(-0.0) + ... + winograd_term<T, Row, k>(x));
}
template <class T, class Row, int n, class X>
inline T winograd_dot(const X& x) {
  return winograd_dot_impl<T, Row>(x, std::make_integer_sequence<int, n>{});
}
// A row (column = false) or column of one of the matrices (0: B^T, 1: A^T, 2: G) as a type for
// winograd_dot, and the four winograd_dot reads: rows of B^T, A^T and G, columns of A^T and G.
template <int m, int which, int idx, bool column>
struct WinogradLine {
  // if constexpr, not ?:, so the other orientation's constant index is never formed (clang warned
  // of it as out of bounds).
  static constexpr double c(int k) {
    using W = WinogradMatrices<m>;
    if constexpr (column) {
      if constexpr (which == 0) return W::BT[k][idx];
      else if constexpr (which == 1) return W::AT[k][idx];
      else return W::G[k][idx];
    } else {
      if constexpr (which == 0) return W::BT[idx][k];
      else if constexpr (which == 1) return W::AT[idx][k];
      else return W::G[idx][k];
    }
  }
};
template <int m, int i>
using WinogradBTRow = WinogradLine<m, 0, i, false>;
template <int m, int i>
using WinogradATRow = WinogradLine<m, 1, i, false>;
template <int m, int j>
using WinogradATCol = WinogradLine<m, 1, j, true>;
template <int m, int i>
using WinogradGRow = WinogradLine<m, 2, i, false>;
template <int m, int j>
using WinogradGCol = WinogradLine<m, 2, j, true>;

}  // namespace tinycnn::kernels::cpu::detail
