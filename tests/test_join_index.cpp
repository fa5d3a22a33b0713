// cat / stack / split / chunk and index_select / gather / scatter_add: values against naive
// loops over to_vector, gradcheck in float64, and error messages.
#include <memory>

#include "helpers.h"

using namespace latent;
using latent::testing::check_values;
using latent::testing::det_randn;

namespace {

using Vec = std::vector<double>;
using Inputs = std::vector<Tensor>;

Shape unravel(int64_t flat, const Shape& shape) {
  Shape idx = Shape::filled(shape.size(), 0);
  for (int d = shape.size() - 1; d >= 0; --d) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}

int64_t ravel(const Shape& idx, const Shape& shape) {
  int64_t flat = 0;
  for (int d = 0; d < shape.size(); ++d) flat = flat * shape[d] + idx[d];
  return flat;
}

/// Naive cat: for each output element, find the input whose range along dim holds it.
Vec ref_cat(const std::vector<Tensor>& ts, int dim) {
  Shape out_shape = ts[0].shape();
  out_shape[dim] = 0;
  for (const Tensor& t : ts) out_shape[dim] += t.shape()[dim];
  Vec out(static_cast<size_t>(out_shape.numel()));
  for (int64_t f = 0; f < out_shape.numel(); ++f) {
    Shape idx = unravel(f, out_shape);
    for (const Tensor& t : ts) {
      if (idx[dim] < t.shape()[dim]) {
        out[f] = t.to_vector<double>()[ravel(idx, t.shape())];
        break;
      }
      idx[dim] -= t.shape()[dim];
    }
  }
  return out;
}

/// Naive index_select with the index values given as a list.
Vec ref_index_select(const Tensor& x, int dim, const std::vector<int64_t>& iv) {
  Shape shape = x.shape();
  shape[dim] = static_cast<int64_t>(iv.size());
  const Vec xv = x.to_vector<double>();
  Vec out(static_cast<size_t>(shape.numel()));
  for (int64_t f = 0; f < shape.numel(); ++f) {
    Shape idx = unravel(f, shape);
    idx[dim] = iv[idx[dim]];
    out[f] = xv[ravel(idx, x.shape())];
  }
  return out;
}

/// Naive narrow: index_select of start, start + 1, ..., start + length - 1.
Vec ref_narrow(const Tensor& x, int dim, int64_t start, int64_t length) {
  std::vector<int64_t> iv(static_cast<size_t>(length));
  for (int64_t i = 0; i < length; ++i) iv[i] = start + i;
  return ref_index_select(x, dim, iv);
}

/// The pieces tile x along dim with `sizes`, each a view equal to the naive slice.
void check_pieces(const std::vector<Tensor>& pieces, const Tensor& x, int dim, const std::vector<int64_t>& sizes) {
  REQUIRE(pieces.size() == sizes.size());
  int64_t start = 0;
  for (size_t k = 0; k < pieces.size(); ++k) {
    Shape shape = x.shape();
    shape[dim] = sizes[k];
    CHECK(pieces[k].shape() == shape);
    CHECK(pieces[k].dtype() == x.dtype());
    CHECK(pieces[k].storage() == x.storage());  // a view, not a copy
    check_values(pieces[k], ref_narrow(x, dim, start, sizes[k]));
    start += sizes[k];
  }
}

Vec ref_gather(const Tensor& x, int dim, const Tensor& index) {
  const Vec xv = x.to_vector<double>();
  const auto iv = index.to_vector<int64_t>();
  Vec out(iv.size());
  for (int64_t f = 0; f < index.numel(); ++f) {
    Shape idx = unravel(f, index.shape());
    idx[dim] = iv[f];
    out[f] = xv[ravel(idx, x.shape())];
  }
  return out;
}

Vec ref_scatter_add(const Tensor& self, int dim, const Tensor& index, const Tensor& src) {
  Vec out = self.to_vector<double>();
  const Vec sv = src.to_vector<double>();
  const auto iv = index.to_vector<int64_t>();
  for (int64_t f = 0; f < index.numel(); ++f) {
    Shape idx = unravel(f, index.shape());
    const int64_t s = ravel(idx, src.shape());
    idx[dim] = iv[f];
    out[ravel(idx, self.shape())] += sv[s];
  }
  return out;
}

/// A tensor labelled as living on cuda over host memory: only validation may look at it.
Tensor fake_cuda(const Shape& shape) {
  static std::vector<double> buffer(64);
  auto storage = std::make_shared<Storage>(buffer.data(), buffer.size() * sizeof(double), kCUDA);
  TensorImpl impl;
  impl.storage = storage;
  impl.shape = shape;
  impl.strides = contiguous_strides(shape);
  impl.dtype = kFloat64;
  impl.contiguous = true;
  return Tensor(std::make_shared<TensorImpl>(std::move(impl)));
}

Tensor idx(const std::vector<int64_t>& v, const Shape& shape) { return from_vector(v, shape); }
Tensor idx(const std::vector<int64_t>& v) { return from_vector(v, {static_cast<int64_t>(v.size())}); }

/// sum(y * w) with fixed weights, so every element's gradient differs.
Tensor weighted_sum(const Tensor& y, uint64_t seed) { return sum(mul(y, det_randn(y.shape(), seed, false))); }

}  // namespace

