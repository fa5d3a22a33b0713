// Module tests: parameter names and order against PyTorch's (hard-coded from its state_dict),
// state_dict round trips and strict/non-strict loading with their messages, train/eval, the
// printed module tree, default initialisation (bounds, statistics, seeding), init functions, every
// layer's forward against the functional op or a float64 loop, and a custom module trained with Adam.
#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "helpers.h"

using namespace latent;
using namespace latent::testing;
using nn::StateDict;

namespace {

/// The autoencoder of the issue, written the way a PyTorch user would write its twin:
///   self.encoder = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 32))
///   self.decoder = nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 784), nn.Sigmoid())
struct AutoEncoder : nn::Module {
  std::shared_ptr<nn::Sequential> encoder, decoder;
  AutoEncoder(int64_t in = 784, int64_t hidden = 128, int64_t code = 32) {
    encoder = register_module("encoder", std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(in, hidden),
                                                                          std::make_shared<nn::ReLU>(),
                                                                          std::make_shared<nn::Linear>(hidden, code)));
    decoder = register_module("decoder", std::make_shared<nn::Sequential>(
                                             std::make_shared<nn::Linear>(code, hidden), std::make_shared<nn::ReLU>(),
                                             std::make_shared<nn::Linear>(hidden, in), std::make_shared<nn::Sigmoid>()));
  }
  Tensor forward(const Tensor& x) override { return decoder->forward(encoder->forward(x)); }
};

std::vector<std::string> names_of(const StateDict& named) {
  std::vector<std::string> out;
  for (const auto& entry : named) out.push_back(entry.first);
  return out;
}

/// Runs expr and returns the latent::Error message ("" when nothing was thrown).
template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("parameter names and order match PyTorch's state_dict of the twin model") {
  AutoEncoder model;
  // print(list(dict(model.named_parameters()).keys())) for the PyTorch twin.
  const std::vector<std::string> expected = {
      "encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias",
      "decoder.0.weight", "decoder.0.bias", "decoder.2.weight", "decoder.2.bias",
  };
  CHECK(names_of(model.named_parameters()) == expected);
  CHECK(names_of(model.state_dict()) == expected);
  CHECK(model.parameters().size() == 8);
  CHECK(model.named_parameters()[0].second.shape() == Shape{128, 784});
  CHECK(model.named_parameters()[7].second.shape() == Shape{784});
  CHECK(model.parameter_count() == 784 * 128 + 128 + 128 * 32 + 32 + 32 * 128 + 128 + 128 * 784 + 784);
  for (const Tensor& p : model.parameters()) CHECK(p.requires_grad());
  // The handle a member holds is the registered tensor itself.
  CHECK(model.named_parameters()[0].second.is_same(
      std::static_pointer_cast<nn::Linear>((*model.encoder)[0])->weight));
  CHECK(model.children().size() == 2);
  CHECK(model.named_children()[1].first == "decoder");
  CHECK(model.child("encoder") == model.encoder);
  CHECK_THROWS_WITH_SUBSTR(model.child("middle"), "[AutoEncoder] has no submodule 'middle'");
  CHECK(model.named_parameters(false).empty());
  CHECK(model.encoder->named_parameters(false).empty());
  CHECK(names_of((*model.encoder)[0]->named_parameters(false)) == std::vector<std::string>{"weight", "bias"});
}

TEST_CASE("own parameters, then own buffers, then children; buffers in state_dict like PyTorch") {
  struct Net : nn::Module {
    Net() {
      register_module("features", std::make_shared<nn::Sequential>(std::make_shared<nn::Conv2d>(1, 4, 3),
                                                                   std::make_shared<nn::BatchNorm2d>(4),
                                                                   std::make_shared<nn::ReLU>()));
      register_parameter("scale", ones({1}));
      register_buffer("step", zeros({}, kInt64));
      register_module("head", std::make_shared<nn::Linear>(4, 2, false));
    }
  } net;
  // PyTorch: list(net.state_dict().keys()) for the same registrations.
  CHECK(names_of(net.state_dict()) ==
        std::vector<std::string>{"scale", "step", "features.0.weight", "features.0.bias", "features.1.weight",
                                 "features.1.bias", "features.1.running_mean", "features.1.running_var",
                                 "features.1.num_batches_tracked", "head.weight"});
  CHECK(names_of(net.named_parameters()) ==
        std::vector<std::string>{"scale", "features.0.weight", "features.0.bias", "features.1.weight",
                                 "features.1.bias", "head.weight"});
  CHECK(names_of(net.named_buffers()) ==
        std::vector<std::string>{"step", "features.1.running_mean", "features.1.running_var",
                                 "features.1.num_batches_tracked"});
  CHECK(net.buffers().size() == 4);
  CHECK(!net.named_buffers()[0].second.requires_grad());
}

