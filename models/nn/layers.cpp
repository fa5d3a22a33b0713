#include "layers.h"

#include <cmath>
#include <typeinfo>

#include "../../autograd/grad_mode.h"
#include "../../ops/activation.h"
#include "../../ops/conv.h"
#include "../../ops/creation.h"
#include "../../ops/elementwise.h"
#include "../../ops/join.h"
#include "../../ops/reduce.h"
#include "../../ops/linalg.h"
#include "../../ops/quantize.h"
#include "../../ops/trace.h"
#include "../../ops/shape_ops.h"
#include "init.h"

namespace latent::nn {
namespace {

const char* py_bool(bool value) { return value ? "True" : "False"; }

/// "(3, 3)" as Python prints a 2-tuple.
std::string py_pair(Pair p) { return fmt::format("({}, {})", p.h, p.w); }

/// Pooling prints what the user passed: an int when both sides agree, else a tuple.
std::string py_int_or_pair(Pair p) { return p.h == p.w ? std::to_string(p.h) : py_pair(p); }

void check_positive(const char* layer, const char* what, int64_t value) {
  if (value <= 0) fail(layer, "{} must be positive; got {}", what, value);
}

/// PyTorch's _ConvNd/Linear reset_parameters: weight kaiming_uniform(a = sqrt(5)), bias
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in computed from the weight tensor.
void default_init(Tensor& weight, Tensor& bias, Generator* gen) {
  NoGradGuard no_grad;
  init::kaiming_uniform_(weight, std::sqrt(5.0), "fan_in", "leaky_relu", gen);
  if (bias.defined()) {
    const int64_t fan_in = init::calculate_fan_in_and_fan_out(weight).first;
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    init::uniform_(bias, -bound, bound, gen);
  }
}

/// Channels must divide into groups ("[Conv2d] in_channels 3 is not divisible by groups 2").
void check_conv(const char* layer, int64_t in_channels, int64_t out_channels, int64_t groups) {
  check_positive(layer, "in_channels", in_channels);
  check_positive(layer, "out_channels", out_channels);
  check_positive(layer, "groups", groups);
  if (in_channels % groups != 0) fail(layer, "in_channels {} is not divisible by groups {}", in_channels, groups);
  if (out_channels % groups != 0) fail(layer, "out_channels {} is not divisible by groups {}", out_channels, groups);
}

void check_pair(const char* layer, const char* what, Pair p, int64_t min) {
  if (p.h < min || p.w < min) fail(layer, "{} must be at least {}; got {}", what, min, py_pair(p));
}

/// The optional parts of a convolution's repr, as in PyTorch's _ConvNd.extra_repr.
std::string conv_repr_tail(const std::string& padding, bool padding_set, const std::string& dilation,
                           bool dilation_set, const std::string& output_padding, bool output_padding_set,
                           int64_t groups, bool has_bias) {
  std::string s;
  if (padding_set) s += ", padding=" + padding;
  if (dilation_set) s += ", dilation=" + dilation;
  if (output_padding_set) s += ", output_padding=" + output_padding;
  if (groups != 1) s += fmt::format(", groups={}", groups);
  if (!has_bias) s += ", bias=False";
  return s;
}

}  // namespace

// ---- Linear ----

Linear::Linear(int64_t in_features, int64_t out_features, bool bias)
    : in_features(in_features), out_features(out_features) {
  check_positive("Linear", "in_features", in_features);
  check_positive("Linear", "out_features", out_features);
  weight = register_parameter("weight", empty({out_features, in_features}));
  if (bias) this->bias = register_parameter("bias", empty({out_features}));
  reset_parameters();
}

void Linear::reset_parameters(Generator* gen) { default_init(weight, bias, gen); }

void Linear::check_input(const Tensor& input) const {
  if (!input.defined()) fail("Linear", "input is an undefined tensor");
  if (input.dim() < 1 || input.size(-1) != in_features)
    fail("Linear", "expected an input whose last dim is in_features = {}; got shape {}", in_features, input.shape());
}

Tensor Linear::forward(const Tensor& input) {
  check_input(input);
  return linear(input, weight, bias);
}

std::string Linear::extra_repr() const {
  return fmt::format("in_features={}, out_features={}, bias={}", in_features, out_features, py_bool(bias.defined()));
}

// ---- activations ----

Tensor ReLU::forward(const Tensor& input) { return relu(input); }
Tensor LeakyReLU::forward(const Tensor& input) { return leaky_relu(input, negative_slope); }
std::string LeakyReLU::extra_repr() const { return "negative_slope=" + python_float(negative_slope); }
Tensor Sigmoid::forward(const Tensor& input) { return sigmoid(input); }
Tensor Tanh::forward(const Tensor& input) { return tanh(input); }
Tensor Softplus::forward(const Tensor& input) { return softplus(input, beta, threshold); }
std::string Softplus::extra_repr() const {
  return "beta=" + python_float(beta) + ", threshold=" + python_float(threshold);
}
Tensor ELU::forward(const Tensor& input) { return elu(input, alpha); }
std::string ELU::extra_repr() const { return "alpha=" + python_float(alpha); }
Tensor GELU::forward(const Tensor& input) { return gelu(input); }
std::string GELU::extra_repr() const { return "approximate='none'"; }

// ---- reshaping ----

Tensor Flatten::forward(const Tensor& input) { return flatten(input, start_dim, end_dim); }
std::string Flatten::extra_repr() const { return fmt::format("start_dim={}, end_dim={}", start_dim, end_dim); }

Unflatten::Unflatten(int64_t dim, std::vector<int64_t> sizes) : dim(dim), sizes(std::move(sizes)) {
  if (this->sizes.empty()) fail("Unflatten", "sizes must not be empty");
  int unknown = 0;
  for (int64_t s : this->sizes) {
    if (s == -1) ++unknown;
    else if (s <= 0) fail("Unflatten", "sizes must be positive or -1; got {}", fmt::join(this->sizes, ", "));
  }
  if (unknown > 1) fail("Unflatten", "at most one size may be -1; got ({})", fmt::join(this->sizes, ", "));
}

Tensor Unflatten::forward(const Tensor& input) {
  if (!input.defined()) fail("Unflatten", "input is an undefined tensor");
  const int d = wrap_dim("Unflatten", dim, input.dim());
  int64_t known = 1;
  bool has_unknown = false;
  for (int64_t s : sizes) {
    if (s == -1) has_unknown = true;
    else known *= s;
  }
  const int64_t size = input.size(d);
  if (has_unknown ? size % known != 0 : size != known)
    fail("Unflatten", "dim {} of size {} cannot be split into ({}) (input shape {})", dim, size,
         fmt::join(sizes, ", "), input.shape());
  Shape shape;
  for (int i = 0; i < input.dim(); ++i) {
    if (i != d) {
      shape.push_back(input.size(i));
      continue;
    }
    for (int64_t s : sizes) shape.push_back(s == -1 ? size / known : s);
  }
  return reshape(input, shape);
}

std::string Unflatten::extra_repr() const {
  return fmt::format("dim={}, unflattened_size=({}{})", dim, fmt::join(sizes, ", "), sizes.size() == 1 ? "," : "");
}

// ---- Sequential ----

void Sequential::push_back(std::shared_ptr<Module> module) {
  if (!module) fail("Sequential", "cannot add a null module at index {}", modules_.size());
  register_module(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
}

std::shared_ptr<Module> Sequential::operator[](size_t index) const {
  if (index >= modules_.size()) fail("Sequential", "index {} is out of range for {} modules", index, modules_.size());
  return modules_[index];
}

namespace {
/// The activation a fused linear can apply for `module` (exactly ReLU, Sigmoid or Tanh, not a
/// subclass that may override forward); None otherwise.
Activation fusable_activation(const Module* module) {
  if (!module) return Activation::None;
  const std::type_info& type = typeid(*module);
  if (type == typeid(ReLU)) return Activation::Relu;
  if (type == typeid(Sigmoid)) return Activation::Sigmoid;
  if (type == typeid(Tanh)) return Activation::Tanh;
  return Activation::None;
}
}  // namespace

namespace {
/// A module whose weight has an int8 form (ops/quantize.h): exactly a Linear, Conv2d or
/// ConvTranspose2d (a subclass may override forward), with that form's input parameters.
struct Int8Layer {
  enum Kind { kNone, kLinear, kConv } kind = kNone;  // Conv2d and ConvTranspose2d chain alike (channels last)
  const Tensor* weight = nullptr;
  float input_scale = 1.0f;
  int32_t input_zero = 0;
};

Int8Layer int8_layer_of(const Module* module) {
  if (!module) return {};
  const std::type_info& type = typeid(*module);
  if (type == typeid(Linear)) {
    const Tensor* w = &static_cast<const Linear*>(module)->weight;
    if (auto q = find_quantized_linear(*w)) return {Int8Layer::kLinear, w, q->input_scale, q->input_zero};
    return {};
  }
  const bool transposed = type == typeid(ConvTranspose2d);
  const Tensor* w = type == typeid(Conv2d) ? &static_cast<const Conv2d*>(module)->weight
                    : transposed           ? &static_cast<const ConvTranspose2d*>(module)->weight
                                           : nullptr;
  if (!w) return {};
  auto q = find_quantized_conv(*w);
  if (!q || q->transposed != transposed) return {};
  return {Int8Layer::kConv, w, q->input_scale, q->input_zero};
}

/// x's uint8 form between two chained int8 layers (x itself is then a placeholder).
struct PendingU8 {
  Tensor u8;        // undefined: x holds the values
  Int8Layer::Kind kind = Int8Layer::kNone;
  Shape shape;      // x's shape (a Linear's input may have more than 2 dims; its rows are K4 >= features bytes)
  float scale = 1.0f;
  int32_t zero = 0;
  /// The float32 values in x's shape: a Linear's rows cut to its features, a conv's channels last
  /// back to (N, C, H, W).
  Tensor dequantized() const {
    const Tensor v = dequantize_linear(u8, full({1}, scale, kFloat32), full({1}, double(zero), kUInt8));
    if (kind == Int8Layer::kConv) return v.permute({0, 3, 1, 2}).contiguous();
    return v.slice(1, 0, shape[shape.size() - 1]).contiguous().view(shape);
  }
};
}  // namespace

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  const size_t n = modules_.size();
  // The int8 chain at inference (ops/quantize.h Int8Chain, `latent quantize` runs): an int8 layer
  // followed by ReLU applies it in its int8 store (a Linear also Sigmoid or Tanh, a conv writing
  // float32 also Sigmoid), and when the
  // layer after is another int8 layer of the same kind (Linear -> Linear, conv -> conv) the output
  // is handed over as uint8 in that layer's input parameters (x is then a placeholder of the right
  // shape). Not while a tape records or the ONNX exporter traces: both need the ops as written.
  const bool int8_chain = latent::detail::quantization_active() && !is_grad_enabled() && !trace::maybe_tracing();
  PendingU8 pending;
  for (size_t i = 0; i < n; ++i) {
    Module* module = modules_[i].get();
    if (int8_chain) {
      if (const Int8Layer layer = int8_layer_of(module); layer.kind != Int8Layer::kNone) {
        const bool linear_layer = layer.kind == Int8Layer::kLinear;
        Activation act = i + 1 < n ? fusable_activation(modules_[i + 1].get()) : Activation::None;
        // a conv's store applies relu, or sigmoid when it writes float32 (the decoder's last layer)
        if (!linear_layer && act != Activation::Relu && act != Activation::Sigmoid) act = Activation::None;
        const size_t after = i + 1 + (act != Activation::None ? 1 : 0);
        const Int8Layer next = after < n ? int8_layer_of(modules_[after].get()) : Int8Layer{};
        latent::detail::Int8Chain chain;
        chain.weight = layer.weight;
        chain.relu = act == Activation::Relu;
        chain.sigmoid = !linear_layer && act == Activation::Sigmoid;
        if (pending.kind == layer.kind) chain.input_u8 = pending.u8;
        chain.requantize = next.kind == layer.kind && (act == Activation::None || act == Activation::Relu);
        chain.out_scale = next.input_scale;
        chain.out_zero = next.input_zero;
        if (pending.u8.defined() && !chain.input_u8.defined()) x = pending.dequantized(), pending = {};
        Tensor y;
        {
          latent::detail::Int8ChainScope scope(&chain);
          if (linear_layer) {
            auto* l = static_cast<Linear*>(module);
            l->check_input(x);
            y = linear(x, l->weight, l->bias, act);
          } else {
            y = module->forward(x);
          }
        }
        if (chain.taken) {
          x = y;
          pending = {};
          if (chain.output_u8.defined())
            pending = {chain.output_u8, layer.kind, y.shape(), next.input_scale, next.input_zero};
          i = after - 1;
          continue;
        }
        // Not taken (the layer declined the request): y is discarded and the float32 path below runs.
      }
    }
    if (pending.u8.defined()) {  // the layer did not take the uint8 input: x as float32 after all
      x = pending.dequantized();
      pending = {};
    }
    // Linear followed by ReLU/Sigmoid/Tanh runs as one fused_linear op: the activation in the
    // GEMM's output pass, its derivative and the bias gradient in one backward pass.
    if (i + 1 < n && typeid(*module) == typeid(Linear)) {
      const Activation act = fusable_activation(modules_[i + 1].get());
      if (act != Activation::None) {
        auto* layer = static_cast<Linear*>(module);
        layer->check_input(x);
        x = linear(x, layer->weight, layer->bias, act);
        ++i;
        continue;
      }
    }
    x = module->forward(x);
  }
  if (pending.u8.defined()) x = pending.dequantized();
  return x;
}

// ---- convolutions ----

Conv1d::Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride, int64_t padding,
               int64_t dilation, int64_t groups, bool bias)
    : in_channels(in_channels), out_channels(out_channels), kernel_size(kernel_size), stride(stride),
      padding(padding), dilation(dilation), groups(groups) {
  check_conv("Conv1d", in_channels, out_channels, groups);
  check_positive("Conv1d", "kernel_size", kernel_size);
  check_positive("Conv1d", "stride", stride);
  check_positive("Conv1d", "dilation", dilation);
  if (padding < 0) fail("Conv1d", "padding must be non-negative; got {}", padding);
  weight = register_parameter("weight", empty({out_channels, in_channels / groups, kernel_size}));
  if (bias) this->bias = register_parameter("bias", empty({out_channels}));
  reset_parameters();
}

