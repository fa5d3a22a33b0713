// The geometry of convolution and pooling as the ops, the backends and the trace share it: the trace
// records these structs themselves (trace::Attr), so the exporter reads fields by name.
#pragma once

#include <cstdint>

namespace latent {

/// Geometry of a 2-d convolution (1-d convolutions use height 1). output_padding is used by the
/// transposed convolution only, to pick among the input sizes that map to one output size.
struct Conv2dParams {
  /// (height, width) step of the kernel over the input.
  int64_t stride[2] = {1, 1};
  /// (height, width) zeros added on each side of the input (removed from the output for transposed).
  int64_t padding[2] = {0, 0};
  /// (height, width) spacing between kernel taps.
  int64_t dilation[2] = {1, 1};
  /// (height, width) extra rows/columns on one side of a transposed convolution's output.
  int64_t output_padding[2] = {0, 0};
  /// Channel groups: input and output channels are split into this many independent blocks.
  int64_t groups = 1;
};

/// Geometry of 2-d pooling (1-d pooling uses height 1).
struct Pool2dParams {
  /// (height, width) window size.
  int64_t kernel[2] = {1, 1};
  /// (height, width) step of the window.
  int64_t stride[2] = {1, 1};
  /// (height, width) implicit padding on each side (-inf for max, 0 for average).
  int64_t padding[2] = {0, 0};
  /// (height, width) spacing between window taps (max pooling).
  int64_t dilation[2] = {1, 1};
  /// Output size rounds up instead of down.
  bool ceil_mode = false;
  /// Average pooling: padded zeros count in the divisor.
  bool count_include_pad = true;  // avg pooling only
};

}  // namespace latent
