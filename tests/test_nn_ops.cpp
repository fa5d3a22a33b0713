// Pooling, resampling, pad, batch_norm, dropout and pixel_shuffle (ops/nn_ops.h): values against
// naive float64 references written here and against PyTorch's values (tests/reference/), gradcheck
// over attribute combinations, dropout's statistics, and the error messages.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "helpers.h"

using namespace latent;
using latent::testing::check_close;
using latent::testing::check_values;
using latent::testing::det_randn;
using latent::testing::det_uniform;

namespace {

// ---- naive float64 references over (N, C, H, W) ----

/// A dense (N, C, H, W) float64 array.
struct Grid {
  int64_t n = 0, c = 0, h = 0, w = 0;
  std::vector<double> v;
  Grid(int64_t n_, int64_t c_, int64_t h_, int64_t w_, double fill = 0)
      : n(n_), c(c_), h(h_), w(w_), v(static_cast<size_t>(n_ * c_ * h_ * w_), fill) {}
  explicit Grid(const Tensor& t) : Grid(t.size(0), t.size(1), t.size(2), t.size(3)) { v = t.to_vector<double>(); }
  double& at(int64_t i, int64_t j, int64_t y, int64_t x) { return v[static_cast<size_t>(((i * c + j) * h + y) * w + x)]; }
  Shape shape() const { return {n, c, h, w}; }
};

/// Window starts in padded coordinates, enumerated rather than computed: a window is kept while it
/// fits the padded input, or (ceil mode) while it still covers a partial stride and starts inside
/// the input or the left padding.
std::vector<int64_t> window_starts(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t padded = in + 2 * p, extent = d * (k - 1) + 1;
  std::vector<int64_t> starts;
  for (int64_t st = 0;; st += s) {
    const bool fits = st + extent <= padded;
    const bool partial = ceil_mode && st < padded - extent + s && st < in + p;
    if (!fits && !partial) break;
    starts.push_back(st);
  }
  return starts;
}

/// Max pooling over an explicitly -inf-padded copy; also returns the first argmax of each window.
Grid naive_max_pool(const Tensor& x, Pair k, Pair s, Pair p, Pair d, bool ceil_mode, std::vector<int64_t>* argmax) {
  Grid in(x);
  Grid padded(in.n, in.c, in.h + 2 * p.h, in.w + 2 * p.w, -std::numeric_limits<double>::infinity());
  for (int64_t i = 0; i < in.n; ++i)
    for (int64_t j = 0; j < in.c; ++j)
      for (int64_t y = 0; y < in.h; ++y)
        for (int64_t z = 0; z < in.w; ++z) padded.at(i, j, y + p.h, z + p.w) = in.at(i, j, y, z);
  const auto rows = window_starts(in.h, k.h, s.h, p.h, d.h, ceil_mode);
  const auto cols = window_starts(in.w, k.w, s.w, p.w, d.w, ceil_mode);
  Grid out(in.n, in.c, static_cast<int64_t>(rows.size()), static_cast<int64_t>(cols.size()));
  for (int64_t i = 0; i < in.n; ++i)
    for (int64_t j = 0; j < in.c; ++j)
      for (int64_t a = 0; a < out.h; ++a)
        for (int64_t b = 0; b < out.w; ++b) {
          double best = -INFINITY;
          int64_t best_at = -1;
          for (int64_t u = 0; u < k.h; ++u)
            for (int64_t t = 0; t < k.w; ++t) {
              const int64_t y = rows[a] + u * d.h, z = cols[b] + t * d.w;
              if (y >= padded.h || z >= padded.w) continue;  // ceil mode: past the right padding
              const double val = padded.at(i, j, y, z);
              const bool inside = y >= p.h && y < p.h + in.h && z >= p.w && z < p.w + in.w;
              if (inside && (best_at < 0 || val > best)) best = val, best_at = (y - p.h) * in.w + (z - p.w);
            }
          out.at(i, j, a, b) = best;
          if (argmax) argmax->push_back(best_at);
        }
  return out;
}

/// Average pooling: the window is clipped to the padded input; the divisor is its size
/// (count_include_pad) or the number of real input elements in it.
Grid naive_avg_pool(const Tensor& x, Pair k, Pair s, Pair p, bool ceil_mode, bool count_include_pad) {
  Grid in(x);
  const auto rows = window_starts(in.h, k.h, s.h, p.h, 1, ceil_mode);
  const auto cols = window_starts(in.w, k.w, s.w, p.w, 1, ceil_mode);
  Grid out(in.n, in.c, static_cast<int64_t>(rows.size()), static_cast<int64_t>(cols.size()));
  for (int64_t i = 0; i < in.n; ++i)
    for (int64_t j = 0; j < in.c; ++j)
      for (int64_t a = 0; a < out.h; ++a)
        for (int64_t b = 0; b < out.w; ++b) {
          double sum = 0, cells = 0, real = 0;
          for (int64_t y = rows[a]; y < std::min(rows[a] + k.h, in.h + 2 * p.h); ++y)
            for (int64_t z = cols[b]; z < std::min(cols[b] + k.w, in.w + 2 * p.w); ++z) {
              cells += 1;
              if (y < p.h || y >= p.h + in.h || z < p.w || z >= p.w + in.w) continue;
              real += 1;
              sum += in.at(i, j, y - p.h, z - p.w);
            }
          out.at(i, j, a, b) = real == 0 ? 0 : sum / (count_include_pad ? cells : real);
        }
  return out;
}

Grid naive_adaptive_avg_pool(const Tensor& x, Pair size) {
  Grid in(x), out(in.n, in.c, size.h, size.w);
  for (int64_t i = 0; i < in.n; ++i)
    for (int64_t j = 0; j < in.c; ++j)
      for (int64_t a = 0; a < size.h; ++a)
        for (int64_t b = 0; b < size.w; ++b) {
          const auto y0 = static_cast<int64_t>(std::floor(double(a) * double(in.h) / double(size.h)));
          const auto y1 = static_cast<int64_t>(std::ceil(double(a + 1) * double(in.h) / double(size.h)));
          const auto z0 = static_cast<int64_t>(std::floor(double(b) * double(in.w) / double(size.w)));
          const auto z1 = static_cast<int64_t>(std::ceil(double(b + 1) * double(in.w) / double(size.w)));
          double sum = 0;
          for (int64_t y = y0; y < y1; ++y)
            for (int64_t z = z0; z < z1; ++z) sum += in.at(i, j, y, z);
          out.at(i, j, a, b) = sum / double((y1 - y0) * (z1 - z0));
        }
  return out;
}

Grid naive_upsample(const Tensor& x, Pair size, bool bilinear, bool align_corners) {
  Grid in(x), out(in.n, in.c, size.h, size.w);
  // Source coordinate of output index o along an axis of `n` inputs and `m` outputs.
  auto source = [&](int64_t o, int64_t n, int64_t m) {
    if (align_corners) return m > 1 ? double(o) * double(n - 1) / double(m - 1) : 0.0;
    return std::max((double(o) + 0.5) * double(n) / double(m) - 0.5, 0.0);
  };
  for (int64_t i = 0; i < in.n; ++i)
    for (int64_t j = 0; j < in.c; ++j)
      for (int64_t a = 0; a < size.h; ++a)
        for (int64_t b = 0; b < size.w; ++b) {
          if (!bilinear) {
            const auto y = static_cast<int64_t>(std::floor(double(a) * double(in.h) / double(size.h)));
            const auto z = static_cast<int64_t>(std::floor(double(b) * double(in.w) / double(size.w)));
            out.at(i, j, a, b) = in.at(i, j, y, z);
            continue;
          }
          const double sy = source(a, in.h, size.h), sz = source(b, in.w, size.w);
          const auto y0 = static_cast<int64_t>(std::floor(sy)), z0 = static_cast<int64_t>(std::floor(sz));
          const int64_t y1 = std::min(y0 + 1, in.h - 1), z1 = std::min(z0 + 1, in.w - 1);
          const double ly = sy - double(y0), lz = sz - double(z0);
          out.at(i, j, a, b) = (1 - ly) * ((1 - lz) * in.at(i, j, y0, z0) + lz * in.at(i, j, y0, z1)) +
                               ly * ((1 - lz) * in.at(i, j, y1, z0) + lz * in.at(i, j, y1, z1));
        }
  return out;
}

/// pad of the last two dims: {left, right, top, bottom}, by mapping each output position back.
Grid naive_pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode, double value) {
  Grid in(x), out(in.n, in.c, in.h + pads[2] + pads[3], in.w + pads[0] + pads[1]);
  auto map = [mode](int64_t k, int64_t n) -> int64_t {
    if (k >= 0 && k < n) return k;
    if (mode == PadMode::Constant) return -1;
    if (mode == PadMode::Replicate) return k < 0 ? 0 : n - 1;
    return k < 0 ? -k : 2 * n - 2 - k;  // reflect
  };
  for (int64_t i = 0; i < in.n; ++i)
    for (int64_t j = 0; j < in.c; ++j)
      for (int64_t a = 0; a < out.h; ++a)
        for (int64_t b = 0; b < out.w; ++b) {
          const int64_t y = map(a - pads[2], in.h), z = map(b - pads[0], in.w);
          out.at(i, j, a, b) = (y < 0 || z < 0) ? value : in.at(i, j, y, z);
        }
  return out;
}