void Conv1d::reset_parameters(Generator* gen) { default_init(weight, bias, gen); }

Tensor Conv1d::forward(const Tensor& input) {
  return conv1d(input, weight, bias, stride, padding, dilation, groups);
}

std::string Conv1d::extra_repr() const {
  auto one = [](int64_t v) { return fmt::format("({},)", v); };
  return fmt::format("{}, {}, kernel_size={}, stride={}", in_channels, out_channels, one(kernel_size), one(stride)) +
         conv_repr_tail(one(padding), padding != 0, one(dilation), dilation != 1, "", false, groups, bias.defined());
}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, Pair stride, Pair padding, Pair dilation,
               int64_t groups, bool bias)
    : in_channels(in_channels), out_channels(out_channels), kernel_size(kernel_size), stride(stride),
      padding(padding), dilation(dilation), groups(groups) {
  check_conv("Conv2d", in_channels, out_channels, groups);
  check_pair("Conv2d", "kernel_size", kernel_size, 1);
  check_pair("Conv2d", "stride", stride, 1);
  check_pair("Conv2d", "dilation", dilation, 1);
  check_pair("Conv2d", "padding", padding, 0);
  weight = register_parameter("weight", empty({out_channels, in_channels / groups, kernel_size.h, kernel_size.w}));
  if (bias) this->bias = register_parameter("bias", empty({out_channels}));
  reset_parameters();
}

