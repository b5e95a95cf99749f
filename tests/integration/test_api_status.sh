#!/usr/bin/env bash
# GET /sync-status, /health and /metrics.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG=$(fx_org status)
EMPTY_ORG=$(fx_org status-empty)
USER_ID=$(fx_user "$ORG" Read)
fx_user "$EMPTY_ORG" Read "$(fx_user_field "$USER_ID" username)" >/dev/null
TOKEN=$(fx_token "$USER_ID")
fx_mirror "$ORG" PFA-S1 1 >/dev/null

STATUS_KEYS="totalQueued processing completed synced failed conflicts notQueued avgSyncTime lastSyncAt nextSyncAt health healthReason successRate"

# items in a known mix: 2 pending (not due), 1 processing, 3 completed (100, 200, 300 ms), 1 failed
add() {  # add MOD_STATUS ITEM_STATUS [OFFSET] -> item id
  local m
  m=$(fx_mod "$ORG" PFA-S1 "$USER_ID" "$1" 1 '{"model":"s"}')
  fx_queue "$ORG" "$m" "$2" "${3:-0 seconds}"
}
add queued pending '1 hour' >/dev/null
add queued pending '1 hour' >/dev/null
add queued processing >/dev/null
for ms in 100 200 300; do
  i=$(add synced completed)
  fx_sql "UPDATE pfa_write_queue SET duration_ms = :'d', started_at = completed_at - CAST(:'d' || ' milliseconds' AS interval)
          WHERE id = :'i'" -v d="$ms" -v i="$i"
done
FAILED_ITEM=$(add sync_error failed)
fx_sql "UPDATE pfa_write_queue SET duration_ms = 400, started_at = completed_at - interval '400 milliseconds'
        WHERE id = :'i'" -v i="$FAILED_ITEM"

test_begin "sync-status of an organization without items"
api GET "/api/pems/sync-status?organizationId=$EMPTY_ORG"
assert_eq 200 "$HTTP_STATUS" "GET sync-status"
assert_keys . "$STATUS_KEYS" "sync-status keys"
for k in totalQueued processing completed failed; do assert_jq ".$k" 0 "$k 0"; done
assert_jq .health healthy "healthy: the stack's worker beats, nothing failed or overdue"
assert_jq .successRate 100 "successRate 100 while no item has finished"
assert_jq .lastSyncAt null "lastSyncAt null: nothing completed"
assert_jq .healthReason null "no reason while healthy"

test_begin "sync-status counts the organization's items"
api GET "/api/pems/sync-status?organizationId=$ORG"
assert_eq 200 "$HTTP_STATUS" "GET sync-status"
assert_keys . "$STATUS_KEYS" "sync-status keys"
assert_jq .totalQueued 2 "totalQueued: the pending items"
assert_jq .processing 1 "processing"
assert_jq .completed 3 "completed"
assert_jq .failed 1 "failed"
assert_jq .successRate 75 "successRate: 3 of 4 finished items, integer percent"
assert_jq '.successRate | type' number "successRate is a number"
assert_eq true "$(jbody '.successRate == (.successRate | floor)')" "successRate is an integer"
assert_jq '.avgSyncTime | type' number "avgSyncTime is a number (ms)"
assert_jq .avgSyncTime 200 "avgSyncTime: milliseconds per completed item"
assert_ne healthy "$(jbody .health)" "75 % success is not healthy"
assert_jq .health degraded "degraded: the worker beats, 75 % success"
assert_jq .healthReason.code low_success_rate "the reason behind degraded"
assert_match '75 %' "$(jbody .healthReason.message)" "the reason says the rate"
assert_jq .synced 3 "synced: the completed items, none held by a conflict"
assert_match "$ISO_RE" "$(jbody .lastSyncAt)" "lastSyncAt: items completed"
assert_match "$ISO_RE" "$(jbody .nextSyncAt)" "nextSyncAt: the stack's worker beats"

test_begin "sync-status date window"
api GET "/api/pems/sync-status?organizationId=$ORG&startDate=2001-01-01&endDate=2001-12-31"
assert_eq 200 "$HTTP_STATUS" "window in the past"
assert_jq .completed 0 "no item completed in 2001"
assert_jq .failed 0 "no item failed in 2001"
TODAY=$(date -u +%Y-%m-%d)
api GET "/api/pems/sync-status?organizationId=$ORG&startDate=$TODAY"
assert_eq 200 "$HTTP_STATUS" "window from today"
assert_jq .completed 3 "today's completed items"
api GET "/api/pems/sync-status?organizationId=$ORG&status=failed"
assert_eq 200 "$HTTP_STATUS" "status filter"

