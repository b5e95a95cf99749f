#!/usr/bin/env bash
# pems_client (libcurl) against a private PEMS simulator, through pems-client-probe:
# every outcome mapping of pems_client.h, Retry-After in both forms, transport errors, timeouts,
# both auth schemes, Idempotency-Key, connection reuse and URL-encoding.
cd "$(dirname "$0")" || exit 1
. ./lib.sh
. ./sim_lib.sh
PROBE=${PEMS_PROBE_BIN:-$(find_bin tests/pems-sim/pems-client-probe)}
[ -x "$PROBE" ] || { echo "pems-client-probe not found (set BUILD_DIR)" >&2; exit 1; }
sim_start

# probe TENANT [probe options...] COMMAND ARGS: sets OUT (last JSON line) and PROBE_RC
probe() {
  local tenant=$1; shift
  OUT=$("$PROBE" --url "$SIM/t/$tenant" "$@" 2>"$TEST_TMP/probe.err" | tail -1)
  PROBE_RC=$?
}
out() { printf '%s' "$OUT" | jq -r "$1" 2>/dev/null; }
sim_setup() {  # METHOD PATH BODY: a control call that must answer 200
  sim "$1" "$2" "$3"
  [ "$HTTP_STATUS" = 200 ] || fail "control $1 $2 answered $HTTP_STATUS: $BODY"
}
sim_setup PUT "/__sim/records?tenant=c" '{"records":[{"pfaId":"P1","data":{"category":"Crane"}},
  {"pfaId":"P2","version":4,"data":{"category":"Pump"}},{"pfaId":"A B/C?&%+é#","data":{"k":1}}]}'

test_begin "ok"
probe c get P1
assert_eq 0 "$PROBE_RC" "probe exit"
assert_eq ok "$(out .outcome)" "GET outcome"
assert_eq 200 "$(out .httpStatus)" "GET status"
assert_eq 1 "$(out .body.version)" "GET body parsed"
assert_eq -1 "$(out .retryAfter)" "no Retry-After"
assert_eq "" "$(out .error)" "no error"
OUT=$("$PROBE" --url "$SIM/t/c///" get P1 | tail -1)
assert_eq ok "$(out .outcome)" "base URL with trailing slashes"
probe c update P1 1 '{"class":"C1","category":"Crane 2"}'
assert_eq ok "$(out .outcome)" "update"
assert_eq 2 "$(out .body.version)" "update new version"
assert_eq C1 "$(out .body.data.class)" "update applied"
probe c update P1 2 '{"class":null}'
assert_eq null "$(out .body.data.class)" "null clears a field"
probe c health
assert_eq ok "$(out .body.status)" "health"

test_begin "conflict"
probe c update P1 1 '{"class":"X"}'
assert_eq conflict "$(out .outcome)" "stale version"
assert_eq 409 "$(out .httpStatus)" "409"
assert_eq 3 "$(out .body.version)" "409 body: current version"
assert_eq "Crane 2" "$(out .body.data.category)" "409 body: current data"
assert_eq P1 "$(out .body.pfaId)" "409 body: pfaId"
probe c delete P2 3
assert_eq conflict "$(out .outcome)" "stale delete"
assert_eq 4 "$(out .body.version)" "stale delete body"

test_begin "64-bit versions"
# beyond 2^53, where a double cannot tell 9007199254740992 from 9007199254740993; read as text
raw_version() { printf '%s' "$OUT" | grep -oE '"version" *: *[0-9]+' | head -n 1 | grep -oE '[0-9]+$'; }
sim_setup PUT "/__sim/records?tenant=v64" \
  '{"records":[{"pfaId":"W","version":9007199254740993,"data":{"category":"Crane"}}]}'