TEST_CASE("cat matches a naive reference on every dim, with non-contiguous inputs and dtypes") {
  for (DType dt : {kFloat32, kFloat64, kInt64}) {
    Tensor a = arange(0, 6, 1, dt).reshape({2, 3});
    Tensor b = arange(10, 18, 1, dt).reshape({4, 2}).t();                 // (2, 4), transposed
    Tensor c = arange(20, 32, 1, dt).reshape({2, 6}).slice(1, 0, 6, 3);  // (2, 2), strided
    for (int64_t dim : {1, -1}) {
      Tensor y = cat({a, b, c}, dim);
      CHECK(y.dtype() == dt);
      CHECK(y.shape() == Shape{2, 9});
      check_values(y, ref_cat({a, b, c}, 1));
    }
    Tensor d = arange(40, 43, 1, dt).reshape({1, 3});
    Tensor y0 = cat({a, d, a.slice(0, 1, 2)}, 0);
    CHECK(y0.shape() == Shape{4, 3});
    check_values(y0, ref_cat({a, d, a.slice(0, 1, 2)}, 0));
  }
  // 3-d along the middle dim, with a zero-size piece.
  Tensor p = det_randn({2, 3, 2}, 1, false), q = det_randn({2, 0, 2}, 2, false), r = det_randn({2, 1, 2}, 3, false);
  Tensor y = cat({p, q, r}, -2);
  check_values(y, ref_cat({p, q, r}, 1));
  CHECK(y.shape() == Shape{2, 4, 2});
}

TEST_CASE("cat promotes dtypes, copies a single input and skips legacy 1-d empties") {
  Tensor i = from_vector(std::vector<int64_t>{1, 2}, {2});
  Tensor f = tensor({0.5f, 1.5f});
  Tensor d = from_vector(std::vector<double>{0.25}, {1});
  Tensor y = cat({i, f});
  CHECK(y.dtype() == kFloat32);
  check_values(y, {1, 2, 0.5, 1.5});
  Tensor z = cat({f, d, i});
  CHECK(z.dtype() == kFloat64);
  check_values(z, {0.5, 1.5, 0.25, 1, 2});
  Tensor x = arange(0, 6, 1, kFloat32).reshape({2, 3});
  Tensor copy = cat({x}, 1);
  CHECK(copy.storage() != x.storage());
  check_values(copy, {0, 1, 2, 3, 4, 5});
  Tensor e = empty({0}, kFloat32);
  Tensor w = cat({e, x, e}, 1);
  CHECK(w.shape() == Shape{2, 3});
  check_values(w, {0, 1, 2, 3, 4, 5});
  CHECK(cat({e, e}).shape() == Shape{0});
  check_values(cat({e, f, e}), {0.5, 1.5});
  CHECK(cat({zeros({0, 3}), zeros({0, 2}), e}, 1).shape() == Shape{0, 5});
}

