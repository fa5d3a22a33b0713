#!/usr/bin/env bash
# The core-engine benchmarks, each against its reference in the same run:
#   op_overhead: latent's per-op overhead vs LibTorch's C++ loop (../shared/peers/libtorch_bench.cpp
#                opoverhead, built here against Debian's libtorch-dev), target ratio <= 0.1; PyTorch
#                from Python (torch_bench.py opoverhead) beside it, labelled as such: its figure
#                includes CPython's own dispatch
#   linear:      Linear 784 -> 128 forward + backward vs the bare OpenBLAS calls at the same threads,
#                target <= 1.2x: with LATENT_SGEMM=openblas (the overhead figure), then latent's own
#                float32 kernel (a kernel comparison)
# usage: bench/run_core.sh        (from a fresh clone; builds build/ in release mode if needed)
# env:   BUILD_DIR (default build), REF_RUNS (reference runs per thread count, default 5),
#        PYTHON (default /usr/bin/python3, the interpreter Debian's python3-torch is built for)
# The peers run without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (see bench/peer_env.py).
# Figures are medians; see docs/benchmarks.md.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
build=${BUILD_DIR:-build}
python=${PYTHON:-/usr/bin/python3}
ref_runs=${REF_RUNS:-5}
peers="$root/../shared/peers/torch_bench.py"
libtorch_src="$root/../shared/peers/libtorch_bench.cpp"
peer_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)

# ---- (a) build ----
if [ ! -d "$build" ]; then
  meson setup "$build" --buildtype=release
fi
buildtype=$(sed -n 's/.*"name": "buildtype", "value": "\([a-z]*\)".*/\1/p' \
  "$build/meson-info/intro-buildoptions.json" 2>/dev/null || true)
if [ -n "$buildtype" ] && [ "$buildtype" != release ]; then
  echo "warning: $build/ is configured with buildtype=$buildtype; figures from a non-release build mean little" >&2
  echo "         (reconfigure: meson configure $build -Dbuildtype=release)" >&2
fi
ninja -C "$build" -j2 bench/op_overhead bench/linear

# json_field NAME: the number after "NAME": in the last JSON line on stdin.
json_field() { tail -n1 | sed -n "s/.*\"$1\": *\([-0-9.eE+]*\).*/\1/p"; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) exit 1; if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# ---- (b) references: threads 1 and 2, median of REF_RUNS runs each, keep the best ----
# ref_best LABEL COMMAND...: runs COMMAND opoverhead THREADS REF_RUNS times per thread count; prints the
# best median of add16_with_grad_us (empty when it cannot run).
ref_best() {
  local label=$1 best="" threads m i out
  shift
  for threads in 1 2; do
    local runs=()
    for ((i = 0; i < ref_runs; i++)); do
      if out=$("${peer_env[@]}" "$@" opoverhead "$threads" 2>/dev/null); then
        runs+=("$(printf '%s\n' "$out" | json_field add16_with_grad_us)")
      else
        echo "$label run failed (threads $threads); the peers load Fashion-MNIST first:" \
          "apt-get install dataset-fashion-mnist" >&2
        break
      fi
    done
    [ ${#runs[@]} -gt 0 ] || continue
    m=$(printf '%s\n' "${runs[@]}" | median | awk '{printf "%.3f", $1}')
    echo "$label, $threads thread(s): $m us/op (median of ${#runs[@]} runs)" >&2
    if [ -z "$best" ] || awk -v a="$m" -v b="$best" 'BEGIN {exit !(a < b)}'; then best=$m; fi
  done
  echo "$best"
}
echo
echo "== op overhead: 16-element add with requires_grad, us per op (median) =="
libtorch_us=""
libtorch_bin="$build/peers/libtorch_bench"
if [ ! -f "$libtorch_src" ]; then
  echo "LibTorch reference skipped: $libtorch_src not found (it lives in ../shared/peers/ beside the repo)"
elif [ ! -d /usr/include/torch/csrc/api/include ]; then
  echo "LibTorch reference skipped: no LibTorch headers; install them with: apt-get install libtorch-dev"
else
  if [ ! -x "$libtorch_bin" ] || [ "$libtorch_src" -nt "$libtorch_bin" ]; then
    echo "building $libtorch_bin (LibTorch C++ frontend; about 1-2 minutes)"
    mkdir -p "$build/peers"
    g++ -O2 -std=c++17 "$libtorch_src" -o "$libtorch_bin" -I/usr/include/torch/csrc/api/include \
      -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10 -lz
  fi
  libtorch_us=$(ref_best "LibTorch C++" "$libtorch_bin")
fi
torch_us=""
if [ ! -f "$peers" ]; then
  echo "PyTorch (Python) reference skipped: $peers not found (it lives in ../shared/peers/ beside the repo)"
elif ! "$python" -c 'import torch' 2>/dev/null; then
  echo "PyTorch (Python) reference skipped: torch is not importable by $python; install it with: apt-get install python3-torch"
else
  torch_us=$(ref_best "PyTorch from Python (CPython's dispatch included)" "$python" "$peers")
fi

# ---- (c) latent op overhead ----
op_out=$("$build/bench/op_overhead")
printf '%s\n' "$op_out"
latent_us=$(printf '%s\n' "$op_out" | json_field us_per_op)
if [ -n "$libtorch_us" ]; then
  awk -v x="$latent_us" -v y="$libtorch_us" \
    'BEGIN {printf "latent %.3f us/op, LibTorch C++ %.3f us/op, ratio %.3f (target <= 0.1)\n", x, y, x / y}'
else
  printf 'latent %.3f us/op, LibTorch C++ skipped\n' "$latent_us"
fi
if [ -n "$torch_us" ]; then
  awk -v x="$latent_us" -v y="$torch_us" \
    'BEGIN {printf "latent %.3f us/op, PyTorch from Python %.3f us/op (includes CPython dispatch), ratio %.3f\n", x, y, x / y}'
fi

# ---- (d) linear vs bare OpenBLAS at 1 and 2 threads (both sides at the same threads) ----
blas_line=""
for sgemm in openblas default; do
  for threads in 1 2; do
    echo
    if [ "$sgemm" = openblas ]; then
      echo "== Linear 784 -> 128, batch 128, fwd + bwd: LATENT_SGEMM=openblas LATENT_NUM_THREADS=$threads" \
        "(latent's overhead around the same GEMMs; target ratio <= 1.2) =="
      lin_out=$(LATENT_SGEMM=openblas LATENT_NUM_THREADS=$threads "$build/bench/linear")
    else
      echo "== the same with latent's own float32 kernel: LATENT_NUM_THREADS=$threads (kernel comparison) =="
      lin_out=$(env -u LATENT_SGEMM LATENT_NUM_THREADS=$threads "$build/bench/linear")
    fi
    printf '%s\n' "$lin_out"
    [ -n "$blas_line" ] || blas_line=$(printf '%s\n' "$lin_out" | sed -n 's/^BLAS: //p' | sed 's/, [0-9]* threads$//')
  done
done

# ---- (e) BLAS build and threads ----
echo
echo "== BLAS =="
echo "build: $blas_line"
echo "threads: LATENT_NUM_THREADS=1 and 2 above (latent's pool; the bare calls get openblas_set_num_threads(N))"
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} (latent's side; the peers run without it)"
lib=$(ldd "$build/bench/linear" | awk '/libopenblas/ {print $3; exit}')
echo "library: $lib -> $(readlink -f "$lib")"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