// ---- PyTorch reference file (tests/reference/make_nn_reference.py) ----

struct RefCase {
  std::string header, op;
  std::map<std::string, std::string> attrs;
  std::map<std::string, std::pair<Shape, std::vector<double>>> tensors;

  const std::string& attr(const std::string& key) const {
    auto it = attrs.find(key);
    REQUIRE_MESSAGE(it != attrs.end(), "missing attribute " << key << " in " << header);
    return it->second;
  }
  std::vector<int64_t> ints(const std::string& key) const {
    std::vector<int64_t> out;
    std::stringstream ss(attr(key));
    for (std::string part; std::getline(ss, part, ',');) out.push_back(std::stoll(part));
    return out;
  }
  Pair pair(const std::string& key) const {
    auto v = ints(key);
    return v.size() == 1 ? Pair(v[0]) : Pair(v[0], v[1]);
  }
  int64_t integer(const std::string& key) const { return ints(key)[0]; }
  bool flag(const std::string& key) const { return attr(key) == "1"; }
  double real(const std::string& key) const { return std::stod(attr(key)); }
  bool has(const std::string& name) const { return tensors.count(name) > 0; }
  Tensor tensor(const std::string& name, bool requires_grad = false) const {
    auto it = tensors.find(name);
    REQUIRE_MESSAGE(it != tensors.end(), "missing tensor " << name << " in " << header);
    Tensor t = from_vector(it->second.second, it->second.first);
    if (requires_grad) t.requires_grad_(true);
    return t;
  }
};

