// The importer's NodeView and its elementwise, math, shape and reduction ops. Convolutions,
// pooling, normalization, padding and resampling are in onnx_import_nn.cpp; the table of ops that
// names these compilers is in onnx_op_tables.cpp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "../ops/activation.h"
#include "../ops/creation.h"
#include "../ops/elementwise.h"
#include "../ops/index.h"
#include "../ops/join.h"
#include "../ops/linalg.h"
#include "../ops/nn_ops.h"
#include "../ops/reduce.h"
#include "../ops/shape_ops.h"
#include "onnx_import.h"
#include "onnx_import_ops.h"
#include "onnx_tensor.h"

namespace latent::onnx::detail {

// ---------------------------------------------------------------------------------------------
// NodeView

std::string NodeView::label() const {
  return fmt::format("node '{}' ({}, opset {})", name_, op_key(node_.domain, node_.op_type), opset_);
}

const AttributeProto* NodeView::attr(const std::string& name) const {
  for (const AttributeProto& a : node_.attribute) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

int64_t NodeView::get_int(const std::string& name, int64_t fallback) const {
  const AttributeProto* a = attr(name);
  if (!a) return fallback;
  if (!a->i) error("attribute '{}' must be an INT", name);
  return *a->i;
}

float NodeView::get_float(const std::string& name, float fallback) const {
  const AttributeProto* a = attr(name);
  if (!a) return fallback;
  if (!a->f) error("attribute '{}' must be a FLOAT", name);
  return *a->f;
}

std::string NodeView::get_string(const std::string& name, const std::string& fallback) const {
  const AttributeProto* a = attr(name);
  if (!a) return fallback;
  if (!a->s) error("attribute '{}' must be a STRING", name);
  return *a->s;
}

std::vector<int64_t> NodeView::get_ints(const std::string& name, std::vector<int64_t> fallback) const {
  const AttributeProto* a = attr(name);
  if (!a) return fallback;
  if (a->type != static_cast<int32_t>(AttributeType::Ints) && a->type != 0) error("attribute '{}' must be INTS", name);
  return a->ints;
}

std::vector<float> NodeView::get_floats(const std::string& name) const {
  const AttributeProto* a = attr(name);
  if (!a) return {};
  if (a->type != static_cast<int32_t>(AttributeType::Floats) && a->type != 0) error("attribute '{}' must be FLOATS", name);
  return a->floats;
}

void NodeView::allow_attributes(std::initializer_list<const char*> names) const {
  for (const AttributeProto& a : node_.attribute) {
    bool known = false;
    for (const char* n : names) known = known || a.name == n;
    if (!known) {
      std::string list;
      for (const char* n : names) list += fmt::format("{}{}", list.empty() ? "" : ", ", n);
      error("attribute '{}' is not supported (supported: {})", a.name, list.empty() ? "none" : list);
    }
  }
}

void NodeView::expect_inputs(size_t min, size_t max) const {
  for (size_t i = 0; i < min; ++i) {
    if (!has_input(i)) error("input {} is required", i);
  }
  for (size_t i = max; i < node_.input.size(); ++i) {
    if (has_input(i)) error("has {} inputs; at most {} are supported", node_.input.size(), max);
  }
}

void NodeView::expect_outputs(size_t max) const {
  for (size_t i = max; i < node_.output.size(); ++i) {
    if (has_output(i)) error("output {} ('{}') is not supported (only the first {} output{})", i, node_.output[i], max,
                             max == 1 ? "" : "s");
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

std::vector<int64_t> int_values(const Tensor& t, const char* what) {
  if (!t.defined()) fail("onnx import", "{} is missing", what);
  if (t.dtype() != kInt64) fail("onnx import", "{} must be int64; got {}", what, dtype_name(t.dtype()));
  if (t.dim() > 1) fail("onnx import", "{} must be 0-d or 1-d; got shape {}", what, t.shape());
  return t.to_vector<int64_t>();
}

std::vector<double> double_values(const Tensor& t) { return t.to_vector<double>(); }

void check_created(const std::vector<int64_t>& shape, const char* what) {
  double count = 1;  // a double cannot overflow here, and is exact up to 2^53
  for (int64_t d : shape) count *= static_cast<double>(std::max<int64_t>(d, 0));
  if (count > static_cast<double>(max_created_elements()))
    fail("onnx import", "{} [{}] asks for {:g} elements, more than the limit of {}", what, fmt::join(shape, ", "), count,
         max_created_elements());
}

int64_t normalize_axis(int64_t axis, int64_t rank, const char* what) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1)) {
    if (!(rank == 0 && axis == 0))
      fail("onnx import", "{} {} is out of range for a tensor of rank {}", what, axis, rank);
  }
  return axis < 0 ? axis + rank : axis;
}

Shape all_dims(int rank) {
  Shape s;
  for (int i = 0; i < rank; ++i) s.push_back(i);
  return s;
}

Shape reduce_axes(const std::vector<int64_t>& axes, int rank) {
  Shape out;
  for (int64_t a : axes) out.push_back(normalize_axis(a, rank, "reduction axis"));
  std::sort(out.begin(), out.end());
  for (int i = 1; i < out.size(); ++i) {
    if (out[i] == out[i - 1]) fail("onnx import", "reduction axis {} is repeated", out[i]);
  }
  return out;
}

namespace {

using Inputs = std::vector<Tensor>;

/// Legacy broadcasting of opsets 1-6 (`broadcast` and `axis` attributes): b is aligned with a
/// starting at `axis`, so trailing size-1 dims are added to b.
Tensor legacy_align(const Tensor& a, const Tensor& b, bool broadcast, std::optional<int64_t> axis) {
  if (!broadcast) {
    if (!(a.shape() == b.shape()))
      fail("onnx import", "shapes {} and {} differ and broadcast is 0", a.shape(), b.shape());
    return b;
  }
  if (!axis) return b;
  int64_t ax = *axis < 0 ? *axis + a.dim() : *axis;
  int64_t trailing = a.dim() - ax - b.dim();
  if (ax < 0 || trailing < 0) fail("onnx import", "cannot broadcast shape {} onto {} at axis {}", b.shape(), a.shape(), *axis);
  Shape s = b.shape();
  for (int64_t i = 0; i < trailing; ++i) s.push_back(1);
  return reshape(b, s);
}

/// ONNX integer division truncates toward zero; latent's int64 division is true division.
Tensor int_div(const Tensor& a, const Tensor& b) {
  for (int64_t v : b.to_vector<int64_t>()) {
    if (v == 0) fail("onnx import", "integer division by zero");
  }
  Tensor q = div(to_dtype(a, kFloat64), to_dtype(b, kFloat64));
  return to_dtype(q, kInt64);  // the cast truncates toward zero
}

// ---- binary elementwise ----

}  // namespace

Kernel compile_binary(const NodeView& n) {
  const std::string& op = n.proto().op_type;
  const bool legacy = n.version() < 7;
  if (legacy)
    n.allow_attributes({"broadcast", "axis", "consumed_inputs"});
  else
    n.allow_attributes({});
  n.expect_inputs(2, 2);
  n.expect_outputs(1);
  const bool broadcast = n.get_int("broadcast", 0) != 0;
  std::optional<int64_t> axis;
  if (n.has("axis")) axis = n.get_int("axis", 0);
  enum Kind { Add, Sub, Mul, Div, Pow } kind = op == "Add" ? Add : op == "Sub" ? Sub : op == "Mul" ? Mul : op == "Div" ? Div : Pow;
  return [=](const Inputs& in) -> Inputs {
    const Tensor& a = in[0];
    Tensor b = legacy ? legacy_align(a, in[1], broadcast, axis) : in[1];
    switch (kind) {
      case Add: return {add(a, b)};
      case Sub: return {sub(a, b)};
      case Mul: return {mul(a, b)};
      case Div: return {a.is_floating_point() || b.is_floating_point() ? div(a, b) : int_div(a, b)};
      case Pow: {
        // The result has the base's dtype (the exponent may be of another type).
        if (!a.is_floating_point()) return {to_dtype(pow(to_dtype(a, kFloat64), to_dtype(b, kFloat64)), kInt64)};
        Tensor e = b.is_floating_point() ? b : to_dtype(b, a.dtype());
        Tensor y = pow(a, e);
        return {y.dtype() == a.dtype() ? y : to_dtype(y, a.dtype())};
      }
    }
    return {};
  };
}

// ---- unary elementwise ----

Kernel compile_unary(const NodeView& n) {
  const std::string& op = n.proto().op_type;
  n.expect_inputs(1, 1);
  n.expect_outputs(1);
  if (op == "LeakyRelu") {
    n.allow_attributes({"alpha", "consumed_inputs"});
    const double alpha = n.get_float("alpha", 0.01f);
    return [=](const Inputs& in) -> Inputs { return {leaky_relu(in[0], alpha)}; };
  }
  if (op == "Elu") {
    n.allow_attributes({"alpha", "consumed_inputs"});
    const double alpha = n.get_float("alpha", 1.0f);
    return [=](const Inputs& in) -> Inputs { return {elu(in[0], alpha)}; };
  }
  if (op == "Selu") {
    n.allow_attributes({"alpha", "gamma", "consumed_inputs"});
    const double alpha = n.get_float("alpha", 1.67326319217681884765625f);
    const double gamma = n.get_float("gamma", 1.05070102214813232421875f);
    return [=](const Inputs& in) -> Inputs { return {mul(elu(in[0], alpha), gamma)}; };
  }
  n.allow_attributes({"consumed_inputs"});
  UnaryFn fn = unary_function(op);  // the OpEntry's unary field (onnx_op_tables.cpp)
  if (!fn) n.error("no unary function is listed for this op");
  return [fn](const Inputs& in) -> Inputs { return {fn(in[0])}; };
}

Kernel compile_prelu(const NodeView& n) {
  n.allow_attributes({"consumed_inputs"});
  n.expect_inputs(2, 2);
  n.expect_outputs(1);
  // Before opset 7 the slope broadcast along the channel dim; from 7 on it broadcasts as NumPy.
  const bool legacy = n.version() < 7;
  return [=](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    Tensor slope = in[1];
    if (legacy && slope.numel() > 1 && slope.dim() == 1 && x.dim() >= 2) {
      Shape s = Shape::filled(x.dim() - 1, 1);
      s[0] = slope.numel();
      slope = reshape(slope, s);
    }
    return {sub(relu(x), mul(slope, relu(neg(x))))};
  };
}

Kernel compile_clip(const NodeView& n) {
  n.expect_outputs(1);
  const bool attrs = n.version() < 11;
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  if (attrs) {
    n.allow_attributes({"min", "max", "consumed_inputs"});
    n.expect_inputs(1, 1);
    if (n.has("min")) lo = n.get_float("min", 0);
    if (n.has("max")) hi = n.get_float("max", 0);
  } else {
    n.allow_attributes({});
    n.expect_inputs(1, 3);
  }
  return [=](const Inputs& in) -> Inputs {
    double mn = lo, mx = hi;
    if (!attrs) {
      for (int k = 1; k <= 2; ++k) {
        if (in.size() > size_t(k) && in[k].defined()) {
          if (in[k].numel() != 1) fail("onnx import", "Clip's {} must hold one value; got shape {}", k == 1 ? "min" : "max", in[k].shape());
          (k == 1 ? mn : mx) = in[k].item<double>();
        }
      }
    }
    const Tensor& x = in[0];
    if (!x.is_floating_point()) {  // keep infinite bounds out of the int64 conversion
      mn = std::max(mn, -9.0e18);
      mx = std::min(mx, 9.0e18);
    }
    if (mn > mx) return {full(x.shape(), mx, x.dtype())};  // ONNX: every value becomes max
    return {clamp(x, mn, mx)};
  };
}

// ---- linear algebra ----

Kernel compile_gemm(const NodeView& n) {
  if (n.version() < 7)
    n.allow_attributes({"alpha", "beta", "transA", "transB", "broadcast"});
  else
    n.allow_attributes({"alpha", "beta", "transA", "transB"});
  n.expect_inputs(n.version() < 11 ? 3 : 2, 3);
  n.expect_outputs(1);
  const double alpha = n.get_float("alpha", 1.0f), beta = n.get_float("beta", 1.0f);
  const bool trans_a = n.get_int("transA", 0) != 0, trans_b = n.get_int("transB", 0) != 0;
  return [=](const Inputs& in) -> Inputs {
    const Tensor& a = in[0];
    const Tensor& b = in[1];
    const Tensor c = in.size() > 2 ? in[2] : Tensor();
    if (a.dim() != 2 || b.dim() != 2)
      fail("onnx import", "Gemm expects 2-d A and B; got shapes {} and {}", a.shape(), b.shape());
    // A Linear layer (x W^T + b): one fused GEMM with the bias.
    if (!trans_a && trans_b && alpha == 1.0 && beta == 1.0 &&
        (!c.defined() || (c.dim() == 1 && c.size(0) == b.size(0) && c.dtype() == a.dtype())))
      return {linear(a, b, c)};
    Tensor y = mm(trans_a ? t(a) : a, trans_b ? t(b) : b);
    if (alpha != 1.0) y = mul(y, alpha);
    if (c.defined() && beta != 0.0) y = add(y, beta == 1.0 ? c : mul(c, beta));
    return {y};
  };
}

Kernel compile_matmul(const NodeView& n) {
  n.allow_attributes({});
  n.expect_inputs(2, 2);
  n.expect_outputs(1);
  return [](const Inputs& in) -> Inputs { return {matmul(in[0], in[1])}; };
}

// ---- softmax family ----

Kernel compile_softmax(const NodeView& n) {
  n.allow_attributes({"axis"});
  n.expect_inputs(1, 1);
  n.expect_outputs(1);
  const bool log_softmax_op = n.proto().op_type == "LogSoftmax";
  const bool coerce_2d = n.version() < 13;  // before 13: flatten to 2-d at axis, normalize rows
  const int64_t axis = n.get_int("axis", coerce_2d ? 1 : -1);
  return [=](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    const int64_t ax = normalize_axis(axis, x.dim());
    auto fn = [&](const Tensor& v, int64_t d) { return log_softmax_op ? log_softmax(v, d) : softmax(v, d); };
    if (!coerce_2d) return {fn(x, ax)};
    int64_t rows = 1;
    for (int64_t d = 0; d < ax; ++d) rows *= x.size(d);
    const int64_t cols = rows == 0 ? 0 : x.numel() / std::max<int64_t>(rows, 1);
    return {reshape(fn(reshape(x, {rows, cols}), 1), x.shape())};
  };
}

// ---- reductions ----

Kernel compile_reduce(const NodeView& n) {
  const std::string& op = n.proto().op_type;
  const bool axes_input = op == "ReduceSum" && n.version() >= 13;
  if (axes_input) {
    n.allow_attributes({"keepdims", "noop_with_empty_axes"});
    n.expect_inputs(1, 2);
  } else {
    n.allow_attributes({"axes", "keepdims"});
    n.expect_inputs(1, 1);
  }
  n.expect_outputs(1);
  const bool keepdims = n.get_int("keepdims", 1) != 0;
  const bool noop = n.get_int("noop_with_empty_axes", 0) != 0;
  const std::vector<int64_t> attr_axes = n.get_ints("axes");
  enum Kind { Sum, Mean, Max, Min, SumSquare, L1, L2, LogSum, LogSumExp };
  static const std::map<std::string, Kind> kinds = {
      {"ReduceSum", Sum}, {"ReduceMean", Mean}, {"ReduceMax", Max}, {"ReduceMin", Min},
      {"ReduceSumSquare", SumSquare}, {"ReduceL1", L1}, {"ReduceL2", L2}, {"ReduceLogSum", LogSum},
      {"ReduceLogSumExp", LogSumExp}};
  const Kind kind = kinds.at(op);
  return [=](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    std::vector<int64_t> axes = attr_axes;
    if (axes_input && in.size() > 1 && in[1].defined()) axes = int_values(in[1], "ReduceSum's axes");
    if (axes.empty() && noop) return {x};
    Shape dims = axes.empty() ? all_dims(x.dim()) : reduce_axes(axes, x.dim());
    if (dims.empty()) return {x};
    switch (kind) {
      case Sum: return {sum(x, dims, keepdims)};
      case Mean: return {mean(x, dims, keepdims)};
      case Max:
      case Min: {
        if (dims.size() == x.dim()) {
          Tensor m = kind == Max ? max(x) : min(x);
          return {keepdims ? reshape(m, Shape::filled(x.dim(), 1)) : m};
        }
        Tensor y = x;
        for (int i = dims.size() - 1; i >= 0; --i) y = std::get<0>(kind == Max ? max(y, dims[i], keepdims) : min(y, dims[i], keepdims));
        return {y};
      }
      case SumSquare: return {sum(square(x), dims, keepdims)};
      case L1: return {sum(abs(x), dims, keepdims)};
      case L2: return {sqrt(sum(square(x), dims, keepdims))};
      case LogSum: return {log(sum(x, dims, keepdims))};
      case LogSumExp: return {logsumexp(x, dims, keepdims)};
    }
    return {};
  };
}

// ---- shapes ----

Kernel compile_reshape(const NodeView& n) {
  const bool attr = n.version() < 5;
  if (attr) {
    n.allow_attributes({"shape", "consumed_inputs"});
    n.expect_inputs(1, 1);
  } else {
    n.allow_attributes({"allowzero"});
    n.expect_inputs(2, 2);
  }
  n.expect_outputs(1);
  const std::vector<int64_t> attr_shape = n.get_ints("shape");
  const bool allowzero = n.get_int("allowzero", 0) != 0;
  return [=](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    std::vector<int64_t> s = attr ? attr_shape : int_values(in[1], "Reshape's shape");
    int inferred = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == 0 && !allowzero) {
        if (int(i) >= x.dim()) fail("onnx import", "shape {} copies dim {} (0) but the input has shape {}", Shape(s), i, x.shape());
        s[i] = x.size(int64_t(i));
      } else if (s[i] == -1) {
        ++inferred;
      } else if (s[i] < 0) {
        fail("onnx import", "shape {} has a negative size", Shape(s));
      }
    }
    if (inferred > 1) fail("onnx import", "shape {} has more than one -1", Shape(s));
    return {reshape(x, Shape(s))};
  };
}

