// Losses. mse_loss, l1_loss and the two binary cross entropies are op structs: forward is one or
// two elementwise passes plus one reduction; backward, for Mean and Sum, one pass per gradient
// (two for the BCEs). Their pointwise math is in scalar_math.h. nll_loss gathers the picked log-probabilities and
// scatters its gradient back; cross_entropy and gaussian_kl_divergence are compositions of
// differentiable ops. See loss.h for what each Reduction means.
#include "loss.h"

#include <vector>

#include "apply.h"
#include "backend.h"
#include "check.h"
#include "creation.h"
#include "elementwise.h"
#include "reduce.h"

namespace latent {
namespace {

/// The pair of a pointwise loss: defined, floating, one dtype, one device and exactly one shape.
void check_pair(const char* op, const Tensor& input, const Tensor& target, const char* input_name,
                const char* target_name) {
  check::defined(op, input, input_name);
  check::defined(op, target, target_name);
  if (!input.is_floating_point())
    fail(op, "{} dtype {} is not supported: expected float32 or float64", input_name, input.dtype());
  if (!target.is_floating_point())
    fail(op, "{} dtype {} is not supported: expected float32 or float64", target_name, target.dtype());
  if (input.dtype() != target.dtype())
    fail(op, "{} dtype {} and {} dtype {} differ", input_name, input.dtype(), target_name, target.dtype());
  check::same_device(op, input, target);
  if (!(input.shape() == target.shape()))
    fail(op, "{} shape {} and {} shape {} differ", input_name, input.shape(), target_name, target.shape());
}

/// input (N, C) floating and labels (N) int64, every label in [0, C).
void check_classification(const char* op, const Tensor& input, const Tensor& labels, const char* input_name) {
  check::defined(op, input, input_name);
  check::defined(op, labels, "labels");
  if (!input.is_floating_point())
    fail(op, "{} dtype {} is not supported: expected float32 or float64", input_name, input.dtype());
  if (labels.dtype() != kInt64)
    fail(op, "labels must have dtype int64 (class indices); got {}: convert with labels.to(latent::kInt64)",
         labels.dtype());
  check::same_device(op, input, labels);
  if (input.dim() != 2) fail(op, "{} must have shape (N, C); got {}", input_name, input.shape());
  if (labels.dim() != 1 || labels.size(0) != input.size(0))
    fail(op, "labels must have shape [{}] to match {} shape {}; got {}", input.size(0), input_name, input.shape(),
         labels.shape());
  const int64_t classes = input.size(1);
  const std::vector<int64_t> values = (labels.device().is_cpu() ? labels : labels.to(kCPU)).to_vector<int64_t>();
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i] < 0 || values[i] >= classes)
      fail(op, "label {} at position {} is out of range for {} classes", values[i], i, classes);
}

/// The count a Mean divides by; 1 for Sum and None.
double divisor_of(Reduction reduction, int64_t count) {
  return reduction == Reduction::Mean ? static_cast<double>(count) : 1.0;
}

/// terms for None; otherwise sum(terms) / divisor as a 0-d tensor (one reduce pass, float64
/// accumulation; 0 / 0 gives NaN for the Mean of nothing, as in PyTorch).
Tensor reduce_terms(const char* op, const Tensor& terms, Reduction reduction, double divisor) {
  if (reduction == Reduction::None) return terms;
  Tensor keep = empty(Shape::filled(terms.dim(), 1), terms.dtype(), terms.device());
  Backend& be = backend(terms.device(), op);
  be.reduce(ReduceOp::Sum, terms, keep);
  if (divisor != 1.0) be.unary(UnaryOp::DivScalar, keep, keep, divisor, 0);
  return make_view(keep, {}, {}, 0);
}

/// g * factor / divisor: 0-d for Mean and Sum (the kernel that uses it broadcasts it, so scaling
/// costs nothing per element), the loss's shape for None.
Tensor scaled_grad(const char* op, const Tensor& g, double factor, double divisor) {
  const double f = factor / divisor;
  return f == 1.0 ? g : unary_kernel(op, UnaryOp::MulScalar, g, f);
}

/// Context of every loss op.
struct LossCtx : OpContext {
  double divisor = 1;  // the count a Mean divided by; 1 for Sum and None
  InputMeta input;  // nll_loss: the shape and dtype of log_probs
};

