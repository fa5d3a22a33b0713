#include "served_model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>

#include "models/data/png_io.h"

namespace latent::serve {

ServedModel::ServedModel(std::string name, std::shared_ptr<const models::InferenceSession> session,
                         std::shared_ptr<std::mutex> lock, bool decoder)
    : session_(std::move(session)), lock_(std::move(lock)), decoder_(decoder) {
  signature_.name = std::move(name);
  const int64_t d = session_->input_dim(), c = session_->code_dim();
  if (decoder_) {
    signature_.input = {"code", DataType::FP32, c};
    signature_.outputs = {{"reconstruction", DataType::FP32, d}};
  } else {
    signature_.input = {"input", DataType::FP32, d};
    signature_.outputs = {{"reconstruction", DataType::FP32, d}, {"code", DataType::FP32, c},
                          {"score", DataType::FP32, 0}, {"is_anomaly", DataType::BOOL, 0}};
    if (session_->variational()) signature_.outputs.push_back({"neg_elbo", DataType::FP32, 0});
    const models::Preprocessing& p = session_->run().preprocessing;
    if (p.kind == models::Preprocessing::Kind::Image && p.channels == 1) signature_.image_input = TensorSpec{"image", DataType::BYTES, 0};
  }
}

namespace {

/// The values of `t` as float32, row-major: one memcpy for a contiguous float32 CPU tensor (the
/// model's outputs), instead of Tensor::to_vector's per-element dtype dispatch.
std::vector<float> row_major_floats(const Tensor& t) {
  const Tensor c = t.dtype() == kFloat32 ? t.contiguous() : t.to(kFloat32).contiguous();
  if (!c.device().is_cpu()) return c.to_vector<float>();
  const float* p = c.data_ptr<float>();
  return std::vector<float>(p, p + c.numel());
}

/// The width of one row of `spec` (the product of its dimensions after the batch), or a
/// std::runtime_error naming what cannot be served.
int64_t onnx_row_width(const onnx::ValueSpec& spec, const char* role, const std::string& path) {
  if (spec.elem_type != static_cast<int32_t>(onnx::DataType::Float))
    throw std::runtime_error(fmt::format("serve: '{}': {} '{}' has data type {}; only FLOAT is served", path, role,
                                         spec.name, onnx::data_type_name(spec.elem_type)));
  if (!spec.has_shape || spec.dims.empty())
    throw std::runtime_error(fmt::format("serve: '{}': {} '{}' has no declared shape; a batch dimension first is needed",
                                         path, role, spec.name));
  int64_t width = 1;
  for (size_t i = 1; i < spec.dims.size(); ++i) {
    if (spec.dims[i] <= 0)
      throw std::runtime_error(fmt::format("serve: '{}': {} '{}' has a dynamic dimension {} (shape [{}]); only the first "
                                           "(batch) dimension may be dynamic", path, role, spec.name, i,
                                           fmt::join(spec.dims, ", ")));
    width *= spec.dims[i];
  }
  return spec.dims.size() == 1 ? 0 : width;  // [N]: one value per row
}

}  // namespace

ServedModel::ServedModel(std::string name, std::shared_ptr<onnx::OnnxModule> module, const std::string& path)
    : lock_(std::make_shared<std::mutex>()), onnx_(std::move(module)) {
  signature_.name = std::move(name);
  const auto& inputs = onnx_->inputs();
  if (inputs.size() != 1)
    throw std::runtime_error(fmt::format("serve: '{}' has {} inputs; models with one input are served", path, inputs.size()));
  signature_.input = {inputs[0].name, DataType::FP32, onnx_row_width(inputs[0], "input", path)};
  if (signature_.input.width == 0)
    throw std::runtime_error(fmt::format("serve: '{}': input '{}' is one-dimensional; rows of at least one value are needed",
                                         path, inputs[0].name));
  onnx_input_shape_ = inputs[0].dims;
  onnx_input_shape_[0] = -1;
  for (const onnx::ValueSpec& o : onnx_->outputs())
    signature_.outputs.push_back({o.name, DataType::FP32, onnx_row_width(o, "output", path)});
}

std::vector<float> ServedModel::pixels_from_png(const std::vector<std::string>& files) const {
  const models::Preprocessing& p = session_->run().preprocessing;
  std::vector<float> values;
  values.reserve(files.size() * static_cast<size_t>(p.height * p.width));
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string name = fmt::format("input 'image' [{}]", i);
    GrayImage image;
    try {
      image = decode_png(files[i], name);
    } catch (const std::exception& e) {
      throw ProtocolError{400, e.what()};
    }
    if (image.height != p.height || image.width != p.width)
      throw ProtocolError{400, fmt::format("{}: the image is {}x{} (width x height), the model takes {}x{}; latent does not resize",
                                           name, image.width, image.height, p.width, p.height)};
    values.insert(values.end(), image.pixels.begin(), image.pixels.end());
  }
  return values;
}

Tensor ServedModel::prepare(const Tensor& raw) const {
  if (decoder_ || onnx_) return raw;
  const models::Preprocessing& p = session_->run().preprocessing;
  if (p.kind == models::Preprocessing::Kind::Table) return p.apply(raw);
  // Images: the sources divide bytes by 1/scale in float32 (samples.cpp), so a pixel row sent
  // here scores bit for bit as the same image read from a file.
  return raw / static_cast<double>(static_cast<float>(1.0 / p.scale));
}

std::vector<OutputRows> ServedModel::run(const Tensor& x) const {
  std::lock_guard<std::mutex> guard(*lock_);
  std::vector<OutputRows> out(signature_.outputs.size());
  if (onnx_) {
    NoGradGuard no_grad;
    std::vector<int64_t> shape = onnx_input_shape_;
    shape[0] = x.size(0);
    const std::vector<Tensor> results = onnx_->run({x.contiguous().view(shape)});
    for (size_t i = 0; i < results.size(); ++i) {
      if (results[i].dim() == 0 || results[i].size(0) != x.size(0))
        throw std::runtime_error(fmt::format("output '{}' has shape [{}], not {} rows", signature_.outputs[i].name,
                                             fmt::join(results[i].shape(), ", "), x.size(0)));
      out[i].values = row_major_floats(results[i]);
    }
    return out;
  }
  if (decoder_) {
    out[0].values = row_major_floats(session_->decode(x));
    return out;
  }
  const models::Scores s = session_->score(x);
  out[0].values = row_major_floats(s.reconstruction);
  out[1].values = row_major_floats(s.code);
  // error is a float32 mean widened to double (inference.cpp), so float keeps it exactly.
  out[2].values.assign(s.error.begin(), s.error.end());
  out[3].values.assign(s.is_anomaly.begin(), s.is_anomaly.end());
  if (session_->variational()) out[4].values.assign(s.neg_elbo.begin(), s.neg_elbo.end());
  return out;
}

Tensor ServedModel::encode(const Tensor& x) const {
  std::lock_guard<std::mutex> guard(*lock_);
  return session_->encode(x);
}

std::vector<std::shared_ptr<ServedModel>> serve_run(const std::string& name, models::LoadedRun run) {
  auto session = std::make_shared<const models::InferenceSession>(std::move(run));
  auto lock = std::make_shared<std::mutex>();
  return {std::make_shared<ServedModel>(name, session, lock, false),
          std::make_shared<ServedModel>(name + "-decoder", session, lock, true)};
}

std::shared_ptr<ServedModel> serve_onnx(const std::string& name, const std::string& path) {
  return std::make_shared<ServedModel>(name, onnx::import_model(path), path);
}

}  // namespace latent::serve
