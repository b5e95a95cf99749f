#!/usr/bin/env bash
# Findings of the attack on the API, each pinned: /metrics is for the host alone, at nginx
# (any spelling of its path) and in pems-fcgi itself (REMOTE_ADDR in PEMS_METRICS_ALLOW, exact
# path), and answers while the database is down; query names
# and values that are not UTF-8 are 400 validation_failed (never a 500 from PostgreSQL, never
# silently accepted); every GET route answers HEAD.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG=$(fx_org harden)
USER_ID=$(fx_user "$ORG" Read,Write,Sync)
TOKEN=$(fx_token "$USER_ID")
fx_mirror "$ORG" PFA-H1 1 >/dev/null
MOD=$(fx_mod "$ORG" PFA-H1 "$USER_ID" draft 1 '{"model":"h"}')

test_begin "metrics through nginx: every spelling of the path is the host's alone"
# 127.0.0.2 is a loopback address to the kernel but not one nginx allows for /metrics
for p in metrics metrics/ metrics%2F metrics%2f metrics// metrics/x; do
  code=$(curl -sk --interface 127.0.0.2 -o "$TEST_TMP/m" -w '%{http_code}' "$PEMS_URL/api/pems/$p")
  assert_eq 403 "$code" "GET /api/pems/$p from 127.0.0.2"
  assert_eq forbidden "$(jq -r .error.code <"$TEST_TMP/m" 2>/dev/null)" "GET /api/pems/$p from 127.0.0.2: JSON error"
done
code=$(curl -sk -o /dev/null -w '%{http_code}' "$PEMS_URL/api/pems/metrics")
assert_eq 200 "$code" "GET /api/pems/metrics from 127.0.0.1"
for p in metrics/ metrics%2F; do
  code=$(curl -sk -o "$TEST_TMP/m" -w '%{http_code}' "$PEMS_URL/api/pems/$p")
  assert_eq 404 "$code" "GET /api/pems/$p from 127.0.0.1: not the metrics (the path is exact)"
  assert_eq not_found "$(jq -r .error.code <"$TEST_TMP/m" 2>/dev/null)" "GET /api/pems/$p: not_found"
done

test_begin "metrics in pems-fcgi itself: only a loopback REMOTE_ADDR, only the exact path"
# a FastCGI request straight to pemsd's socket, as nginx would send it
fcgi() {  # fcgi REMOTE_ADDR PATH -> the Status line's code
  env -i REQUEST_METHOD=GET DOCUMENT_URI="$2" REQUEST_URI="$2" QUERY_STRING= REMOTE_ADDR="$1" \
    cgi-fcgi -bind -connect "$STACK_DIR/pems.sock" >"$TEST_TMP/f" 2>/dev/null
  sed -n 's/^Status: \([0-9]*\).*/\1/p' "$TEST_TMP/f" | tr -d '\r' | head -n 1
}
command -v cgi-fcgi >/dev/null || fail "cgi-fcgi (libfcgi-bin) is not installed"
for addr in 10.1.2.3 192.168.0.7 2001:db8::1 ::ffff:10.0.0.1 128.0.0.1; do
  assert_eq 403 "$(fcgi "$addr" /api/pems/metrics)" "REMOTE_ADDR $addr"
  assert_eq forbidden "$(sed -n '/^{/p' "$TEST_TMP/f" | jq -r .error.code)" "REMOTE_ADDR $addr: forbidden"
done
assert_eq 403 "$(fcgi '' /api/pems/metrics)" "no REMOTE_ADDR"
for addr in 127.0.0.1 127.0.0.2 ::1 ::ffff:127.0.0.1; do
  assert_eq 200 "$(fcgi "$addr" /api/pems/metrics)" "REMOTE_ADDR $addr"
done
assert_eq 404 "$(fcgi 10.1.2.3 /api/pems/metrics/)" "a trailing slash is another path"
assert_eq 404 "$(fcgi 127.0.0.1 /api/pems/metrics/)" "a trailing slash is another path, also from the host"
assert_eq 200 "$(fcgi 10.1.2.3 /api/pems/health)" "health is for everyone"

# a pems-fcgi of this test's own on its own socket (spawn-fcgi, as pemsd's children accept)
OWN_FCGI_PID=""
own_fcgi() {  # own_fcgi VAR=value...: starts it, sets OWN_SOCK
  own_fcgi_stop
  OWN_SOCK=$TEST_TMP/own.sock
  rm -f "$OWN_SOCK"
  env JWT_SECRET=0123456789abcdef0123456789abcdef PEMS_METRICS_FILE= "$@" \
    spawn-fcgi -n -s "$OWN_SOCK" -- "$BUILD_DIR/src/pems-fcgi" >"$TEST_TMP/own.log" 2>&1 </dev/null &
  OWN_FCGI_PID=$!
  wait_for 10 test -S "$OWN_SOCK" || fail "own pems-fcgi did not start: $(cat "$TEST_TMP/own.log")"
}
own_fcgi_stop() {
  [ -n "$OWN_FCGI_PID" ] || return 0
  kill "$OWN_FCGI_PID" 2>/dev/null
  wait "$OWN_FCGI_PID" 2>/dev/null
  OWN_FCGI_PID=""
}
trap 'own_fcgi_stop; rm -rf "$TEST_TMP"' EXIT
own() {  # own REMOTE_ADDR PATH -> the Status line's code; the answer in $TEST_TMP/f
  env -i REQUEST_METHOD=GET DOCUMENT_URI="$2" REQUEST_URI="$2" QUERY_STRING= REMOTE_ADDR="$1" \
    cgi-fcgi -bind -connect "$OWN_SOCK" >"$TEST_TMP/f" 2>/dev/null
  sed -n 's/^Status: \([0-9]*\).*/\1/p' "$TEST_TMP/f" | tr -d '\r' | head -n 1
}

