#!/usr/bin/env bash
# Builds the API reference from the installed headers' doc comments with Doxygen, and checks that
# every public name is documented unless docs/api_undocumented.txt lists it (the names that were
# undocumented when the check began; document them and delete their lines).
# usage: api_docs.sh BUILD_DIR OUT_DIR            the HTML reference in OUT_DIR/html
#        api_docs.sh BUILD_DIR OUT_DIR --check    also fail on a new undocumented name
#        api_docs.sh BUILD_DIR OUT_DIR --baseline rewrite docs/api_undocumented.txt
set -euo pipefail
build=$(cd "$1" && pwd)
out=$2
mode=${3:-}
src=$(cd "$(dirname "$0")/.." && pwd)
command -v doxygen > /dev/null || { echo "SKIPPED: doxygen is not installed (apt-get install doxygen)"; exit 77; }
source "$src/tests/stage_install.sh"
stage_install "$build"
include=$(find "$stage" -type d -path '*/include/latent' -print -quit)
[ -n "$include" ] || { echo "include/latent was not installed"; exit 1; }
mkdir -p "$out"
log=$out/warnings.txt
{ cat "$src/docs/Doxyfile"
  echo "INPUT = $include $src/docs/api_mainpage.dox"
  echo "FILE_PATTERNS = *.h *.dox"
  echo "OUTPUT_DIRECTORY = $out"
  echo "WARN_LOGFILE = $log"
  echo "STRIP_FROM_PATH = $include"; } > "$out/Doxyfile"
(cd "$out" && doxygen Doxyfile > /dev/null)
echo "API reference: $out/html/index.html"
# "PATH:LINE: warning: Member x (function) of class y is not documented." -> "models/run.h: Member x ..."
found=$(grep 'is not documented' "$log" | sed -e "s|^$include/||" -e 's|^\([^:]*\):[0-9]*: warning: |\1: |' | sort -u)
baseline=$src/docs/api_undocumented.txt
if [ "$mode" = --baseline ]; then
  { echo "# Public names of the installed headers without a doc comment (tools/api_docs.sh --check"
    echo "# fails on any other). Document one, then delete its line."
    echo "$found"; } > "$baseline"
  echo "wrote $baseline ($(echo "$found" | grep -c .) names)"
elif [ "$mode" = --check ]; then
  known=$(grep -v '^#' "$baseline" | sort -u)
  new=$(comm -23 <(echo "$found") <(echo "$known") | grep . || true)
  gone=$(comm -13 <(echo "$found") <(echo "$known") | grep . || true)
  if [ -n "$gone" ]; then
    echo "now documented (delete these lines from docs/api_undocumented.txt):"
    echo "$gone" | sed 's/^/  /'
  fi
  if [ -n "$new" ]; then
    echo "FAIL: public names without a doc comment (add a /// comment in the header):"
    echo "$new" | sed 's/^/  /'
    exit 1
  fi
  echo "every public name is documented or listed in docs/api_undocumented.txt ($(echo "$found" | grep -c . || true) listed)"
fi