TEST_CASE("cat gradients: gradcheck with some inputs frozen, dtype of mixed-precision gradients") {
  Tensor a = det_randn({2, 3}, 11), b = det_randn({2, 2}, 12, false), c = det_randn({2, 1}, 13);
  auto fn = [](const Inputs& in) { return weighted_sum(cat({in[0], in[1], in[2]}, 1), 5); };
  CHECK_GRADCHECK(fn, (Inputs{a, b, c}));
  Tensor y = cat({a, b, c}, -1);
  REQUIRE(y.grad_fn() != nullptr);
  CHECK(std::string(y.grad_fn()->name()) == "cat");
  Tensor w = arange(0, 12, 1, kFloat64).reshape({2, 6});
  sum(mul(y, w)).backward();
  check_values(a.grad(), {0, 1, 2, 6, 7, 8});
  CHECK_FALSE(b.grad().defined());
  check_values(c.grad(), {5, 11});
  Tensor f32 = tensor({1.f, 2.f}).requires_grad_();
  Tensor f64 = det_randn({3}, 14);
  Tensor e = empty({0}, kFloat64).requires_grad_();
  Tensor m = cat({f32, e, f64});
  CHECK(m.dtype() == kFloat64);
  sum(mul(m, arange(1, 6, 1, kFloat64))).backward();
  CHECK(f32.grad().dtype() == kFloat32);
  check_values(f32.grad(), {1, 2});
  check_values(f64.grad(), {3, 4, 5});
  CHECK(e.grad().shape() == Shape{0});
  NoGradGuard no_grad;
  CHECK(cat({a, c}, 1).grad_fn() == nullptr);
}

TEST_CASE("cat and stack errors name the op and the values") {
  Tensor a = zeros({2, 3}), b = zeros({2, 4}), c = zeros({2, 3, 4});
  CHECK_THROWS_WITH_SUBSTR(cat({}), "[cat] expected a non-empty list of tensors");
  CHECK_THROWS_WITH_SUBSTR(cat({a, c}), "[cat] tensors have different dims: [2, 3] and [2, 3, 4]");
  CHECK_THROWS_WITH_SUBSTR(cat({a, b}, 0), "[cat] sizes must match except in dim 0: tensor 0 has shape [2, 3] "
                                           "and tensor 1 has shape [2, 4] (3 != 4 at dim 1)");
  CHECK_THROWS_WITH_SUBSTR(cat({a, b}, 2), "[cat] dim 2 is out of range for a 2-d tensor");
  CHECK_THROWS_WITH_SUBSTR(cat({a, b}, -3), "[cat] dim -3 is out of range");
  CHECK_THROWS_WITH_SUBSTR(cat({a, scalar_tensor(1)}), "[cat] zero-dimensional tensor (at position 1)");
  CHECK_THROWS_WITH_SUBSTR(cat({a, Tensor()}), "[cat] tensor 1 is undefined");
  CHECK_THROWS_WITH_SUBSTR(cat({a.to(kFloat64), fake_cuda({2, 3})}), "[cat] expected all tensors on one device");
  CHECK_THROWS_WITH_SUBSTR(stack({}), "[stack] expected a non-empty list");
  CHECK_THROWS_WITH_SUBSTR(stack({a, b}), "[stack] expects tensors of equal shape; tensor 0 has shape [2, 3] "
                                          "and tensor 1 has shape [2, 4]");
  CHECK_THROWS_WITH_SUBSTR(stack({a, a}, 3), "[stack] dim 3 is out of range for a 3-d tensor");
  CHECK_THROWS_WITH_SUBSTR(stack({a.to(kFloat64), fake_cuda({2, 3})}), "[stack] expected all tensors on one device");
}

TEST_CASE("stack matches a naive reference on every dim and has a gradient") {
  Tensor a = arange(0, 6, 1, kFloat64).reshape({2, 3});
  Tensor b = arange(10, 16, 1, kFloat64).reshape({3, 2}).t();  // non-contiguous (2, 3)
  for (int64_t dim : {0, 1, 2, -1, -3}) {
    const int d = dim < 0 ? int(dim + 3) : int(dim);
    Shape one{2, 3}, expected{2, 3};
    one.insert(d, 1);  // reference: cat of copies reshaped with a size-1 dim at d
    expected.insert(d, 2);
    Tensor y = stack({a, b}, dim);
    CHECK(y.shape() == expected);
    check_values(y, ref_cat({from_vector(a.to_vector<double>(), one), from_vector(b.to_vector<double>(), one)}, d));
  }
  check_values(stack({tensor({1.f}), tensor({2.f})}, 1), {1, 2});
  Tensor p = det_randn({2, 3}, 21), q = det_randn({2, 3}, 22), r = det_randn({2, 3}, 23, false);
  auto fn = [](const Inputs& in) { return weighted_sum(stack({in[0], in[1], in[2]}, 1), 6); };
  CHECK_GRADCHECK(fn, (Inputs{p, q, r}));
}

