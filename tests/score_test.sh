#!/usr/bin/env bash
# `latent score` and --data on the other commands, as a user meets them: a CSV run scoring a new
# file with permuted columns and one row, image runs scoring PNG files, IDX files and folders, and
# every bad input giving one line naming the file, exit code 1 (2 for bad flags) and no output file.
# usage: score_test.sh PATH_TO_LATENT
set -u
latent=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/expect.sh"

# ---------------------------------------------------------------- a CSV run
awk 'BEGIN { srand(4); print "f1,f2,f3,f4,label";
  for (i = 0; i < 300; i++) { c = i % 2; printf "%.5f,%.5f,%.5f,%.5f,%d\n", rand() + 3 * c, 10 * rand(), rand() - c, 100 * rand(), c } }' \
  > "$work/table.csv"
expect train-csv 0 "run saved in" -- train --model deep --data "$work/table.csv" --label-column label --epochs 2 \
  --batch-size 32 --quiet --out "$work/csvrun" --threads 1
check config-has-preprocessing grep -q '"preprocessing"' "$work/csvrun/config.json"
expect score-csv 0 "scored 300 samples from $work/table.csv" -- score "$work/csvrun" --data "$work/table.csv" --out "$work/all.csv"
check score-csv-rows test "$(wc -l < "$work/all.csv")" -eq 301
check score-csv-header test "$(head -1 "$work/all.csv")" = "index,error,is_anomaly,label"
# Row 42 of the file with its columns permuted and no label, as a one-row file.
awk -F, 'NR == 1 { print "f4,f2,label_free,f1,f3" } NR == 44 { print $4 "," $2 ",7," $1 "," $3 }' "$work/table.csv" > "$work/one.csv"
expect score-extra-column 1 "column 'label_free' was not in the training data" -- score "$work/csvrun" --data "$work/one.csv" --out "$work/one_scores.csv"
check no-partial-output test ! -e "$work/one_scores.csv"
expect score-one-row 0 "scored 1 sample" -- score "$work/csvrun" --data "$work/one.csv" --ignore-extra-columns --out "$work/one_scores.csv" --codes
row_error=$(awk -F, 'NR == 44 { print $2 }' "$work/all.csv")
one_error=$(awk -F, 'NR == 2 { print $2 }' "$work/one_scores.csv")
check one-row-equals-whole-file awk -v a="$row_error" -v b="$one_error" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-6 * (a > 1 ? a : 1)) }'
check codes-columns test "$(head -1 "$work/one_scores.csv" | tr ',' '\n' | grep -c '^z')" -eq 64
expect score-stdout 0 "index,error,is_anomaly" -- score "$work/csvrun" --data "$work/one.csv" --ignore-extra-columns --out -
expect anomaly-new-data 0 '"samples":1' -- anomaly "$work/csvrun" --data "$work/one.csv" --ignore-extra-columns --json
expect eval-new-data 0 '"samples":300' -- eval "$work/csvrun" --data "$work/table.csv" --json

