#!/usr/bin/env python3
"""QDQ export of a `latent quantize` run, checked (tests/quantize_test.sh runs it in .venv-onnx):
onnx.checker accepts the file; every Gemm, Conv and ConvTranspose reads DequantizeLinear outputs
(input: QuantizeLinear -> DequantizeLinear, uint8, per tensor; weight: int8 initializer, per-axis
scales on the output channels' axis: 0 for Gemm and Conv, 1 for ConvTranspose); and ONNX Runtime's
outputs match latent's int8 outputs on the Fashion-MNIST test images: the encoder's codes (latent
score --codes) within one quantization step of the code layer, the reconstruction errors (latent
score) within 1%. With SCORES.csv from `latent score` without --codes (the conv AE, whose codes are
1568 wide), only the reconstruction errors are compared.

usage: quantize_onnx_check.py ENCODER.onnx FULL.onnx SCORES.csv N
"""
import gzip, sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

enc_path, full_path, scores_path, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
failures = 0


def check(name, ok, detail=""):
    global failures
    print(("ok   " if ok else "FAIL ") + name + (f": {detail}" if detail else ""))
    failures += 0 if ok else 1


with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", "rb") as f:
    x = (np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 784)[:n].astype(np.float32) / np.float32(255))
rows = np.genfromtxt(scores_path, delimiter=",", names=True)
latent_error = rows["error"][:n]
code_columns = [c for c in rows.dtype.names if c.startswith("z")]
latent_codes = np.stack([rows[c] for c in code_columns], axis=1)[:n] if code_columns else None
COMPUTE = ("Gemm", "Conv", "ConvTranspose")

for path in (enc_path, full_path):
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    check(f"checker {path.split('/')[-1]}", True)
    ops = [nd.op_type for nd in m.graph.node]
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    producers = {o: nd for nd in m.graph.node for o in nd.output}
    gemms = [nd for nd in m.graph.node if nd.op_type in COMPUTE]
    qdq = all(producers.get(g.input[0]) is not None and producers[g.input[0]].op_type == "DequantizeLinear" and
              producers.get(g.input[1]) is not None and producers[g.input[1]].op_type == "DequantizeLinear"
              for g in gemms)
    check(f"every Gemm/Conv/ConvTranspose reads DequantizeLinear ({len(gemms)} of them, {ops.count('QuantizeLinear')} QuantizeLinear)",
          qdq and len(gemms) > 0 and ops.count("QuantizeLinear") == len(gemms))
    per_axis = True
    for g in gemms:
        dq = producers[g.input[1]]
        w, s = init.get(dq.input[0]), init.get(dq.input[1])
        axis = [a.i for a in dq.attribute if a.name == "axis"]
        ax = 1 if g.op_type == "ConvTranspose" else 0
        per_axis &= w is not None and w.dtype == np.int8 and s is not None and s.shape == (w.shape[ax],) and axis == [ax]
        xq = producers[producers[g.input[0]].input[0]]
        per_axis &= init[xq.input[2]].dtype == np.uint8
    check("int8 weights with per-axis scales, uint8 inputs", per_axis)
    no_float_weights = all(t.dtype != np.float32 or t.ndim < 2 for t in init.values())
    check("no float32 weight matrix left in the file", no_float_weights)

so = ort.SessionOptions()
so.log_severity_level = 3
enc = ort.InferenceSession(enc_path, so, providers=["CPUExecutionProvider"])
full = ort.InferenceSession(full_path, so, providers=["CPUExecutionProvider"])
codes = enc.run(None, {enc.get_inputs()[0].name: x})[0].reshape(n, -1)
recon = full.run(None, {full.get_inputs()[0].name: x})[0].reshape(n, -1)
err = np.mean((recon - x) ** 2, axis=1)
if latent_codes is not None:
    # one quantization step of the code layer: its input scale times its weights' largest scale
    # times the largest |sum| of int8 products one rounding flip changes (one input level x max |w|).
    m = onnx.load(enc_path)
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    producers = {o: nd for nd in m.graph.node for o in nd.output}
    last = [nd for nd in m.graph.node if nd.op_type in COMPUTE][-1]
    dq_w, dq_x = producers[last.input[1]], producers[last.input[0]]
    w_q, w_s = init[dq_w.input[0]], init[dq_w.input[1]]
    x_s = float(init[dq_x.input[1]])
    step = x_s * float(np.max(w_s * np.max(np.abs(w_q.reshape(w_q.shape[0], -1)), axis=1)))
    diff = float(np.max(np.abs(codes - latent_codes)))
    check(f"codes: ORT vs latent int8 max |diff| {diff:.3g} <= one step {step:.3g}", diff <= step)
rel = float(np.max(np.abs(err - latent_error) / np.maximum(latent_error, 1e-6)))
check(f"reconstruction errors: ORT vs latent int8 max relative diff {rel:.3g} <= 0.01", rel <= 0.01)
sys.exit(1 if failures else 0)
