// Pooling, resampling, padding, batch_norm, dropout and pixel_shuffle (see nn_ops.h).
//
// Pooling and resampling are op structs over the backend kernels (ops/backend.h); their public
// functions validate, view the input as (N, C, H, W) (1-d ops add H = 1, unbatched ones N = 1)
// and undo that view on the output, so every kernel sees one layout. pad, batch_norm, dropout and
// pixel_shuffle are composites of differentiable ops (narrow, cat, index_select, mean, mul,
// reshape, permute), so their backward passes come from those ops and need no code here.
#include "nn_ops.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "apply.h"
#include "backend.h"
#include "check.h"
#include "creation.h"
#include "elementwise.h"
#include "index.h"
#include "trace.h"
#include "join.h"
#include "reduce.h"
#include "shape_ops.h"

namespace latent {
namespace {

// ---- shared checks ----

/// "3x2", or "2" for a 1-d op (whose height is the dummy 1).
std::string hw(int spatial, int64_t h, int64_t w) {
  return spatial == 1 ? fmt::format("{}", w) : fmt::format("{}x{}", h, w);
}

/// x viewed as (N, C, H, W): checks the rank ("[max_pool2d] expects a 4-d input (N, C, H, W) ...")
/// and dtype, then adds H = 1 for 1-d ops and N = 1 for unbatched inputs (when allowed).
Tensor as_nchw(const char* op, const Tensor& x, int spatial, bool allow_unbatched, bool& unbatched) {
  check::defined(op, x);
  const int rank = spatial + 2;
  unbatched = allow_unbatched && x.dim() == rank - 1;
  if (x.dim() != rank && !unbatched) {
    const char* layout = spatial == 2 ? "(N, C, H, W)" : "(N, C, L)";
    if (allow_unbatched)
      fail(op, "expects a {}-d input {} or an unbatched {}-d one {}; got shape {}", rank, layout, rank - 1,
           spatial == 2 ? "(C, H, W)" : "(C, L)", x.shape());
    fail(op, "expects a {}-d input {}; got shape {}", rank, layout, x.shape());
  }
  check::floating(op, x);
  Tensor t = unbatched ? unsqueeze(x, 0) : x;
  return spatial == 1 ? unsqueeze(t, 2) : t;
}

/// Undoes as_nchw on an output.
Tensor from_nchw(const Tensor& y, int spatial, bool unbatched) {
  Tensor t = spatial == 1 ? squeeze(y, 2) : y;
  return unbatched ? squeeze(t, 0) : t;
}

/// PyTorch's pooling_output_shape; the caller has checked that the dilated kernel fits the padded input.
int64_t pooled_size(int64_t in, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation, bool ceil_mode) {
  const int64_t span = in + 2 * padding - dilation * (kernel - 1) - 1;  // >= 0
  int64_t out = (span + (ceil_mode ? stride - 1 : 0)) / stride + 1;
  // In ceil mode the last window must start inside the input or the left padding.
  if (ceil_mode && (out - 1) * stride >= in + padding) --out;
  return out;
}

/// Validates pooling attributes against x: (N, C, H, W) and returns the kernel parameters and output
/// shape. 1-d ops pass height attributes {1, 1, 0, 1}, and messages show their width alone.
Pool2dParams pool_params(const char* op, int spatial, const Tensor& x, Pair kernel, Pair stride, Pair padding,
                         Pair dilation, bool ceil_mode, bool count_include_pad, Shape& out_shape) {
  auto show = [spatial](Pair v) { return hw(spatial, v.h, v.w); };
  if (kernel.h <= 0 || kernel.w <= 0) fail(op, "kernel size must be positive; got {}", show(kernel));
  if (stride.h < 0 || stride.w < 0) fail(op, "stride must be positive (or 0 for the kernel size); got {}", show(stride));
  if (stride.h == 0) stride.h = kernel.h;
  if (stride.w == 0) stride.w = kernel.w;
  if (padding.h < 0 || padding.w < 0) fail(op, "padding must be non-negative; got {}", show(padding));
  if (dilation.h <= 0 || dilation.w <= 0) fail(op, "dilation must be positive; got {}", show(dilation));
  if (padding.h > kernel.h / 2 || padding.w > kernel.w / 2)
    fail(op, "padding {} must be at most half the kernel size {}", show(padding), show(kernel));
  const int64_t in_h = x.shape()[2], in_w = x.shape()[3];
  const Pair extent{dilation.h * (kernel.h - 1) + 1, dilation.w * (kernel.w - 1) + 1};
  const Pair padded{in_h + 2 * padding.h, in_w + 2 * padding.w};
  if (extent.h > padded.h || extent.w > padded.w) {
    const std::string input = padding == Pair(0) ? std::string()
                                                 : fmt::format(" (input {}, padding {})", hw(spatial, in_h, in_w),
                                                               show(padding));
    if (dilation == Pair(1))
      fail(op, "kernel {} is larger than the padded input {}{}", show(kernel), show(padded), input);
    fail(op, "kernel {} with dilation {} spans {}, larger than the padded input {}{}", show(kernel), show(dilation),
         show(extent), show(padded), input);
  }
  Pool2dParams p;
  p.kernel[0] = kernel.h, p.kernel[1] = kernel.w;
  p.stride[0] = stride.h, p.stride[1] = stride.w;
  p.padding[0] = padding.h, p.padding[1] = padding.w;
  p.dilation[0] = dilation.h, p.dilation[1] = dilation.w;
  p.ceil_mode = ceil_mode;
  p.count_include_pad = count_include_pad;
  out_shape = {x.shape()[0], x.shape()[1], pooled_size(in_h, kernel.h, stride.h, padding.h, dilation.h, ceil_mode),
               pooled_size(in_w, kernel.w, stride.w, padding.w, dilation.w, ceil_mode)};
  return p;
}

/// Output size and input plane of adaptive pooling and resampling are both non-empty.
void check_sizes(const char* op, int spatial, const Tensor& x, Pair size) {
  if (size.h <= 0 || size.w <= 0) fail(op, "output size must be positive; got {}", hw(spatial, size.h, size.w));
  if (x.shape()[2] == 0 || x.shape()[3] == 0)
    fail(op, "input size {} must be non-zero", hw(spatial, x.shape()[2], x.shape()[3]));
}

// ---- op structs; x: (N, C, H, W), any strides (made contiguous for the kernels) ----

template <const char* kName>
struct MaxPoolOp {
  static constexpr const char* name = kName;
  struct Ctx : OpContext {
    Shape input_shape;
  };
  static Tensor forward(Ctx* ctx, const Tensor& x, const Pool2dParams& p, const Shape& out_shape, Tensor* indices_out) {
    Tensor out = empty(out_shape, x.dtype(), x.device());
    Tensor indices = empty(out_shape, kInt64, x.device());
    if (out.numel() > 0) backend(x.device(), name).max_pool2d(contiguous(x), out, indices, p);
    if (ctx) {
      ctx->input_shape = x.shape();
      ctx->save(indices);
    }
    *indices_out = indices;
    return out;
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    Tensor indices = ctx.saved(0, name);
    Tensor grad = empty(ctx.input_shape, g.dtype(), g.device());
    if (grad.numel() > 0) backend(g.device(), name).max_pool2d_backward(contiguous(g), indices, grad);
    return {grad};
  }
};

template <const char* kName>
struct AvgPoolOp {
  static constexpr const char* name = kName;
  struct Ctx : OpContext {
    Shape input_shape;
    Pool2dParams params;
  };
  static Tensor forward(Ctx* ctx, const Tensor& x, const Pool2dParams& p, const Shape& out_shape) {
    Tensor out = empty(out_shape, x.dtype(), x.device());
    if (out.numel() > 0) backend(x.device(), name).avg_pool2d(contiguous(x), out, p);
    if (ctx) {
      ctx->input_shape = x.shape();
      ctx->params = p;
    }
    return out;
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    Tensor grad = empty(ctx.input_shape, g.dtype(), g.device());
    if (grad.numel() > 0) backend(g.device(), name).avg_pool2d_backward(contiguous(g), grad, ctx.params);
    return {grad};
  }
};

template <const char* kName>
struct AdaptiveAvgPoolOp {
  static constexpr const char* name = kName;
  struct Ctx : OpContext {
    Shape input_shape;
  };
  static Tensor forward(Ctx* ctx, const Tensor& x, const Shape& out_shape) {
    Tensor out = empty(out_shape, x.dtype(), x.device());
    if (out.numel() > 0) backend(x.device(), name).adaptive_avg_pool2d(contiguous(x), out);
    if (ctx) ctx->input_shape = x.shape();
    return out;
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    Tensor grad = empty(ctx.input_shape, g.dtype(), g.device());
    if (grad.numel() > 0) backend(g.device(), name).adaptive_avg_pool2d_backward(contiguous(g), grad);
    return {grad};
  }
};

template <const char* kName, bool kBilinear>
struct UpsampleOp {
  static constexpr const char* name = kName;
  struct Ctx : OpContext {
    Shape input_shape;
    bool align_corners = false;
  };
  static Tensor forward(Ctx* ctx, const Tensor& x, const Shape& out_shape, bool align_corners) {
    Tensor out = empty(out_shape, x.dtype(), x.device());
    if (out.numel() > 0) backend(x.device(), name).upsample2d(contiguous(x), out, kBilinear, align_corners);
    if (ctx) {
      ctx->input_shape = x.shape();
      ctx->align_corners = align_corners;
    }
    return out;
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    Tensor grad = empty(ctx.input_shape, g.dtype(), g.device());
    if (grad.numel() > 0)
      backend(g.device(), name).upsample2d_backward(contiguous(g), grad, kBilinear, ctx.align_corners);
    return {grad};
  }
};

constexpr char kMaxPool2d[] = "max_pool2d", kMaxPool1d[] = "max_pool1d";
constexpr char kAvgPool2d[] = "avg_pool2d", kAvgPool1d[] = "avg_pool1d";
constexpr char kAdaptive2d[] = "adaptive_avg_pool2d", kAdaptive1d[] = "adaptive_avg_pool1d";
constexpr char kNearest[] = "upsample_nearest2d", kBilinear[] = "upsample_bilinear2d";

template <const char* kName>
std::tuple<Tensor, Tensor> max_pool(int spatial, const Tensor& x, Pair kernel, Pair stride, Pair padding,
                                    Pair dilation, bool ceil_mode) {
  bool unbatched = false;
  Tensor x4 = as_nchw(kName, x, spatial, true, unbatched);
  Shape out_shape;
  Pool2dParams p = pool_params(kName, spatial, x4, kernel, stride, padding, dilation, ceil_mode, true, out_shape);
  Tensor indices;
  Tensor out = apply<MaxPoolOp<kName>>(x4, p, out_shape, &indices);
  return {from_nchw(out, spatial, unbatched), from_nchw(indices, spatial, unbatched)};
}

template <const char* kName>
Tensor avg_pool(int spatial, const Tensor& x, Pair kernel, Pair stride, Pair padding, bool ceil_mode,
                bool count_include_pad) {
  bool unbatched = false;
  Tensor x4 = as_nchw(kName, x, spatial, true, unbatched);
  Shape out_shape;
  Pool2dParams p = pool_params(kName, spatial, x4, kernel, stride, padding, 1, ceil_mode, count_include_pad, out_shape);
  return from_nchw(apply<AvgPoolOp<kName>>(x4, p, out_shape), spatial, unbatched);
}

template <const char* kName>
Tensor adaptive_avg_pool(int spatial, const Tensor& x, Pair size) {
  bool unbatched = false;
  Tensor x4 = as_nchw(kName, x, spatial, true, unbatched);
  check_sizes(kName, spatial, x4, size);
  Shape out_shape{x4.shape()[0], x4.shape()[1], size.h, size.w};
  return from_nchw(apply<AdaptiveAvgPoolOp<kName>>(x4, out_shape), spatial, unbatched);
}

template <const char* kName, bool kBilinear>
Tensor upsample(const Tensor& x, Pair size, bool align_corners) {
  bool unbatched = false;
  Tensor x4 = as_nchw(kName, x, 2, false, unbatched);
  check_sizes(kName, 2, x4, size);
  Shape out_shape{x4.shape()[0], x4.shape()[1], size.h, size.w};
  return apply<UpsampleOp<kName, kBilinear>>(x4, out_shape, align_corners);
}

}  // namespace

// ---- pooling ----

Tensor max_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding, Pair dilation, bool ceil_mode) {
  return std::get<0>(max_pool<kMaxPool2d>(2, x, kernel, stride, padding, dilation, ceil_mode));
}
std::tuple<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, Pair kernel, Pair stride, Pair padding,
                                                   Pair dilation, bool ceil_mode) {
  return max_pool<kMaxPool2d>(2, x, kernel, stride, padding, dilation, ceil_mode);
}
Tensor avg_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding, bool ceil_mode, bool count_include_pad) {
  return avg_pool<kAvgPool2d>(2, x, kernel, stride, padding, ceil_mode, count_include_pad);
}
Tensor adaptive_avg_pool2d(const Tensor& x, Pair output_size) {
  return adaptive_avg_pool<kAdaptive2d>(2, x, output_size);
}