test_begin "sync-status: kept counters and a scan of the queue agree"
api GET "/api/pems/sync-status?organizationId=$ORG"
COUNTED=$(jbody '{totalQueued, processing, completed, failed, avgSyncTime, lastSyncAt, successRate, health}' | jq -c .)
api GET "/api/pems/sync-status?organizationId=$ORG&startDate=2000-01-01"
SCANNED=$(jbody '{totalQueued, processing, completed, failed, avgSyncTime, lastSyncAt, successRate, health}' | jq -c .)
assert_eq "$SCANNED" "$COUNTED" "unfiltered (counters) = filtered to everything (scan)"
# an item moves: the counters follow, in the same transaction as the change
fx_sql "UPDATE pfa_write_queue SET status = 'cancelled', locked_by = NULL, locked_until = NULL
        WHERE organization_id = :'o' AND status = 'processing'" -v o="$ORG" >/dev/null
api GET "/api/pems/sync-status?organizationId=$ORG"
assert_jq .processing 0 "processing after the item was cancelled"
fx_sql "DELETE FROM pfa_write_queue WHERE id = :'i'" -v i="$FAILED_ITEM" >/dev/null
api GET "/api/pems/sync-status?organizationId=$ORG"
assert_jq .failed 0 "failed after the item was deleted"
assert_jq .successRate 100 "successRate follows"
assert_queue_stats_consistent "after inserts, updates and a delete"

# Each pems-fcgi keeps the unfiltered answer per organization (src/api/api_sync_status.c):
# every change below is read back by enough requests that each child answers at least once.
CACHE_ORG=$(fx_org status-cache)
fx_user "$CACHE_ORG" Read "$(fx_user_field "$USER_ID" username)" >/dev/null
fx_mirror "$CACHE_ORG" PFA-C1 1 >/dev/null
# status_all N JQ: N requests for CACHE_ORG, prints each answer's JQ, one a line
status_all() {
  local i
  for i in $(seq "$1"); do
    api GET "/api/pems/sync-status?organizationId=$CACHE_ORG"
    jbody "$2"
  done
}
# same_in_all N JQ WANT MESSAGE
same_in_all() {
  local got
  got=$(status_all "$1" "$2" | sort | uniq -c | awk '{print $2 " x" $1}' | tr '\n' ' ')
  assert_eq "$3 x$1 " "$got" "$4"
}

test_begin "sync-status: a kept answer follows every write to the queue"
M1=$(fx_mod "$CACHE_ORG" PFA-C1 "$USER_ID" queued 1 '{"model":"c"}')
I1=$(fx_queue "$CACHE_ORG" "$M1" pending '1 hour')
same_in_all 12 .totalQueued 1 "one pending item"
M2=$(fx_mod "$CACHE_ORG" PFA-C1 "$USER_ID" queued 1 '{"model":"d"}')
fx_queue "$CACHE_ORG" "$M2" pending '1 hour' >/dev/null
same_in_all 12 .totalQueued 2 "a second pending item, answered by every process"
fx_sql "UPDATE pfa_write_queue SET status = 'completed', completed_at = now(), duration_ms = 50
        WHERE id = :'i'" -v i="$I1" >/dev/null
same_in_all 12 '[.totalQueued, .completed, .avgSyncTime] | join(",")' "1,1,50" "an item completed"
same_in_all 12 .health healthy "healthy: nothing overdue, nothing failed"

test_begin "sync-status: a kept answer turns degraded when an item falls overdue, with no write"
# rescheduled in place (no counter changes): overdue one minute after, 3 s from now
fx_sql "UPDATE pfa_write_queue SET scheduled_at = now() - interval '57 seconds'
        WHERE organization_id = :'o' AND status = 'pending'" -v o="$CACHE_ORG" >/dev/null
same_in_all 12 .health healthy "the rescheduled item is not overdue yet"
sleep 3.5
same_in_all 12 .health degraded "3.5 s later it is, and every process says so"
fx_sql "UPDATE pfa_write_queue SET scheduled_at = now() + interval '1 hour'
        WHERE organization_id = :'o' AND status = 'pending'" -v o="$CACHE_ORG" >/dev/null
same_in_all 12 .health healthy "rescheduled into the future: not overdue again"

