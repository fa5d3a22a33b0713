// Import of ONNX models as nn::Modules with autograd (placeholder; being written).
#pragma once
