#!/usr/bin/env python3
"""Data-parallel training under mpirun (Open MPI; CI runs as root, hence --allow-run-as-root
--oversubscribe). Exits 77 with the reason when mpirun or Fashion-MNIST is missing.

- dist_worker on 2 and 3 ranks: broadcast, allreduce, barrier, and DistributedDataParallel's
  bucketed gradients against the full-batch gradient every rank computes alone.
- Equivalence: 2 ranks x global batch 128 and 1 process x batch 128 give the same parameters after
  10 SGD steps (1e-5 relative), and the same test loss after one Adam epoch (deep AE; 60 Adam steps
  for the conv AE, to keep the test short) within 1e-3 relative; the conv AE with batch norm too,
  with --sync-batchnorm (and without it, the weights differ: local statistics).
- A checkpoint written by a 2-rank run resumes in 1 process; its next epoch matches the
  uninterrupted 2-rank run (1e-4 relative).
- Failures: a rank killed (SIGKILL) ends the job non-zero within 30 s; a rank stopped (SIGSTOP)
  makes the others exit within --dist-timeout-s naming it; the last checkpoint stays readable.

usage: dist_test.py PATH_TO_LATENT PATH_TO_DIST_WORKER
"""
import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

LATENT, WORKER = sys.argv[1], sys.argv[2]
FASHION = "/usr/share/datasets/fashion-mnist"
MPIRUN = shutil.which("mpirun")
failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)[-1500:]), flush=True)
    if not ok:
        failures.append(name)


