#!/usr/bin/env python3
"""No-grad inference: latent (build/bench/infer, in-process) beside ONNX Runtime running latent's
ONNX export of the same models and PyTorch (Debian's python3-torch) on the twin models, in one
run (issue 11, "A fast inference path").

Models: deep (784-128-64-128-784), conv (strided conv AE) and vae-encoder (784-400-(20, 20): mu
and logvar), untrained: latent's random init after manual_seed(0), exported by `infer --export`;
PyTorch's twins have their own random init (the arithmetic is the same). Figures: batch-1
latency (us per call) and batch-256 throughput (samples/s), at each thread count; ONNX Runtime
with intra-op threads = latent's, inter-op 1, sequential execution. ONNX Runtime's figure is its
session.run time minus the session.run time of a model of the same input and output sizes that
only copies (Identity, Slice for a narrower output): Python's call overhead. Both are printed.
Medians of --reps repetitions of --calls calls, interleaved: each repetition runs latent, ONNX
Runtime and PyTorch one after the other, each engine in its own process (sleeping between turns).
The peers run without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (bench/peer_env.py).

usage: bench/infer_compare.py [--threads 1 2] [--models deep conv vae-encoder] [--batches 1 256]
                              [--calls 1000] [--reps 7] [--ort-python .venv-bench/bin/python]
needs: build/bench/infer (release build); a Python with onnxruntime and onnx (a venv from
/usr/bin/python3 with --system-site-packages, numpy<2); /usr/bin/python3 with python3-torch.
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_env import fair_env  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INFER = os.path.join(ROOT, "build", "bench", "infer")
MODELS = ["deep", "conv", "vae-encoder"]


# ---- workers: read "MODEL BATCH CALLS" lines, answer microseconds per call ----

def ort_worker(threads, onnx_dir):
    import numpy as np, onnx, onnxruntime as ort
    from onnx import TensorProto, helper

    def session(model_bytes):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])

    def identity_like(model):
        """Same input, outputs of the same sizes, no arithmetic: Identity (or a Slice of the input)."""
        g = model.graph
        inp = g.input[0]
        width = inp.type.tensor_type.shape.dim[1].dim_value
        nodes, outs = [], []
        for i, o in enumerate(g.output):
            d = o.type.tensor_type.shape.dim[1].dim_value
            name = f"out{i}"
            if d == width:
                nodes.append(helper.make_node("Identity", [inp.name], [name]))
            else:
                nodes.append(helper.make_node("Slice", [inp.name, "zero", f"end{i}", "one"], [name]))
            outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", d]))
        used = {name for n in nodes for name in n.input}
        inits = [helper.make_tensor("zero", TensorProto.INT64, [1], [0]), helper.make_tensor("one", TensorProto.INT64, [1], [1])]
        inits += [helper.make_tensor(f"end{i}", TensorProto.INT64, [1], [o.type.tensor_type.shape.dim[1].dim_value])
                  for i, o in enumerate(g.output)]
        inits = [t for t in inits if t.name in used]
        graph = helper.make_graph(nodes, "identity", [helper.make_tensor_value_info(inp.name, TensorProto.FLOAT, ["batch", width])],
                                  outs, initializer=inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = model.ir_version
        return m.SerializeToString()

    sessions = {}
    for name in MODELS:
        model = onnx.load(os.path.join(onnx_dir, name + ".onnx"))
        sessions[name] = (session(model.SerializeToString()), session(identity_like(model)), model.graph.input[0].name)
    rng = np.random.default_rng(1)

    def timed(sess, feed, calls):
        run = sess.run
        for _ in range(min(calls, 20)):
            run(None, feed)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(calls):
            run(None, feed)
        return (time.perf_counter() - t0) / calls * 1e6, (time.process_time() - c0) / calls * 1e6

    for line in sys.stdin:
        name, batch, calls = line.split()
        sess, ident, inp = sessions[name]
        feed = {inp: rng.random((int(batch), 784), dtype=np.float32)}
        (w, c), (wi, ci) = timed(sess, feed, int(calls)), timed(ident, feed, int(calls))
        print(f"{w:.4f} {c:.4f} {wi:.4f} {ci:.4f}", flush=True)


def torch_worker(threads):
    import torch
    from torch import nn
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)

    class Dense(nn.Module):  # latent's "deep" (and ../shared/peers/torch_bench.py's Dense)
        def __init__(s):
            super().__init__()
            s.encoder = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
            s.decoder = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 784), nn.Sigmoid())
        def forward(s, x): return s.decoder(s.encoder(x))

    class Conv(nn.Module):  # latent's "conv" (strided)
        def __init__(s):
            super().__init__()
            s.encoder = nn.Sequential(nn.Conv2d(1, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU())
            s.decoder = nn.Sequential(nn.ConvTranspose2d(32, 16, 3, 2, 1, 1), nn.ReLU(),
                                      nn.ConvTranspose2d(16, 1, 3, 2, 1, 1), nn.Sigmoid())
        def forward(s, x): return s.decoder(s.encoder(x.view(-1, 1, 28, 28))).view(-1, 784)

    class VAEEncoder(nn.Module):  # latent's "vae" encode_distribution: mu and logvar
        def __init__(s):
            super().__init__()
            s.fc1 = nn.Linear(784, 400); s.fc21 = nn.Linear(400, 20); s.fc22 = nn.Linear(400, 20)
        def forward(s, x):
            h = torch.relu(s.fc1(x))
            return s.fc21(h), s.fc22(h)

    models = {"deep": Dense().eval(), "conv": Conv().eval(), "vae-encoder": VAEEncoder().eval()}
    for line in sys.stdin:
        name, batch, calls = line.split()
        m, x, calls = models[name], torch.rand(int(batch), 784), int(calls)
        with torch.inference_mode():
            for _ in range(min(calls, 20)):
                m(x)
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(calls):
                m(x)
            us, cpu = (time.perf_counter() - t0) / calls * 1e6, (time.process_time() - c0) / calls * 1e6
        print(f"{us:.4f} {cpu:.4f}", flush=True)


# ---- the driver ----

class Worker:
    def __init__(self, cmd, env=None):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def ask(self, name, batch, calls):
        self.p.stdin.write(f"{name} {batch} {calls}\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            sys.exit(f"infer_compare: worker {self.p.args} died")
        return [float(v) for v in line.split()]

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 256])
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--calls-large", type=int, default=1000, help="calls per repetition at batch 64 and more")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--cpu", action="store_true",
                    help="also print process-CPU medians (on a loaded machine; at 2 threads they count spinning)")
    ap.add_argument("--infer", default=INFER, help="the bench/infer binary")
    ap.add_argument("--ort-python", default=os.path.join(ROOT, ".venv-bench", "bin", "python"))
    ap.add_argument("--torch-python", default="/usr/bin/python3")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--worker", choices=["ort", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--onnx-dir", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker == "ort":
        return ort_worker(a.threads[0], a.onnx_dir)
    if a.worker == "torch":
        return torch_worker(a.threads[0])

    if not os.path.exists(a.infer):
        sys.exit(f"infer_compare: {a.infer} is missing: meson setup build --buildtype=release && ninja -C build")
    me = os.path.abspath(__file__)
    versions = subprocess.run([a.ort_python, "-c", "import onnxruntime; print(onnxruntime.__version__)"],
                              capture_output=True, text=True).stdout.strip()
    torch_version = "" if a.no_torch else subprocess.run(
        [a.torch_python, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True).stdout.strip()
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  onnxruntime {versions}  torch {torch_version}  "
          f"load {os.getloadavg()[0]:.1f}  calls {a.calls} x reps {a.reps}, medians; untrained weights (seed 0)")
    with tempfile.TemporaryDirectory() as onnx_dir:
        subprocess.run([a.infer, "--export", onnx_dir], check=True, capture_output=True)
        for threads in a.threads:
            # The peers without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (bench/peer_env.py).
            env = fair_env(dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads)))
            latent = Worker([a.infer, "--serve", "--threads", str(threads)])
            ort = Worker([a.ort_python, me, "--worker", "ort", "--threads", str(threads), "--onnx-dir", onnx_dir], env)
            torch = None if a.no_torch else Worker([a.torch_python, me, "--worker", "torch", "--threads", str(threads)], env)
            for name in a.models:
                for batch in a.batches:
                    t = {k: [] for k in ("latent", "ort", "ort_id", "torch")}
                    cpu = {k: [] for k in t}
                    calls = a.calls if batch < 64 else a.calls_large
                    for _ in range(a.reps):  # interleaved
                        w, c = latent.ask(name, batch, calls)
                        t["latent"].append(w)
                        cpu["latent"].append(c)
                        w, c, wi, ci = ort.ask(name, batch, calls)
                        t["ort"].append(w)
                        cpu["ort"].append(c)
                        t["ort_id"].append(wi)
                        cpu["ort_id"].append(ci)
                        if torch:
                            w, c = torch.ask(name, batch, calls)
                            t["torch"].append(w)
                            cpu["torch"].append(c)
                    med = {k: statistics.median(v) if v else float("nan") for k, v in t.items()}
                    print_row(name, batch, threads, med, "wall")
                    if a.cpu:
                        print_row(name, batch, threads, {k: statistics.median(v) if v else float("nan")
                                                         for k, v in cpu.items()}, "cpu ")
            for w in (latent, ort, torch):
                if w:
                    w.close()


def print_row(name, batch, threads, m, clock):
    corrected = m["ort"] - m["ort_id"]
    if batch < 64:
        print(f"{clock} {name:12s} batch {batch:4d} threads {threads}: latent {m['latent']:8.2f} us | onnxruntime "
              f"{m['ort']:8.2f} us - identity {m['ort_id']:6.2f} us = {corrected:8.2f} us | torch {m['torch']:8.2f} us"
              f" | latent/ort {m['latent'] / corrected:5.2f}x  latent/torch {m['latent'] / m['torch']:5.2f}x", flush=True)
    else:
        sps = lambda us: batch / us * 1e6
        print(f"{clock} {name:12s} batch {batch:4d} threads {threads}: latent {sps(m['latent']):9.0f}/s | onnxruntime "
              f"{sps(corrected):9.0f}/s (run {m['ort']:.1f} us - identity {m['ort_id']:.1f} us) | torch "
              f"{sps(m['torch']):9.0f}/s | latent/ort throughput {corrected / m['latent']:5.2f}x  "
              f"latent/torch {m['torch'] / m['latent']:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
