#!/usr/bin/env bash
# pemsworker under pemsd survives kill -9 mid-batch (pemsd restarts it, expired leases are
# claimed again, each write applied at PEMS once) and a PostgreSQL restart mid-run (no item
# lost). Destructive: runs its own stack with short leases.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
. "$(dirname "$0")/worker_fixtures.sh"
. "$(dirname "$0")/private_stack.sh"
trap 'private_stack_stop; rm -rf "$TEST_TMP"' EXIT

N=40
RPS=5

# No scheduled run: one every minute would hide a worker that stopped retrying by itself.
private_stack_start wcrash "${PEMS_WCRASH_HTTPS_PORT:-9943}" "${PEMS_WCRASH_SIM_PORT:-19580}" \
  "${PEMS_WCRASH_PG_PORT:-26932}" PEMS_LEASE_SECONDS=5 PEMS_FCGI_CHILDREN=2 \
  "PEMS_WRITE_SYNC_SCHEDULE=0 0 1 1 *" \
  || { fail "private stack did not start"; finish; exit 1; }
wfx_require

items_not_once() {
  fx_sql "SELECT count(*) FROM pfa_write_queue q WHERE q.organization_id = :'o'
          AND (SELECT count(*) FROM audit_log a WHERE a.entity_id = q.id::text
               AND a.action = 'queue_item.completed') <> 1" -v o="$1"
}
queue_state() {
  fx_sql "SELECT status, locked_by, locked_until > now() AS leased, count(*)
            FROM pfa_write_queue WHERE organization_id = :'o' GROUP BY 1, 2, 3" -v o="$1" \
    | sed 's/^/  queue: /' >&2
}
# worker_events_since LINE EVENT: how many EVENT lines pemsworker logged after line LINE
worker_events_since() {
  tail -n +"$(($1 + 1))" "$STACK_DIR/log/pemsd.log" | grep -c "prog=pemsworker.*event=$2" || true
}
the_worker() { children_of pemsworker | head -n 1; }
worker_other_than() { local p; p=$(the_worker); [ -n "$p" ] && [ "$p" != "$1" ]; }
synced_at_least() { [ "$(fx_org_mods "$1" synced 2>/dev/null || echo 0)" -ge "$2" ] 2>/dev/null; }

# prepare ORG_NAME PREFIX: an organization at RPS with N pulled records and N modifications
prepare() {
  wfx_org "$1" "$RPS"
  ORG=$W_ORG TEN=$W_TENANT TOK=$W_TOKEN USR=$W_USER
  sim_seed "$TEN" "$(wfx_records "$2" "$N")"
  wfx_drive 20 org_mirror_is "$ORG" "$N" || { fail "mirror rows after a pull"; worker_log_tail; }
  wfx_mods_sql "$ORG" "$USR" "$2" "$N" 1 '{"monthlyRate":31000}'
}

# all_written PREFIX: the end state after the disruption
all_written() {
  assert_eq "$N" "$(fx_org_mods "$ORG" synced)" "modifications synced"
  assert_eq "$N" "$(fx_org_items "$ORG" completed)" "queue items completed"
  assert_eq 0 "$(items_not_once "$ORG")" "each item completed once"
  assert_eq "$N" "$(fx_count pfa_mirror "organization_id = :'o' AND version = 2
    AND data->>'monthlyRate' = '31000'" -v o="$ORG")" "mirror rows at version 2"
  assert_eq "$N" "$(sim_stat "$TEN" .writesApplied)" "each write applied at PEMS once"
  assert_le "$(sim_stat "$TEN" .maxRequestsInAnySecond)" "$RPS" "maxRequestsInAnySecond"
  # a write whose result could not be recorded is sent again with the same key: PEMS answers
  # it 200 from memory without applying it
  local dups; dups=$(sim_stat "$TEN" .duplicateWrites)
  printf 'info: %s duplicate (idempotent) writes\n' "$dups" >&2
  assert_eq $((N + dups)) "$(sim_count "$TEN" "PUT /pfa/{id}" 200)" "PUTs answered 200: each write once, plus the replays answered by key"
  assert_eq 31000 "$(sim_record "$TEN" "$1-$N" .data.monthlyRate)" "last record at PEMS"
}

