#include "onnx_export.h"