def mpirun(n, *args):
    return [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", str(n), "--mca", "btl", "self,vader", *args]


def run(cmd, timeout=300):
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)
    return p, time.monotonic() - t0


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = blob[8 + n + a:8 + n + b]
        fmt = {"F32": "f", "F64": "d", "I64": "q"}[info["dtype"]]
        out[name] = struct.unpack("<%d%s" % (len(raw) // struct.calcsize(fmt), fmt), raw)
    return out


def rel_diff(a, b):
    num = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
    den = math.sqrt(sum(y * y for y in b))
    return num / max(den, 1e-30)


def metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def train_args(model, out, *extra):
    return [LATENT, "train", "--model", model, "--quiet", "--seed", "3", "--batch-size", "128", "--threads", "1",
            "--limit-test", "2000", "--out", out, *extra]


def worker(work):
    for n in (2, 3):
        p, secs = run(mpirun(n, WORKER), timeout=120)
        check(f"dist_worker on {n} ranks ({secs:.1f} s)", p.returncode == 0 and p.stdout.count("ok ") == 5,
              p.stdout + p.stderr)


def nccl(work):
    p, secs = run(mpirun(1, WORKER, "--nccl"), timeout=120)
    if "SKIP nccl" in p.stdout:
        print(p.stdout.strip(), flush=True)  # no NCCL build or no GPU here: said, not failed
        return
    check(f"nccl: 1 rank on the GPU matches the mpi group ({secs:.1f} s)", p.returncode == 0 and "ok nccl" in p.stdout,
          p.stdout + p.stderr)


def errors(work):
    out = os.path.join(work, "bad")
    p, secs = run(mpirun(2, LATENT, "train", "--batch-size", "127", "--distributed", "--quiet", "--out", out), timeout=60)
    check(f"--batch-size 127 on 2 ranks: the job exits non-zero naming it ({secs:.1f} s)",
          p.returncode != 0 and "--batch-size 127 is the global batch and must split evenly over the 2 ranks" in p.stderr + p.stdout,
          p.stdout + p.stderr)


def sync_batchnorm(work):
    """The conv AE with batch norm and --sync-batchnorm. Its statistics are composed of ops (sum,
    allreduce, sqrt) where one process runs the fused batch_norm op: the two round differently (the
    BN biases hold ~1e-3 and end ~1e-4 apart relative, measured with 1 rank too), so the 2-rank run
    is held to 1e-5 against the 1-rank run of the same path, and to 2e-4 against the plain single
    process. Without --sync-batchnorm each rank normalises its own 64 samples: 4.7e-2 apart."""
    steps = ["--optimizer", "sgd", "--lr", "0.05", "--epochs", "1", "--limit-batches", "10", "--batch-norm"]
    dirs = {k: os.path.join(work, "bn-" + k) for k in ("plain", "sync1", "sync2", "local2")}
    procs = [run(train_args("conv", dirs["plain"], *steps)),
             run(mpirun(1, *train_args("conv", dirs["sync1"], *steps, "--distributed", "--sync-batchnorm"))),
             run(mpirun(2, *train_args("conv", dirs["sync2"], *steps, "--distributed", "--sync-batchnorm"))),
             run(mpirun(2, *train_args("conv", dirs["local2"], *steps, "--distributed")))]
    if any(p.returncode != 0 for p, _ in procs):
        return check("conv+bn: 10 SGD steps ran (plain, 1 and 2 ranks synced, 2 ranks local)", False,
                     "".join(p.stdout + p.stderr for p, _ in procs))
    w = {k: read_safetensors(os.path.join(d, "model.safetensors")) for k, d in dirs.items()}

    def worst(a, b):
        return max(rel_diff(w[b][k], w[a][k]) for k in w[a])
    def whole(a, b):  # every float tensor as one vector
        keys = [k for k in w[a] if "num_batches" not in k]
        return rel_diff([x for k in keys for x in w[b][k]], [x for k in keys for x in w[a][k]])
    d21, d2p, dlp = worst("sync1", "sync2"), worst("plain", "sync2"), worst("plain", "local2")
    all21 = whole("sync1", "sync2")
    # Per tensor 5e-5: the BN biases hold ~1e-3, so one float32 rounding in their 12,544-term
    # sums (split over 2 ranks, then added) is ~1e-5 of them.
    check(f"conv+bn --sync-batchnorm: 2 ranks x 64 == 1 rank x 128 after 10 SGD steps: all weights {all21:.2e} <= 1e-5, "
          f"worst tensor {d21:.2e} <= 5e-5", all21 <= 1e-5 and d21 <= 5e-5 and set(w["sync1"]) == set(w["sync2"]), d21)
    check(f"conv+bn --sync-batchnorm: 2 ranks x 64 vs the plain process x 128: {d2p:.2e} <= 2e-4", d2p <= 2e-4, d2p)
    check(f"conv+bn without --sync-batchnorm: local statistics move the weights: {dlp:.2e} > 1e-3", dlp > 1e-3, dlp)
    # 60 Adam steps: test losses. Adam turns the rounding noise of the conv biases in front of batch
    # norm (whose true gradient is 0) into full-size steps, so the plain process is held to 2e-3.
    adam = ["--optimizer", "adam", "--epochs", "1", "--limit-batches", "60", "--batch-norm"]
    pa = run(train_args("conv", dirs["plain"] + "-adam", *adam))[0]
    p1 = run(mpirun(1, *train_args("conv", dirs["sync1"] + "-adam", *adam, "--distributed", "--sync-batchnorm")))[0]
    p2 = run(mpirun(2, *train_args("conv", dirs["sync2"] + "-adam", *adam, "--distributed", "--sync-batchnorm")))[0]
    if pa.returncode != 0 or p1.returncode != 0 or p2.returncode != 0:
        return check("conv+bn: 60 Adam steps ran", False, pa.stderr + p1.stderr + p2.stderr)
    lp, l1, l2 = (metrics(dirs[k] + "-adam")[0]["test_loss"] for k in ("plain", "sync1", "sync2"))
    check(f"conv+bn --sync-batchnorm: test loss after 60 Adam steps {l2:.6g} (2 ranks) vs {l1:.6g} (1 rank) within 1e-4",
          abs(l2 - l1) <= 1e-4 * abs(l1), (l1, l2))
    check(f"conv+bn --sync-batchnorm: test loss after 60 Adam steps {l2:.6g} (2 ranks) vs {lp:.6g} (plain) within 2e-3",
          abs(l2 - lp) <= 2e-3 * abs(lp), (lp, l2))
    p, _ = run([LATENT, "train", "--sync-batchnorm", "--quiet", "--out", os.path.join(work, "nodist")], timeout=60)
    check("--sync-batchnorm without --distributed: exit 2 naming it", p.returncode == 2 and
          "--sync-batchnorm synchronises batch norm over the ranks of a --distributed run" in p.stderr, p.stderr)


def equivalence(work, model, extra=(), dist_extra=(), label=None):
    label = label or model
    single, double = os.path.join(work, label + "-1"), os.path.join(work, label + "-2")
    steps = ["--optimizer", "sgd", "--lr", "0.05", "--epochs", "1", "--limit-batches", "10", *extra]
    p1, t1 = run(train_args(model, single, *steps))
    p2, t2 = run(mpirun(2, *train_args(model, double, *steps, "--distributed", *dist_extra)))
    if p1.returncode != 0 or p2.returncode != 0:
        return check(f"{label}: 10 SGD steps ran on 1 and 2 ranks", False, p1.stderr + p2.stdout + p2.stderr)
    # The starting weights: the same run with a learning rate of 1e-12.
    start = os.path.join(work, label + "-0")
    p0, _ = run(train_args(model, start, *steps[:2], "--lr", "1e-12", *steps[4:]))
    a = read_safetensors(os.path.join(single, "model.safetensors"))
    b = read_safetensors(os.path.join(double, "model.safetensors"))
    worst = max(rel_diff(b[k], a[k]) for k in a)
    check(f"{label}: 2 ranks x 64 == 1 x 128 after 10 SGD steps: worst tensor rel diff {worst:.2e} <= 1e-5 "
          f"({t1:.1f} s vs {t2:.1f} s)", set(a) == set(b) and worst <= 1e-5 and "2 ranks x 64" in p2.stderr,
          (worst, p2.stderr))
    if p0.returncode == 0:  # the steps themselves agree, not only the weights they moved a little
        w0 = read_safetensors(os.path.join(start, "model.safetensors"))
        moved = {k: [x - y for x, y in zip(a[k], w0[k])] for k in a}
        worst_step = max(rel_diff([x - y for x, y in zip(b[k], w0[k])], moved[k]) for k in a
                         if any(v != 0 for v in moved[k]))
        check(f"{label}: the 10 steps' updates agree: worst rel diff {worst_step:.2e} <= 1e-4", worst_step <= 1e-4,
              worst_step)
    check(f"{label}: only rank 0 wrote the run (one metrics line)", len(metrics(double)) == 1, metrics(double))

    # One whole Adam epoch (469 steps) for the deep AE; 60 steps of the conv AE (20x the compute).
    adam = ["--optimizer", "adam", "--epochs", "1", *extra] + (["--limit-batches", "60"] if model == "conv" else [])
    what = "one Adam epoch" if model == "deep" else "60 Adam steps"
    single, double = single + "-adam", double + "-adam"
    p1, _ = run(train_args(model, single, *adam))
    p2, _ = run(mpirun(2, *train_args(model, double, *adam, "--distributed", *dist_extra)))
    if p1.returncode != 0 or p2.returncode != 0:
        return check(f"{label}: {what} ran", False, p1.stderr + p2.stderr)
    l1, l2 = metrics(single)[0]["test_loss"], metrics(double)[0]["test_loss"]
    r1, r2 = metrics(single)[0]["train_loss"], metrics(double)[0]["train_loss"]
    check(f"{label}: test loss after {what} {l1:.6g} (1 rank) vs {l2:.6g} (2 ranks) within 1e-3",
          abs(l1 - l2) <= 1e-3 * abs(l1), (l1, l2))
    check(f"{label}: train loss over every rank's samples {r1:.6g} vs {r2:.6g} within 1e-3",
          abs(r1 - r2) <= 1e-3 * abs(r1), (r1, r2))


def resume(work):
    base = ["--optimizer", "adam", "--limit-batches", "20"]
    whole, part = os.path.join(work, "resume-whole"), os.path.join(work, "resume-part")
    p1, _ = run(mpirun(2, *train_args("deep", whole, *base, "--epochs", "2", "--distributed")))
    p2, _ = run(mpirun(2, *train_args("deep", part, *base, "--epochs", "1", "--distributed")))
    p3, _ = run([LATENT, "train", "--resume", part, "--epochs", "2", "--quiet", "--threads", "1", "--limit-batches",
                 "20", "--limit-test", "2000"])
    if p1.returncode or p2.returncode or p3.returncode:
        return check("resume: the runs ran", False, p1.stderr + p2.stderr + p3.stderr)
    a, b = metrics(whole), metrics(part)
    check(f"resume: a 2-rank checkpoint resumed on 1 rank: epoch 2 test loss {b[1]['test_loss']:.7g} vs "
          f"{a[1]['test_loss']:.7g} uninterrupted (1e-4)",
          len(b) == 2 and abs(a[1]["test_loss"] - b[1]["test_loss"]) <= 1e-4 * a[1]["test_loss"], (a, b))


def rank_pid(mpirun_pid, rank, deadline):
    while time.monotonic() < deadline:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid != mpirun_pid:
                    continue
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if f"OMPI_COMM_WORLD_RANK={rank}".encode() in f.read().split(b"\0"):
                        return int(pid)
            except (OSError, IndexError, ValueError):
                continue
        time.sleep(0.2)
    return None


def failure(work, sig):
    name = "sigkill" if sig == signal.SIGKILL else "sigstop"
    out = os.path.join(work, name)
    timeout_s = 8
    cmd = mpirun(2, *train_args("deep", out, "--epochs", "1000", "--limit-batches", "30", "--distributed",
                                "--dist-timeout-s", str(timeout_s)))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    deadline = time.monotonic() + 120
    ck = os.path.join(out, "checkpoint.safetensors")
    while time.monotonic() < deadline and not os.path.exists(ck):  # one epoch done and saved
        time.sleep(0.2)
    pid = rank_pid(proc.pid, 1, deadline)
    if pid is None or not os.path.exists(ck):
        proc.kill()
        return check(f"{name}: the job started and saved a checkpoint", False, proc.communicate()[0])
    t0 = time.monotonic()
    os.kill(pid, sig)
    try:
        output, _ = proc.communicate(timeout=60 + timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        output = proc.communicate()[0]
    secs = time.monotonic() - t0
    try:
        os.kill(pid, signal.SIGKILL)  # never leave a stopped rank behind
    except ProcessLookupError:
        pass
    limit = 30 if sig == signal.SIGKILL else timeout_s + 15
    print("   ", [l for l in output.splitlines() if "[dist]" in l or "noticed" in l][:2])
    check(f"{name} on rank 1: the job exited with {proc.returncode} after {secs:.1f} s (limit {limit} s)",
          proc.returncode not in (0, None) and secs <= limit, output)
    if sig == signal.SIGKILL:
        check("sigkill: mpirun names the dead rank", "rank 1" in output, output)
    else:
        check("sigstop: rank 0 names the rank that stopped answering",
              "rank(s) 1 stopped answering" in output and "--dist-timeout-s" in output, output)
    try:
        tensors = read_safetensors(ck)
        check(f"{name}: the last checkpoint is intact ({len(tensors)} tensors)", len(tensors) > 0)
    except Exception as e:  # noqa: BLE001
        check(f"{name}: the last checkpoint is intact", False, e)


def main():
    if not MPIRUN:
        print("SKIP: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)")
        return 77
    if not os.path.isdir(FASHION):
        print(f"SKIP: Fashion-MNIST not found in {FASHION} (apt-get install dataset-fashion-mnist)")
        return 77
    parts = sys.argv[3:] or ["worker", "deep", "conv", "sync-bn", "resume", "sigkill", "sigstop"]
    with tempfile.TemporaryDirectory() as work:
        for part in parts:
            if part == "worker":
                worker(work)
                errors(work)
                nccl(work)
            elif part in ("deep", "conv"):
                equivalence(work, part)
            elif part == "sync-bn":
                sync_batchnorm(work)
            elif part == "resume":
                resume(work)
            elif part == "sigkill":
                failure(work, signal.SIGKILL)
            elif part == "sigstop":
                failure(work, signal.SIGSTOP)
    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


ENV = dict(os.environ, OMPI_MCA_rmaps_base_oversubscribe="1", LATENT_NUM_THREADS="1")
if __name__ == "__main__":
    sys.exit(main())
