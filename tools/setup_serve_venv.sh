#!/usr/bin/env bash
# Creates (or reuses) the Python environment that tests/serve_triton_test.sh drives `latent serve`
# from with NVIDIA Triton's own client: .venv-serve/ at the repository root (git-ignored), made from
# Debian's /usr/bin/python3 with --system-site-packages, numpy pinned below 2 (Debian's python3
# packages are built against numpy 1.x), tritonclient[http] from PyPI at versions that install
# together on Debian 12's Python 3.11.
#
# usage: tools/setup_serve_venv.sh [VENV_DIR]
# Idempotent. Exit codes: 0 ready, 3 the venv could not be made (no network, no pip), 1 anything else.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$root/.venv-serve}"
python=/usr/bin/python3
packages=("numpy<2" "tritonclient[http]==2.73.0" "geventhttpclient==2.6.1" "gevent==26.9.0")

ready() {
  [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import numpy, tritonclient.http' >/dev/null 2>&1
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
ready || { echo "serve venv: installed, but 'import tritonclient.http' fails" >&2; exit 1; }
echo "serve venv: ready at $venv"