probe v64 update W 9007199254740992 '{"class":"X"}'
assert_eq conflict "$(out .outcome)" "PUT version 9007199254740992 is not PEMS's"
assert_eq 9007199254740993 "$(raw_version)" "409 body: the version exactly"
probe v64 update W 9007199254740993 '{"class":"C1"}' key-v64
assert_eq ok "$(out .outcome)" "PUT {version: 9007199254740993}"
assert_eq 9007199254740994 "$(raw_version)" "update: the new version exactly"
probe v64 delete W 9007199254740993
assert_eq conflict "$(out .outcome)" "DELETE ?version=9007199254740993 is stale"
probe v64 delete W 9007199254740994
assert_eq ok "$(out .outcome)" "DELETE ?version=9007199254740994"
assert_eq 9007199254740995 "$(raw_version)" "delete: the new version exactly"

test_begin "permanent"
probe c get NOPE
assert_eq permanent "$(out .outcome)" "404"
assert_eq 404 "$(out .httpStatus)" "404 status"
assert_eq "PEMS 404: record not found" "$(out .error)" "404 error text"
probe c update P1 3 '[1]'
assert_eq permanent "$(out .outcome)" "400 (changes not an object)"
assert_eq 400 "$(out .httpStatus)" "400 status"
sim_setup POST "/__sim/faults?tenant=c" '{"pfaId":"P1","status":403,"count":1}'
probe c get P1
assert_eq permanent "$(out .outcome)" "other 4xx"
assert_eq 403 "$(out .httpStatus)" "403"

test_begin "retryable"
sim_setup POST "/__sim/faults?tenant=c" '{"status":503,"count":1}'
probe c update P1 3 '{"model":"M"}'
assert_eq retryable "$(out .outcome)" "503"
assert_eq 503 "$(out .httpStatus)" "503 status"
assert_match '^PEMS 503: ' "$(out .error)" "503 error text"
assert_eq -1 "$(out .retryAfter)" "503 without Retry-After"
sim_setup POST "/__sim/faults?tenant=c" '{"status":500,"count":1,"retryAfter":12}'
probe c update P1 3 '{"model":"M"}'
assert_eq retryable "$(out .outcome)" "500"
assert_eq 12 "$(out .retryAfter)" "Retry-After on a 5xx is passed on"
sim_setup POST "/__sim/faults?tenant=c" '{"pfaId":"P1","status":200,"count":1,"body":"<html>oops</html>"}'
probe c get P1
assert_eq retryable "$(out .outcome)" "2xx with a non-JSON body"
assert_eq 200 "$(out .httpStatus)" "2xx status kept"
assert_match 'not a JSON object' "$(out .error)" "clear error for non-JSON"
sim_setup POST "/__sim/faults?tenant=c" '{"pfaId":"P1","status":204,"count":1,"body":""}'
probe c delete P1 3 k-204
assert_eq ok "$(out .outcome)" "2xx without a body (204): applied"
assert_eq 204 "$(out .httpStatus)" "204 kept"
sim_setup POST "/__sim/faults?tenant=c" '{"pfaId":"P1","status":408,"count":1}'
probe c get P1
assert_eq retryable "$(out .outcome)" "408 request timeout is retryable"
sim_setup POST "/__sim/faults?tenant=c" '{"pfaId":"P1","status":502,"count":1,"body":"Bad gateway\nfrom proxy"}'
probe c get P1
assert_eq retryable "$(out .outcome)" "502 with text body"
assert_eq "PEMS 502: Bad gateway from proxy" "$(out .error)" "text body in one line"
probe c get P1
assert_eq ok "$(out .outcome)" "faults consumed"
assert_eq 3 "$(out .body.version)" "no faulted write applied"

test_begin "rate limited"
sim_setup POST "/__sim/faults?tenant=c" '{"status":429,"count":1,"retryAfter":7}'
probe c update P1 3 '{}'
assert_eq rate_limited "$(out .outcome)" "429"
assert_eq 429 "$(out .httpStatus)" "429 status"
assert_eq 7 "$(out .retryAfter)" "Retry-After delta-seconds"
future=$(date -u -d '@'$(($(date +%s) + 120)) '+%a, %d %b %Y %H:%M:%S GMT')
sim_setup POST "/__sim/faults?tenant=c" "{\"status\":429,\"count\":1,\"retryAfter\":\"$future\"}"
probe c update P1 3 '{}'
assert_eq rate_limited "$(out .outcome)" "429 with an HTTP-date"
ra=$(out .retryAfter)
assert_ge "$ra" 115 "Retry-After HTTP-date lower bound"
assert_le "$ra" 121 "Retry-After HTTP-date upper bound"
sim_setup POST "/__sim/faults?tenant=c" '{"status":429,"count":1}'
probe c update P1 3 '{}'
assert_eq -1 "$(out .retryAfter)" "429 without Retry-After"
sim_setup POST "/__sim/config?tenant=rl" '{"rateLimitRps":2}'
OUT=$("$PROBE" --url "$SIM/t/rl" --repeat 3 health | tail -1)
assert_eq rate_limited "$(out .outcome)" "the simulator's own limit"
assert_eq 1 "$(out .retryAfter)" "its Retry-After: 1"

