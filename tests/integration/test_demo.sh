#!/usr/bin/env bash
# scripts/demo is quiet until its story: no compiler or stack output before it, a few
# "demo:" lines, then the story on stdout; when the build fails it shows the build's log and
# exits non-zero. Runs the demo on its own stack (directory and ports), never the shared one.
. "$(dirname "$0")/lib.sh"
PEMS_ROOT=${PEMS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
off=${PEMS_PORT_OFFSET:-0}
export STACK_DIR=/tmp/pems-stack-demo-$(id -u)-$off
export PEMS_HTTPS_PORT=$((9543 + off)) PEMS_SIM_PORT=$((19680 + off)) PEMS_PG_PORT=$((27132 + off))
export PEMS_SKIP_APT=1
trap '"$PEMS_ROOT/scripts/stack" stop >/dev/null 2>&1; rm -rf "$STACK_DIR" "$TEST_TMP"' EXIT

test_begin "quiet until the story"
"$PEMS_ROOT/scripts/demo" >"$TEST_TMP/out" 2>"$TEST_TMP/err" </dev/null
assert_eq 0 "$?" "demo exit status ($(tail -n 5 "$TEST_TMP/err"))"
assert_eq "" "$(grep -v '^demo: ' "$TEST_TMP/err")" "stderr holds only the demo's own lines"
assert_le "$(grep -c . "$TEST_TMP/err")" 6 "a few progress lines"
assert_eq "== pems-sync demo" "$(grep -m1 . "$TEST_TMP/out" | cut -c1-17)" "stdout starts with the story"
assert_match "synced to PEMS \.+ [0-9]+" "$(cat "$TEST_TMP/out")" "the story tells what synced"
link=$(grep -oE 'https://127\.0\.0\.1:[0-9]+/#token=[A-Za-z0-9._-]+' "$TEST_TMP/out" | head -n 1)
assert_match "^https://127\.0\.0\.1:$PEMS_HTTPS_PORT/#token=" "$link" "a ready link to the dashboard"
assert_match '^text/html' "$(curl -sk -o /dev/null -w '%{content_type}' "${link%%#*}")" "the link opens the dashboard"
assert_eq 200 "$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${link#*#token=}" \
  "https://127.0.0.1:$PEMS_HTTPS_PORT/api/pems/organizations")" "the link's token is accepted"
assert_eq "" "$(grep -E '^ *(CC|CCLD|AR|GEN) |warning:|error:' "$TEST_TMP/out" "$TEST_TMP/err")" "no build output"
log=$(sed -n 's/^demo: .*(log: \(.*\))$/\1/p' "$TEST_TMP/err")
assert_ne "" "$log" "names the build log"
[ -f "$log" ] && pass || fail "the build log $log is there"
"$PEMS_ROOT/scripts/stack" stop >/dev/null 2>&1

test_begin "a failed build is shown"
BUILD_DIR=$TEST_TMP/broken-build CONFIGURE_FLAGS=--no-such-configure-flag-xyz \
  "$PEMS_ROOT/scripts/demo" >"$TEST_TMP/out2" 2>"$TEST_TMP/err2" </dev/null
assert_ne 0 "$?" "demo exit status"
assert_match "the build failed" "$(cat "$TEST_TMP/err2")" "says the build failed"
assert_match "no-such-configure-flag-xyz" "$(cat "$TEST_TMP/err2")" "shows the build's own message"
assert_eq "" "$(cat "$TEST_TMP/out2")" "no story"

finish