std::vector<RefCase> load_reference() {
  const std::string path = std::string(LATENT_NN_DATA_DIR) + "/nn_reference.txt";
  std::ifstream file(path);
  REQUIRE_MESSAGE(file.good(), "cannot open " << path);
  std::vector<RefCase> cases;
  for (std::string line; std::getline(file, line);) {
    if (line.empty() || line[0] == '#' || line == "end") continue;
    std::istringstream ls(line);
    std::string word;
    ls >> word;
    if (word == "case") {
      cases.emplace_back();
      cases.back().header = line;
      ls >> cases.back().op;
      for (std::string kv; ls >> kv;) cases.back().attrs[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
      continue;
    }
    REQUIRE(!cases.empty());
    std::string shape_text;
    ls >> shape_text;
    Shape shape;
    std::stringstream ss(shape_text);
    for (std::string part; shape_text != "-" && std::getline(ss, part, ',');) shape.push_back(std::stoll(part));
    std::vector<double> values;
    for (double v; ls >> v;) values.push_back(v);
    REQUIRE(static_cast<int64_t>(values.size()) == shape.numel());
    cases.back().tensors[word] = {shape, values};
  }
  return cases;
}

PadMode pad_mode(const std::string& name) {
  return name == "reflect" ? PadMode::Reflect : name == "replicate" ? PadMode::Replicate : PadMode::Constant;
}

/// The op of a reference case applied to x (every op but batch_norm).
Tensor run_case(const RefCase& c, const Tensor& x) {
  const std::string& op = c.op;
  if (op == "max_pool2d")
    return max_pool2d(x, c.pair("kernel"), c.pair("stride"), c.pair("padding"), c.pair("dilation"), c.flag("ceil_mode"));
  if (op == "avg_pool2d")
    return avg_pool2d(x, c.pair("kernel"), c.pair("stride"), c.pair("padding"), c.flag("ceil_mode"),
                      c.flag("count_include_pad"));
  if (op == "adaptive_avg_pool2d") return adaptive_avg_pool2d(x, c.pair("size"));
  if (op == "max_pool1d")
    return max_pool1d(x, c.integer("kernel"), c.integer("stride"), c.integer("padding"), c.integer("dilation"),
                      c.flag("ceil_mode"));
  if (op == "avg_pool1d")
    return avg_pool1d(x, c.integer("kernel"), c.integer("stride"), c.integer("padding"), c.flag("ceil_mode"),
                      c.flag("count_include_pad"));
  if (op == "adaptive_avg_pool1d") return adaptive_avg_pool1d(x, c.integer("size"));
  if (op == "upsample_nearest2d") return upsample_nearest2d(x, c.pair("size"));
  if (op == "upsample_bilinear2d") return upsample_bilinear2d(x, c.pair("size"), c.flag("align_corners"));
  if (op == "interpolate")
    return interpolate(x, c.real("scale"),
                       c.attr("mode") == "bilinear" ? InterpolateMode::Bilinear : InterpolateMode::Nearest,
                       c.flag("align_corners"));
  if (op == "pad") return pad(x, c.ints("pads"), pad_mode(c.attr("mode")), c.real("value"));
  if (op == "pixel_shuffle") return pixel_shuffle(x, c.integer("factor"));
  if (op == "pixel_unshuffle") return pixel_unshuffle(x, c.integer("factor"));
  FAIL("unknown op in reference file: " << op);
  return {};
}

void check_batch_norm_case(const RefCase& c) {
  const bool affine = c.flag("affine");
  Tensor x = c.tensor("x", true), rm = c.tensor("rm"), rv = c.tensor("rv");
  Tensor w = affine ? c.tensor("w", true) : Tensor(), b = affine ? c.tensor("b", true) : Tensor();
  Tensor out = batch_norm(x, rm, rv, w, b, c.flag("training"), c.real("momentum"), c.real("eps"));
  check_close(out, c.tensor("out"), 1e-9, 1e-8);
  check_close(rm, c.tensor("rm_after"), 1e-9, 1e-8);
  check_close(rv, c.tensor("rv_after"), 1e-9, 1e-8);
  (out * c.tensor("gout")).sum().backward();
  check_close(x.grad(), c.tensor("gx"), 1e-8, 1e-7);
  if (affine) {
    check_close(w.grad(), c.tensor("gw"), 1e-8, 1e-7);
    check_close(b.grad(), c.tensor("gb"), 1e-8, 1e-7);
  }
}

// ---- gradcheck ----

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

/// Weighted sum so every output element gets a distinct gradient.
Tensor weighted_sum(const Tensor& y) {
  Tensor w = arange(0.0, static_cast<double>(y.numel()), 1.0, kFloat64).reshape(y.shape()) * 0.1 + 0.5;
  return (y * w).sum();
}

void check_grad(const std::string& what, const Fn& fn, const std::vector<Tensor>& inputs) {
  CAPTURE(what);
  GradcheckResult r = gradcheck([&](const std::vector<Tensor>& in) { return weighted_sum(fn(in)); }, inputs);
  INFO(r.report);
  CHECK(r.ok);
}

std::string show(Pair p) { return std::to_string(p.h) + "x" + std::to_string(p.w); }

}  // namespace