test_begin "transport errors"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
OUT=$("$PROBE" --url "http://127.0.0.1:$port/t/c" get P1 | tail -1)
assert_eq retryable "$(out .outcome)" "refused connection"
assert_eq 0 "$(out .httpStatus)" "transport error has status 0"
assert_match 'transport error' "$(out .error)" "transport error text"
sim_setup POST "/__sim/faults?tenant=c" '{"status":0,"count":1}'
probe c update P1 3 '{}'
assert_eq retryable "$(out .outcome)" "connection closed without a response"
assert_eq 0 "$(out .httpStatus)" "closed: status 0"
sim_setup POST "/__sim/faults?tenant=c" '{"delayMs":1500,"count":1,"match":"reads"}'
t0=$(date +%s%N)
probe c --timeout-ms 300 get P1
ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq retryable "$(out .outcome)" "timeout"
assert_eq 0 "$(out .httpStatus)" "timeout: status 0"
assert_match '[Tt]imeout|timed out' "$(out .error)" "timeout text"
assert_le "$ms" 1200 "gave up after the timeout, not the delay"
OUT=$("$PROBE" --url "ftp://127.0.0.1:$SIM_PORT/t/c" get P1 | tail -1)
assert_eq retryable "$(out .outcome)" "non-HTTP scheme refused"
assert_match 'not supported|disabled' "$(out .error)" "protocol error text"
probe c get P1
assert_eq ok "$(out .outcome)" "simulator fine afterwards"

test_begin "auth"
sim_setup PUT "/__sim/records?tenant=k" '{"records":[{"pfaId":"K","data":{}}]}'
sim_setup POST "/__sim/config?tenant=k" '{"apiKey":"key-123"}'
probe k --api-key key-123 get K
assert_eq ok "$(out .outcome)" "x-api-key"
probe k --api-key key-12 get K
assert_eq permanent "$(out .outcome)" "wrong api key"
assert_eq 401 "$(out .httpStatus)" "401"
probe k --user u --secret key-123 get K
assert_eq 401 "$(out .httpStatus)" "basic when the api key is required"
sim_setup POST "/__sim/config?tenant=k" '{"apiKey":null,"username":"alice","password":"p:w ü"}'
probe k --user alice --secret 'p:w ü' get K
assert_eq ok "$(out .outcome)" "basic auth (colon and UTF-8 in the password)"
probe k --user alice --secret 'p:w' health
assert_eq 401 "$(out .httpStatus)" "health checks credentials"

test_begin "idempotency key"
sim_setup POST "/__sim/stats/reset?tenant=c" ''
OUT=$("$PROBE" --url "$SIM/t/c" --repeat 3 update P1 3 '{"model":"I"}' 'item-9:3' | tail -1)
assert_eq ok "$(out .outcome)" "replayed write answers ok"
assert_eq 4 "$(out .body.version)" "replay returns the first response"
assert_eq 2 "$(stat_of c .duplicateWrites)" "Idempotency-Key sent: 2 duplicates"
assert_eq 1 "$(stat_of c .writesApplied)" "applied once"
OUT=$("$PROBE" --url "$SIM/t/c" --repeat 2 delete P2 4 'item-10:4' | tail -1)
assert_eq true "$(out .body.deleted)" "delete replay"
assert_eq 5 "$(out .body.version)" "delete version"
assert_eq 3 "$(stat_of c .duplicateWrites)" "delete carries the key"
OUT=$("$PROBE" --url "$SIM/t/c" --repeat 2 update P1 4 '{"model":"J"}' | tail -1)
assert_eq conflict "$(out .outcome)" "without a key the second write is applied anew (409)"