test_begin "sync-status: a kept answer follows the edits not queued and the conflicts"
fx_mod "$CACHE_ORG" PFA-C1 "$USER_ID" pending_sync 1 '{"model":"e"}' >/dev/null
same_in_all 12 .notQueued 1 "an edit not queued yet"
M3=$(fx_mod "$CACHE_ORG" PFA-C1 "$USER_ID" conflict 1 '{"model":"f"}')
fx_conflict "$CACHE_ORG" "$M3" PFA-C1 1 2 model '{"model":"f"}' '{"model":"g"}' >/dev/null
same_in_all 12 .conflicts 1 "a conflict found"
fx_sql "UPDATE pfa_sync_conflict SET status = 'resolved', resolution = 'use_pems', resolved_at = now()
        WHERE modification_id = :'m'" -v m="$M3" >/dev/null
same_in_all 12 .conflicts 0 "the conflict resolved"

test_begin "sync-status: heartbeats give kept answers a new version, and bound their time"
# (the stack's own worker beats too, so its runs, not ours, may be the next sync: checked in SQL)
FAKE=status-cache-$RANDOM
HB0=$(fx_sql "SELECT version FROM worker_heartbeat_version")
fx_sql "INSERT INTO worker_heartbeats (worker_id, hostname, pid, last_seen_at, next_sync_at)
        VALUES (:'w', 'test', 1, now(), now() + interval '1 second')" -v w="$FAKE" >/dev/null
HB1=$(fx_sql "SELECT version FROM worker_heartbeat_version")
assert_ne "$HB0" "$HB1" "a heartbeat written: a new heartbeat version"
assert_eq t "$(fx_sql "SELECT pems_sync_status_valid_until(:'o', 60)
                         <= (SELECT next_sync_at + interval '5 seconds' FROM worker_heartbeats
                             WHERE worker_id = :'w')" -v o="$CACHE_ORG" -v w="$FAKE")" \
  "a kept answer holds no longer than 5 s past the next run a live worker announced"
fx_sql "DELETE FROM worker_heartbeats WHERE worker_id = :'w'" -v w="$FAKE" >/dev/null
assert_ne "$HB1" "$(fx_sql "SELECT version FROM worker_heartbeat_version")" "a heartbeat removed: a new version"

test_begin "sync-status: a server's health gives its organization a new status version"
v() { fx_sql "SELECT status_version FROM pfa_queue_stats WHERE organization_id = :'o'" -v o="$CACHE_ORG"; }
OUT=$(fx_sql "BEGIN;
  SELECT status_version FROM pfa_queue_stats WHERE organization_id = :'o';
  INSERT INTO api_servers (organization_id, base_url, credentials_enc, health_ok)
    VALUES (:'o', 'http://127.0.0.1:9', '\\x00', true);
  SELECT status_version FROM pfa_queue_stats WHERE organization_id = :'o';
  UPDATE api_servers SET health_checked_at = now() WHERE organization_id = :'o';
  SELECT status_version FROM pfa_queue_stats WHERE organization_id = :'o';
  UPDATE api_servers SET health_ok = false WHERE organization_id = :'o';
  SELECT status_version FROM pfa_queue_stats WHERE organization_id = :'o';
  DELETE FROM api_servers WHERE organization_id = :'o';
  SELECT status_version FROM pfa_queue_stats WHERE organization_id = :'o';
  ROLLBACK" -v o="$CACHE_ORG" | tr '\n' ' ')
read -r v0 v1 v2 v3 v4 <<<"$OUT"
assert_ne "$v0" "$v1" "a server added: a new version"
assert_eq "$v1" "$v2" "a server's other columns written: the same version"
assert_ne "$v2" "$v3" "health_ok changed: a new version"
assert_ne "$v3" "$v4" "the server removed: a new version"
assert_queue_stats_consistent "the cached organization"

test_begin "sync-status: a conflict is counted as a conflict, not as a success; edits not queued are counted"
C_ORG=$(fx_org status-conflict)
fx_user "$C_ORG" Read "$(fx_user_field "$USER_ID" username)" >/dev/null
fx_mirror "$C_ORG" PFA-C1 2 >/dev/null
for _ in 1 2 3; do
  fx_queue "$C_ORG" "$(fx_mod "$C_ORG" PFA-C1 "$USER_ID" synced 1 '{"model":"ok"}')" completed >/dev/null
done
# the worker holds a conflict's item as completed with last_error 'conflict'
HELD_MOD=$(fx_mod "$C_ORG" PFA-C1 "$USER_ID" conflict 1 '{"model":"mine"}')
HELD_ITEM=$(fx_queue "$C_ORG" "$HELD_MOD" completed)
fx_sql "UPDATE pfa_write_queue SET last_error = 'conflict', last_http_status = 409 WHERE id = :'i'" -v i="$HELD_ITEM" >/dev/null
fx_conflict "$C_ORG" "$HELD_MOD" PFA-C1 1 2 model '{"model":"mine"}' '{"model":"theirs"}' >/dev/null
for _ in 1 2; do fx_mod "$C_ORG" PFA-C1 "$USER_ID" pending_sync 2 '{"model":"later"}' >/dev/null; done
api GET "/api/pems/sync-status?organizationId=$C_ORG"
assert_jq .completed 4 "completed: every completed item"
assert_jq .synced 3 "synced: not the conflict's item"
assert_jq .conflicts 1 "conflicts: the unresolved one"
assert_jq .successRate 75 "successRate: 3 synced of 4 finished, the conflict no success"
assert_jq .notQueued 2 "notQueued: the pending_sync edits"
COUNTED=$(jbody '{completed, synced, conflicts, notQueued, successRate}' | jq -cS .)
api GET "/api/pems/sync-status?organizationId=$C_ORG&startDate=2000-01-01"
assert_eq "$COUNTED" "$(jbody '{completed, synced, conflicts, notQueued, successRate}' | jq -cS .)" \
  "the scan agrees with the counters"
fx_sql "UPDATE pfa_sync_conflict SET status = 'resolved', resolution = 'use_pems', resolved_at = now()
        WHERE modification_id = :'m'" -v m="$HELD_MOD" >/dev/null
api GET "/api/pems/sync-status?organizationId=$C_ORG"
assert_jq .conflicts 0 "resolved: no conflict open"
assert_jq .synced 3 "the held item still wrote nothing"

test_begin "sync-status: the reason behind unhealthy (PEMS failing its health check)"
# (credentials that do not open: the worker's own checks of this server fail too)
fx_sql "INSERT INTO api_servers (organization_id, base_url, credentials_enc, health_ok, health_error,
          health_checked_at)
        VALUES (:'o', 'http://127.0.0.1:9/', '\\x00', false, 'HTTP 503: Service Unavailable', now())" \
  -v o="$C_ORG" >/dev/null || fail "insert a failing server"
