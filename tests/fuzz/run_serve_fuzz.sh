#!/usr/bin/env bash
# Builds the libFuzzer target for `latent serve`'s request parser (tests/fuzz/serve_fuzz.cpp)
# with clang's fuzzer, address and undefined-behaviour sanitizers, seeds a corpus with valid and
# broken infer bodies, and fuzzes with a fixed seed. Exits non-zero on any crash, leak or timeout;
# the failing input is kept and its path printed.
#
# usage: tests/fuzz/run_serve_fuzz.sh [SECONDS]   (default 60)
# env:   CXX (default clang++), FUZZ_SEED (default 1)
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cxx="${CXX:-clang++}"
work="$(mktemp -d "${TMPDIR:-/tmp}/latent_serve_fuzz.XXXXXX")"
keep=0
cleanup() { if [ "$keep" = 0 ]; then rm -rf "$work"; fi; }
trap cleanup EXIT

echo "run_serve_fuzz: building in $work"
# fmt header-only so the message formatting is instrumented; simdjson is Debian's library.
"$cxx" -std=c++20 -g -O1 -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -DFMT_HEADER_ONLY -I"$root" \
  "$root/tests/fuzz/serve_fuzz.cpp" "$root/tools/serve/protocol.cpp" \
  $(pkg-config --cflags --libs simdjson) -o "$work/serve_fuzz"

mkdir -p "$work/corpus" "$work/artifacts"
i=0
for body in \
  '{"id":"a","inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[[1,2,3,4],[5,6,7,8]]}],"outputs":[{"name":"score"}]}' \
  '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1.5,-2e3,3,4]}],"parameters":{"preprocessed":true}}' \
  '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3]}]}' \
  '{"inputs":[{"name":"x","shape":[1,5],"datatype":"INT64","data":[1,"a",null,true,{}]}],"outputs":[{"name":"nope"}]}' \
  '{"instances":[[1,2,3,4],[0.5,0.25,0.125,1e-3]]}' \
  '{"instances":[[1,2,3]]}' \
  '{"inputs":[{"name":"image","shape":[2],"datatype":"BYTES","data":["iVBORw0KGgo=","QUJD"]}]}'; do
  i=$((i + 1))
  printf '%s' "$body" > "$work/corpus/seed_$i.json"
done
echo "run_serve_fuzz: $i seed bodies; fuzzing for ${seconds}s"

set +e
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$work/serve_fuzz" -seed="${FUZZ_SEED:-1}" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" 2>&1 > "$work/fuzz.log"
status=$?
set -e

grep -v -e '^#[0-9]' -e '^"' -e 'recommended dictionary' "$work/fuzz.log" || true
if [ "$status" -ne 0 ] || [ -n "$(ls -A "$work/artifacts")" ]; then
  keep=1
  echo "run_serve_fuzz: FAILED (exit $status); inputs and log kept in $work"
  ls -l "$work/artifacts"
  exit 1
fi
echo "run_serve_fuzz: passed: no crash, leak or timeout in ${seconds}s"
