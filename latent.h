// The one header users include: #include <latent/latent.h>
//
// In the source tree this file sits at the root and includes the layer folders relatively;
// `meson install` puts it at <prefix>/include/latent/latent.h with the layer folders beside it
// (include/latent/autograd/, include/latent/ops/, include/latent/models/, include/latent/onnx_io/),
// so the same relative includes work there.
#pragma once

#include "autograd/dtype.h"
#include "autograd/error.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/shape.h"
#include "autograd/tensor.h"
#include "ops/activation.h"
#include "ops/apply.h"
#include "ops/conv.h"
#include "ops/creation.h"
#include "ops/elementwise.h"
#include "ops/gradcheck.h"
#include "ops/index.h"
#include "ops/join.h"
#include "ops/linalg.h"
#include "ops/loss.h"
#include "ops/nn_ops.h"
#include "ops/random.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "ops/threads.h"
#include "models/autoencoder.h"
#include "models/checkpoint.h"
#include "models/data.h"
#include "models/init.h"
#include "models/json.h"
#include "models/layers.h"
#include "models/module.h"
#include "models/optim.h"
#include "models/progress.h"
#include "models/run.h"
#include "models/safetensors.h"
#include "onnx_io/onnx_export.h"
#include "onnx_io/onnx_import.h"
#include "onnx_io/onnx_model.h"
