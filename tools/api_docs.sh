#!/usr/bin/env bash
# Builds the API reference from the installed headers' doc comments with Doxygen, and fails on any
# Doxygen warning: a public name without a doc comment, a malformed comment, an HTML-looking
# `<word>` (docs/Doxyfile sets WARN_AS_ERROR = FAIL_ON_WARNINGS; the HTML is still written).
# usage: api_docs.sh BUILD_DIR OUT_DIR            the HTML reference in OUT_DIR/html
#        api_docs.sh BUILD_DIR OUT_DIR --check    also check that the reference has its pages
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
status=0
(cd "$out" && doxygen Doxyfile > /dev/null) || status=$?
echo "API reference: $out/html/index.html"
if [ -s "$log" ] || [ "$status" != 0 ]; then
  echo "FAIL: doxygen warnings (document each name in its header with a /// comment; see docs/design.md \"API reference\"):"
  sed -E -e "s|^$include/||" -e 's/^([^:]*:[0-9]+): (warning|error): /  \1: /' "$log"
  exit 1
fi
if [ "$mode" = --check ]; then
  # The reference holds the pages a reader starts from (a Doxyfile that matched no header would
  # warn about nothing).
  for page in index.html namespacelatent.html classlatent_1_1Tensor.html classlatent_1_1models_1_1Autoencoder.html; do
    [ -s "$out/html/$page" ] || { echo "FAIL: the reference has no $page"; exit 1; }
  done
  # Doxygen does not warn about the members of an undocumented namespace (it leaves them out), so
  # every namespace the headers open must have its page: a /// line above it, or a \namespace
  # paragraph in docs/api_mainpage.dox.
  missing=""
  for ns in $(grep -rhoE '^\s*namespace [A-Za-z_][A-Za-z0-9_:]* \{' "$include" | sed -E 's/.*namespace ([A-Za-z0-9_:]+) \{/\1/' |
              tr ':' '\n' | grep . | grep -vx detail | sort -u); do
    page=${ns//_/__}  # Doxygen's file names double underscores
    compgen -G "$out/html/namespace$page.html" > /dev/null || compgen -G "$out/html/namespace*_1_1$page.html" > /dev/null ||
      missing="$missing $ns"
  done
  if [ -n "$missing" ]; then
    echo "FAIL: namespaces without a doc comment (Doxygen skips their members unchecked):$missing"
    exit 1
  fi
  echo "every public name of the $(find "$include" -name '*.h' | wc -l) installed headers is documented (no doxygen warnings)"
fi
