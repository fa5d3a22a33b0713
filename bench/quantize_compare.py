#!/usr/bin/env python3
"""int8 inference (issue 13): latent's int8 run against latent's float32 run (build/bench/quantize,
in-process, interleaved) and against ONNX Runtime on the same model: latent's float32 ONNX export
of RUN, run as float32 and as ONNX Runtime's quantize_static QDQ int8 (per-channel QInt8 weights,
QUInt8 activations, MinMax, calibrated on the same first N Fashion-MNIST training images latent's
quantize used). Same thread count everywhere (ONNX Runtime: intra-op = threads, inter-op 1,
sequential). Figures: batch-256 throughput (samples/s) and batch-1 latency (us per session.run,
Python's call overhead included: it is printed separately, measured on an Identity model), medians
of --reps repetitions; mean per-sample reconstruction MSE on the 10000 test images; weight sizes.

usage: bench/quantize_compare.py RUN [--threads 1] [--reps 7] [--calibration 1000]
       (run it with .venv-onnx/bin/python: tools/setup_onnx_venv.sh makes it)
needs: build/bench/quantize and build/tools/latent (release build); RUN/int8 from `latent quantize RUN`.
"""
import argparse, gzip, json, os, statistics, subprocess, sys, tempfile, time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FMNIST = "/usr/share/datasets/fashion-mnist"


def images(name, n=None):
    with gzip.open(os.path.join(FMNIST, name), "rb") as f:
        data = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    x = data.reshape(-1, 784).astype(np.float32) / np.float32(255)
    return x if n is None else x[:n]


def session(path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def us_per_call(sess, feed, calls, clock):
    t0 = clock()
    for _ in range(calls):
        sess.run(None, feed)
    return (clock() - t0) / calls * 1e6


class Reader(CalibrationDataReader):
    def __init__(self, name, x):
        self.items = iter([{name: x[i:i + 1]} for i in range(len(x))])

    def get_next(self):
        return next(self.items, None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--calibration", type=int, default=1000)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="qbench-")
    f32 = os.path.join(work, "f32.onnx")
    q8 = os.path.join(work, "int8_qdq.onnx")
    subprocess.run([os.path.join(ROOT, "build", "tools", "latent"), "export", a.run, "--out", f32], check=True,
                   stdout=subprocess.DEVNULL)
    model = onnx.load(f32)
    in_name = model.graph.input[0].name
    quantize_static(f32, q8, Reader(in_name, images("train-images-idx3-ubyte.gz", a.calibration)),
                    quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
                    activation_type=QuantType.QUInt8, calibrate_method=CalibrationMethod.MinMax)
    # Python's own cost per session.run: an Identity model of the same input and output.
    ident = os.path.join(work, "identity.onnx")
    g = helper.make_graph([helper.make_node("Identity", [in_name], ["y"])], "identity",
                          [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, ["N", 784])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 784])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), ident)

    latent = json.loads(subprocess.run([os.path.join(ROOT, "build", "bench", "quantize"), a.run, "--threads",
                                        str(a.threads), "--reps", str(a.reps), "--json"],
                                       check=True, capture_output=True, text=True).stdout)

    test = images("t10k-images-idx3-ubyte.gz")
    x256, x1 = test[:256].copy(), test[:1].copy()
    sessions = {"f32": session(f32, a.threads), "int8": session(q8, a.threads), "identity": session(ident, a.threads)}
    # One thread: thread-CPU time, as build/bench/quantize reports (with intra_op_num_threads = 1
    # ONNX Runtime computes on the calling thread); on a shared machine wall time also counts the
    # waits for a core. More threads: wall time on both sides.
    clock = time.thread_time if a.threads == 1 else time.perf_counter
    t = {k: ([], []) for k in sessions}
    for _ in range(a.reps):
        for k, s in sessions.items():
            t[k][0].append(us_per_call(s, {in_name: x256}, 40, clock))
            t[k][1].append(us_per_call(s, {in_name: x1}, 2000, clock))
    med = {k: (statistics.median(v[0]), statistics.median(v[1])) for k, v in t.items()}
    err = {}
    for k in ("f32", "int8"):
        out = np.concatenate([sessions[k].run(None, {in_name: test[i:i + 500]})[0] for i in range(0, len(test), 500)])
        err[k] = float(np.mean(np.mean((out.reshape(len(test), -1) - test) ** 2, axis=1)))
    size = {"f32": os.path.getsize(f32), "int8": os.path.getsize(q8)}

    thr = {"latent f32": latent["f32_throughput"], "latent int8": latent["int8_throughput"],
           "ORT f32": 256e6 / med["f32"][0], "ORT int8 (QDQ)": 256e6 / med["int8"][0]}
    lat = {"latent f32": latent["f32_latency_us"], "latent int8": latent["int8_latency_us"],
           "ORT f32": med["f32"][1], "ORT int8 (QDQ)": med["int8"][1]}
    errs = {"latent f32": latent["f32_error"], "latent int8": latent["int8_error"],
            "ORT f32": err["f32"], "ORT int8 (QDQ)": err["int8"]}
    sizes = {"latent f32": latent["f32_bytes"], "latent int8": latent["int8_bytes"],
             "ORT f32": size["f32"], "ORT int8 (QDQ)": size["int8"]}
    print(f"model {latent['model']} ({a.run}), {a.threads} thread(s), {'thread-CPU' if a.threads == 1 else 'wall'} "
          f"time, medians of {a.reps} repetitions; "
          f"ORT {ort.__version__}, calibration {a.calibration} training images")
    print(f"{'engine':16} {'batch-256 samples/s':>20} {'batch-1 us':>11} {'test MSE':>11} {'bytes':>9}")
    for k in thr:
        print(f"{k:16} {thr[k]:20.0f} {lat[k]:11.2f} {errs[k]:11.6f} {sizes[k]:9.0f}")
    print(f"ORT Python overhead per session.run (Identity model): batch-256 {med['identity'][0]:.2f} us, "
          f"batch-1 {med['identity'][1]:.2f} us (included in ORT's batch-1 figures above)")
    li, lf, oi = "latent int8", "latent f32", "ORT int8 (QDQ)"
    print(f"ratios: throughput int8/f32 {thr[li] / thr[lf]:.2f}x, latent int8 / ORT int8 {thr[li] / thr[oi]:.2f}x; "
          f"batch-1 latency int8/f32 {lat[li] / lat[lf]:.2f}x, ORT int8 (minus Python overhead) / latent int8 "
          f"{(lat[oi] - med['identity'][1]) / lat[li]:.2f}x")
    print(f"accuracy: test MSE int8/f32 {errs[li] / errs[lf]:.4f} (latent), {errs[oi] / errs['ORT f32']:.4f} (ORT); "
          f"latent int8 / ORT int8 {errs[li] / errs[oi]:.4f}; size int8/f32 {sizes[li] / sizes[lf]:.3f} (latent), "
          f"{sizes[oi] / sizes['ORT f32']:.3f} (ORT)")


if __name__ == "__main__":
    main()
