// conv2d and conv_transpose2d as two ops over the backend's three convolution kernels, and the
// 1-d and unbatched forms as views around them.
//
//   conv2d:            forward  conv2d                      backward x: conv2d_backward_input
//                                                           backward w: conv2d_backward_weight(g, x)
//   conv_transpose2d:  forward  conv2d_backward_input(x)    backward x: conv2d(g)
//                                                           backward w: conv2d_backward_weight(x, g)
// Bias gradients are sums of g over (N, H, W) through the backend reduce.
#include "conv.h"

#include <string>

#include "apply.h"
#include "backend.h"
#include "check.h"
#include "creation.h"
#include "quantize.h"
#include "shape_ops.h"

namespace latent {
namespace {

/// "5x3" for 2-d ops, "3" for 1-d ops (which keep their attributes in w).
std::string size_str(int64_t h, int64_t w, bool one_d) {
  return one_d ? fmt::format("{}", w) : fmt::format("{}x{}", h, w);
}
std::string attr_str(int64_t h, int64_t w, bool one_d) {
  return one_d ? fmt::format("{}", w) : fmt::format("({}, {})", h, w);
}

/// Everything the checks need to know about a call, in 2-d form (1-d calls use height 1).
struct ConvCall {
  const char* op;
  bool one_d, transposed;
  Pair stride, padding, dilation, output_padding;
  int64_t groups;
};

/// Validates x, weight and bias and returns the kernel parameters and the batched output shape.
/// x and weight are the user's tensors (any rank); the checks name the user's shapes.
std::pair<Conv2dParams, Shape> check_conv(const ConvCall& c, const Tensor& x, const Tensor& weight,
                                          const Tensor& bias) {
  const char* op = c.op;
  const bool one_d = c.one_d;
  check::defined(op, x, "input");
  check::defined(op, weight, "weight");
  check::floating(op, x);
  check::same_device(op, x, weight);
  if (weight.dtype() != x.dtype()) fail(op, "input dtype {} and weight dtype {} differ", x.dtype(), weight.dtype());

  const int spatial = one_d ? 1 : 2;
  const char* weight_layout = one_d ? (c.transposed ? "(C_in, C_out/groups, k)" : "(C_out, C_in/groups, k)")
                                    : (c.transposed ? "(C_in, C_out/groups, kH, kW)" : "(C_out, C_in/groups, kH, kW)");
  if (weight.dim() != spatial + 2)
    fail(op, "weight must be {}-d {}; got shape {}", spatial + 2, weight_layout, weight.shape());
  if (x.dim() != spatial + 1 && x.dim() != spatial + 2)
    fail(op, "input must be {}-d {} or {}-d {}; got shape {}", spatial + 1, one_d ? "(C, L)" : "(C, H, W)",
         spatial + 2, one_d ? "(N, C, L)" : "(N, C, H, W)", x.shape());

  const auto [sh, sw] = c.stride;
  const auto [ph, pw] = c.padding;
  const auto [dh, dw] = c.dilation;
  const auto [oph, opw] = c.output_padding;
  if (sh <= 0 || sw <= 0) fail(op, "stride must be positive; got {}", attr_str(sh, sw, one_d));
  if (ph < 0 || pw < 0) fail(op, "padding must be non-negative; got {}", attr_str(ph, pw, one_d));
  if (dh <= 0 || dw <= 0) fail(op, "dilation must be positive; got {}", attr_str(dh, dw, one_d));
  if (c.groups <= 0) fail(op, "groups must be positive; got {}", c.groups);
  if (oph < 0 || opw < 0) fail(op, "output_padding must be non-negative; got {}", attr_str(oph, opw, one_d));
  if (!c.transposed && (oph != 0 || opw != 0)) fail(op, "output_padding is only used by transposed convolutions");
  if (oph >= sh && oph >= dh) fail(op, "output_padding {} must be smaller than stride {} or dilation {}", oph, sh, dh);
  if (opw >= sw && opw >= dw) fail(op, "output_padding {} must be smaller than stride {} or dilation {}", opw, sw, dw);

  // Work in 2-d, batched form from here on.
  const bool batched = x.dim() == spatial + 2;
  const int64_t n = batched ? x.shape()[0] : 1;
  const int64_t channels = x.shape()[batched ? 1 : 0];
  const int64_t h = one_d ? 1 : x.shape()[x.dim() - 2], w = x.shape()[x.dim() - 1];
  const int64_t kh = one_d ? 1 : weight.shape()[2], kw = weight.shape()[weight.dim() - 1];
  const int64_t groups = c.groups;
  if (kh <= 0 || kw <= 0) fail(op, "kernel size must be positive; got weight shape {}", weight.shape());

  int64_t out_channels = 0;
  if (!c.transposed) {
    if (channels % groups != 0) fail(op, "{} input channels are not divisible by groups {}", channels, groups);
    if (weight.shape()[1] * groups != channels)
      fail(op, "input has {} channels but weight expects {} (groups {})", channels, weight.shape()[1] * groups,
           groups);
    out_channels = weight.shape()[0];
    if (out_channels % groups != 0)
      fail(op, "{} output channels are not divisible by groups {}", out_channels, groups);
  } else {
    if (weight.shape()[0] != channels)
      fail(op, "input has {} channels but weight expects {} (weight shape {}: C_in first)", channels,
           weight.shape()[0], weight.shape());
    if (channels % groups != 0) fail(op, "{} input channels are not divisible by groups {}", channels, groups);
    out_channels = weight.shape()[1] * groups;
  }
  if (bias.defined()) {
    check::same_device(op, x, bias);
    if (bias.dtype() != x.dtype()) fail(op, "bias dtype {} differs from input dtype {}", bias.dtype(), x.dtype());
    if (bias.dim() != 1 || bias.shape()[0] != out_channels)
      fail(op, "bias shape {} does not match the {} output channels: expected [{}]", bias.shape(), out_channels,
           out_channels);
  }

  const int64_t ekh = dh * (kh - 1) + 1, ekw = dw * (kw - 1) + 1;  // dilated kernel
  int64_t ho = 0, wo = 0;
  if (!c.transposed) {
    if (h + 2 * ph < ekh || w + 2 * pw < ekw) {
      const bool dilated = dh != 1 || dw != 1;
      fail(op, "kernel {}{} is larger than the padded input {}", size_str(kh, kw, one_d),
           dilated ? fmt::format(" (dilated {})", size_str(ekh, ekw, one_d)) : std::string(),
           size_str(h + 2 * ph, w + 2 * pw, one_d));
    }
    ho = (h + 2 * ph - ekh) / sh + 1;
    wo = (w + 2 * pw - ekw) / sw + 1;
  } else {
    ho = (h - 1) * sh - 2 * ph + ekh + oph;
    wo = (w - 1) * sw - 2 * pw + ekw + opw;
  }
  if (h <= 0 || w <= 0 || ho <= 0 || wo <= 0)
    fail(op, "output size {} is not positive (input {}, kernel {}, stride {}, padding {}, dilation {})",
         size_str(ho, wo, one_d), size_str(h, w, one_d), size_str(kh, kw, one_d), attr_str(sh, sw, one_d),
         attr_str(ph, pw, one_d), attr_str(dh, dw, one_d));

  Conv2dParams p;
  p.stride[0] = sh, p.stride[1] = sw;
  p.padding[0] = ph, p.padding[1] = pw;
  p.dilation[0] = dh, p.dilation[1] = dw;
  p.output_padding[0] = oph, p.output_padding[1] = opw;
  p.groups = groups;
  return {p, Shape{n, out_channels, ho, wo}};
}

/// Contiguous operand for a kernel (no autograd: runs inside forward/backward).
Tensor dense(const Tensor& t) { return t.is_contiguous() ? t : t.clone(); }

/// Sum of g (N, C, H, W) over N, H and W: the bias gradient (C).
Tensor bias_grad(const char* op, const Tensor& g) {
  const int64_t c = g.shape()[1];
  Tensor gb = empty({c}, g.dtype(), g.device());
  backend(g.device(), op).reduce(ReduceOp::Sum, g, gb.view({1, c, 1, 1}));
  return gb;
}

struct ConvCtx : OpContext {
  Conv2dParams p;
};

/// x: (N, C_in, H, W), weight: (C_out, C_in/groups, kH, kW) -> (N, C_out, H_out, W_out).
struct Conv2dOp {
  static constexpr const char* name = "conv2d";
  using Ctx = ConvCtx;
  static Tensor forward(Ctx* ctx, const Tensor& x_in, const Tensor& w_in, const Tensor& bias,
                        const Conv2dParams& p, const Shape& out_shape) {
    Tensor x = dense(x_in), w = dense(w_in);
    Tensor out = empty(out_shape, x.dtype(), x.device());
    // A `latent quantize` run's weight (ops/quantize.h): no tape node, so the int8 kernel may run.
    if (!ctx && detail::quantization_active() && detail::conv_inference_int8(x, w, bias, p, false, out)) return out;
    backend(x.device(), name).conv2d(x, w, bias.defined() ? dense(bias) : bias, out, p);
    if (ctx) {
      ctx->p = p;
      ctx->save(x, w);
    }
    return out;
  }
  static std::array<Tensor, 3> backward(const Ctx& ctx, const Tensor& g_in) {
    auto [x, w] = ctx.saved<2>(name);
    Tensor g = dense(g_in);
    Backend& be = backend(g.device(), name);
    Tensor gx, gw, gb;
    if (ctx.needs_grad(0)) {
      gx = empty(x.shape(), x.dtype(), x.device());
      be.conv2d_backward_input(g, w, gx, ctx.p);
    }
    if (ctx.needs_grad(1)) {
      gw = empty(w.shape(), w.dtype(), w.device());
      be.conv2d_backward_weight(g, x, gw, ctx.p);
    }
    if (ctx.needs_grad(2)) gb = bias_grad(name, g);
    return {gx, gw, gb};
  }
};

/// x: (N, C_in, H, W), weight: (C_in, C_out/groups, kH, kW) -> (N, C_out, H_out, W_out): the
/// adjoint of conv2d with the same weight, so every direction is one of conv2d's kernels.
struct ConvTranspose2dOp {
  static constexpr const char* name = "conv_transpose2d";
  using Ctx = ConvCtx;
  static Tensor forward(Ctx* ctx, const Tensor& x_in, const Tensor& w_in, const Tensor& bias,
                        const Conv2dParams& p, const Shape& out_shape) {
    Tensor x = dense(x_in), w = dense(w_in);
    Backend& be = backend(x.device(), name);
    Tensor out = empty(out_shape, x.dtype(), x.device());
    if (!ctx && detail::quantization_active() && detail::conv_inference_int8(x, w, bias, p, true, out)) return out;
    be.conv2d_backward_input(x, w, out, p);
    // out + 1 * bias, broadcast over N, H and W
    if (bias.defined()) be.binary(BinaryOp::Add, out, bias.view({1, out_shape[1], 1, 1}), out, 1.0, 0.0);
    if (ctx) {
      ctx->p = p;
      ctx->save(x, w);
    }
    return out;
  }
  static std::array<Tensor, 3> backward(const Ctx& ctx, const Tensor& g_in) {
    auto [x, w] = ctx.saved<2>(name);
    Tensor g = dense(g_in);
    Backend& be = backend(g.device(), name);
    Tensor gx, gw, gb;
    if (ctx.needs_grad(0)) {
      gx = empty(x.shape(), x.dtype(), x.device());
      be.conv2d(g, w, Tensor(), gx, ctx.p);  // g plays conv2d's input, gx its output
    }
    if (ctx.needs_grad(1)) {
      gw = empty(w.shape(), w.dtype(), w.device());
      be.conv2d_backward_weight(x, g, gw, ctx.p);  // x plays conv2d's output gradient, g its input
    }
    if (ctx.needs_grad(2)) gb = bias_grad(name, g);
    return {gx, gw, gb};
  }
};

/// Shared entry of the four public functions: checks, then views 1-d and unbatched calls as
/// batched 2-d ones, applies the op and views the result back.
Tensor conv_any(const ConvCall& c, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  auto [p, out_shape] = check_conv(c, x, weight, bias);
  const int spatial = c.one_d ? 1 : 2;
  const bool batched = x.dim() == spatial + 2;
  Tensor x4 = batched ? x : unsqueeze(x, 0);
  Tensor w4 = weight;
  if (c.one_d) {
    x4 = unsqueeze(x4, 2);
    w4 = unsqueeze(weight, 2);
  }
  Tensor out = c.transposed ? apply<ConvTranspose2dOp>(x4, w4, bias, p, out_shape)
                            : apply<Conv2dOp>(x4, w4, bias, p, out_shape);
  if (c.one_d) out = squeeze(out, 2);
  if (!batched) out = squeeze(out, 0);
  return out;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride, Pair padding, Pair dilation,
              int64_t groups) {
  return conv_any({"conv2d", false, false, stride, padding, dilation, 0, groups}, x, weight, bias);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride, Pair padding,
                        Pair output_padding, int64_t groups, Pair dilation) {
  return conv_any({"conv_transpose2d", false, true, stride, padding, dilation, output_padding, groups}, x, weight,
                  bias);
}

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
              int64_t dilation, int64_t groups) {
  return conv_any({"conv1d", true, false, {1, stride}, {0, padding}, {1, dilation}, 0, groups}, x, weight, bias);
}

Tensor conv_transpose1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
                        int64_t output_padding, int64_t groups, int64_t dilation) {
  return conv_any({"conv_transpose1d", true, true, {1, stride}, {0, padding}, {1, dilation}, {0, output_padding},
                   groups},
                  x, weight, bias);
}

}  // namespace latent