test_begin "PEMS_METRICS_ALLOW: the CIDR list pems-fcgi serves /metrics to"
own_fcgi DATABASE_URL="$DATABASE_URL" PEMS_METRICS_ALLOW="10.1.0.0/16, 2001:db8::/32 192.0.2.7"
for addr in 10.1.2.3 10.1.255.254 ::ffff:10.1.0.9 2001:db8:1::5 192.0.2.7; do
  assert_eq 200 "$(own "$addr" /api/pems/metrics)" "allowed REMOTE_ADDR $addr"
done
for addr in 10.2.0.1 192.0.2.8 2001:db9::1 127.0.0.1 ::1; do
  assert_eq 403 "$(own "$addr" /api/pems/metrics)" "REMOTE_ADDR $addr outside the list"
done
own_fcgi_stop
out=$(env DATABASE_URL="$DATABASE_URL" JWT_SECRET=0123456789abcdef0123456789abcdef \
  PEMS_METRICS_ALLOW="10.1.0.0/33" "$BUILD_DIR/src/pems-fcgi" </dev/null 2>&1)
assert_eq 78 "$?" "a malformed PEMS_METRICS_ALLOW is a configuration error"
assert_match "PEMS_METRICS_ALLOW" "$out" "the message names it"

test_begin "metrics with the database down: 200, pems_database_up 0, pems_build_info"
own_fcgi DATABASE_URL="postgresql://127.0.0.1:1/none?connect_timeout=2"
assert_eq 200 "$(own 127.0.0.1 /api/pems/metrics)" "GET /metrics answers"
sed -n '/^# HELP/,$p' "$TEST_TMP/f" > "$TEST_TMP/down.prom"
assert_eq "pems_database_up 0" "$(grep '^pems_database_up' "$TEST_TMP/down.prom")" "says the database is down"
VERSION=$("$BUILD_DIR/src/pems-fcgi" --version | awk '{print $NF}')
assert_eq "pems_build_info{version=\"$VERSION\"} 1" "$(grep '^pems_build_info' "$TEST_TMP/down.prom")" \
  "pems_build_info carries the version"
assert_eq 0 "$(grep -c '^pems_queue_items' "$TEST_TMP/down.prom")" "no queue gauge made up"
own_fcgi_stop
assert_eq 200 "$(fcgi 127.0.0.1 /api/pems/metrics)" "the stack's pems-fcgi"
assert_eq "pems_database_up 1" "$(grep '^pems_database_up' "$TEST_TMP/f")" "the stack's database is up"

test_begin "query values and names that are not UTF-8 -> 400 validation_failed"
for bad in '%ff' '%c3%28' '%ed%a0%80' '%c0%af' '%f4%90%80%80'; do
  for route in modifications conflicts sync-status sync-history; do
    case $route in modifications) p=pfaId ;; conflicts|sync-status) p=status ;; sync-history) p=bucket ;; esac
    api GET "/api/pems/$route?organizationId=$ORG&$p=$bad"
    assert_error 400 validation_failed "$route $p=$bad"
    api GET "/api/pems/$route?organizationId=$ORG&$bad=1"
    assert_error 400 validation_failed "$route name $bad"
  done
done
api GET "/api/pems/modifications?organizationId=$ORG&pfaId=PFA-%c3%a9"
assert_eq 200 "$HTTP_STATUS" "valid UTF-8 in a value is fine"

test_begin "every GET route answers HEAD"
for path in /api/pems/health "/api/pems/sync-status?organizationId=$ORG" "/api/pems/conflicts?organizationId=$ORG" \
            "/api/pems/modifications?organizationId=$ORG" "/api/pems/modifications/$MOD" \
            /api/pems/organizations "/api/pems/sync-history?organizationId=$ORG" /api/pems/metrics; do
  code=$(curl -sk -I -o "$TEST_TMP/head" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$PEMS_URL$path")
  assert_eq 200 "$code" "HEAD $path"
  assert_eq "" "$(tr -d '\r' <"$TEST_TMP/head" | grep -Ev '^(HTTP/|[A-Za-z0-9-]+:|$)')" "HEAD $path: no body"
done
code=$(curl -sk -I -o /dev/null -w '%{http_code}' "$PEMS_URL/api/pems/write-sync")
assert_eq 405 "$code" "HEAD of a POST-only route is 405"

finish
