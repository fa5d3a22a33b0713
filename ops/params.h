// The geometry of convolution and pooling as the ops, the backends and the trace share it: the trace
// records these structs themselves (trace::Attr), so the exporter reads fields by name.
#pragma once

#include <cstdint>

namespace latent {

/// Geometry of a 2-d convolution (1-d convolutions use height 1). output_padding is used by the
/// transposed convolution only, to pick among the input sizes that map to one output size.
struct Conv2dParams {
  int64_t stride[2] = {1, 1};
  int64_t padding[2] = {0, 0};
  int64_t dilation[2] = {1, 1};
  int64_t output_padding[2] = {0, 0};
  int64_t groups = 1;
};

/// Geometry of 2-d pooling (1-d pooling uses height 1).
struct Pool2dParams {
  int64_t kernel[2] = {1, 1};
  int64_t stride[2] = {1, 1};
  int64_t padding[2] = {0, 0};
  int64_t dilation[2] = {1, 1};
  bool ceil_mode = false;
  bool count_include_pad = true;  // avg pooling only
};

}  // namespace latent
