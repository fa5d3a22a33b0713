#!/usr/bin/env bash
# The ONNX export proof: exports every autoencoder family model (whole and as encoder, decoder and
# anomaly parts, at opsets 13 and 17) and a custom module (opsets 13, 15, 17) with the built tree,
# plus `latent export` of short training runs (opset 14), then checks every file with
# onnx.checker.check_model(full_check=True) and runs it in ONNX Runtime against latent's outputs
# (|a - b| <= 1e-5 + 1e-4 |b|), evaluated at a batch size other than the traced one.
#
# usage: tests/onnx_runtime_check.sh BUILD_DIR
# Needs BUILD_DIR/tests/test_onnx_export and BUILD_DIR/tools/latent. The Python side lives in
# .venv-onnx (tools/setup_onnx_venv.sh makes it). Prints "SKIP: ..." and exits 0 only when that
# venv cannot be made (no network); any other failure exits non-zero.
set -uo pipefail

if [ $# -ne 1 ]; then
  echo "usage: tests/onnx_runtime_check.sh BUILD_DIR" >&2
  exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "$1" 2>/dev/null && pwd)" || { echo "onnx_runtime_check: build folder '$1' does not exist" >&2; exit 2; }
exe="$build/tests/test_onnx_export"
latent="$build/tools/latent"
for f in "$exe" "$latent"; do
  [ -x "$f" ] || { echo "onnx_runtime_check: $f is not built" >&2; exit 1; }
done

"$root/tools/setup_onnx_venv.sh"
rc=$?
if [ $rc -eq 3 ]; then
  echo "SKIP: onnx_runtime_check: the Python venv with onnx and onnxruntime could not be made (no network?)"
  exit 0
elif [ $rc -ne 0 ]; then
  echo "onnx_runtime_check: tools/setup_onnx_venv.sh failed (exit $rc)" >&2
  exit 1
fi
python="$root/.venv-onnx/bin/python"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
models="$work/models"
mkdir -p "$models"

fail() {
  echo "onnx_runtime_check: $*" >&2
  exit 1
}

# (a) the family and the custom module, exported by the test suite with latent's outputs beside them.
LATENT_ONNX_EXPORT_DIR="$models" "$exe" -tc='write exports*' > "$work/exports.log" 2>&1 ||
  { cat "$work/exports.log" >&2; fail "writing the exports failed"; }

# (b) `latent export` of trained runs: a dense model and a VAE on a small CSV table, and the
# convolutional model with batch norm on Fashion-MNIST when the data set is installed.
"$python" - "$work/table.csv" <<'EOF'
import sys, random
random.seed(0)
with open(sys.argv[1], "w") as f:
    f.write(",".join(f"x{i}" for i in range(16)) + ",label\n")
    for r in range(96):
        base = [random.random() for _ in range(4)]
        row = [min(1.0, max(0.0, base[i % 4] * 0.8 + random.random() * 0.2)) for i in range(16)]
        f.write(",".join(f"{v:.4f}" for v in row) + f",{r % 3}\n")
EOF
train() {  # name, extra options...
  local name=$1
  shift
  "$latent" train --epochs 1 --batch-size 16 --limit-test 32 --quiet --out "$work/run-$name" "$@" \
    > "$work/train-$name.log" 2>&1 || { cat "$work/train-$name.log" >&2; fail "latent train ($name) failed"; }
  for part in full encoder decoder anomaly; do
    mkdir -p "$models/cli-$name-$part"
    "$latent" export "$work/run-$name" --out "$models/cli-$name-$part/model.onnx" --part "$part" --opset 14 ||
      fail "latent export $work/run-$name --part $part failed"
    echo "$work/run-$name" > "$models/cli-$name-$part/run"
  done
}
train deep --model deep --data "$work/table.csv" --label-column label --latent-dim 3
train vae --model vae --data "$work/table.csv" --label-column label --latent-dim 3
if [ -d /usr/share/datasets/fashion-mnist ]; then
  train conv --model conv --batch-norm --limit-batches 2 --batch-size 32
else
  echo "note: /usr/share/datasets/fashion-mnist is not installed: no conv run exported through the CLI"
fi
LATENT_ONNX_CLI_EXPORTS="$models" "$exe" -tc='write references*' > "$work/refs.log" 2>&1 ||
  { cat "$work/refs.log" >&2; fail "writing the references of the CLI exports failed"; }

# (c) onnx.checker + ONNX Runtime.
"$python" "$root/tests/onnx_check/check_exported.py" "$models" || exit 1

# (d) every exported model survives tools/onnx_roundtrip: parse, write, re-parse, compare, and run
# on its own inputs against latent's outputs.
roundtrip="$build/tools/onnx_roundtrip"
[ -x "$roundtrip" ] || fail "$roundtrip is not built"
rt_pass=0
rt_fail=0
for dir in "$models"/*/; do
  if "$roundtrip" "$dir/model.onnx" --check-data "$dir" > "$work/roundtrip.log" 2>&1; then
    rt_pass=$((rt_pass + 1))
  else
    rt_fail=$((rt_fail + 1))
    echo "FAIL: onnx_roundtrip $dir/model.onnx --check-data $dir"
    tail -3 "$work/roundtrip.log"
  fi
done
echo "onnx_roundtrip on the exports: $rt_pass passed, $rt_fail failed"
[ "$rt_fail" -eq 0 ] && [ "$rt_pass" -gt 0 ]
