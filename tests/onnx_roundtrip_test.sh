#!/usr/bin/env bash
# tools/onnx_roundtrip as a user runs it: every committed PyTorch-exported model round-trips and
# reproduces PyTorch's outputs; a model runs on zeros without data; ONNX's own conformance data
# checks; wrong data, tolerances, flags and paths fail with the documented exit codes.
# usage: onnx_roundtrip_test.sh ONNX_ROUNDTRIP MODELS_DIR
set -u
tool=$1
models=$2
failures=0
# expect NAME EXIT_CODE TEXT -- ARGS...: runs the tool, checks the exit code and that TEXT appears.
expect() {
  local name=$1 code=$2 text=$3
  shift 4
  local out rc
  out=$("$tool" "$@" 2>&1)
  rc=$?
  if [ "$rc" -eq "$code" ] && [[ "$out" == *"$text"* ]]; then
    echo "ok   $name"
  else
    echo "FAIL $name: exit $rc (expected $code), wanted '$text' in:"
    echo "$out" | tail -5
    failures=$((failures + 1))
  fi
}
n=0
for m in "$models"/*/; do
  expect "pytorch-$(basename "$m")" 0 "2 passed, 0 failed" -- "$m/model.onnx" --check-data "$m"
  n=$((n + 1))
done
[ "$n" -ge 8 ] || { echo "FAIL expected at least 8 committed models in $models, found $n"; failures=$((failures + 1)); }
expect zeros 0 "2 passed, 0 failed" -- "$models/dense_ae_op13/model.onnx"
node=/usr/share/libonnx-testdata/data/node/test_conv_with_strides_padding
if [ -d "$node" ]; then
  expect onnx-node-conv 0 "2 passed, 0 failed" -- "$node/model.onnx" --check-data "$node"
else
  echo "skip onnx-node-conv: $node is absent (Debian package libonnx-testdata)"
fi
expect wrong-data 1 "1 passed, 1 failed" -- "$models/dense_ae_op13/model.onnx" --check-data "$models/vae_decoder_op11"
expect zero-tolerance 1 "failed" -- "$models/dense_ae_op13/model.onnx" --check-data "$models/dense_ae_op13" --atol 0 --rtol 0
expect bad-atol 2 "--atol" -- "$models/dense_ae_op13/model.onnx" --atol x
expect missing-data 2 "/nonexistent" -- "$models/dense_ae_op13/model.onnx" --check-data /nonexistent
expect missing-model 2 "/nonexistent/model.onnx" -- /nonexistent/model.onnx
echo "$failures failures"
[ "$failures" -eq 0 ]
