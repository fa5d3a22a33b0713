// More importer ops, each composed from latent's differentiable ops: variadic Sum/Mean/Max/Min,
// small activations, ArgMax/ArgMin, Expand, Tile, Size, GlobalMaxPool, Layer/Instance/MeanVariance
// normalization, Range, DepthToSpace/SpaceToDepth.
#include <algorithm>
#include <cmath>

#include "../ops/activation.h"
#include "../ops/creation.h"
#include "../ops/elementwise.h"
#include "../ops/index.h"
#include "../ops/reduce.h"
#include "../ops/shape_ops.h"
#include "onnx_import.h"
#include "onnx_import_ops.h"

namespace latent::onnx::detail {

namespace {
using Inputs = std::vector<Tensor>;
}  // namespace

Kernel compile_variadic(const NodeView& n) {
  n.allow_attributes({"consumed_inputs"});
  n.expect_inputs(1, n.proto().input.size());
  n.expect_outputs(1);
  const std::string op = n.proto().op_type;
  return [op](const Inputs& in) -> Inputs {
    Tensor y = in[0];
    for (size_t i = 1; i < in.size(); ++i) {
      if (!in[i].defined()) continue;
      if (op == "Max")
        y = maximum(y, in[i]);
      else if (op == "Min")
        y = minimum(y, in[i]);
      else
        y = add(y, in[i]);
    }
    if (op == "Mean") y = div(y, double(in.size()));
    if (op != "Mean" && in.size() == 1) y = clone(y);
    return {y};
  };
}

Kernel compile_activation_more(const NodeView& n) {
  const std::string op = n.proto().op_type;
  n.expect_inputs(1, 1);
  n.expect_outputs(1);
  if (op == "Reciprocal" || op == "Softsign" || op == "HardSwish") {
    n.allow_attributes({"consumed_inputs"});
    return [op](const Inputs& in) -> Inputs {
      const Tensor& x = in[0];
      if (op == "Reciprocal") return {rdiv(1.0, x)};
      if (op == "Softsign") return {div(x, add(abs(x), 1.0))};
      return {mul(x, clamp(add(div(x, 6.0), 0.5), 0.0, 1.0))};  // HardSwish
    };
  }
  if (op == "HardSigmoid") {
    n.allow_attributes({"alpha", "beta", "consumed_inputs"});
    const double alpha = n.get_float("alpha", 0.2f), beta = n.get_float("beta", 0.5f);
    return [=](const Inputs& in) -> Inputs { return {clamp(add(mul(in[0], alpha), beta), 0.0, 1.0)}; };
  }
  if (op == "Celu") {
    n.allow_attributes({"alpha"});
    const double alpha = n.get_float("alpha", 1.0f);
    // max(0, x) + min(0, alpha * (exp(x / alpha) - 1))
    return [=](const Inputs& in) -> Inputs {
      Tensor neg_part = mul(sub(exp(div(in[0], alpha)), 1.0), alpha);
      return {sub(relu(in[0]), relu(neg(neg_part)))};
    };
  }
  // ThresholdedRelu: x where x > alpha, else 0.
  n.allow_attributes({"alpha"});
  const double alpha = n.get_float("alpha", 1.0f);
  return [=](const Inputs& in) -> Inputs { return {mul(in[0], gt(in[0], alpha))}; };
}

Kernel compile_arg_reduce(const NodeView& n) {
  if (n.version() >= 12)
    n.allow_attributes({"axis", "keepdims", "select_last_index"});
  else
    n.allow_attributes({"axis", "keepdims"});
  n.expect_inputs(1, 1);
  n.expect_outputs(1);
  const bool last = n.get_int("select_last_index", 0) != 0;
  const int64_t axis = n.get_int("axis", 0);
  const bool keepdims = n.get_int("keepdims", 1) != 0;
  const bool is_max = n.proto().op_type == "ArgMax";
  return [=](const Inputs& in) -> Inputs {
    const int64_t ax = normalize_axis(axis, in[0].dim());
    if (!last) return {is_max ? argmax(in[0], ax, keepdims) : argmin(in[0], ax, keepdims)};
    // The last extreme: the first one of the reversed axis, mapped back (size - 1 - i).
    const int64_t size = in[0].size(ax);
    std::vector<int64_t> reversed;
    for (int64_t i = size - 1; i >= 0; --i) reversed.push_back(i);
    Tensor flipped = index_select(in[0], ax, from_vector(reversed, Shape{size}));
    Tensor i = is_max ? argmax(flipped, ax, keepdims) : argmin(flipped, ax, keepdims);
    return {rsub(double(size - 1), i)};
  };
}

Kernel compile_expand(const NodeView& n) {
  n.allow_attributes({});
  n.expect_inputs(2, 2);
  n.expect_outputs(1);
  return [](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    const std::vector<int64_t> s = int_values(in[1], "Expand's shape");
    const int r = std::max<int>(x.dim(), int(s.size()));
    Shape out = Shape::filled(r, 1);
    for (int i = 0; i < r; ++i) {  // two-way broadcast, aligned at the last dim
      const int xi = i - (r - x.dim()), si = i - (r - int(s.size()));
      const int64_t a = xi >= 0 ? x.size(xi) : 1, b = si >= 0 ? s[size_t(si)] : 1;
      if (a != b && a != 1 && b != 1)
        fail("onnx import", "cannot expand shape {} to {}", x.shape(), Shape(s));
      out[i] = a == 1 ? b : a;
    }
    check_created(std::vector<int64_t>(out.begin(), out.end()), "Expand's output shape");
    return {expand(x, out)};
  };
}

Kernel compile_tile(const NodeView& n) {
  n.allow_attributes({});
  n.expect_inputs(2, 2);
  n.expect_outputs(1);
  return [](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    const std::vector<int64_t> reps = int_values(in[1], "Tile's repeats");
    if (int(reps.size()) != x.dim()) fail("onnx import", "Tile has {} repeats for an input of rank {}", reps.size(), x.dim());
    if (2 * x.dim() > kMaxDims) fail("onnx import", "Tile supports inputs of rank at most {}", kMaxDims / 2);
    // (d0, d1) -> (1, d0, 1, d1) -> expand (r0, d0, r1, d1) -> (r0 d0, r1 d1)
    Shape lifted, expanded, out;
    for (int d = 0; d < x.dim(); ++d) {
      if (reps[size_t(d)] < 0) fail("onnx import", "Tile repeats {} must not be negative", Shape(reps));
      lifted.push_back(1), lifted.push_back(x.size(d));
      expanded.push_back(reps[size_t(d)]), expanded.push_back(x.size(d));
      out.push_back(reps[size_t(d)] * x.size(d));
    }
    check_created(std::vector<int64_t>(expanded.begin(), expanded.end()), "Tile's repeats times the input shape");
    return {reshape(expand(reshape(x, lifted), expanded), out)};
  };
}

Kernel compile_size(const NodeView& n) {
  n.allow_attributes({});
  n.expect_inputs(1, 1);
  n.expect_outputs(1);
  return [](const Inputs& in) -> Inputs { return {from_vector(std::vector<int64_t>{in[0].numel()}, Shape{})}; };
}

Kernel compile_global_max_pool(const NodeView& n) {
  n.allow_attributes({});
  n.expect_inputs(1, 1);
  n.expect_outputs(1);
  return [](const Inputs& in) -> Inputs {
    Tensor y = in[0];
    if (y.dim() < 3) fail("onnx import", "GlobalMaxPool expects (N, C, ...) with spatial dims; got shape {}", y.shape());
    for (int d = y.dim() - 1; d >= 2; --d) y = std::get<0>(max(y, d, true));
    return {y};
  };
}

Kernel compile_layer_norm(const NodeView& n) {
  n.allow_attributes({"axis", "epsilon", "stash_type"});
  n.expect_inputs(2, 3);
  n.expect_outputs(3);
  if (n.get_int("stash_type", 1) != 1) n.error("stash_type {} is not supported (only 1, float)", n.get_int("stash_type", 1));
  const int64_t axis = n.get_int("axis", -1);
  const double eps = n.get_float("epsilon", 1e-5f);
  return [=](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    const int64_t ax = normalize_axis(axis, x.dim());
    Shape dims;
    for (int64_t d = ax; d < x.dim(); ++d) dims.push_back(d);
    Tensor m = mean(x, dims, true);
    Tensor centered = sub(x, m);
    Tensor inv_std = rdiv(1.0, sqrt(add(mean(square(centered), dims, true), eps)));
    Tensor y = mul(mul(centered, inv_std), in[1]);
    if (in.size() > 2 && in[2].defined()) y = add(y, in[2]);
    return {y, m, inv_std};
  };
}

Kernel compile_instance_norm(const NodeView& n) {
  n.allow_attributes({"epsilon", "consumed_inputs"});
  n.expect_inputs(3, 3);
  n.expect_outputs(1);
  const double eps = n.get_float("epsilon", 1e-5f);
  return [=](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    if (x.dim() < 3) fail("onnx import", "InstanceNormalization expects (N, C, ...) with spatial dims; got shape {}", x.shape());
    Shape dims, channel = Shape::filled(x.dim() - 1, 1);
    for (int d = 2; d < x.dim(); ++d) dims.push_back(d);
    channel[0] = x.size(1);
    Tensor centered = sub(x, mean(x, dims, true));
    Tensor normalized = div(centered, sqrt(add(mean(square(centered), dims, true), eps)));
    return {add(mul(normalized, reshape(in[1], channel)), reshape(in[2], channel))};
  };
}

Kernel compile_mvn(const NodeView& n) {
  n.allow_attributes({"axes"});
  n.expect_inputs(1, 1);
  n.expect_outputs(1);
  const std::vector<int64_t> axes = n.get_ints("axes", {0, 2, 3});
  return [=](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    const Shape dims = reduce_axes(axes, x.dim());
    // ONNX's function body: (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9)
    Tensor m = mean(x, dims, true);
    Tensor stddev = sqrt(sub(mean(square(x), dims, true), square(m)));
    return {div(sub(x, m), add(stddev, 1e-9))};
  };
}

Kernel compile_range(const NodeView& n) {
  n.allow_attributes({});
  n.expect_inputs(3, 3);
  n.expect_outputs(1);
  return [](const Inputs& in) -> Inputs {
    for (const Tensor& t : in) {
      if (t.numel() != 1) fail("onnx import", "Range takes scalars; got shape {}", t.shape());
    }
    const DType dtype = in[0].dtype();
    if (dtype == kInt64) {
      const int64_t start = in[0].item<int64_t>(), limit = in[1].item<int64_t>(), delta = in[2].item<int64_t>();
      if (delta == 0) fail("onnx import", "Range delta must not be 0");
      // The count in 128 bits: limit - start and the steps can overflow int64.
      const __int128 span = static_cast<__int128>(limit) - start;
      const __int128 steps = (span == 0 || (span > 0) != (delta > 0)) ? 0 : (span + delta - (delta > 0 ? 1 : -1)) / delta;
      check_created({static_cast<int64_t>(std::min<__int128>(steps, INT64_MAX))}, "Range's element count");
      std::vector<int64_t> v;
      v.reserve(static_cast<size_t>(steps));
      for (__int128 i = 0; i < steps; ++i) v.push_back(static_cast<int64_t>(start + i * delta));
      return {from_vector(v, Shape{int64_t(v.size())})};
    }
    const double start = in[0].item<double>(), limit = in[1].item<double>(), delta = in[2].item<double>();
    if (delta == 0 || !std::isfinite(delta)) fail("onnx import", "Range delta must be finite and non-zero; got {}", delta);
    const double count = std::max(std::ceil((limit - start) / delta), 0.0);
    if (!(count <= static_cast<double>(latent::onnx::max_created_elements())))
      fail("onnx import", "Range's element count [{:g}] is more than the limit of {}", count, latent::onnx::max_created_elements());
    std::vector<double> v;
    for (int64_t i = 0; i < int64_t(count); ++i) v.push_back(start + double(i) * delta);
    return {to_dtype(from_vector(v, Shape{int64_t(v.size())}), dtype)};
  };
}

Kernel compile_depth_space(const NodeView& n) {
  const bool to_space = n.proto().op_type == "DepthToSpace";
  if (to_space && n.version() >= 11)
    n.allow_attributes({"blocksize", "mode"});
  else
    n.allow_attributes({"blocksize"});
  n.expect_inputs(1, 1);
  n.expect_outputs(1);
  if (!n.has("blocksize")) n.error("attribute 'blocksize' is required");
  const int64_t b = n.get_int("blocksize", 1);
  if (b <= 0) n.error("blocksize must be positive; got {}", b);
  const std::string mode = n.get_string("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") n.error("mode '{}' is not supported (supported: DCR, CRD)", mode);
  return [=](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    if (x.dim() != 4) fail("onnx import", "expects a 4-d input (N, C, H, W); got shape {}", x.shape());
    const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
    if (to_space) {
      if (C % (b * b) != 0) fail("onnx import", "channels {} are not divisible by blocksize^2 = {}", C, b * b);
      const int64_t c = C / (b * b);
      Tensor y = mode == "DCR" ? permute(reshape(x, {N, b, b, c, H, W}), {0, 3, 4, 1, 5, 2})
                               : permute(reshape(x, {N, c, b, b, H, W}), {0, 1, 4, 2, 5, 3});
      return {reshape(y, {N, c, H * b, W * b})};
    }
    if (H % b != 0 || W % b != 0) fail("onnx import", "height {} and width {} must be divisible by blocksize {}", H, W, b);
    Tensor y = permute(reshape(x, {N, C, H / b, b, W / b, b}), {0, 3, 5, 1, 2, 4});
    return {reshape(y, {N, C * b * b, H / b, W / b})};
  };
}

}  // namespace latent::onnx::detail
