#pragma once
// Exception types. Every error thrown by tinycnn derives from tinycnn::Error, so a caller can catch
// one type; the subclasses let tests and applications tell the failure kinds apart.
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace tinycnn {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// A tensor shape does not fit the operation (names the op and the shapes).
class ShapeError : public Error { using Error::Error; };
// A bad argument or value (labels out of range, negative learning rate, non-finite loss, ...).
class ValueError : public Error { using Error::Error; };
// A file could not be decoded as an image (names the file and the reason).
class ImageError : public Error { using Error::Error; };
// A model/checkpoint file is malformed or hostile (names what is wrong).
class FormatError : public Error { using Error::Error; };
// An I/O failure (open, write, rename).
class IOError : public Error { using Error::Error; };

using Shape = std::vector<int64_t>;

inline std::string shape_str(const Shape& s) {
  std::ostringstream o;
  o << '[';
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << ']';
  return o.str();
}

// Throws ShapeError "op: <what> (got [a, b] and [c, d])".
[[noreturn]] inline void throw_shape(const std::string& op, const std::string& what, const Shape& a,
                                     const Shape& b) {
  throw ShapeError(op + ": " + what + " (got " + shape_str(a) + " and " + shape_str(b) + ")");
}
[[noreturn]] inline void throw_shape(const std::string& op, const std::string& what, const Shape& a) {
  throw ShapeError(op + ": " + what + " (got " + shape_str(a) + ")");
}

}  // namespace tinycnn

namespace tinycnn {
// A loss came out non-finite or negative: training on it would corrupt the weights.
class LossError : public ValueError { using ValueError::ValueError; };
}  // namespace tinycnn