TEST_CASE("PyTorch reference values") {
  std::map<std::string, int> seen;
  for (const RefCase& c : load_reference()) {
    CAPTURE(c.header);
    ++seen[c.op];
    if (c.op == "batch_norm") {
      check_batch_norm_case(c);
      continue;
    }
    Tensor x = c.tensor("x", true);
    Tensor out = run_case(c, x);
    check_close(out, c.tensor("out"), 1e-9, 1e-9);
    (out * c.tensor("gout")).sum().backward();
    check_close(x.grad(), c.tensor("gx"), 1e-9, 1e-9);
    if (c.has("indices")) {
      auto [values, indices] = max_pool2d_with_indices(x.detach(), c.pair("kernel"), c.pair("stride"),
                                                       c.pair("padding"), c.pair("dilation"), c.flag("ceil_mode"));
      CHECK(indices.dtype() == kInt64);
      check_close(indices, c.tensor("indices"), 0, 0);
    }
    // float32 runs the same kernels in single precision.
    check_close(run_case(c, x.detach().to(kFloat32)), c.tensor("out"), 1e-5, 1e-5);
  }
  for (const char* op : {"max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "max_pool1d", "avg_pool1d",
                         "adaptive_avg_pool1d", "upsample_nearest2d", "upsample_bilinear2d", "interpolate", "pad",
                         "batch_norm", "pixel_shuffle", "pixel_unshuffle"}) {
    INFO("op " << op);
    CHECK(seen[op] > 0);
  }
}

TEST_CASE("max_pool2d and avg_pool2d against naive references") {
  Tensor x = det_randn({2, 3, 7, 6}, 1, false);
  for (Pair k : {Pair(2), Pair(3), Pair(3, 2), Pair(1, 4)})
    for (Pair s : {Pair(0), Pair(1), Pair(2), Pair(3, 2)})
      for (Pair p : {Pair(0), Pair(1), Pair(1, 0)})
        for (bool ceil_mode : {false, true}) {
          if (p.h > k.h / 2 || p.w > k.w / 2) continue;
          const Pair stride = s == Pair(0) ? k : s;
          CAPTURE(show(k) + " stride " + show(stride) + " padding " + show(p) + (ceil_mode ? " ceil" : ""));
          for (Pair d : {Pair(1), Pair(2, 1)}) {
            std::vector<int64_t> argmax;
            Grid want = naive_max_pool(x, k, stride, p, d, ceil_mode, &argmax);
            auto [got, indices] = max_pool2d_with_indices(x, k, s, p, d, ceil_mode);
            REQUIRE(got.shape() == want.shape());
            check_values(got, want.v, 0, 0);
            CHECK(indices.to_vector<int64_t>() == argmax);
            check_values(max_pool2d(x.to(kFloat32), k, s, p, d, ceil_mode), want.v, 1e-6, 1e-6);
          }
          for (bool count_include_pad : {false, true}) {
            Grid want = naive_avg_pool(x, k, stride, p, ceil_mode, count_include_pad);
            Tensor got = avg_pool2d(x, k, s, p, ceil_mode, count_include_pad);
            REQUIRE(got.shape() == want.shape());
            check_values(got, want.v, 1e-12, 1e-12);
            check_values(avg_pool2d(x.to(kFloat32), k, s, p, ceil_mode, count_include_pad), want.v, 1e-5, 1e-5);
          }
        }
}

TEST_CASE("max pooling details: NaN, -inf padding, unbatched and 1-d inputs, non-contiguous input") {
  Tensor x = from_vector(std::vector<double>{1, NAN, 3, -5, -6, -7, 2, 0, -1}, {1, 1, 3, 3});
  auto [out, idx] = max_pool2d_with_indices(x, 2, 1);
  check_values(out, {NAN, NAN, 2, 0});
  CHECK(idx.to_vector<int64_t>() == std::vector<int64_t>{1, 1, 6, 7});
  // Padding never wins, even over negative inputs.
  Tensor neg = full({1, 1, 2, 2}, -3.0, kFloat64);
  check_values(max_pool2d(neg, 3, 1, 1), {-3, -3, -3, -3});
  // Unbatched (C, H, W) gives (C, H_out, W_out); 1-d indices are positions along L.
  Tensor xb = det_randn({2, 4, 5}, 2, false);
  check_close(max_pool2d(xb, 2), max_pool2d(xb.unsqueeze(0), 2).squeeze(0));
  check_close(avg_pool2d(xb, 3, 1, 1), avg_pool2d(xb.unsqueeze(0), 3, 1, 1).squeeze(0));
  check_close(adaptive_avg_pool2d(xb, {2, 3}), adaptive_avg_pool2d(xb.unsqueeze(0), {2, 3}).squeeze(0));
  Tensor seq = from_vector(std::vector<double>{0, 4, 1, 5, 2, 9, 3}, {1, 1, 7});
  auto [m1, i1] = max_pool1d_with_indices(seq, 3, 2, 1);
  CHECK(m1.shape() == Shape{1, 1, 4});
  check_values(m1, {4, 5, 9, 9});
  CHECK(i1.to_vector<int64_t>() == std::vector<int64_t>{1, 3, 5, 5});
  check_values(avg_pool1d(seq, 2), {2, 3, 5.5});
  CHECK(max_pool1d(seq.squeeze(0), 2).shape() == Shape{1, 3});  // unbatched (C, L)
  // A gradient arriving as a stride-0 expand (from sum) is made contiguous for the kernels.
  Tensor xg = det_randn({2, 3, 4, 6}, 25);
  max_pool2d(xg, 2).sum().backward();
  CHECK(xg.grad().sum().item<double>() == 2 * 3 * 2 * 3);
  // A transposed (non-contiguous) input gives the result of its contiguous copy.
  Tensor tr = det_randn({1, 2, 5, 6}, 3, false).transpose(2, 3);
  check_close(max_pool2d(tr, 2, 1), max_pool2d(tr.contiguous(), 2, 1), 0, 0);
  check_close(upsample_bilinear2d(tr, {7, 4}), upsample_bilinear2d(tr.contiguous(), {7, 4}), 0, 0);
}