/// (input - target)^2. Mean and Sum are one fused pass (the squared error summed in float64,
/// nothing allocated); None is the difference squared in place. Saves input and target (no copy),
/// so backward is one pass per gradient: +-2 (input - target) g / n.
struct MseLossOp {
  static constexpr const char* name = "mse_loss";
  using Ctx = LossCtx;
  static Tensor forward(Ctx* ctx, const Tensor& input, const Tensor& target, Reduction reduction) {
    check_pair(name, input, target, "input", "target");
    Backend& be = backend(input.device(), name);
    const double divisor = divisor_of(reduction, input.numel());
    if (ctx) {
      ctx->divisor = divisor;
      ctx->save(input, target);
    }
    if (reduction == Reduction::None) {
      Tensor terms = empty(input.shape(), input.dtype(), input.device());
      be.binary(BinaryOp::SquaredError, input, target, terms, 0, 0);
      return terms;
    }
    Tensor total = empty({}, input.dtype(), input.device());
    be.binary_sum(BinaryOp::SquaredError, input, target, total, 0, 0);
    if (divisor != 1.0) be.unary(UnaryOp::DivScalar, total, total, divisor, 0);
    return total;
  }
  static std::array<Tensor, 2> backward(const Ctx& ctx, const Tensor& g) {
    auto [input, target] = ctx.saved<2>(name);
    Backend& be = backend(g.device(), name);
    auto grad = [&](double sign) {
      Tensor out = empty(input.shape(), input.dtype(), input.device());
      be.binary_scaled(BinaryOp::MseLossBackward, input, target, scaled_grad(name, g, sign, ctx.divisor), out, 0, 0);
      return out;
    };
    return {ctx.needs_grad(0) ? grad(1.0) : Tensor(), ctx.needs_grad(1) ? grad(-1.0) : Tensor()};
  }
};

/// |input - target|. Saves the difference; backward is AbsBackward(g / n, diff) = g sign(diff) / n.
struct L1LossOp {
  static constexpr const char* name = "l1_loss";
  using Ctx = LossCtx;
  static Tensor forward(Ctx* ctx, const Tensor& input, const Tensor& target, Reduction reduction) {
    check_pair(name, input, target, "input", "target");
    Backend& be = backend(input.device(), name);
    Tensor diff = empty(input.shape(), input.dtype(), input.device());
    be.binary(BinaryOp::Sub, input, target, diff, 1, 0);
    Tensor terms = ctx ? empty(input.shape(), input.dtype(), input.device()) : diff;
    be.unary(UnaryOp::Abs, diff, terms, 0, 0);
    const double divisor = divisor_of(reduction, input.numel());
    if (ctx) {
      ctx->divisor = divisor;
      ctx->save(diff);
    }
    return reduce_terms(name, terms, reduction, divisor);
  }
  static std::array<Tensor, 2> backward(const Ctx& ctx, const Tensor& g) {
    Tensor diff = ctx.saved(0, name);
    auto grad = [&](double sign) {
      return binary_kernel(name, BinaryOp::AbsBackward, scaled_grad(name, g, sign, ctx.divisor), diff);
    };
    return {ctx.needs_grad(0) ? grad(1.0) : Tensor(), ctx.needs_grad(1) ? grad(-1.0) : Tensor()};
  }
};

/// The binary cross entropies: forward is the kLoss kernel of (input, target) and a reduction;
/// the input's gradient is the kGrad kernel of (input, target) times g / n.
template <const char* kName, BinaryOp kLoss, BinaryOp kGrad>
struct BinaryCrossEntropyOp {
  static constexpr const char* name = kName;
  using Ctx = LossCtx;
  static constexpr bool kLogits = kLoss == BinaryOp::BceWithLogits;
  static Tensor forward(Ctx* ctx, const Tensor& input, const Tensor& target, Reduction reduction) {
    check_pair(name, input, target, kLogits ? "logits" : "probs", "target");
    const double divisor = divisor_of(reduction, input.numel());
    if (ctx) {
      ctx->divisor = divisor;
      ctx->save(input, target);
    }
    if (reduction == Reduction::None) return binary_kernel(name, kLoss, input, target);
    // Mean and Sum: the terms and their float64 sum in one pass, nothing allocated.
    Backend& be = backend(input.device(), name);
    Tensor total = empty({}, input.dtype(), input.device());
    be.binary_sum(kLoss, input, target, total, 0, 0);
    if (divisor != 1.0) be.unary(UnaryOp::DivScalar, total, total, divisor, 0);
    return total;
  }
  static std::array<Tensor, 2> backward(const Ctx& ctx, const Tensor& g) {
    auto [input, target] = ctx.saved<2>(name);
    Backend& be = backend(g.device(), name);
    Tensor scale = scaled_grad(name, g, 1.0, ctx.divisor);
    Tensor grad_input, grad_target;
    if (ctx.needs_grad(0)) {
      grad_input = empty(input.shape(), input.dtype(), input.device());
      be.binary_scaled(kGrad, input, target, scale, grad_input, 0, 0);  // kGrad(input, target) * g / n, one pass
    }
    if (ctx.needs_grad(1)) {
      if constexpr (kLogits) {
        grad_target = binary_kernel(name, BinaryOp::Mul, input, scaled_grad(name, g, -1.0, ctx.divisor));
      } else {
        // The loss is linear in t, so d/dt = loss(p, 1) - loss(p, 0) = floored log(1 - p) - log(p):
        // the derivative of exactly what forward computed (PyTorch's is -logit(p), unfloored).
        grad_target = binary_kernel(name, kLoss, input, full({}, 1.0, input.dtype(), input.device()));
        be.binary(BinaryOp::Sub, grad_target,
                  binary_kernel(name, kLoss, input, zeros({}, input.dtype(), input.device())), grad_target, 1, 0);
        be.binary(BinaryOp::Mul, grad_target, scale, grad_target, 1, 0);
      }
    }
    return {grad_input, grad_target};
  }
};

