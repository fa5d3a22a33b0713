#!/usr/bin/env bash
# The `latent` command as a user meets it: help, the demo, and clear one-line errors with exit 2.
# usage: cli_test.sh PATH_TO_LATENT
set -u
latent=$1
failures=0
expect() {  # expect NAME EXPECTED_RC EXPECTED_SUBSTRING -- ARGS...
  local name=$1 rc_expected=$2 text=$3
  shift 4
  local out rc
  out=$("$latent" "$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$rc_expected" ] || [[ "$out" != *"$text"* ]]; then
    echo "FAIL $name: exit $rc (expected $rc_expected), output:"
    echo "$out" | head -5
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}
expect help 0 "usage: latent <command>" -- --help
expect no-args 2 "usage: latent <command>" --
expect demo-help 0 "usage: latent demo" -- demo --help
expect demo 0 "loss fell from" -- demo --steps 60 --seed 1 --threads 1
expect unknown-command 2 "latent: unknown command 'trian'" -- trian
expect unknown-flag 2 "latent: unknown option '--bogus' for demo" -- demo --bogus
expect bad-value 2 "--steps expects an integer in [1, 1000000]; got 'ten'" -- demo --steps ten
expect missing-value 2 "--lr needs a value" -- demo --lr
expect version 0 "latent 0.1.0" -- version
[ "$failures" -eq 0 ] || { echo "$failures CLI checks failed"; exit 1; }
