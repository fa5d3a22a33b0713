#!/usr/bin/env bash
# bench/serve: `latent serve` under wrk on loopback: one JSON row of the deep autoencoder
# (784 values, about 7.8 KB) asking for `reconstruction`, at 1, 8 and 64 connections, DURATION
# seconds after a 2 s warm-up, REPS runs each; prints requests/s and p50/p99 latency per run and
# the medians. Beside it, in the same run and with the same request, the usual Python deployment:
# a Flask app around the PyTorch twin (bench/serve/flask_twin.py) under gunicorn with 2 sync
# workers, when python3-flask, gunicorn and python3-torch are installed (Debian).
# Bounded: 2 x 3 x REPS x (DURATION + 2) seconds of wrk.
# usage: bench/serve/run.sh PATH_TO_LATENT [RUN_DIR]   (env: DURATION=10 REPS=3 SERVE_ARGS=...)
set -euo pipefail
latent=$1
duration=${DURATION:-10}
reps=${REPS:-3}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
run=${2:-}
if [ -z "$run" ]; then
  run=$work/deep
  "$latent" train --model deep --epochs 1 --limit-batches 3 --quiet --out "$run" >/dev/null
fi
# One Fashion-MNIST-sized row: 784 values written with 6 decimals.
python3 -c "
import json, random
r = random.Random(0)
print(json.dumps({'inputs': [{'name': 'input', 'shape': [1, 784], 'datatype': 'FP32',
                              'data': [round(255 * r.random(), 6) for _ in range(784)]}], 'outputs': [{'name': 'reconstruction'}]}))" > "$work/body.json"
echo "request body: $(wc -c < "$work/body.json") bytes"
bench() {  # bench NAME URL
  local name=$1 url=$2 c t line
  for c in 1 8 64; do
    t=$((c < 2 ? 1 : 2))
    BODY=$work/body.json wrk -t$t -c$c -d2s -s "$here/infer.lua" "$url" > /dev/null
    for rep in $(seq "$reps"); do
      line=$(BODY=$work/body.json wrk -t$t -c$c -d${duration}s -s "$here/infer.lua" "$url" | grep '^RESULT')
      echo "$name connections=$c run=$rep $line"
    done | tee "$work/c$c"
    python3 - "$work/c$c" "$c" "$name" <<'PY'
import re, statistics, sys
rows = [dict(re.findall(r"(\w+)=([\d.]+)", l)) for l in open(sys.argv[1])]
med = lambda k: statistics.median(float(r[k]) for r in rows)
print(f"MEDIAN {sys.argv[3]} connections={sys.argv[2]} rps={med('rps'):.0f} p50_us={med('p50_us'):.0f} p99_us={med('p99_us'):.0f}")
PY
  done
}

"$latent" serve "deep=$run" --port 0 ${SERVE_ARGS:-} > "$work/out" 2> "$work/err" &
server=$!
for _ in $(seq 50); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/out")
echo "latent serve at $url (${SERVE_ARGS:-default options})"
bench latent "$url/v2/models/deep/infer"
kill -TERM $server
wait $server && echo "latent serve exited 0 on SIGTERM"

if command -v gunicorn > /dev/null && /usr/bin/python3 -c 'import flask, torch' 2> /dev/null; then
  LATENT_RUN=$run gunicorn -w 2 -b 127.0.0.1:8917 --chdir "$here" flask_twin:app > "$work/gunicorn.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do curl -s -o /dev/null 127.0.0.1:8917/ && break; sleep 0.2; done
  echo "Flask + PyTorch twin under gunicorn (2 sync workers) at http://127.0.0.1:8917"
  bench flask "http://127.0.0.1:8917/v2/models/deep/infer"
  kill -TERM $server
  wait $server || true
else
  echo "skip Flask baseline: needs gunicorn, python3-flask and python3-torch (Debian)"
fi
