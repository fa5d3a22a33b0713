// Shape and strides: a fixed-capacity inline array (no heap), because every op builds a few of them
// and a std::vector would cost an allocation each time.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "error.h"

namespace latent {

/// Most dimensions a tensor may have.
inline constexpr int kMaxDims = 8;

/// A list of up to kMaxDims int64 values: sizes, strides or dims. Converts from braces and vectors.
class Shape {
 public:
  Shape() = default;
  /// Copies the values; throws "[shape] at most 8 dimensions are supported; got N" for more than kMaxDims.
  /// @{
  Shape(std::initializer_list<int64_t> values) { assign(values.begin(), values.size()); }
  Shape(const std::vector<int64_t>& values) { assign(values.data(), values.size()); }
  Shape(std::span<const int64_t> values) { assign(values.data(), values.size()); }
  /// @}
  /// `count` copies of `value`.
  static Shape filled(int count, int64_t value) {
    Shape s;
    s.resize(count, value);
    return s;
  }

  /// Number of values (the rank, for sizes).
  int size() const { return size_; }
  /// True for a scalar's (rank-0) shape.
  bool empty() const { return size_ == 0; }
  /// Iterators over the values, for range-for and std algorithms.
  /// @{
  int64_t* begin() { return data_.data(); }
  int64_t* end() { return data_.data() + size_; }
  const int64_t* begin() const { return data_.data(); }
  const int64_t* end() const { return data_.data() + size_; }
  /// @}
  /// Pointer to the first value (kMaxDims slots of storage).
  /// @{
  const int64_t* data() const { return data_.data(); }
  int64_t* data() { return data_.data(); }
  /// @}
  /// The i-th value; unchecked (0 <= i < size()).
  /// @{
  int64_t& operator[](int i) { return data_[i]; }
  int64_t operator[](int i) const { return data_[i]; }
  /// @}
  /// The last value; the shape must not be empty.
  int64_t back() const { return data_[size_ - 1]; }
  /// Appends a value; throws past kMaxDims.
  void push_back(int64_t v) {
    check_capacity(size_ + 1);
    data_[size_++] = v;
  }
  /// Inserts `v` before position `pos` (0..size()); throws past kMaxDims.
  void insert(int pos, int64_t v) {
    check_capacity(size_ + 1);
    for (int i = size_; i > pos; --i) data_[i] = data_[i - 1];
    data_[pos] = v;
    ++size_;
  }
  /// Removes the value at `pos` (0..size()-1).
  void erase(int pos) {
    for (int i = pos; i + 1 < size_; ++i) data_[i] = data_[i + 1];
    --size_;
  }
  /// Sets the count to n, filling new slots with `fill`; throws for n > kMaxDims.
  void resize(int n, int64_t fill = 0) {
    check_capacity(n);
    for (int i = size_; i < n; ++i) data_[i] = fill;
    size_ = static_cast<uint8_t>(n);
  }
  /// Product of the values (1 for an empty shape).
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < size_; ++i) n *= data_[i];
    return n;
  }
  /// The values as a std::vector (allocates).
  std::vector<int64_t> vec() const { return {begin(), end()}; }
  /// Same count and the same values.
  friend bool operator==(const Shape& a, const Shape& b) {
    return a.size_ == b.size_ && std::equal(a.begin(), a.end(), b.begin());
  }

 private:
  void assign(const int64_t* p, size_t n) {
    check_capacity(static_cast<int>(n));
    std::copy(p, p + n, data_.begin());
    size_ = static_cast<uint8_t>(n);
  }
  static void check_capacity(int n) {
    if (n > kMaxDims) fail("shape", "at most {} dimensions are supported; got {}", kMaxDims, n);
  }
  std::array<int64_t, kMaxDims> data_{};
  uint8_t size_ = 0;
};

/// Two ints (height, width) for 2-d op attributes: `2` means {2, 2}, `{3, 1}` means height 3, width 1.
struct Pair {
  /// Height and width.
  /// @{
  int64_t h = 0, w = 0;
  /// @}
  /// Both height and width set to `both` (implicit, so `2` means {2, 2}).
  Pair(int64_t both) : h(both), w(both) {}  // NOLINT: implicit on purpose, as in PyTorch's IntArrayRef
  /// Height and width.
  Pair(int64_t height, int64_t width) : h(height), w(width) {}
  /// Same height and same width.
  friend bool operator==(const Pair& a, const Pair& b) { return a.h == b.h && a.w == b.w; }
};

/// Contiguous (row-major) strides for a shape.
inline Shape contiguous_strides(const Shape& shape) {
  Shape strides = Shape::filled(shape.size(), 1);
  int64_t s = 1;
  for (int i = shape.size() - 1; i >= 0; --i) {
    strides[i] = s;
    s *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

/// Whether (shape, strides) is row-major contiguous (size-1 dims may have any stride).
inline bool compute_contiguous(const Shape& shape, const Shape& strides) {
  int64_t expected = 1;
  for (int i = shape.size() - 1; i >= 0; --i) {
    if (shape[i] == 1) continue;
    if (strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

/// Wraps a possibly negative dim into [0, ndim); throws "[op] dim 3 is out of range for a 2-d tensor".
inline int wrap_dim(const char* op, int64_t dim, int ndim) {
  int64_t n = std::max(ndim, 1);
  if (dim < -n || dim >= n)
    fail(op, "dim {} is out of range for a {}-d tensor (valid: {} to {})", dim, ndim, -n, n - 1);
  return static_cast<int>(dim < 0 ? dim + n : dim);
}

/// NumPy broadcasting of two shapes; throws "[op] shapes [2, 3] and [4] cannot broadcast: 3 != 4 at dim 1".
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

}  // namespace latent

// fmt::format("{}", shape) prints "[2, 3]". (Left out of the API reference: Doxygen cannot place
// specializations of another library's templates.)
/// @cond
template <>
struct fmt::formatter<latent::Shape> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  auto format(const latent::Shape& s, fmt::format_context& ctx) const {
    return fmt::format_to(ctx.out(), "[{}]", fmt::join(s.begin(), s.end(), ", "));
  }
};
/// @endcond
