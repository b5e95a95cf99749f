#!/usr/bin/env bash
# Heartbeat rows of dead workers go away (issue 14, item 8): a worker removes the rows not seen
# for three of its schedule periods (at least a minute), so `pemsctl status` and /metrics stop
# listing them, while a worker seen recently stays.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
. "$(dirname "$0")/worker_fixtures.sh"
wfx_require

SUF=$(openssl rand -hex 4)
DEAD="dead-$SUF" RECENT="recent-$SUF"
metrics_lists() { curl -sk "$PEMS_URL/api/pems/metrics" | grep -c "pems_worker_heartbeat_timestamp_seconds{worker=\"$1\"}"; }
status_lists() {
  pemsctl status --json </dev/null 2>/dev/null |
    jq -r --arg w "$1" '[.workers[] | select(.workerId == $w)] | length'
}
hb_rows() { fx_sql "SELECT count(*) FROM worker_heartbeats WHERE worker_id = :'w'" -v w="$1"; }

test_begin "a dead worker's heartbeat is listed before any worker prunes"
# the default schedule runs every minute: three periods are 3 min. The stack's own worker
# prunes at every scheduled run, so the row is seen 150 s ago: within the window for the
# 30 s these two reads take, and only then made an hour old for the worker under test.
psql_q "INSERT INTO worker_heartbeats (worker_id, hostname, pid, started_at, last_seen_at, state)
        VALUES ('$DEAD', 'gone', 1, now() - interval '2 h', now() - interval '150 s', 'stopped'),
               ('$RECENT', 'here', 2, now() - interval '2 h', now() - interval '40 s', 'idle')" >/dev/null
assert_eq 1 "$(metrics_lists "$DEAD")" "metrics lists the inserted dead worker"
assert_eq 1 "$(status_lists "$DEAD")" "pemsctl status lists the inserted dead worker"
psql_q "UPDATE worker_heartbeats SET last_seen_at = now() - interval '1 h' WHERE worker_id = '$DEAD'" >/dev/null

test_begin "a running worker removes it"
wfx_once PEMS_WRITE_SYNC_SCHEDULE='* * * * *'
assert_eq 0 "$WORKER_RC" "pemsworker --once exit status"
assert_eq 0 "$(hb_rows "$DEAD")" "dead worker's row removed"
assert_eq 1 "$(hb_rows "$RECENT")" "a worker seen 40 s ago is kept"
assert_eq 0 "$(metrics_lists "$DEAD")" "metrics no longer lists the dead worker"
assert_eq 0 "$(status_lists "$DEAD")" "pemsctl status no longer lists the dead worker"
assert_eq 1 "$(status_lists "$RECENT")" "pemsctl status still lists the recent worker"
grep -q 'heartbeats_pruned' "$TEST_TMP/worker.log" || fail "no heartbeats_pruned log line"
pass

test_begin "the window is three schedule periods"
# hourly: three periods are 3 h; a worker seen 1 h ago is kept, one seen 4 h ago is not
psql_q "UPDATE worker_heartbeats SET last_seen_at = now() - interval '1 h' WHERE worker_id = '$RECENT';
        INSERT INTO worker_heartbeats (worker_id, hostname, pid, last_seen_at)
        VALUES ('$DEAD', 'gone', 1, now() - interval '4 h')" >/dev/null
wfx_once PEMS_WRITE_SYNC_SCHEDULE='0 * * * *'
assert_eq 1 "$(hb_rows "$RECENT")" "seen 1 h ago, hourly schedule: kept"
assert_eq 0 "$(hb_rows "$DEAD")" "seen 4 h ago, hourly schedule: removed"
psql_q "DELETE FROM worker_heartbeats WHERE worker_id IN ('$DEAD', '$RECENT')" >/dev/null
finish