TEST_CASE("adaptive pooling and upsampling against naive references") {
  Tensor x = det_randn({2, 2, 5, 7}, 4, false);
  for (Pair size : {Pair(1), Pair(3, 4), Pair(5, 7), Pair(6, 9), Pair(2, 7), Pair(10, 3)}) {
    CAPTURE(show(size));
    check_values(adaptive_avg_pool2d(x, size), naive_adaptive_avg_pool(x, size).v, 1e-12, 1e-12);
    check_values(upsample_nearest2d(x, size), naive_upsample(x, size, false, false).v, 0, 0);
    check_values(upsample_nearest2d(x.to(kFloat32), size), naive_upsample(x, size, false, false).v, 1e-6, 1e-6);
    for (bool align_corners : {false, true}) {
      Grid want = naive_upsample(x, size, true, align_corners);
      check_values(upsample_bilinear2d(x, size, align_corners), want.v, 1e-12, 1e-12);
      check_values(upsample_bilinear2d(x.to(kFloat32), size, align_corners), want.v, 1e-5, 1e-5);
    }
  }
  // Upsampling to the same size is the identity for every mode.
  check_close(upsample_bilinear2d(x, {5, 7}), x, 1e-12, 0);
  check_close(upsample_bilinear2d(x, {5, 7}, true), x, 1e-12, 0);
  // interpolate = upsample to floor(size * scale).
  check_close(interpolate(x, 2.0), upsample_nearest2d(x, {10, 14}), 0, 0);
  check_close(interpolate(x, 0.5, InterpolateMode::Bilinear), upsample_bilinear2d(x, {2, 3}), 0, 0);
  check_close(adaptive_avg_pool1d(x.select(2, 0), 3), adaptive_avg_pool2d(x.narrow(2, 0, 1), {1, 3}).squeeze(2));
}

TEST_CASE("pad against a naive reference") {
  Tensor x = det_randn({2, 3, 4, 5}, 5, false);
  const std::vector<std::vector<int64_t>> all_pads = {{1, 2, 3, 0}, {0, 0, 2, 2}, {3, 4, 1, 3}, {2, 1, 0, 3}};
  for (const auto& pads : all_pads)
    for (PadMode mode : {PadMode::Constant, PadMode::Reflect, PadMode::Replicate}) {
      INFO("pads " << pads[0] << "," << pads[1] << "," << pads[2] << "," << pads[3] << " mode " << int(mode));
      const double value = mode == PadMode::Constant ? 0.75 : 0.0;
      Grid want = naive_pad(x, pads, mode, value);
      Tensor got = pad(x, pads, mode, value);
      REQUIRE(got.shape() == want.shape());
      check_values(got, want.v, 0, 0);
    }
  // Negative pads crop; a 2-value pad touches only the last dim; int64 pads too.
  check_close(pad(x, {-1, -2, 0, -1}), x.narrow(3, 1, 2).narrow(2, 0, 3), 0, 0);
  check_close(pad(x, {-1, 1}, PadMode::Replicate).narrow(3, 0, 4), x.narrow(3, 1, 4), 0, 0);
  CHECK(pad(x, {1, 1}).shape() == Shape{2, 3, 4, 7});
  Tensor ints = arange(int64_t{3}).reshape({1, 3});
  CHECK(pad(ints, {2, 1}, PadMode::Reflect).to_vector<int64_t>() == std::vector<int64_t>{2, 1, 0, 1, 2, 1});
  CHECK(pad(ints, {1, 0, 1, 0}, PadMode::Constant, 7).to_vector<int64_t>() ==
        std::vector<int64_t>{7, 7, 7, 7, 7, 0, 1, 2});
}

TEST_CASE("batch_norm against a naive reference, with running statistics") {
  for (Shape shape : {Shape{4, 3}, Shape{2, 3, 4, 5}, Shape{1, 3, 2, 3}, Shape{3, 2, 5}}) {
    CAPTURE(shape);
    Tensor x = det_randn(shape, 6, false);
    const int64_t c = shape[1], count = x.numel() / c, inner = count / shape[0];
    Tensor w = det_randn({c}, 7, false), b = det_randn({c}, 8, false);
    Tensor rm = zeros({c}, kFloat64), rv = ones({c}, kFloat64);
    const double momentum = 0.2, eps = 1e-3;
    Tensor y = batch_norm(x, rm, rv, w, b, true, momentum, eps);
    std::vector<double> xv = x.to_vector<double>(), want(xv.size()), wv = w.to_vector<double>(),
                        bv = b.to_vector<double>(), rm_want(c), rv_want(c);
    auto at = [&](int64_t n, int64_t j, int64_t k) { return static_cast<size_t>((n * c + j) * inner + k); };
    for (int64_t j = 0; j < c; ++j) {
      double mean = 0, var = 0;
      for (int64_t n = 0; n < shape[0]; ++n)
        for (int64_t k = 0; k < inner; ++k) mean += xv[at(n, j, k)] / double(count);
      for (int64_t n = 0; n < shape[0]; ++n)
        for (int64_t k = 0; k < inner; ++k) var += (xv[at(n, j, k)] - mean) * (xv[at(n, j, k)] - mean);
      for (int64_t n = 0; n < shape[0]; ++n)
        for (int64_t k = 0; k < inner; ++k)
          want[at(n, j, k)] = (xv[at(n, j, k)] - mean) / std::sqrt(var / double(count) + eps) * wv[j] + bv[j];
      rm_want[j] = momentum * mean;
      rv_want[j] = (1 - momentum) + momentum * var / double(count - 1);
    }
    check_values(y, want, 1e-12, 1e-10);
    check_values(rm, rm_want, 1e-12, 1e-12);
    check_values(rv, rv_want, 1e-12, 1e-12);
    // Eval uses the running statistics; float32 inputs with float64 statistics work too.
    Tensor e = batch_norm(x, rm, rv, {}, {}, false, momentum, eps);
    std::vector<double> ev = e.to_vector<double>();
    for (int64_t n = 0; n < shape[0]; ++n)
      for (int64_t j = 0; j < c; ++j)
        for (int64_t k = 0; k < inner; ++k)
          CHECK(ev[at(n, j, k)] == doctest::Approx((xv[at(n, j, k)] - rm_want[j]) / std::sqrt(rv_want[j] + eps)));
    check_values(batch_norm(x.to(kFloat32), rm, rv, {}, {}, false, momentum, eps), ev, 1e-5, 1e-4);
    // Training without running statistics normalizes the same way and updates nothing.
    check_close(batch_norm(x, {}, {}, w, b, true, momentum, eps), y, 1e-12, 0);
  }
}