void Conv2d::reset_parameters(Generator* gen) { default_init(weight, bias, gen); }

Tensor Conv2d::forward(const Tensor& input) {
  return conv2d(input, weight, bias, stride, padding, dilation, groups);
}

std::string Conv2d::extra_repr() const {
  return fmt::format("{}, {}, kernel_size={}, stride={}", in_channels, out_channels, py_pair(kernel_size),
                     py_pair(stride)) +
         conv_repr_tail(py_pair(padding), !(padding == Pair(0)), py_pair(dilation), !(dilation == Pair(1)), "", false,
                        groups, bias.defined());
}

ConvTranspose2d::ConvTranspose2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, Pair stride,
                                 Pair padding, Pair output_padding, int64_t groups, bool bias, Pair dilation)
    : in_channels(in_channels), out_channels(out_channels), kernel_size(kernel_size), stride(stride),
      padding(padding), output_padding(output_padding), groups(groups), dilation(dilation) {
  check_conv("ConvTranspose2d", in_channels, out_channels, groups);
  check_pair("ConvTranspose2d", "kernel_size", kernel_size, 1);
  check_pair("ConvTranspose2d", "stride", stride, 1);
  check_pair("ConvTranspose2d", "dilation", dilation, 1);
  check_pair("ConvTranspose2d", "padding", padding, 0);
  check_pair("ConvTranspose2d", "output_padding", output_padding, 0);
  weight = register_parameter("weight", empty({in_channels, out_channels / groups, kernel_size.h, kernel_size.w}));
  if (bias) this->bias = register_parameter("bias", empty({out_channels}));
  reset_parameters();
}

