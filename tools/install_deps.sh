#!/usr/bin/env bash
# Installs the Debian 12 packages latent builds and tests with (uses sudo when not root).
set -euo pipefail
packages=(meson ninja-build g++ pkg-config libopenblas-dev libfmt-dev doctest-dev zlib1g-dev)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
