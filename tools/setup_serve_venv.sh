#!/usr/bin/env bash
# Creates (or reuses) the Python environment that tests/serve_triton_test.sh drives `latent serve`
# from with NVIDIA Triton's own client: .venv-serve/ at the repository root (git-ignored), made from
# Debian's /usr/bin/python3 with --system-site-packages, numpy pinned below 2 (Debian's python3
# packages are built against numpy 1.x), tritonclient[http] from PyPI at versions that install
# together on Debian 12's Python 3.11.
# With --kserve: .venv-kserve/ instead, with KServe's own Python ModelServer (the `kserve` package),
# the baseline bench/serve/run.sh measures beside latent serve (bench/serve/kserve_twin.py; it
# serves the PyTorch twin with Debian's python3-torch, seen through --system-site-packages). Kept
# apart because kserve pulls in its own protobuf, grpcio, fastapi and pandas.
#
# usage: tools/setup_serve_venv.sh [--kserve] [VENV_DIR]
# Idempotent. Exit codes: 0 ready, 3 the venv could not be made (no network, no pip), 1 anything else.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python=/usr/bin/python3
if [ "${1:-}" = --kserve ]; then
  shift
  venv="${1:-$root/.venv-kserve}"
  packages=("numpy<2" "kserve==0.21.0")
  module=kserve
else
  venv="${1:-$root/.venv-serve}"
  packages=("numpy<2" "tritonclient[http]==2.73.0" "geventhttpclient==2.6.1" "gevent==26.9.0")
  module=tritonclient.http
fi

ready() {
  [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import numpy, $module" >/dev/null 2>&1
}

if ready; then
  echo "serve venv: ready at $venv"
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv --system-site-packages "$venv" || { echo "serve venv: python3 -m venv failed" >&2; exit 3; }
fi
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --timeout 60 --retries 2 "${packages[@]}"; then
  echo "serve venv: pip install ${packages[*]} failed (no network?)" >&2
  exit 3
fi
ready || { echo "serve venv: installed, but 'import $module' fails in $venv" >&2; exit 1; }
echo "serve venv: ready at $venv"