constexpr char kBce[] = "binary_cross_entropy", kBceWithLogits[] = "binary_cross_entropy_with_logits";
using BceOp = BinaryCrossEntropyOp<kBce, BinaryOp::BinaryCrossEntropy, BinaryOp::BinaryCrossEntropyBackward>;
using BceWithLogitsOp =
    BinaryCrossEntropyOp<kBceWithLogits, BinaryOp::BceWithLogits, BinaryOp::BceWithLogitsBackward>;

/// -log_probs[i, labels[i]] (arguments already checked by check_classification). Gathers the N
/// picked values; backward scatters -g / n into zeros of log_probs' shape.
struct NllLossOp {
  static constexpr const char* name = "nll_loss";
  using Ctx = LossCtx;
  static Tensor forward(Ctx* ctx, const Tensor& log_probs, const Tensor& labels, Reduction reduction) {
    const int64_t n = log_probs.size(0);
    // labels (N) viewed as the (N, 1) index of gather along dim 1.
    Tensor index = make_view(labels, {n, 1}, {labels.stride(0), 1}, labels.storage_offset());
    Tensor picked = empty({n, 1}, log_probs.dtype(), log_probs.device());
    Backend& be = backend(log_probs.device(), name);
    be.gather(log_probs, 1, index, picked);
    be.unary(UnaryOp::Neg, picked, picked, 0, 0);
    const double divisor = divisor_of(reduction, n);
    if (ctx) {
      ctx->divisor = divisor;
      ctx->input = InputMeta::of(log_probs);
      ctx->save(index);
    }
    return reduce_terms(name, make_view(picked, {n}, {1}, 0), reduction, divisor);
  }
  static std::array<Tensor, 2> backward(const Ctx& ctx, const Tensor& g) {
    Tensor index = ctx.saved(0, name);
    const int64_t n = ctx.input.shape[0];
    Tensor grad = zeros(ctx.input.shape, ctx.input.dtype, g.device());
    Tensor s = scaled_grad(name, g, -1.0, ctx.divisor);  // 0-d, or (N) for None
    Tensor src = s.dim() == 0 ? make_view(s, {n, 1}, {0, 0}, s.storage_offset())
                              : make_view(s, {n, 1}, {s.stride(0), 1}, s.storage_offset());
    backend(g.device(), name).scatter_add(grad, 1, index, src);
    return {grad, Tensor()};
  }
};

}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  return apply<MseLossOp>(input, target, reduction);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  return apply<L1LossOp>(input, target, reduction);
}

Tensor binary_cross_entropy(const Tensor& probs, const Tensor& target, Reduction reduction) {
  return apply<BceOp>(probs, target, reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target, Reduction reduction) {
  return apply<BceWithLogitsOp>(logits, target, reduction);
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& labels, Reduction reduction) {
  check_classification("nll_loss", log_probs, labels, "log_probs");
  return apply<NllLossOp>(log_probs, labels, reduction);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction) {
  check_classification("cross_entropy", logits, labels, "logits");
  return apply<NllLossOp>(log_softmax(logits, 1), labels, reduction);
}

Tensor gaussian_kl_divergence(const Tensor& mu, const Tensor& logvar, Reduction reduction) {
  check_pair("gaussian_kl_divergence", mu, logvar, "mu", "logvar");
  Tensor terms = mul(sub(sub(add(logvar, 1.0), mul(mu, mu)), exp(logvar)), -0.5);
  if (reduction == Reduction::Sum) return sum(terms);
  if (reduction == Reduction::Mean) return mean(terms);
  return terms;
}

}  // namespace latent