void ConvTranspose2d::reset_parameters(Generator* gen) { default_init(weight, bias, gen); }

Tensor ConvTranspose2d::forward(const Tensor& input) {
  return conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation);
}

std::string ConvTranspose2d::extra_repr() const {
  return fmt::format("{}, {}, kernel_size={}, stride={}", in_channels, out_channels, py_pair(kernel_size),
                     py_pair(stride)) +
         conv_repr_tail(py_pair(padding), !(padding == Pair(0)), py_pair(dilation), !(dilation == Pair(1)),
                        py_pair(output_padding), !(output_padding == Pair(0)), groups, bias.defined());
}

// ---- BatchNorm ----

BatchNorm::BatchNorm(int64_t num_features, double eps, std::optional<double> momentum, bool affine,
                     bool track_running_stats)
    : num_features(num_features), eps(eps), momentum(momentum), affine(affine),
      track_running_stats(track_running_stats) {
  check_positive("BatchNorm", "num_features", num_features);
  if (!(eps > 0)) fail("BatchNorm", "eps must be positive; got {}", eps);
  if (momentum && !(*momentum >= 0 && *momentum <= 1))
    fail("BatchNorm", "momentum must be in [0, 1]; got {}", *momentum);
  if (affine) {
    weight = register_parameter("weight", empty({num_features}));
    bias = register_parameter("bias", empty({num_features}));
  }
  if (track_running_stats) {
    running_mean = register_buffer("running_mean", empty({num_features}));
    running_var = register_buffer("running_var", empty({num_features}));
    num_batches_tracked = register_buffer("num_batches_tracked", empty({}, kInt64));
  }
  reset_parameters();
}