TEST_CASE("a module shared twice lists its parameters once; state_dict lists both names") {
  struct Tied : nn::Module {
    Tied() {
      auto shared = std::make_shared<nn::Linear>(3, 3);
      register_module("a", shared);
      register_module("b", shared);
    }
  } tied;
  CHECK(names_of(tied.named_parameters()) == std::vector<std::string>{"a.weight", "a.bias"});
  CHECK(names_of(tied.state_dict()) == std::vector<std::string>{"a.weight", "a.bias", "b.weight", "b.bias"});
}

TEST_CASE("registration errors") {
  nn::Module m("Custom");
  m.register_parameter("w", zeros({2}));
  CHECK_THROWS_WITH_SUBSTR(m.register_parameter("w", zeros({2})), "[register_parameter] 'w' is already registered in Custom");
  CHECK_THROWS_WITH_SUBSTR(m.register_buffer("w", zeros({2})), "[register_buffer] 'w' is already registered");
  CHECK_THROWS_WITH_SUBSTR(m.register_parameter("fc.w", zeros({2})), "must not contain '.'");
  CHECK_THROWS_WITH_SUBSTR(m.register_parameter("", zeros({2})), "must not be empty");
  CHECK_THROWS_WITH_SUBSTR(m.register_parameter("i", zeros({2}, kInt64)), "'i' has dtype int64");
  CHECK_THROWS_WITH_SUBSTR(m.register_parameter("u", Tensor()), "'u' is an undefined tensor");
  Tensor leaf = ones({2}).requires_grad_(true);
  CHECK_THROWS_WITH_SUBSTR(m.register_parameter("r", leaf * 2.0), "pass a leaf");
  CHECK_THROWS_WITH_SUBSTR(m.register_module("n", std::shared_ptr<nn::Module>()), "[register_module] 'n' is a null module");
  CHECK_THROWS_WITH_SUBSTR(m.forward(ones({1})), "[Custom] forward is not implemented");
  CHECK_THROWS_WITH_SUBSTR(nn::Linear(0, 3), "[Linear] in_features must be positive; got 0");
  nn::Sequential seq(std::make_shared<nn::ReLU>());
  CHECK_THROWS_WITH_SUBSTR(seq[1], "[Sequential] index 1 is out of range for 1 modules");
}

TEST_CASE("state_dict round trip: values, member handles, aliasing") {
  manual_seed(1);
  AutoEncoder a(6, 5, 2);
  manual_seed(2);
  AutoEncoder b(6, 5, 2);
  Tensor x = rand({3, 6});
  CHECK(a.forward(x).to_vector<double>() != b.forward(x).to_vector<double>());
  auto b_weight = std::static_pointer_cast<nn::Linear>((*b.encoder)[0])->weight;
  nn::LoadResult result = b.load_state_dict(a.state_dict());
  CHECK(result.missing_keys.empty());
  CHECK(result.unexpected_keys.empty());
  check_close(b.forward(x), a.forward(x), 0, 0);
  // The member handle still points at the model's weight, now holding a's values.
  check_close(b_weight, std::static_pointer_cast<nn::Linear>((*a.encoder)[0])->weight, 0, 0);
  CHECK(b_weight.requires_grad());
  // state_dict entries alias the model (as in PyTorch) and are detached.
  StateDict sd = a.state_dict();
  CHECK(!sd[0].second.requires_grad());
  {
    NoGradGuard g;
    sd[0].second.fill_(0.5);
  }
  CHECK(a.named_parameters()[0].second.at<double>({0, 0}) == 0.5);
  // A std::map (what a file reader may produce) loads too.
  std::map<std::string, Tensor> as_map(sd.begin(), sd.end());
  b.load_state_dict(as_map);
  CHECK(b_weight.at<double>({1, 1}) == 0.5);
}

