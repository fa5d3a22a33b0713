// ONNX's QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear (see quantize.h): loops over
// (outer, channel, inner) blocks so per-tensor and per-axis parameters share one path.
#include <algorithm>
#include <cmath>
#include <limits>

#include "creation.h"
#include "quantize.h"

namespace latent {

namespace {

struct AxisParams {
  std::vector<float> scale;
  std::vector<double> zero;
  int64_t outer = 1, channels = 1, inner = 1;  // x viewed as (outer, channels, inner)
};

// Validates scale/zero against x and axis; per tensor when scale has one value.
AxisParams axis_params(const char* op, const Tensor& x, const Tensor& scale, const Tensor& zero, int64_t axis) {
  if (!x.defined()) fail(op, "input is undefined");
  if (!scale.defined()) fail(op, "scale is undefined");
  if (scale.dim() > 1) fail(op, "scale must be a scalar or 1-d; got shape {}", scale.shape());
  if (zero.defined() && zero.numel() != scale.numel())
    fail(op, "zero point has {} values but scale has {}", zero.numel(), scale.numel());
  AxisParams p;
  p.scale = scale.to(kFloat32).contiguous().to_vector<float>();
  for (float s : p.scale)
    if (!(s > 0.0f) || !std::isfinite(s)) fail(op, "scale must be positive and finite; got {}", s);
  p.zero = zero.defined() ? zero.contiguous().to_vector<double>() : std::vector<double>(p.scale.size(), 0.0);
  const int64_t n = int64_t(p.scale.size());
  if (n == 1) {
    p.outer = 1, p.channels = 1, p.inner = x.numel();
    return p;
  }
  const int64_t rank = x.dim();
  if (axis < -rank || axis >= rank) fail(op, "axis {} is out of range for input shape {}", axis, x.shape());
  if (axis < 0) axis += rank;
  if (x.size(int(axis)) != n)
    fail(op, "per-axis scale has {} values but input shape {} has {} along axis {}", n, x.shape(), x.size(int(axis)), axis);
  p.channels = n;
  for (int64_t d = 0; d < axis; ++d) p.outer *= x.size(int(d));
  for (int64_t d = axis + 1; d < rank; ++d) p.inner *= x.size(int(d));
  return p;
}

template <class Q, class X, class Div>
void quantize_loop(const X* x, Q* q, const AxisParams& p, Div divide) {
  constexpr double lo = std::numeric_limits<Q>::min(), hi = std::numeric_limits<Q>::max();
  for (int64_t o = 0; o < p.outer; ++o) {
    for (int64_t c = 0; c < p.channels; ++c) {
      const int64_t base = (o * p.channels + c) * p.inner;
      const double zero = p.zero[size_t(c)];
      const float s = p.scale[size_t(c)];
      for (int64_t i = 0; i < p.inner; ++i) {
        const double v = std::nearbyint(divide(x[base + i], s)) + zero;  // default rounding: half to even
        q[base + i] = static_cast<Q>(std::isnan(v) ? zero : std::clamp(v, lo, hi));
      }
    }
  }
}

}  // namespace

Tensor quantize_linear(const Tensor& x_in, const Tensor& scale, const Tensor& zero, int64_t axis) {
  constexpr const char* op = "quantize_linear";
  const DType out = zero.defined() ? zero.dtype() : kUInt8;
  if (out != kUInt8 && out != kInt8) fail(op, "zero point must be uint8 or int8; got {}", dtype_name(out));
  if (!x_in.defined()) fail(op, "input is undefined");
  const DType xt = x_in.dtype();
  if (xt != kFloat32 && xt != kFloat64 && xt != kInt32)
    fail(op, "input must be float32, float64 or int32; got {}", dtype_name(xt));
  const AxisParams p = axis_params(op, x_in, scale, zero, axis);
  Tensor q = empty(x_in.shape(), out);
  auto run = [&](auto* qp) {
    if (xt == kFloat32) {
      const Tensor x = x_in.contiguous();
      quantize_loop(x.data_ptr<float>(), qp, p, [](float v, float s) { return double(v / s); });
    } else {
      const Tensor x = x_in.to(kFloat64).contiguous();
      quantize_loop(x.data_ptr<double>(), qp, p, [](double v, float s) { return v / double(s); });
    }
  };
  if (out == kUInt8) run(q.data_ptr<uint8_t>());
  else run(q.data_ptr<int8_t>());
  return q;
}

Tensor dequantize_linear(const Tensor& q_in, const Tensor& scale, const Tensor& zero, int64_t axis) {
  constexpr const char* op = "dequantize_linear";
  if (!q_in.defined()) fail(op, "input is undefined");
  const DType qt = q_in.dtype();
  if (qt != kUInt8 && qt != kInt8 && qt != kInt32) fail(op, "input must be uint8, int8 or int32; got {}", dtype_name(qt));
  if (zero.defined() && zero.dtype() != qt)
    fail(op, "zero point dtype {} differs from the input's {}", dtype_name(zero.dtype()), dtype_name(qt));
  const AxisParams p = axis_params(op, q_in, scale, zero, axis);
  const std::vector<double> qv = q_in.contiguous().to_vector<double>();
  Tensor y = empty(q_in.shape(), kFloat32);
  float* py = y.data_ptr<float>();
  for (int64_t o = 0; o < p.outer; ++o) {
    for (int64_t c = 0; c < p.channels; ++c) {
      const int64_t base = (o * p.channels + c) * p.inner;
      const int64_t zero_c = int64_t(p.zero[size_t(c)]);
      for (int64_t i = 0; i < p.inner; ++i)
        py[base + i] = static_cast<float>(int64_t(qv[size_t(base + i)]) - zero_c) * p.scale[size_t(c)];
    }
  }
  return y;
}

DynamicQuantized dynamic_quantize_linear(const Tensor& x_in) {
  constexpr const char* op = "dynamic_quantize_linear";
  if (!x_in.defined() || x_in.dtype() != kFloat32)
    fail(op, "input must be float32; got {}", x_in.defined() ? dtype_name(x_in.dtype()) : "undefined");
  const Tensor x = x_in.contiguous();
  const float* px = x.data_ptr<float>();
  float lo = 0.0f, hi = 0.0f;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (!std::isfinite(px[i])) fail(op, "input element {} is {}: the range must be finite", i, px[i]);
    lo = std::min(lo, px[i]);
    hi = std::max(hi, px[i]);
  }
  float s = (hi - lo) / 255.0f;
  if (!(s > 0.0f)) s = 1.0f;
  const float zero = std::clamp(std::nearbyint(0.0f - lo / s), 0.0f, 255.0f);
  DynamicQuantized out;
  out.scale = full({}, s, kFloat32);
  out.zero = full({}, zero, kFloat32).to(kUInt8);
  out.q = quantize_linear(x, out.scale, out.zero);
  return out;
}

}  // namespace latent
