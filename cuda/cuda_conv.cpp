// CUDA convolutions through cuDNN's convolution API: forward, backward data (also the transposed
// convolution's forward, as in ops/conv.cpp) and backward filter, with groups, stride, padding and
// dilation. Descriptors and the chosen algorithms are cached per geometry (the plan cache), so a
// training step only looks them up. Algorithms come from cuDNN's heuristics (cudnnGet*_v7), or
// from timing every candidate once with LATENT_CUDNN_BENCHMARK=1 (PyTorch's cudnn.benchmark).
// float32 runs with CUDNN_FMA_MATH: no TF32 tensor cores, so results match the CPU within float32
// rounding. Workspaces come from the caching allocator.
#include <cudnn.h>
#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "cuda_backend.h"

namespace latent::cuda {
namespace {

void check(cudnnStatus_t s, const char* op, const char* what) {
  if (s != CUDNN_STATUS_SUCCESS) fail(op, "{} failed: {}", what, cudnnGetErrorString(s));
}

cudnnHandle_t handle() {
  static cudnnHandle_t h = [] {
    cudnnHandle_t created = nullptr;
    check(cudnnCreate(&created), "conv2d", "cudnnCreate");
    check(cudnnSetStream(created, 0), "conv2d", "cudnnSetStream");
    return created;
  }();
  return h;
}

bool benchmark_mode() {
  static const bool on = [] {
    const char* env = std::getenv("LATENT_CUDNN_BENCHMARK");
    return env && env[0] && std::strcmp(env, "0") != 0;
  }();
  return on;
}

using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, int64_t, int64_t, int64_t>;

/// Descriptors of one geometry: x (N, C, H, W), w (C_out, C/groups, kH, kW), y (N, C_out, H_out, W_out).
struct Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  bool have_fwd = false, have_data = false, have_filter = false;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t data{};
  cudnnConvolutionBwdFilterAlgo_t filter{};
  cudnnMathType_t fwd_math{}, data_math{}, filter_math{};
  size_t fwd_ws = 0, data_ws = 0, filter_ws = 0;
};

/// The first (fastest by cuDNN's ranking) successful result; for float32 the first with FMA math
/// (no TF32 tensor cores), then one with default math (which may use TF32 on A100 and later unless
/// NVIDIA_TF32_OVERRIDE=0), then any.
template <class Perf>
const Perf* pick(const Perf* results, int count, bool is_float) {
  const Perf* fallback[2] = {nullptr, nullptr};
  for (int i = 0; i < count; ++i) {
    if (results[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (!is_float || results[i].mathType == CUDNN_FMA_MATH) return &results[i];
    const int rank = results[i].mathType == CUDNN_DEFAULT_MATH ? 0 : 1;
    if (!fallback[rank]) fallback[rank] = &results[i];
  }
  return fallback[0] ? fallback[0] : fallback[1];
}

Plan& plan_for(const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dParams& p, const char* op) {
  static std::mutex mutex;
  static std::map<Key, std::unique_ptr<Plan>> cache;
  const Key key{static_cast<int>(x.dtype()), x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3], w.shape()[0],
                w.shape()[2], w.shape()[3], p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.dilation[0],
                p.dilation[1], p.groups, y.shape()[2] * 100000 + y.shape()[3]};
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[key];
  if (slot) return *slot;
  auto plan = std::make_unique<Plan>();
  const cudnnDataType_t type = x.dtype() == kFloat32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
  check(cudnnCreateTensorDescriptor(&plan->x), op, "cudnnCreateTensorDescriptor");
  check(cudnnCreateTensorDescriptor(&plan->y), op, "cudnnCreateTensorDescriptor");
  check(cudnnCreateFilterDescriptor(&plan->w), op, "cudnnCreateFilterDescriptor");
  check(cudnnCreateConvolutionDescriptor(&plan->conv), op, "cudnnCreateConvolutionDescriptor");
  check(cudnnSetTensor4dDescriptor(plan->x, CUDNN_TENSOR_NCHW, type, int(x.shape()[0]), int(x.shape()[1]),
                                   int(x.shape()[2]), int(x.shape()[3])),
        op, "cudnnSetTensor4dDescriptor(x)");
  check(cudnnSetTensor4dDescriptor(plan->y, CUDNN_TENSOR_NCHW, type, int(y.shape()[0]), int(y.shape()[1]),
                                   int(y.shape()[2]), int(y.shape()[3])),
        op, "cudnnSetTensor4dDescriptor(y)");
  check(cudnnSetFilter4dDescriptor(plan->w, type, CUDNN_TENSOR_NCHW, int(w.shape()[0]), int(w.shape()[1]),
                                   int(w.shape()[2]), int(w.shape()[3])),
        op, "cudnnSetFilter4dDescriptor");
  check(cudnnSetConvolution2dDescriptor(plan->conv, int(p.padding[0]), int(p.padding[1]), int(p.stride[0]),
                                        int(p.stride[1]), int(p.dilation[0]), int(p.dilation[1]),
                                        CUDNN_CROSS_CORRELATION, type),
        op, "cudnnSetConvolution2dDescriptor");
  check(cudnnSetConvolutionGroupCount(plan->conv, int(p.groups)), op, "cudnnSetConvolutionGroupCount");
  check(cudnnSetConvolutionMathType(plan->conv, x.dtype() == kFloat32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH), op,
        "cudnnSetConvolutionMathType");
  slot = std::move(plan);
  return *slot;
}

/// Scratch from the caching allocator (a CUDA uint8-sized float tensor keeps it alive).
Tensor workspace(size_t bytes) { return empty({static_cast<int64_t>((bytes + 7) / 8)}, kFloat64, kCUDA); }

constexpr int kMaxAlgos = 16;

}  // namespace

// x: (N, C_in, H, W), weight: (C_out, C_in / groups, kH, kW), out: (N, C_out, H_out, W_out).
void CudaBackend::conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out,
                         const Conv2dParams& p) {
  const char* op = "conv2d";
  if (!is_floating(x.dtype())) fail(op, "dtype {} is not supported: expected float32 or float64", x.dtype());
  if (out.numel() == 0) return;
  Plan& plan = plan_for(x, weight, out, p, op);
  cudnnHandle_t h = handle();
  if (!plan.have_fwd) {
    cudnnConvolutionFwdAlgoPerf_t results[kMaxAlgos];
    int count = 0;
    if (benchmark_mode())
      check(cudnnFindConvolutionForwardAlgorithm(h, plan.x, plan.w, plan.conv, plan.y, kMaxAlgos, &count, results), op,
            "cudnnFindConvolutionForwardAlgorithm");
    else
      check(cudnnGetConvolutionForwardAlgorithm_v7(h, plan.x, plan.w, plan.conv, plan.y, kMaxAlgos, &count, results),
            op, "cudnnGetConvolutionForwardAlgorithm_v7");
    const auto* best = pick(results, count, x.dtype() == kFloat32);
    if (!best) fail(op, "cuDNN has no forward algorithm for input {} and weight {}", x.shape(), weight.shape());
    plan.fwd = best->algo;
    plan.fwd_math = best->mathType;
    check(cudnnSetConvolutionMathType(plan.conv, plan.fwd_math), op, "cudnnSetConvolutionMathType");
    check(cudnnGetConvolutionForwardWorkspaceSize(h, plan.x, plan.w, plan.conv, plan.y, plan.fwd, &plan.fwd_ws), op,
          "cudnnGetConvolutionForwardWorkspaceSize");
    plan.have_fwd = true;
  }
  check(cudnnSetConvolutionMathType(plan.conv, plan.fwd_math), op, "cudnnSetConvolutionMathType");
  Tensor ws = plan.fwd_ws ? workspace(plan.fwd_ws) : Tensor();
  const double one_d = 1.0, zero_d = 0.0;
  const float one_f = 1.0f, zero_f = 0.0f;
  const bool f32 = x.dtype() == kFloat32;
  const void* one = f32 ? static_cast<const void*>(&one_f) : &one_d;
  const void* zero = f32 ? static_cast<const void*>(&zero_f) : &zero_d;
  check(cudnnConvolutionForward(h, one, plan.x, x.raw_data(), plan.w, weight.raw_data(), plan.conv, plan.fwd,
                                ws.defined() ? ws.raw_data() : nullptr, plan.fwd_ws, zero, plan.y, out.raw_data()),
        op, "cudnnConvolutionForward");
  if (bias.defined())
    launch_add_bias(dt_of(out), out.raw_data(), bias.raw_data(), out.shape()[0], out.shape()[1],
                    out.shape()[2] * out.shape()[3]);
}