TEST_CASE("split and chunk return narrow views with PyTorch's sizes") {
  for (DType dt : {kFloat32, kFloat64, kInt64}) {
    Tensor x = arange(0, 15, 1, dt).reshape({3, 5});
    Tensor xt = x.t();  // (5, 3), non-contiguous
    check_pieces(split(x, 2, -1), x, 1, {2, 2, 1});
    check_pieces(split(x, 5, 0), x, 0, {3});  // larger than the dim: one piece
    check_pieces(split(xt, 2, 0), xt, 0, {2, 2, 1});
    check_pieces(split(xt, std::vector<int64_t>{1, 0, 4}, 0), xt, 0, {1, 0, 4});
    check_pieces(split(x, std::vector<int64_t>{4, 1}, -1), x, 1, {4, 1});
    check_pieces(chunk(x, 3, 1), x, 1, {2, 2, 1});  // ceil(5 / 3) = 2
    check_pieces(chunk(xt, 2, -1), xt, 1, {2, 1});
  }
  Tensor six = arange(6), r = arange(3), e = zeros({0, 2}), f = zeros({2, 0});
  check_pieces(chunk(six, 4), six, 0, {2, 2, 2});  // ceil(6 / 4) = 2: 3 chunks, as in PyTorch
  check_pieces(chunk(r, 5), r, 0, {1, 1, 1});
  check_pieces(chunk(e, 3), e, 0, {0, 0, 0});  // an empty dim keeps the requested count
  check_pieces(split(f, 4, 1), f, 1, {0});
  CHECK(split(zeros({0}), std::vector<int64_t>{}, 0).empty());
}

TEST_CASE("split and chunk pieces used in a loss have the right gradient") {
  Tensor x = det_randn({4, 5}, 31);
  auto split_fn = [](const Inputs& in) {  // pieces 0 and 2 squared / scaled, piece 1 weighted
    auto p = split(in[0], 2, 1);
    return add(add(sum(mul(p[0], p[0])), mul(sum(p[2]), 3.0)), weighted_sum(p[1], 7));
  };
  CHECK_GRADCHECK(split_fn, Inputs{x});
  auto sizes_fn = [](const Inputs& in) {
    auto p = split(in[0], std::vector<int64_t>{3, 1}, 0);
    return add(weighted_sum(p[0], 8), sum(mul(p[1], p[1])));
  };
  CHECK_GRADCHECK(sizes_fn, Inputs{x});
  auto chunk_fn = [](const Inputs& in) {  // pieces interact: p[2] * p[1][:, :1]
    auto p = chunk(in[0], 3, -1);
    return sub(weighted_sum(p[0], 9), weighted_sum(mul(p[2], p[1].narrow(1, 0, 1)), 10));
  };
  CHECK_GRADCHECK(chunk_fn, Inputs{x});
  Tensor v = tensor({1.f, 2.f, 3.f, 4.f, 5.f}).requires_grad_();
  auto p = chunk(v, 2);  // sizes 3, 2
  add(sum(p[1]), mul(sum(p[0]), 2.0)).backward();
  check_values(v.grad(), {2, 2, 2, 1, 1});
}

TEST_CASE("split and chunk errors") {
  Tensor x = zeros({3, 5});
  CHECK_THROWS_WITH_SUBSTR(split(x, 0, 1), "[split] split_size must be positive; got 0");
  CHECK_THROWS_WITH_SUBSTR(split(x, -2, 1), "[split] split_size must be positive; got -2");
  CHECK_THROWS_WITH_SUBSTR(split(x, std::vector<int64_t>{2, 2}, 1), "[split] sizes [2, 2] sum to 4, but dim 1 has size 5");
  CHECK_THROWS_WITH_SUBSTR(split(x, std::vector<int64_t>{6, -1}, 1), "[split] sizes must be non-negative; got [6, -1]");
  CHECK_THROWS_WITH_SUBSTR(split(x, 2, 2), "[split] dim 2 is out of range for a 2-d tensor");
  CHECK_THROWS_WITH_SUBSTR(split(scalar_tensor(1), 1), "[split] cannot split a 0-d tensor");
  CHECK_THROWS_WITH_SUBSTR(chunk(x, 0), "[chunk] chunks must be positive; got 0");
  CHECK_THROWS_WITH_SUBSTR(chunk(x, 2, -3), "[chunk] dim -3 is out of range");
  CHECK_THROWS_WITH_SUBSTR(chunk(Tensor(), 2), "[chunk] argument 'input' is an undefined tensor");
}

