#!/usr/bin/env bash
# `latent serve` driven by NVIDIA Triton's own client (tritonclient[http], tests/serve_triton_check.py)
# from the venv that tools/setup_serve_venv.sh makes. Skipped (exit 77) when that venv is missing.
# usage: serve_triton_test.sh PATH_TO_LATENT   (env: LATENT_SERVE_VENV, default .venv-serve at the root)
set -u
here=$(cd "$(dirname "$0")" && pwd)
venv=${LATENT_SERVE_VENV:-$here/../.venv-serve}
if ! "$venv/bin/python" -c 'import tritonclient.http' 2> /dev/null; then
  echo "SKIP: no tritonclient venv at $venv (run tools/setup_serve_venv.sh)"
  exit 77
fi
exec "$venv/bin/python" "$here/serve_triton_check.py" "$1"
