#!/usr/bin/env bash
# Destructive: the database stopped and started again under the API (503
# service_unavailable, then recovery on the next request), and kill -9 of a pems-fcgi child
# under load (requests keep succeeding, pemsd replaces the child). It runs on its own
# private stack (own ports and data), so the shared stack and the tests using it are never
# disturbed; the private stack is stopped at the end.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
. "$(dirname "$0")/private_stack.sh"

STACK="$PEMS_ROOT/scripts/stack"
db_up() { pg_isready -q -h 127.0.0.1 -p "$PEMS_PG_PORT" 2>/dev/null; }
trap 'private_stack_stop; rm -rf "$TEST_TMP"' EXIT
private_stack_start apiresil "${PEMS_RESIL_HTTPS_PORT:-9843}" "${PEMS_RESIL_SIM_PORT:-19480}" \
  "${PEMS_RESIL_PG_PORT:-26832}" PEMS_FCGI_CHILDREN=3 || fx_die "private stack did not start"
fx_require_stack

ORG=$(fx_org resilience)
USER_ID=$(fx_user "$ORG" Read,Write,Sync)
TOKEN=$(fx_token "$USER_ID")
fx_mirror "$ORG" PFA-R1 1 >/dev/null
fx_mod "$ORG" PFA-R1 "$USER_ID" pending_sync 1 '{"model":"r"}' >/dev/null
LIST="/api/pems/modifications?organizationId=$ORG"

# the children of this stack's pemsd
children() { pgrep -x -P "$(pemsd_pid)" pems-fcgi; }

test_begin "baseline"
api GET "$LIST"
assert_eq 200 "$HTTP_STATUS" "list before"

test_begin "database down -> 503"
"$STACK" db-stop >/dev/null 2>&1 || fail "scripts/stack db-stop failed"
db_down() { ! db_up; }
wait_for 15 db_down || fail "database still up"
START=$SECONDS
TOKEN='' api GET /api/pems/health
assert_eq 503 "$HTTP_STATUS" "health while the database is down"
assert_jq .status down "health status down"
assert_keys . "status database worker" "health keys while down"
for i in 1 2 3 4 5 6; do   # more requests than children, so every child meets the dead connection
  api GET "$LIST"
  assert_error 503 service_unavailable "authed GET #$i while the database is down"
done
assert_error_envelope "503"
api POST /api/pems/write-sync "{\"organizationId\":\"$ORG\"}"
assert_error 503 service_unavailable "write-sync while the database is down"
api POST /api/pems/modifications \
  "{\"organizationId\":\"$ORG\",\"pfaId\":\"PFA-R1\",\"operation\":\"update\",\"baseVersion\":1,\"delta\":{\"model\":\"q\"}}"
assert_error 503 service_unavailable "POST modifications while the database is down"
assert_le $((SECONDS - START)) 20 "the 503s come quickly (no long hang)"
PIDS_DOWN=$(children | sort | tr '\n' ' ')
assert_ne "" "$PIDS_DOWN" "pems-fcgi children alive while the database is down"

test_begin "database back -> the next request succeeds"
"$STACK" db-start >/dev/null 2>&1 || fail "scripts/stack db-start failed"
wait_for 30 db_up || fail "database did not come back"
api GET "$LIST"
assert_eq 200 "$HTTP_STATUS" "first request after the restart"
OK=0
for i in $(seq 1 12); do
  api GET "$LIST"
  [ "$HTTP_STATUS" = 200 ] && OK=$((OK + 1))
done
assert_eq 12 "$OK" "the next 12 requests (every child) succeed"
TOKEN='' api GET /api/pems/health
assert_eq 200 "$HTTP_STATUS" "health after the restart"
assert_jq .status ok "health status after the restart: the worker's heartbeat outlived the outage"
api POST /api/pems/write-sync "{\"organizationId\":\"$ORG\"}"
assert_eq 202 "$HTTP_STATUS" "write-sync after the restart"
assert_jq .queuedCount 1 "the pending modification queued"
assert_eq "$PIDS_DOWN" "$(children | sort | tr '\n' ' ')" "no child crashed over the outage"

test_begin "kill -9 of a pems-fcgi child under load"
N=$(children | wc -l)
assert_ge "$N" 1 "pems-fcgi children running"
VICTIM=$(children | head -n 1)
REQUESTS=300
# 3 clients, each paced to ~30 requests/s, so nginx's per-client limit is not what we measure
for c in 1 2 3; do
  (
    for i in $(seq 1 $((REQUESTS / 3))); do
      curl -sk -o /dev/null -w '%{http_code}\n' --max-time 10 -H "Authorization: Bearer $TOKEN" "$PEMS_URL$LIST"
      sleep 0.03
    done > "$TEST_TMP/load-$c"
  ) &
done
sleep 1
kill -9 "$VICTIM" 2>/dev/null || fail "could not kill pems-fcgi $VICTIM"
wait
cat "$TEST_TMP"/load-[0-9] > "$TEST_TMP/load"
TOTAL=$(wc -l < "$TEST_TMP/load")
FAILURES=$(grep -vc '^200$' "$TEST_TMP/load")
printf 'resilience: kill -9 of pems-fcgi %s: %d of %d requests failed (%s)\n' "$VICTIM" "$FAILURES" "$TOTAL" \
  "$(grep -v '^200$' "$TEST_TMP/load" | sort | uniq -c | tr '\n' ' ')" >&2
assert_eq "$REQUESTS" "$TOTAL" "every request answered"
assert_le "$FAILURES" 2 "at most the in-flight request(s) of the killed child fail"
back_to_n() { [ "$(children | wc -l)" -ge "$N" ]; }
wait_for 15 back_to_n || fail "children not back to $N"
assert_eq "$N" "$(children | wc -l)" "child count recovered"
assert_eq "" "$(children | grep -x "$VICTIM")" "the killed pid is gone"
api GET "$LIST"
assert_eq 200 "$HTTP_STATUS" "the service answers after the kill"

finish
