// The int8 chain of Sequential::forward (ops/quantize.h Int8Chain, models/nn/layers.cpp): consecutive
// int8 layers (Conv2d/ConvTranspose2d, or Linear) hand uint8 activations over with the activation
// in the store. Each chained forward is checked against the same modules run one at a time, and
// the uint8 hand-overs against quantizing the float32 output (within one level at rounding ties).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "helpers.h"

using namespace latent;

TEST_CASE("Sequential chains int8 convs: relu in the store, uint8 between layers, float32 when recording") {
  Generator gen(23);
  auto seq = std::make_shared<nn::Sequential>(
      std::make_shared<nn::Conv2d>(1, 8, 3, 2, 1), std::make_shared<nn::ReLU>(), std::make_shared<nn::Conv2d>(8, 16, 3, 2, 1),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::ConvTranspose2d>(16, 8, 3, 2, 1, 1), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::ConvTranspose2d>(8, 1, 3, 2, 1, 1));
  const Tensor x = rand({3, 1, 12, 12}, kFloat32, &gen);
  // Calibrate each conv's input range, then give every conv its int8 form.
  std::vector<std::pair<Tensor, bool>> convs;
  for (const auto& [name, p] : seq->named_parameters())
    if (p.dim() == 4) convs.emplace_back(p, convs.size() >= 2);
  {
    CalibrationGuard guard;
    NoGradGuard no_grad;
    (void)seq->forward(x);
    for (const auto& [w, transposed] : convs) {
      const CalibrationStats st = guard.stats(w);
      REQUIRE(st.count > 0);
      const auto [scale, zero] = uint8_params(st.min, st.max);
      auto [q, ws] = quantize_conv_weight_symmetric(w, transposed ? 1 : 0);
      set_quantized_conv(w, make_quantized_conv(q, ws, scale, zero, transposed));
    }
  }
  // Reference: the same int8 layers one op at a time (float32 output, relu op, quantize again).
  Tensor chained, unchained;
  {
    NoGradGuard no_grad;
    chained = seq->forward(x);
    Tensor h = x;
    for (size_t i = 0; i < seq->size(); ++i) h = (*seq)[i]->forward(h);
    unchained = h;
  }
  REQUIRE(chained.shape() == Shape{3, 1, 12, 12});
  // Equal but for the requantizing store's multiply by 1/scale against quantize's divide (a
  // rounding tie now and then moves one uint8 level).
  const std::vector<float> a = chained.to_vector<float>(), b = unchained.to_vector<float>();
  int64_t same = 0;
  double worst = 0, range = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    same += a[i] == b[i];
    worst = std::max(worst, double(std::abs(a[i] - b[i])));
    range = std::max(range, double(std::abs(b[i])));
  }
  INFO("equal " << same << " of " << a.size() << ", worst |diff| " << worst << ", range " << range);
  CHECK(same * 10 >= int64_t(a.size()) * 9);
  CHECK(worst <= 0.02 * range);
  // The request itself (ops/quantize.h Int8Chain), on the second conv: uint8 input from the first
  // layer's uint8 output, relu in the store, uint8 output in the third layer's input parameters.
  {
    NoGradGuard no_grad;
    const auto q1 = find_quantized_conv(convs[1].first), q2 = find_quantized_conv(convs[2].first);
    REQUIRE(q1);
    REQUIRE(q2);
    const Tensor h1 = relu((*seq)[0]->forward(x));
    detail::Int8Chain chain;
    chain.weight = &convs[1].first;
    chain.relu = true;
    chain.input_u8 = quantize_linear(h1, full({1}, q1->input_scale, kFloat32), full({1}, double(q1->input_zero), kUInt8))
                         .permute({0, 2, 3, 1})
                         .contiguous();  // channels last
    chain.requantize = true;
    chain.out_scale = q2->input_scale;
    chain.out_zero = q2->input_zero;
    {
      detail::Int8ChainScope scope(&chain);
      (void)(*seq)[2]->forward(zeros(h1.shape()));  // a placeholder: the uint8 input is what counts
    }
    CHECK(chain.taken);
    REQUIRE(chain.output_u8.defined());
    const Tensor want = quantize_linear(relu((*seq)[2]->forward(h1)), full({1}, q2->input_scale, kFloat32),
                                        full({1}, double(q2->input_zero), kUInt8))
                           .permute({0, 2, 3, 1})
                           .contiguous();
    CHECK(chain.output_u8.shape() == want.shape());
    const std::vector<uint8_t> got8 = chain.output_u8.to_vector<uint8_t>(), want8 = want.to_vector<uint8_t>();
    REQUIRE(got8.size() == want8.size());
    int64_t off = 0, far = 0;
    for (size_t i = 0; i < got8.size(); ++i) {
      off += got8[i] != want8[i];
      far += std::abs(int(got8[i]) - int(want8[i])) > 1;
    }
    CHECK(far == 0);
    CHECK(off * 100 <= int64_t(got8.size()));
    // a request for another weight is left alone
    detail::Int8Chain other;
    other.weight = &convs[0].first;
    {
      detail::Int8ChainScope scope(&other);
      (void)(*seq)[2]->forward(h1);
    }
    CHECK_FALSE(other.taken);
  }
  // Recording a tape runs float32 (and so does the reference's float model): not the int8 chain.
  Tensor recorded = seq->forward(x);
  {
    NoGradGuard no_grad;
    CHECK(max(abs(sub(recorded.detach(), chained))).item<float>() > 1e-5f);
  }
  clear_quantized_linears();
}

