// The importer's quantized ops: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
// MatMulInteger, QLinearMatMul, ConvInteger and QLinearConv, and from ONNX Runtime's com.microsoft
// domain the two its QOperator form writes for latent's models, QGemm and QLinearSigmoid. The integer products run in float64
// (exact: every sum of uint8/int8 products an ONNX model can hold stays far below 2^53) with
// latent's matmul and conv, then are converted to int32 (the *Integer ops) or requantized as
// ONNX's reference does: acc * float32(a_scale * b_scale / y_scale) in float64, rounded half to
// even, plus the zero point, saturated. So a QDQ or QOperator model runs in latent with the
// values ONNX defines, though not at int8 speed (the int8 kernels serve latent's own runs).
#include "../ops/activation.h"
#include "../ops/creation.h"
#include "../ops/elementwise.h"
#include "../ops/linalg.h"
#include "../ops/quantize.h"
#include "../ops/shape_ops.h"
#include "onnx_import_ops.h"

namespace latent::onnx::detail {

namespace {

using Inputs = std::vector<Tensor>;

const char* kOp = "onnx import";

void check_integer(const char* op, const char* what, const Tensor& t) {
  if (t.dtype() != kUInt8 && t.dtype() != kInt8)
    fail(kOp, "{}: {} must be uint8 or int8; got {}", op, what, dtype_name(t.dtype()));
}

/// A per-tensor or per-index parameter (scale, zero point) as a float64 tensor shaped to broadcast
/// along dimension `dim` of a rank-`rank` tensor (a scalar when it holds one value).
Tensor along(const char* op, const char* what, const Tensor& p, int rank, int dim, int64_t size) {
  if (p.dim() > 1) fail(kOp, "{}: {} must be a scalar or 1-d; got shape {}", op, what, p.shape());
  const Tensor v = p.to(kFloat64);
  if (p.numel() == 1) return reshape(v, {});
  if (p.numel() != size)
    fail(kOp, "{}: {} has {} values; expected 1 or {}", op, what, p.numel(), size);
  Shape s;
  for (int d = 0; d < rank; ++d) s.push_back(d == dim ? size : 1);
  return reshape(v, s);
}

/// t as float64 minus its zero point (absent: 0), the zero point along `dim` (-1: per tensor only).
Tensor centered(const char* op, const char* what, const Tensor& t, const Tensor& zero, int dim) {
  check_integer(op, what, t);
  Tensor v = t.to(kFloat64);
  if (!zero.defined()) return v;
  if (zero.dtype() != t.dtype())
    fail(kOp, "{}: {}'s zero point is {} but {} is {}", op, what, dtype_name(zero.dtype()), what, dtype_name(t.dtype()));
  if (dim < 0 && zero.numel() != 1) fail(kOp, "{}: {}'s zero point must hold one value; got shape {}", op, what, zero.shape());
  const int64_t size = dim >= 0 && dim < t.dim() ? t.size(dim) : 1;
  return sub(v, along(op, "zero point", zero, t.dim(), dim, size));
}

/// Row (dim rank-2) zero points of A in A x B.
Tensor centered_rows(const char* op, const Tensor& a, const Tensor& zero) {
  return centered(op, "A", a, zero, a.dim() >= 2 ? a.dim() - 2 : -1);
}

/// ONNX's requantization of float64 sums: acc * multiplier (float64), rounded, plus zero, saturated.
Tensor requantize(const Tensor& acc, const Tensor& multiplier, const Tensor& y_zero) {
  return quantize_linear(mul(acc, multiplier), scalar_tensor(1.0, kFloat32), y_zero);
}

/// A per-tensor parameter (a scale or zero point) as a 0-d tensor; fails unless it holds one value.
Tensor one_value(const char* op, const char* what, const Tensor& p) {
  if (p.numel() != 1) fail(kOp, "{}: {} must hold one value; got shape {}", op, what, p.shape());
  return reshape(p, {});
}

/// float32(a * b / y) as float64 (the scales' product in float32, as ONNX's reference computes it).
Tensor multiplier(const Tensor& a, const Tensor& b, const Tensor& y) {
  return div(mul(a.to(kFloat32), b.to(kFloat32)), y.to(kFloat32)).to(kFloat64);
}

}  // namespace

namespace {

/// QuantizeLinear and DequantizeLinear: the same inputs (x, scale, optional zero point) and the
/// same `axis` attribute (from opset 13), around one of the two ops/quantize.h functions.
template <Tensor (*Fn)(const Tensor&, const Tensor&, const Tensor&, int64_t)>
Kernel compile_scale_zero_point(const NodeView& n) {
  if (n.version() >= 13) n.allow_attributes({"axis"});
  else n.allow_attributes({});
  n.expect_inputs(2, 3);
  n.expect_outputs(1);
  const int64_t axis = n.get_int("axis", 1);
  return [axis](const Inputs& in) -> Inputs { return {Fn(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), axis)}; };
}

}  // namespace

