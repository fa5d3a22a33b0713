// Export of any Module to ONNX by tracing one forward pass (placeholder; being written).
#pragma once