// ---- the int8 chain of Sequential::forward (ops/quantize.h Int8Chain) for Linear layers ----

namespace {

/// Calibrates every linear and conv weight of `model` on what `run` feeds it, then gives each
/// observed weight its int8 form (per-channel weights, minmax uint8 inputs), as `latent quantize`.
void quantize_module(nn::Module& model, const std::function<void()>& run) {
  CalibrationGuard guard;
  {
    NoGradGuard no_grad;
    run();
  }
  for (const auto& [name, w] : model.named_parameters()) {
    if (w.dim() != 2 && w.dim() != 4) continue;
    const CalibrationStats st = guard.stats(w);
    if (st.count == 0) continue;
    const auto [scale, zero] = uint8_params(st.min, st.max);
    if (w.dim() == 2) {
      auto [q, ws] = quantize_weight_symmetric(w);
      set_quantized_linear(w, make_quantized_linear(q, ws, scale, zero));
    } else {
      auto [q, ws] = quantize_conv_weight_symmetric(w, st.transposed ? 1 : 0);
      set_quantized_conv(w, make_quantized_conv(q, ws, scale, zero, st.transposed));
    }
  }
}

/// The same modules one at a time: every int8 layer quantizes its float32 input and stores float32,
/// activations run as their own ops.
Tensor module_by_module(const nn::Sequential& seq, Tensor x) {
  for (size_t i = 0; i < seq.size(); ++i) x = seq[i]->forward(x);
  return x;
}

/// Chained against module by module: the int32 sums are the same whenever the uint8 hand-overs are,
/// and a hand-over differs from quantizing the float32 output only where the requantizing store's
/// float32 arithmetic lands on the other side of a rounding tie (one level). So most outputs are
/// equal (the sigmoid store's 2e-6 aside) and the rest within what one level at some layer's input
/// moves (bounded by 2% of the output's range here).
void check_chained(const Tensor& chained, const Tensor& unchained) {
  REQUIRE(chained.shape() == unchained.shape());
  const std::vector<float> a = chained.to_vector<float>(), b = unchained.to_vector<float>();
  int64_t same = 0;
  double worst = 0, range = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    same += std::abs(a[i] - b[i]) <= 4e-6;
    worst = std::max(worst, double(std::abs(a[i] - b[i])));
    range = std::max(range, double(std::abs(b[i])));
  }
  INFO("equal " << same << " of " << a.size() << ", worst |diff| " << worst << ", range " << range);
  CHECK(same * 100 >= int64_t(a.size()) * 95);
  CHECK(worst <= 0.02 * range);
}

/// A model of the family, quantized on `images`, and its encoder and decoder Sequentials.
std::tuple<std::shared_ptr<models::Autoencoder>, std::shared_ptr<nn::Sequential>, std::shared_ptr<nn::Sequential>>
quantized_halves(const std::string& name, const Tensor& images) {
  models::AEConfig c;
  c.model = name;
  auto model = models::make_autoencoder(c);
  model->eval();
  quantize_module(*model, [&] { (void)model->forward(images); });
  auto enc = std::dynamic_pointer_cast<nn::Sequential>(model->child("encoder"));
  auto dec = std::dynamic_pointer_cast<nn::Sequential>(model->child("decoder"));
  REQUIRE(enc);
  REQUIRE(dec);
  return {model, enc, dec};
}

}  // namespace

