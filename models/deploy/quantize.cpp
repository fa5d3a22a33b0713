// `latent quantize`: calibration, int8 weights, the quantized run's files, and loading them back.
#include "quantize.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "../../ops/creation.h"
#include "../../ops/elementwise.h"
#include "../../ops/quantize.h"
#include "../io/checkpoint.h"
#include "../nn/layers.h"
#include "../train/run.h"

namespace latent::models {

namespace fs = std::filesystem;

namespace {

constexpr const char* kOp = "quantize";
constexpr std::string_view kWeight = ".weight";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The layer name of "encoder.0.weight": "encoder.0".
std::string layer_of(std::string_view weight_name) { return std::string(weight_name.substr(0, weight_name.size() - kWeight.size())); }

// [lo, hi] of the calibration values: all of them (minmax) or their 0.01% and 99.99% quantiles.
std::pair<double, double> activation_range(const CalibrationStats& s, const std::string& method) {
  if (method == "minmax" || s.sample.size() < 2) return {s.min, s.max};
  std::vector<float> v = s.sample;
  const auto at = [&](double q) {
    const size_t i = static_cast<size_t>(std::llround(q * double(v.size() - 1)));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
    return double(v[i]);
  };
  return {at(0.0001), at(0.9999)};
}

}  // namespace

bool is_quantized_config(const json::Value& config) { return config.is_object() && config.find("quantization"); }

QuantizeSummary quantize_run(const LoadedRun& run, const Dataset& calibration, const QuantizeOptions& o,
                             const std::string& out_dir) {
  const std::string& model = run.config.model;
  if (model != "linear" && model != "deep" && model != "sparse" && model != "denoising" && model != "vae" &&
      model != "conv" && model != "conv-vae")
    fail(kOp, "model '{}' of {}: not supported yet (linear, deep, sparse, denoising, vae, conv and conv-vae are)",
         model, run.dir);
  if (is_quantized_config(run.config_json)) fail(kOp, "{} is already a quantized run", run.dir);
  if (o.method != "minmax" && o.method != "percentile")
    fail(kOp, "method must be 'minmax' or 'percentile'; got '{}'", o.method);
  if (o.calibration < 1) fail(kOp, "calibration needs at least 1 sample; got {}", o.calibration);
  if (calibration.size() == 0) fail(kOp, "the calibration data of {} is empty", run.dir);
  for (const auto& [name, p] : run.model->named_parameters())
    if (!p.device().is_cpu()) fail(kOp, "parameter '{}' is on {}: quantize runs on the CPU", name, p.device());

  QuantizeSummary summary;
  summary.dir = out_dir;
  summary.samples = std::min(o.calibration, calibration.size());
  CalibrationGuard guard;
  {
    NoGradGuard no_grad;
    run.model->eval();
    for_each_chunk(calibration, summary.samples, 256, [&](const Tensor& x) {
      if (run.model->variational()) {
        auto& vae = static_cast<VariationalAutoencoder&>(*run.model);
        auto [mu, logvar] = vae.encode_distribution(x);
        (void)vae.decode(mu);
      } else {
        (void)run.model->forward(x);
      }
    });
  }

  NamedTensors out;
  for (const auto& [name, t] : run.model->state_dict()) {
    const CalibrationStats stats = ends_with(name, kWeight) && (t.dim() == 2 || t.dim() == 4) && t.dtype() == kFloat32
                                       ? guard.stats(t) : CalibrationStats{};
    if (stats.count == 0) {
      out.emplace_back(name, t.contiguous());
      continue;
    }
    const auto [lo, hi] = activation_range(stats, o.method);
    const auto [in_scale, in_zero] = uint8_params(lo, hi);
    // Conv weights: one scale per output channel, stored in the shape that broadcasts against the
    // weight (conv2d (C_out, 1, 1, 1), conv_transpose2d (1, C_out, 1, 1)).
    auto [q, w_scale] = t.dim() == 2 ? quantize_weight_symmetric(t, !o.per_tensor)
                                     : quantize_conv_weight_symmetric(t, stats.transposed ? 1 : 0, !o.per_tensor);
    if (t.dim() == 4) w_scale = stats.transposed ? w_scale.view({1, w_scale.numel(), 1, 1}) : w_scale.view({w_scale.numel(), 1, 1, 1});
    const std::string layer = layer_of(name);
    out.emplace_back(name, q);
    out.emplace_back(layer + ".weight_scale", w_scale);
    out.emplace_back(layer + ".input_scale", full({1}, in_scale, kFloat32));
    out.emplace_back(layer + ".input_zero_point", full({1}, double(in_zero), kUInt8));
    summary.layers.push_back(name);
  }
  if (summary.layers.empty()) fail(kOp, "no linear or conv layer of {} ran during calibration", run.dir);

  json::Value config = run.config_json;
  json::Value& qc = config["quantization"];
  qc["source"] = fs::absolute(run.dir).lexically_normal().string();
  qc["method"] = o.method;
  qc["calibration_samples"] = summary.samples;
  qc["weights"] = o.per_tensor ? "int8 symmetric, per tensor" : "int8 symmetric, per output channel";
  qc["activations"] = "uint8 affine, per tensor";
  json::Value layers = json::Value::array();
  for (const std::string& l : summary.layers) layers.push_back(l);
  qc["layers"] = layers;

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) fail(kOp, "cannot create '{}': {}", out_dir, ec.message());
  // No __metadata__: config.json's "quantization" section marks the run, and on a small model
  // (the conv AE's 9.5k weights) the header is an eighth of the file.
  safetensors::save_file(out, out_dir + "/model.safetensors");
  write_file_atomic(out_dir + "/config.json", config.dump(2) + "\n");
  summary.float_bytes = fs::file_size(run.dir + "/model.safetensors", ec);
  summary.int8_bytes = fs::file_size(out_dir + "/model.safetensors", ec);
  return summary;
}