// grad_out: (N, C_out, H_out, W_out), weight: (C_out, C_in / groups, kH, kW), grad_input: (N, C_in, H, W).
void CudaBackend::conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Tensor& grad_input,
                                        const Conv2dParams& p) {
  const char* op = "conv2d_backward_input";
  if (!is_floating(grad_out.dtype())) fail(op, "dtype {} is not supported: expected float32 or float64", grad_out.dtype());
  if (grad_input.numel() == 0) return;
  if (grad_out.numel() == 0) {
    zero_fill(dt_of(grad_input), grad_input.raw_data(), grad_input.numel());
    return;
  }
  Plan& plan = plan_for(grad_input, weight, grad_out, p, op);
  cudnnHandle_t h = handle();
  if (!plan.have_data) {
    cudnnConvolutionBwdDataAlgoPerf_t results[kMaxAlgos];
    int count = 0;
    if (benchmark_mode())
      check(cudnnFindConvolutionBackwardDataAlgorithm(h, plan.w, plan.y, plan.conv, plan.x, kMaxAlgos, &count, results),
            op, "cudnnFindConvolutionBackwardDataAlgorithm");
    else
      check(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, plan.w, plan.y, plan.conv, plan.x, kMaxAlgos, &count,
                                                        results),
            op, "cudnnGetConvolutionBackwardDataAlgorithm_v7");
    const auto* best = pick(results, count, grad_out.dtype() == kFloat32);
    if (!best) fail(op, "cuDNN has no backward-data algorithm for weight {} and gradient {}", weight.shape(), grad_out.shape());
    plan.data = best->algo;
    plan.data_math = best->mathType;
    check(cudnnSetConvolutionMathType(plan.conv, plan.data_math), op, "cudnnSetConvolutionMathType");
    check(cudnnGetConvolutionBackwardDataWorkspaceSize(h, plan.w, plan.y, plan.conv, plan.x, plan.data, &plan.data_ws),
          op, "cudnnGetConvolutionBackwardDataWorkspaceSize");
    plan.have_data = true;
  }
  check(cudnnSetConvolutionMathType(plan.conv, plan.data_math), op, "cudnnSetConvolutionMathType");
  Tensor ws = plan.data_ws ? workspace(plan.data_ws) : Tensor();
  const double one_d = 1.0, zero_d = 0.0;
  const float one_f = 1.0f, zero_f = 0.0f;
  const bool f32 = grad_out.dtype() == kFloat32;
  const void* one = f32 ? static_cast<const void*>(&one_f) : &one_d;
  const void* zero = f32 ? static_cast<const void*>(&zero_f) : &zero_d;
  check(cudnnConvolutionBackwardData(h, one, plan.w, weight.raw_data(), plan.y, grad_out.raw_data(), plan.conv,
                                     plan.data, ws.defined() ? ws.raw_data() : nullptr, plan.data_ws, zero, plan.x,
                                     grad_input.raw_data()),
        op, "cudnnConvolutionBackwardData");
}