Tensor max_pool1d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation, bool ceil_mode) {
  return std::get<0>(max_pool1d_with_indices(x, kernel, stride, padding, dilation, ceil_mode));
}
std::tuple<Tensor, Tensor> max_pool1d_with_indices(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding,
                                                   int64_t dilation, bool ceil_mode) {
  // With H = 1 the flat index h * W + w is the position in L.
  return max_pool<kMaxPool1d>(1, x, {1, kernel}, {1, stride}, {0, padding}, {1, dilation}, ceil_mode);
}
Tensor avg_pool1d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode,
                  bool count_include_pad) {
  return avg_pool<kAvgPool1d>(1, x, {1, kernel}, {1, stride}, {0, padding}, ceil_mode, count_include_pad);
}
Tensor adaptive_avg_pool1d(const Tensor& x, int64_t output_size) {
  return adaptive_avg_pool<kAdaptive1d>(1, x, {1, output_size});
}

// ---- resampling ----

Tensor upsample_nearest2d(const Tensor& x, Pair size) { return upsample<kNearest, false>(x, size, false); }
Tensor upsample_bilinear2d(const Tensor& x, Pair size, bool align_corners) {
  return upsample<kBilinear, true>(x, size, align_corners);
}

Tensor interpolate(const Tensor& x, double scale_factor, InterpolateMode mode, bool align_corners) {
  const char* op = "interpolate";
  check::defined(op, x);
  if (x.dim() != 4) fail(op, "expects a 4-d input (N, C, H, W); got shape {}", x.shape());
  if (!(scale_factor > 0) || !std::isfinite(scale_factor))
    fail(op, "scale_factor must be positive and finite; got {}", scale_factor);
  if (mode == InterpolateMode::Nearest && align_corners)
    fail(op, "align_corners applies to the bilinear mode only, not nearest");
  // Python's floor(float(size) * scale_factor), as F.interpolate computes it.
  const auto scaled = [&](int64_t size) {
    return static_cast<int64_t>(std::floor(static_cast<double>(size) * scale_factor));
  };
  const int64_t h = scaled(x.shape()[2]), w = scaled(x.shape()[3]);
  if (h <= 0 || w <= 0)
    fail(op, "scale_factor {} turns input size {}x{} into {}x{}; the output size must be positive", scale_factor,
         x.shape()[2], x.shape()[3], h, w);
  return mode == InterpolateMode::Nearest ? upsample_nearest2d(x, {h, w}) : upsample_bilinear2d(x, {h, w}, align_corners);
}

