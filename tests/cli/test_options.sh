#!/usr/bin/env bash
# Every program's command line (make check; the binaries in the build tree, no stack): --help
# prints the usage on stdout and exits 0, -V/--version prints "PROG (pems-sync) VERSION" and
# exits 0, a usage error prints a message on stderr, nothing on stdout, and exits 2, before
# any setting is read (so nothing here needs DATABASE_URL).
set -u
BUILD=${BUILD_DIR:-.}
PASSED=0
FAILED=0
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$*" >&2; }
check() {  # description expected-rc stdout-regex stderr-regex -- command...
  local what=$1 want_rc=$2 want_out=$3 want_err=$4; shift 5
  local out err rc
  out=$(env -u DATABASE_URL -u JWT_SECRET -u ENCRYPTION_KEY "$@" 2>"$TMP/err" </dev/null)
  rc=$?
  err=$(cat "$TMP/err")
  if [ "$rc" != "$want_rc" ]; then fail "$what: exit $rc, expected $want_rc (stderr: $err)"; return; fi
  if ! [[ $out =~ $want_out ]]; then fail "$what: stdout '$out' does not match /$want_out/"; return; fi
  if ! [[ $err =~ $want_err ]]; then fail "$what: stderr '$err' does not match /$want_err/"; return; fi
  PASSED=$((PASSED + 1))
}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
VERSION=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$BUILD/src/build_config.h")
[ -n "$VERSION" ] || { echo "no PACKAGE_VERSION in $BUILD/src/build_config.h" >&2; exit 99; }

for p in pemsd pemsworker pems-fcgi pemsctl; do
  bin=$BUILD/src/$p
  [ -x "$bin" ] || { fail "$bin not built"; continue; }
  check "$p --help" 0 "^Usage: .*$p.*-V, --version" '^$' -- "$bin" --help
  check "$p -h" 0 "^Usage: " '^$' -- "$bin" -h
  check "$p --version" 0 "^$p \\(pems-sync\\) ${VERSION//./\\.}$" '^$' -- "$bin" --version
  check "$p -V" 0 "^$p \\(pems-sync\\) " '^$' -- "$bin" -V
  check "$p --no-such-option" 2 '^$' "^$p: unknown option '--no-such-option'.*--help" -- "$bin" --no-such-option
  check "$p -Q" 2 '^$' "^$p: unknown option '-Q'" -- "$bin" -Q
  check "$p -c without a file" 2 '^$' "^$p: option '-c' needs a value" -- "$bin" -c
  check "$p --config without a file" 2 '^$' "needs a value" -- "$bin" --config
  check "$p --version=1" 2 '^$' "'--version=1' takes no value" -- "$bin" --version=1
done
for p in pemsd pemsworker pems-fcgi; do
  check "$p with an argument" 2 '^$' "^$p: unexpected argument 'extra'" -- "$BUILD/src/$p" extra
done

w=$BUILD/src/pemsworker
check "pemsworker --help explains --once" 0 "--once +pull, drain" '^$' -- "$w" --help
check "pemsworker --until-idle=0" 2 '^$' "1 to 86400, not '0'" -- "$w" --until-idle=0
check "pemsworker --until-idle=abc" 2 '^$' "not 'abc'" -- "$w" --until-idle=abc
check "pemsworker --until-idle 30 (the value needs =)" 2 '^$' "unexpected argument '30'" -- "$w" --until-idle 30
check "pemsworker --once=1" 2 '^$' "'--once=1' takes no value" -- "$w" --once=1
# a valid command line gets as far as the settings: exit 78 (configuration), not 2 (usage)
check "pemsworker --once without DATABASE_URL" 78 '^$' "DATABASE_URL" -- "$w" --once
f=$BUILD/src/pems-fcgi
check "pems-fcgi --list-routes" 0 "GET /api/pems/health" '^$' -- "$f" --list-routes
c=$BUILD/src/pemsctl
check "pemsctl without a command" 2 '' "Usage: pemsctl" -- "$c"
check "pemsctl unknown command" 2 '^$' "unknown command 'frobnicate'" -- "$c" frobnicate
check "pemsctl org add --help" 0 "^usage: pemsctl org add --code" '^$' -- "$c" org add --help
check "pemsctl org add --bogus" 2 '^$' "unknown .*'--bogus'.*usage: pemsctl org add" -- "$c" org add --bogus
check "pemsctl org add --code (no value)" 2 '^$' "'--code' needs a value" -- "$c" org add --code
check "pemsctl org add --code twice" 2 '^$' "'--code' given twice" -- "$c" org add --code A --code=B --name N
check "pemsctl server add --u (--url or --user)" 2 '^$' "ambiguous option '--u'" -- "$c" server add --u x
check "pemsctl org add --hel (an abbreviation)" 0 "^usage: pemsctl org add" '^$' -- "$c" org add --hel
check "pemsctl retry (no item)" 2 '^$' "missing argument" -- "$c" retry
check "pemsctl retry A B" 2 '^$' "unexpected argument 'B'" -- "$c" retry A B
check "pemsctl status --json=1" 2 '^$' "'--json=1' takes no value" -- "$c" status --json=1
check "pemsctl -c FILE before the command" 2 '^$' "unknown command" -- "$c" -c /dev/null nothing

printf 'test_options: %d passed, %d failed\n' "$PASSED" "$FAILED"
[ "$FAILED" -eq 0 ]