TEST_CASE("load_state_dict: strict and non-strict, with one-line messages naming the tensor") {
  AutoEncoder model(4, 3, 2);
  StateDict full = model.state_dict();

  SUBCASE("missing key") {
    StateDict sd(full.begin(), full.end() - 1);
    CHECK(error_of([&] { model.load_state_dict(sd); }) ==
          "[load_state_dict] missing key 'decoder.2.bias' in AutoEncoder (strict=false loads the rest and returns them)");
    nn::LoadResult r = model.load_state_dict(sd, false);
    CHECK(r.missing_keys == std::vector<std::string>{"decoder.2.bias"});
    CHECK(r.unexpected_keys.empty());
  }
  SUBCASE("unexpected and missing keys together") {
    StateDict sd = full;
    sd[0].first = "encoder.1.weight";
    sd.emplace_back("extra", zeros({1}));
    CHECK(error_of([&] { model.load_state_dict(sd); }) ==
          "[load_state_dict] missing key 'encoder.0.weight'; unexpected keys 'encoder.1.weight', 'extra' in "
          "AutoEncoder (strict=false loads the rest and returns them)");
    // Non-strict loads what matches and reports the rest.
    {
      NoGradGuard g;
      sd[1].second = full[1].second.clone().fill_(0.25);
    }
    nn::LoadResult r = model.load_state_dict(sd, false);
    CHECK(r.missing_keys == std::vector<std::string>{"encoder.0.weight"});
    CHECK(r.unexpected_keys == std::vector<std::string>{"encoder.1.weight", "extra"});
    check_values(model.named_parameters()[1].second, {0.25, 0.25, 0.25});
  }
  SUBCASE("shape mismatch fails in both modes and changes nothing") {
    StateDict sd;
    for (auto& [name, t] : full) sd.emplace_back(name, zeros_like(t));
    sd[2].second = zeros({2, 4});
    const std::vector<double> before = model.named_parameters()[0].second.to_vector<double>();
    const std::string message = "[load_state_dict] 'encoder.2.weight': shape [2, 4] in the state dict, [2, 3] in the model";
    CHECK(error_of([&] { model.load_state_dict(sd); }) == message);
    CHECK(error_of([&] { model.load_state_dict(sd, false); }) == message);
    CHECK(model.named_parameters()[0].second.to_vector<double>() == before);
  }
  SUBCASE("dtype mismatch") {
    StateDict sd = full;
    sd[3].second = full[3].second.to(kFloat64);
    CHECK(error_of([&] { model.load_state_dict(sd, false); }) ==
          "[load_state_dict] 'encoder.2.bias': dtype float64 in the state dict, float32 in the model");
  }
  SUBCASE("duplicate and undefined entries") {
    StateDict sd = full;
    sd.push_back(full[0]);
    CHECK_THROWS_WITH_SUBSTR(model.load_state_dict(sd), "key 'encoder.0.weight' appears more than once");
    sd = full;
    sd[1].second = Tensor();
    CHECK_THROWS_WITH_SUBSTR(model.load_state_dict(sd), "'encoder.0.bias' is an undefined tensor in the state dict");
  }
}

TEST_CASE("train() and eval() reach every descendant; Dropout and BatchNorm follow them") {
  auto model = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(4, 4),
                                                std::make_shared<nn::Sequential>(std::make_shared<nn::Dropout>(0.5)),
                                                std::make_shared<nn::BatchNorm1d>(4));
  CHECK(model->is_training());
  model->eval();
  CHECK(!model->is_training());
  CHECK(!(*model)[1]->is_training());
  CHECK(!(*std::static_pointer_cast<nn::Sequential>((*model)[1]))[0]->is_training());
  CHECK(!(*model)[2]->is_training());
  Tensor x = rand({8, 4});
  auto dropout = std::make_shared<nn::Dropout>(0.5);
  dropout->eval();
  check_close(dropout->forward(x), x, 0, 0);
  dropout->train();
  CHECK(dropout->is_training());
  std::vector<double> y = dropout->forward(x).to_vector<double>();
  const std::vector<double> xv = x.to_vector<double>();
  int zeros_count = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    if (y[i] == 0) ++zeros_count;
    else CHECK(y[i] == doctest::Approx(2 * xv[i]));
  }
  CHECK(zeros_count > 4);
  CHECK(zeros_count < 28);
  model->train();
  CHECK((*model)[2]->is_training());
}

TEST_CASE("printout matches PyTorch's repr") {
  AutoEncoder model;
  // print(model) for the PyTorch twin.
  CHECK(model.to_string() ==
        "AutoEncoder(\n"
        "  (encoder): Sequential(\n"
        "    (0): Linear(in_features=784, out_features=128, bias=True)\n"
        "    (1): ReLU()\n"
        "    (2): Linear(in_features=128, out_features=32, bias=True)\n"
        "  )\n"
        "  (decoder): Sequential(\n"
        "    (0): Linear(in_features=32, out_features=128, bias=True)\n"
        "    (1): ReLU()\n"
        "    (2): Linear(in_features=128, out_features=784, bias=True)\n"
        "    (3): Sigmoid()\n"
        "  )\n"
        ")");
  auto conv = std::make_shared<nn::Sequential>(
      std::make_shared<nn::Conv2d>(1, 16, 3, 2, 1), std::make_shared<nn::BatchNorm2d>(16),
      std::make_shared<nn::LeakyReLU>(0.2), std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Dropout>(0.25),
      std::make_shared<nn::Flatten>(), std::make_shared<nn::Unflatten>(1, std::vector<int64_t>{16, 7, 7}),
      std::make_shared<nn::ConvTranspose2d>(16, 8, 3, 2, 1, 1), std::make_shared<nn::Upsample>(2),
      std::make_shared<nn::Conv1d>(4, 4, 3, 1, 0, 1, 1, false), std::make_shared<nn::AvgPool2d>(2, 1),
      std::make_shared<nn::Softplus>(), std::make_shared<nn::ELU>(), std::make_shared<nn::GELU>(),
      std::make_shared<nn::Tanh>(), std::make_shared<nn::BatchNorm1d>(4, 1e-3, std::nullopt, false));
  // print(...) of the same nn.Sequential in PyTorch 2.x.
  CHECK(conv->to_string() ==
        "Sequential(\n"
        "  (0): Conv2d(1, 16, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))\n"
        "  (1): BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
        "  (2): LeakyReLU(negative_slope=0.2)\n"
        "  (3): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        "  (4): Dropout(p=0.25, inplace=False)\n"
        "  (5): Flatten(start_dim=1, end_dim=-1)\n"
        "  (6): Unflatten(dim=1, unflattened_size=(16, 7, 7))\n"
        "  (7): ConvTranspose2d(16, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))\n"
        "  (8): Upsample(scale_factor=2.0, mode='nearest')\n"
        "  (9): Conv1d(4, 4, kernel_size=(3,), stride=(1,), bias=False)\n"
        "  (10): AvgPool2d(kernel_size=2, stride=1, padding=0)\n"
        "  (11): Softplus(beta=1.0, threshold=20.0)\n"
        "  (12): ELU(alpha=1.0)\n"
        "  (13): GELU(approximate='none')\n"
        "  (14): Tanh()\n"
        "  (15): BatchNorm1d(4, eps=0.001, momentum=None, affine=False, track_running_stats=True)\n"
        ")");
  std::ostringstream os;
  os << nn::Linear(2, 3, false);
  CHECK(os.str() == "Linear(in_features=2, out_features=3, bias=False)");
  CHECK(nn::Sequential().to_string() == "Sequential()");
  CHECK(nn::python_float(1e-5) == "1e-05");
  CHECK(nn::python_float(3.0) == "3.0");
  CHECK(nn::python_float(0.0001) == "0.0001");
  CHECK(nn::python_float(1e16) == "1e+16");
}

