#!/usr/bin/env bash
# Installs the Debian 12 packages latent builds and tests with (uses sudo when not root):
# the toolchain and libraries, Fashion-MNIST (the default data set), ONNX's conformance data
# (tests/test_onnx_proto.cpp), clang's libFuzzer runtime (tests/fuzz/run_fuzz.sh) and python3-venv
# (tools/setup_onnx_venv.sh makes the venv with onnx and onnxruntime for the ONNX Runtime check),
# cpp-httplib and simdjson (`latent serve`), curl, wrk and promtool (its test and benchmark), Open MPI
# (`latent train --distributed`, models/dist/),
# chromium, chromium-driver and python3-selenium (tests/ui_test.py drives the service's web page).
# With --bench, also the benchmarks' peers: PyTorch (python3-torch), Flask and gunicorn (bench/serve) and LibTorch's C++ headers
# (libtorch-dev, for ../shared/peers/libtorch_bench.cpp); about 2.5 minutes and 1 GB, not needed by
# the tests.
# usage: tools/install_deps.sh [--bench]
set -euo pipefail
packages=(meson ninja-build g++ pkg-config libopenblas-dev libfmt-dev doctest-dev zlib1g-dev libpng-dev
          libopenmpi-dev openmpi-bin
          libcpp-httplib-dev libsimdjson-dev curl wrk prometheus
          dataset-fashion-mnist libonnx-testdata clang libclang-rt-14-dev python3-venv
          chromium chromium-driver python3-selenium)
packages+=(doxygen)  # the API reference and its api-docs test (tools/api_docs.sh)
if [ "${1:-}" = --bench ]; then
  packages+=(python3-torch libtorch-dev python3-flask gunicorn)
elif [ $# -gt 0 ]; then
  echo "usage: tools/install_deps.sh [--bench]" >&2
  exit 2
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