NamedTensors dequantized_tensors(const NamedTensors& stored) {
  NamedTensors out;
  for (const auto& [name, t] : stored) {
    if (ends_with(name, ".weight_scale") || ends_with(name, ".input_scale") || ends_with(name, ".input_zero_point"))
      continue;
    if (t.dtype() != kInt8) {
      out.emplace_back(name, t);
      continue;
    }
    const std::string layer = ends_with(name, kWeight) ? layer_of(name) : name;
    const Tensor scale = find_tensor(stored, layer + ".weight_scale");
    if (t.dim() == 4) {  // conv: the scale's shape broadcasts against the weight (one axis of size C_out)
      const bool fits = scale.defined() && scale.dim() == 4 && scale.shape()[2] == 1 && scale.shape()[3] == 1 &&
                        ((scale.shape()[0] == t.shape()[0] && scale.shape()[1] == 1) ||
                         (scale.shape()[0] == 1 && scale.shape()[1] == t.shape()[1]));
      if (!fits)
        fail(kOp, "int8 conv weight '{}' {} needs '{}.weight_scale' of shape [{}, 1, 1, 1] or [1, {}, 1, 1]; got {}", name,
             t.shape(), layer, t.shape()[0], t.shape()[1], scale.defined() ? fmt::format("{}", scale.shape()) : "none");
      out.emplace_back(name, mul(t.to(kFloat32), scale.to(kFloat32)));
      continue;
    }
    if (!scale.defined() || t.dim() != 2 || scale.numel() != t.shape()[0])
      fail(kOp, "int8 tensor '{}' {} needs '{}.weight_scale' with {} values", name, t.shape(), layer,
           t.dim() == 2 ? t.shape()[0] : 0);
    out.emplace_back(name, mul(t.to(kFloat32), scale.to(kFloat32).view({t.shape()[0], 1})));
  }
  return out;
}

namespace {
// The module of every dotted name ("decoder.0"), to tell a conv_transpose2d weight from a conv2d one.
void collect_modules(const nn::Module& m, const std::string& prefix, std::vector<std::pair<std::string, const nn::Module*>>& out) {
  for (const auto& [name, child] : m.named_children()) {
    const std::string full_name = prefix.empty() ? name : prefix + "." + name;
    out.emplace_back(full_name, child.get());
    collect_modules(*child, full_name, out);
  }
}
}  // namespace

void attach_int8_weights(nn::Module& model, const NamedTensors& stored) {
  const NamedTensors params = model.named_parameters();
  std::vector<std::pair<std::string, const nn::Module*>> modules;
  collect_modules(model, "", modules);
  for (const auto& [name, t] : stored) {
    if (t.dtype() != kInt8 || !ends_with(name, kWeight)) continue;
    const std::string layer = layer_of(name);
    const Tensor in_scale = find_tensor(stored, layer + ".input_scale");
    const Tensor in_zero = find_tensor(stored, layer + ".input_zero_point");
    if (!in_scale.defined() || !in_zero.defined() || in_scale.numel() != 1 || in_zero.numel() != 1)
      fail(kOp, "int8 weight '{}' needs '{}.input_scale' and '{}.input_zero_point' (one value each)", name, layer, layer);
    const Tensor param = find_tensor(params, name);
    if (!param.defined()) fail(kOp, "int8 weight '{}' has no parameter of that name in the model", name);
    if (t.dim() == 4) {
      const nn::Module* owner = nullptr;
      for (const auto& [n, m] : modules)
        if (n == layer) owner = m;
      const bool transposed = owner && dynamic_cast<const nn::ConvTranspose2d*>(owner) != nullptr;
      if (!owner || (!transposed && !dynamic_cast<const nn::Conv2d*>(owner)))
        fail(kOp, "int8 conv weight '{}' belongs to no Conv2d or ConvTranspose2d of the model", name);
      const Tensor scale = find_tensor(stored, layer + ".weight_scale");
      set_quantized_conv(param, make_quantized_conv(t, scale.defined() ? scale.reshape({-1}) : scale,
                                                    in_scale.item<float>(), in_zero.item<int32_t>(), transposed));
      continue;
    }
    set_quantized_linear(param, make_quantized_linear(t, find_tensor(stored, layer + ".weight_scale"),
                                                      in_scale.item<float>(), in_zero.item<int32_t>()));
  }
  for (const auto& [name, p] : params) {
    Tensor handle = p;
    handle.requires_grad_(false);
  }
}

}  // namespace latent::models
