#!/usr/bin/env bash
# The `latent` command as a user meets it: help, the demo, and clear one-line errors with exit 2.
# usage: cli_test.sh PATH_TO_LATENT
set -u
latent=$1
source "$(dirname "${BASH_SOURCE[0]}")/expect.sh"
expect help 0 "usage: latent <command>" -- --help
expect no-args 2 "usage: latent <command>" --
expect demo-help 0 "usage: latent demo" -- demo --help
expect demo 0 "loss fell from" -- demo --steps 60 --seed 1 --threads 1
expect unknown-command 2 "latent: unknown command 'trian'" -- trian
expect unknown-flag 2 "latent: unknown option '--bogus' for demo" -- demo --bogus
expect bad-value 2 "--steps expects an integer in [1, 1000000]; got 'ten'" -- demo --steps ten
expect missing-value 2 "--lr needs a value" -- demo --lr
expect version 0 "latent 0.1.0" -- version
expect version-json 0 '{"version":"0.1.0","blas":"' -- version --json
expect version-bad-flag 2 "latent: unknown option '--jsn' for version" -- version --jsn
expect flag-with-value 2 "--quiet takes no value; got '--quiet=1'" -- train --quiet=1
expect extra-argument 2 "unexpected argument 'extra' for train" -- train extra
expect train-help-default 0 "--epochs N" -- train --help
expect train-bad-epochs 2 "--epochs expects an integer in [1, 100000]; got '0'" -- train --epochs 0
expect train-bad-lr 2 "--lr expects a number in [1e-12, 10]; got 'fast'" -- train --lr=fast
expect train-bad-likelihood 2 "--likelihood must be one of bernoulli, gaussian; got 'poisson'" -- train --likelihood poisson
expect eval-bad-limit 2 "--limit expects an integer" -- eval /nonexistent/run --limit -3
expect train-help 0 "usage: latent train" -- train --help
expect train-bad-model 2 "--model must be one of linear, deep, conv, sparse, denoising, vae, conv-vae, beta-tc-vae, iwae, vamp-vae, wae-mmd, rae, vq-vae; got 'foo'" -- train --model foo
# Without a CUDA build or GPU, --device cuda fails in one line naming why; with a GPU the run gets as
# far as the data check.
cuda_out=$("$latent" train --device cuda --data /nonexistent/fmnist 2>&1)
cuda_rc=$?
if [ "$cuda_rc" -eq 2 ] && { [[ "$cuda_out" == *"--device cuda: this build has no CUDA backend"* ]] ||
    [[ "$cuda_out" == *"--device cuda: no CUDA GPU was found"* ]] || [[ "$cuda_out" == *"/nonexistent/fmnist' does not exist"* ]]; }; then
  echo "ok   train-cuda"
else
  echo "FAIL train-cuda: exit $cuda_rc (expected 2), output:"
  echo "$cuda_out" | head -5
  failures=$((failures + 1))
fi
expect train-bad-precision 2 "--precision must be one of fp32, bf16, fp16; got 'fp8'" -- train --precision fp8
expect train-missing-data 2 "--data: '/nonexistent/fmnist' does not exist" -- train --data /nonexistent/fmnist
expect eval-missing-run 2 "run directory '/nonexistent/run' does not exist" -- eval /nonexistent/run
expect eval-no-run 2 "eval needs a run directory" -- eval
expect export-no-out 2 "export: --out FILE is required" -- export /nonexistent/run
expect export-missing-run 2 "run directory '/nonexistent/run' does not exist" -- export /nonexistent/run --out /tmp/x.onnx
for cmd in eval reconstruct sample interpolate embed anomaly classify export version; do
  expect "$cmd-help" 0 "usage: latent $cmd" -- $cmd --help
done

