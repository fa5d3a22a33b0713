// The int8 forms of linear weights and the calibration observer (see quantize.h).
#include "quantize.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <unordered_map>

#include "cpu/qconv.h"
#include "cpu/qgemm.h"
#include "backend.h"
#include "creation.h"

namespace latent {

namespace {

constexpr const char* kOp = "quantize";

// Identity of a weight tensor: storage (weak, so a freed storage never matches a new one at the
// same address), offset, shape, strides (2-d linear or 4-d conv weights); the version is compared
// on lookup.
struct WeightKey {
  std::weak_ptr<Storage> storage;
  int64_t offset = 0;
  int rank = 0;
  int64_t sizes[4] = {}, strides[4] = {};
  uint32_t version = 0;
  static WeightKey of(const Tensor& w) {
    WeightKey k{w.storage(), w.storage_offset(), std::min(w.dim(), 4), {}, {}, w.storage()->version()};
    for (int d = 0; d < k.rank; ++d) k.sizes[d] = w.shape()[d], k.strides[d] = w.strides()[d];
    return k;
  }
  bool same_tensor(const WeightKey& o) const {
    if (offset != o.offset || rank != o.rank || storage.expired()) return false;
    for (int d = 0; d < rank; ++d)
      if (sizes[d] != o.sizes[d] || strides[d] != o.strides[d]) return false;
    return true;
  }
};

struct Entry {
  WeightKey key;
  std::shared_ptr<const QuantizedLinear> q;     // a linear weight's form, or
  std::shared_ptr<const QuantizedConv> conv;    // a conv weight's
};

struct ObservedEntry {
  WeightKey key;
  CalibrationStats stats;
};

struct Registry {
  std::mutex mutex;
  std::unordered_map<const Storage*, std::vector<Entry>> entries;
  bool calibrating = false;
  std::unordered_map<const Storage*, std::vector<ObservedEntry>> observed;
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: safe from other static destructors
  return *r;
}

// Entries plus a live calibration: the one load the linear hot path pays when quantization is unused.
std::atomic<int> g_active{0};

// Values kept per weight for percentiles: all of them up to this many, then a strided subsample.
constexpr size_t kSampleCap = size_t{1} << 21;

// Adds (or replaces) the entry of e.key's tensor.
void add_entry(const Tensor& weight, Entry e) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto& list = r.entries[weight.storage().get()];
  const size_t before = list.size();
  list.erase(std::remove_if(list.begin(), list.end(),
                            [&](const Entry& o) { return o.key.same_tensor(e.key) || o.key.storage.expired(); }),
             list.end());
  g_active -= int(before - list.size());
  list.push_back(std::move(e));
  ++g_active;
}

// A copy of the entry of exactly this tensor and version (both forms null when there is none).
Entry find_entry(const Tensor& weight) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.entries.find(weight.storage().get());
  if (it == r.entries.end()) return {};
  const WeightKey key = WeightKey::of(weight);
  for (const Entry& e : it->second)
    if (e.key.same_tensor(key) && e.key.version == key.version) return e;
  return {};
}

}  // namespace

std::pair<Tensor, Tensor> quantize_weight_symmetric(const Tensor& weight_in, bool per_channel) {
  if (!weight_in.defined() || weight_in.dim() != 2)
    fail(kOp, "a linear weight must be 2-d (out, in); got {}", weight_in.defined() ? fmt::format("{}", weight_in.shape()) : "undefined");
  const Tensor weight = weight_in.to(kFloat32).contiguous();
  const int64_t n = weight.shape()[0], k = weight.shape()[1];
  const float* w = weight.data_ptr<float>();
  Tensor q = empty({n, k}, kInt8), scales = empty({n}, kFloat32);
  int8_t* pq = q.data_ptr<int8_t>();
  float* ps = scales.data_ptr<float>();
  float all_max = 0.0f;
  for (int64_t i = 0; i < n * k; ++i) all_max = std::max(all_max, std::abs(w[i]));
  for (int64_t j = 0; j < n; ++j) {
    float m = all_max;
    if (per_channel) {
      m = 0.0f;
      for (int64_t p = 0; p < k; ++p) m = std::max(m, std::abs(w[j * k + p]));
    }
    if (!std::isfinite(m)) fail(kOp, "weight row {} holds a non-finite value", j);
    const float s = m > 0.0f ? m / 127.0f : 1.0f;
    ps[j] = s;
    for (int64_t p = 0; p < k; ++p)
      pq[j * k + p] = static_cast<int8_t>(std::clamp(std::nearbyint(w[j * k + p] / s), -127.0f, 127.0f));
  }
  return {q, scales};
}

