// CPU pooling and resampling kernels: plain single-threaded loops over contiguous (N, C, H, W)
// tensors, one (H, W) plane at a time (the ops make every operand contiguous first). Window and
// index rules are PyTorch's:
//   max/avg pooling  window of output o starts at o * stride - padding; taps step by dilation
//   avg pooling      the divisor counts the window clipped to the padded input (count_include_pad)
//                    or to the input itself; a window with no input element gives 0
//   adaptive         window i spans [floor(i * in / out), ceil((i + 1) * in / out))
//   nearest          src = min(floor(dst * in / out), in - 1), in exact integer arithmetic
//   bilinear         src = dst * (in - 1) / (out - 1) with align_corners (0 when out == 1), else
//                    max((dst + 0.5) * in / out - 0.5, 0); weights computed in float64
// Sums accumulate in float64, as in the reduce kernels.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu_backend.h"

namespace latent::cpu {
namespace {

/// Sizes of an (N, C, H, W) input and its (N, C, H_out, W_out) output, with N * C planes.
struct Planes {
  int64_t count, in_h, in_w, out_h, out_w;
  int64_t in_size() const { return in_h * in_w; }
  int64_t out_size() const { return out_h * out_w; }
};

Planes planes_of(const Tensor& input, const Tensor& output) {
  return {input.shape()[0] * input.shape()[1], input.shape()[2], input.shape()[3], output.shape()[2],
          output.shape()[3]};
}

/// Adaptive pooling window [begin, end) of output index i along an axis.
int64_t adaptive_begin(int64_t i, int64_t in, int64_t out) { return i * in / out; }
int64_t adaptive_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

/// Nearest-neighbour source index of output index dst along an axis.
int64_t nearest_source(int64_t dst, int64_t in, int64_t out) { return std::min(dst * in / out, in - 1); }

/// The two source indices of a bilinear tap along one axis and their weights.
struct Lerp {
  int64_t i0, i1;
  double w0, w1;
};

std::vector<Lerp> lerp_table(int64_t in, int64_t out, bool align_corners) {
  std::vector<Lerp> table(static_cast<size_t>(out));
  const double scale = align_corners ? (out > 1 ? static_cast<double>(in - 1) / static_cast<double>(out - 1) : 0.0)
                                     : static_cast<double>(in) / static_cast<double>(out);
  for (int64_t d = 0; d < out; ++d) {
    const double src = align_corners ? scale * static_cast<double>(d)
                                     : std::max(scale * (static_cast<double>(d) + 0.5) - 0.5, 0.0);
    const int64_t i0 = std::min(static_cast<int64_t>(src), in - 1);
    const int64_t i1 = i0 + (i0 < in - 1 ? 1 : 0);
    const double w1 = src - static_cast<double>(i0);
    table[static_cast<size_t>(d)] = {i0, i1, 1.0 - w1, w1};
  }
  return table;
}

/// Calls fn(begin_h, end_h, begin_w, end_w, divisor) for each avg-pooling window of out, in
/// row-major output order; begin/end are clipped to the input, divisor is 0 for an empty window.
template <class Fn>
void for_each_avg_window(const Planes& s, const Pool2dParams& p, Fn&& fn) {
  for (int64_t oh = 0; oh < s.out_h; ++oh) {
    int64_t h0 = oh * p.stride[0] - p.padding[0];
    int64_t h1 = std::min(h0 + p.kernel[0], s.in_h + p.padding[0]);
    const int64_t padded_h = h1 - h0;
    h0 = std::max<int64_t>(h0, 0);
    h1 = std::min(h1, s.in_h);
    for (int64_t ow = 0; ow < s.out_w; ++ow) {
      int64_t w0 = ow * p.stride[1] - p.padding[1];
      int64_t w1 = std::min(w0 + p.kernel[1], s.in_w + p.padding[1]);
      const int64_t padded_w = w1 - w0;
      w0 = std::max<int64_t>(w0, 0);
      w1 = std::min(w1, s.in_w);
      const bool empty = h0 >= h1 || w0 >= w1;
      const int64_t divisor = empty ? 0 : p.count_include_pad ? padded_h * padded_w : (h1 - h0) * (w1 - w0);
      fn(h0, h1, w0, w1, divisor);
    }
  }
}

}  // namespace

// x: (N, C, H, W), out and indices: (N, C, H_out, W_out).
void CpuBackend::max_pool2d(const Tensor& x, const Tensor& out, const Tensor& indices, const Pool2dParams& p) {
  visit_floating("max_pool2d", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Planes s = planes_of(x, out);
    const T* in = x.data_ptr<T>();
    T* o = out.data_ptr<T>();
    int64_t* idx = indices.data_ptr<int64_t>();
    for (int64_t plane = 0; plane < s.count; ++plane, in += s.in_size()) {
      for (int64_t oh = 0; oh < s.out_h; ++oh) {
        const int64_t h0 = oh * p.stride[0] - p.padding[0];
        for (int64_t ow = 0; ow < s.out_w; ++ow, ++o, ++idx) {
          const int64_t w0 = ow * p.stride[1] - p.padding[1];
          // -1 marks a window with no input element (possible only with dilation); backward skips it.
          T best = -std::numeric_limits<T>::infinity();
          int64_t best_at = -1;
          for (int64_t i = 0; i < p.kernel[0]; ++i) {
            const int64_t ih = h0 + i * p.dilation[0];
            if (ih < 0 || ih >= s.in_h) continue;
            for (int64_t j = 0; j < p.kernel[1]; ++j) {
              const int64_t iw = w0 + j * p.dilation[1];
              if (iw < 0 || iw >= s.in_w) continue;
              const T v = in[ih * s.in_w + iw];
              // NaN wins (and the last NaN is kept), as in PyTorch.
              if (best_at < 0 || v > best || std::isnan(v)) {
                best = v;
                best_at = ih * s.in_w + iw;
              }
            }
          }
          *o = best;
          *idx = best_at;
        }
      }
    }
  });
}