TEST_CASE("pixel_shuffle and pixel_unshuffle") {
  Tensor x = arange(0.0, 16.0, 1.0, kFloat64).reshape({1, 4, 2, 2});
  // out[0, 0, h * 2 + i, w * 2 + j] = x[0, i * 2 + j, h, w].
  check_values(pixel_shuffle(x, 2), {0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15});
  Tensor y = det_randn({2, 3, 18, 4, 5}, 9, false);
  CHECK(pixel_shuffle(y, 3).shape() == Shape{2, 3, 2, 12, 15});
  check_close(pixel_unshuffle(pixel_shuffle(y, 3), 3), y, 0, 0);
  check_close(pixel_shuffle(pixel_unshuffle(x, 2), 2), x, 0, 0);
}

TEST_CASE("gradcheck: pooling") {
  for (Shape shape : {Shape{1, 1, 5, 6}, Shape{2, 2, 6, 5}}) {
    Tensor x = det_randn(shape, 10);
    for (Pair k : {Pair(2), Pair(3, 2)})
      for (Pair s : {Pair(0), Pair(1), Pair(2, 1)})
        for (Pair p : {Pair(0), Pair(1)})
          for (bool ceil_mode : {false, true}) {
            const std::string what = show(k) + " s" + show(s) + " p" + show(p) + (ceil_mode ? " ceil" : "");
            for (Pair d : {Pair(1), Pair(1, 2)})
              check_grad("max_pool2d " + what + " d" + show(d),
                         [=](auto& in) { return max_pool2d(in[0], k, s, p, d, ceil_mode); }, {x});
            for (bool cip : {false, true})
              check_grad("avg_pool2d " + what + (cip ? " count_include_pad" : ""),
                         [=](auto& in) { return avg_pool2d(in[0], k, s, p, ceil_mode, cip); }, {x});
          }
    for (Pair size : {Pair(1), Pair(2, 3), Pair(4, 4), Pair(7, 8)})
      check_grad("adaptive_avg_pool2d " + show(size), [=](auto& in) { return adaptive_avg_pool2d(in[0], size); }, {x});
  }
  Tensor seq = det_randn({2, 3, 9}, 11);
  for (bool ceil_mode : {false, true}) {
    check_grad("max_pool1d", [=](auto& in) { return max_pool1d(in[0], 3, 2, 1, 2, ceil_mode); }, {seq});
    check_grad("avg_pool1d", [=](auto& in) { return avg_pool1d(in[0], 4, 3, 2, ceil_mode, false); }, {seq});
  }
  check_grad("adaptive_avg_pool1d", [](auto& in) { return adaptive_avg_pool1d(in[0], 4); }, {seq});
  check_grad("unbatched max_pool2d", [](auto& in) { return max_pool2d(in[0], 2, 1); }, {det_randn({2, 3, 4}, 12)});
  Tensor tr = det_randn({1, 2, 5, 4}, 13).detach().transpose(2, 3);
  tr.requires_grad_();
  check_grad("avg_pool2d of transposed", [](auto& in) { return avg_pool2d(in[0], 2, 1, 1); }, {tr});
}

TEST_CASE("gradcheck: upsampling") {
  for (Shape shape : {Shape{1, 1, 3, 4}, Shape{2, 2, 4, 3}}) {
    Tensor x = det_randn(shape, 14);
    for (Pair size : {Pair(1), Pair(2, 3), Pair(5, 7), Pair(8, 6), Pair(3, 9)}) {
      check_grad("nearest " + show(size), [=](auto& in) { return upsample_nearest2d(in[0], size); }, {x});
      for (bool ac : {false, true})
        check_grad("bilinear " + show(size) + (ac ? " align_corners" : ""),
                   [=](auto& in) { return upsample_bilinear2d(in[0], size, ac); }, {x});
    }
  }
  check_grad("interpolate", [](auto& in) { return interpolate(in[0], 1.5, InterpolateMode::Bilinear, true); },
             {det_randn({1, 2, 3, 4}, 15)});
}