api GET "/api/pems/sync-status?organizationId=$C_ORG"
assert_jq .health unhealthy "unhealthy while PEMS fails its health check"
assert_jq .healthReason.code pems_unreachable "the reason's code"
HEALTH_ERROR=$(fx_sql "SELECT health_error FROM api_servers WHERE organization_id = :'o'" -v o="$C_ORG")
assert_eq "PEMS health check failing: $HEALTH_ERROR" "$(jbody .healthReason.message)" "the reason carries what PEMS answered"
assert_match "$ISO_RE" "$(jbody .healthReason.at)" "and when it was checked"
fx_sql "DELETE FROM api_servers WHERE organization_id = :'o'" -v o="$C_ORG" >/dev/null

test_begin "one rule: GET /sync-status and pemsctl status agree on overdue items and live workers"
ONE_ORG=$(fx_org status-one)
fx_user "$ONE_ORG" Read "$(fx_user_field "$USER_ID" username)" >/dev/null
fx_mirror "$ONE_ORG" PFA-O1 1 >/dev/null
# due two minutes ago and still pending: overdue (a live worker looks twice a second)
fx_queue "$ONE_ORG" "$(fx_mod "$ONE_ORG" PFA-O1 "$USER_ID" queued 1 '{"model":"o"}')" pending '-2 minutes' >/dev/null
api GET "/api/pems/sync-status?organizationId=$ONE_ORG"
assert_jq .health degraded "degraded: an item overdue"
API_STATUS=$(jbody 'del(.nextSyncAt)' | jq -cS .)
CTL=$(pemsctl status --org "$ONE_ORG" --json 2>"$TEST_TMP/ctl.err") || fail "pemsctl status: $(cat "$TEST_TMP/ctl.err")"
assert_eq 1 "$(jq -r .due.overdue <<<"$CTL")" "pemsctl status counts the same item overdue"
assert_eq "$API_STATUS" "$(jq -cS '.syncStatus | del(.nextSyncAt)' <<<"$CTL")" "pemsctl status shows what GET /sync-status answers"
assert_match "^health: +degraded " "$(pemsctl status --org "$ONE_ORG" 2>/dev/null | grep '^health:')" "its text says so"
# a worker last seen four minutes ago, three periods of the default schedule (a minute) and
# more: not live, so the next run it announced is nobody's
GONE_HB="gone-$$"
fx_sql "INSERT INTO worker_heartbeats (worker_id, hostname, pid, last_seen_at, next_sync_at)
        VALUES (:'w', 'gone', 1, now() - interval '4 minutes', now() + interval '2 seconds')" -v w="$GONE_HB" >/dev/null
