#!/usr/bin/python3
"""PyTorch reference for bench/conv_ae.cpp: forward + backward of the conv autoencoder, batch 128.

    /usr/bin/python3 bench/conv_ae_torch.py [--steps 20] [--reps 7] [--warmup 5] [--clock wall|cpu]

Conv2d(1,16,3,s2,p1)-ReLU-Conv2d(16,32,3,s2,p1)-ReLU-ConvTranspose2d(32,16,3,s2,p1,op1)-ReLU-
ConvTranspose2d(16,1,3,s2,p1,op1)-Sigmoid on random (128, 1, 28, 28) images in [0, 1], MSE against
the input, loss.backward(), gradients set to None before each step (no optimizer, no data loading).
Times the step at torch.set_num_threads(1), then at (2), each thread setting as its own series
(warm-up, then all repetitions; torch's thread count is never switched between repetitions,
which a training run never does either), and prints one JSON line
with the median seconds per step of each and the best as seconds per 60k-image epoch. Runs
without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (bench/peer_env.py): the transposed convolutions go
through OpenBLAS, which those would pin to AVX2 kernels.
--clock cpu times one thread only, by this thread's CPU time (time.thread_time), which the load of
other processes does not inflate; run it with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 so that no
other thread works for it.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_env import reexec_without_pins  # noqa: E402

reexec_without_pins()

import torch  # noqa: E402
from torch import nn  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = ap.parse_args()
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    thread_counts = (1,) if args.clock == "cpu" else (1, 2)

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
        nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid())
    x = torch.rand(128, 1, 28, 28)

    def step():
        for p in model.parameters():
            p.grad = None
        loss = nn.functional.mse_loss(model(x), x)
        loss.backward()

    times = {t: [] for t in thread_counts}
    for threads in thread_counts:  # one series per thread setting
        torch.set_num_threads(threads)
        for _ in range(args.warmup):
            step()
        for _ in range(args.reps):
            t0 = clock()
            for _ in range(args.steps):
                step()
            times[threads].append((clock() - t0) / args.steps)
    med = {t: statistics.median(v) for t, v in times.items()}
    best = min(med, key=med.get)
    print(json.dumps({"torch": torch.__version__, "clock": args.clock, "step_s_threads1": med[1],
                      "step_s_threads2": med.get(2, -1), "best_threads": best, "epoch_s": med[best] * 60000 / 128}))


if __name__ == "__main__":
    main()