// ---- padding ----

namespace {
/// Constant padding of one dim: narrow for negative pads, cat with filled blocks for positive ones.
Tensor pad_constant(Tensor t, int dim, int64_t before, int64_t after, double value) {
  if (before < 0) {
    t = narrow(t, dim, -before, t.shape()[dim] + before);
    before = 0;
  }
  if (after < 0) {
    t = narrow(t, dim, 0, t.shape()[dim] + after);
    after = 0;
  }
  if (before == 0 && after == 0) return t;
  auto block = [&](int64_t size) {
    Shape shape = t.shape();
    shape[dim] = size;
    return full(shape, value, t.dtype(), t.device());
  };
  std::vector<Tensor> parts;
  if (before > 0) parts.push_back(block(before));
  parts.push_back(t);
  if (after > 0) parts.push_back(block(after));
  return cat(parts, dim);
}
/// Ops traced as one though composed of others (trace::composite): their names.
struct PadOp {
  static constexpr const char* name = "pad";
};
struct BatchNormEvalOp {
  static constexpr const char* name = "batch_norm";
};

}  // namespace

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode, double value) {
  const char* op = "pad";
  check::defined(op, x);
  if (pads.size() % 2 != 0)
    fail(op, "pads must hold (before, after) pairs, last dim first; got {} values", pads.size());
  if (static_cast<int64_t>(pads.size() / 2) > x.dim())
    fail(op, "{} pads cover {} dims but the input has {} (shape {})", pads.size(), pads.size() / 2, x.dim(), x.shape());
  if (mode != PadMode::Constant && value != 0)
    fail(op, "a fill value ({}) is only used by constant padding, not {}", value,
         mode == PadMode::Reflect ? "reflect" : "replicate");
  // Traced as one op (the exporter writes one Pad node), not as its slices and concatenations.
  return trace::composite<PadOp>({x}, {trace::to_attr(pads), trace::to_attr(mode), trace::to_attr(value)}, [&] {
    Tensor out = x;
    for (size_t i = 0; i < pads.size() / 2; ++i) {
      const int dim = x.dim() - 1 - static_cast<int>(i);
      const int64_t before = pads[2 * i], after = pads[2 * i + 1], n = x.shape()[dim];
      const int64_t size = n + before + after;
      if (size < 0)
        fail(op, "padding ({}, {}) of dim {} leaves a negative size {} (input shape {})", before, after, dim, size,
             x.shape());
      if (before == 0 && after == 0) continue;
      if (mode == PadMode::Constant) {
        out = pad_constant(out, dim, before, after, value);
        continue;
      }
      if (mode == PadMode::Reflect && (before >= n || after >= n))
        fail(op, "reflect padding ({}, {}) of dim {} must be smaller than its size {} (input shape {})", before, after,
             dim, n, x.shape());
      if (mode == PadMode::Replicate && n == 0)
        fail(op, "cannot replicate-pad dim {} of size 0 (input shape {})", dim, x.shape());
      // Output position j reads input position j - before, mirrored or clamped into [0, n).
      std::vector<int64_t> index(static_cast<size_t>(size));
      for (int64_t j = 0; j < size; ++j) {
        int64_t k = j - before;
        if (mode == PadMode::Reflect) k = k < 0 ? -k : k >= n ? 2 * (n - 1) - k : k;
        else k = std::clamp<int64_t>(k, 0, n - 1);
        index[static_cast<size_t>(j)] = k;
      }
      out = index_select(out, dim, from_vector(index, {size}).to(x.device()));
    }
    return out;
  });
}