Kernel compile_flatten(const NodeView& n) {
  n.allow_attributes({"axis"});
  n.expect_inputs(1, 1);
  n.expect_outputs(1);
  const int64_t axis = n.get_int("axis", 1);
  return [=](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    const int64_t r = x.dim();
    const int64_t ax = axis < 0 ? axis + r : axis;
    if (ax < 0 || ax > r) fail("onnx import", "axis {} is out of range for a tensor of rank {}", axis, r);
    int64_t outer = 1;
    for (int64_t d = 0; d < ax; ++d) outer *= x.size(d);
    int64_t inner = 1;
    for (int64_t d = ax; d < r; ++d) inner *= x.size(d);
    return {reshape(x, {outer, inner})};
  };
}

Kernel compile_transpose(const NodeView& n) {
  n.allow_attributes({"perm"});
  n.expect_inputs(1, 1);
  n.expect_outputs(1);
  const std::vector<int64_t> perm = n.get_ints("perm");
  return [=](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    Shape p;
    if (perm.empty()) {
      for (int d = x.dim() - 1; d >= 0; --d) p.push_back(d);
    } else {
      p = Shape(perm);
    }
    return {permute(x, p)};
  };
}

Kernel compile_squeeze(const NodeView& n, bool unsqueeze_op) {
  const bool axes_input = n.version() >= 13;
  if (axes_input) {
    n.allow_attributes({});
    n.expect_inputs(unsqueeze_op ? 2 : 1, 2);
  } else {
    n.allow_attributes({"axes"});
    n.expect_inputs(1, 1);
    if (unsqueeze_op && !n.has("axes")) n.error("attribute 'axes' is required");
  }
  n.expect_outputs(1);
  const std::vector<int64_t> attr_axes = n.get_ints("axes");
  return [=](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    std::vector<int64_t> axes = attr_axes;
    if (axes_input && in.size() > 1 && in[1].defined()) axes = int_values(in[1], "axes");
    if (unsqueeze_op) {
      const int64_t out_rank = x.dim() + int64_t(axes.size());
      std::vector<bool> inserted(size_t(out_rank), false);
      for (int64_t a : axes) {
        int64_t ax = normalize_axis(a, out_rank);
        if (inserted[size_t(ax)]) fail("onnx import", "axis {} is repeated", a);
        inserted[size_t(ax)] = true;
      }
      Shape s;
      int src = 0;
      for (int64_t d = 0; d < out_rank; ++d) s.push_back(inserted[size_t(d)] ? 1 : x.size(src++));
      return {reshape(x, s)};
    }
    std::vector<bool> drop(size_t(x.dim()), false);
    if (axes.empty()) {
      for (int d = 0; d < x.dim(); ++d) drop[size_t(d)] = x.size(d) == 1;
    } else {
      for (int64_t a : axes) {
        int64_t ax = normalize_axis(a, x.dim());
        if (x.size(ax) != 1) fail("onnx import", "cannot squeeze axis {} of size {} (shape {})", a, x.size(ax), x.shape());
        drop[size_t(ax)] = true;
      }
    }
    Shape s;
    for (int d = 0; d < x.dim(); ++d) {
      if (!drop[size_t(d)]) s.push_back(x.size(d));
    }
    return {reshape(x, s)};
  };
}