# --- 11. kill -9 of pemsworker mid-batch ------------------------------------------------------------
test_begin "kill -9 of pemsworker mid-batch"
prepare crash K
wait_for 10 worker_other_than none || fail "no pemsworker under pemsd"
old=$(the_worker)
wfx_write_sync "$TOK" "$ORG" "$N"
wait_for 15 synced_at_least "$ORG" 5 || fail "the daemon did not start writing"
done_before=$(fx_org_mods "$ORG" synced)
kill -9 "$old"
assert_le "$done_before" $((N - 10)) "killed mid-batch ($done_before of $N done)"
wait_for 15 worker_other_than "$old" || fail "pemsd did not restart pemsworker"
new=$(the_worker)
assert_ne "$old" "$new" "a new pemsworker"
wait_for 60 org_mods_are "$ORG" synced "$N" \
  || { fail "only $(fx_org_mods "$ORG" synced) of $N synced after the kill"; pemsd_log_tail; }
all_written K
# the restart itself, in pemsd's log: the killed child's death, then the start of its successor
assert_eq 1 "$(grep -c "event=child_died child_pid=$old program=pemsworker signal=SIGKILL " \
  "$STACK_DIR/log/pemsd.log")" "pemsd logged the SIGKILL of pemsworker $old"
assert_eq 1 "$(grep -cE "event=child_started child_pid=$new program=\S*pemsworker$" \
  "$STACK_DIR/log/pemsd.log")" "pemsd logged the start of pemsworker $new"

# --- 12. PostgreSQL restart mid-run ------------------------------------------------------------------
test_begin "PostgreSQL restart mid-run"
prepare dbrestart D
wfx_write_sync "$TOK" "$ORG" "$N"
wait_for 15 synced_at_least "$ORG" 5 || fail "the daemon did not start writing"
"$PEMS_ROOT/scripts/stack" db-stop || fail "db-stop"
# long enough for several failed runs: their back-off grows past the heartbeat interval
log_from=$(wc -l < "$STACK_DIR/log/pemsd.log")
sleep 8
# while the database is away the worker retries at its back-off pace, not in a loop
# (a failed heartbeat once retried at once: thousands of attempts a second)
attempts=$(worker_events_since "$log_from" db_connect_failed)
assert_le "$attempts" 40 "connection attempts by pemsworker in 8 s without a database"
# ...and it does retry: runs at 2 s and 6 s after the first failure at least
retries=$(worker_events_since "$log_from" drain_aborted)
assert_le 2 "$retries" "failed runs retried in 8 s without a database"
"$PEMS_ROOT/scripts/stack" db-start || fail "db-start"
wait_for 60 org_mods_are "$ORG" synced "$N" \
  || { fail "only $(fx_org_mods "$ORG" synced) of $N synced after the restart"; pemsd_log_tail
       queue_state "$ORG"; }
all_written D
api_as "$TOK" GET "/api/pems/sync-status?organizationId=$ORG"
assert_eq 200 "$HTTP_STATUS" "the API answers after the restart"
assert_jq .completed "$N" "sync-status completed"

# --- 13. the scheduled pull fails: its retry pulls ----------------------------------------------
# A restarted worker's first run is a scheduled one (pull, then drain). With the database away
# it fails; the retry must pull too, not wait for the next scheduled run (a year away here).
test_begin "a failed scheduled pull is retried"
"$PEMS_ROOT/scripts/stack" db-stop || fail "db-stop"
old=$(the_worker)
kill -9 "$old"
wait_for 30 worker_other_than "$old" || fail "pemsd did not restart pemsworker"
sim_edit "$TEN" D-1 '{"monthlyRate":777}'
sleep 2
"$PEMS_ROOT/scripts/stack" db-start || fail "db-start"
rate_sql="SELECT data->>'monthlyRate' FROM pfa_mirror WHERE organization_id = :'o' AND pfa_id = 'D-1'"
wait_for 30 sql_is 777 "$rate_sql" -v o="$ORG" || pemsd_log_tail
assert_eq 777 "$(fx_sql "$rate_sql" -v o="$ORG")" "the upstream edit pulled after the database came back"

test_begin "queue counters"
assert_queue_stats_consistent "after worker crashes"

finish
