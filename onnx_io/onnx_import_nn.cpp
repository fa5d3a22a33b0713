// The importer's convolution, pooling, normalization, padding and resampling ops. 1-d ops run as
// 2-d ones with a height of 1. Padding that latent's kernels do not take (asymmetric, or more than
// half the kernel for pooling) is applied with pad() before the kernel runs; resampling is done per
// axis with index_select (nearest) or a blend of two (linear) or four (cubic) index_selects, so every coordinate
// transformation and rounding mode of Resize is exact and differentiable.
#include <algorithm>
#include <cmath>
#include <limits>

#include "../ops/conv.h"
#include "../ops/creation.h"
#include "../ops/elementwise.h"
#include "../ops/index.h"
#include "../ops/join.h"
#include "../ops/nn_ops.h"
#include "../ops/reduce.h"
#include "../ops/shape_ops.h"
#include "onnx_import_ops.h"

namespace latent::onnx::detail {

namespace {

using Inputs = std::vector<Tensor>;

/// Spatial attributes of Conv, ConvTranspose and the pools, resolved for one input.
struct Window {
  std::string auto_pad = "NOTSET";
  std::vector<int64_t> kernel, strides, dilations, pads, output_padding, output_shape;
};

/// Checks the spatial rank (1 or 2) that the node's attributes or input declare, at load time.
void check_spatial_rank(const NodeView& n, const char* what, int weight_input, int64_t max_rank = 2) {
  auto bad = [&](int64_t s) {
    if (s < 1 || s > max_rank) n.error("{}-d {} is not supported (1-d to {}-d only)", s, what, max_rank);
  };
  const int r = n.input_rank(0);
  if (r >= 0) bad(r - 2);
  if (weight_input >= 0) {
    const int w = n.input_rank(size_t(weight_input));
    if (w >= 0) bad(w - 2);
  }
  if (n.has("kernel_shape")) bad(int64_t(n.get_ints("kernel_shape").size()));
}

void read_auto_pad(const NodeView& n, Window& w) {
  w.auto_pad = n.get_string("auto_pad", "NOTSET");
  if (w.auto_pad != "NOTSET" && w.auto_pad != "SAME_UPPER" && w.auto_pad != "SAME_LOWER" && w.auto_pad != "VALID")
    n.error("auto_pad '{}' is not supported (supported: NOTSET, SAME_UPPER, SAME_LOWER, VALID)", w.auto_pad);
  if (w.auto_pad != "NOTSET" && n.has("pads")) n.error("attribute 'pads' cannot be used with auto_pad '{}'", w.auto_pad);
}

/// A list attribute of one value per spatial dim, filled with `fallback` when absent.
std::vector<int64_t> per_dim(const std::vector<int64_t>& v, size_t s, int64_t fallback, const char* name) {
  if (v.empty()) return std::vector<int64_t>(s, fallback);
  if (v.size() != s) fail("onnx import", "attribute '{}' has {} values for {} spatial dims", name, v.size(), s);
  return v;
}

/// SAME padding: output ceil(in / stride); the odd pixel goes at the end (UPPER) or start (LOWER).
void same_pads(const std::string& mode, const Shape& in, const std::vector<int64_t>& k, const std::vector<int64_t>& s,
               const std::vector<int64_t>& d, std::vector<int64_t>& pads) {
  const size_t n = k.size();
  pads.assign(2 * n, 0);
  for (size_t i = 0; i < n; ++i) {
    const int64_t out = (in[int(i)] + s[i] - 1) / s[i];
    const int64_t total = std::max<int64_t>(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in[int(i)]);
    const int64_t small = total / 2, large = total - total / 2;
    pads[i] = mode == "SAME_UPPER" ? small : large;
    pads[i + n] = mode == "SAME_UPPER" ? large : small;
  }
}

/// 1-d input (N, C, L) as (N, C, 1, L), and the attribute lists with a leading {1}/{0}.
struct As2d {
  bool one_d = false;
  Tensor lift(const Tensor& t) const { return one_d ? unsqueeze(t, 2) : t; }
  Tensor lower(const Tensor& t) const { return one_d ? squeeze(t, 2) : t; }
};

Shape spatial(const Tensor& x) {
  Shape s;
  for (int d = 2; d < x.dim(); ++d) s.push_back(x.size(d));
  return s;
}

/// latent pad() order (last dim first) from ONNX begins/ends of the two spatial dims of a 4-d tensor.
std::vector<int64_t> pad2d(int64_t top, int64_t bottom, int64_t left, int64_t right) { return {left, right, top, bottom}; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Conv

namespace {

/// ONNX's 2-d convolution on (N, C, H, W): pads (top, left, bottom, right) latent's kernel does not
/// take (asymmetric) are applied with pad() first.
Tensor onnx_conv2d(Tensor x, const Tensor& weight, const Tensor& bias, const std::vector<int64_t>& st,
                   const std::vector<int64_t>& dl, const std::vector<int64_t>& pads, int64_t group) {
  if (pads[0] == pads[2] && pads[1] == pads[3] && pads[0] >= 0 && pads[1] >= 0)
    return conv2d(x, weight, bias, {st[0], st[1]}, {pads[0], pads[1]}, {dl[0], dl[1]}, group);
  x = pad(x, pad2d(pads[0], pads[2], pads[1], pads[3]));
  return conv2d(x, weight, bias, {st[0], st[1]}, 0, {dl[0], dl[1]}, group);
}

/// (N, C, D, H, W) -> (N * D', C, H, W) of the depth slices `index` (D' of them).
Tensor depth_slices(const Tensor& x, const std::vector<int64_t>& index) {
  const Tensor picked = index_select(x, 2, from_vector(index, Shape{int64_t(index.size())}));
  return reshape(contiguous(permute(picked, {0, 2, 1, 3, 4})), {x.size(0) * int64_t(index.size()), x.size(1), x.size(3), x.size(4)});
}

/// (N * D, C, H, W) -> (N, C, D, H, W).
Tensor from_depth_slices(const Tensor& y, int64_t batch) {
  return permute(reshape(y, {batch, y.size(0) / batch, y.size(1), y.size(2), y.size(3)}), {0, 2, 1, 3, 4});
}

/// A 3-d convolution as a sum over the kernel's depth taps of 2-d convolutions of depth slices:
/// output depth o reads input depth o * stride + j * dilation for tap j (after the depth pads).
Tensor onnx_conv3d(const Tensor& x0, const Tensor& weight, const Tensor& bias, const std::vector<int64_t>& st,
                   const std::vector<int64_t>& dl, const std::vector<int64_t>& pads, int64_t group) {
  const Tensor x = pads[0] != 0 || pads[3] != 0 ? pad(x0, {0, 0, 0, 0, pads[0], pads[3]}) : x0;
  const int64_t kd = weight.size(2), span = dl[0] * (kd - 1) + 1;
  if (x.size(2) < span) fail("onnx import", "Conv: the kernel's depth {} (dilated {}) is larger than the padded input's {}", kd, span, x.size(2));
  const int64_t depth_out = (x.size(2) - span) / st[0] + 1;
  Tensor sum;
  for (int64_t j = 0; j < kd; ++j) {
    std::vector<int64_t> index(static_cast<size_t>(depth_out));
    for (int64_t o = 0; o < depth_out; ++o) index[size_t(o)] = o * st[0] + j * dl[0];
    const Tensor term = onnx_conv2d(depth_slices(x, index), contiguous(select(weight, 2, j)), Tensor(), {st[1], st[2]},
                                    {dl[1], dl[2]}, {pads[1], pads[2], pads[4], pads[5]}, group);
    sum = j == 0 ? term : add(sum, term);
  }
  Tensor y = from_depth_slices(sum, x.size(0));
  if (bias.defined()) y = add(y, reshape(bias, {1, bias.numel(), 1, 1, 1}));
  return y;
}

}  // namespace

ConvFn conv_function(const NodeView& n, int weight_input) {
  check_spatial_rank(n, "convolution", weight_input, 3);
  Window w;
  read_auto_pad(n, w);
  w.kernel = n.get_ints("kernel_shape");
  w.strides = n.get_ints("strides");
  w.dilations = n.get_ints("dilations");
  w.pads = n.get_ints("pads");
  const int64_t group = n.get_int("group", 1);
  const std::string op = n.proto().op_type;
  return [=](const Tensor& x0, const Tensor& weight0, const Tensor& bias) -> Tensor {
    As2d a{x0.dim() == 3};
    if (x0.dim() < 3 || x0.dim() > 5) fail("onnx import", "{} supports 1-d to 3-d inputs; got shape {}", op, x0.shape());
    if (weight0.dim() != x0.dim()) fail("onnx import", "{} weight shape {} does not match input shape {}", op, weight0.shape(), x0.shape());
    const size_t s = size_t(x0.dim() - 2);
    std::vector<int64_t> k(weight0.shape().begin() + 2, weight0.shape().end());
    if (!w.kernel.empty() && w.kernel != k) fail("onnx import", "kernel_shape {} does not match the weight's shape {}", Shape(w.kernel), weight0.shape());
    std::vector<int64_t> st = per_dim(w.strides, s, 1, "strides"), dl = per_dim(w.dilations, s, 1, "dilations");
    std::vector<int64_t> pads = per_dim(w.pads, 2 * s, 0, "pads");
    if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") same_pads(w.auto_pad, spatial(x0), k, st, dl, pads);
    if (s == 3) return onnx_conv3d(x0, weight0, bias, st, dl, pads, group);
    if (s == 1) {  // lift to 2-d
      k.insert(k.begin(), 1), st.insert(st.begin(), 1), dl.insert(dl.begin(), 1);
      pads = {0, pads[0], 0, pads[1]};
    }
    return a.lower(onnx_conv2d(a.lift(x0), a.lift(weight0), bias, st, dl, pads, group));
  };
}

Kernel compile_conv(const NodeView& n) {
  n.allow_attributes({"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
  n.expect_inputs(2, 3);
  n.expect_outputs(1);
  ConvFn conv = conv_function(n, 1);
  return [conv](const Inputs& in) -> Inputs { return {conv(in[0], in[1], in.size() > 2 ? in[2] : Tensor())}; };
}

// ---------------------------------------------------------------------------------------------
// ConvTranspose

namespace {

/// A 3-d transposed convolution: for each depth tap j, the full 2-d transposed convolution of
/// every input depth slice lands at output depth i * stride + j * dilation; the pads are cropped
/// and output_padding added at the end, as for the 2-d full path.
Tensor onnx_conv_transpose3d(const Tensor& x, const Tensor& weight, const Tensor& bias, const std::vector<int64_t>& st,
                             const std::vector<int64_t>& dl, const std::vector<int64_t>& pads, const std::vector<int64_t>& op,
                             int64_t group) {
  const int64_t batch = x.size(0), depth = x.size(2), kd = weight.size(2);
  const int64_t full_depth = (depth - 1) * st[0] + dl[0] * (kd - 1) + 1;
  std::vector<int64_t> all(static_cast<size_t>(depth));
  for (int64_t i = 0; i < depth; ++i) all[size_t(i)] = i;
  const Tensor slices = depth_slices(x, all);
  Tensor y;
  for (int64_t j = 0; j < kd; ++j) {
    Tensor t = from_depth_slices(conv_transpose2d(slices, contiguous(select(weight, 2, j)), {}, {st[1], st[2]}, 0, 0, group,
                                                  {dl[1], dl[2]}),
                                 batch);  // (N, C_out, D, H_full, W_full)
    if (st[0] > 1) {  // input depth i goes to i * stride: zeros between the slices
      Shape gap = t.shape();
      gap[2] = depth * (st[0] - 1);
      Tensor spread = cat({unsqueeze(t, 3), reshape(zeros(gap, t.dtype()), {t.size(0), t.size(1), depth, st[0] - 1, t.size(3), t.size(4)})}, 3);
      t = narrow(reshape(spread, {t.size(0), t.size(1), depth * st[0], t.size(3), t.size(4)}), 2, 0, (depth - 1) * st[0] + 1);
    }
    const int64_t front = j * dl[0];
    t = pad(t, {0, 0, 0, 0, front, full_depth - front - t.size(2)});
    y = j == 0 ? t : add(y, t);
  }
  // Crop the pads (negative pad() values crop) and add output_padding, last dim first.
  y = pad(y, {-pads[2], -pads[5] + op[2], -pads[1], -pads[4] + op[1], -pads[0], -pads[3] + op[0]});
  if (bias.defined()) y = add(y, reshape(bias, {1, bias.numel(), 1, 1, 1}));
  return y;
}

}  // namespace

Kernel compile_conv_transpose(const NodeView& n) {
  n.allow_attributes({"auto_pad", "dilations", "group", "kernel_shape", "output_padding", "output_shape", "pads", "strides"});
  n.expect_inputs(2, 3);
  n.expect_outputs(1);
  check_spatial_rank(n, "transposed convolution", 1, 3);
  Window w;
  read_auto_pad(n, w);
  w.kernel = n.get_ints("kernel_shape");
  w.strides = n.get_ints("strides");
  w.dilations = n.get_ints("dilations");
  w.pads = n.get_ints("pads");
  w.output_padding = n.get_ints("output_padding");
  w.output_shape = n.get_ints("output_shape");
  const int64_t group = n.get_int("group", 1);
  return [=](const Inputs& in) -> Inputs {
    const Tensor& x0 = in[0];
    if (x0.dim() < 3 || x0.dim() > 5)
      fail("onnx import", "ConvTranspose supports 1-d to 3-d inputs; got shape {}", x0.shape());
    if (in[1].dim() != x0.dim())
      fail("onnx import", "ConvTranspose weight shape {} does not match input shape {}", in[1].shape(), x0.shape());
    As2d a{x0.dim() == 3};
    const size_t s = size_t(x0.dim() - 2);
    const Shape sp = spatial(x0);
    std::vector<int64_t> k(in[1].shape().begin() + 2, in[1].shape().end());
    if (!w.kernel.empty() && w.kernel != k) fail("onnx import", "kernel_shape {} does not match the weight's shape {}", Shape(w.kernel), in[1].shape());
    std::vector<int64_t> st = per_dim(w.strides, s, 1, "strides"), dl = per_dim(w.dilations, s, 1, "dilations");
    std::vector<int64_t> op = per_dim(w.output_padding, s, 0, "output_padding");
    std::vector<int64_t> pads = per_dim(w.pads, 2 * s, 0, "pads");
    std::vector<int64_t> out_shape = w.output_shape;
    if (out_shape.size() == s + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
    if (!out_shape.empty() && out_shape.size() != s)
      fail("onnx import", "output_shape has {} values for {} spatial dims", w.output_shape.size(), s);
    if (out_shape.empty() && (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER")) {
      for (size_t i = 0; i < s; ++i) out_shape.push_back(sp[int(i)] * st[i]);
    }
    if (!out_shape.empty()) {  // pads from the requested output size (ONNX's formula)
      for (size_t i = 0; i < s; ++i) {
        const int64_t total = st[i] * (sp[int(i)] - 1) + op[i] + (k[i] - 1) * dl[i] + 1 - out_shape[i];
        // Floor division, as in ONNX's formula (Python): a negative total (output larger than
        // the full result) pads at the end.
        const int64_t small = total >= 0 ? total / 2 : -((-total + 1) / 2), large = total - small;
        pads[i] = w.auto_pad == "SAME_UPPER" ? small : large;
        pads[i + s] = w.auto_pad == "SAME_UPPER" ? large : small;
      }
    }
    if (s == 3) return {onnx_conv_transpose3d(x0, in[1], in.size() > 2 ? in[2] : Tensor(), st, dl, pads, op, group)};
    if (s == 1) {
      k.insert(k.begin(), 1), st.insert(st.begin(), 1), dl.insert(dl.begin(), 1), op.insert(op.begin(), 0);
      pads = {0, pads[0], 0, pads[1]};
    }
    const Tensor x = a.lift(x0), weight = a.lift(in[1]);
    const Tensor bias = in.size() > 2 ? in[2] : Tensor();
    const bool native = pads[0] == pads[2] && pads[1] == pads[3] && pads[0] >= 0 && pads[1] >= 0 &&
                        op[0] < std::max(st[0], dl[0]) && op[1] < std::max(st[1], dl[1]);
    if (native)
      return {a.lower(conv_transpose2d(x, weight, bias, {st[0], st[1]}, {pads[0], pads[1]}, {op[0], op[1]}, group,
                                       {dl[0], dl[1]}))};
    // The full output, then crop the pads (negative pad() values crop) and add output_padding.
    Tensor y = conv_transpose2d(x, weight, {}, {st[0], st[1]}, 0, 0, group, {dl[0], dl[1]});
    y = pad(y, pad2d(-pads[0], -pads[2] + op[0], -pads[1], -pads[3] + op[1]));
    if (bias.defined()) y = add(y, reshape(bias, {1, bias.numel(), 1, 1}));
    return {a.lower(y)};
  };
}

// ---------------------------------------------------------------------------------------------
// MaxPool, AveragePool, GlobalAveragePool

namespace {

/// One 2-d pooling as ONNX defines it on (N, C, H, W): kernel, stride, dilation (h, w), pads
/// (top, left, bottom, right); pads latent's kernels do not take are applied with pad() first.
/// Whether latent's 2-d pooling kernels take these pads (top, left, bottom, right) themselves:
/// symmetric and at most half the window.
bool kernel_takes_pads(const std::vector<int64_t>& k, const std::vector<int64_t>& pads) {
  return pads[0] == pads[2] && pads[1] == pads[3] && pads[0] >= 0 && pads[1] >= 0 && 2 * pads[0] <= k[0] && 2 * pads[1] <= k[1];
}

/// x padded with -inf for a max pooling whose pads the kernel does not take.
Tensor pad_for_max(const Tensor& x, const std::vector<int64_t>& pads) {
  return pad(x, pad2d(pads[0], pads[2], pads[1], pads[3]), PadMode::Constant, -std::numeric_limits<double>::infinity());
}

Tensor onnx_pool2d(Tensor x, bool max_op, const std::vector<int64_t>& k, const std::vector<int64_t>& st,
                   const std::vector<int64_t>& dl, const std::vector<int64_t>& pads, bool ceil_mode, bool count_include_pad) {
  const bool native = kernel_takes_pads(k, pads);
  const Pair kernel{k[0], k[1]}, stride{st[0], st[1]}, dilation{dl[0], dl[1]};
  if (max_op) {
    if (native) return max_pool2d(x, kernel, stride, {pads[0], pads[1]}, dilation, ceil_mode);
    return max_pool2d(pad_for_max(x, pads), kernel, stride, 0, dilation, ceil_mode);
  }
  if (native) return avg_pool2d(x, kernel, stride, {pads[0], pads[1]}, ceil_mode, count_include_pad);
  // Sum over the window divided by the number of counted elements: both as averages over
  // the explicitly padded input, so windows clipped by ceil_mode divide consistently.
  const std::vector<int64_t> p = pad2d(pads[0], pads[2], pads[1], pads[3]);
  Tensor y = avg_pool2d(pad(x, p), kernel, stride, 0, ceil_mode, true);
  if (!count_include_pad) {
    Tensor ones_map = pad(ones({1, 1, x.size(2), x.size(3)}, x.dtype()), p);
    y = div(y, avg_pool2d(ones_map, kernel, stride, 0, ceil_mode, true));
  }
  return y;
}

}  // namespace

Kernel compile_pool(const NodeView& n) {
  const bool max_op = n.proto().op_type == "MaxPool";
  const int v = n.version();
  if (max_op) {
    if (v >= 10)
      n.allow_attributes({"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"});
    else
      n.allow_attributes({"auto_pad", "kernel_shape", "pads", "storage_order", "strides"});
  } else {
    if (v >= 10)
      n.allow_attributes({"auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides"});
    else if (v >= 7)
      n.allow_attributes({"auto_pad", "count_include_pad", "kernel_shape", "pads", "strides"});
    else
      n.allow_attributes({"auto_pad", "kernel_shape", "pads", "strides"});
  }
  n.expect_inputs(1, 1);
  if (max_op && n.has_output(1) && v < 8) n.error("the Indices output exists from opset 8");
  const bool indices = max_op && n.has_output(1);
  n.expect_outputs(indices ? 2 : 1);
  const bool column_major = n.get_int("storage_order", 0) != 0;
  if (!n.has("kernel_shape")) n.error("attribute 'kernel_shape' is required");
  check_spatial_rank(n, "pooling", -1, 3);
  if (indices && n.get_ints("kernel_shape").size() == 3) n.error("the Indices output of 3-d pooling is not supported");
  Window w;
  read_auto_pad(n, w);
  w.kernel = n.get_ints("kernel_shape");
  w.strides = n.get_ints("strides");
  w.dilations = n.get_ints("dilations");
  w.pads = n.get_ints("pads");
  const bool ceil_mode = n.get_int("ceil_mode", 0) != 0;
  const bool count_include_pad = n.get_int("count_include_pad", 0) != 0;
  return [=](const Inputs& in) -> Inputs {
    const Tensor& x0 = in[0];
    const size_t s = w.kernel.size();
    if (x0.dim() != int(s) + 2) fail("onnx import", "kernel_shape has {} values but the input has shape {}", s, x0.shape());
    std::vector<int64_t> k = w.kernel, st = per_dim(w.strides, s, 1, "strides"), dl = per_dim(w.dilations, s, 1, "dilations");
    std::vector<int64_t> pads = per_dim(w.pads, 2 * s, 0, "pads");
    if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") same_pads(w.auto_pad, spatial(x0), k, st, dl, pads);
    if (s == 3) {
      // A box window is separable: pool each depth slice over (H, W), then over D with a (kd, 1)
      // window on (D, H' W'). Max is a max of maxes; an average's sum and its count of counted
      // elements (padding, ceil_mode clipping) both factor over the three axes.
      const int64_t batch = x0.size(0), channels = x0.size(1), depth = x0.size(2);
      Tensor y = onnx_pool2d(reshape(x0, {batch, channels * depth, x0.size(3), x0.size(4)}), max_op, {k[1], k[2]},
                             {st[1], st[2]}, {dl[1], dl[2]}, {pads[1], pads[2], pads[4], pads[5]}, ceil_mode, count_include_pad);
      const int64_t h = y.size(2), wd = y.size(3);
      y = onnx_pool2d(reshape(y, {batch, channels, depth, h * wd}), max_op, {k[0], 1}, {st[0], 1}, {dl[0], 1},
                      {pads[0], 0, pads[3], 0}, ceil_mode, count_include_pad);
      return {reshape(y, {batch, channels, y.size(2), h, wd})};
    }
    As2d a{s == 1};
    if (s == 1) {
      k.insert(k.begin(), 1), st.insert(st.begin(), 1), dl.insert(dl.begin(), 1);
      pads = {0, pads[0], 0, pads[1]};
    }
    Tensor x = a.lift(x0);
    if (!indices) return {a.lower(onnx_pool2d(x, max_op, k, st, dl, pads, ceil_mode, count_include_pad))};
    // ONNX's Indices: positions in the whole unpadded input, row-major (storage_order 0) or with
    // each (H, W) plane column-major (1). max_pool2d_with_indices gives h * W + w within the plane
    // it pooled (the padded one when the pads are applied here).
    const bool native = kernel_takes_pads(k, pads);
    const int64_t height = x.size(2), width = x.size(3);
    const int64_t top = native ? 0 : pads[0], left = native ? 0 : pads[1];
    if (!native) x = pad_for_max(x, pads);
    const Pair padding = native ? Pair{pads[0], pads[1]} : Pair{0, 0};
    auto [values, plane_index] = max_pool2d_with_indices(x, {k[0], k[1]}, {st[0], st[1]}, padding, {dl[0], dl[1]}, ceil_mode);
    const std::vector<int64_t> at = plane_index.to_vector<int64_t>();
    std::vector<int64_t> flat(at.size());
    const int64_t plane_out = values.size(2) * values.size(3), pooled_width = x.size(3);
    for (size_t i = 0; i < at.size(); ++i) {
      const int64_t h = at[i] / pooled_width - top, w = at[i] % pooled_width - left;
      const int64_t plane = int64_t(i) / plane_out;  // n * C + c
      flat[i] = plane * height * width + (column_major ? w * height + h : h * width + w);
    }
    return {a.lower(values), a.lower(from_vector(flat, values.shape()))};
  };
}

Kernel compile_global_average_pool(const NodeView& n) {
  n.allow_attributes({});
  n.expect_inputs(1, 1);
  n.expect_outputs(1);
  return [](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    if (x.dim() < 3) fail("onnx import", "GlobalAveragePool expects (N, C, ...) with spatial dims; got shape {}", x.shape());
    Shape dims;
    for (int d = 2; d < x.dim(); ++d) dims.push_back(d);
    return {mean(x, dims, true)};
  };
}

// ---------------------------------------------------------------------------------------------
// BatchNormalization: running statistics in eval(); in train(), batch statistics and running-stat
// updates (running = momentum * running + (1 - momentum) * batch, ONNX's momentum, default 0.9,
// which is PyTorch's 1 - momentum).

Kernel compile_batch_norm(const NodeView& n) {
  const int v = n.version();
  if (v < 7)
    n.allow_attributes({"epsilon", "is_test", "momentum", "spatial", "consumed_inputs"});
  else if (v < 9)
    n.allow_attributes({"epsilon", "momentum", "spatial"});
  else if (v < 14)
    n.allow_attributes({"epsilon", "momentum"});
  else
    n.allow_attributes({"epsilon", "momentum", "training_mode"});
  n.expect_inputs(5, 5);
  if (n.get_int("spatial", 1) != 1) n.error("spatial = 0 is not supported");
  const bool training_mode = n.get_int("training_mode", 0) != 0;
  n.expect_outputs(training_mode ? 3 : 1);
  const double eps = n.get_float("epsilon", 1e-5f);
  const double momentum = n.get_float("momentum", 0.9f);
  if (!(momentum >= 0.0 && momentum <= 1.0)) n.error("momentum must be in [0, 1]; got {}", momentum);
  if (training_mode) {
    // A training graph (opset 14 on): normalize with the batch's mean and biased variance over
    // every dim but the channels, and output the updated running statistics
    // (running * momentum + batch * (1 - momentum)), as ONNX's reference does.
    return [=](const Inputs& in) -> Inputs {
      const Tensor& x = in[0];
      if (x.dim() < 2) fail("onnx import", "BatchNormalization expects (N, C, ...); got shape {}", x.shape());
      Shape dims{0}, channel = Shape::filled(x.dim(), 1);
      for (int d = 2; d < x.dim(); ++d) dims.push_back(d);
      channel[1] = x.size(1);
      const Tensor mu = mean(x, dims, true);
      const Tensor centered = sub(x, mu);
      const Tensor var = mean(square(centered), dims, true);
      const Tensor y = add(mul(div(centered, sqrt(add(var, scalar_tensor(eps, x.dtype())))), reshape(in[1], channel)),
                           reshape(in[2], channel));
      auto running = [&](const Tensor& old, const Tensor& batch) {
        return add(mul(old, scalar_tensor(momentum, old.dtype())),
                   mul(reshape(batch, {x.size(1)}).to(old.dtype()), scalar_tensor(1.0 - momentum, old.dtype())));
      };
      return {y, running(in[3], mu), running(in[4], var)};
    };
  }
  return [=](const Inputs& in) -> Inputs {
    // x, scale, B, mean, var -> batch_norm(x, mean, var, weight = scale, bias = B)
    return {batch_norm(in[0], in[3], in[4], in[1], in[2], running_in_training(), 1.0 - momentum, eps)};
  };
}

// ---------------------------------------------------------------------------------------------
// Pad

Kernel compile_pad(const NodeView& n) {
  const int v = n.version();
  const bool attrs = v < 11;
  if (attrs) {
    n.allow_attributes({v == 1 ? "paddings" : "pads", "mode", "value"});
    n.expect_inputs(1, 1);
    if (!n.has(v == 1 ? "paddings" : "pads")) n.error("attribute '{}' is required", v == 1 ? "paddings" : "pads");
  } else {
    n.allow_attributes({"mode"});
    n.expect_inputs(2, 3);
  }
  n.expect_outputs(1);
  const std::string mode_name = n.get_string("mode", "constant");
  PadMode mode = PadMode::Constant;
  if (mode_name == "reflect")
    mode = PadMode::Reflect;
  else if (mode_name == "edge")
    mode = PadMode::Replicate;
  else if (mode_name != "constant")
    n.error("mode '{}' is not supported (supported: constant, reflect, edge)", mode_name);
  const std::vector<int64_t> attr_pads = n.get_ints(v == 1 ? "paddings" : "pads");
  const double attr_value = n.get_float("value", 0.0f);
  return [=](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    std::vector<int64_t> p = attrs ? attr_pads : int_values(in[1], "Pad's pads");
    double value = attr_value;
    if (!attrs && in.size() > 2 && in[2].defined()) {
      if (in[2].numel() != 1) fail("onnx import", "Pad's constant_value must hold one value; got shape {}", in[2].shape());
      value = in[2].item<double>();
    }
    const int r = x.dim();
    if (int64_t(p.size()) != 2 * r) fail("onnx import", "pads has {} values for an input of rank {} (shape {})", p.size(), r, x.shape());
    // ONNX: all begins, then all ends. latent: (begin, end) pairs, last dim first; outer dims with
    // no padding are left out (reflect and edge padding take at most the last three dims).
    int first = 0;
    while (first < r && p[size_t(first)] == 0 && p[size_t(first + r)] == 0) ++first;
    std::vector<int64_t> pads;
    for (int d = r - 1; d >= first; --d) {
      pads.push_back(p[size_t(d)]);
      pads.push_back(p[size_t(d + r)]);
    }
    if (pads.empty()) return {x};
    return {pad(x, pads, mode, mode == PadMode::Constant ? value : 0.0)};
  };
}

// ---------------------------------------------------------------------------------------------
// Resize and Upsample

namespace {

enum class Transform { HalfPixel, PytorchHalfPixel, AlignCorners, Asymmetric, TfHalfPixelForNn, TfCropAndResize };
enum class Nearest { RoundPreferFloor, RoundPreferCeil, Floor, Ceil };

/// The input coordinate of output index o. As in ONNX's reference, the resized length is
/// scale * in unrounded (with scales 0.6 on 4 elements, align_corners divides by 2.4 - 1).
/// tf_crop_and_resize maps the output onto the region [roi_start, roi_end] (fractions of in - 1)
/// and uses the output length itself, `out`.
double source_coordinate(Transform t, int64_t o, double scale, int64_t in, int64_t out = 0, double roi_start = 0,
                         double roi_end = 1) {
  const double resized = scale * double(in);
  switch (t) {
    case Transform::TfCropAndResize:
      return out > 1 ? roi_start * double(in - 1) + double(o) * (roi_end - roi_start) * double(in - 1) / double(out - 1)
                     : 0.5 * (roi_start + roi_end) * double(in - 1);
    case Transform::HalfPixel: return (o + 0.5) / scale - 0.5;
    case Transform::PytorchHalfPixel: return resized > 1 ? (o + 0.5) / scale - 0.5 : 0.0;
    case Transform::AlignCorners: return resized == 1 ? 0.0 : double(o) * double(in - 1) / (resized - 1);
    case Transform::Asymmetric: return o / scale;
    case Transform::TfHalfPixelForNn: return (o + 0.5) / scale;
  }
  return 0;
}

int64_t nearest_index(Nearest mode, double x) {
  switch (mode) {
    case Nearest::RoundPreferFloor: return x == std::floor(x) + 0.5 ? int64_t(std::floor(x)) : int64_t(std::round(x));
    case Nearest::RoundPreferCeil: return x == std::floor(x) + 0.5 ? int64_t(std::ceil(x)) : int64_t(std::round(x));
    case Nearest::Floor: return int64_t(std::floor(x));
    case Nearest::Ceil: return int64_t(std::ceil(x));
  }
  return 0;
}

enum class Interpolation { Nearest, Linear, Cubic };

/// Resize's cubic interpolation: the Keys kernel with coefficient `a` at distance s (|s| < 2).
double cubic_weight(double s, double a) {
  s = std::abs(s);
  if (s <= 1) return ((a + 2) * s - (a + 3)) * s * s + 1;
  if (s < 2) return ((a * s - 5 * a) * s + 8 * a) * s - 4 * a;
  return 0;
}

/// One axis of Resize: each output index reads taps of the input (1 nearest, 2 linear, 4 cubic;
/// taps past the edges read the edge) and blends them with per-index weights.
struct ResizeAxis {
  Interpolation mode = Interpolation::Nearest;
  Transform transform = Transform::HalfPixel;
  Nearest nearest = Nearest::RoundPreferFloor;
  double cubic_a = -0.75;
  bool exclude_outside = false;  ///< cubic: taps outside the input weigh 0, the rest renormalized
  double roi_start = 0, roi_end = 1;  ///< tf_crop_and_resize: this axis's region
};

/// `outside` (when given) gets 1 for the output indices whose source lies outside the input
/// (tf_crop_and_resize's extrapolation), else 0.
Tensor resize_axis(const Tensor& x, int axis, int64_t out, double scale, const ResizeAxis& r, std::vector<double>* outside = nullptr) {
  const int64_t in = x.size(axis);
  if (in == 0) fail("onnx import", "cannot resize an empty dim {}", axis);
  const int taps = r.mode == Interpolation::Nearest ? 1 : r.mode == Interpolation::Linear ? 2 : 4;
  std::vector<std::vector<int64_t>> index(size_t(taps), std::vector<int64_t>(static_cast<size_t>(out)));
  std::vector<std::vector<double>> weight(size_t(taps), std::vector<double>(static_cast<size_t>(out)));
  for (int64_t o = 0; o < out; ++o) {
    const size_t i = size_t(o);
    const double src = source_coordinate(r.transform, o, scale, in, out, r.roi_start, r.roi_end);
    if (outside) outside->push_back(src < 0 || src > double(in - 1) ? 1.0 : 0.0);
    if (r.mode == Interpolation::Nearest) {
      index[0][i] = std::clamp<int64_t>(nearest_index(r.nearest, src), 0, in - 1);
      weight[0][i] = 1;
    } else if (r.mode == Interpolation::Linear) {
      const double c = std::clamp(src, 0.0, double(in - 1));  // edge values outside the input
      const int64_t lo = std::min<int64_t>(int64_t(std::floor(c)), in - 1);
      index[0][i] = lo;
      index[1][i] = std::min(lo + 1, in - 1);
      weight[1][i] = c - double(lo);
      weight[0][i] = 1 - weight[1][i];
    } else {
      const double base = std::floor(src), t = src - base;
      double sum = 0;
      for (int k = 0; k < 4; ++k) {
        const int64_t at = int64_t(base) - 1 + k;
        double w = cubic_weight(t + 1 - k, r.cubic_a);
        if (r.exclude_outside && (at < 0 || at >= in)) w = 0;
        index[size_t(k)][i] = std::clamp<int64_t>(at, 0, in - 1);
        weight[size_t(k)][i] = w;
        sum += w;
      }
      if (r.exclude_outside && sum != 0)
        for (int k = 0; k < 4; ++k) weight[size_t(k)][i] /= sum;
    }
  }
  bool identity = in == out;
  for (int64_t o = 0; o < out && identity; ++o) {
    for (int k = 0; k < taps && identity; ++k)
      identity = weight[size_t(k)][size_t(o)] == 0 || (index[size_t(k)][size_t(o)] == o && weight[size_t(k)][size_t(o)] == 1);
  }
  if (identity) return x;
  if (taps == 1) return index_select(x, axis, from_vector(index[0], Shape{out}));
  Shape ws = Shape::filled(x.dim(), 1);
  ws[axis] = out;
  if (taps == 2) {  // a + (b - a) w: exact where w is 0 or 1, as before
    Tensor a = index_select(x, axis, from_vector(index[0], Shape{out}));
    Tensor b = index_select(x, axis, from_vector(index[1], Shape{out}));
    return add(a, mul(sub(b, a), to_dtype(from_vector(weight[1], ws), x.dtype())));
  }
  Tensor y;
  for (int k = 0; k < taps; ++k) {
    Tensor term = mul(index_select(x, axis, from_vector(index[size_t(k)], Shape{out})), to_dtype(from_vector(weight[size_t(k)], ws), x.dtype()));
    y = k == 0 ? term : add(y, term);
  }
  return y;
}

}  // namespace

Kernel compile_resize(const NodeView& n) {
  const bool upsample = n.proto().op_type == "Upsample";
  const int v = n.version();
  Transform t = Transform::Asymmetric;
  Nearest nm = Nearest::Floor;  // Upsample and Resize-10: asymmetric, floor
  if (upsample) {
    if (v >= 9) {
      n.allow_attributes({"mode"});
      n.expect_inputs(2, 2);
    } else {
      n.allow_attributes({"mode", "scales"});
      n.expect_inputs(1, 1);
      if (!n.has("scales")) n.error("attribute 'scales' is required");
    }
  } else if (v == 10) {
    n.allow_attributes({"mode"});
    n.expect_inputs(2, 2);
  } else {
    n.allow_attributes({"mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a", "exclude_outside",
                        "extrapolation_value"});
    n.expect_inputs(v >= 13 ? 1 : 3, 4);
    const std::string ctm = n.get_string("coordinate_transformation_mode", "half_pixel");
    if (ctm == "half_pixel") t = Transform::HalfPixel;
    else if (ctm == "pytorch_half_pixel") t = Transform::PytorchHalfPixel;
    else if (ctm == "align_corners") t = Transform::AlignCorners;
    else if (ctm == "asymmetric") t = Transform::Asymmetric;
    else if (ctm == "tf_half_pixel_for_nn") t = Transform::TfHalfPixelForNn;
    else if (ctm == "tf_crop_and_resize") t = Transform::TfCropAndResize;
    else
      n.error("coordinate_transformation_mode '{}' is not supported (supported: half_pixel, pytorch_half_pixel, "
              "align_corners, asymmetric, tf_half_pixel_for_nn, tf_crop_and_resize)", ctm);
    const std::string near = n.get_string("nearest_mode", "round_prefer_floor");
    if (near == "round_prefer_floor") nm = Nearest::RoundPreferFloor;
    else if (near == "round_prefer_ceil") nm = Nearest::RoundPreferCeil;
    else if (near == "floor") nm = Nearest::Floor;
    else if (near == "ceil") nm = Nearest::Ceil;
    else n.error("nearest_mode '{}' is not supported (supported: round_prefer_floor, round_prefer_ceil, floor, ceil)", near);
  }
  n.expect_outputs(1);
  const std::string mode = n.get_string("mode", "nearest");
  const bool resize_11 = !upsample && v >= 11;
  ResizeAxis axis_options;
  axis_options.transform = t;
  axis_options.nearest = nm;
  if (mode == "nearest") axis_options.mode = Interpolation::Nearest;
  else if (mode == "linear" || (upsample && mode == "bilinear")) axis_options.mode = Interpolation::Linear;
  else if (mode == "cubic" && resize_11) axis_options.mode = Interpolation::Cubic;
  else n.error("mode '{}' is not supported (supported: nearest, linear{})", mode, resize_11 ? ", cubic" : "");
  axis_options.cubic_a = n.get_float("cubic_coeff_a", -0.75f);
  axis_options.exclude_outside = n.get_int("exclude_outside", 0) != 0;
  if (axis_options.exclude_outside && axis_options.mode != Interpolation::Cubic)
    n.error("exclude_outside = 1 is supported with mode 'cubic' only; mode is '{}'", mode);
  const std::vector<float> attr_scales = n.get_floats("scales");
  const double extrapolation = n.get_float("extrapolation_value", 0.0f);
  const bool crop = t == Transform::TfCropAndResize;
  const bool roi_input = !upsample && v >= 11;
  return [=](const Inputs& in) -> Inputs {
    const Tensor& x = in[0];
    const int r = x.dim();
    std::vector<double> scales;
    std::vector<int64_t> sizes;
    if (upsample && v < 9) {
      scales.assign(attr_scales.begin(), attr_scales.end());
    } else {
      const size_t scales_at = roi_input ? 2 : 1;
      if (in.size() > scales_at && in[scales_at].defined() && in[scales_at].numel() > 0) {
        if (!in[scales_at].is_floating_point()) fail("onnx import", "scales must be float; got {}", dtype_name(in[scales_at].dtype()));
        scales = double_values(in[scales_at]);
      }
      if (roi_input && in.size() > 3 && in[3].defined() && in[3].numel() > 0) {
        if (!scales.empty()) fail("onnx import", "only one of 'scales' and 'sizes' may be given");
        sizes = int_values(in[3], "Resize's sizes");
      }
    }
    if (scales.empty() && sizes.empty()) fail("onnx import", "neither scales nor sizes is given");
    if (!scales.empty() && int(scales.size()) != r) fail("onnx import", "{} scales for an input of rank {} (shape {})", scales.size(), r, x.shape());
    if (!sizes.empty() && int(sizes.size()) != r) fail("onnx import", "{} sizes for an input of rank {} (shape {})", sizes.size(), r, x.shape());
    std::vector<double> roi;
    if (crop) {
      if (in.size() < 2 || !in[1].defined() || in[1].numel() != 2 * r)
        fail("onnx import", "tf_crop_and_resize needs 'roi' with {} values (starts, then ends) for an input of rank {}", 2 * r, r);
      roi = double_values(in[1]);
    }
    Tensor y = x, outside_any;
    for (int d = 0; d < r; ++d) {
      int64_t out;
      double scale;
      if (!sizes.empty()) {
        out = sizes[size_t(d)];
        if (out <= 0) fail("onnx import", "sizes {} must be positive", Shape(sizes));
        scale = double(out) / double(x.size(d));
      } else {
        scale = scales[size_t(d)];
        if (!(scale > 0) || !(double(x.size(d)) * scale < 1e12)) fail("onnx import", "scale {} must be positive and finite, and give fewer than 1e12 elements", scale);
        const double region = crop ? roi[size_t(r + d)] - roi[size_t(d)] : 1.0;
        out = int64_t(std::floor(double(x.size(d)) * region * scale));
        if (out <= 0) fail("onnx import", "scale {} turns dim {} of size {} into an empty dim", scale, d, x.size(d));
      }
      ResizeAxis a = axis_options;
      std::vector<double> outside;
      if (crop) {
        a.roi_start = roi[size_t(d)];
        a.roi_end = roi[size_t(r + d)];
      }
      y = resize_axis(y, d, out, scale, a, crop ? &outside : nullptr);
      if (crop) {  // the points outside along any axis take extrapolation_value: 1 - prod(1 - outside_d)
        Shape ms = Shape::filled(r, 1);
        ms[d] = out;
        const Tensor inside = to_dtype(from_vector(outside, ms), x.dtype());
        outside_any = outside_any.defined() ? sub(add(outside_any, inside), mul(outside_any, inside)) : inside;
      }
    }
    if (crop && outside_any.defined())
      y = add(mul(y, sub(scalar_tensor(1.0, x.dtype()), outside_any)), mul(outside_any, scalar_tensor(extrapolation, x.dtype())));
    return {y};
  };
}

}  // namespace latent::onnx::detail