// grad_out and indices: (N, C, H_out, W_out), grad_input: (N, C, H, W).
void CpuBackend::max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Tensor& grad_input) {
  visit_floating("max_pool2d_backward", grad_out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Planes s = planes_of(grad_input, grad_out);
    const T* g = grad_out.data_ptr<T>();
    const int64_t* idx = indices.data_ptr<int64_t>();
    T* gi = grad_input.data_ptr<T>();
    std::fill(gi, gi + s.count * s.in_size(), T(0));
    for (int64_t plane = 0; plane < s.count; ++plane, gi += s.in_size())
      for (int64_t k = 0; k < s.out_size(); ++k, ++g, ++idx)
        if (*idx >= 0) gi[*idx] += *g;
  });
}

void CpuBackend::avg_pool2d(const Tensor& x, const Tensor& out, const Pool2dParams& p) {
  visit_floating("avg_pool2d", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Planes s = planes_of(x, out);
    const T* in = x.data_ptr<T>();
    T* o = out.data_ptr<T>();
    for (int64_t plane = 0; plane < s.count; ++plane, in += s.in_size()) {
      for_each_avg_window(s, p, [&](int64_t h0, int64_t h1, int64_t w0, int64_t w1, int64_t divisor) {
        double acc = 0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) acc += static_cast<double>(in[ih * s.in_w + iw]);
        *o++ = divisor ? static_cast<T>(acc / static_cast<double>(divisor)) : T(0);
      });
    }
  });
}

void CpuBackend::avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_input, const Pool2dParams& p) {
  visit_floating("avg_pool2d_backward", grad_out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Planes s = planes_of(grad_input, grad_out);
    const T* g = grad_out.data_ptr<T>();
    T* gi = grad_input.data_ptr<T>();
    std::fill(gi, gi + s.count * s.in_size(), T(0));
    for (int64_t plane = 0; plane < s.count; ++plane, gi += s.in_size()) {
      for_each_avg_window(s, p, [&](int64_t h0, int64_t h1, int64_t w0, int64_t w1, int64_t divisor) {
        const T share = divisor ? static_cast<T>(static_cast<double>(*g) / static_cast<double>(divisor)) : T(0);
        ++g;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) gi[ih * s.in_w + iw] += share;
      });
    }
  });
}

void CpuBackend::adaptive_avg_pool2d(const Tensor& x, const Tensor& out) {
  visit_floating("adaptive_avg_pool2d", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Planes s = planes_of(x, out);
    const T* in = x.data_ptr<T>();
    T* o = out.data_ptr<T>();
    for (int64_t plane = 0; plane < s.count; ++plane, in += s.in_size()) {
      for (int64_t oh = 0; oh < s.out_h; ++oh) {
        const int64_t h0 = adaptive_begin(oh, s.in_h, s.out_h), h1 = adaptive_end(oh, s.in_h, s.out_h);
        for (int64_t ow = 0; ow < s.out_w; ++ow) {
          const int64_t w0 = adaptive_begin(ow, s.in_w, s.out_w), w1 = adaptive_end(ow, s.in_w, s.out_w);
          double acc = 0;
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) acc += static_cast<double>(in[ih * s.in_w + iw]);
          *o++ = static_cast<T>(acc / static_cast<double>((h1 - h0) * (w1 - w0)));
        }
      }
    }
  });
}