TEST_CASE("default initialisation: PyTorch's bounds, statistics and seeding") {
  auto check_bounds = [](const Tensor& t, double bound) {
    const std::vector<double> v = t.to_vector<double>();
    double lo = 1e9, hi = -1e9, sum = 0, sq = 0;
    for (double x : v) {
      lo = std::min(lo, x);
      hi = std::max(hi, x);
      sum += x;
      sq += x * x;
    }
    const double n = static_cast<double>(v.size());
    CHECK(lo >= -bound);
    CHECK(hi <= bound);
    if (v.size() < 250) return;  // statistics only where they are tight
    // Uniform(-b, b): the extremes come close to b, mean 0, standard deviation b / sqrt(3).
    CHECK(hi > 0.9 * bound);
    CHECK(lo < -0.9 * bound);
    CHECK(std::abs(sum / n) < 4 * bound / std::sqrt(3 * n));
    CHECK(std::sqrt(sq / n) == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.08));
  };
  manual_seed(0);
  nn::Linear fc(100, 300);
  check_bounds(fc.weight, 1.0 / std::sqrt(100.0));
  check_bounds(fc.bias, 1.0 / std::sqrt(100.0));
  nn::Conv2d conv(3, 64, 3);
  check_bounds(conv.weight, 1.0 / std::sqrt(27.0));
  check_bounds(conv.bias, 1.0 / std::sqrt(27.0));
  nn::ConvTranspose2d deconv(16, 32, 3);  // weight (16, 32, 3, 3): fan_in = 32 * 9, as PyTorch computes it
  check_bounds(deconv.weight, 1.0 / std::sqrt(288.0));
  nn::Conv1d conv1(4, 200, 5);
  check_bounds(conv1.weight, 1.0 / std::sqrt(20.0));

  nn::BatchNorm2d bn(3);
  check_values(bn.weight, {1, 1, 1});
  check_values(bn.bias, {0, 0, 0});
  check_values(bn.running_mean, {0, 0, 0});
  check_values(bn.running_var, {1, 1, 1});
  CHECK(bn.num_batches_tracked.dtype() == kInt64);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 0);

  // Seeded: the same seed gives the same model; another seed another one; a generator leaves the
  // default one alone.
  manual_seed(42);
  AutoEncoder a(8, 4, 2);
  manual_seed(42);
  AutoEncoder b(8, 4, 2);
  manual_seed(43);
  AutoEncoder c(8, 4, 2);
  for (size_t i = 0; i < a.parameters().size(); ++i) {
    CHECK(a.parameters()[i].to_vector<double>() == b.parameters()[i].to_vector<double>());
    CHECK(a.parameters()[i].to_vector<double>() != c.parameters()[i].to_vector<double>());
  }
  Generator gen(5);
  nn::Linear l1(3, 3);
  l1.reset_parameters(&gen);
  Generator gen2(5);
  nn::Linear l2(3, 3);
  l2.reset_parameters(&gen2);
  CHECK(l1.weight.to_vector<double>() == l2.weight.to_vector<double>());
  CHECK(l1.bias.to_vector<double>() == l2.bias.to_vector<double>());
}

