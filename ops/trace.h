// Tracing hook for the ONNX exporter (placeholder; being written).
#pragma once
