#!/usr/bin/env bash
# Creates (or reuses) the Python environment that tests/onnx_runtime_check.sh runs ONNX Runtime and
# onnx.checker in: .venv-onnx/ at the repository root (git-ignored), made from Debian's
# /usr/bin/python3 with --system-site-packages, numpy pinned below 2 (Debian's python3 packages
# are built against numpy 1.x), onnx and onnxruntime from PyPI.
#
# usage: tools/setup_onnx_venv.sh [VENV_DIR]
# Idempotent: an existing venv whose imports work is left as it is. Exit codes: 0 ready, 3 the venv
# could not be made (no network, no pip), 1 anything else.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$root/.venv-onnx}"
python=/usr/bin/python3
# Versions with wheels for Debian 12's Python 3.11 that work with numpy 1.x.
packages=("numpy<2" "onnx==1.16.2" "onnxruntime==1.18.1")

ready() {
  [ -x "$venv/bin/python" ] &&
    "$venv/bin/python" -c 'import numpy, onnx, onnxruntime; assert int(numpy.__version__.split(".")[0]) < 2' \
      >/dev/null 2>&1
}

if ready; then
  echo "onnx venv: ready at $venv"
  exit 0
fi

if [ ! -x "$python" ]; then
  echo "onnx venv: $python not found" >&2
  exit 3
fi

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv --system-site-packages "$venv" || { echo "onnx venv: python3 -m venv failed" >&2; exit 3; }
fi

if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --timeout 60 --retries 2 "${packages[@]}"; then
  echo "onnx venv: pip install ${packages[*]} failed (no network?)" >&2
  exit 3
fi

if ! ready; then
  echo "onnx venv: installed, but 'import numpy, onnx, onnxruntime' fails in $venv" >&2
  exit 1
fi
echo "onnx venv: ready at $venv ($("$venv/bin/python" -c 'import onnx, onnxruntime, numpy; print("onnx", onnx.__version__, "onnxruntime", onnxruntime.__version__, "numpy", numpy.__version__)'))"