TEST_CASE("init functions: gains, fans, bounds and errors") {
  using namespace nn::init;
  CHECK(calculate_gain("linear") == 1.0);
  CHECK(calculate_gain("conv2d") == 1.0);
  CHECK(calculate_gain("sigmoid") == 1.0);
  CHECK(calculate_gain("tanh") == doctest::Approx(5.0 / 3.0));
  CHECK(calculate_gain("relu") == doctest::Approx(std::sqrt(2.0)));
  CHECK(calculate_gain("leaky_relu") == doctest::Approx(std::sqrt(2.0 / (1 + 0.0001))));
  CHECK(calculate_gain("leaky_relu", std::sqrt(5.0)) == doctest::Approx(std::sqrt(2.0 / 6.0)));
  CHECK(calculate_gain("selu") == 0.75);
  CHECK_THROWS_WITH_SUBSTR(calculate_gain("swish"), "[calculate_gain] unsupported nonlinearity 'swish'");
  CHECK(calculate_fan_in_and_fan_out(empty({8, 3, 5, 5})) == std::pair<int64_t, int64_t>{75, 200});
  CHECK(calculate_fan_in_and_fan_out(empty({4, 6})) == std::pair<int64_t, int64_t>{6, 4});
  CHECK_THROWS_WITH_SUBSTR(calculate_fan_in_and_fan_out(empty({4})), "at least 2 dims; got shape [4]");

  Generator gen(7);
  Tensor w = empty({200, 300});
  xavier_uniform_(w, 2.0, &gen);
  const double a = 2.0 * std::sqrt(6.0 / 500.0);
  CHECK(max(abs(w)).item<double>() <= a);
  CHECK(max(abs(w)).item<double>() > 0.95 * a);
  xavier_normal_(w, 1.0, &gen);
  CHECK(std::sqrt(w.pow(2.0).mean().item<double>()) == doctest::Approx(std::sqrt(2.0 / 500.0)).epsilon(0.03));
  kaiming_uniform_(w, 0.0, "fan_out", "relu", &gen);
  CHECK(max(abs(w)).item<double>() <= std::sqrt(2.0) * std::sqrt(3.0 / 200.0));
  kaiming_normal_(w, 0.0, "fan_in", "relu", &gen);
  CHECK(std::sqrt(w.pow(2.0).mean().item<double>()) == doctest::Approx(std::sqrt(2.0 / 300.0)).epsilon(0.03));
  normal_(w, 3.0, 0.5, &gen);
  CHECK(w.mean().item<double>() == doctest::Approx(3.0).epsilon(0.01));
  uniform_(w, -2.0, -1.0, &gen);
  CHECK(max(w).item<double>() < -1.0);
  CHECK(min(w).item<double>() >= -2.0);
  CHECK_THROWS_WITH_SUBSTR(kaiming_uniform_(w, 0.0, "fan_avg"), "[kaiming_uniform_] mode 'fan_avg' is not supported");
  // In place on a parameter (requires grad) without a guard, bumping its version.
  nn::Linear fc(3, 2);
  const uint32_t version = fc.weight.version();
  constant_(fc.weight, 0.5);
  check_values(fc.weight, std::vector<double>(6, 0.5));
  CHECK(fc.weight.version() > version);
  zeros_(fc.bias);
  check_values(fc.bias, {0, 0});
  ones_(fc.bias);
  check_values(fc.bias, {1, 1});
  CHECK_THROWS_WITH_SUBSTR(zeros_(zeros({2}, kInt64)), "[constant_] dtype int64 is not supported");

  // Custom initialisation of a whole model through Module::apply (children first, then the parent).
  AutoEncoder model(4, 3, 2);
  std::vector<std::string> visited;
  model.apply([&](nn::Module& m) {
    visited.push_back(m.type_name());
    if (auto* layer = dynamic_cast<nn::Linear*>(&m)) {
      xavier_uniform_(layer->weight);
      zeros_(layer->bias);
    }
  });
  CHECK(visited == std::vector<std::string>{"Linear", "ReLU", "Linear", "Sequential", "Linear", "ReLU", "Linear",
                                            "Sigmoid", "Sequential", "AutoEncoder"});
  for (const auto& [name, p] : model.named_parameters())
    if (name.ends_with("bias")) CHECK(max(abs(p)).item<double>() == 0.0);
}

