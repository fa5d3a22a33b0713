#!/bin/bash
# Model selection for the one-class anomaly table (docs/benchmarks.md, "One-class anomaly
# detection"): each configuration runs `latent anomaly-bench --validation 10000` on all ten
# Fashion-MNIST classes, so it is scored on 10,000 held-out *training* images and the test labels
# are never read. Prints one line per configuration: its mean validation AUC.
# Usage: bench/anomaly_select.sh LATENT_BINARY OUT_DIR ["CONFIG" ...]   (CONFIG: anomaly-bench flags)
set -euo pipefail
latent=$1 out=$2
shift 2
configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then
  configs=("--model deep --epochs 10" "--model conv --epochs 10" "--model vae --epochs 10" "--model conv-vae --epochs 10")
fi
mkdir -p "$out"
i=0
for c in "${configs[@]}"; do
  i=$((i + 1))
  dir="$out/config-$i"
  rm -rf "$dir"
  # shellcheck disable=SC2086
  "$latent" anomaly-bench $c --validation 10000 --out "$dir" --quiet --json >"$dir.json" 2>"$dir.log"
  mean=$(python3 -c "import json,sys; print('%.4f' % json.load(open(sys.argv[1]))['mean_auc'])" "$dir.json")
  echo "$mean  $c"
done
