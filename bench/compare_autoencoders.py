#!/usr/bin/env python3
"""latent vs the PyTorch reference (../shared/peers/torch_bench.py) on the dense, conv and vae
workloads, in the same run: epoch time of the training pass, test metric after the last epoch,
peak RSS. Each side runs at 1 and 2 threads on the first seed and keeps its faster setting for
the other seeds; medians over seeds are compared (seed-to-seed spread is several percent).

usage: bench/compare_autoencoders.py [--epochs 2] [--seeds 0 1 2] [--workloads dense conv vae] [--threads 1 2]
                                    [--latent PATH] [--isa avx2]
--threads: the thread settings each side tries on the first seed (default 1 and 2; both sides get the same list).
--isa avx2: both sides as on a CPU with AVX2 and no AVX-512: latent with LATENT_CPU_ISA=avx2, PyTorch with
  ATEN_CPU_CAPABILITY=avx2, DNNL_MAX_CPU_ISA=AVX2 and its OpenBLAS on Haswell kernels (OPENBLAS_CORETYPE=Haswell,
  the one comparison where the peer's OpenBLAS stays pinned).
needs: build/tools/latent (release build; --latent picks another), /usr/bin/python3 with Debian's python3-torch.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_env import fair_env, removed_pins  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(os.path.dirname(ROOT), "shared", "peers", "torch_bench.py")
LATENT = os.path.join(ROOT, "build", "tools", "latent")
MODEL = {"dense": "deep", "conv": "conv", "vae": "vae"}


def peak_rss(cmd, env=None):
    """Peak RSS (MB) of one command, measured by /usr/bin/time -v when present."""
    if os.path.exists("/usr/bin/time"):
        p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
        if p.returncode != 0:
            sys.exit(f"compare: {' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
        for line in p.stderr.splitlines():
            if "Maximum resident set size" in line:
                return p.stdout, float(line.split()[-1]) / 1024.0
        return p.stdout, float("nan")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"compare: {' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    return p.stdout, float("nan")


ISA = None  # --isa: None (each side's best) or "avx2"


def torch_env():
    """The peer's environment: fair_env(), or limited to AVX2 with --isa avx2."""
    env = fair_env()
    if ISA == "avx2":
        env.update(ATEN_CPU_CAPABILITY="avx2", DNNL_MAX_CPU_ISA="AVX2", OPENBLAS_CORETYPE="Haswell")
    return env


def latent_env():
    env = dict(os.environ)
    if ISA:
        env["LATENT_CPU_ISA"] = ISA
    return env


def torch_baseline(threads):
    """Peak RSS (MB) of torch_bench.py up to its data load: a workload name it does not know."""
    out, rss = peak_rss(["/usr/bin/python3", PEERS, "load-only", str(threads)], env=torch_env())
    if out.strip().splitlines()[-1].strip() != "{}":
        sys.exit(f"compare: torch_bench.py load-only printed {out!r}, expected {{}}: the baseline needs updating")
    return rss


def torch_run(workload, threads, epochs, seed):
    out, rss = peak_rss(["/usr/bin/python3", PEERS, workload, str(threads), str(epochs), str(seed)], env=torch_env())
    res = json.loads(out.strip().splitlines()[-1])
    return statistics.mean(res["epoch_s"]), res["test_metric"], rss, torch_baseline(threads)