void BatchNorm::reset_running_stats() {
  if (!track_running_stats) return;
  NoGradGuard no_grad;
  running_mean.zero_();
  running_var.fill_(1.0);
  num_batches_tracked.zero_();
}

void BatchNorm::reset_parameters() {
  reset_running_stats();
  if (!affine) return;
  NoGradGuard no_grad;
  weight.fill_(1.0);
  bias.zero_();
}

Tensor BatchNorm::forward(const Tensor& input) {
  const std::string name = type_name();
  if (!input.defined()) fail(name.c_str(), "input is an undefined tensor");
  check_input(input);
  if (input.size(1) != num_features)
    fail(name.c_str(), "expected {} channels (dim 1); got input shape {}", num_features, input.shape());
  // PyTorch's _BatchNorm.forward: count batches; momentum None means a cumulative average.
  double factor = momentum.value_or(0.0);
  if (is_training() && track_running_stats) {
    NoGradGuard no_grad;
    num_batches_tracked.add_(1.0);
    if (!momentum) factor = 1.0 / static_cast<double>(num_batches_tracked.item<int64_t>());
  }
  const bool use_batch_stats = is_training() || !track_running_stats;
  const bool update_stats = !is_training() || track_running_stats;
  if (stats_reducer && is_training()) return synced_forward(input, factor);
  return batch_norm(input, update_stats ? running_mean : Tensor(), update_stats ? running_var : Tensor(), weight, bias,
                    use_batch_stats, factor, eps);
}

// Synchronised batch norm: each process's per-channel sum and sum of squares (float64, so that
// E[x^2] - E[x]^2 keeps its digits) and its sample count, summed over the processes in one
// differentiable collective, give the global batch's mean and biased variance; the normalisation
// is composed of differentiable ops, so backward sums the statistics' gradients over the
// processes through the same collective (as PyTorch's SyncBatchNorm reduces sum_dy and
// sum_dy_xmu). The running statistics take the unbiased variance of the global batch.
Tensor BatchNorm::synced_forward(const Tensor& input, double factor) {
  const int64_t channels = num_features;
  Shape dims{0};
  for (int d = 2; d < input.dim(); ++d) dims.push_back(d);
  Shape broadcast;
  for (int d = 0; d < input.dim(); ++d) broadcast.push_back(d == 1 ? channels : 1);
  Tensor x = input.to(kFloat64);
  const double local_count = static_cast<double>(input.numel() / std::max<int64_t>(channels, 1));
  Tensor stats = cat({sum(x, dims), sum(x * x, dims), full({1}, local_count, kFloat64, input.device())}, 0);
  Tensor global = stats_reducer->sum_over_processes(stats);
  const double count = global.narrow(0, 2 * channels, 1).item<double>();
  if (count < 2) fail(type_name().c_str(), "synchronised batch norm needs more than one value per channel over all processes; got {}", count);
  Tensor mean = global.narrow(0, 0, channels) / count;
  Tensor var = global.narrow(0, channels, channels) / count - mean * mean;
  if (track_running_stats) {
    NoGradGuard no_grad;
    running_mean.mul_(1 - factor).add_(mean.detach().to(running_mean.dtype()) * factor);
    running_var.mul_(1 - factor).add_(var.detach().to(running_var.dtype()) * (factor * count / (count - 1)));
  }
  Tensor stddev = sqrt(var + eps);
  Tensor y = (x - mean.reshape(broadcast)) / stddev.reshape(broadcast);
  y = y.to(input.dtype());
  if (affine) y = y * weight.reshape(broadcast) + bias.reshape(broadcast);
  return y;
}

