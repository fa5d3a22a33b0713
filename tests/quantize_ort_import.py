#!/usr/bin/env python3
"""Makes ONNX Runtime-quantized copies of latent's float32 exports for the import check
(tests/quantize_test.sh runs it in .venv-onnx, then runs each copy in latent with
tools/onnx_roundtrip --check-data and compares with ONNX Runtime's outputs written here).

For each FLOAT.onnx: quantize_static in the QDQ form (per channel, weights QInt8, activations
QUInt8, MinMax) calibrated on the first CAL Fashion-MNIST training images, and with --dynamic also
quantize_dynamic (weights QUInt8: ConvInteger/MatMulInteger with DynamicQuantizeLinear); with
--as-is, no quantization: the model itself (latent's own QDQ export) is the case. Writes
OUT/NAME/model.onnx and OUT/NAME/test_data_set_0/{input_0,output_0}.pb (ONNX Runtime's output on
the first N test images) and prints "NAME ATOL OUTLIER_ATOL OPS": ATOL one quantization step of
the model's output (the scale of the DequantizeLinear that produces it; for a float output after
Sigmoid(Gemm(DQ, DQ)), what one flip of the Gemm's quantized input can move it; 1e-3 at least),
OUTLIER_ATOL the bound for the few outputs allowed past ATOL (for that float output: every input of
the Gemm one step off; else ATOL).

usage: quantize_ort_import.py MODEL.onnx OUT PREFIX N CAL [--dynamic] [--qoperator] | [--as-is]
"""
import gzip, os, sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_dynamic, quantize_static)

src, out, prefix, n, cal = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
dynamic = "--dynamic" in sys.argv[6:]
qoperator = "--qoperator" in sys.argv[6:]
as_is = "--as-is" in sys.argv[6:]


def images(name, count):
    with gzip.open(f"/usr/share/datasets/fashion-mnist/{name}-images-idx3-ubyte.gz", "rb") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 784)[:count]
    return raw.astype(np.float32) / np.float32(255)


model = onnx.load(src)
input_name = model.graph.input[0].name
train = images("train", cal)


class Reader(CalibrationDataReader):
    def __init__(self):
        self.batches = iter([{input_name: train[i:i + 100]} for i in range(0, cal, 100)])

    def get_next(self):
        return next(self.batches, None)


x = images("t10k", n)
so = ort.SessionOptions()
so.log_severity_level = 3
so.intra_op_num_threads = 1


def float_output_steps(node, producers, init):
    """For a float output (latent's own QDQ export ends in Sigmoid(Gemm(DQ(a), DQ(W)))): how far
    rounding flips of the last quantized activation move an output: (one flip: one activation step
    times the largest dequantized weight; every input one step off: the step times the largest
    column sum of |W|), each times sigmoid's largest slope (1/4) when a Sigmoid follows. Two
    engines whose float sums differ in the last bits round an activation that lands next to a
    step differently: 35 of 784,000 outputs in an ASan build here, none in release. (0, 0) when the graph is not that shape."""
    slope = 1.0
    if node is not None and node.op_type == "Sigmoid":
        slope, node = 0.25, producers.get(node.input[0])
    if node is None or node.op_type != "Gemm":
        return 0.0, 0.0
    a, w = producers.get(node.input[0]), producers.get(node.input[1])
    if a is None or w is None or a.op_type != "DequantizeLinear" or w.op_type != "DequantizeLinear":
        return 0.0, 0.0
    if a.input[1] not in init or w.input[0] not in init or w.input[1] not in init:
        return 0.0, 0.0
    q = init[w.input[0]].astype(np.float64)
    zero = init[w.input[2]].astype(np.float64) if len(w.input) > 2 and w.input[2] in init else 0.0
    axis = next((at.i for at in w.attribute if at.name == "axis"), 1)
    scale = init[w.input[1]].astype(np.float64)
    if scale.ndim == 1 and q.ndim == 2:
        shape = [1, 1]
        shape[axis] = -1
        scale = scale.reshape(shape)
        if not np.isscalar(zero) and np.ndim(zero) == 1:
            zero = zero.reshape(shape)
    wd = np.abs((q - zero) * scale)
    trans_b = next((at.i for at in node.attribute if at.name == "transB"), 0)
    column_sums = wd.sum(axis=1 if trans_b else 0)  # over the Gemm's inputs, per output
    step = slope * float(init[a.input[1]])
    return step * float(wd.max()), step * float(column_sums.max())


def write_case(name, path):
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    y = sess.run(None, {input_name: x})[0]
    d = os.path.join(out, name, "test_data_set_0")
    os.makedirs(d, exist_ok=True)
    onnx.save_tensor(numpy_helper.from_array(x, input_name), os.path.join(d, "input_0.pb"))
    onnx.save_tensor(numpy_helper.from_array(y, sess.get_outputs()[0].name), os.path.join(d, "output_0.pb"))
    m = onnx.load(path)
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    producers = {o: nd for nd in m.graph.node for o in nd.output}
    node = producers.get(m.graph.output[0].name)
    while node is not None and node.op_type in ("Reshape", "Flatten", "Identity"):
        node = producers.get(node.input[0])
    # a rounding flip at the output's quantization moves it one step; float rounding can make a
    # flip of exactly one step read a hair over it: 1.01 steps
    if node is not None and node.op_type == "DequantizeLinear":
        step = outlier = 1.01 * float(init[node.input[1]])
    else:
        one, every = float_output_steps(node, producers, init)
        step, outlier = max(1e-3, 1.01 * one), max(1e-3, 1.01 * every)
    ops = sorted({nd.op_type for nd in m.graph.node})
    print(f"{name} {step:.9g} {outlier:.9g} {','.join(ops)}")


os.makedirs(out, exist_ok=True)
if as_is:
    os.makedirs(os.path.join(out, prefix), exist_ok=True)
    onnx.save(model, os.path.join(out, prefix, "model.onnx"))
    write_case(prefix, os.path.join(out, prefix, "model.onnx"))
    sys.exit(0)
static_path = os.path.join(out, f"{prefix}-qdq.onnx")
quantize_static(src, static_path, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                calibrate_method=CalibrationMethod.MinMax)
os.makedirs(os.path.join(out, f"{prefix}-qdq"), exist_ok=True)
os.replace(static_path, os.path.join(out, f"{prefix}-qdq", "model.onnx"))
write_case(f"{prefix}-qdq", os.path.join(out, f"{prefix}-qdq", "model.onnx"))
if dynamic:
    os.makedirs(os.path.join(out, f"{prefix}-dynamic"), exist_ok=True)
    dyn_path = os.path.join(out, f"{prefix}-dynamic", "model.onnx")
    quantize_dynamic(src, dyn_path, weight_type=QuantType.QUInt8)
    write_case(f"{prefix}-dynamic", dyn_path)
if qoperator:
    os.makedirs(os.path.join(out, f"{prefix}-qop"), exist_ok=True)
    qop_path = os.path.join(out, f"{prefix}-qop", "model.onnx")
    quantize_static(src, qop_path, Reader(), quant_format=QuantFormat.QOperator, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                    calibrate_method=CalibrationMethod.MinMax)
    write_case(f"{prefix}-qop", qop_path)