Kernel compile_concat(const NodeView& n) {
  n.allow_attributes({"axis"});
  if (n.version() >= 4 && !n.has("axis")) n.error("attribute 'axis' is required");
  if (n.proto().input.empty()) n.error("needs at least one input");
  n.expect_outputs(1);
  const int64_t axis = n.get_int("axis", 1);
  return [=](const Inputs& in) -> Inputs {
    std::vector<Tensor> parts;
    for (const Tensor& t : in) {
      if (t.defined()) parts.push_back(t);
    }
    if (parts.empty()) fail("onnx import", "Concat has no inputs");
    const int64_t ax = normalize_axis(axis, parts[0].dim());
    if (parts.size() == 1) return {parts[0]};
    return {cat(parts, ax)};
  };
}

Kernel compile_split(const NodeView& n) {
  const bool split_input = n.version() >= 13 || n.version() == 1;
  if (n.version() == 1) {
    n.allow_attributes({"axis", "split"});
    n.expect_inputs(1, 2);
  } else if (n.version() < 13) {
    n.allow_attributes({"axis", "split"});
    n.expect_inputs(1, 1);
  } else {
    n.allow_attributes({"axis"});
    n.expect_inputs(1, 2);
  }
  const int64_t axis = n.get_int("axis", 0);
  const std::vector<int64_t> attr_split = n.get_ints("split");
  const size_t outputs = n.output_count();
  if (outputs == 0) n.error("needs at least one output");
  return [=](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    const int64_t ax = normalize_axis(axis, x.dim());
    std::vector<int64_t> sizes = attr_split;
    if (split_input && in.size() > 1 && in[1].defined()) sizes = int_values(in[1], "Split's split");
    if (sizes.empty()) {
      if (x.size(ax) % int64_t(outputs) != 0)
        fail("onnx import", "dim {} of size {} does not split into {} equal parts", ax, x.size(ax), outputs);
      sizes.assign(outputs, x.size(ax) / int64_t(outputs));
    }
    if (sizes.size() != outputs) fail("onnx import", "split has {} sizes for {} outputs", sizes.size(), outputs);
    return split(x, sizes, ax);
  };
}

