#!/usr/bin/env bash
# pemsworker against failing PEMS calls: 503 twice then success, 429 with Retry-After,
# permanent 400/401/404, 500 forever. Each in its own organization and simulator tenant,
# all in flight at once (a retry must not block the others).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
. "$(dirname "$0")/worker_fixtures.sh"
wfx_require

# delays (whole seconds) between each retry/deferral audit row and the scheduledAt it set
audit_delays() {  # ITEM_ID ACTION
  fx_sql "SELECT string_agg(round(extract(epoch FROM ((after->>'scheduledAt')::timestamptz
            - created_at)))::text, ',' ORDER BY id)
          FROM audit_log WHERE entity_id = :'e' AND action = :'a'" -v e="$1" -v a="$2"
}

test_begin "setup"
wfx_org f503; O503=$W_ORG T503=$W_TENANT K503=$W_TOKEN
wfx_org f429; O429=$W_ORG T429=$W_TENANT K429=$W_TOKEN
wfx_org f4xx; O4XX=$W_ORG T4XX=$W_TENANT K4XX=$W_TOKEN
wfx_org f500; O500=$W_ORG T500=$W_TENANT K500=$W_TOKEN
sim_seed "$T503" "$(wfx_records S 1)"
sim_seed "$T429" "$(wfx_records R 1)"
sim_seed "$T4XX" "$(wfx_records E 3)"
sim_seed "$T500" "$(wfx_records X 1)"
mirrors_ready() {
  org_mirror_is "$O503" 1 && org_mirror_is "$O429" 1 && org_mirror_is "$O4XX" 3 && org_mirror_is "$O500" 1
}
wfx_drive 20 mirrors_ready || { fail "mirrors not pulled"; worker_log_tail; }
sim_fault "$T503" '{"pfaId":"S-1","status":503,"count":2,"match":"writes"}'
sim_fault "$T429" '{"pfaId":"R-1","status":429,"count":1,"retryAfter":2,"match":"writes"}'
sim_fault "$T4XX" '{"pfaId":"E-1","status":400,"count":1,"match":"writes"}'
sim_fault "$T4XX" '{"pfaId":"E-2","status":401,"count":1,"match":"writes"}'
sim_fault "$T4XX" '{"pfaId":"E-3","status":404,"count":1,"match":"writes"}'
sim_fault "$T500" '{"pfaId":"X-1","status":500,"count":100,"match":"writes"}'
wfx_mod M503 "$K503" "$O503" S-1 1 '{"monthlyRate":11000}'
wfx_mod M429 "$K429" "$O429" R-1 1 '{"monthlyRate":12000}'
wfx_mod ME1 "$K4XX" "$O4XX" E-1 1 '{"monthlyRate":13000}'
wfx_mod ME2 "$K4XX" "$O4XX" E-2 1 '{"monthlyRate":13000}'
wfx_mod ME3 "$K4XX" "$O4XX" E-3 1 '{"monthlyRate":13000}'
wfx_mod M500 "$K500" "$O500" X-1 1 '{"monthlyRate":15000}'
wfx_write_sync "$K503" "$O503" 1
wfx_write_sync "$K429" "$O429" 1
wfx_write_sync "$K4XX" "$O4XX" 3
wfx_write_sync "$K500" "$O500" 1

all_done() {
  mod_is "$M503" synced && mod_is "$M429" synced && mod_is "$ME1" sync_error \
    && mod_is "$ME2" sync_error && mod_is "$ME3" sync_error && mod_is "$M500" sync_error
}
# 500 forever: retries after 5 + 10 + 20 s, so about 35 s
t0=$SECONDS
wfx_drive 60 all_done || {
  fail "not all finished: 503:$(fx_mod_status "$M503") 429:$(fx_mod_status "$M429") 400:$(fx_mod_status "$ME1")" \
    "401:$(fx_mod_status "$ME2") 404:$(fx_mod_status "$ME3") 500:$(fx_mod_status "$M500")"
  worker_log_tail
}
elapsed=$((SECONDS - t0))
assert_ge "$elapsed" 30 "500-forever took its backoff (${elapsed}s)"
wfx_once  # one more run: nothing of these may be retried

