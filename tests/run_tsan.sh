#!/usr/bin/env bash
# ThreadSanitizer. First the pool on its own (tests/tsan/pool_tsan.cpp with ops/cpu/workers.cpp,
# built with g++ -fsanitize=thread in about a minute): plain writes by parts read by the caller,
# more parts than threads, nested calls, two program threads at once, parallel_for, resizing.
# Then a -Db_sanitize=thread build (caching allocator off, as for ASan, so TSan sees every
# allocation; CUDA off) running the suites whose code uses threads:
#   linalg      run_parallel (the worker pool: every part once, nested, two callers) and the
#               parallel float32 GEMM in every layout and thread count
#   infer       the small-M and prepacked GEMM kernels on 1 and 2 threads
#   conv        parallel convolution forward and backward
#   elementwise the parallel elementwise and fused loops
#   reduce      parallel reductions
#   data        the DataLoader (batches, shuffling, transforms) and the readers
#   autograd    grad mode per thread
#   serve       `latent serve` under 64 concurrent clients, the batcher and back-pressure (serve_test.py)
#   dist        data-parallel training under mpirun (needs MPI in the build): tests/dist/dist_worker
#               on 2 ranks (collectives, DistributedDataParallel's bucketed allreduce from autograd
#               hooks, each rank's pool on 2 threads), then `latent train --distributed` on 2 ranks x
#               2 threads for 8 batches in 4 gradient buckets; every rank's report goes to its own file
# Any report fails the run (halt_on_error); suppressions, each justified, are in tests/tsan.supp.
# OpenBLAS is not instrumented: its own threads are invisible to TSan (latent runs it
# single-threaded inside the pool's parts, so the pool is what is checked).
#
# usage: tests/run_tsan.sh [SUITE...]   (default: pool and all of the above; `pool` alone is quick)
# env:   LATENT_BUILD_JOBS (default 2), TSAN_BUILD (default build-tsan in the repository root)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
jobs="${LATENT_BUILD_JOBS:-2}"
build="${TSAN_BUILD:-build-tsan}"
all=(pool linalg infer conv elementwise reduce data autograd serve dist)
if [ "$#" -gt 0 ]; then suites=("$@"); else suites=("${all[@]}"); fi

export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=4 suppressions=$root/tests/tsan.supp"
failed=()
clean=()
if [[ " ${suites[*]} " == *" pool "* ]]; then
  mkdir -p "$build"
  echo "== tsan: pool (tests/tsan/pool_tsan.cpp + ops/cpu/workers.cpp)"
  start=$(date +%s)
  nice g++ -std=c++20 -O1 -g -fsanitize=thread -I"$root" tests/tsan/pool_tsan.cpp ops/cpu/workers.cpp ops/threads.cpp \
    -o "$build/pool_tsan" -lopenblas -lfmt
  if "$build/pool_tsan" > "$build/tsan_pool.log" 2>&1 && ! grep -q "WARNING: ThreadSanitizer" "$build/tsan_pool.log"; then
    clean+=(pool)
    echo "== tsan: pool clean in $(( $(date +%s) - start ))s ($(tail -1 "$build/tsan_pool.log"))"
  else
    failed+=(pool)
    head -80 "$build/tsan_pool.log"
  fi
  rest=()
  for s in "${suites[@]}"; do [ "$s" = pool ] || rest+=("$s"); done
  suites=("${rest[@]}")
fi
[ "${#suites[@]}" -gt 0 ] || { [ "${#failed[@]}" -eq 0 ] && echo "run_tsan: clean: pool" && exit 0; echo "run_tsan: FAILED: pool"; exit 1; }

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=debug -Doptimization=1 -Db_sanitize=thread -Db_lundef=false \
    -Dcaching_allocator=false -Dcuda=disabled
fi
if [[ " ${suites[*]} " == *" dist "* ]] && { ! command -v mpirun >/dev/null || ! grep -q "dist_worker" "$build/build.ninja"; }; then
  echo "== tsan: dist SKIPPED: needs mpirun and MPI in the build (apt-get install openmpi-bin libopenmpi-dev; then rm -rf $build)"
  rest=()
  for s in "${suites[@]}"; do [ "$s" = dist ] || rest+=("$s"); done
  suites=("${rest[@]}")
  [ "${#suites[@]}" -gt 0 ] || { echo "run_tsan: clean: ${clean[*]:-nothing run}"; exit 0; }
fi
targets=()
for s in "${suites[@]}"; do
  if [ "$s" = serve ]; then targets+=(tools/latent);
  elif [ "$s" = dist ]; then targets+=(tools/latent tests/dist_worker);
  else targets+=("tests/test_$s"); fi
done
echo "run_tsan: building ${targets[*]} in $build"
nice ninja -C "$build" -j"$jobs" "${targets[@]}"

for s in "${suites[@]}"; do
  start=$(date +%s)
  echo "== tsan: $s"
  set +e
  if [ "$s" = serve ]; then
    # The servers' stderr is read by the test, so their reports go to files (one per process).
    rm -f "$build"/tsan_serve_report.*
    TSAN_OPTIONS="$TSAN_OPTIONS log_path=$(cd "$build" && pwd)/tsan_serve_report" \
      /usr/bin/python3 tests/serve_test.py "$build/tools/latent" > "$build/tsan_$s.log" 2>&1
    status=$?
    cat "$build"/tsan_serve_report.* >> "$build/tsan_$s.log" 2>/dev/null || true
  elif [ "$s" = dist ]; then
    rm -f "$build"/tsan_dist_report.*
    rm -rf "$build/tsan_dist_run"
    mpi=(mpirun --allow-run-as-root --oversubscribe -np 2 --mca btl self,vader -x TSAN_OPTIONS
         -x LATENT_NUM_THREADS=2)
    export TSAN_OPTIONS="$TSAN_OPTIONS log_path=$(cd "$build" && pwd)/tsan_dist_report"
    { "${mpi[@]}" "$build/tests/dist_worker" &&
      "${mpi[@]}" "$build/tools/latent" train --model deep --distributed --threads 2 --bucket-mb 0.25 --epochs 1 --limit-batches 8 \
        --limit-test 512 --quiet --out "$build/tsan_dist_run" &&
      echo "dist: dist_worker and a 2-rank training run passed"; } > "$build/tsan_$s.log" 2>&1
    status=$?
    export TSAN_OPTIONS="${TSAN_OPTIONS% log_path=*}"
    cat "$build"/tsan_dist_report.* >> "$build/tsan_$s.log" 2>/dev/null || true
  else
    "$build/tests/test_$s" > "$build/tsan_$s.log" 2>&1
    status=$?
  fi
  set -e
  if [ "$status" -ne 0 ] || grep -q "WARNING: ThreadSanitizer" "$build/tsan_$s.log"; then
    failed+=("$s")
    grep -A40 "WARNING: ThreadSanitizer" "$build/tsan_$s.log" | head -80 || tail -30 "$build/tsan_$s.log"
    echo "== tsan: $s FAILED (exit $status) after $(( $(date +%s) - start ))s; log: $build/tsan_$s.log"
  else
    clean+=("$s")
    echo "== tsan: $s clean in $(( $(date +%s) - start ))s ($(grep -E '^\[doctest\] test cases|^serve_test|passed' "$build/tsan_$s.log" | tail -1))"
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "run_tsan: FAILED: ${failed[*]}"
  exit 1
fi
echo "run_tsan: clean: ${clean[*]}"