Kernel compile_slice(const NodeView& n) {
  const bool attrs = n.version() < 10;
  if (attrs) {
    n.allow_attributes({"starts", "ends", "axes"});
    n.expect_inputs(1, 1);
    if (!n.has("starts") || !n.has("ends")) n.error("attributes 'starts' and 'ends' are required");
  } else {
    n.allow_attributes({});
    n.expect_inputs(3, 5);
  }
  n.expect_outputs(1);
  const std::vector<int64_t> a_starts = n.get_ints("starts"), a_ends = n.get_ints("ends"), a_axes = n.get_ints("axes");
  return [=](const Inputs& in) -> Inputs {
    Tensor x = in[0];
    std::vector<int64_t> starts = a_starts, ends = a_ends, axes = a_axes, steps;
    if (!attrs) {
      starts = int_values(in[1], "Slice's starts");
      ends = int_values(in[2], "Slice's ends");
      if (in.size() > 3 && in[3].defined()) axes = int_values(in[3], "Slice's axes");
      if (in.size() > 4 && in[4].defined()) steps = int_values(in[4], "Slice's steps");
    }
    if (axes.empty()) {
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(int64_t(i));
    }
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
      fail("onnx import", "Slice has {} starts, {} ends, {} axes and {} steps; the counts must match", starts.size(),
           ends.size(), axes.size(), steps.size());
    std::vector<bool> seen(size_t(x.dim()), false);
    for (size_t i = 0; i < starts.size(); ++i) {
      const int64_t ax = normalize_axis(axes[i], x.dim());
      if (seen[size_t(ax)]) fail("onnx import", "Slice axis {} is repeated", axes[i]);
      seen[size_t(ax)] = true;
      const int64_t dim = x.size(ax);
      if (steps[i] == 0) fail("onnx import", "Slice step must not be 0");
      // A step longer than the dim takes one element at most; clamping keeps index math in range.
      const int64_t step = std::clamp<int64_t>(steps[i], -std::max<int64_t>(dim, 1), std::max<int64_t>(dim, 1));
      int64_t s = starts[i], e = ends[i];
      if (s < 0) s += dim;  // values below -dim stay negative and clamp below
      if (e < 0) e += dim;
      if (step > 0) {
        s = std::clamp<int64_t>(s, 0, dim);
        e = std::clamp<int64_t>(e, 0, dim);
        if (s == 0 && e == dim && step == 1) continue;
        x = slice(x, ax, s, std::max(s, e), step);
      } else {
        s = std::clamp<int64_t>(s, 0, std::max<int64_t>(dim - 1, 0));
        e = std::clamp<int64_t>(e, -1, dim - 1);
        std::vector<int64_t> idx;
        for (int64_t k = s; k > e && dim > 0; k += step) idx.push_back(k);
        x = index_select(x, ax, from_vector(idx, Shape{int64_t(idx.size())}));
      }
    }
    return {x};
  };
}

