#!/usr/bin/env bash
# bench/serve: `latent serve` under wrk on loopback: one JSON row of the deep autoencoder
# (784 values, about 7.8 KB) asking for `reconstruction`, at 1, 8 and 64 connections, DURATION
# seconds after a 2 s warm-up, REPS runs each; prints requests/s and p50/p99 latency per run and
# the medians. Beside it, in the same run and with the same request, the usual Python deployment:
# a Flask app around the PyTorch twin (bench/serve/flask_twin.py) under gunicorn with 2 sync
# workers, when python3-flask, gunicorn and python3-torch are installed (Debian); and KServe's own
# Python ModelServer around the same twin (bench/serve/kserve_twin.py, 2 uvicorn workers) from
# .venv-kserve (tools/setup_serve_venv.sh --kserve), or a printed reason why not. Each peer's
# reply is first compared with latent serve's (largest absolute difference of `reconstruction`).
# Besides wrk's figures, each run prints the server's CPU time per request (its processes' user +
# system time over the run / requests): on a shared machine that moves less than requests/s.
# Bounded: 3 x 3 x REPS x (DURATION + 2) seconds of wrk.
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
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
cpu_ticks() {  # user + system clock ticks of process $1 and its children
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do
    [ -r "/proc/$p/stat" ] && total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo $total
}
bench() {  # bench NAME URL (the server's pid in $server)
  local name=$1 url=$2 c t line c0 c1
  for c in 1 8 64; do
    t=$((c < 2 ? 1 : 2))
    BODY=$work/body.json wrk -t$t -c$c -d2s -s "$here/infer.lua" "$url" > /dev/null
    for rep in $(seq "$reps"); do
      c0=$(cpu_ticks $server)
      line=$(BODY=$work/body.json wrk -t$t -c$c -d${duration}s -s "$here/infer.lua" "$url" | grep '^RESULT')
      c1=$(cpu_ticks $server)
      echo "$name connections=$c run=$rep $line $(python3 -c "import sys; t, rps, d = map(float, sys.argv[1:]); print(f'cpu_us={t * 1e6 / $(getconf CLK_TCK) / max(rps * d, 1):.0f}')" $((c1 - c0)) "$(sed 's/.*rps=\([0-9.]*\).*/\1/' <<< "$line")" "$duration")"
    done | tee "$work/c$c"
    python3 - "$work/c$c" "$c" "$name" <<'PY'
import re, statistics, sys
rows = [dict(re.findall(r"(\w+)=([\d.]+)", l)) for l in open(sys.argv[1])]
med = lambda k: statistics.median(float(r[k]) for r in rows)
print(f"MEDIAN {sys.argv[3]} connections={sys.argv[2]} rps={med('rps'):.0f} p50_us={med('p50_us'):.0f} p99_us={med('p99_us'):.0f} cpu_us_per_request={med('cpu_us'):.0f}")
PY
  done
}

"$latent" serve "deep=$run" --port 0 ${SERVE_ARGS:-} > "$work/out" 2> "$work/err" &
server=$!
for _ in $(seq 50); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/out")
echo "latent serve at $url (${SERVE_ARGS:-default options})"
curl -s -X POST -H 'Content-Type: application/json' --data-binary @"$work/body.json" "$url/v2/models/deep/infer" > "$work/latent_reply.json"
bench latent "$url/v2/models/deep/infer"
kill -TERM $server
wait $server && echo "latent serve exited 0 on SIGTERM"
same_reply() {  # same_reply NAME URL: the peer's reconstruction against latent serve's
  curl -s -X POST -H 'Content-Type: application/json' --data-binary @"$work/body.json" "$2" > "$work/peer_reply.json"
  python3 - "$work/latent_reply.json" "$work/peer_reply.json" "$1" <<'PY'
import json, sys
out = lambda path: next(o["data"] for o in json.load(open(path))["outputs"] if o["name"] == "reconstruction")
a, b = out(sys.argv[1]), out(sys.argv[2])
assert len(a) == len(b), (len(a), len(b))
print(f"{sys.argv[3]} answers like latent serve: largest |difference| in reconstruction {max(abs(x - y) for x, y in zip(a, b)):.2e}")
PY
}

if command -v gunicorn > /dev/null && /usr/bin/python3 -c 'import flask, torch' 2> /dev/null; then
  LATENT_RUN=$run gunicorn -w 2 -b 127.0.0.1:8917 --chdir "$here" flask_twin:app > "$work/gunicorn.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do curl -s -o /dev/null 127.0.0.1:8917/ && break; sleep 0.2; done
  echo "Flask + PyTorch twin under gunicorn (2 sync workers) at http://127.0.0.1:8917"
  same_reply flask "http://127.0.0.1:8917/v2/models/deep/infer"
  bench flask "http://127.0.0.1:8917/v2/models/deep/infer"
  kill -TERM $server
  wait $server || true
else
  echo "skip Flask baseline: needs gunicorn, python3-flask and python3-torch (Debian)"
fi

kserve_python=${KSERVE_PYTHON:-$here/../../.venv-kserve/bin/python}
if [ ! -x "$kserve_python" ]; then
  echo "skip KServe baseline: no $kserve_python (tools/setup_serve_venv.sh --kserve makes .venv-kserve)"
elif ! "$kserve_python" -c 'import kserve, torch' 2> "$work/kserve_import.log"; then
  echo "skip KServe baseline: 'import kserve, torch' fails in $kserve_python: $(tail -1 "$work/kserve_import.log")"
else
  LATENT_RUN=$run "$kserve_python" "$here/kserve_twin.py" --http_port 8918 --workers 2 --enable_grpc false \
    --enable_latency_logging false > "$work/kserve.log" 2>&1 &
  server=$!
  # Two worker processes importing torch and kserve: up to a minute on a loaded machine.
  for _ in $(seq 300); do curl -s -o /dev/null 127.0.0.1:8918/v2/health/ready && break; sleep 0.2; done
  echo "KServe $("$kserve_python" -c 'import importlib.metadata as m; print(m.version("kserve"))') ModelServer + PyTorch twin (2 uvicorn workers) at http://127.0.0.1:8918"
  same_reply kserve "http://127.0.0.1:8918/v2/models/deep/infer"
  bench kserve "http://127.0.0.1:8918/v2/models/deep/infer"
  kill -TERM $server
  wait $server || true
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
