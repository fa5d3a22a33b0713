#!/usr/bin/env bash
# Installs the build into a staging directory and builds a tiny out-of-tree program against it
# through pkg-config, the way a user of an installed latent would.
# It also compiles and runs the first C++ snippet of README.md, so the README stays true (each
# tutorial page is its own test: tests/tutorial_test.sh).
# usage: install_consumer.sh BUILD_DIR CONSUMER_SOURCE_DIR
set -euo pipefail
build=$1
src=$2
source "$(dirname "$0")/stage_install.sh"
stage_install "$build"
header=$(find "$stage" -path '*/include/latent/latent.h' -print -quit)
[ -n "$header" ] || { echo "include/latent/latent.h was not installed"; exit 1; }
c++ -std=c++20 "$src/consumer.cpp" -o "$stage/consumer" $(pkg-config --cflags --libs latent)
LD_LIBRARY_PATH=$libdir "$stage/consumer"

readme=$src/../../README.md
awk '/^```cpp$/{on=1; next} /^```$/{if (on) exit} on' "$readme" > "$stage/readme_snippet.cpp"
[ -s "$stage/readme_snippet.cpp" ] || { echo "no C++ snippet found in $readme"; exit 1; }
c++ -std=c++20 "$stage/readme_snippet.cpp" -o "$stage/readme_snippet" $(pkg-config --cflags --libs latent)
LD_LIBRARY_PATH=$libdir "$stage/readme_snippet" | tee "$stage/readme_out.txt"
grep -q "step 50 loss" "$stage/readme_out.txt"