TEST_CASE("layers compute what their functional ops compute") {
  manual_seed(3);
  Tensor x = randn({4, 6});
  nn::Linear fc(6, 3);
  // Linear against a float64 loop.
  {
    std::vector<double> xv = x.to_vector<double>(), wv = fc.weight.to_vector<double>(), bv = fc.bias.to_vector<double>();
    std::vector<double> expected;
    for (int n = 0; n < 4; ++n)
      for (int o = 0; o < 3; ++o) {
        double s = bv[o];
        for (int i = 0; i < 6; ++i) s += xv[n * 6 + i] * wv[o * 6 + i];
        expected.push_back(s);
      }
    check_values(fc(x), expected, 1e-5);
  }
  CHECK_THROWS_WITH_SUBSTR(fc.forward(randn({4, 5})), "[Linear] expected an input whose last dim is in_features = 6; got shape [4, 5]");
  check_close(nn::ReLU()(x), relu(x), 0, 0);
  check_close(nn::LeakyReLU(0.2)(x), leaky_relu(x, 0.2), 0, 0);
  check_close(nn::Sigmoid()(x), sigmoid(x), 0, 0);
  check_close(nn::Tanh()(x), tanh(x), 0, 0);
  check_close(nn::Softplus(2.0, 10.0)(x), softplus(x, 2.0, 10.0), 0, 0);
  check_close(nn::ELU(0.5)(x), elu(x, 0.5), 0, 0);
  check_close(nn::GELU()(x), gelu(x), 0, 0);

  Tensor img = randn({2, 3, 4, 5});
  CHECK(nn::Flatten()(img).shape() == Shape{2, 60});
  CHECK(nn::Flatten(0, 1)(img).shape() == Shape{6, 4, 5});
  CHECK(nn::Unflatten(1, {3, -1})(nn::Flatten()(img)).shape() == Shape{2, 3, 20});
  check_close(nn::Unflatten(-1, {4, 5})(img.flatten(2)), img, 0, 0);
  CHECK_THROWS_WITH_SUBSTR(nn::Unflatten(1, {7, 2})(x), "[Unflatten] dim 1 of size 6 cannot be split into (7, 2)");
  CHECK_THROWS_WITH_SUBSTR(nn::Unflatten(1, {-1, -1}), "at most one size may be -1");

  nn::Sequential seq(std::make_shared<nn::Linear>(6, 3), std::make_shared<nn::Tanh>());
  auto first = std::static_pointer_cast<nn::Linear>(seq[0]);
  check_close(seq(x), tanh(linear(x, first->weight, first->bias)), 0, 0);
  CHECK(nn::Sequential()(x).is_same(x));
  seq.push_back(std::make_shared<nn::Linear>(3, 1));
  CHECK(seq.size() == 3);
  CHECK(seq(x).shape() == Shape{4, 1});
  CHECK(names_of(seq.named_parameters()).back() == "2.bias");

  nn::Conv2d conv(3, 2, {3, 2}, 1, {1, 0});
  check_close(conv(img), conv2d(img, conv.weight, conv.bias, 1, {1, 0}), 0, 0);
  CHECK(conv(img).shape() == Shape{2, 2, 4, 4});
  nn::ConvTranspose2d deconv(3, 2, 3, 2, 1, 1);
  check_close(deconv(img), conv_transpose2d(img, deconv.weight, deconv.bias, 2, 1, 1), 0, 0);
  CHECK(deconv(img).shape() == Shape{2, 2, 8, 10});
  nn::Conv1d conv1(6, 2, 2, 1, 1);
  Tensor seq_in = randn({2, 6, 5});
  check_close(conv1(seq_in), conv1d(seq_in, conv1.weight, conv1.bias, 1, 1), 0, 0);
  check_close(nn::MaxPool2d(2)(img), max_pool2d(img, 2, 2), 0, 0);
  check_close(nn::AvgPool2d(2, 1)(img), avg_pool2d(img, 2, 1), 0, 0);
  check_close(nn::Upsample(2)(img), upsample_nearest2d(img, {8, 10}), 0, 0);
  check_close(nn::Upsample(2, InterpolateMode::Bilinear, true)(img), upsample_bilinear2d(img, {8, 10}, true), 0, 0);
  CHECK_THROWS_WITH_SUBSTR(nn::Upsample(2, InterpolateMode::Nearest, true), "[Upsample] align_corners");
  CHECK_THROWS_WITH_SUBSTR(nn::Conv2d(3, 4, 3, 1, 0, 1, 2), "[Conv2d] in_channels 3 is not divisible by groups 2");
  CHECK_THROWS_WITH_SUBSTR(nn::Dropout(1.5), "[Dropout] p must be a probability in [0, 1]; got 1.5");
}

