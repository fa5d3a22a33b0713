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
#      FUZZ_LIB_BUILD  the release build whose liblatent the targets link (default build)
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
lib_build="${FUZZ_LIB_BUILD:-$root/build}"
testdata="${LATENT_ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}"
jobs="${LATENT_BUILD_JOBS:-2}"
work="$(mktemp -d "${TMPDIR:-/tmp}/latent_fuzz.XXXXXX")"
keep="${FUZZ_KEEP:-0}"
cleanup() { if [ "$keep" = 0 ]; then rm -rf "$work"; fi; }
trap cleanup EXIT

# Each target: its reader's sources compiled by clang with libFuzzer's coverage, ASan and UBSan,
# linked against the release liblatent (gcc; tensors, ops) for the rest. The target's own
# definitions of the reader functions take precedence over the library's, so the reader code is
# what is instrumented and guided; the library is not ASan-instrumented (its allocations still go
# through ASan's malloc, with the caching allocator off: LATENT_NO_CACHING_ALLOCATOR=1).
# (A whole-library clang build is not possible with Debian's clang 14: it rejects lambdas that
# capture structured bindings, which gcc and clang >= 16 accept.)
declare -A sources=(
  [onnx]="onnx_io/protobuf.cpp onnx_io/onnx_model.cpp onnx_io/onnx_tensor.cpp"
  [onnx_import]="onnx_io/protobuf.cpp onnx_io/onnx_model.cpp onnx_io/onnx_tensor.cpp onnx_io/onnx_import.cpp
                 onnx_io/onnx_import_ops.cpp onnx_io/onnx_import_nn.cpp onnx_io/onnx_import_more.cpp onnx_io/onnx_op_tables.cpp"
  [safetensors]="models/io/safetensors.cpp models/io/json.cpp"
  [idx]="models/data/data.cpp"
  [csv]="models/data/data.cpp models/data/samples.cpp models/io/json.cpp"
  [png]="models/data/png_io.cpp"
  [config]="models/io/json.cpp models/data/samples.cpp"
  [serve]="tools/serve/protocol.cpp"
)
# The library is built here only when missing (tests/run_all.sh has built it before).
if [ ! -f "$lib_build/liblatent.so" ]; then
  [ -f "$lib_build/build.ninja" ] || meson setup "$lib_build" "$root" --buildtype=release >"$work/setup.log"
  nice ninja -C "$lib_build" -j"$jobs" liblatent.so.0.1.0 >"$work/ninja.log" || { tail -30 "$work/ninja.log"; exit 1; }
fi
echo "run_fuzz: liblatent from $lib_build; building the targets with clang (fuzzer, ASan, UBSan)"
cxx=(clang++)
command -v ccache >/dev/null && cxx=(ccache clang++)
flags=(-std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
       -I"$root" $(pkg-config --cflags simdjson))
mkdir -p "$work/obj"
declare -A objects=()
for t in "${targets[@]}"; do
  [ -n "${sources[$t]:-}" ] || { echo "run_fuzz: unknown target '$t' (targets: ${all_targets[*]})"; exit 2; }
  for src in tests/fuzz/${t}_fuzz.cpp ${sources[$t]}; do objects[$src]="$work/obj/$(echo "$src" | tr '/' '_').o"; done
done
for src in "${!objects[@]}"; do  # $jobs compiles at a time
  CCACHE_BASEDIR="$root" nice "${cxx[@]}" "${flags[@]}" -c "$root/$src" -o "${objects[$src]}" 2>>"$work/compile.log" &
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
done
wait || true
for src in "${!objects[@]}"; do
  [ -f "${objects[$src]}" ] || { echo "run_fuzz: compiling $src failed"; head -40 "$work/compile.log"; exit 1; }
done
for t in "${targets[@]}"; do
  objs=("${objects[tests/fuzz/${t}_fuzz.cpp]}")
  for src in ${sources[$t]}; do objs+=("${objects[$src]}"); done
  clang++ -fsanitize=fuzzer,address,undefined "${objs[@]}" -L"$lib_build" -Wl,-rpath,"$lib_build" -llatent -lfmt -lz -lpng \
    $(pkg-config --libs simdjson) -o "$work/${t}_fuzz" || { echo "run_fuzz: linking ${t}_fuzz failed"; exit 1; }
done

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
  echo "run_fuzz: $t: $(ls "$work/corpus/$t" | wc -l) seed files; $([ -n "$runs" ] && echo "$runs executions" || echo "${seconds}s")"
  set +e
  LATENT_NO_CACHING_ALLOCATOR=1 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
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

echo "run_fuzz: seed $seed, $([ -n "$runs" ] && echo "$runs executions" || echo "${seconds}s") per target"
printf '  %s\n' "${summary[@]}"
if [ "$status_all" -ne 0 ]; then
  echo "run_fuzz: FAILED; inputs and logs kept in $work (artifacts/TARGET/*)"
  exit 1
fi
[ "$keep" = 1 ] && echo "run_fuzz: work folder kept: $work"
echo "run_fuzz: passed: no crash, leak, timeout or out-of-memory"