printf '' > "$work/empty.csv"
expect bad-empty 1 "$work/empty.csv: the file is empty" -- score "$work/csvrun" --data "$work/empty.csv" --out "$work/s.csv"
printf 'f1,f2,f3,f4\n' > "$work/header.csv"
expect bad-header-only 1 "$work/header.csv: no data rows after the header" -- score "$work/csvrun" --data "$work/header.csv" --out "$work/s.csv"
printf 'f1,f2,f3,f4\n1,2,3,4\n1,2,3\n' > "$work/ragged.csv"
expect bad-ragged 1 "$work/ragged.csv: line 3 has 3 fields, expected 4" -- score "$work/csvrun" --data "$work/ragged.csv" --out "$work/s.csv"
printf 'f1,f2,f3,f4\n1,NaN,3,4\n' > "$work/nan.csv"
expect bad-nan 1 "line 2, column 2 ('f2'): 'NaN' is not a finite number" -- score "$work/csvrun" --data "$work/nan.csv" --out "$work/s.csv"
printf 'f1,f2,f3,f4\n1,2,-inf,4\n' > "$work/inf.csv"
expect bad-inf 1 "line 2, column 3 ('f3'): '-inf' is not a finite number" -- score "$work/csvrun" --data "$work/inf.csv" --out "$work/s.csv"
printf 'f1,f2,f4\n1,2,4\n' > "$work/missing.csv"
expect bad-missing-column 1 "column 'f3' of the training data is missing" -- score "$work/csvrun" --data "$work/missing.csv" --out "$work/s.csv"
printf 'f1,f2,f3,f4\n1,2,x,4\n' > "$work/text.csv"
expect bad-non-numeric 1 "line 2, column 3 ('f3'): 'x' is not a number" -- score "$work/csvrun" --data "$work/text.csv" --out "$work/s.csv"
check no-output-after-errors test ! -e "$work/s.csv"
expect bad-missing-file 1 "$work/nope.csv: no such file or folder" -- score "$work/csvrun" --data "$work/nope.csv"
expect bad-no-data-flag 2 "score: --data PATH is required" -- score "$work/csvrun"
expect bad-flag 2 "unknown option '--bogus'" -- score "$work/csvrun" --data "$work/table.csv" --bogus
expect bad-batch-size 2 "--batch-size" -- score "$work/csvrun" --data "$work/table.csv" --batch-size 0
expect score-missing-run 2 "run directory '$work/none' does not exist" -- score "$work/none" --data "$work/table.csv"
expect score-help 0 "usage: latent score RUN --data PATH" -- score --help
# A run from before stored statistics: CSV data is refused, never scaled differently.
mkdir -p "$work/oldrun"
cp "$work/csvrun/model.safetensors" "$work/oldrun/"
/usr/bin/python3 - "$work/csvrun/config.json" "$work/oldrun/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
del c["preprocessing"]
json.dump(c, open(sys.argv[2], "w"))
EOF
expect legacy-csv-run 1 "retrain: this run has no stored column statistics" -- score "$work/oldrun" --data "$work/table.csv"

# ---------------------------------------------------------------- an image run
fm=/usr/share/datasets/fashion-mnist
if [ -d "$fm" ]; then
  expect train-images 0 "run saved in" -- train --model deep --epochs 1 --limit-batches 3 --limit-test 200 --quiet --out "$work/imgrun" --threads 1
  expect score-fashion-folder 0 "scored 10000 samples from the Fashion-MNIST test set" -- score "$work/imgrun" --data "$fm" --out "$work/fm.csv"
  check fashion-label-column test "$(head -1 "$work/fm.csv")" = "index,error,is_anomaly,label"
  expect score-idx 0 "scored 10000 samples" -- score "$work/imgrun" --data "$fm/t10k-images-idx3-ubyte.gz" --out "$work/idx.csv"
  check idx-equals-folder test "$(cut -d, -f1-3 "$work/idx.csv" | tail -n +2 | md5sum)" = "$(cut -d, -f1-3 "$work/fm.csv" | tail -n +2 | md5sum)"
  # A picture of the wrong size (the reconstruction grid), a corrupt PNG and a truncated one.
  expect reconstruct 0 "wrote" -- reconstruct "$work/imgrun" --out "$work/grid.png" --n 4
  mkdir -p "$work/pngs"
  expect bad-png-size 1 "the model takes 28x28" -- score "$work/imgrun" --data "$work/grid.png" --out "$work/s.csv"
  head -c 60 "$work/grid.png" > "$work/pngs/cut.png"
  expect bad-png-truncated 1 "[png] $work/pngs/cut.png: " -- score "$work/imgrun" --data "$work/pngs" --out "$work/s.csv"
  printf 'not a png at all' > "$work/pngs/cut.png"
  expect bad-png-corrupt 1 "$work/pngs/cut.png: not a PNG file" -- score "$work/imgrun" --data "$work/pngs/cut.png" --out "$work/s.csv"
  mkdir -p "$work/nothing"
  expect bad-empty-folder 1 "holds no *.png files" -- score "$work/imgrun" --data "$work/nothing" --out "$work/s.csv"
  expect bad-csv-for-images 1 "a CSV file, but the run was trained on 28x28 images" -- score "$work/imgrun" --data "$work/table.csv" --out "$work/s.csv"
  check no-output-after-image-errors test ! -e "$work/s.csv"
else
  echo "SKIP image-run checks: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"
fi

finish score