test_begin "connection reuse"
OUT=$("$PROBE" --url "$SIM/t/c" --repeat 20 get P1 | tail -1)
assert_eq 1 "$(out .connects)" "one connection for 20 calls"

test_begin "URL-encoding"
probe c get 'A B/C?&%+é#'
assert_eq ok "$(out .outcome)" "odd pfaId read"
assert_eq 'A B/C?&%+é#' "$(out .body.pfaId)" "odd pfaId echoed"
probe c update 'A B/C?&%+é#' 1 '{"k":2}' 'odd:1'
assert_eq 2 "$(out .body.version)" "odd pfaId written"
probe c delete 'A B/C?&%+é#' 2
assert_eq true "$(out .body.deleted)" "odd pfaId deleted"
sim_setup PUT "/__sim/records?tenant=dots" '{"records":[{"pfaId":"..","data":{"n":1}},{"pfaId":".","data":{"n":2}}]}'
probe dots get '..'
assert_eq '..' "$(out .body.pfaId)" "pfaId '..' is a record, not a dot segment"
probe dots get '.'
assert_eq '.' "$(out .body.pfaId)" "pfaId '.' is a record, not a dot segment"

test_begin "pull"
recs=$(jq -cn '[range(0; 25) | {pfaId: ("Q" + (100 + . | tostring)), data: {n: .}}]')
sim_setup PUT "/__sim/records?tenant=q" "{\"records\": $recs}"
probe q pull --limit 10
assert_eq 10 "$(out '.body.records|length')" "page 1"
c1=$(out .body.nextCursor)
assert_ne null "$c1" "cursor"
probe q pull --limit 10 --cursor "$c1"
assert_eq Q110 "$(out '.body.records[0].pfaId')" "page 2 continues"
c2=$(out .body.nextCursor)
probe q pull --limit 10 --cursor "$c2"
assert_eq 5 "$(out '.body.records|length')" "page 3"
assert_eq null "$(out .body.nextCursor)" "last page"
ts=$(out '.body.records[0].updatedAt')
probe q pull --since "$ts" --limit 500
assert_eq 25 "$(out '.body.records|length')" "updatedSince inclusive"
offset_form=$(date -u -d "${ts%Z}" '+%Y-%m-%dT%H:%M:%S').000+00:00
probe q pull --since "$offset_form" --limit 3
assert_eq ok "$(out .outcome)" "'+' in updatedSince is encoded"
assert_eq 3 "$(out '.body.records|length')" "offset form"
probe q pull --since "2999-01-01T00:00:00Z"
assert_eq 0 "$(out '.body.records|length')" "nothing newer"
probe q pull --since "not a date"
assert_eq permanent "$(out .outcome)" "bad updatedSince is a 400"
probe q pull
assert_eq 25 "$(out '.body.records|length')" "no parameters at all"

# a sanitizer build cannot run under valgrind: scripts/test sets PEMS_TEST_VALGRIND=0 there
if [ "${PEMS_TEST_VALGRIND:-1}" = 0 ]; then
  echo "test_pems_client: valgrind skipped (PEMS_TEST_VALGRIND=0)" >&2
else
  test_begin "valgrind"
  for cmd in "get P1" "update P1 9 {\"a\":1} k" "pull --limit 2" "health"; do
    # shellcheck disable=SC2086
    valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=9 \
      "$PROBE" --url "$SIM/t/c" --repeat 2 $cmd >/dev/null 2>"$TEST_TMP/vg"
    assert_eq 0 "$?" "valgrind clean: $cmd ($(head -c 300 "$TEST_TMP/vg"))"
  done
  valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=9 \
    "$PROBE" --url "http://127.0.0.1:$port/t/c" get P1 >/dev/null 2>"$TEST_TMP/vg"
  assert_eq 0 "$?" "valgrind clean on a transport error"
fi

finish