TEST_CASE("index_select matches a naive reference, with repeats and non-contiguous operands") {
  for (DType dt : {kFloat32, kFloat64, kInt64}) {
    Tensor x = arange(0, 24, 1, dt).reshape({4, 6});
    Tensor xt = x.t();                                              // (6, 4)
    Tensor strided_index = idx({3, 9, 0, 9, 3, 9, 3, 9}).slice(0, 0, 8, 2);  // [3, 0, 3, 3]
    for (const Tensor& in : {x, xt}) {
      for (int64_t dim : {0, 1, -1}) {
        const int d = dim < 0 ? int(dim + 2) : int(dim);
        Tensor y = index_select(in, dim, strided_index);
        CHECK(y.shape()[d] == 4);
        CHECK(y.shape()[1 - d] == in.shape()[1 - d]);
        CHECK(y.dtype() == dt);
        check_values(y, ref_index_select(in, d, strided_index.to_vector<int64_t>()));
      }
    }
  }
  Tensor x = det_randn({3, 2}, 41, false);
  CHECK(index_select(x, 0, idx({})).shape() == Shape{0, 2});
  Tensor one = index_select(x, 1, scalar_tensor(1).to(kInt64));  // 0-d index: one entry
  CHECK(one.shape() == Shape{3, 1});
  check_values(one, ref_index_select(x, 1, {1}));
  Tensor s = index_select(scalar_tensor(2.5), 0, idx({0}));
  CHECK(s.dim() == 0);
  CHECK(s.item<double>() == 2.5);
}

TEST_CASE("index_select gradient adds over repeated indices") {
  Tensor x = det_randn({4, 3}, 42);
  Tensor index = idx({2, 0, 2, 2});
  auto fn = [index](const Inputs& in) { return weighted_sum(index_select(in[0], 0, index), 11); };
  CHECK_GRADCHECK(fn, Inputs{x});
  auto fn1 = [index](const Inputs& in) { return weighted_sum(index_select(in[0].t(), 1, index), 12); };
  CHECK_GRADCHECK(fn1, Inputs{x});
  Tensor v = tensor({1.f, 2.f, 3.f}).requires_grad_();
  sum(index_select(v, 0, idx({2, 2, 0, 2}))).backward();
  check_values(v.grad(), {1, 0, 3});
  Tensor saved = idx({0, 1});  // an in-place change to the saved index is caught at backward
  Tensor y = sum(index_select(det_randn({3}, 43), 0, saved));
  saved.fill_(2);
  CHECK_THROWS_WITH_SUBSTR(y.backward(), "a tensor saved by 'index_select' was modified by an in-place op");
}

TEST_CASE("gather matches a naive reference, with a smaller and non-contiguous index") {
  for (DType dt : {kFloat32, kFloat64, kInt64}) {
    Tensor x = arange(0, 20, 1, dt).reshape({4, 5});
    Tensor i1 = idx({4, 0, 4, 1, 2, 2, 3, 3, 0}, {3, 3});  // rows 0..2, dim 1
    Tensor i0 = idx({3, 0, 1, 1, 2, 3, 0, 0}, {2, 4});     // dim 0, 4 of 5 columns
    CHECK(gather(x, 1, i1).dtype() == dt);
    check_values(gather(x, 1, i1), ref_gather(x, 1, i1));
    check_values(gather(x, -1, i1), ref_gather(x, 1, i1));
    check_values(gather(x, 0, i0), ref_gather(x, 0, i0));
    Tensor xt = x.t();           // (5, 4), non-contiguous
    Tensor it = i1.t();          // (3, 3), non-contiguous index
    CHECK(gather(xt, 0, it).shape() == Shape{3, 3});
    check_values(gather(xt, 0, it), ref_gather(xt, 0, it));
  }
  Tensor x3 = det_randn({2, 3, 4}, 51, false);
  Tensor i3 = idx({2, 0, 1, 1, 0, 2, 2, 2}, {2, 2, 2});
  check_values(gather(x3, 1, i3), ref_gather(x3, 1, i3));
  CHECK(gather(x3, 2, idx({}, {2, 3, 0})).shape() == Shape{2, 3, 0});
  CHECK(gather(scalar_tensor(4.0), 0, scalar_tensor(0).to(kInt64)).item<double>() == 4.0);
}