TEST_CASE("BatchNorm: batch statistics in training, running statistics in eval, PyTorch's updates") {
  Tensor x = det_randn({6, 2, 3, 3}, 11, false).to(kFloat32);
  nn::BatchNorm2d bn(2);
  CHECK_THROWS_WITH_SUBSTR(bn(randn({6, 2})), "[BatchNorm2d] expected a 4-d input (N, C, H, W); got shape [6, 2]");
  CHECK_THROWS_WITH_SUBSTR(bn(randn({6, 3, 2, 2})), "[BatchNorm2d] expected 2 channels (dim 1); got input shape [6, 3, 2, 2]");
  // Per-channel mean and variance in float64.
  std::vector<double> xv = x.to_vector<double>(), mean(2, 0), var(2, 0);
  const int per_channel = 6 * 9;
  for (int n = 0; n < 6; ++n)
    for (int c = 0; c < 2; ++c)
      for (int k = 0; k < 9; ++k) mean[c] += xv[(n * 2 + c) * 9 + k] / per_channel;
  for (int n = 0; n < 6; ++n)
    for (int c = 0; c < 2; ++c)
      for (int k = 0; k < 9; ++k) var[c] += std::pow(xv[(n * 2 + c) * 9 + k] - mean[c], 2) / per_channel;
  Tensor y = bn(x);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 1);
  const double unbias = per_channel / (per_channel - 1.0);
  check_values(bn.running_mean, {0.1 * mean[0], 0.1 * mean[1]}, 1e-6);
  check_values(bn.running_var, {0.9 + 0.1 * var[0] * unbias, 0.9 + 0.1 * var[1] * unbias}, 1e-6);
  CHECK(y.to_vector<double>()[0] == doctest::Approx((xv[0] - mean[0]) / std::sqrt(var[0] + 1e-5)).epsilon(1e-4));
  bn.eval();
  Tensor z = bn(x);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 1);
  const double rm = 0.1 * mean[0], rv = 0.9 + 0.1 * var[0] * unbias;
  CHECK(z.to_vector<double>()[0] == doctest::Approx((xv[0] - rm) / std::sqrt(rv + 1e-5)).epsilon(1e-4));

  // momentum None: a cumulative average, so after two batches the running mean is their average.
  nn::BatchNorm1d cumulative(2, 1e-5, std::nullopt);
  Tensor a = det_randn({5, 2}, 1, false).to(kFloat32), b = det_randn({5, 2}, 2, false).to(kFloat32);
  cumulative(a);
  cumulative(b);
  check_close(cumulative.running_mean, (a.mean({0}) + b.mean({0})) * 0.5, 1e-6);
  // Without running statistics it always normalizes with the batch ones and has no buffers.
  nn::BatchNorm1d stateless(2, 1e-5, 0.1, false, false);
  CHECK(stateless.state_dict().empty());
  stateless.eval();
  CHECK(std::abs(stateless(a).mean({0}).to_vector<double>()[0]) < 1e-6);
}

namespace {
// Reducers standing in for a process group: one process (the sum is the tensor itself), and
// `copies` processes holding the same batch (forward and backward both multiply by copies).
struct ScaleReducer : nn::BatchStatsReducer {
  double copies;
  explicit ScaleReducer(double copies) : copies(copies) {}
  Tensor sum_over_processes(const Tensor& t) override { return t * copies; }
};
}  // namespace

TEST_CASE("BatchNorm with a stats reducer (synchronised batch norm) matches the local op") {
  Tensor x = det_randn({6, 2, 3, 3}, 12, false).to(kFloat32);
  nn::BatchNorm2d plain(2), synced(2);
  synced.stats_reducer = std::make_shared<ScaleReducer>(1.0);
  for (nn::BatchNorm2d* bn : {&plain, &synced}) {
    NoGradGuard no_grad;
    bn->weight.copy_(from_vector(std::vector<float>{1.5f, -0.5f}, {2}));
    bn->bias.copy_(from_vector(std::vector<float>{0.25f, 2.0f}, {2}));
  }
  Tensor xa = x.detach().requires_grad_(), xb = x.detach().requires_grad_();
  Tensor w = det_randn({6, 2, 3, 3}, 13, false).to(kFloat32);  // a loss that weighs each output
  Tensor ya = plain(xa), yb = synced(xb);
  check_close(yb, ya, 1e-5);
  sum(ya * w).backward();
  sum(yb * w).backward();
  check_close(xb.grad(), xa.grad(), 1e-4);
  check_close(synced.weight.grad(), plain.weight.grad(), 1e-4);
  check_close(synced.bias.grad(), plain.bias.grad(), 1e-5);
  check_close(synced.running_mean, plain.running_mean, 1e-6);
  check_close(synced.running_var, plain.running_var, 1e-6);
  // Eval mode uses the running statistics: the reducer is not called.
  synced.eval();
  plain.eval();
  check_close(synced(x), plain(x), 1e-6);

  // Two processes with the same batch: the same normalisation, a global count of 2 x 54 values
  // per channel for the running variance's unbiasing.
  nn::BatchNorm2d doubled(2), single(2);
  doubled.stats_reducer = std::make_shared<ScaleReducer>(2.0);
  Tensor yd = doubled(x), ys = single(x);
  check_close(yd, ys, 1e-5);
  const Tensor batch_var = x.var({0, 2, 3}, 0);
  check_close(doubled.running_var, batch_var * (0.1 * 108.0 / 107.0) + 0.9, 1e-6);
  check_close(single.running_var, batch_var * (0.1 * 54.0 / 53.0) + 0.9, 1e-6);
}

TEST_CASE("to(device), to(dtype) and zero_grad") {
  AutoEncoder model(4, 3, 2);
  if (!device_available(kCUDA)) CHECK_THROWS_WITH_SUBSTR(model.to(kCUDA), "[to] device cuda is not available: ");
  auto weight = std::static_pointer_cast<nn::Linear>((*model.encoder)[0])->weight;
  model.to(kCPU);
  CHECK(weight.device() == kCPU);
  Tensor x = rand({2, 4});
  Tensor y32 = model(x);
  model.to(kFloat64);
  CHECK(weight.dtype() == kFloat64);  // the member handle sees the conversion
  CHECK(weight.requires_grad());
  Tensor y64 = model(x.to(kFloat64));
  CHECK(y64.dtype() == kFloat64);
  check_close(y64, y32, 1e-6);
  // gradcheck through the whole model in float64.
  auto fn = [&](const std::vector<Tensor>& in) { return model(in[0]).sum(); };
  CHECK_GRADCHECK(fn, std::vector<Tensor>{det_randn({2, 4}, 3)});
  model.zero_grad();
  model(x.to(kFloat64)).sum().backward();
  for (const Tensor& p : model.parameters()) CHECK(p.grad().defined());
  model.zero_grad();
  for (const Tensor& p : model.parameters()) CHECK(!p.grad().defined());
}

