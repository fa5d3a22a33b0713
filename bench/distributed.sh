#!/usr/bin/env bash
# Data-parallel training on this machine's cores (issue 14): 1 rank x 2 threads (latent train's
# single process) against 2 ranks x 1 thread (mpirun -np 2 ... --distributed), alternated 3 times
# per model; prints each run's line (bench/distributed.cpp), the medians and the ratio.
# usage: bench/distributed.sh [BUILD_DIR]   (needs mpirun; CI runs as root, hence --allow-run-as-root)
set -euo pipefail
build=${1:-build}
exe=$build/bench/distributed
command -v mpirun >/dev/null || { echo "mpirun not found (apt-get install openmpi-bin libopenmpi-dev)"; exit 1; }
mpi=(mpirun --allow-run-as-root --oversubscribe --mca btl self,vader --bind-to none)
for model in deep conv; do
  one=() two=()
  for rep in 1 2 3; do
    a=$("${mpi[@]}" -np 1 "$exe" --model "$model" --threads 2)
    b=$("${mpi[@]}" -np 2 "$exe" --model "$model" --threads 1)
    echo "$a"
    echo "$b"
    one+=("$(sed -n 's/.*: \([0-9.]*\) ms\/step.*/\1/p' <<<"$a")")
    two+=("$(sed -n 's/.*: \([0-9.]*\) ms\/step.*/\1/p' <<<"$b")")
  done
  m1=$(printf '%s\n' "${one[@]}" | sort -g | sed -n 2p)
  m2=$(printf '%s\n' "${two[@]}" | sort -g | sed -n 2p)
  awk -v m="$model" -v a="$m1" -v b="$m2" 'BEGIN { printf "%s: median of 3: 1 rank x 2 threads %.3f ms/step, 2 ranks x 1 thread %.3f ms/step, ratio %.3f (target <= 1.1)\n", m, a, b, b / a }'
done