std::pair<float, int32_t> uint8_params(double lo, double hi) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi)
    fail(kOp, "activation range [{}, {}] is not a finite interval", lo, hi);
  lo = std::min(lo, 0.0);
  hi = std::max(hi, 0.0);
  if (hi - lo < 1e-12) return {1.0f, 0};
  const float scale = static_cast<float>((hi - lo) / 255.0);
  const int32_t zero = static_cast<int32_t>(std::clamp(std::nearbyint(-lo / scale), 0.0, 255.0));
  return {scale, zero};
}

namespace {

/// What both int8 forms check and keep: the per-channel weight scales (positive, finite) and the
/// input's scale and zero point.
std::vector<float> checked_scales(const Tensor& weight_scale, float input_scale, int32_t input_zero) {
  if (!(input_scale > 0.0f) || !std::isfinite(input_scale))
    fail(kOp, "input scale must be positive and finite; got {}", input_scale);
  if (input_zero < 0 || input_zero > 255) fail(kOp, "input zero point {} is outside [0, 255]", input_zero);
  std::vector<float> scales = weight_scale.to(kFloat32).contiguous().to_vector<float>();
  for (float v : scales)
    if (!(v > 0.0f) || !std::isfinite(v)) fail(kOp, "weight scales must be positive and finite; got {}", v);
  return scales;
}

}  // namespace

std::shared_ptr<const QuantizedLinear> make_quantized_linear(const Tensor& q_in, const Tensor& weight_scale,
                                                             float input_scale, int32_t input_zero) {
  if (!q_in.defined() || q_in.dim() != 2 || q_in.dtype() != kInt8)
    fail(kOp, "quantized weights must be a 2-d int8 tensor; got {} {}", q_in.defined() ? dtype_name(q_in.dtype()) : "undefined",
         q_in.defined() ? fmt::format("{}", q_in.shape()) : "");
  const int64_t n = q_in.shape()[0], k = q_in.shape()[1];
  if (!weight_scale.defined() || weight_scale.numel() != n)
    fail(kOp, "weight scales: expected {} values (one per output channel); got {}", n,
         weight_scale.defined() ? weight_scale.numel() : 0);
  std::vector<float> scales = checked_scales(weight_scale, input_scale, input_zero);
  const Tensor q = q_in.contiguous();
  auto out = std::make_shared<QuantizedLinear>();
  out->packed = std::make_shared<const cpu::PackedQWeight>(cpu::pack_qweight(n, k, q.data_ptr<int8_t>(), k));
  out->int8_weight = q;
  out->weight_scale = std::move(scales);
  out->input_scale = input_scale;
  out->input_zero = input_zero;
  return out;
}

void set_quantized_linear(const Tensor& weight, std::shared_ptr<const QuantizedLinear> q) {
  if (!weight.defined() || weight.dim() != 2 || weight.dtype() != kFloat32 || !weight.device().is_cpu())
    fail(kOp, "int8 inference needs a 2-d float32 CPU weight; got {}", weight.defined() ? fmt::format("{} {} on {}", weight.dtype(), weight.shape(), weight.device()) : "undefined");
  if (!q || q->packed->n != weight.shape()[0] || q->packed->k != weight.shape()[1])
    fail(kOp, "int8 weights [{}, {}] do not match the weight's shape {}", q ? q->packed->n : 0, q ? q->packed->k : 0,
         weight.shape());
  add_entry(weight, Entry{WeightKey::of(weight), std::move(q), nullptr});
}

std::shared_ptr<const QuantizedLinear> find_quantized_linear(const Tensor& weight) {
  if (g_active.load(std::memory_order_relaxed) == 0 || weight.dim() != 2) return nullptr;
  return find_entry(weight).q;
}

