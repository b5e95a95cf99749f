#!/usr/bin/env bash
# pemsworker rate limiting: 60 items at 10 req/s take about 6 s and never exceed 10 requests
# in any second; two workers at once (plus the stack's) over 200 items at 20 req/s write
# every item exactly once and still hold the limit.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
. "$(dirname "$0")/worker_fixtures.sh"
wfx_require

now_ms() { date +%s%3N; }

# items of ORG whose completion was audited other than exactly once
audit_not_once() {
  fx_sql "SELECT count(*) FROM pfa_write_queue q WHERE q.organization_id = :'o'
          AND (SELECT count(*) FROM audit_log a WHERE a.entity_id = q.id::text
               AND a.action = 'queue_item.completed') <> 1" -v o="$1"
}

# --- 9. 60 items at 10 req/s -------------------------------------------------------------------
test_begin "60 items at 10 req/s"
wfx_org rate10 10
ORG=$W_ORG TEN=$W_TENANT TOK=$W_TOKEN USR=$W_USER
sim_seed "$TEN" "$(wfx_records P 60)"
wfx_drive 20 org_mirror_is "$ORG" 60 || { fail "mirror rows after a pull"; worker_log_tail; }
wfx_mods_sql "$ORG" "$USR" P 60 1 '{"monthlyRate":20000}'
sleep 1.1   # the pull's requests leave the one-second window
t0=$(now_ms)
wfx_write_sync "$TOK" "$ORG" 60
wfx_once &
once_pid=$!
wait_for 30 org_mods_are "$ORG" synced 60 || fail "only $(fx_org_mods "$ORG" synced) of 60 synced"
t1=$(now_ms)
wait "$once_pid"
took=$((t1 - t0))
printf 'info: 60 items at 10 req/s took %d ms\n' "$took" >&2
assert_ge "$took" 5000 "rate limited: took ${took} ms"
assert_le "$took" 10000 "kept up with the limit: took ${took} ms"
assert_le "$(sim_stat "$TEN" .maxRequestsInAnySecond)" 10 "maxRequestsInAnySecond"
assert_eq 60 "$(sim_count "$TEN" "PUT /pfa/{id}" 200)" "60 PUTs answered 200"
assert_eq 60 "$(sim_count "$TEN" "PUT /pfa/{id}" '*')" "60 PUTs in all"
assert_eq 60 "$(sim_stat "$TEN" .writesApplied)" "writesApplied"
assert_eq 0 "$(sim_stat "$TEN" .duplicateWrites)" "duplicateWrites"
assert_eq 60 "$(fx_org_items "$ORG" completed)" "queue items completed"
assert_eq 0 "$(audit_not_once "$ORG")" "each item completed once"
assert_eq 60 "$(fx_count pfa_mirror "organization_id = :'o' AND version = 2
  AND data->>'monthlyRate' = '20000'" -v o="$ORG")" "mirror rows advanced"

# --- 10. two workers at once ---------------------------------------------------------------------
test_begin "two workers, 200 items at 20 req/s"
wfx_org rate20 20
ORG=$W_ORG TEN=$W_TENANT TOK=$W_TOKEN USR=$W_USER
sim_seed "$TEN" "$(wfx_records W 200)"
wfx_drive 20 org_mirror_is "$ORG" 200 || { fail "mirror rows after a pull"; worker_log_tail; }
wfx_mods_sql "$ORG" "$USR" W 200 1 '{"model":"Two Workers"}'
sleep 1.1
t0=$(now_ms)
wfx_write_sync "$TOK" "$ORG" 200
wfx_once PEMS_WORKER_ID="wtest-a-$$" &
pa=$!
wfx_once PEMS_WORKER_ID="wtest-b-$$" &
pb=$!
wait_for 60 org_mods_are "$ORG" synced 200 || fail "only $(fx_org_mods "$ORG" synced) of 200 synced"
t1=$(now_ms)
wait "$pa" "$pb"
took=$((t1 - t0))
workers=$(fx_sql "SELECT string_agg(actor || ':' || n, ' ') FROM (SELECT actor, count(*) n
  FROM audit_log a JOIN pfa_write_queue q ON a.entity_id = q.id::text
  WHERE q.organization_id = :'o' AND a.action = 'queue_item.completed' GROUP BY actor) x" -v o="$ORG")
printf 'info: 200 items at 20 req/s took %d ms; completions by worker: %s\n' "$took" "$workers" >&2
assert_eq 200 "$(sim_stat "$TEN" .writesApplied)" "writesApplied"
assert_eq 0 "$(sim_stat "$TEN" .duplicateWrites)" "duplicateWrites"
assert_eq 200 "$(sim_count "$TEN" "PUT /pfa/{id}" '*')" "200 PUTs in all"
assert_le "$(sim_stat "$TEN" .maxRequestsInAnySecond)" 20 "maxRequestsInAnySecond"
assert_eq 0 "$(sim_stat "$TEN" .rateLimited)" "no 429s"
assert_eq 200 "$(fx_org_items "$ORG" completed)" "queue items completed"
assert_eq 0 "$(audit_not_once "$ORG")" "each item completed once"
assert_eq 200 "$(fx_count pfa_write_queue "organization_id = :'o' AND attempts = 1" -v o="$ORG")" \
  "each item attempted once"
assert_eq 200 "$(fx_count audit_log "organization_id = :'o' AND action = 'modification.synced'" -v o="$ORG")" \
  "one modification.synced per modification"
assert_ge "$took" 9000 "rate limited: took ${took} ms"
assert_le "$took" 20000 "kept up with the limit: took ${took} ms"

test_begin "queue counters"
assert_queue_stats_consistent "after two workers"

finish
