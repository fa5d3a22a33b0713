#!/usr/bin/env bash
# The `latent` command as a user meets it: help, the demo, and clear one-line errors with exit 2.
# usage: cli_test.sh PATH_TO_LATENT
set -u
latent=$1
failures=0
expect() {  # expect NAME EXPECTED_RC EXPECTED_SUBSTRING -- ARGS...
  local name=$1 rc_expected=$2 text=$3
  shift 4
  local out rc
  out=$("$latent" "$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$rc_expected" ] || [[ "$out" != *"$text"* ]]; then
    echo "FAIL $name: exit $rc (expected $rc_expected), output:"
    echo "$out" | head -5
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}
expect help 0 "usage: latent <command>" -- --help
expect no-args 2 "usage: latent <command>" --
expect demo-help 0 "usage: latent demo" -- demo --help
expect demo 0 "loss fell from" -- demo --steps 60 --seed 1 --threads 1
expect unknown-command 2 "latent: unknown command 'trian'" -- trian
expect unknown-flag 2 "latent: unknown option '--bogus' for demo" -- demo --bogus
expect bad-value 2 "--steps expects an integer in [1, 1000000]; got 'ten'" -- demo --steps ten
expect missing-value 2 "--lr needs a value" -- demo --lr
expect version 0 "latent 0.1.0" -- version
expect train-help 0 "usage: latent train" -- train --help
expect train-bad-model 2 "--model must be one of linear, deep, conv, sparse, denoising, vae, conv-vae; got 'foo'" -- train --model foo
expect train-cuda 2 "--device cuda: this build of latent has no CUDA backend" -- train --device cuda
expect train-missing-data 2 "--data: '/nonexistent/fmnist' does not exist" -- train --data /nonexistent/fmnist
expect eval-missing-run 2 "run directory '/nonexistent/run' does not exist" -- eval /nonexistent/run
expect eval-no-run 2 "eval needs a run directory" -- eval
for cmd in reconstruct sample interpolate embed anomaly classify; do
  expect "$cmd-help" 0 "usage: latent $cmd" -- $cmd --help
done

# A short real run when Fashion-MNIST is installed (Debian dataset-fashion-mnist).
if [ -d /usr/share/datasets/fashion-mnist ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  expect train-short 0 "run saved in" -- train --model deep --epochs 1 --limit-batches 5 --limit-test 300 --quiet --out "$work/run" --threads 1
  expect eval-short 0 '"test_loss"' -- eval "$work/run" --limit 300
  expect reconstruct-short 0 "wrote $work/recon.png" -- reconstruct "$work/run" --out "$work/recon.png"
  expect sample-not-vae 2 "sample needs a VAE run" -- sample "$work/run"
  expect anomaly-short 0 '"roc_auc"' -- anomaly "$work/run" --limit 300 --anomaly-class 1
  expect train-existing 1 "already holds a run" -- train --model deep --epochs 1 --limit-batches 2 --out "$work/run"
  [ -s "$work/recon.png" ] || { echo "FAIL recon.png was not written"; failures=$((failures + 1)); }
else
  echo "skip short training run: /usr/share/datasets/fashion-mnist is missing (apt-get install dataset-fashion-mnist)"
fi
[ "$failures" -eq 0 ] || { echo "$failures CLI checks failed"; exit 1; }