TEST_CASE("gradcheck: pad, batch_norm, pixel_shuffle") {
  Tensor x = det_randn({2, 2, 4, 5}, 16);
  const std::vector<std::vector<int64_t>> all_pads = {{1, 2}, {3, 0, 2, 1}, {-1, 2, 1, -2}};
  for (PadMode mode : {PadMode::Constant, PadMode::Reflect, PadMode::Replicate})
    for (const std::vector<int64_t>& pads : all_pads)
      check_grad("pad mode " + std::to_string(int(mode)), [=](auto& in) { return pad(in[0], pads, mode, 0); }, {x});
  check_grad("pad 3 dims", [](auto& in) { return pad(in[0], {1, 0, 0, 1, 1, 1}, PadMode::Replicate); }, {x});

  for (Shape shape : {Shape{5, 3}, Shape{2, 3, 3, 2}, Shape{1, 3, 2, 4}, Shape{3, 3, 4}}) {
    CAPTURE(shape);
    Tensor in = det_randn(shape, 17), w = det_randn({3}, 18), b = det_randn({3}, 19);
    Tensor rm = det_randn({3}, 20, false), rv = det_uniform({3}, 21, 0.5, 2.0, false);
    check_grad("batch_norm train", [](auto& t) { return batch_norm(t[0], {}, {}, t[1], t[2], true); }, {in, w, b});
    check_grad("batch_norm train, no affine", [](auto& t) { return batch_norm(t[0], {}, {}, {}, {}, true); }, {in});
    check_grad("batch_norm eval", [=](auto& t) { return batch_norm(t[0], rm, rv, t[1], t[2], false); }, {in, w, b});
  }
  check_grad("pixel_shuffle", [](auto& in) { return pixel_shuffle(in[0], 2); }, {det_randn({2, 8, 2, 3}, 22)});
  check_grad("pixel_unshuffle", [](auto& in) { return pixel_unshuffle(in[0], 2); }, {det_randn({1, 2, 4, 6}, 23)});
}

TEST_CASE("dropout") {
  Tensor x = full({20000}, 2.0, kFloat64);
  Generator g1(42), g2(42), g3(43);
  Tensor a = dropout(x, 0.3, true, &g1), b = dropout(x, 0.3, true, &g2), c = dropout(x, 0.3, true, &g3);
  CHECK(a.to_vector<double>() == b.to_vector<double>());  // same seed, same mask
  CHECK(a.to_vector<double>() != c.to_vector<double>());
  // Kept elements are scaled by 1 / (1 - p); the mean is preserved (its std here is about 0.01).
  int64_t zeros_seen = 0;
  for (double v : a.to_vector<double>()) {
    if (v == 0) ++zeros_seen;
    else CHECK(v == doctest::Approx(2.0 / 0.7));
  }
  CHECK(double(zeros_seen) / 20000 == doctest::Approx(0.3).epsilon(0.05));
  CHECK(a.mean().item<double>() == doctest::Approx(2.0).epsilon(0.02));
  // Eval and p = 0 return x itself; p = 1 zeroes everything.
  CHECK(dropout(x, 0.3, false).is_same(x));
  CHECK(dropout(x, 0.0, true).is_same(x));
  CHECK(dropout(x, 1.0, true).abs().sum().item<double>() == 0);
  CHECK(dropout(x.to(kFloat32), 0.5, true, &g1).dtype() == kFloat32);
  // The gradient is the mask scaled by 1 / (1 - p): here y / 2.
  Tensor xg = full({1000}, 2.0, kFloat64).requires_grad_();
  Generator g4(7);
  Tensor y = dropout(xg, 0.25, true, &g4);
  y.sum().backward();
  check_close(xg.grad(), y.detach() / 2.0, 1e-15, 0);
  check_grad("dropout", [](auto& in) { Generator g(5); return dropout(in[0], 0.4, true, &g); }, {det_randn({4, 5}, 24)});
}

