#!/usr/bin/env bash
# Compiles and runs every tutorial in docs/tutorials/: the ```cpp blocks of one page, joined in
# order, are one program. Each `<!-- expect: TEXT -->` line of the page must appear in the
# program's output, and the program must exit 0. A page with `<!-- mpirun: N -->` runs under
# `mpirun -np N` where mpirun is installed (and as one process where it is not).
# usage: tutorials.sh WORK_DIR LIBDIR -- COMPILER_FLAGS...   (flags as pkg-config prints them)
set -euo pipefail
work=$1
libdir=$2
shift 2
[ "${1:-}" = "--" ] && shift
docs=$(cd "$(dirname "$0")/../docs/tutorials" && pwd)
count=0
for page in "$docs"/[0-9]*.md; do
  name=$(basename "$page" .md)
  awk '/^```cpp$/{on=1; next} /^```$/{on=0} on' "$page" > "$work/$name.cpp"
  [ -s "$work/$name.cpp" ] || { echo "tutorial $name: no C++ blocks"; exit 1; }
  echo "== tutorial $name"
  c++ -std=c++20 -O1 "$work/$name.cpp" -o "$work/$name" "$@"
  launch=()
  ranks=$(sed -n 's/^<!-- mpirun: \([0-9]*\) -->$/\1/p' "$page")
  if [ -n "$ranks" ] && command -v mpirun >/dev/null; then
    launch=(mpirun --allow-run-as-root --oversubscribe --mca btl self,vader -x LD_LIBRARY_PATH -x LATENT_NUM_THREADS -np "$ranks")
  fi
  (cd "$work" && LD_LIBRARY_PATH=$libdir LATENT_NUM_THREADS=1 "${launch[@]}" "./$name") > "$work/$name.out" 2>&1 || {
    cat "$work/$name.out"; echo "tutorial $name: the program failed"; exit 1; }
  cat "$work/$name.out"
  while IFS= read -r want; do
    grep -qF -- "$want" "$work/$name.out" || { echo "tutorial $name: expected output line missing: $want"; exit 1; }
  done < <(sed -n 's/^<!-- expect: \(.*\) -->$/\1/p' "$page")
  count=$((count + 1))
done
echo "$count tutorials compiled and ran"