# --- 5. 503 x2 then success ----------------------------------------------------------------------
test_begin "503 twice then success"
I503=$(queue_cols "$M503" id)
assert_eq "completed|3|200" "$(queue_cols "$M503" "status, attempts, last_http_status")" "queue item"
assert_eq 2 "$(sim_count "$T503" "PUT /pfa/{id}" 503)" "two PUTs answered 503"
assert_eq 1 "$(sim_count "$T503" "PUT /pfa/{id}" 200)" "then one answered 200"
assert_eq 3 "$(sim_count "$T503" "PUT /pfa/{id}" '*')" "three PUTs in all"
assert_eq "5,10" "$(audit_delays "$I503" queue_item.retry_scheduled)" "rescheduled after 5 s, then 10 s"
assert_eq 11000 "$(sim_record "$T503" S-1 .data.monthlyRate)" "PEMS has the change"
assert_eq 2 "$(mirror_version "$O503" S-1)" "mirror version advanced"
assert_eq 1 "$(sim_stat "$T503" .writesApplied)" "writesApplied"
assert_eq 0 "$(sim_stat "$T503" .duplicateWrites)" "duplicateWrites"
assert_eq 1 "$(audit_count "$I503" queue_item.completed)" "completed once"

# --- 6. 429 with Retry-After ------------------------------------------------------------------------
test_begin "429 with Retry-After"
I429=$(queue_cols "$M429" id)
assert_eq "completed|200" "$(queue_cols "$M429" "status, last_http_status")" "queue item"
assert_eq "1|1" "$(queue_cols "$M429" "attempts, deferrals")" "a 429 does not use up an attempt"
assert_eq 1 "$(sim_count "$T429" "PUT /pfa/{id}" 429)" "one PUT answered 429"
assert_eq 1 "$(sim_count "$T429" "PUT /pfa/{id}" 200)" "then one answered 200"
d=$(audit_delays "$I429" queue_item.deferred)
assert_ge "${d:-0}" 2 "deferred until Retry-After (${d}s)"
gap=$(fx_sql "SELECT extract(epoch FROM c.created_at - d.created_at) >= 1.9
  FROM audit_log d, audit_log c WHERE d.entity_id = :'e' AND d.action = 'queue_item.deferred'
  AND c.entity_id = :'e' AND c.action = 'queue_item.completed'" -v e="$I429")
assert_eq t "$gap" "the second PUT came at least 2 s after the 429"
assert_eq 12000 "$(sim_record "$T429" R-1 .data.monthlyRate)" "PEMS has the change"
assert_eq 0 "$(sim_stat "$T429" .duplicateWrites)" "duplicateWrites"

# --- 7. permanent failures ----------------------------------------------------------------------
test_begin "400, 401, 404 fail at once"
assert_eq "failed|1|400" "$(queue_cols "$ME1" "status, attempts, last_http_status")" "400 queue item"
assert_eq "failed|1|401" "$(queue_cols "$ME2" "status, attempts, last_http_status")" "401 queue item"
assert_eq "failed|1|404" "$(queue_cols "$ME3" "status, attempts, last_http_status")" "404 queue item"
for s in 400 401 404; do
  assert_eq 1 "$(sim_count "$T4XX" "PUT /pfa/{id}" $s)" "one PUT answered $s"
done
assert_eq 3 "$(sim_count "$T4XX" "PUT /pfa/{id}" '*')" "no retries"
assert_eq 0 "$(sim_stat "$T4XX" .writesApplied)" "writesApplied"
for m in "$ME1" "$ME2" "$ME3"; do
  assert_eq sync_error "$(fx_mod_status "$m")" "modification sync_error"
  assert_ne "" "$(queue_cols "$m" last_error)" "last_error recorded"
  assert_eq 1 "$(audit_count "$m" modification.sync_error)" "audit modification.sync_error"
done
assert_eq 1 "$(mirror_version "$O4XX" E-1)" "mirror unchanged"
api_as "$K4XX" GET "/api/pems/modifications/$ME3"
assert_jq .status sync_error "API status"
assert_jq .queueItem.status failed "API queueItem.status"
assert_jq .queueItem.lastHttpStatus 404 "API queueItem.lastHttpStatus"

# --- 8. 500 forever -----------------------------------------------------------------------------------
test_begin "500 forever: four attempts then failed"
I500=$(queue_cols "$M500" id)
assert_eq "failed|4|500" "$(queue_cols "$M500" "status, attempts, last_http_status")" "queue item"
assert_eq 4 "$(sim_count "$T500" "PUT /pfa/{id}" 500)" "four PUTs answered 500"
assert_eq 4 "$(sim_count "$T500" "PUT /pfa/{id}" '*')" "exactly four PUTs"
assert_eq "5,10,20" "$(audit_delays "$I500" queue_item.retry_scheduled)" "backoff 5, 10, 20 s"
assert_eq 1 "$(audit_count "$I500" queue_item.failed)" "audit queue_item.failed"
assert_eq sync_error "$(fx_mod_status "$M500")" "modification sync_error"
assert_eq 1 "$(mirror_version "$O500" X-1)" "mirror unchanged"
assert_eq 1 "$(sim_record "$T500" X-1 .version)" "PEMS unchanged"

test_begin "retry of a failed item"
# faults off first: the stack's worker may claim the item the moment it is due again
sim_control_ok "$T500" DELETE /faults
api_as "$K500" POST "/api/pems/queue/$I500/retry"
assert_eq 200 "$HTTP_STATUS" "retry ($BODY)"
wfx_drive 20 mod_is "$M500" synced || { fail "retried item not synced: $(fx_mod_status "$M500")"; worker_log_tail; }
assert_eq 15000 "$(sim_record "$T500" X-1 .data.monthlyRate)" "PEMS has the change"
assert_eq "completed|1" "$(queue_cols "$M500" "status, attempts")" "attempts reset by the retry"

# An expired lease in an organization that has no PEMS server cannot be claimed: the worker
# must not count it as due. It once did, and then ran drain after drain without pause
# (thousands of statements a second) until the item was removed.
test_begin "a stuck item of an organization without a server does not keep the worker busy"
ONOSRV=$(fx_org nosrv)
UNOSRV=$(fx_user "$ONOSRV" Read,Write,Sync)
fx_mirror "$ONOSRV" N-1 1 >/dev/null
MNOSRV=$(fx_mod "$ONOSRV" N-1 "$UNOSRV" queued 1 '{"monthlyRate":1}')
fx_sql "INSERT INTO pfa_write_queue (organization_id, modification_id, status, locked_by, locked_until,
          started_at)
        VALUES (:'o', :'m', 'processing', 'gone-worker', now() - interval '1 minute', now() - interval '2 minutes')" \
  -v o="$ONOSRV" -v m="$MNOSRV" >/dev/null