// grad_out: (N, C_out, H_out, W_out), x: (N, C_in, H, W), grad_weight: (C_out, C_in / groups, kH, kW).
void CudaBackend::conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Tensor& grad_weight,
                                         const Conv2dParams& p) {
  const char* op = "conv2d_backward_weight";
  if (!is_floating(x.dtype())) fail(op, "dtype {} is not supported: expected float32 or float64", x.dtype());
  if (grad_weight.numel() == 0) return;
  if (grad_out.numel() == 0 || x.numel() == 0) {
    zero_fill(dt_of(grad_weight), grad_weight.raw_data(), grad_weight.numel());
    return;
  }
  Plan& plan = plan_for(x, grad_weight, grad_out, p, op);
  cudnnHandle_t h = handle();
  if (!plan.have_filter) {
    cudnnConvolutionBwdFilterAlgoPerf_t results[kMaxAlgos];
    int count = 0;
    if (benchmark_mode())
      check(cudnnFindConvolutionBackwardFilterAlgorithm(h, plan.x, plan.y, plan.conv, plan.w, kMaxAlgos, &count,
                                                        results),
            op, "cudnnFindConvolutionBackwardFilterAlgorithm");
    else
      check(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, plan.x, plan.y, plan.conv, plan.w, kMaxAlgos, &count,
                                                          results),
            op, "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
    const auto* best = pick(results, count, x.dtype() == kFloat32);
    if (!best) fail(op, "cuDNN has no backward-filter algorithm for input {} and gradient {}", x.shape(), grad_out.shape());
    plan.filter = best->algo;
    plan.filter_math = best->mathType;
    check(cudnnSetConvolutionMathType(plan.conv, plan.filter_math), op, "cudnnSetConvolutionMathType");
    check(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, plan.x, plan.y, plan.conv, plan.w, plan.filter,
                                                         &plan.filter_ws),
          op, "cudnnGetConvolutionBackwardFilterWorkspaceSize");
    plan.have_filter = true;
  }
  check(cudnnSetConvolutionMathType(plan.conv, plan.filter_math), op, "cudnnSetConvolutionMathType");
  Tensor ws = plan.filter_ws ? workspace(plan.filter_ws) : Tensor();
  const double one_d = 1.0, zero_d = 0.0;
  const float one_f = 1.0f, zero_f = 0.0f;
  const bool f32 = x.dtype() == kFloat32;
  const void* one = f32 ? static_cast<const void*>(&one_f) : &one_d;
  const void* zero = f32 ? static_cast<const void*>(&zero_f) : &zero_d;
  check(cudnnConvolutionBackwardFilter(h, one, plan.x, x.raw_data(), plan.y, grad_out.raw_data(), plan.conv,
                                       plan.filter, ws.defined() ? ws.raw_data() : nullptr, plan.filter_ws, zero,
                                       plan.w, grad_weight.raw_data()),
        op, "cudnnConvolutionBackwardFilter");
}

}  // namespace latent::cuda
