#!/usr/bin/env bash
# From a fresh Debian 12 machine: install the packages, build in release mode, then the main job:
# train the convolutional autoencoder on Fashion-MNIST for one epoch and write a reconstruction
# grid (runs/quickstart/recon.png: test images above their reconstructions).
# Extra arguments go to `latent train` (e.g. --limit-batches 50 for a quick look).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
[ -d build ] || meson setup build --buildtype=release
ninja -C build
rm -rf runs/quickstart
build/tools/latent train --model conv --epochs 1 --out runs/quickstart "$@"
build/tools/latent reconstruct runs/quickstart --out runs/quickstart/recon.png
