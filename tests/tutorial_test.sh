#!/usr/bin/env bash
# One tutorial page as a test: installs the build into a staging directory, joins the page's
# ```cpp blocks in order into one program, builds it against the installed tree through pkg-config
# (as a user of an installed latent would) and runs it. The page's checks:
#   <!-- expect: TEXT -->                the output holds a line containing TEXT
#   <!-- expect-approx: NAME VALUE TOL --> an output line holds the word NAME followed by a number
#                                        x (the last such line; a trailing , ; : or ) is
#                                        dropped), and |x - VALUE| <= TOL
#   <!-- mpirun: N -->                  run under `mpirun -np N` where mpirun is installed (as one
#                                        process where it is not)
# With LATENT_TUTORIAL_PICTURES=1 the PNG and SVG files the program writes are copied next to the
# page (docs/tutorials/pictures/; files named after the page, such as 10-reconstructions.png), which is how the committed pictures are made.
# usage: tutorial_test.sh BUILD_DIR PAGE.md
set -euo pipefail
build=$1
page=$2
name=$(basename "$page" .md)
source "$(dirname "$0")/stage_install.sh"
stage_install "$build"
work=$stage/work
mkdir -p "$work"
awk '/^```cpp$/{on=1; next} /^```$/{on=0} on' "$page" > "$work/$name.cpp"
[ -s "$work/$name.cpp" ] || { echo "tutorial $name: no C++ blocks"; exit 1; }
c++ -std=c++20 -O1 "$work/$name.cpp" -o "$work/$name" $(pkg-config --cflags --libs latent)
launch=()
ranks=$(sed -n 's/^<!-- mpirun: \([0-9]*\) -->$/\1/p' "$page")
if [ -n "$ranks" ] && command -v mpirun >/dev/null; then
  launch=(mpirun --allow-run-as-root --oversubscribe --mca btl self,vader -x LD_LIBRARY_PATH -x LATENT_NUM_THREADS -np "$ranks")
fi
start=$(date +%s%N)
(cd "$work" && LD_LIBRARY_PATH=$libdir LATENT_NUM_THREADS=1 PATH=$(dirname "$build/tools/latent"):$PATH "${launch[@]}" "./$name") \
  > "$work/$name.out" 2>&1 || { cat "$work/$name.out"; echo "tutorial $name: the program failed"; exit 1; }
cat "$work/$name.out"
awk -v a="$start" -v b="$(date +%s%N)" -v n="$name" 'BEGIN { printf "tutorial %s ran in %.1f s\n", n, (b - a) / 1e9 }'
status=0
while IFS= read -r want; do
  grep -qF -- "$want" "$work/$name.out" || { echo "tutorial $name: expected output line missing: $want"; status=1; }
done < <(sed -n 's/^<!-- expect: \(.*\) -->$/\1/p' "$page")
while read -r key value tol; do
  got=$(awk -v k="$key" '{ for (i = 1; i < NF; ++i) if ($i == k) { v = $(i + 1); sub(/[,;:)]+$/, "", v)
    if (v ~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/) last = v } } END { if (last != "") print last }' "$work/$name.out")
  if [ -z "$got" ]; then
    echo "tutorial $name: no output line with '$key' followed by a number"; status=1
  elif ! awk -v g="$got" -v v="$value" -v t="$tol" 'BEGIN { d = g - v; if (d < 0) d = -d; exit !(d <= t) }'; then
    echo "tutorial $name: $key is $got, expected $value +- $tol"; status=1
  else
    echo "ok $key $got (expected $value +- $tol)"
  fi
done < <(sed -n 's/^<!-- expect-approx: \(.*\) -->$/\1/p' "$page")
if [ "${LATENT_TUTORIAL_PICTURES:-0}" = 1 ]; then
  dest=$(dirname "$page")/pictures
  mkdir -p "$dest"
  find "$work" -maxdepth 1 \( -name '[0-9]*.png' -o -name '[0-9]*.svg' \) -exec cp {} "$dest/" \;
  echo "pictures copied to $dest"
fi
exit $status
