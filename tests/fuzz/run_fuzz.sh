#!/usr/bin/env bash
# Builds the libFuzzer target for the ONNX reader (tests/fuzz/onnx_fuzz.cpp) with clang's fuzzer,
# address and undefined-behaviour sanitizers, seeds a corpus with the model.onnx files of Debian's
# libonnx-testdata, and fuzzes with a fixed seed. Exits non-zero on any crash, leak, timeout or
# out-of-memory; the failing input is kept and its path printed.
#
# usage: tests/fuzz/run_fuzz.sh [SECONDS]   (default 60)
# env:   CXX (default clang++), LATENT_ONNX_TESTDATA (default /usr/share/libonnx-testdata/data),
#        FUZZ_SEED (default 1; CI keeps 1 so runs repeat)
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
testdata="${LATENT_ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}"
cxx="${CXX:-clang++}"
work="$(mktemp -d "${TMPDIR:-/tmp}/latent_onnx_fuzz.XXXXXX")"
keep=0
cleanup() { if [ "$keep" = 0 ]; then rm -rf "$work"; fi; }
trap cleanup EXIT

echo "run_fuzz: building in $work"
# fmt header-only, so the formatting behind error messages is instrumented too. Only the onnx_io
# sources and autograd/error.h (a header) are needed.
"$cxx" -std=c++20 -g -O1 -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -DFMT_HEADER_ONLY -I"$root" \
  "$root/tests/fuzz/onnx_fuzz.cpp" \
  "$root/onnx_io/protobuf.cpp" "$root/onnx_io/onnx_model.cpp" "$root/onnx_io/onnx_tensor.cpp" \
  -o "$work/onnx_fuzz"

mkdir -p "$work/corpus" "$work/artifacts"
seeds=0
if [ -d "$testdata" ]; then
  while IFS= read -r -d '' model; do
    seeds=$((seeds + 1))
    cp "$model" "$work/corpus/seed_$seeds.onnx"
  done < <(find "$testdata" -name 'model.onnx' -print0 | sort -z)
else
  echo "run_fuzz: $testdata is missing (apt-get install libonnx-testdata); fuzzing from an empty corpus"
fi
echo "run_fuzz: $seeds seed models; fuzzing for ${seconds}s"

set +e
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$work/onnx_fuzz" -seed="${FUZZ_SEED:-1}" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" 2>&1 > "$work/fuzz.log"
status=$?
set -e

# The log without the per-input progress lines and the recommended dictionary.
grep -v -e '^#[0-9]' -e '^"' -e 'recommended dictionary' "$work/fuzz.log" || true
if [ "$status" -ne 0 ] || [ -n "$(ls -A "$work/artifacts")" ]; then
  keep=1
  echo "run_fuzz: FAILED (exit $status); inputs and log kept in $work"
  ls -l "$work/artifacts"
  exit 1
fi
echo "run_fuzz: passed: no crash, leak or timeout in ${seconds}s"
