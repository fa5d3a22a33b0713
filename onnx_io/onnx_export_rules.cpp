// The export rules that take more than one line: each writes the ONNX nodes of one kind of trace
// record (opset 13 to 17) and returns the value holding its output. The export table in
// onnx_op_tables.cpp maps every latent op name to one of these (or to a one-line rule of its own).
// Attributes are read by the op's argument order (ops/*.cpp) and, for conv and pool, by field name
// from the recorded Conv2dParams / Pool2dParams.
#include "onnx_export_rules.h"

#include <cmath>
#include <limits>

#include "../ops/elementwise.h"
#include "../ops/linalg.h"
#include "../ops/loss.h"
#include "../ops/nn_ops.h"
#include "../ops/quantize.h"
#include "../ops/scalar_math.h"

namespace latent::onnx::exporter {

// ---- elementwise ----

std::string emit_binary(const Emit& e) {  // add (with alpha), sub, mul, div, pow of two tensors
  const std::string op = e.r.op;
  std::string b = e.in[1];
  if (op == "add" && e.r.attrs.size() == 1 && e.attr_f(0) != 1.0) b = e.node("Mul", {b, e.scalar(e.attr_f(0))});
  std::string a = e.in[0];
  if (op == "div" && e.r.inputs[0].dtype() == DType::Int64) {  // integer division promotes to float32
    a = e.node("Cast", {a}, {attr_int("to", onnx_type(DType::Float32))});
    b = e.node("Cast", {b}, {attr_int("to", onnx_type(DType::Float32))});
  }
  const char* type = op == "add" ? "Add" : op == "sub" ? "Sub" : op == "mul" ? "Mul" : op == "div" ? "Div" : "Pow";
  return e.node(type, {a, b});
}

std::string emit_scalar_affine(const Emit& e) {  // add/sub/mul/div_scalar, rsub: (kind, value, factor)
  const auto kind = static_cast<UnaryOp>(e.attr_i(0));
  const std::string c = e.g.scalar(e.attr_f(1), e.r.inputs[0].dtype());
  if (kind == UnaryOp::AddScalar) return e.node("Add", {e.in[0], c});
  if (kind == UnaryOp::MulScalar) return e.node("Mul", {e.in[0], c});
  if (kind == UnaryOp::DivScalar) return e.node("Div", {e.in[0], c});
  if (kind == UnaryOp::RsubScalar) return e.node("Sub", {c, e.in[0]});
  e.unmapped();
}

std::string emit_pow_scalar(const Emit& e) {  // x ** exponent: (exponent, unused)
  const double p = e.attr_f(0);
  if (p == 2.0) return e.node("Mul", {e.in[0], e.in[0]});
  if (p == 1.0) return e.node("Identity", {e.in[0]});
  if (p == 0.5) return e.node("Sqrt", {e.in[0]});
  return e.node("Pow", {e.in[0], e.scalar(p)});
}

std::string emit_where(const Emit& e) {
  std::string cond = e.node("Cast", {e.in[0]}, {attr_int("to", static_cast<int32_t>(DataType::Bool))});
  return e.node("Where", {cond, e.in[1], e.in[2]});
}

// ---- activations with parameters (PointwiseOp: p0, p1) ----

std::string emit_softplus(const Emit& e) {
  // log(1 + exp(beta x)) / beta; latent's linear branch above `threshold` differs by < exp(-threshold).
  const double beta = e.attr_f(0);
  if (beta == 1.0) return e.node("Softplus", {e.in[0]});
  const std::string b = e.scalar(beta);
  return e.node("Div", {e.node("Softplus", {e.node("Mul", {e.in[0], b})}), b});
}

std::string emit_gelu(const Emit& e) {  // x * 0.5 * (1 + erf(x / sqrt(2))); ONNX's Gelu arrives at opset 20
  std::string erf = e.node("Erf", {e.node("Div", {e.in[0], e.scalar(std::sqrt(2.0))})});
  std::string half = e.node("Mul", {e.in[0], e.scalar(0.5)});
  return e.node("Mul", {half, e.node("Add", {erf, e.scalar(1.0)})});
}

std::string emit_clamp(const Emit& e) {
  const double lo = e.attr_f(0), hi = e.attr_f(1);
  return e.node("Clip", {e.in[0], std::isinf(lo) ? std::string() : e.scalar(lo),
                         std::isinf(hi) ? std::string() : e.scalar(hi)});
}

// ---- ops traced as one though latent composes them (trace::composite) ----

std::string emit_batch_norm(const Emit& e) {  // eval mode: x, running mean/var, weight, bias; (eps)
  const int64_t channels = e.x_shape(0)[1];
  const auto filled = [&](double value) {  // weight or bias left out: ones or zeros per channel
    return e.g.constant_of(full({channels}, value, e.dtype()), e.g.fresh("const"));
  };
  const std::string scale = e.in[3].empty() ? filled(1.0) : e.in[3];
  const std::string shift = e.in[4].empty() ? filled(0.0) : e.in[4];
  return e.node("BatchNormalization", {e.in[0], scale, shift, e.in[1], e.in[2]}, {attr_float("epsilon", e.attr_f(0))});
}

std::string emit_pad(const Emit& e) {  // (pads, mode, value); pads: (before, after) pairs, last dim first
  const std::vector<int64_t>& pairs = e.r.attrs[0].ints;
  const int rank = e.r.inputs[0].dim();
  std::vector<int64_t> onnx_pads(static_cast<size_t>(2 * rank), 0);  // all begins, then all ends
  for (size_t i = 0; i < pairs.size() / 2; ++i) {
    const int d = rank - 1 - static_cast<int>(i);
    onnx_pads[static_cast<size_t>(d)] = pairs[2 * i];
    onnx_pads[static_cast<size_t>(rank + d)] = pairs[2 * i + 1];
  }
  const auto mode = static_cast<PadMode>(e.attr_i(1));
  const char* onnx_mode = mode == PadMode::Reflect ? "reflect" : mode == PadMode::Replicate ? "edge" : "constant";
  std::vector<std::string> inputs{e.in[0], e.g.const_i64(onnx_pads)};
  if (mode == PadMode::Constant && e.attr_f(2) != 0.0) inputs.push_back(e.scalar(e.attr_f(2)));
  return e.node("Pad", inputs, {attr_string("mode", onnx_mode)});
}

// ---- linear algebra ----

namespace {
// Gemm(x, W^T, b); for a weight with an int8 form (a `latent quantize` run, ops/quantize.h) the QDQ
// form ONNX Runtime and TensorRT fuse into an int8 GEMM: QuantizeLinear -> DequantizeLinear on the
// input (uint8, per tensor) and DequantizeLinear (axis 0: per output channel, opset 13) of the int8
// weight initializer, so the file holds the int8 weights and ONNX Runtime computes what latent does.
std::string gemm_maybe_quantized(const Emit& e) {
  std::string x = e.in[0], w = e.in[1];
  if (auto q = find_quantized_linear(e.r.inputs[1])) {
    const int64_t n = q->int8_weight.shape()[0], k = q->int8_weight.shape()[1];
    const float s = q->input_scale;
    const uint8_t z = static_cast<uint8_t>(q->input_zero);
    const std::string sx = e.g.add_initializer(make_tensor<float>(e.g.fresh(w + "_input_scale"), {}, std::span<const float>(&s, 1)));
    const std::string zx = e.g.add_initializer(make_tensor<uint8_t>(e.g.fresh(w + "_input_zero_point"), {}, std::span<const uint8_t>(&z, 1)));
    x = e.node("DequantizeLinear", {e.node("QuantizeLinear", {x, sx, zx}), sx, zx});
    const std::vector<int8_t> values = q->int8_weight.to_vector<int8_t>();
    const std::vector<int8_t> zeros(static_cast<size_t>(n), 0);
    const std::string wq = e.g.add_initializer(make_tensor<int8_t>(e.g.fresh(w + "_quantized"), {n, k}, std::span<const int8_t>(values)));
    const std::string ws = e.g.add_initializer(make_tensor<float>(e.g.fresh(w + "_scale"), {n}, std::span<const float>(q->weight_scale)));
    const std::string wz = e.g.add_initializer(make_tensor<int8_t>(e.g.fresh(w + "_zero_point"), {n}, std::span<const int8_t>(zeros)));
    w = e.node("DequantizeLinear", {wq, ws, wz}, {attr_int("axis", 0)});
  }
  return e.node("Gemm", {x, w, e.in[2]}, {attr_int("transB", 1)});
}
}  // namespace

std::string emit_linear(const Emit& e) {
  if (e.r.inputs[0].dim() != 2) e.unmapped();
  return gemm_maybe_quantized(e);
}

std::string emit_fused_linear(const Emit& e) {  // activation(x W^T + b), one op in latent; (activation)
  if (e.r.inputs[0].dim() != 2) e.unmapped();
  const std::string y = gemm_maybe_quantized(e);
  switch (static_cast<Activation>(e.attr_i(0))) {
    case Activation::None: return y;
    case Activation::Relu: return e.node("Relu", {y});
    case Activation::Sigmoid: return e.node("Sigmoid", {y});
    case Activation::Tanh: return e.node("Tanh", {y});
  }
  e.unmapped();
}

// ---- shapes ----

std::string emit_view(const Emit& e) {
  // Reshape to the output's shape; the batch-dependent size (if any) becomes -1.
  std::vector<int64_t> target = dims_of(e.out_shape());
  std::vector<bool> batch = GraphBuilder::batch_positions(e.out_shape(), e.out_shape2());
  int dynamic = 0;
  for (size_t i = 0; i < target.size(); ++i)
    if (batch[i]) target[i] = -1, ++dynamic;
  if (dynamic > 1)
    fail(kOp, "reshape to {} ({}) has {} sizes that depend on the batch size; only one can be left dynamic (-1)",
         e.out_shape(), e.g.where(), dynamic);
  return e.node("Reshape", {e.in[0], e.g.const_i64(target)});
}

std::string emit_permute(const Emit& e) {
  std::vector<int64_t> perm = e.r.attrs.at(0).ints;
  const int64_t rank = e.r.inputs[0].dim();
  for (int64_t& p : perm)
    if (p < 0) p += rank;
  return e.node("Transpose", {e.in[0]}, {attr_ints("perm", perm)});
}

std::string emit_slice(const Emit& e) {  // (dim, start, end, step), clamped by slice()/narrow()
  const int64_t dim = e.attr_i(0), start = e.attr_i(1), step = e.attr_i(3);
  int64_t end = e.attr_i(2);
  if (e.r2 && e.r2->attrs.at(1).i != start)
    fail(kOp, "slice start {} depends on the batch size ({})", start, e.g.where());
  if (e.r2 && e.r2->attrs.at(2).i != end) {
    if (end != e.x_shape(0)[static_cast<int>(dim)])
      fail(kOp, "slice end {} depends on the batch size ({})", end, e.g.where());
    end = std::numeric_limits<int64_t>::max();
  }
  GraphBuilder& g = e.g;
  return e.node("Slice", {e.in[0], g.const_i64({start}), g.const_i64({end}), g.const_i64({dim}), g.const_i64({step})});
}

std::string emit_expand(const Emit& e) {
  // Expand broadcasts, so sizes the input already has can be 1 (keeping the batch dynamic).
  const Shape& xs = e.x_shape(0);
  const Shape& out_shape = e.out_shape();
  std::vector<int64_t> target = dims_of(out_shape);
  std::vector<bool> batch = GraphBuilder::batch_positions(out_shape, e.out_shape2());
  const int offset = out_shape.size() - xs.size();
  for (int i = 0; i < out_shape.size(); ++i) {
    if (i >= offset && xs[i - offset] == out_shape[i]) {
      target[static_cast<size_t>(i)] = 1;
    } else if (batch[static_cast<size_t>(i)]) {
      fail(kOp, "expand of shape {} to the batch size ({}) cannot be exported with a dynamic batch", xs, e.g.where());
    }
  }
  return e.node("Expand", {e.in[0], e.g.const_i64(target)});
}

std::string emit_clone(const Emit& e) {  // a copy, converting the dtype
  if (e.r.inputs[0].dtype() == e.dtype()) return e.node("Identity", {e.in[0]});
  return e.node("Cast", {e.in[0]}, {attr_int("to", onnx_type(e.dtype()))});
}

// ---- reductions ----

std::string emit_sum_mean(const Emit& e) {  // (dims, keepdim); no dims: all
  std::vector<int64_t> axes = e.r.attrs.at(0).ints;
  if (axes.empty()) axes = GraphBuilder::all_axes(e.r.inputs[0].dim());
  return e.g.reduce(std::string(e.r.op) == "sum" ? "ReduceSum" : "ReduceMean", e.in[0], axes, e.r.attrs.at(1).i != 0);
}

std::string emit_extreme_all(const Emit& e) {  // max(x), min(x)
  return e.g.reduce(std::string(e.r.op) == "max" ? "ReduceMax" : "ReduceMin", e.in[0],
                    GraphBuilder::all_axes(e.r.inputs[0].dim()), false);
}

std::string emit_extreme_dim(const Emit& e) {  // max(x, dim), min(x, dim): (dim, keepdim, indices slot)
  return e.g.reduce(std::string(e.r.op) == "max_dim" ? "ReduceMax" : "ReduceMin", e.in[0], {e.attr_i(0)},
                    e.r.attrs.at(1).i != 0);
}

// ---- convolution, pooling, resampling (inputs are (N, C, H, W)) ----

namespace {
// The QDQ form of a conv weight with an int8 form (a `latent quantize` run, ops/quantize.h), as
// gemm_maybe_quantized does for Gemm: QuantizeLinear -> DequantizeLinear on the input (uint8, per
// tensor) and DequantizeLinear of the int8 weight initializer with per-axis scales (axis 0 for
// Conv, axis 1 for ConvTranspose: the output channels' axis). Returns {x, w}, unchanged without one.
std::pair<std::string, std::string> conv_inputs_maybe_quantized(const Emit& e, bool transposed) {
  const auto q = find_quantized_conv(e.r.inputs[1]);
  if (!q || q->transposed != transposed) return {e.in[0], e.in[1]};
  const std::string& w = e.in[1];
  const float s = q->input_scale;
  const uint8_t z = static_cast<uint8_t>(q->input_zero);
  const std::string sx = e.g.add_initializer(make_tensor<float>(e.g.fresh(w + "_input_scale"), {}, std::span<const float>(&s, 1)));
  const std::string zx = e.g.add_initializer(make_tensor<uint8_t>(e.g.fresh(w + "_input_zero_point"), {}, std::span<const uint8_t>(&z, 1)));
  const std::string x = e.node("DequantizeLinear", {e.node("QuantizeLinear", {e.in[0], sx, zx}), sx, zx});
  const Shape& shape = q->int8_weight.shape();
  const std::vector<int64_t> dims{shape[0], shape[1], shape[2], shape[3]};
  const std::vector<int8_t> values = q->int8_weight.to_vector<int8_t>();
  const std::vector<int8_t> zeros(q->weight_scale.size(), 0);
  const int64_t c_out = static_cast<int64_t>(q->weight_scale.size());
  const std::string wq = e.g.add_initializer(make_tensor<int8_t>(e.g.fresh(w + "_quantized"), dims, std::span<const int8_t>(values)));
  const std::string ws = e.g.add_initializer(make_tensor<float>(e.g.fresh(w + "_scale"), {c_out}, std::span<const float>(q->weight_scale)));
  const std::string wz = e.g.add_initializer(make_tensor<int8_t>(e.g.fresh(w + "_zero_point"), {c_out}, std::span<const int8_t>(zeros)));
  return {x, e.node("DequantizeLinear", {wq, ws, wz}, {attr_int("axis", transposed ? 1 : 0)})};
}
}  // namespace

std::string emit_conv(const Emit& e) {  // conv2d, conv_transpose2d: (Conv2dParams, output shape)
  const Conv2dParams& p = e.r.attrs.at(0).get<Conv2dParams>();
  const bool transposed = std::string(e.r.op) != "conv2d";
  const auto [x, w_in] = conv_inputs_maybe_quantized(e, transposed);
  const Shape& w = e.x_shape(1);
  std::vector<AttributeProto> attrs{attr_ints("kernel_shape", {w[2], w[3]}),
                                    attr_ints("strides", {p.stride[0], p.stride[1]}),
                                    attr_ints("pads", {p.padding[0], p.padding[1], p.padding[0], p.padding[1]}),
                                    attr_ints("dilations", {p.dilation[0], p.dilation[1]}),
                                    attr_int("group", p.groups)};
  if (!transposed) return e.node("Conv", {x, w_in, e.in[2]}, attrs);
  if (p.output_padding[0] != 0 || p.output_padding[1] != 0)
    attrs.push_back(attr_ints("output_padding", {p.output_padding[0], p.output_padding[1]}));
  return e.node("ConvTranspose", {x, w_in, e.in[2]}, attrs);
}

std::string emit_pool(const Emit& e) {  // max/avg_pool2d/1d: (Pool2dParams, output shape[, indices slot])
  const Pool2dParams& p = e.r.attrs.at(0).get<Pool2dParams>();
  std::vector<AttributeProto> attrs{attr_ints("kernel_shape", {p.kernel[0], p.kernel[1]}),
                                    attr_ints("strides", {p.stride[0], p.stride[1]}),
                                    attr_ints("pads", {p.padding[0], p.padding[1], p.padding[0], p.padding[1]})};
  if (p.ceil_mode) attrs.push_back(attr_int("ceil_mode", 1));
  if (e.r.op[0] == 'm') {
    if (p.dilation[0] != 1 || p.dilation[1] != 1)
      attrs.push_back(attr_ints("dilations", {p.dilation[0], p.dilation[1]}));
    return e.node("MaxPool", {e.in[0]}, attrs);
  }
  if (p.count_include_pad) attrs.push_back(attr_int("count_include_pad", 1));
  return e.node("AveragePool", {e.in[0]}, attrs);
}

std::string emit_adaptive_avg_pool(const Emit& e) {
  const Shape& xs = e.x_shape(0);
  const int64_t oh = e.out_shape()[2], ow = e.out_shape()[3];
  if (oh == 1 && ow == 1) return e.node("GlobalAveragePool", {e.in[0]});
  if (xs[2] % oh != 0 || xs[3] % ow != 0)
    fail(kOp, "adaptive_avg_pool from {}x{} to {}x{} has uneven windows; only sizes that divide the input map to "
              "AveragePool ({})",
         xs[2], xs[3], oh, ow, e.g.where());
  const int64_t kh = xs[2] / oh, kw = xs[3] / ow;
  return e.node("AveragePool", {e.in[0]}, {attr_ints("kernel_shape", {kh, kw}), attr_ints("strides", {kh, kw})});
}

std::string emit_upsample(const Emit& e) {  // upsample_nearest2d / upsample_bilinear2d: (size, align_corners)
  const Shape& xs = e.x_shape(0);
  const bool bilinear = std::string(e.r.op) == "upsample_bilinear2d";
  const bool align_corners = e.r.attrs.size() >= 2 && e.r.attrs[1].i != 0;
  std::vector<AttributeProto> attrs;
  if (bilinear) {
    attrs = {attr_string("mode", "linear"),
             attr_string("coordinate_transformation_mode", align_corners ? "align_corners" : "pytorch_half_pixel")};
  } else {
    // PyTorch's nearest: src = floor(dst * in / out).
    attrs = {attr_string("mode", "nearest"), attr_string("coordinate_transformation_mode", "asymmetric"),
             attr_string("nearest_mode", "floor")};
  }
  const int64_t oh = e.out_shape()[2], ow = e.out_shape()[3];
  if (oh % xs[2] == 0 && ow % xs[3] == 0) {  // integer factors: exact scales
    const std::string scales =
        e.g.const_f32({1.0f, 1.0f, static_cast<float>(oh / xs[2]), static_cast<float>(ow / xs[3])});
    return e.node("Resize", {e.in[0], "", scales}, attrs);
  }
  // Other sizes: sizes = concat(shape(x)[0:2], [oh, ow]), which keeps N dynamic.
  std::string nc = e.node("Slice", {e.node("Shape", {e.in[0]}), e.g.const_i64({0}), e.g.const_i64({2})});
  std::string sizes = e.node("Concat", {nc, e.g.const_i64({oh, ow})}, {attr_int("axis", 0)});
  return e.node("Resize", {e.in[0], "", "", sizes}, attrs);
}

// ---- losses (a model may report one) ----

std::string emit_pointwise_loss(const Emit& e) {  // mse_loss, l1_loss: (reduction)
  std::string d = e.node("Sub", {e.in[0], e.in[1]});
  std::string err = std::string(e.r.op) == "mse_loss" ? e.node("Mul", {d, d}) : e.node("Abs", {d});
  const auto reduction = static_cast<Reduction>(e.attr_i(0));
  if (reduction == Reduction::None) return err;
  return e.g.reduce(reduction == Reduction::Mean ? "ReduceMean" : "ReduceSum", err,
                    GraphBuilder::all_axes(e.r.inputs[0].dim()), false);
}

}  // namespace latent::onnx::exporter