Kernel compile_quantize_linear(const NodeView& n) { return compile_scale_zero_point<quantize_linear>(n); }

Kernel compile_dequantize_linear(const NodeView& n) { return compile_scale_zero_point<dequantize_linear>(n); }

Kernel compile_dynamic_quantize_linear(const NodeView& n) {
  n.allow_attributes({});
  n.expect_inputs(1, 1);
  n.expect_outputs(3);
  return [](const Inputs& in) -> Inputs {
    DynamicQuantized d = dynamic_quantize_linear(in[0]);
    return {d.q, d.scale, d.zero};
  };
}

Kernel compile_matmul_integer(const NodeView& n) {
  n.allow_attributes({});
  n.expect_inputs(2, 4);
  n.expect_outputs(1);
  return [](const Inputs& in) -> Inputs {
    const Tensor& a = in[0];
    const Tensor& b = in[1];
    const Tensor a0 = centered_rows("MatMulInteger", a, in.size() > 2 ? in[2] : Tensor());
    const Tensor b0 = centered("MatMulInteger", "B", b, in.size() > 3 ? in[3] : Tensor(), b.dim() - 1);
    return {matmul(a0, b0).to(kInt32)};
  };
}

Kernel compile_qlinear_matmul(const NodeView& n) {
  n.allow_attributes({});
  n.expect_inputs(8, 8);
  n.expect_outputs(1);
  return [](const Inputs& in) -> Inputs {
    constexpr const char* op = "QLinearMatMul";
    const Tensor &a = in[0], &b = in[3];
    const Tensor a0 = centered_rows(op, a, in[2]);
    const Tensor b0 = centered(op, "B", b, in[5], b.dim() - 1);
    const Tensor acc = matmul(a0, b0);
    // a_scale per row of A (dim rank-2 of the output), b_scale per column (the last dim).
    const int r = acc.dim();
    const Tensor as = along(op, "a_scale", in[1], r, r - 2, r >= 2 ? acc.size(r - 2) : 1);
    const Tensor bs = along(op, "b_scale", in[4], r, r - 1, acc.size(r - 1));
    if (in[6].numel() != 1 || in[7].numel() != 1) fail(kOp, "{}: y_scale and y_zero_point must hold one value each", op);
    check_integer(op, "y_zero_point", in[7]);
    return {requantize(acc, multiplier(as, bs, reshape(in[6], {})), reshape(in[7], {}))};
  };
}

