#include "init.h"

#include <cmath>

#include "../../autograd/grad_mode.h"
#include "../../ops/backend.h"

namespace latent::nn::init {
namespace {

void check_tensor(const char* op, const Tensor& t) {
  if (!t.defined()) fail(op, "argument 'tensor' is an undefined tensor");
  if (!t.is_floating_point()) fail(op, "dtype {} is not supported: expected float32 or float64", t.dtype());
}

Generator& gen_or_default(Generator* gen) { return gen ? *gen : default_generator(); }

/// Fills t in place, bumping its version like every in-place op.
template <class Fill>
Tensor fill_in_place(Tensor& t, Fill&& fill) {
  fill(backend(t.device(), "init"));
  t.storage()->bump_version();
  return t;
}

int64_t fan_for(const char* op, const Tensor& t, std::string_view mode) {
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  if (mode == "fan_in") return fan_in;
  if (mode == "fan_out") return fan_out;
  fail(op, "mode '{}' is not supported: expected 'fan_in' or 'fan_out'", mode);
}

}  // namespace

double calculate_gain(std::string_view nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "conv1d" || nonlinearity == "conv2d" ||
      nonlinearity == "conv3d" || nonlinearity == "conv_transpose1d" || nonlinearity == "conv_transpose2d" ||
      nonlinearity == "conv_transpose3d" || nonlinearity == "sigmoid")
    return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") {
    const double slope = param < 0 ? 0.01 : param;
    return std::sqrt(2.0 / (1.0 + slope * slope));
  }
  if (nonlinearity == "selu") return 3.0 / 4.0;
  fail("calculate_gain", "unsupported nonlinearity '{}' (expected linear, conv1d, conv2d, conv3d, "
       "conv_transpose1d/2d/3d, sigmoid, tanh, relu, leaky_relu or selu)", nonlinearity);
}

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& tensor) {
  constexpr const char* op = "calculate_fan_in_and_fan_out";
  if (!tensor.defined()) fail(op, "argument 'tensor' is an undefined tensor");
  if (tensor.dim() < 2)
    fail(op, "fan in and fan out need a tensor with at least 2 dims; got shape {}", tensor.shape());
  int64_t receptive = 1;
  for (int d = 2; d < tensor.dim(); ++d) receptive *= tensor.size(d);
  return {tensor.size(1) * receptive, tensor.size(0) * receptive};
}

Tensor uniform_(Tensor tensor, double low, double high, Generator* gen) {
  check_tensor("uniform_", tensor);
  if (!(low <= high)) fail("uniform_", "low {} must not exceed high {}", low, high);
  return fill_in_place(tensor, [&](Backend& b) { b.uniform(tensor, gen_or_default(gen), low, high); });
}

Tensor normal_(Tensor tensor, double mean, double std, Generator* gen) {
  check_tensor("normal_", tensor);
  if (!(std >= 0)) fail("normal_", "std {} must be non-negative", std);
  return fill_in_place(tensor, [&](Backend& b) { b.normal(tensor, gen_or_default(gen), mean, std); });
}

Tensor constant_(Tensor tensor, double value) {
  check_tensor("constant_", tensor);
  return fill_in_place(tensor, [&](Backend& b) { b.fill(tensor, value); });
}

Tensor zeros_(Tensor tensor) { return constant_(tensor, 0.0); }
Tensor ones_(Tensor tensor) { return constant_(tensor, 1.0); }

Tensor xavier_uniform_(Tensor tensor, double gain, Generator* gen) {
  check_tensor("xavier_uniform_", tensor);
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  const double std = gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  const double a = std::sqrt(3.0) * std;
  return uniform_(tensor, -a, a, gen);
}

Tensor xavier_normal_(Tensor tensor, double gain, Generator* gen) {
  check_tensor("xavier_normal_", tensor);
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  const double std = gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  return normal_(tensor, 0.0, std, gen);
}

Tensor kaiming_uniform_(Tensor tensor, double a, std::string_view mode, std::string_view nonlinearity,
                         Generator* gen) {
  check_tensor("kaiming_uniform_", tensor);
  const int64_t fan = fan_for("kaiming_uniform_", tensor, mode);
  if (fan == 0) fail("kaiming_uniform_", "cannot initialise a tensor with zero elements (shape {})", tensor.shape());
  const double std = calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan));
  const double bound = std::sqrt(3.0) * std;
  return uniform_(tensor, -bound, bound, gen);
}

Tensor kaiming_normal_(Tensor tensor, double a, std::string_view mode, std::string_view nonlinearity,
                        Generator* gen) {
  check_tensor("kaiming_normal_", tensor);
  const int64_t fan = fan_for("kaiming_normal_", tensor, mode);
  if (fan == 0) fail("kaiming_normal_", "cannot initialise a tensor with zero elements (shape {})", tensor.shape());
  const double std = calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan));
  return normal_(tensor, 0.0, std, gen);
}

}  // namespace latent::nn::init