// ---- normalization and regularization ----

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  check::defined(op, x);
  if (x.dim() < 2) fail(op, "expects an input of shape (N, C) or (N, C, ...); got shape {}", x.shape());
  check::floating(op, x);
  const int64_t channels = x.shape()[1];
  auto check_channel_tensor = [&](const Tensor& t, const char* what) {
    if (!t.defined()) return;
    check::same_device(op, x, t);
    if (!t.is_floating_point()) fail(op, "{} has dtype {}: expected float32 or float64", what, t.dtype());
    if (t.dim() != 1 || t.shape()[0] != channels)
      fail(op, "{} has shape {} but the input has {} channels (input shape {}); expected shape [{}]", what, t.shape(),
           channels, x.shape(), channels);
  };
  check_channel_tensor(running_mean, "running_mean");
  check_channel_tensor(running_var, "running_var");
  check_channel_tensor(weight, "weight");
  check_channel_tensor(bias, "bias");
  Shape dims, channel_shape = Shape::filled(x.dim(), 1);
  channel_shape[1] = channels;
  for (int d = 0; d < x.dim(); ++d)
    if (d != 1) dims.push_back(d);

  // y = (x - mean) * (weight / sqrt(var + eps)) + bias, with the per-channel factor computed on C
  // values so the full-size passes are: mean, subtract, square, mean, multiply, add.
  Tensor centered, inv_std;
  if (training) {
    const int64_t count = channels > 0 ? x.numel() / channels : 0;
    if (count <= 1)
      fail(op, "expected more than 1 value per channel when training; got input shape {}", x.shape());
    Tensor batch_mean = mean(x, dims, true);
    centered = sub(x, batch_mean);
    Tensor var = mean(square(centered), dims, true);  // biased, for normalizing
    inv_std = rdiv(1.0, sqrt(add(var, eps)));
    NoGradGuard no_grad;
    if (running_mean.defined()) {
      Tensor stat = running_mean;
      stat.mul_(1 - momentum).add_(reshape(batch_mean.detach(), {channels}), momentum);
    }
    if (running_var.defined()) {
      // The running variance is unbiased (count / (count - 1)), as in PyTorch.
      Tensor stat = running_var;
      const double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
      stat.mul_(1 - momentum).add_(reshape(var.detach(), {channels}), momentum * unbias);
    }
  } else {
    if (!running_mean.defined() || !running_var.defined())
      fail(op, "running_mean and running_var must be defined in eval mode (training = false)");
    // Traced as one op (the exporter writes one BatchNormalization node), not as its arithmetic.
    return trace::composite<BatchNormEvalOp>({x, running_mean, running_var, weight, bias}, {trace::to_attr(eps)}, [&] {
      Tensor c = sub(x, reshape(running_mean, channel_shape));
      Tensor s = rdiv(1.0, sqrt(add(reshape(running_var, channel_shape), eps)));
      if (weight.defined()) s = mul(s, reshape(weight, channel_shape));
      Tensor y = mul(c, s);
      return bias.defined() ? add(y, reshape(bias, channel_shape)) : y;
    });
  }
  Tensor scale = weight.defined() ? mul(inv_std, reshape(weight, channel_shape)) : inv_std;
  Tensor y = mul(centered, scale);
  return bias.defined() ? add(y, reshape(bias, channel_shape)) : y;
}

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  const char* op = "dropout";
  check::defined(op, x);
  if (!(p >= 0.0 && p <= 1.0)) fail(op, "p must be a probability in [0, 1]; got {}", p);
  check::floating(op, x);
  if (!training || p == 0.0) return x;
  Tensor mask;
  {
    // mask = keep / (1 - p) with keep ~ Bernoulli(1 - p); p = 1 keeps nothing (and avoids 0 * inf).
    NoGradGuard no_grad;
    if (p == 1.0) {
      mask = zeros(x.shape(), x.dtype(), x.device());
    } else {
      mask = lt(rand(x.shape(), x.dtype(), gen), 1.0 - p).to(x.device());
      mask.mul_(1.0 / (1.0 - p));
    }
  }
  return mul(x, mask);
}