std::pair<Tensor, Tensor> quantize_conv_weight_symmetric(const Tensor& weight, int64_t axis, bool per_channel) {
  if (!weight.defined() || weight.dim() != 4 || (axis != 0 && axis != 1))
    fail(kOp, "a conv weight must be 4-d with its output channels on axis 0 or 1; got {} (axis {})",
         weight.defined() ? fmt::format("{}", weight.shape()) : "undefined", axis);
  // Output channels first, (C_out, rest): quantize its rows, then back to the weight's layout.
  const Tensor w = (axis == 1 ? weight.transpose(0, 1) : weight).to(kFloat32).contiguous();
  const int64_t c_out = w.shape()[0];
  auto [q2, scales] = quantize_weight_symmetric(w.view({c_out, w.numel() / c_out}), per_channel);
  Tensor q = q2.view(w.shape());
  if (axis == 1) q = q.transpose(0, 1).contiguous();
  return {q, scales};
}

std::shared_ptr<const QuantizedConv> make_quantized_conv(const Tensor& q_in, const Tensor& weight_scale,
                                                         float input_scale, int32_t input_zero, bool transposed) {
  if (!q_in.defined() || q_in.dim() != 4 || q_in.dtype() != kInt8)
    fail(kOp, "quantized conv weights must be a 4-d int8 tensor; got {} {}", q_in.defined() ? dtype_name(q_in.dtype()) : "undefined",
         q_in.defined() ? fmt::format("{}", q_in.shape()) : "");
  const Tensor q = q_in.contiguous();
  const int64_t a = q.shape()[0], b = q.shape()[1], kh = q.shape()[2], kw = q.shape()[3];
  const int64_t c_out = transposed ? b : a;
  if (!weight_scale.defined() || weight_scale.numel() != c_out)
    fail(kOp, "conv weight scales: expected {} values (one per output channel); got {}", c_out,
         weight_scale.defined() ? weight_scale.numel() : 0);
  std::vector<float> scales = checked_scales(weight_scale, input_scale, input_zero);
  auto out = std::make_shared<QuantizedConv>();
  out->packed = std::make_shared<const cpu::PackedQWeight>(
      transposed ? cpu::pack_qconv_transpose_weight(a, b, kh, kw, q.data_ptr<int8_t>())
                 : cpu::pack_qconv_weight(a, b, kh, kw, q.data_ptr<int8_t>()));
  out->int8_weight = q;
  out->weight_scale = std::move(scales);
  out->input_scale = input_scale;
  out->input_zero = input_zero;
  out->transposed = transposed;
  return out;
}

void set_quantized_conv(const Tensor& weight, std::shared_ptr<const QuantizedConv> q) {
  if (!weight.defined() || weight.dim() != 4 || weight.dtype() != kFloat32 || !weight.device().is_cpu())
    fail(kOp, "int8 conv inference needs a 4-d float32 CPU weight; got {}", weight.defined() ? fmt::format("{} {} on {}", weight.dtype(), weight.shape(), weight.device()) : "undefined");
  if (!q || q->int8_weight.shape() != weight.shape())
    fail(kOp, "int8 conv weights {} do not match the weight's shape {}", q ? fmt::format("{}", q->int8_weight.shape()) : "(none)",
         weight.shape());
  add_entry(weight, Entry{WeightKey::of(weight), nullptr, std::move(q)});
}

std::shared_ptr<const QuantizedConv> find_quantized_conv(const Tensor& weight) {
  if (g_active.load(std::memory_order_relaxed) == 0 || weight.dim() != 4) return nullptr;
  return find_entry(weight).conv;
}

void clear_quantized_linears() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (auto& [s, list] : r.entries) g_active -= int(list.size());
  r.entries.clear();
}

CalibrationGuard::CalibrationGuard() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (r.calibrating) fail(kOp, "a calibration is already running");
  r.calibrating = true;
  r.observed.clear();
  ++g_active;
}

CalibrationGuard::~CalibrationGuard() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.calibrating = false;
  r.observed.clear();
  --g_active;
}

CalibrationStats CalibrationGuard::stats(const Tensor& weight) const {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.observed.find(weight.storage().get());
  if (it == r.observed.end()) return {};
  const WeightKey key = WeightKey::of(weight);
  for (const ObservedEntry& e : it->second)
    if (e.key.same_tensor(key)) return e.stats;
  return {};
}