def latent_run(workload, threads, epochs, seed):
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = os.path.join(tmp, "run")
        _, rss = peak_rss([LATENT, "train", "--model", MODEL[workload], "--epochs", str(epochs), "--seed", str(seed),
                           "--threads", str(threads), "--out", out_dir, "--quiet"], env=latent_env())
        lines = [json.loads(l) for l in open(os.path.join(out_dir, "metrics.jsonl"))]
        _, base = peak_rss([LATENT, "eval", out_dir, "--limit", "1"], env=latent_env())
    return statistics.mean(l["epoch_seconds"] for l in lines), lines[-1]["test_loss"], rss, base


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--workloads", nargs="+", default=["dense", "conv", "vae"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                    help="thread settings each side tries on the first seed, keeping its fastest")
    ap.add_argument("--latent", default=LATENT, help="the latent binary (default: build/tools/latent)")
    ap.add_argument("--isa", choices=["avx2"], default=None,
                    help="limit both sides to AVX2 (LATENT_CPU_ISA=avx2; PyTorch's ATen, oneDNN and OpenBLAS)")
    a = ap.parse_args()
    globals()["ISA"] = a.isa
    if min(a.threads) < 1 or a.epochs < 1:
        sys.exit(f"compare: --threads must be at least 1 and --epochs at least 1; got {a.threads}, {a.epochs}")
    globals()["LATENT"] = os.path.abspath(a.latent)
    if not os.path.exists(LATENT):
        sys.exit(f"compare: {LATENT} is missing: meson setup build --buildtype=release && ninja -C build")
    blas = json.loads(subprocess.run([LATENT, "version", "--json"], capture_output=True, text=True,
                                     env=latent_env()).stdout)["blas"]
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  {blas}  load {os.getloadavg()[0]:.1f}")
    pins = removed_pins()
    if ISA == "avx2":
        print("# AVX2 only: latent LATENT_CPU_ISA=avx2; PyTorch ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2 "
              "OPENBLAS_CORETYPE=Haswell")
    elif pins:
        print(f"# PyTorch runs without {' '.join(pins)}")
    else:
        print("# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are not set")
    rows = []
    for w in a.workloads:
        sides = {}
        for name, fn in (("torch", torch_run), ("latent", latent_run)):
            first = {t: fn(w, t, a.epochs, a.seeds[0]) for t in a.threads}
            best_t = min(first, key=lambda t: first[t][0])
            results = [first[best_t]] + [fn(w, best_t, a.epochs, s) for s in a.seeds[1:]]
            sides[name] = dict(threads=best_t, epoch=statistics.median(r[0] for r in results),
                               metric=statistics.median(r[1] for r in results),
                               metrics=[r[1] for r in results], rss=max(r[2] for r in results),
                               above=max(r[2] - r[3] for r in results), base=min(r[3] for r in results))
            print(f"{w:6s} {name:6s} threads {best_t}: epoch {sides[name]['epoch']:.2f} s, "
                  f"test {', '.join(f'{m:.5g}' for m in sides[name]['metrics'])}, peak RSS {sides[name]['rss']:.0f} MB "
                  f"({sides[name]['above']:.0f} MB above its {sides[name]['base']:.0f} MB baseline)", flush=True)
        rows.append((w, sides))
    print()
    print("| workload | PyTorch s/epoch | latent s/epoch | time ratio | PyTorch test (median) | latent test (median) | "
          "quality ratio | peak RSS MB, whole process (PyTorch / latent) | peak RSS MB above baseline (PyTorch / latent) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for w, s in rows:
        t, l = s["torch"], s["latent"]
        print(f"| {w} | {t['epoch']:.2f} ({t['threads']}t) | {l['epoch']:.2f} ({l['threads']}t) | "
              f"**{l['epoch'] / t['epoch']:.2f}** | {t['metric']:.5g} | {l['metric']:.5g} | "
              f"**{l['metric'] / t['metric']:.3f}** | {t['rss']:.0f} / {l['rss']:.0f} | "
              f"{t['above']:.0f} / {l['above']:.0f} |")
    print("\nbaselines (process after import and data load): "
          + ", ".join(f"{w} PyTorch {s['torch']['base']:.0f} MB, latent {s['latent']['base']:.0f} MB" for w, s in rows))
    if ISA == "avx2":
        print("targets (AVX2 only, issue 21): time ratio <= 0.35 (dense), <= 0.4 (vae), <= 0.27 (conv); "
              "quality ratio <= 1.03")
    else:
        print("targets: time ratio <= 0.5 (dense, vae), <= 0.67 (conv); quality ratio <= 1.03; RSS latent <= PyTorch")


if __name__ == "__main__":
    main()