TEST_CASE("Sequential chains int8 Linear layers: uint8 rows between them, sigmoid in the last store") {
  Generator gen(31);
  // Odd widths (33 -> K4 36, 21 -> K4 24), a Linear without an int8 form and a Tanh in the middle.
  auto fc1 = std::make_shared<nn::Linear>(50, 33), fc2 = std::make_shared<nn::Linear>(33, 17);
  auto fc3 = std::make_shared<nn::Linear>(17, 21), fc4 = std::make_shared<nn::Linear>(21, 10);
  auto seq = std::make_shared<nn::Sequential>(fc1, std::make_shared<nn::ReLU>(), fc2, std::make_shared<nn::Tanh>(), fc3,
                                              std::make_shared<nn::ReLU>(), fc4, std::make_shared<nn::Sigmoid>());
  const Tensor x = rand({5, 50}, kFloat32, &gen);
  quantize_module(*seq, [&] { (void)seq->forward(x); });
  for (const Tensor* w : {&fc1->weight, &fc2->weight, &fc3->weight, &fc4->weight}) REQUIRE(find_quantized_linear(*w));
  {
    NoGradGuard no_grad;
    for (int64_t rows : {5, 1}) {
      INFO("rows " << rows);
      const Tensor xr = x.slice(0, 0, rows).contiguous();
      const int64_t before = detail::int8_chain_hand_overs();
      const Tensor chained = seq->forward(xr);
      CHECK(detail::int8_chain_hand_overs() - before == 2);  // fc1 -> fc2 and fc3 -> fc4 (Tanh breaks fc2 -> fc3)
      check_chained(chained, module_by_module(*seq, xr));
    }
  }
  // Inputs with more than 2 dims (a Linear runs on the last one): the same rows, chained.
  {
    NoGradGuard no_grad;
    const Tensor x3 = x.slice(0, 0, 4).contiguous().view({2, 2, 50});
    const int64_t before = detail::int8_chain_hand_overs();
    const Tensor chained = seq->forward(x3);
    CHECK(detail::int8_chain_hand_overs() - before == 2);
    REQUIRE(chained.shape() == Shape{2, 2, 10});
    check_chained(chained, module_by_module(*seq, x3));
  }
  // The request itself on fc3 -> fc4: uint8 input rows of fc3's K4 (the padding bytes hold
  // garbage: their weights are zero), relu in the store, uint8 output rows in fc4's parameters.
  {
    NoGradGuard no_grad;
    const auto q3 = find_quantized_linear(fc3->weight), q4 = find_quantized_linear(fc4->weight);
    const Tensor h = tanh(linear(relu(linear(x, fc1->weight, fc1->bias)), fc2->weight, fc2->bias));  // (5, 17)
    const Tensor h8 = quantize_linear(h, full({1}, q3->input_scale, kFloat32), full({1}, double(q3->input_zero), kUInt8));
    Tensor rows = full({5, 20}, 251.0, kUInt8);  // K4 of 17 = 20
    rows.slice(1, 0, 17).copy_(h8);
    detail::Int8Chain chain;
    chain.weight = &fc3->weight;
    chain.input_u8 = rows;
    chain.requantize = true;
    chain.out_scale = q4->input_scale;
    chain.out_zero = q4->input_zero;
    {
      detail::Int8ChainScope scope(&chain);
      (void)linear(zeros({5, 17}), fc3->weight, fc3->bias, Activation::Relu);  // a placeholder input
    }
    CHECK(chain.taken);
    REQUIRE(chain.output_u8.defined());
    CHECK(chain.output_u8.shape() == Shape{5, 24});
    const Tensor want = quantize_linear(linear(h, fc3->weight, fc3->bias, Activation::Relu),
                                        full({1}, q4->input_scale, kFloat32), full({1}, double(q4->input_zero), kUInt8));
    const std::vector<uint8_t> got8 = chain.output_u8.slice(1, 0, 21).contiguous().to_vector<uint8_t>(),
                               want8 = want.to_vector<uint8_t>();
    int64_t off = 0, far = 0;
    for (size_t i = 0; i < got8.size(); ++i) {
      off += got8[i] != want8[i];
      far += std::abs(int(got8[i]) - int(want8[i])) > 1;
    }
    CHECK(far == 0);
    CHECK(off * 10 <= int64_t(got8.size()));
    // uint8 rows narrower than the layer's K4 are declined (the caller then runs float32)
    detail::Int8Chain narrow;
    narrow.weight = &fc3->weight;
    narrow.input_u8 = full({5, 16}, 1.0, kUInt8);
    {
      detail::Int8ChainScope scope(&narrow);
      (void)linear(zeros({5, 17}), fc3->weight, fc3->bias);
    }
    CHECK_FALSE(narrow.taken);
  }
  // Recording a tape runs float32 (the reference's float model): not the chain.
  Tensor recorded = seq->forward(x);
  {
    NoGradGuard no_grad;
    CHECK(max(abs(sub(recorded.detach(), seq->forward(x)))).item<float>() > 1e-5f);
  }
  // A Linear without an int8 form between int8 ones takes float32 (the uint8 hand-over is dequantized).
  clear_quantized_linears();
  auto mid2 = std::make_shared<nn::Sequential>(fc1, std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(33, 21),
                                               std::make_shared<nn::ReLU>(), fc4);
  quantize_module(*mid2, [&] { (void)mid2->forward(x); });
  {
    NoGradGuard no_grad;
    Tensor w_mid = std::static_pointer_cast<nn::Linear>((*mid2)[2])->weight;  // shares the parameter's storage
    REQUIRE(find_quantized_linear(w_mid));
    w_mid.mul_(1.0);  // an in-place change drops its int8 form
    REQUIRE_FALSE(find_quantized_linear(w_mid));
    const int64_t before = detail::int8_chain_hand_overs();
    check_chained(mid2->forward(x), module_by_module(*mid2, x));
    CHECK(detail::int8_chain_hand_overs() == before);
  }
  clear_quantized_linears();
}