namespace detail {

bool quantization_active() { return g_active.load(std::memory_order_relaxed) != 0; }

namespace {
void observe_input(const Tensor& weight, const Tensor& x_in, bool transposed) {
  Registry& r = registry();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    if (!r.calibrating) return;
  }
  const Tensor x = x_in.to(kFloat32).contiguous();
  const float* p = x.data_ptr<float>();
  const int64_t count = x.numel();
  if (count == 0) return;
  std::lock_guard<std::mutex> lock(r.mutex);
  auto& list = r.observed[weight.storage().get()];
  const WeightKey key = WeightKey::of(weight);
  ObservedEntry* entry = nullptr;
  for (ObservedEntry& e : list)
    if (e.key.same_tensor(key)) entry = &e;
  if (!entry) {
    list.push_back(ObservedEntry{key, {}});
    entry = &list.back();
    entry->stats.min = entry->stats.max = p[0];
    entry->stats.transposed = transposed;
  }
  CalibrationStats& s = entry->stats;
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(p[i])) fail(kOp, "calibration input of a {} layer with weight {} holds {}", transposed ? "conv_transpose2d" : key.rank == 4 ? "conv2d" : "linear", weight.shape(), p[i]);
    s.min = std::min(s.min, double(p[i]));
    s.max = std::max(s.max, double(p[i]));
  }
  // Keep every value up to the cap; past it, every stride-th (stride doubling), which keeps the
  // sample spread over all batches.
  const int64_t stride = std::max<int64_t>(1, (s.count + count) / int64_t(kSampleCap) + 1);
  for (int64_t i = 0; i < count; i += stride) s.sample.push_back(p[i]);
  if (s.sample.size() > kSampleCap) {
    size_t w = 0;
    for (size_t i = 0; i < s.sample.size(); i += 2) s.sample[w++] = s.sample[i];
    s.sample.resize(w);
  }
  s.count += count;
}
}  // namespace

void observe_linear_input(const Tensor& weight, const Tensor& x) { observe_input(weight, x, false); }

namespace {
thread_local Int8Chain* t_chain = nullptr;
thread_local int64_t t_hand_overs = 0;

/// This thread's request when it names `weight` (the same data), else null; a request is taken
/// at most once.
Int8Chain* take_chain(const Tensor& weight) {
  Int8Chain* chain = t_chain;
  if (!chain || !chain->weight || chain->weight->data_ptr<float>() != weight.data_ptr<float>()) return nullptr;
  t_chain = nullptr;
  return chain;
}

Tensor float32_bias(const Tensor& bias) {
  return !bias.defined() || (bias.dtype() == kFloat32 && bias.is_contiguous()) ? bias : bias.to(kFloat32).contiguous();
}
}  // namespace

int64_t int8_chain_hand_overs() { return t_hand_overs; }

Int8ChainScope::Int8ChainScope(Int8Chain* chain) { t_chain = chain; }
Int8ChainScope::~Int8ChainScope() { t_chain = nullptr; }

bool linear_inference_int8(const Tensor& x_in, const Tensor& weight, const Tensor& bias_in, Activation activation,
                           const Tensor& out) {
  const std::shared_ptr<const QuantizedLinear> q = find_quantized_linear(weight);
  if (!q) {
    observe_linear_input(weight, x_in);
    return false;
  }
  Int8Chain* chain = take_chain(weight);
  const cpu::PackedQWeight& w = *q->packed;
  const int64_t m = x_in.shape()[0];
  const uint8_t* rows = nullptr;
  int64_t lda = w.k4;
  if (chain && chain->input_u8.defined()) {
    const Tensor& u = chain->input_u8;
    if (u.dtype() != kUInt8 || u.dim() != 2 || !u.is_contiguous() || u.shape()[0] != m || u.shape()[1] < w.k4)
      return false;  // not this layer's uint8 rows: the caller runs float32 (x is only a placeholder)
    rows = u.data_ptr<uint8_t>();
    lda = u.shape()[1];
  } else {
    const Tensor x = x_in.is_contiguous() ? x_in : x_in.contiguous();
    thread_local std::vector<uint8_t> buffer;  // reused: no allocation per call after the first
    buffer.resize(size_t(m * w.k4));
    cpu::quantize_u8(m, w.k, x.data_ptr<float>(), w.k, q->input_scale, q->input_zero, buffer.data(), w.k4);
    rows = buffer.data();
  }
  const Tensor bias = float32_bias(bias_in);
  cpu::QEpilogue ep;
  ep.a_scale = q->input_scale;
  ep.a_zero = q->input_zero;
  ep.w_scale = q->weight_scale.data();
  ep.bias = bias.defined() ? bias.data_ptr<float>() : nullptr;
  ep.relu = activation == Activation::Relu;
  const bool to_u8 = chain && chain->requantize && (activation == Activation::None || activation == Activation::Relu);
  if (to_u8) {  // rows of the next layer's K4 = round_up(out, 4) bytes
    const int64_t k4 = (w.n + 3) / 4 * 4;
    chain->output_u8 = empty({m, k4}, kUInt8, out.device());
    ++t_hand_overs;
    ep.out_u8 = chain->output_u8.data_ptr<uint8_t>();
    ep.ldc = k4;
    ep.out_scale = chain->out_scale;
    ep.out_zero = chain->out_zero;
  } else {
    ep.sigmoid = activation == Activation::Sigmoid;
    ep.out_f32 = out.data_ptr<float>();
    ep.ldc = w.n;
  }
  cpu::qgemm_u8s8(m, rows, lda, w, ep);
  if (activation == Activation::Tanh) backend(out.device(), "linear").unary(UnaryOp::Tanh, out, out, 0, 0);
  if (chain) chain->taken = true;
  return true;
}