TEST_CASE("gather gradient scatters back, adding over repeats") {
  Tensor x = det_randn({3, 4}, 52);
  Tensor index = idx({0, 0, 3, 1, 1, 1, 2, 0, 3}, {3, 3});
  auto fn = [index](const Inputs& in) { return weighted_sum(gather(in[0], 1, index), 13); };
  CHECK_GRADCHECK(fn, Inputs{x});
  Tensor i0 = idx({2, 0, 2, 0, 0, 0}, {2, 3});
  auto fn0 = [i0](const Inputs& in) { return weighted_sum(gather(in[0], 0, i0), 14); };
  CHECK_GRADCHECK(fn0, Inputs{x});
  Tensor v = tensor({{1, 2}, {3, 4}}).requires_grad_();
  sum(gather(v, 1, idx({1, 1, 0, 1}, {2, 2}))).backward();
  check_values(v.grad(), {0, 2, 1, 1});
}

TEST_CASE("scatter_add matches a naive reference and leaves self unchanged") {
  for (DType dt : {kFloat32, kFloat64, kInt64}) {
    Tensor self = arange(0, 15, 1, dt).reshape({3, 5});
    Tensor src = arange(100, 116, 1, dt).reshape({4, 4});                 // larger than index
    Tensor i1 = idx({4, 4, 0, 2, 2, 2}, {2, 3});
    Tensor y = scatter_add(self, 1, i1, src);
    CHECK(y.dtype() == dt);
    CHECK(y.shape() == Shape{3, 5});
    check_values(y, ref_scatter_add(self, 1, i1, src));
    check_values(scatter_add(self, -1, i1, src), ref_scatter_add(self, 1, i1, src));
    Tensor i0 = idx({2, 0, 2, 1, 2, 2, 0, 0}, {2, 4});
    check_values(scatter_add(self, 0, i0, src), ref_scatter_add(self, 0, i0, src));
    check_values(self, arange(0, 15, 1, kFloat64).to_vector<double>());  // unchanged: out of place
    Tensor self_t = arange(0, 15, 1, dt).reshape({5, 3}).t();            // non-contiguous (3, 5)
    Tensor src_t = src.t(), index_t = i0.t().slice(0, 0, 3);              // (4, 4), (3, 2)
    check_values(scatter_add(self_t, 1, index_t, src_t), ref_scatter_add(self_t, 1, index_t, src_t));
  }
  Tensor s = scatter_add(scalar_tensor(1.0), 0, scalar_tensor(0).to(kInt64), scalar_tensor(2.0));
  CHECK(s.item<double>() == 3.0);
}

TEST_CASE("scatter_add gradients with respect to self and src") {
  Tensor self = det_randn({3, 4}, 61), src = det_randn({3, 3}, 62);
  Tensor index = idx({3, 3, 0, 1, 1, 1}, {2, 3});  // src is larger: its last row gets no gradient
  auto both = [index](const Inputs& in) { return weighted_sum(scatter_add(in[0], 1, index, in[1]), 15); };
  CHECK_GRADCHECK(both, (Inputs{self, src}));
  Tensor frozen = det_randn({3, 4}, 63, false);
  CHECK_GRADCHECK(both, (Inputs{frozen, src}));
  Tensor i0 = idx({2, 0, 2, 1, 1, 1}, {2, 3});
  auto dim0 = [i0](const Inputs& in) {
    return weighted_sum(mul(scatter_add(in[0], 0, i0, in[1]), in[0]), 16);
  };
  CHECK_GRADCHECK(dim0, (Inputs{self, src}));
  Tensor a = zeros({2, 3}, kFloat64).requires_grad_(), b = ones({2, 2}, kFloat64).requires_grad_();
  Tensor y = scatter_add(a, 1, idx({2}, {1, 1}), b);
  sum(mul(y, arange(0, 6, 1, kFloat64).reshape({2, 3}))).backward();
  check_values(a.grad(), {0, 1, 2, 3, 4, 5});
  check_values(b.grad(), {2, 0, 0, 0});
}