# A short real run when Fashion-MNIST is installed (Debian dataset-fashion-mnist).
if [ -d /usr/share/datasets/fashion-mnist ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  expect train-short 0 "run saved in" -- train --model deep --epochs 1 --limit-batches 5 --limit-test 300 --quiet --out "$work/run" --threads 1
  expect eval-short 0 '"test_loss"' -- eval "$work/run" --limit 300 --json
  expect eval-summary 0 "test loss" -- eval "$work/run" --limit 300
  expect reconstruct-short 0 "wrote $work/recon.png" -- reconstruct "$work/run" --out "$work/recon.png"
  expect sample-not-vae 2 "sample needs a VAE run" -- sample "$work/run"
  # rae: sample draws codes from the ex-post mixture stored at the end of training (gmm.safetensors).
  expect train-rae 0 "ex-post density: 3 diagonal Gaussians" -- train --model rae --gmm-components 3 --epochs 1 \
    --limit-batches 5 --limit-test 300 --quiet --out "$work/rae" --threads 1
  expect sample-rae 0 "wrote $work/rae-a.png" -- sample "$work/rae" --n 16 --seed 4 --out "$work/rae-a.png"
  expect sample-rae-again 0 "wrote" -- sample "$work/rae" --n 16 --seed 4 --out "$work/rae-b.png"
  expect sample-rae-seed 0 "wrote" -- sample "$work/rae" --n 16 --seed 5 --out "$work/rae-c.png"
  check sample-rae-deterministic cmp -s "$work/rae-a.png" "$work/rae-b.png"
  check sample-rae-seeded bash -c "! cmp -s '$work/rae-a.png' '$work/rae-c.png'"
  printf 'not a mixture' > "$work/rae/gmm.safetensors"
  expect sample-rae-bad-gmm 1 "[gmm] $work/rae/gmm.safetensors: not a readable mixture file" -- sample "$work/rae" --out "$work/x.png"
  rm "$work/rae/gmm.safetensors"
  expect sample-rae-no-gmm 1 "[sample] $work/rae/gmm.safetensors is missing" -- sample "$work/rae" --out "$work/x.png"
  expect train-vq-vae 0 "run saved in" -- train --model vq-vae --codebook-size 64 --epochs 1 --limit-batches 5 \
    --limit-test 300 --quiet --out "$work/vq" --threads 1
  check vq-vae-usage grep -q '"perplexity"' "$work/vq/metrics.jsonl"
  # The codebook and its moving averages are buffers: --resume continues bit for bit.
  expect train-vq-2 0 "run saved in" -- train --model vq-vae --codebook-size 64 --epochs 2 --limit-batches 5 \
    --limit-test 300 --quiet --out "$work/vq-2" --threads 1
  expect train-vq-resume 0 "run saved in" -- train --resume "$work/vq" --epochs 2 --limit-batches 5 --limit-test 300 \
    --quiet --threads 1
  check vq-vae-resume cmp -s "$work/vq/model.safetensors" "$work/vq-2/model.safetensors"
  expect train-vq-bad-dim 1 "vq-vae needs latent_dim a multiple of codebook_dim" -- train --model vq-vae --latent-dim 10 \
    --codebook-dim 4 --epochs 1 --limit-batches 1 --quiet --out "$work/vq2"
  expect train-vq-bad-update 2 "--codebook-update must be one of ema, loss; got 'sgd'" -- train --model vq-vae --codebook-update sgd
  expect anomaly-short 0 '"roc_auc"' -- anomaly "$work/run" --limit 300 --anomaly-class 1 --json
  expect anomaly-summary 0 "ROC AUC" -- anomaly "$work/run" --limit 300 --anomaly-class 1
  expect anomaly-roc 0 "ROC AUC" -- anomaly "$work/run" --limit 300 --anomaly-class 1 --roc "$work/roc.svg"
  expect anomaly-roc-no-class 2 "--roc needs --anomaly-class K" -- anomaly "$work/run" --roc "$work/roc.svg"
  # The one-class protocol on two classes: a run per class, AUCs in [0, 1], their mean, the tables.
  expect anomaly-bench-short 0 "mean ROC AUC" -- anomaly-bench --classes 0,1 --epochs 1 --limit-batches 3 \
    --limit-test 400 --quiet --threads 1 --out "$work/ab"
  check anomaly-bench-csv awk -F, 'NR > 1 { n++; if ($3 < 0 || $3 > 1 || $5 != 400) bad = 1; s += $3 }
    END { exit !(n == 2 && !bad) }' "$work/ab/auc.csv"
  check anomaly-bench-files test -s "$work/ab/roc-class-1.svg" -a -s "$work/ab/auc.md" -a -s "$work/ab/class-0/config.json"
  check anomaly-bench-one-class grep -q '"normal_class": 1' "$work/ab/class-1/config.json"
  expect anomaly-bench-bad-class 2 "--classes: '12' is not a class label in [0, 9]" -- anomaly-bench --classes 12 --out "$work/ab2"
  expect anomaly-bench-again 2 "already holds a benchmark" -- anomaly-bench --classes 0 --out "$work/ab"
  expect train-normal-and-exclude 1 "choose one" -- train --normal-class 1 --exclude-class 2 --epochs 1 --limit-batches 1 --out "$work/ne"
  grep -q "ROC" "$work/roc.svg" && grep -q "<polyline" "$work/roc.svg" || { echo "FAIL roc.svg has no ROC curve"; failures=$((failures + 1)); }
  grep -q "train loss (per step, smoothed)" "$work/run/loss.svg" && grep -q "train_curve" "$work/run/metrics.jsonl" ||
    { echo "FAIL loss.svg or metrics.jsonl lacks the per-step training loss"; failures=$((failures + 1)); }
  expect embed-short 0 '"samples":300,"dims":64' -- embed "$work/run" --limit 300 --out "$work/codes.csv" --json
  expect embed-summary 0 "code dims" -- embed "$work/run" --limit 300 --out "$work/codes.csv"
  expect classify-short 0 '"accuracy_latent"' -- classify "$work/run" --labels 5 --steps 20 --json
  expect export-short 0 "$work/run.onnx" -- export "$work/run" --out "$work/run.onnx" --part encoder --opset 15
  expect export-bad-opset 2 "--opset" -- export "$work/run" --out "$work/run.onnx" --opset 12
  expect export-bad-part 2 "--part" -- export "$work/run" --out "$work/run.onnx" --part middle
  expect export-no-folder 2 "folder '$work/nowhere' does not exist" -- export "$work/run" --out "$work/nowhere/m.onnx"
  expect train-existing 1 "already holds a run" -- train --model deep --epochs 1 --limit-batches 2 --out "$work/run"
  [ -s "$work/recon.png" ] || { echo "FAIL recon.png was not written"; failures=$((failures + 1)); }
else
  echo "skip short training run: /usr/share/datasets/fashion-mnist is missing (apt-get install dataset-fashion-mnist)"
fi
finish CLI