bool conv_inference_int8(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
                         bool transposed, const Tensor& out) {
  if (weight.dim() != 4 || x.dim() != 4 || x.dtype() != kFloat32 || !x.device().is_cpu() || p.groups != 1 ||
      !out.is_contiguous() || out.dtype() != kFloat32)
    return false;
  const std::shared_ptr<const QuantizedConv> q = find_entry(weight).conv;
  if (!q || q->transposed != transposed) {
    observe_input(weight, x, transposed);
    return false;
  }
  Int8Chain* chain = take_chain(weight);
  const bool u8_in = chain && chain->input_u8.defined() && chain->input_u8.dtype() == kUInt8 &&
                     chain->input_u8.is_contiguous() && chain->input_u8.numel() == x.numel();
  if (chain && chain->input_u8.defined() && !u8_in) return false;  // the placeholder x holds nothing
  const Tensor b = float32_bias(bias);
  cpu::QConvShape s;
  s.n = x.shape()[0], s.c_in = x.shape()[1], s.h = x.shape()[2], s.w = x.shape()[3];
  s.c_out = out.shape()[1], s.ho = out.shape()[2], s.wo = out.shape()[3];
  s.kh = weight.shape()[2], s.kw = weight.shape()[3];
  s.sh = p.stride[0], s.sw = p.stride[1], s.ph = p.padding[0], s.pw = p.padding[1];
  s.dh = p.dilation[0], s.dw = p.dilation[1];
  const uint8_t* xq_data = nullptr;
  bool st_in_nhwc = false;
  thread_local std::vector<uint8_t> xq;  // reused: no allocation per call after the first
  if (u8_in) {
    xq_data = chain->input_u8.data_ptr<uint8_t>();
    st_in_nhwc = true;
  } else {
    const Tensor xc = x.is_contiguous() ? x : x.contiguous();
    xq.resize(size_t(xc.numel()));
    if (s.c_in > 1) {  // channels last, as the kernels read it (one channel: NCHW is NHWC already)
      cpu::quantize_u8_nhwc(s.n, s.c_in, s.h * s.w, xc.data_ptr<float>(), q->input_scale, q->input_zero, xq.data());
      st_in_nhwc = true;
    } else {
      cpu::quantize_u8(1, xc.numel(), xc.data_ptr<float>(), xc.numel(), q->input_scale, q->input_zero, xq.data(), xc.numel());
    }
    xq_data = xq.data();
  }
  cpu::QConvStore st;
  st.a_scale = q->input_scale;
  st.a_zero = q->input_zero;
  st.w_scale = q->weight_scale.data();
  st.bias = b.defined() ? b.data_ptr<float>() : nullptr;
  st.relu = chain && chain->relu;
  st.sigmoid = chain && chain->sigmoid && !chain->requantize;
  st.in_nhwc = st_in_nhwc;
  if (chain && chain->requantize) {
    chain->output_u8 = empty({s.n, s.ho, s.wo, s.c_out}, kUInt8, out.device());  // channels last
    ++t_hand_overs;
    st.out_u8 = chain->output_u8.data_ptr<uint8_t>();
    st.out_nhwc = true;
    st.out_scale = chain->out_scale;
    st.out_zero = chain->out_zero;
  } else {
    st.out = out.data_ptr<float>();
  }
  if (transposed) cpu::qconv_transpose2d_u8s8(s, xq_data, *q->packed, st);
  else cpu::qconv2d_u8s8(s, xq_data, *q->packed, st);
  if (chain) chain->taken = true;
  return true;
}

}  // namespace detail

}  // namespace latent