namespace {

/// A custom module with a custom forward mixing ops: a gated residual MLP,
///   y = fc2(tanh(fc1(x))) * sigmoid(gate) + x * skip
struct GatedResidual : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2;
  Tensor gate, skip;
  explicit GatedResidual(int64_t dim) {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(dim, 16));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(16, dim));
    gate = register_parameter("gate", zeros({dim}));
    skip = register_parameter("skip", full({1}, 0.5));
  }
  Tensor forward(const Tensor& x) override {
    return fc2->forward(tanh(fc1->forward(x))) * sigmoid(gate) + x * skip;
  }
};

}  // namespace

TEST_CASE("a custom module trains with Adam: the loss falls at least 10x in 80 steps") {
  manual_seed(0);
  auto model = std::make_shared<GatedResidual>(4);
  CHECK(names_of(model->named_parameters()) ==
        std::vector<std::string>{"gate", "skip", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
  CHECK(model->to_string() ==
        "GatedResidual(\n"
        "  (fc1): Linear(in_features=4, out_features=16, bias=True)\n"
        "  (fc2): Linear(in_features=16, out_features=4, bias=True)\n"
        ")");
  Generator data_gen(9);
  Tensor x = randn({64, 4}, kFloat32, &data_gen);
  Tensor mixing = randn({4, 4}, kFloat32, &data_gen);
  Tensor target = tanh(matmul(x, mixing)) + x * 0.3;  // a smooth nonlinear map of x
  optim::Adam opt(model->parameters(), optim::AdamOptions(0.02));
  double first = 0, last = 0;
  for (int step = 0; step < 80; ++step) {
    opt.zero_grad();
    Tensor loss = mse_loss(model->forward(x), target);
    loss.backward();
    opt.step();
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
  }
  MESSAGE("custom module: loss " << first << " -> " << last);
  CHECK(last < first / 10);
}

TEST_CASE("Sequential fuses Linear + ReLU/Sigmoid/Tanh into fused_linear with the same values and gradients") {
  manual_seed(11);
  Tensor x = randn({5, 6});
  auto fc1 = std::make_shared<nn::Linear>(6, 4), fc2 = std::make_shared<nn::Linear>(4, 3);
  auto fc3 = std::make_shared<nn::Linear>(3, 7);
  nn::Sequential seq(fc1, std::make_shared<nn::ReLU>(), fc2, std::make_shared<nn::Tanh>(), fc3,
                     std::make_shared<nn::Sigmoid>());
  Tensor y = seq(x);
  REQUIRE(y.grad_fn());
  CHECK(std::string(y.grad_fn()->name()) == "fused_linear");
  // The unfused composition, op by op.
  auto unfused = [&](const Tensor& in) {
    Tensor h = relu(linear(in, fc1->weight, fc1->bias));
    h = tanh(linear(h, fc2->weight, fc2->bias));
    return sigmoid(linear(h, fc3->weight, fc3->bias));
  };
  Tensor expected = unfused(x);
  check_close(y, expected, 1e-7, 1e-6);
  Tensor g = randn({5, 7});
  y.backward(g);
  std::vector<Tensor> fused_grads;
  for (const Tensor& p : seq.parameters()) fused_grads.push_back(p.grad().clone());
  seq.zero_grad();
  unfused(x).backward(g);
  const std::vector<Tensor> params = seq.parameters();
  for (size_t i = 0; i < params.size(); ++i) check_close(fused_grads[i], params[i].grad(), 1e-6, 1e-5);
  // The layer's own input check still speaks for the layer.
  CHECK_THROWS_WITH_SUBSTR(seq(randn({5, 5})), "[Linear] expected an input whose last dim is in_features = 6; got shape [5, 5]");
  // A subclass of an activation is not fused (it may override forward).
  struct Relu2 : nn::ReLU {
    Tensor forward(const Tensor& input) override { return relu(input) * 2.0; }
  };
  nn::Sequential custom(std::make_shared<nn::Linear>(6, 2), std::make_shared<Relu2>());
  auto lin = std::static_pointer_cast<nn::Linear>(custom[0]);
  check_close(custom(x), relu(linear(x, lin->weight, lin->bias)) * 2.0, 0, 0);
  // A trailing Linear and a Linear followed by a non-fusable module run unfused.
  nn::Sequential tail(std::make_shared<nn::Linear>(6, 2), std::make_shared<nn::ELU>(), std::make_shared<nn::Linear>(2, 2));
  CHECK(std::string(tail(x).grad_fn()->name()) == "linear");
}
