"""The environment a PyTorch peer runs in, made fair.

Some machines of this workplace set OPENBLAS_CORETYPE=Haswell (and OPENBLAS_L2_SIZE), which pins
OpenBLAS, and so PyTorch's GEMM, to its AVX2 kernels while latent's float32 GEMM is its own. The
peers run without both, so OpenBLAS picks the kernels it would pick on this CPU.

    fair_env()            a copy of os.environ without the pins (for subprocess.run(env=...))
    reexec_without_pins() called first thing in a peer script: re-executes it without the pins
                          (OpenBLAS reads them when it loads, so this must run before `import torch`)
"""
import os
import sys

PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def fair_env(base=None):
    env = dict(os.environ if base is None else base)
    for k in PINS:
        env.pop(k, None)
    return env


def removed_pins(base=None):
    env = os.environ if base is None else base
    return [f"{k}={env[k]}" for k in PINS if k in env]


def reexec_without_pins():
    if any(k in os.environ for k in PINS):
        print(f"peer: running without {' '.join(removed_pins())}", file=sys.stderr)
        os.execve(sys.executable, [sys.executable] + sys.argv, fair_env())