Kernel compile_shape(const NodeView& n) {
  n.allow_attributes(n.version() >= 15 ? std::initializer_list<const char*>{"start", "end"}
                                       : std::initializer_list<const char*>{});
  n.expect_inputs(1, 1);
  n.expect_outputs(1);
  const int64_t start = n.get_int("start", 0);
  const std::optional<int64_t> end = n.has("end") ? std::optional<int64_t>(n.get_int("end", 0)) : std::nullopt;
  return [=](const Inputs& in) -> Inputs {
    const int64_t r = in[0].dim();
    auto clampi = [r](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
    const int64_t s = clampi(start), e = end ? clampi(*end) : r;
    std::vector<int64_t> dims;
    for (int64_t d = s; d < e; ++d) dims.push_back(in[0].size(d));
    return {from_vector(dims, Shape{int64_t(dims.size())})};
  };
}

Kernel compile_gather(const NodeView& n) {
  n.allow_attributes({"axis"});
  n.expect_inputs(2, 2);
  n.expect_outputs(1);
  const int64_t axis = n.get_int("axis", 0);
  return [=](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    const Tensor& idx = in[1];
    if (idx.dtype() != kInt64) fail("onnx import", "Gather's indices must be int64; got {}", dtype_name(idx.dtype()));
    const int64_t ax = normalize_axis(axis, x.dim());
    const int64_t size = x.size(ax);
    std::vector<int64_t> flat = idx.to_vector<int64_t>();
    for (int64_t& v : flat) {
      if (v < -size || v >= size) fail("onnx import", "Gather index {} is out of range for axis {} of size {}", v, ax, size);
      if (v < 0) v += size;
    }
    Tensor picked = index_select(x, ax, from_vector(flat, Shape{int64_t(flat.size())}));
    Shape out;
    for (int64_t d = 0; d < ax; ++d) out.push_back(x.size(d));
    for (int64_t s : idx.shape()) out.push_back(s);
    for (int64_t d = ax + 1; d < x.dim(); ++d) out.push_back(x.size(d));
    return {reshape(picked, out)};
  };
}

// ---- constants and casts ----

namespace {
/// The dtype of ONNX data type `data_type` when the importer holds it (is_supported_data_type:
/// FLOAT, DOUBLE, INT64 and the storage dtypes INT32, INT8, UINT8), else fails naming `what` and
/// the types it takes (`also`: more a caller accepts itself, as Cast's BOOL).
DType held_dtype(const NodeView& n, int32_t data_type, const char* what, const char* also = "") {
  DType dtype = kFloat32;
  if (!is_supported_data_type(data_type) || !dtype_from_onnx(data_type, dtype))
    n.error("{} {} is not supported (supported: FLOAT, DOUBLE, INT64, INT32, INT8, UINT8{})", what, data_type_name(data_type), also);
  return dtype;
}
}  // namespace

Kernel compile_constant(const NodeView& n) {
  n.allow_attributes({"value", "value_float", "value_floats", "value_int", "value_ints"});
  n.expect_inputs(0, 0);
  n.expect_outputs(1);
  if (n.proto().attribute.size() != 1) n.error("needs exactly one value attribute; got {}", n.proto().attribute.size());
  const AttributeProto& a = n.proto().attribute[0];
  Tensor value;
  if (a.name == "value") {
    if (!a.t) n.error("attribute 'value' must be a TENSOR");
    held_dtype(n, a.t->data_type, "value of data type");
    try {
      value = tensor_from_proto(*a.t);
    } catch (const Error& e) {
      n.error("{}", e.what());
    }
  } else if (a.name == "value_float") {
    value = scalar_tensor(n.get_float("value_float", 0), kFloat32);
  } else if (a.name == "value_floats") {
    std::vector<float> v = n.get_floats("value_floats");
    value = from_vector(v, Shape{int64_t(v.size())});
  } else if (a.name == "value_int") {
    value = from_vector(std::vector<int64_t>{n.get_int("value_int", 0)}, Shape{});
  } else {
    std::vector<int64_t> v = n.get_ints("value_ints");
    value = from_vector(v, Shape{int64_t(v.size())});
  }
  return [value](const Inputs&) -> Inputs { return {value}; };
}

Kernel compile_constant_of_shape(const NodeView& n) {
  n.allow_attributes({"value"});
  n.expect_inputs(1, 1);
  n.expect_outputs(1);
  double fill = 0;
  DType dtype = kFloat32;
  if (const AttributeProto* a = n.attr("value")) {
    if (!a->t) n.error("attribute 'value' must be a TENSOR");
    dtype = held_dtype(n, a->t->data_type, "value of data type");
    std::vector<double> v = tensor_to_doubles(*a->t);
    if (v.size() != 1) n.error("attribute 'value' must hold one element; got {}", v.size());
    fill = v[0];
  }
  return [=](const Inputs& in) -> Inputs {
    std::vector<int64_t> s = int_values(in[0], "ConstantOfShape's shape");
    for (int64_t d : s) {
      if (d < 0) fail("onnx import", "ConstantOfShape's shape {} has a negative size", Shape(s));
    }
    check_created(s, "ConstantOfShape's shape");
    return {full(Shape(s), fill, dtype)};
  };
}

Kernel compile_cast(const NodeView& n) {
  n.allow_attributes(n.version() >= 13 ? std::initializer_list<const char*>{"to", "saturate"}
                                       : std::initializer_list<const char*>{"to"});
  n.expect_inputs(1, 1);
  n.expect_outputs(1);
  if (!n.has("to")) n.error("attribute 'to' is required");
  int32_t to = 0;
  if (n.version() < 6) {  // opset 1: the type's name as a string
    const std::string name = n.get_string("to", "");
    for (int32_t t = 1; t <= 16 && to == 0; ++t) {
      if (data_type_name(t) == name) to = t;
    }
    if (to == 0) n.error("attribute 'to' names unknown data type '{}'", name);
  } else {
    to = int32_t(n.get_int("to", 0));
  }
  if (to == static_cast<int32_t>(DataType::Bool)) {
    // latent has no bool dtype: a BOOL value is an int64 tensor of 0 and 1, which is what Where
    // (the one consumer of booleans here) takes as its condition.
    return [](const Inputs& in) -> Inputs { return {to_dtype(ne(in[0], 0.0), kInt64)}; };
  }
  // To a storage dtype (int32/int8/uint8), float values truncate and saturate (NaN -> 0), where
  // ONNX leaves out-of-range values undefined.
  const DType dtype = held_dtype(n, to, "cast to", ", BOOL");
  return [=](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    if (dtype == kInt64 && x.is_floating_point()) {
      for (double v : x.to_vector<double>()) {
        if (!(std::abs(v) < 9.2e18)) fail("onnx import", "cannot cast {} to INT64", v);
      }
    }
    return {to_dtype(x, dtype)};
  };
}

Kernel compile_where(const NodeView& n) {
  n.allow_attributes({});
  n.expect_inputs(3, 3);
  n.expect_outputs(1);
  return [](const Inputs& in) -> Inputs { return {where(in[0], in[1], in[2])}; };
}

Kernel compile_dropout(const NodeView& n) {
  const int v = n.version();
  if (v < 7)
    n.allow_attributes({"ratio", "is_test", "consumed_inputs"});
  else if (v < 12)
    n.allow_attributes({"ratio"});
  else
    n.allow_attributes({"seed"});
  n.expect_inputs(1, v >= 12 ? 3 : 1);
  n.expect_outputs(1);  // the mask output is BOOL, which latent does not have
  const bool is_test = v < 7 && n.get_int("is_test", 0) != 0;
  const double attr_ratio = v < 12 ? n.get_float("ratio", 0.5f) : 0.5;
  // Masks are drawn when the module is in train() mode, or, from opset 12, as the node's
  // training_mode input says when it has one (ONNX's own rule); otherwise the identity.
  return [=](const Inputs& in) -> Inputs {
    if (is_test) return {in[0]};
    bool training = running_in_training();
    if (in.size() > 2 && in[2].defined()) training = in[2].item<double>() != 0.0;
    if (!training) return {in[0]};
    const double ratio = in.size() > 1 && in[1].defined() ? in[1].item<double>() : attr_ratio;
    if (!(ratio >= 0.0 && ratio < 1.0)) fail("Dropout", "ratio must be in [0, 1); got {}", ratio);
    return {dropout(in[0], ratio, true)};
  };
}

namespace {
thread_local bool t_training = false;
}  // namespace

bool running_in_training() { return t_training; }
TrainingScope::TrainingScope(bool training) : saved_(t_training) { t_training = training; }
TrainingScope::~TrainingScope() { t_training = saved_; }

}  // namespace latent::onnx::detail
