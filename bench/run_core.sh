#!/usr/bin/env bash
# The core-engine benchmarks, each against its reference in the same run:
#   op_overhead: latent's per-op overhead vs PyTorch (torch_bench.py opoverhead), target ratio <= 0.1
#   linear:      Linear 784 -> 128 forward + backward vs the bare OpenBLAS calls, target <= 1.2x
# usage: bench/run_core.sh        (from a fresh clone; builds build/ in release mode if needed)
# env:   BUILD_DIR (default build), REF_RUNS (torch_bench.py runs per thread count, default 5),
#        PYTHON (default /usr/bin/python3, the interpreter Debian's python3-torch is built for)
# Figures are medians; see docs/benchmarks.md.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
build=${BUILD_DIR:-build}
python=${PYTHON:-/usr/bin/python3}
ref_runs=${REF_RUNS:-5}
peers="$root/../shared/peers/torch_bench.py"

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

# ---- (b) PyTorch reference: threads 1 and 2, median of REF_RUNS runs each, keep the best ----
echo
echo "== op overhead: 16-element add with requires_grad, us per op (median) =="
torch_us=""
if [ ! -f "$peers" ]; then
  echo "PyTorch reference skipped: $peers not found (it lives in ../shared/peers/ beside the repo)"
elif ! "$python" -c 'import torch' 2>/dev/null; then
  echo "PyTorch reference skipped: torch is not importable by $python; install it with: apt-get install python3-torch"
else
  for threads in 1 2; do
    runs=()
    for ((i = 0; i < ref_runs; i++)); do
      if out=$("$python" "$peers" opoverhead "$threads" 2>/dev/null); then
        runs+=("$(printf '%s\n' "$out" | json_field add16_with_grad_us)")
      else
        echo "PyTorch reference run failed (threads $threads); torch_bench.py loads Fashion-MNIST first:" \
          "apt-get install dataset-fashion-mnist"
        break
      fi
    done
    [ ${#runs[@]} -gt 0 ] || continue
    m=$(printf '%s\n' "${runs[@]}" | median | awk '{printf "%.3f", $1}')
    echo "PyTorch, $threads thread(s): $m us/op (median of ${#runs[@]} runs)"
    if [ -z "$torch_us" ] || awk -v a="$m" -v b="$torch_us" 'BEGIN {exit !(a < b)}'; then torch_us=$m; fi
  done
fi

# ---- (c) latent op overhead ----
op_out=$("$build/bench/op_overhead")
printf '%s\n' "$op_out"
latent_us=$(printf '%s\n' "$op_out" | json_field us_per_op)
if [ -n "$torch_us" ]; then
  awk -v x="$latent_us" -v y="$torch_us" \
    'BEGIN {printf "latent %.3f us/op, PyTorch %.3f us/op, ratio %.3f (target <= 0.1)\n", x, y, x / y}'
else
  printf 'latent %.3f us/op, PyTorch skipped\n' "$latent_us"
fi

# ---- (d) linear vs bare OpenBLAS at 1 and 2 threads ----
blas_line=""
for threads in 1 2; do
  echo
  echo "== Linear 784 -> 128, batch 128, forward + backward: LATENT_NUM_THREADS=$threads (target ratio <= 1.2) =="
  lin_out=$(LATENT_NUM_THREADS=$threads "$build/bench/linear")
  printf '%s\n' "$lin_out"
  [ -n "$blas_line" ] || blas_line=$(printf '%s\n' "$lin_out" | sed -n 's/^BLAS: //p' | sed 's/, [0-9]* threads$//')
done

# ---- (e) BLAS build and threads ----
echo
echo "== BLAS =="
echo "build: $blas_line"
echo "threads: LATENT_NUM_THREADS=1 and 2 above (OpenBLAS's pool; latent's own loops run on the calling thread)"
lib=$(ldd "$build/bench/linear" | awk '/libopenblas/ {print $3; exit}')
echo "library: $lib -> $(readlink -f "$lib")"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