// ---- pixel shuffle ----

namespace {
/// Checks a (*, C, H, W) input and a positive factor; returns the product of the leading dims.
int64_t shuffle_batch(const char* op, const Tensor& x, int64_t factor, const char* factor_name) {
  check::defined(op, x);
  if (x.dim() < 3) fail(op, "expects an input of shape (*, C, H, W) with at least 3 dims; got shape {}", x.shape());
  if (factor <= 0) fail(op, "{} must be positive; got {}", factor_name, factor);
  int64_t batch = 1;
  for (int d = 0; d < x.dim() - 3; ++d) batch *= x.shape()[d];
  return batch;
}

/// x's leading dims followed by c, h, w.
Shape with_leading(const Tensor& x, int64_t c, int64_t h, int64_t w) {
  Shape shape;
  for (int d = 0; d < x.dim() - 3; ++d) shape.push_back(x.shape()[d]);
  shape.push_back(c);
  shape.push_back(h);
  shape.push_back(w);
  return shape;
}
}  // namespace

Tensor pixel_shuffle(const Tensor& x, int64_t upscale_factor) {
  const char* op = "pixel_shuffle";
  const int64_t r = upscale_factor, batch = shuffle_batch(op, x, r, "upscale_factor");
  const int64_t c = x.size(-3), h = x.size(-2), w = x.size(-1);
  if (c % (r * r) != 0)
    fail(op, "input channels {} are not divisible by upscale_factor^2 = {} (upscale_factor {}, input shape {})", c,
         r * r, r, x.shape());
  // (B, C', r, r, H, W) -> (B, C', H, r, W, r): out[c', h * r + i, w * r + j] = x[c' * r^2 + i * r + j, h, w].
  Tensor t = permute(reshape(x, {batch, c / (r * r), r, r, h, w}), {0, 1, 4, 2, 5, 3});
  return reshape(t, with_leading(x, c / (r * r), h * r, w * r));
}

Tensor pixel_unshuffle(const Tensor& x, int64_t downscale_factor) {
  const char* op = "pixel_unshuffle";
  const int64_t r = downscale_factor, batch = shuffle_batch(op, x, r, "downscale_factor");
  const int64_t c = x.size(-3), h = x.size(-2), w = x.size(-1);
  if (h % r != 0 || w % r != 0)
    fail(op, "height {} and width {} must be divisible by downscale_factor {} (input shape {})", h, w, r, x.shape());
  Tensor t = permute(reshape(x, {batch, c, h / r, r, w / r, r}), {0, 1, 3, 5, 2, 4});
  return reshape(t, with_leading(x, c * r * r, h / r, w / r));
}

}  // namespace latent