TEST_CASE("index_select, gather and scatter_add errors name the op and the values") {
  Tensor x = zeros({3, 5});
  CHECK_THROWS_WITH_SUBSTR(index_select(x, 0, tensor({0.f})), "[index_select] index must be int64; got float32");
  CHECK_THROWS_WITH_SUBSTR(index_select(x, 0, idx({0, 1}, {1, 2})), "[index_select] index must be 0-d or 1-d; got shape [1, 2]");
  CHECK_THROWS_WITH_SUBSTR(index_select(x, 2, idx({0})), "[index_select] dim 2 is out of range for a 2-d tensor");
  CHECK_THROWS_WITH_SUBSTR(index_select(x, 1, idx({0, 5})), "[index_select] index 5 is out of range for dim 1 of size 5");
  CHECK_THROWS_WITH_SUBSTR(index_select(x, 0, idx({-1})), "[index_select] index -1 is out of range for dim 0 of size 3");
  CHECK_THROWS_WITH_SUBSTR(index_select(x, 0, idx({0, 1, 4}).slice(0, 0, 3, 2)),  // non-contiguous index
                           "[index_select] index 4 is out of range for dim 0 of size 3");
  CHECK_THROWS_WITH_SUBSTR(index_select(x, 0, Tensor()), "[index_select] argument 'index' is an undefined tensor");
  CHECK_THROWS_WITH_SUBSTR(index_select(fake_cuda({3}), 0, idx({0})), "[index_select] expected all tensors on one device");
  CHECK_THROWS_WITH_SUBSTR(gather(x, 1, idx({7}, {1, 1})), "[gather] index 7 is out of range for dim 1 of size 5");
  CHECK_THROWS_WITH_SUBSTR(gather(x, 1, zeros({1, 1})), "[gather] index must be int64; got float32");
  CHECK_THROWS_WITH_SUBSTR(gather(x, 1, idx({0})), "[gather] index has 1 dims but input has 2");
  CHECK_THROWS_WITH_SUBSTR(gather(x, 1, idx({0, 0, 0, 0}, {4, 1})),
                           "[gather] index shape [4, 1] does not fit input shape [3, 5] at dim 0 (4 > 3)");
  CHECK_THROWS_WITH_SUBSTR(gather(x, -3, idx({0}, {1, 1})), "[gather] dim -3 is out of range");
  CHECK_THROWS_WITH_SUBSTR(gather(fake_cuda({3, 5}), 1, idx({0}, {1, 1})), "[gather] expected all tensors on one device");
  Tensor src = ones({2, 2}), index = idx({0, 1}, {1, 2});
  CHECK_THROWS_WITH_SUBSTR(scatter_add(x, 1, index, ones({2, 2}, kFloat64)),
                           "[scatter_add] self and src must have the same dtype; got float32 and float64");
  CHECK_THROWS_WITH_SUBSTR(scatter_add(x, 1, index.to(kFloat32), src), "[scatter_add] index must be int64; got float32");
  CHECK_THROWS_WITH_SUBSTR(scatter_add(x, 1, idx({0}), src), "[scatter_add] index has 1 dims but self has 2");
  CHECK_THROWS_WITH_SUBSTR(scatter_add(x, 1, index, ones({2})), "[scatter_add] index has 2 dims but src has 1");
  CHECK_THROWS_WITH_SUBSTR(scatter_add(x, 1, idx({0, 1, 2}, {1, 3}), src),
                           "[scatter_add] index shape [1, 3] does not fit src shape [2, 2] at dim 1 (3 > 2)");
  CHECK_THROWS_WITH_SUBSTR(scatter_add(zeros({1, 5}), 1, idx({0, 1, 2, 3}, {2, 2}), ones({2, 2})),
                           "[scatter_add] index shape [2, 2] does not fit self shape [1, 5] at dim 0 (2 > 1)");
  CHECK_THROWS_WITH_SUBSTR(scatter_add(x, 1, idx({0, 9}, {1, 2}), src), "[scatter_add] index 9 is out of range for dim 1 of size 5");
  CHECK_THROWS_WITH_SUBSTR(scatter_add(x, 2, index, src), "[scatter_add] dim 2 is out of range for a 2-d tensor");
  CHECK_THROWS_WITH_SUBSTR(scatter_add(x, 1, index, fake_cuda({2, 2})), "[scatter_add] expected all tensors on one device");
}
