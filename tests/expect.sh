# Shared by the shell tests (source it after setting $latent): expect runs the latent command and
# checks its exit code and a substring of its output; check runs any command as a named check;
# finish prints the verdict and exits 1 when a check failed.
#   expect NAME EXPECTED_RC EXPECTED_SUBSTRING -- ARGS...   (runs "$latent" ARGS...)
#   check NAME COMMAND...
failures=0
expect() {
  local name=$1 rc_expected=$2 text=$3
  shift 4
  local out rc
  out=$("$latent" "$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$rc_expected" ] || [[ "$out" != *"$text"* ]]; then
    echo "FAIL $name: exit $rc (expected $rc_expected, text '$text'), output:"
    echo "$out" | head -5
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}
check() {
  local name=$1
  shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name: $*"; failures=$((failures + 1)); fi
}
finish() {  # finish WHAT
  if [ "$failures" -ne 0 ]; then
    echo "$failures $1 check(s) failed"
    exit 1
  fi
  echo "all $1 checks passed"
}
