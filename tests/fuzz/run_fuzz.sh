#!/usr/bin/env bash
# Fuzzes every reader of latent with libFuzzer (clang's fuzzer + AddressSanitizer + UBSan), each
# target with a fixed seed, and prints per target the executions, the corpus size and whether it
# found anything. Exits non-zero on any crash, leak, timeout or out-of-memory; the failing input is
# kept and its path printed (copy it to tests/fuzz/corpus/TARGET/ as a regression file: the meson
# tests fuzz-replay-TARGET then replay it in the release and sanitizer builds).
#
# Targets (tests/fuzz/*_fuzz.cpp): onnx (protobuf reader), onnx_import (bytes -> runnable module),
# safetensors, idx, csv (incl. stored-preprocessing column matching), png, config (config.json),
# serve (latent serve's request parser).
#
# usage: tests/fuzz/run_fuzz.sh [SECONDS] [TARGET...]
#   SECONDS  the budget for all targets together, split evenly (default 300: CI's 5 minutes)
#   TARGET   a subset (default: all)
# env: FUZZ_RUNS=N   run each target to N executions instead of a time budget (the long run of
#                    docs/reliability.md: FUZZ_RUNS=1000000 tests/fuzz/run_fuzz.sh)
#      FUZZ_SEED     libFuzzer's -seed (default 1; CI keeps 1 so runs repeat)
#      FUZZ_BUILD    the clang build folder (default build-fuzz in the repository root)
#      FUZZ_KEEP=1   keep the work folder (grown corpora, logs) even when everything passed
#      LATENT_ONNX_TESTDATA (default /usr/share/libonnx-testdata/data): extra ONNX seeds
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
budget="${1:-300}"
shift || true
all_targets=(onnx onnx_import safetensors idx csv png config serve)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi
seconds=$(( budget / ${#targets[@]} ))
[ "$seconds" -ge 1 ] || seconds=1
runs="${FUZZ_RUNS:-}"
seed="${FUZZ_SEED:-1}"
build="${FUZZ_BUILD:-$root/build-fuzz}"
testdata="${LATENT_ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}"
jobs="${LATENT_BUILD_JOBS:-2}"
work="$(mktemp -d "${TMPDIR:-/tmp}/latent_fuzz.XXXXXX")"
keep="${FUZZ_KEEP:-0}"
cleanup() { if [ "$keep" = 0 ]; then rm -rf "$work"; fi; }
trap cleanup EXIT

# The library with coverage instrumentation (fuzzer-no-link) and the sanitizers, the caching
# allocator off so ASan sees every allocation; the targets link it with libFuzzer's main.
if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ meson setup "$build" "$root" --buildtype=debug -Doptimization=1 \
    -Db_sanitize=address,undefined -Db_lundef=false -Dcaching_allocator=false -Dcuda=disabled -Dtests=false \
    -Dcpp_args=-fsanitize=fuzzer-no-link >"$work/setup.log" || { cat "$work/setup.log"; exit 1; }
fi
echo "run_fuzz: building liblatent (clang, fuzzer coverage, ASan + UBSan) in $build"
nice ninja -C "$build" -j"$jobs" liblatent.so >"$work/ninja.log" || { tail -30 "$work/ninja.log"; exit 1; }

flags=(-std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -DLATENT_NO_CACHING_ALLOCATOR -I"$root" -L"$build" -Wl,-rpath,"$build" -llatent -lfmt)
for t in "${targets[@]}"; do
  extra=()
  if [ "$t" = serve ]; then
    extra=("$root/tools/serve/protocol.cpp" $(pkg-config --cflags --libs simdjson))
  fi
  [ -f "$root/tests/fuzz/${t}_fuzz.cpp" ] || { echo "run_fuzz: unknown target '$t' (targets: ${all_targets[*]})"; exit 2; }
  clang++ "$root/tests/fuzz/${t}_fuzz.cpp" "${extra[@]}" "${flags[@]}" -o "$work/${t}_fuzz" &
done
wait
for t in "${targets[@]}"; do [ -x "$work/${t}_fuzz" ] || { echo "run_fuzz: building ${t}_fuzz failed"; exit 1; }; done

# A working corpus per target: the committed seeds and regressions plus shared real files; what
# fuzzing adds stays in $work.
seed_corpus() {
  local t="$1" dir="$work/corpus/$1"
  mkdir -p "$dir"
  cp "$root/tests/fuzz/corpus/$t/"* "$dir/" 2>/dev/null || true
  case "$t" in
    onnx|onnx_import)
      for m in "$root"/tests/onnx_models/*/model.onnx; do cp "$m" "$dir/torch_$(basename "$(dirname "$m")").onnx"; done
      if [ -d "$testdata" ]; then  # ONNX's own node tests: one small model per op and variant
        local i=0
        while IFS= read -r -d '' m; do
          i=$((i + 1)); cp "$m" "$dir/testdata_$i.onnx"
        done < <(find "$testdata/node" -name model.onnx -size -4k -print0 | sort -z)
      fi ;;
    safetensors) cp "$root/tests/reference/reference.safetensors" "$dir/pytorch_reference.safetensors" ;;
  esac
}

status_all=0
summary=()
for t in "${targets[@]}"; do
  seed_corpus "$t"
  mkdir -p "$work/artifacts/$t"
  limit=(-max_total_time="$seconds")
  [ -n "$runs" ] && limit=(-runs="$runs")
  max_len=()
  [ "$t" = serve ] && max_len=(-max_len=65536)
  [ "$t" = csv ] || [ "$t" = config ] && max_len=(-max_len=16384)
  echo "run_fuzz: $t: $(ls "$work/corpus/$t" | wc -l) seed files; ${runs:+$runs executions}${runs:-${seconds}s}"
  set +e
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$work/${t}_fuzz" -seed="$seed" "${limit[@]}" "${max_len[@]}" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" "$work/corpus/$t" >"$work/$t.log" 2>&1
  status=$?
  set -e
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$work/$t.log" | tail -1)
  secs=$(awk '/stat::average_exec_per_sec/ {print $2}' "$work/$t.log" | tail -1)
  files=$(ls "$work/corpus/$t" | wc -l)
  if [ "$status" -ne 0 ] || [ -n "$(ls -A "$work/artifacts/$t")" ]; then
    status_all=1
    keep=1
    grep -v -e '^#[0-9]' -e '^"' -e 'recommended dictionary' "$work/$t.log" | tail -60
    summary+=("$(printf '%-12s %10s executions (%s/s), corpus %5s files: FOUND (exit %s): %s' "$t" "${execs:-?}" "${secs:-?}" "$files" "$status" "$(ls "$work/artifacts/$t" | tr '\n' ' ')")")
  else
    summary+=("$(printf '%-12s %10s executions (%s/s), corpus %5s files: nothing found' "$t" "${execs:-?}" "${secs:-?}" "$files")")
  fi
done

echo "run_fuzz: seed $seed, ${runs:+$runs executions per target}${runs:-${seconds}s per target}"
printf '  %s\n' "${summary[@]}"
if [ "$status_all" -ne 0 ]; then
  echo "run_fuzz: FAILED; inputs and logs kept in $work (artifacts/TARGET/*)"
  exit 1
fi
[ "$keep" = 1 ] && echo "run_fuzz: work folder kept: $work"
echo "run_fuzz: passed: no crash, leak, timeout or out-of-memory"
