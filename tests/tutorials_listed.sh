#!/usr/bin/env bash
# Every numbered page of docs/tutorials has its meson test: fails naming a page that is not in the
# `tutorials` list of tests/meson.build.
# usage: tutorials_listed.sh DOCS_TUTORIALS_DIR LISTED_NAME...
set -euo pipefail
dir=$1
shift
missing=0
for page in "$dir"/[0-9]*.md; do
  name=$(basename "$page" .md)
  listed=0
  for n in "$@"; do [ "$n" = "$name" ] && listed=1; done
  [ "$listed" = 1 ] || { echo "docs/tutorials/$name.md has no test: add '$name' to tutorials in tests/meson.build"; missing=1; }
done
[ "$missing" = 0 ] && echo "$# tutorial pages, each with its test"
exit $missing