TEST_CASE("the chained int8 forward of the deep AE, the conv VAE's halves and a conv + linear model equals module by module") {
  Generator gen(41);
  const Tensor images = rand({6, 784}, kFloat32, &gen);
  SUBCASE("deep AE (784-128-64-128-784): encoder and decoder Sequentials") {
    const auto [model, enc, dec] = quantized_halves("deep", images);
    NoGradGuard no_grad;
    for (int64_t rows : {6, 1}) {
      INFO("rows " << rows);
      const Tensor x = images.slice(0, 0, rows).contiguous();
      const Tensor code = module_by_module(*enc, x);
      const int64_t before = detail::int8_chain_hand_overs();
      check_chained(model->encode(x), code);
      CHECK(detail::int8_chain_hand_overs() - before == 1);  // 784 -> 128 hands uint8 to 128 -> 64
      check_chained(model->decode(code), module_by_module(*dec, code));
      check_chained(model->forward(x), module_by_module(*dec, code));
    }
  }
  SUBCASE("conv VAE: the conv encoder and decoder Sequentials") {
    const auto [model, enc, dec] = quantized_halves("conv-vae", images);
    NoGradGuard no_grad;
    const Tensor x = images.view({6, 1, 28, 28});
    const Tensor maps = module_by_module(*enc, x);
    const int64_t before = detail::int8_chain_hand_overs();
    check_chained(enc->forward(x), maps);
    check_chained(dec->forward(maps), module_by_module(*dec, maps));
    CHECK(detail::int8_chain_hand_overs() - before == 2);  // conv -> conv in each half
  }
  SUBCASE("conv + linear: the chain breaks at Flatten and resumes between the Linear layers") {
    auto seq = std::make_shared<nn::Sequential>(
        std::make_shared<nn::Conv2d>(1, 4, 3, 2, 1), std::make_shared<nn::ReLU>(), std::make_shared<nn::Conv2d>(4, 8, 3, 2, 1),
        std::make_shared<nn::ReLU>(), std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(8 * 7 * 7, 45),
        std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(45, 30), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Linear>(30, 9), std::make_shared<nn::Sigmoid>());
    const Tensor x = images.view({6, 1, 28, 28});
    quantize_module(*seq, [&] { (void)seq->forward(x); });
    NoGradGuard no_grad;
    const int64_t before = detail::int8_chain_hand_overs();
    check_chained(seq->forward(x), module_by_module(*seq, x));
    CHECK(detail::int8_chain_hand_overs() - before == 3);  // conv -> conv, then Linear -> Linear twice
    const Tensor one = x.slice(0, 2, 3).contiguous();
    check_chained(seq->forward(one), module_by_module(*seq, one));
  }
  clear_quantized_linears();
}
