#!/usr/bin/env python3
"""Checks models exported by latent with onnx.checker and ONNX Runtime.

usage: check_exported.py FOLDER

FOLDER holds one sub-folder per model: model.onnx, input_0.pb, ... (the inputs) and output_0.pb,
... (latent's outputs for those inputs), each a serialized TensorProto (or .npy files with the same
stems). For every model this runs onnx.checker.check_model(model, full_check=True) (which also runs
ONNX's shape inference in strict mode), runs the model in ONNX Runtime on the inputs, and compares
each output with latent's: |a - b| <= 1e-5 + 1e-4 * |b| elementwise, shapes equal. Prints one line
per model and "N passed, M failed"; exits 0 only when every model passed (and at least one ran).
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ATOL = 1e-5
RTOL = 1e-4


def load_arrays(folder, prefix):
    arrays = []
    i = 0
    while True:
        pb = os.path.join(folder, f"{prefix}_{i}.pb")
        npy = os.path.join(folder, f"{prefix}_{i}.npy")
        if os.path.exists(pb):
            tensor = onnx.TensorProto()
            with open(pb, "rb") as f:
                tensor.ParseFromString(f.read())
            arrays.append(numpy_helper.to_array(tensor))
        elif os.path.exists(npy):
            arrays.append(np.load(npy))
        else:
            return arrays
        i += 1


def check_one(folder):
    path = os.path.join(folder, "model.onnx")
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    inputs = load_arrays(folder, "input")
    expected = load_arrays(folder, "output")
    if not inputs or not expected:
        raise RuntimeError("no input_0 / output_0 files")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    feeds = {info.name: array for info, array in zip(session.get_inputs(), inputs)}
    if len(feeds) != len(session.get_inputs()):
        raise RuntimeError(f"{len(inputs)} input files for {len(session.get_inputs())} graph inputs")
    got = session.run(None, feeds)
    if len(got) != len(expected):
        raise RuntimeError(f"{len(got)} outputs, {len(expected)} expected")
    worst = 0.0
    for k, (a, b) in enumerate(zip(got, expected)):
        name = session.get_outputs()[k].name
        if a.shape != b.shape:
            raise RuntimeError(f"output '{name}': shape {a.shape}, latent gave {b.shape}")
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        err = np.abs(a64 - b64)
        bound = ATOL + RTOL * np.abs(b64)
        if not np.all(np.isfinite(a64) == np.isfinite(b64)) or np.any(err > bound):
            i = int(np.argmax(err - bound))
            raise RuntimeError(
                f"output '{name}': element {i} is {a64.flat[i]!r}, latent gave {b64.flat[i]!r} "
                f"(|diff| {err.flat[i]:.3g} > {bound.flat[i]:.3g})")
        worst = max(worst, float(np.max(err / bound)) if err.size else 0.0)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), "?")
    return f"opset {opset}, {len(model.graph.node)} nodes, outputs {[a.shape for a in got]}, max |diff|/tol {worst:.3f}"


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) == 2 else 2
    root = argv[1]
    if not os.path.isdir(root):
        print(f"check_exported: '{root}' is not a folder", file=sys.stderr)
        return 2
    names = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "model.onnx")))
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}, numpy {np.__version__}: {len(names)} models in {root}")
    passed = failed = 0
    for name in names:
        try:
            info = check_one(os.path.join(root, name))
            print(f"pass: {name}: {info}")
            passed += 1
        except Exception as e:  # noqa: BLE001 - every failure is reported the same way
            message = " ".join(str(e).split())
            print(f"FAIL: {name}: {type(e).__name__}: {message[:600]}")
            failed += 1
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
