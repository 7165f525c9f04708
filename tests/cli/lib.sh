# Shared helpers for the CLI test scripts: source it after setting $moesim.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
# expect <exit code> <stderr pattern or -> <command...>: checks the exit code
# and, given a pattern, that stderr is exactly one line containing it.
expect() {
  local want=$1 pat=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  [ "$got" = "$want" ] || { echo "FAIL: $*: exit $got, expected $want"; cat "$tmp/err"; fail=1; }
  if [ "$pat" != - ]; then
    [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q -- "$pat" "$tmp/err" ||
      { echo "FAIL: $*: expected one error line with '$pat'"; cat "$tmp/err"; fail=1; }
  fi
}
# json <python expression over d>: evaluates it on the last command's stdout.
json() { python3 -c "import json,sys; d=json.load(open('$tmp/out')); print($1)"; }
