#!/usr/bin/env python3
"""Projects data-parallel epoch time and scaling efficiency to 2-64 nodes (docs/distributed.md)
from a measured single-node step time and the gradient bytes per step, for a ring allreduce
(each node sends and receives 2(N-1)/N of the gradient bytes per step, in 2(N-1) latency-bound
rounds per bucket).

  T(N) = C / N + 2(N-1)/N * S / bandwidth + 2(N-1) * buckets * alpha      (global batch fixed)
  efficiency(N) = C / (N * T(N))

usage: distributed_projection.py MODEL STEP_MS GRADIENT_BYTES [BUCKETS] [ALPHA_US] [STEPS_PER_EPOCH]
"""
import sys


def main():
    model, c_ms, grad = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    buckets = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    alpha_us = float(sys.argv[5]) if len(sys.argv) > 5 else 20.0
    steps = int(sys.argv[6]) if len(sys.argv) > 6 else 469
    print(f"{model}: one node {c_ms:.2f} ms/step, {grad} gradient bytes in {buckets} bucket(s), "
          f"latency {alpha_us:g} us per ring round, {steps} steps per epoch (global batch fixed)\n")
    print("| nodes | " + " | ".join(f"{g} Gb/s: epoch s (efficiency)" for g in (10, 25, 100)) + " |")
    print("|---|" + "---|" * 3)
    for n in (1, 2, 4, 8, 16, 32, 64):
        cells = []
        for gbps in (10, 25, 100):
            bw = gbps * 1e9 / 8  # bytes per second
            comm = 0.0 if n == 1 else 2 * (n - 1) / n * grad / bw + 2 * (n - 1) * buckets * alpha_us * 1e-6
            t = c_ms * 1e-3 / n + comm
            cells.append(f"{t * steps:.2f} ({c_ms * 1e-3 / (n * t):.0%})")
        print(f"| {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