GONE_NEXT=$(fx_sql "SELECT pems_iso(next_sync_at) FROM worker_heartbeats WHERE worker_id = :'w'" -v w="$GONE_HB")
api GET "/api/pems/sync-status?organizationId=$ONE_ORG"
assert_ne "$GONE_NEXT" "$(jbody .nextSyncAt)" "GET /sync-status: not a live worker's next run"
CTL=$(pemsctl status --json 2>/dev/null)
assert_ne "$GONE_NEXT" "$(jq -r .nextRunAt <<<"$CTL")" "pemsctl status: not a live worker's next run"
fx_sql "UPDATE worker_heartbeats SET last_seen_at = now() - interval '2 minutes' WHERE worker_id = :'w'" -v w="$GONE_HB" >/dev/null
api GET "/api/pems/sync-status?organizationId=$ONE_ORG"
assert_eq "$GONE_NEXT" "$(jbody .nextSyncAt)" "seen two minutes ago: live, its next run is the next sync"
assert_eq "$GONE_NEXT" "$(pemsctl status --json 2>/dev/null | jq -r .nextRunAt)" "pemsctl status: the same"
fx_sql "DELETE FROM worker_heartbeats WHERE worker_id = :'w'" -v w="$GONE_HB" >/dev/null

test_begin "health"
TOKEN='' api GET /api/pems/health
assert_eq 200 "$HTTP_STATUS" "GET health"
assert_keys . "status database worker" "health keys"
assert_jq .status ok "status ok: the database is up and the stack's worker beats"
assert_jq .worker ok "worker ok"
curl -sk -o /dev/null -D "$TEST_TMP/h" "$PEMS_URL/api/pems/health"
assert_match '^application/json' "$(grep -i '^content-type:' "$TEST_TMP/h" | sed 's/^[^:]*: *//' | tr -d '\r')" \
  "health content-type"

test_begin "metrics: Prometheus text"
curl -sk -D "$TEST_TMP/mh" -o "$TEST_TMP/m1" -w '%{http_code}' "$PEMS_URL/api/pems/metrics" > "$TEST_TMP/mcode"
assert_eq 200 "$(cat "$TEST_TMP/mcode")" "GET metrics"
assert_match '^text/plain' "$(grep -i '^content-type:' "$TEST_TMP/mh" | sed 's/^[^:]*: *//' | tr -d '\r')" "content-type text/plain"
assert_match 'version=0\.0\.4' "$(grep -i '^content-type:' "$TEST_TMP/mh" | tr -d '\r')" "content-type version 0.0.4"
M=$(cat "$TEST_TMP/m1")
for name in pems_http_requests_total pems_http_request_duration_seconds pems_queue_items pems_sync_items_total \
            pems_upstream_requests_total pems_worker_heartbeat_timestamp_seconds; do
  assert_match "# TYPE $name " "$M" "TYPE line for $name"
done
assert_match '# TYPE pems_http_requests_total counter' "$M" "requests_total is a counter"
assert_match '# TYPE pems_http_request_duration_seconds histogram' "$M" "duration is a histogram"
assert_match 'pems_http_request_duration_seconds_bucket\{[^}]*le="\+Inf"' "$M" "histogram +Inf bucket"
assert_match 'pems_http_request_duration_seconds_count' "$M" "histogram count"
assert_match 'pems_http_request_duration_seconds_sum' "$M" "histogram sum"
assert_match 'pems_queue_items\{status="pending"\} [0-9]' "$M" "queue items by status"
BAD=$(grep -vE '^(#.*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.eE+-]+( [0-9]+)?|[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (NaN|\+Inf|-Inf))$' \
  "$TEST_TMP/m1" | head -3)
assert_eq "" "$BAD" "every line is a comment or a sample"

test_begin "metrics are counted for the whole service"
# sum of health requests with status 200, whatever the route label spelling
health_count() {
  curl -sk "$PEMS_URL/api/pems/metrics" |
    awk '/^pems_http_requests_total\{/ && /health/ && /status="200"/ { s += $NF } END { printf "%d", s }'
}
BEFORE=$(health_count)
for _ in $(seq 1 24); do curl -sk -o /dev/null "$PEMS_URL/api/pems/health" & done
wait
AFTER=$(health_count)
assert_ge "$AFTER" $((BEFORE + 24)) "24 health requests counted over all processes ($BEFORE -> $AFTER)"

finish
