#!/usr/bin/env bash
# The commands the README claims, run on a tiny VAE run (Fashion-MNIST, class 5 left out of
# training) and checked by value: `sample` and `interpolate` write PNGs of the grid's size whose
# images are not constant (decoded here with Python's zlib); `eval --iw-samples 5` gives a finite
# -log p(x) estimate no greater than the negative ELBO; `embed` writes one CSV row per sample and an
# SVG with one point per row in its label's colour; `classify --labels 10` gives accuracies in [0, 1];
# `anomaly` reports the precision, recall and ROC AUC that this test recomputes from the scores it
# wrote. Exits 77 (skipped) without Fashion-MNIST.
# usage: features_test.sh PATH_TO_LATENT
set -u
latent=$1
fm=/usr/share/datasets/fashion-mnist
if [ ! -d "$fm" ]; then
  echo "SKIP: $fm is not installed (apt-get install dataset-fashion-mnist)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/expect.sh"
py=/usr/bin/python3

expect train-vae 0 "run saved in" -- train --model vae --epochs 1 --limit-batches 20 --limit-test 300 --exclude-class 5 \
  --quiet --out "$work/vae" --threads 1

# A grayscale PNG: its size, and that every cell of the grid (28x28, 2-pixel gaps) is not constant.
png_check() {  # png_check FILE WIDTH HEIGHT CELLS COLUMNS
  "$py" - "$@" <<'EOF'
import struct, sys, zlib
path, width, height, cells, columns = sys.argv[1], *map(int, sys.argv[2:])
data = open(path, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, ihdr = 8, b"", None
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR": ihdr = struct.unpack(">IIBBBBB", body)
    if kind == b"IDAT": idat += body
    pos += 12 + n
w, h, depth, color = ihdr[:4]
assert (w, h) == (width, height), f"size {w}x{h}, expected {width}x{height}"
assert (depth, color) == (8, 0), f"bit depth {depth}, colour type {color}: expected 8-bit gray"
raw, rows, prev = zlib.decompress(idat), [], [0] * w
for r in range(h):  # undo the per-row filters (PNG spec, section 9)
    f, line = raw[r * (w + 1)], list(raw[r * (w + 1) + 1:(r + 1) * (w + 1)])
    for i in range(w):
        a, b, c = line[i - 1] if i else 0, prev[i], prev[i - 1] if i else 0
        p = a + b - c
        pred = [0, a, b, (a + b) // 2, a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c][f]
        line[i] = (line[i] + pred) & 255
    rows.append(line)
    prev = line
# The gaps are the grid's background, 0.25 gray (64): also a check of the decoding above.
assert rows[0][0] == rows[h - 1][w - 1] == rows[h // 2][1] == 64, (rows[0][0], rows[h - 1][w - 1], rows[h // 2][1])
for k in range(cells):
    top, left = 2 + (k // columns) * 30, 2 + (k % columns) * 30
    cell = [rows[top + y][left + x] for y in range(28) for x in range(28)]
    assert max(cell) - min(cell) >= 16, f"cell {k} is (nearly) constant: {min(cell)}..{max(cell)}"
EOF
}
# 12 samples in rows of 8: 8 * 28 + 9 * 2 = 242 wide, 2 * 28 + 3 * 2 = 62 high.
expect sample 0 "wrote $work/samples.png (12 samples)" -- sample "$work/vae" --n 12 --seed 3 --out "$work/samples.png"
check sample-png png_check "$work/samples.png" 242 62 12 8
expect sample-seeded 0 "wrote" -- sample "$work/vae" --n 12 --seed 3 --out "$work/samples2.png"
check sample-same-seed-same-png cmp -s "$work/samples.png" "$work/samples2.png"
expect sample-other-seed 0 "wrote" -- sample "$work/vae" --n 12 --seed 4 --out "$work/samples3.png"
check sample-other-seed-differs bash -c "! cmp -s '$work/samples.png' '$work/samples3.png'"
# 6 steps in one row: 6 * 28 + 7 * 2 = 182 by 28 + 2 * 2 = 32.
expect interpolate 0 "wrote $work/interp.png (6 steps from test image 0 to" -- interpolate "$work/vae" --steps 6 --out "$work/interp.png"
check interpolate-png png_check "$work/interp.png" 182 32 6 6

# eval: the importance-weighted estimate of -log p(x) (K = 5) is a tighter bound than the negative ELBO.
"$latent" eval "$work/vae" --limit 300 --iw-samples 5 --json > "$work/eval.json" 2> "$work/eval.err"
check eval-iw-runs test $? -eq 0
check eval-iw-values "$py" -c '
import json, math, sys
v = json.load(open(sys.argv[1]))
assert v["samples"] == 300, v
elbo, iw = v["test_loss"], v["iw_nll"]
assert math.isfinite(iw) and math.isfinite(elbo), v
assert 0 < iw <= elbo, f"-log p(x) estimate {iw} is not in (0, -ELBO {elbo}]"
' "$work/eval.json"

# embed: 20-dimensional codes, one CSV row and one SVG point per sample, coloured by label (the
# legend's markers have radius 5; the points are smaller).
expect embed 0 '"samples":250,"dims":20' -- embed "$work/vae" --limit 250 --out "$work/codes.csv" --json
check embed-csv-and-svg "$py" -c '
import collections, csv, math, re, sys
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0] == [f"z{j}" for j in range(20)] + ["label"], rows[0]
assert len(rows) == 251, len(rows)
for r in rows[1:]:
    assert len(r) == 21 and all(math.isfinite(float(x)) for x in r[:20]) and 0 <= int(r[20]) <= 9, r
palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
circles = re.findall(r"<circle cx=\"([-0-9.]+)\" cy=\"([-0-9.]+)\" r=\"([0-9.]+)\" fill=\"(#[0-9a-f]{6})\"", open(sys.argv[2]).read())
points = [c for c in circles if c[2] != "5"]
assert len(points) == 250, f"{len(points)} points for 250 rows"
assert collections.Counter(p[3] for p in points) == collections.Counter(palette[int(r[20])] for r in rows[1:]), \
    "point colours do not follow the labels"
assert len({(p[0], p[1]) for p in points}) > 200, "the points collapse"
' "$work/codes.csv" "$work/codes.svg"

# classify: 10 labelled images per class; both accuracies are fractions, and beat chance (0.1).
"$latent" classify "$work/vae" --labels 10 --steps 60 --json > "$work/classify.json" 2> "$work/classify.err"
check classify-runs test $? -eq 0
check classify-values "$py" -c '
import json, sys
v = json.load(open(sys.argv[1]))
assert v["labels_per_class"] == 10 and v["labelled_samples"] == 100 and v["test_samples"] == 10000, v
for key in ("accuracy_latent", "accuracy_raw"):
    assert 0.0 <= v[key] <= 1.0, (key, v[key])
    assert v[key] > 0.2, (key, v[key])
    assert abs(v[key] * 10000 - round(v[key] * 10000)) < 1e-6, (key, "not a count of 10000")
' "$work/classify.json"

# anomaly: precision, recall and ROC AUC recomputed here from the written errors, flags and labels.
"$latent" anomaly "$work/vae" --limit 1000 --anomaly-class 5 --out "$work/scores.csv" --json > "$work/anomaly.json" 2> "$work/anomaly.err"
check anomaly-runs test $? -eq 0
check anomaly-values "$py" -c '
import csv, json, sys
v = json.load(open(sys.argv[1]))
rows = list(csv.DictReader(open(sys.argv[2])))
assert len(rows) == v["samples"] == 1000, (len(rows), v["samples"])
err = [float(r["error"]) for r in rows]
flag = [int(r["flagged"]) for r in rows]
pos = [int(r["label"]) == 5 for r in rows]
t = v["threshold"]
# The flags follow the threshold (up to the 6 digits the CSV keeps).
assert all(f == (e > t) for e, f in zip(err, flag) if abs(e - t) > 1e-5 * t), "flags do not follow the threshold"
assert sum(flag) == v["flagged"], (sum(flag), v["flagged"])
tp = sum(f and p for f, p in zip(flag, pos)); fp = sum(f and not p for f, p in zip(flag, pos))
fn = sum(p and not f for f, p in zip(flag, pos))
precision, recall = tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn)
# ROC AUC: the probability that an anomaly scores above a normal sample (ties count one half).
a = [e for e, p in zip(err, pos) if p]; n = [e for e, p in zip(err, pos) if not p]
auc = sum((x > y) + 0.5 * (x == y) for x in a for y in n) / (len(a) * len(n))
print(f"tp {tp} fp {fp} fn {fn}: precision {precision:.4f} recall {recall:.4f} auc {auc:.4f}; latent: {v}")
assert abs(precision - v["precision"]) < 1e-9 and abs(recall - v["recall"]) < 1e-9, "precision/recall differ"
assert abs(auc - v["roc_auc"]) < 1e-3, "ROC AUC differs"  # the CSV rounds errors to 6 digits: rare new ties
assert 0 < precision < 1 and 0 < recall < 1 and 0.5 < auc < 1, "a degenerate detector: the check would be weak"
' "$work/anomaly.json" "$work/scores.csv"

finish feature
