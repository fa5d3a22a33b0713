#!/usr/bin/env bash
# From a fresh Debian 12 machine: install the packages, build in release mode, run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
[ -d build ] || meson setup build --buildtype=release
ninja -C build
build/tools/latent demo
