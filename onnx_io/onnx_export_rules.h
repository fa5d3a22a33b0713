// Internal to the exporter (not installed): the export rules defined in onnx_export_rules.cpp, which
// the export table (onnx_op_tables.cpp) names. Each writes the nodes of one record (see Emit).
#pragma once

#include "onnx_export_graph.h"

namespace latent::onnx::exporter {

std::string emit_binary(const Emit& e);             ///< add, sub, mul, div, pow of two tensors
std::string emit_scalar_affine(const Emit& e);      ///< add/sub/mul/div_scalar, rsub
std::string emit_pow_scalar(const Emit& e);         ///< x ** exponent
std::string emit_where(const Emit& e);              ///< where(cond, a, b)
std::string emit_softplus(const Emit& e);           ///< softplus(x, beta)
std::string emit_gelu(const Emit& e);               ///< gelu (erf form)
std::string emit_clamp(const Emit& e);              ///< clamp(x, min, max)
std::string emit_batch_norm(const Emit& e);         ///< eval batch_norm (composite)
std::string emit_pad(const Emit& e);                ///< pad (composite)
std::string emit_linear(const Emit& e);             ///< linear on 2-d input
std::string emit_fused_linear(const Emit& e);       ///< linear + activation
std::string emit_view(const Emit& e);               ///< view / reshape / squeeze / unsqueeze
std::string emit_permute(const Emit& e);            ///< permute
std::string emit_slice(const Emit& e);              ///< slice / narrow
std::string emit_expand(const Emit& e);             ///< expand
std::string emit_clone(const Emit& e);              ///< clone / dtype conversion
std::string emit_sum_mean(const Emit& e);           ///< sum, mean
std::string emit_extreme_all(const Emit& e);        ///< max(x), min(x)
std::string emit_extreme_dim(const Emit& e);        ///< max(x, dim), min(x, dim)
std::string emit_conv(const Emit& e);               ///< conv2d, conv_transpose2d
std::string emit_pool(const Emit& e);               ///< max/avg pooling
std::string emit_adaptive_avg_pool(const Emit& e);  ///< adaptive_avg_pool2d/1d
std::string emit_upsample(const Emit& e);           ///< nearest / bilinear upsampling
std::string emit_pointwise_loss(const Emit& e);     ///< mse_loss, l1_loss

}  // namespace latent::onnx::exporter