Kernel compile_conv_integer(const NodeView& n) {
  n.allow_attributes({"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
  n.expect_inputs(2, 4);
  n.expect_outputs(1);
  ConvFn conv = conv_function(n, 1);
  return [conv](const Inputs& in) -> Inputs {
    const Tensor x = centered("ConvInteger", "x", in[0], in.size() > 2 ? in[2] : Tensor(), -1);
    const Tensor w = centered("ConvInteger", "w", in[1], in.size() > 3 ? in[3] : Tensor(), 0);
    return {conv(x, w, Tensor()).to(kInt32)};
  };
}

Kernel compile_qlinear_conv(const NodeView& n) {
  n.allow_attributes({"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
  n.expect_inputs(8, 9);
  n.expect_outputs(1);
  ConvFn conv = conv_function(n, 3);
  return [conv](const Inputs& in) -> Inputs {
    constexpr const char* op = "QLinearConv";
    const Tensor x = centered(op, "x", in[0], in[2], -1);
    const Tensor w = centered(op, "w", in[3], in[5], 0);
    Tensor bias;
    if (in.size() > 8 && in[8].defined()) {
      if (in[8].dtype() != kInt32) fail(kOp, "{}: bias must be int32; got {}", op, dtype_name(in[8].dtype()));
      bias = in[8].to(kFloat64);
    }
    const Tensor acc = conv(x, w, bias);
    const Tensor ws = along(op, "w_scale", in[4], acc.dim(), 1, acc.size(1));
    if (in[1].numel() != 1 || in[6].numel() != 1 || in[7].numel() != 1)
      fail(kOp, "{}: x_scale, y_scale and y_zero_point must hold one value each", op);
    check_integer(op, "y_zero_point", in[7]);
    return {requantize(acc, multiplier(reshape(in[1], {}), ws, reshape(in[6], {})), reshape(in[7], {}))};
  };
}

Kernel compile_qgemm(const NodeView& n) {
  n.allow_attributes({"alpha", "transA", "transB"});
  n.expect_inputs(6, 9);
  n.expect_outputs(1);
  const float alpha = n.get_float("alpha", 1.0f);
  // ONNX Runtime's quantizer always writes alpha 1; how its kernel scales the bias by another alpha
  // is not written down, so other values are refused rather than guessed.
  if (alpha != 1.0f) n.error("alpha {} is not supported (only 1)", alpha);
  const bool trans_a = n.get_int("transA", 0) != 0, trans_b = n.get_int("transB", 0) != 0;
  const bool quantized_out = n.has_input(7);
  if (n.has_input(8) && !quantized_out) n.error("y_zero_point is given without y_scale");
  return [trans_a, trans_b, quantized_out](const Inputs& in) -> Inputs {
    constexpr const char* op = "QGemm";
    const Tensor &a = in[0], &b = in[3];
    if (a.dim() != 2 || b.dim() != 2) fail(kOp, "{}: A and B must be 2-d; got shapes {} and {}", op, a.shape(), b.shape());
    // B's zero points and scales run along N: B's dimension 0 when transposed, else 1.
    const int b_n = trans_b ? 0 : 1;
    Tensor a0 = centered(op, "A", a, in[2], -1);
    Tensor b0 = centered(op, "B", b, in[5], b_n);
    if (trans_a) a0 = transpose(a0, 0, 1);
    if (trans_b) b0 = transpose(b0, 0, 1);
    if (a0.size(1) != b0.size(0))
      fail(kOp, "{}: A {} and B {} do not multiply (transA {}, transB {})", op, a.shape(), b.shape(), int(trans_a), int(trans_b));
    Tensor acc = matmul(a0, b0);
    if (in.size() > 6 && in[6].defined()) {
      if (in[6].dtype() != kInt32) fail(kOp, "{}: C must be int32; got {}", op, dtype_name(in[6].dtype()));
      if (in[6].numel() != 1 && in[6].numel() != acc.size(1) && in[6].shape() != acc.shape())
        fail(kOp, "{}: C has shape {}; expected a scalar, [{}] or {}", op, in[6].shape(), acc.size(1), acc.shape());
      acc = add(acc, in[6].to(kFloat64));
    }
    const Tensor as = one_value(op, "a_scale", in[1]);
    const Tensor bs = along(op, "b_scale", in[4], 2, 1, acc.size(1));
    if (!quantized_out)  // float32 output: the sums times a_scale x b_scale (their product in float32)
      return {mul(acc, mul(as.to(kFloat32), bs.to(kFloat32)).to(kFloat64)).to(kFloat32)};
    const Tensor y_zero = in.size() > 8 && in[8].defined() ? one_value(op, "y_zero_point", in[8]) : scalar_tensor(0.0, kUInt8);
    check_integer(op, "y_zero_point", y_zero);
    return {requantize(acc, multiplier(as, bs, one_value(op, "y_scale", in[7])), y_zero)};
  };
}

Kernel compile_qlinear_sigmoid(const NodeView& n) {
  n.allow_attributes({});
  n.expect_inputs(4, 5);
  n.expect_outputs(1);
  if (!n.has_input(1) || !n.has_input(3)) n.error("X_scale and Y_scale are required");
  return [](const Inputs& in) -> Inputs {
    constexpr const char* op = "QLinearSigmoid";
    check_integer(op, "X", in[0]);
    const Tensor x_scale = one_value(op, "X_scale", in[1]), y_scale = one_value(op, "Y_scale", in[3]);
    const Tensor x_zero = in[2].defined() ? one_value(op, "X_zero_point", in[2]) : Tensor();
    const Tensor y_zero = in.size() > 4 && in[4].defined() ? one_value(op, "Y_zero_point", in[4]) : scalar_tensor(0.0, in[0].dtype());
    // As ONNX Runtime defines it: dequantize, sigmoid and quantize again, in float32.
    return {quantize_linear(sigmoid(dequantize_linear(in[0], x_scale, x_zero).to(kFloat32)), y_scale, y_zero)};
  };
}

}  // namespace latent::onnx::detail
