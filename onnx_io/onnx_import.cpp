#include "onnx_import.h"