TEST_CASE("errors name the op and show the values") {
  Tensor x = zeros({1, 1, 2, 2});
  CHECK_THROWS_WITH_SUBSTR(max_pool2d(x, 3), "[max_pool2d] kernel 3x3 is larger than the padded input 2x2");
  CHECK_THROWS_WITH_SUBSTR(max_pool2d(zeros({3, 4}), 2),
                           "[max_pool2d] expects a 4-d input (N, C, H, W) or an unbatched 3-d one (C, H, W); got shape [3, 4]");
  CHECK_THROWS_WITH_SUBSTR(max_pool2d(x, 2, 1, 0, 2),
                           "[max_pool2d] kernel 2x2 with dilation 2x2 spans 3x3, larger than the padded input 2x2");
  CHECK_THROWS_WITH_SUBSTR(max_pool2d(zeros({1, 1, 6, 6}), 3, 1, 2),
                           "[max_pool2d] padding 2x2 must be at most half the kernel size 3x3");
  CHECK_THROWS_WITH_SUBSTR(max_pool2d(x, 3, 1, 1, 2),
                           "[max_pool2d] kernel 3x3 with dilation 2x2 spans 5x5, larger than the padded input 4x4 "
                           "(input 2x2, padding 1x1)");
  CHECK_THROWS_WITH_SUBSTR(avg_pool2d(zeros({1, 1, 0, 2}), {3, 1}, 1, {1, 0}),
                           "[avg_pool2d] kernel 3x1 is larger than the padded input 2x2 (input 0x2, padding 1x0)");
  CHECK_THROWS_WITH_SUBSTR(max_pool2d(x, {0, 2}), "[max_pool2d] kernel size must be positive; got 0x2");
  CHECK_THROWS_WITH_SUBSTR(avg_pool2d(x, 2, -1), "[avg_pool2d] stride must be positive");
  CHECK_THROWS_WITH_SUBSTR(max_pool2d(x, 2, 1, -1), "[max_pool2d] padding must be non-negative; got -1x-1");
  CHECK_THROWS_WITH_SUBSTR(max_pool2d(x, 2, 1, 0, 0), "[max_pool2d] dilation must be positive; got 0x0");
  CHECK_THROWS_WITH_SUBSTR(max_pool2d(zeros({1, 2, 2, 2}, kInt64), 2),
                           "[max_pool2d] dtype int64 is not supported: expected float32 or float64");
  CHECK_THROWS_WITH_SUBSTR(max_pool1d(zeros({1, 1, 2}), 3), "[max_pool1d] kernel 3 is larger than the padded input 2");
  CHECK_THROWS_WITH_SUBSTR(avg_pool1d(zeros({1, 2, 3, 4}), 2), "[avg_pool1d] expects a 3-d input (N, C, L)");
  CHECK_THROWS_WITH_SUBSTR(adaptive_avg_pool2d(x, {0, 3}), "[adaptive_avg_pool2d] output size must be positive; got 0x3");
  CHECK_THROWS_WITH_SUBSTR(adaptive_avg_pool2d(zeros({1, 1, 0, 3}), 2), "[adaptive_avg_pool2d] input size 0x3 must be non-zero");
  CHECK_THROWS_WITH_SUBSTR(upsample_nearest2d(x, {-1, 2}), "[upsample_nearest2d] output size must be positive; got -1x2");
  CHECK_THROWS_WITH_SUBSTR(upsample_bilinear2d(zeros({2, 2, 2}), 4),
                           "[upsample_bilinear2d] expects a 4-d input (N, C, H, W); got shape [2, 2, 2]");
  CHECK_THROWS_WITH_SUBSTR(interpolate(x, 0.25), "[interpolate] scale_factor 0.25 turns input size 2x2 into 0x0");
  CHECK_THROWS_WITH_SUBSTR(interpolate(x, 2.0, InterpolateMode::Nearest, true),
                           "[interpolate] align_corners applies to the bilinear mode only");
  CHECK_THROWS_WITH_SUBSTR(interpolate(x, -1.0), "[interpolate] scale_factor must be positive and finite; got -1");
  CHECK_THROWS_WITH_SUBSTR(pad(x, {2, 2}, PadMode::Reflect),
                           "[pad] reflect padding (2, 2) of dim 3 must be smaller than its size 2 (input shape [1, 1, 2, 2])");
  CHECK_THROWS_WITH_SUBSTR(pad(x, {1, 2, 3}), "[pad] pads must hold (before, after) pairs, last dim first; got 3 values");
  CHECK_THROWS_WITH_SUBSTR(pad(zeros({3}), {1, 1, 1, 1}), "[pad] 4 pads cover 2 dims but the input has 1 (shape [3])");
  CHECK_THROWS_WITH_SUBSTR(pad(x, {-2, -1}), "[pad] padding (-2, -1) of dim 3 leaves a negative size -1");
  CHECK_THROWS_WITH_SUBSTR(pad(x, {1, 1}, PadMode::Replicate, 3.0), "[pad] a fill value (3) is only used by constant");
  CHECK_THROWS_WITH_SUBSTR(pad(zeros({2, 0}), {1, 1}, PadMode::Replicate), "[pad] cannot replicate-pad dim 1 of size 0");
  Tensor c3 = zeros({3}), c2 = zeros({2});
  CHECK_THROWS_WITH_SUBSTR(batch_norm(zeros({4, 3, 2, 2}), c3, c3, c2, c3, true),
                           "[batch_norm] weight has shape [2] but the input has 3 channels (input shape [4, 3, 2, 2]); expected shape [3]");
  CHECK_THROWS_WITH_SUBSTR(batch_norm(zeros({4, 3}), c2, c3), "[batch_norm] running_mean has shape [2] but the input has 3 channels");
  CHECK_THROWS_WITH_SUBSTR(batch_norm(zeros({1, 3}), c3, c3, {}, {}, true),
                           "[batch_norm] expected more than 1 value per channel when training; got input shape [1, 3]");
  CHECK_THROWS_WITH_SUBSTR(batch_norm(zeros({4, 3}), {}, {}, {}, {}, false),
                           "[batch_norm] running_mean and running_var must be defined in eval mode");
  CHECK_THROWS_WITH_SUBSTR(batch_norm(zeros({4}), c3, c3), "[batch_norm] expects an input of shape (N, C) or (N, C, ...); got shape [4]");
  CHECK_THROWS_WITH_SUBSTR(batch_norm(zeros({4, 3}, kInt64), c3, c3), "[batch_norm] dtype int64 is not supported");
  CHECK_THROWS_WITH_SUBSTR(dropout(x, 1.5), "[dropout] p must be a probability in [0, 1]; got 1.5");
  CHECK_THROWS_WITH_SUBSTR(dropout(x, -0.1, false), "[dropout] p must be a probability in [0, 1]; got -0.1");
  CHECK_THROWS_WITH_SUBSTR(dropout(zeros({3}, kInt64), 0.5), "[dropout] dtype int64 is not supported");
  CHECK_THROWS_WITH_SUBSTR(pixel_shuffle(zeros({1, 6, 2, 2}), 2),
                           "[pixel_shuffle] input channels 6 are not divisible by upscale_factor^2 = 4 (upscale_factor 2, input shape [1, 6, 2, 2])");
  CHECK_THROWS_WITH_SUBSTR(pixel_shuffle(zeros({4, 2}), 2), "[pixel_shuffle] expects an input of shape (*, C, H, W) with at least 3 dims");
  CHECK_THROWS_WITH_SUBSTR(pixel_shuffle(x, 0), "[pixel_shuffle] upscale_factor must be positive; got 0");
  CHECK_THROWS_WITH_SUBSTR(pixel_unshuffle(zeros({1, 1, 3, 4}), 2),
                           "[pixel_unshuffle] height 3 and width 4 must be divisible by downscale_factor 2");
}