commits() { fx_sql "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"; }
# assert_worker_idle WHAT: the database's transactions over 3 s stay few (idle: a heartbeat or
# two and this test's own statements; spinning: thousands)
assert_worker_idle() {
  local c0 c1
  c0=$(commits)
  sleep 3
  c1=$(commits)
  assert_le "$((c1 - c0))" 50 "transactions in 3 s with $1 ($((c1 - c0)))"
}
fx_sql "NOTIFY pfa_write_queue" >/dev/null   # the stack's worker looks at the queue now
sleep 1
assert_worker_idle "the stuck item"
assert_eq "processing|gone-worker" "$(queue_cols "$MNOSRV" "status, locked_by")" "left alone"
fx_sql "DELETE FROM pfa_write_queue WHERE modification_id = :'m'" -v m="$MNOSRV" >/dev/null

# The same for a server whose credentials cannot be decrypted: its lock is never taken, so its
# due items are not due for this worker (they once were, and it ran again at once, forever).
test_begin "a due item behind unreadable credentials does not keep the worker busy"
OBADKEY=$(fx_org badkey)
UBADKEY=$(fx_user "$OBADKEY" Read,Write,Sync)
fx_sql "INSERT INTO api_servers (organization_id, base_url, username, credentials_enc)
        VALUES (:'o', 'http://127.0.0.1:9', 'u', '\x00112233'::bytea)" -v o="$OBADKEY" >/dev/null
fx_mirror "$OBADKEY" B-1 1 >/dev/null
MBADKEY=$(fx_mod "$OBADKEY" B-1 "$UBADKEY" queued 1 '{"monthlyRate":1}')
fx_queue "$OBADKEY" "$MBADKEY" pending >/dev/null
fx_sql "NOTIFY pfa_write_queue" >/dev/null
wait_for 10 grep -q "event=server_credentials_unreadable org=$OBADKEY" "$STACK_DIR/log/pemsd.log" \
  || fail "the worker did not try the organization"
assert_worker_idle "the unreadable credentials"
assert_eq "pending" "$(queue_cols "$MBADKEY" "status, locked_by")" "left pending"
fx_sql "DELETE FROM pfa_write_queue WHERE modification_id = :'m'" -v m="$MBADKEY" >/dev/null
fx_sql "DELETE FROM api_servers WHERE organization_id = :'o'" -v o="$OBADKEY" >/dev/null

finish
