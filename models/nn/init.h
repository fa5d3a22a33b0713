// Weight initialisation with PyTorch's formulas (torch.nn.init). Every function fills its tensor
// in place under no-grad (so it works on parameters), returns it, and draws from `gen`, or from
// the default generator (latent::manual_seed) when gen is null.
#pragma once

#include <string_view>
#include <utility>

#include "../../autograd/tensor.h"
#include "../../ops/random.h"

namespace latent::nn::init {

/// The recommended gain for a nonlinearity: "linear", "conv1d", "conv2d", "conv3d",
/// "conv_transpose1d/2d/3d" and "sigmoid" 1; "tanh" 5/3; "relu" sqrt(2); "leaky_relu"
/// sqrt(2 / (1 + slope^2)) with slope = param (0.01 when param < 0, i.e. not given); "selu" 3/4.
double calculate_gain(std::string_view nonlinearity, double param = -1.0);

/// (fan_in, fan_out) = (size(1) * receptive field, size(0) * receptive field), the receptive field
/// being the product of the dims after the first two. Needs at least 2 dims.
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& tensor);

/// Uniform in [low, high).
Tensor uniform_(Tensor tensor, double low = 0.0, double high = 1.0, Generator* gen = nullptr);
/// Normal with the given mean and standard deviation.
Tensor normal_(Tensor tensor, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
/// Every element equal to value.
Tensor constant_(Tensor tensor, double value);
/// Every element 0 (in place, no gradient recorded); returns tensor.
Tensor zeros_(Tensor tensor);
/// Every element 1 (in place, no gradient recorded); returns tensor.
Tensor ones_(Tensor tensor);

/// Glorot: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).
Tensor xavier_uniform_(Tensor tensor, double gain = 1.0, Generator* gen = nullptr);
/// Glorot: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).
Tensor xavier_normal_(Tensor tensor, double gain = 1.0, Generator* gen = nullptr);

/// He: U(-bound, bound) with bound = calculate_gain(nonlinearity, a) * sqrt(3 / fan); mode
/// "fan_in" (default) or "fan_out" picks the fan. Layers use a = sqrt(5), which gives
/// bound = 1 / sqrt(fan_in).
Tensor kaiming_uniform_(Tensor tensor, double a = 0.0, std::string_view mode = "fan_in",
                         std::string_view nonlinearity = "leaky_relu", Generator* gen = nullptr);
/// He: N(0, std^2) with std = calculate_gain(nonlinearity, a) / sqrt(fan).
Tensor kaiming_normal_(Tensor tensor, double a = 0.0, std::string_view mode = "fan_in",
                        std::string_view nonlinearity = "leaky_relu", Generator* gen = nullptr);

}  // namespace latent::nn::init