void CpuBackend::adaptive_avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_input) {
  visit_floating("adaptive_avg_pool2d_backward", grad_out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Planes s = planes_of(grad_input, grad_out);
    const T* g = grad_out.data_ptr<T>();
    T* gi = grad_input.data_ptr<T>();
    std::fill(gi, gi + s.count * s.in_size(), T(0));
    for (int64_t plane = 0; plane < s.count; ++plane, gi += s.in_size()) {
      for (int64_t oh = 0; oh < s.out_h; ++oh) {
        const int64_t h0 = adaptive_begin(oh, s.in_h, s.out_h), h1 = adaptive_end(oh, s.in_h, s.out_h);
        for (int64_t ow = 0; ow < s.out_w; ++ow, ++g) {
          const int64_t w0 = adaptive_begin(ow, s.in_w, s.out_w), w1 = adaptive_end(ow, s.in_w, s.out_w);
          const T share = static_cast<T>(static_cast<double>(*g) / static_cast<double>((h1 - h0) * (w1 - w0)));
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) gi[ih * s.in_w + iw] += share;
        }
      }
    }
  });
}

void CpuBackend::upsample2d(const Tensor& x, const Tensor& out, bool bilinear, bool align_corners) {
  visit_floating(bilinear ? "upsample_bilinear2d" : "upsample_nearest2d", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Planes s = planes_of(x, out);
    const T* in = x.data_ptr<T>();
    T* o = out.data_ptr<T>();
    if (!bilinear) {
      std::vector<int64_t> src_w(static_cast<size_t>(s.out_w));
      for (int64_t ow = 0; ow < s.out_w; ++ow) src_w[static_cast<size_t>(ow)] = nearest_source(ow, s.in_w, s.out_w);
      for (int64_t plane = 0; plane < s.count; ++plane, in += s.in_size())
        for (int64_t oh = 0; oh < s.out_h; ++oh) {
          const T* row = in + nearest_source(oh, s.in_h, s.out_h) * s.in_w;
          for (int64_t ow = 0; ow < s.out_w; ++ow) *o++ = row[src_w[static_cast<size_t>(ow)]];
        }
      return;
    }
    const std::vector<Lerp> th = lerp_table(s.in_h, s.out_h, align_corners);
    const std::vector<Lerp> tw = lerp_table(s.in_w, s.out_w, align_corners);
    for (int64_t plane = 0; plane < s.count; ++plane, in += s.in_size())
      for (const Lerp& h : th) {
        const T* r0 = in + h.i0 * s.in_w;
        const T* r1 = in + h.i1 * s.in_w;
        for (const Lerp& w : tw) {
          const double top = w.w0 * static_cast<double>(r0[w.i0]) + w.w1 * static_cast<double>(r0[w.i1]);
          const double bottom = w.w0 * static_cast<double>(r1[w.i0]) + w.w1 * static_cast<double>(r1[w.i1]);
          *o++ = static_cast<T>(h.w0 * top + h.w1 * bottom);
        }
      }
  });
}

void CpuBackend::upsample2d_backward(const Tensor& grad_out, const Tensor& grad_input, bool bilinear,
                                     bool align_corners) {
  visit_floating(bilinear ? "upsample_bilinear2d" : "upsample_nearest2d", grad_out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Planes s = planes_of(grad_input, grad_out);
    const T* g = grad_out.data_ptr<T>();
    T* gi = grad_input.data_ptr<T>();
    std::fill(gi, gi + s.count * s.in_size(), T(0));
    if (!bilinear) {
      std::vector<int64_t> src_w(static_cast<size_t>(s.out_w));
      for (int64_t ow = 0; ow < s.out_w; ++ow) src_w[static_cast<size_t>(ow)] = nearest_source(ow, s.in_w, s.out_w);
      for (int64_t plane = 0; plane < s.count; ++plane, gi += s.in_size())
        for (int64_t oh = 0; oh < s.out_h; ++oh) {
          T* row = gi + nearest_source(oh, s.in_h, s.out_h) * s.in_w;
          for (int64_t ow = 0; ow < s.out_w; ++ow) row[src_w[static_cast<size_t>(ow)]] += *g++;
        }
      return;
    }
    const std::vector<Lerp> th = lerp_table(s.in_h, s.out_h, align_corners);
    const std::vector<Lerp> tw = lerp_table(s.in_w, s.out_w, align_corners);
    for (int64_t plane = 0; plane < s.count; ++plane, gi += s.in_size())
      for (const Lerp& h : th) {
        T* r0 = gi + h.i0 * s.in_w;
        T* r1 = gi + h.i1 * s.in_w;
        for (const Lerp& w : tw) {
          const double v = static_cast<double>(*g++);
          r0[w.i0] += static_cast<T>(h.w0 * w.w0 * v);
          r0[w.i1] += static_cast<T>(h.w0 * w.w1 * v);
          r1[w.i0] += static_cast<T>(h.w1 * w.w0 * v);
          r1[w.i1] += static_cast<T>(h.w1 * w.w1 * v);
        }
      }
  });
}

}  // namespace latent::cpu