std::string BatchNorm::extra_repr() const {
  return fmt::format("{}, eps={}, momentum={}, affine={}, track_running_stats={}", num_features, python_float(eps),
                     momentum ? python_float(*momentum) : "None", py_bool(affine), py_bool(track_running_stats));
}

void BatchNorm1d::check_input(const Tensor& input) const {
  if (input.dim() != 2 && input.dim() != 3)
    fail("BatchNorm1d", "expected a 2-d (N, C) or 3-d (N, C, L) input; got shape {}", input.shape());
}

void BatchNorm2d::check_input(const Tensor& input) const {
  if (input.dim() != 4) fail("BatchNorm2d", "expected a 4-d input (N, C, H, W); got shape {}", input.shape());
}

// ---- Dropout ----

Dropout::Dropout(double p, Generator* gen) : p(p), gen(gen) {
  if (!(p >= 0.0 && p <= 1.0)) fail("Dropout", "p must be a probability in [0, 1]; got {}", p);
}

Tensor Dropout::forward(const Tensor& input) { return dropout(input, p, is_training(), gen); }

std::string Dropout::extra_repr() const { return "p=" + python_float(p) + ", inplace=False"; }

// ---- pooling and resampling ----

MaxPool2d::MaxPool2d(Pair kernel_size, std::optional<Pair> stride, Pair padding, Pair dilation, bool ceil_mode)
    : kernel_size(kernel_size), stride(stride.value_or(kernel_size)), padding(padding), dilation(dilation),
      ceil_mode(ceil_mode) {
  check_pair("MaxPool2d", "kernel_size", kernel_size, 1);
  check_pair("MaxPool2d", "stride", this->stride, 1);
  check_pair("MaxPool2d", "dilation", dilation, 1);
  check_pair("MaxPool2d", "padding", padding, 0);
}

Tensor MaxPool2d::forward(const Tensor& input) {
  return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode);
}

std::string MaxPool2d::extra_repr() const {
  return fmt::format("kernel_size={}, stride={}, padding={}, dilation={}, ceil_mode={}", py_int_or_pair(kernel_size),
                     py_int_or_pair(stride), py_int_or_pair(padding), py_int_or_pair(dilation), py_bool(ceil_mode));
}

AvgPool2d::AvgPool2d(Pair kernel_size, std::optional<Pair> stride, Pair padding, bool ceil_mode,
                     bool count_include_pad)
    : kernel_size(kernel_size), stride(stride.value_or(kernel_size)), padding(padding), ceil_mode(ceil_mode),
      count_include_pad(count_include_pad) {
  check_pair("AvgPool2d", "kernel_size", kernel_size, 1);
  check_pair("AvgPool2d", "stride", this->stride, 1);
  check_pair("AvgPool2d", "padding", padding, 0);
}

Tensor AvgPool2d::forward(const Tensor& input) {
  return avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad);
}

std::string AvgPool2d::extra_repr() const {
  return fmt::format("kernel_size={}, stride={}, padding={}", py_int_or_pair(kernel_size), py_int_or_pair(stride),
                     py_int_or_pair(padding));
}

Upsample::Upsample(double scale_factor, InterpolateMode mode, bool align_corners)
    : scale_factor(scale_factor), mode(mode), align_corners(align_corners) {
  if (!(scale_factor > 0) || !std::isfinite(scale_factor))
    fail("Upsample", "scale_factor must be positive and finite; got {}", scale_factor);
  if (mode == InterpolateMode::Nearest && align_corners)
    fail("Upsample", "align_corners applies to the bilinear mode only, not nearest");
}

Tensor Upsample::forward(const Tensor& input) { return interpolate(input, scale_factor, mode, align_corners); }

std::string Upsample::extra_repr() const {
  return "scale_factor=" + python_float(scale_factor) +
         (mode == InterpolateMode::Nearest ? ", mode='nearest'" : ", mode='bilinear'");
}

}  // namespace latent::nn
