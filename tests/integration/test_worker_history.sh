#!/usr/bin/env bash
# GET /sync-history counts what the worker really did (src/api/openapi.yaml): a plain write
# (synced), an automatic merge (synced and merged), an overlap (conflict) and a write PEMS
# refuses for good (failed), each in the bucket of the moment it finished; and the conflict's
# baseData is the record the edit was made on, from the history the pull wrote.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
. "$(dirname "$0")/worker_fixtures.sh"
wfx_require

wfx_org history
ORG=$W_ORG TEN=$W_TENANT TOK=$W_TOKEN
sim_seed "$TEN" "$(wfx_records H 4)"
wfx_drive 20 org_mirror_is "$ORG" 4 || fail "mirror rows after a pull"
BASE=$(mirror_col "$ORG" H-3 data)
FROM=$(date -u -d '-1 minute' +%FT%TZ)
wfx_mod M1 "$TOK" "$ORG" H-1 1 '{"monthlyRate":13001}'
wfx_mod M2 "$TOK" "$ORG" H-2 1 '{"monthlyRate":13002}'
wfx_mod M3 "$TOK" "$ORG" H-3 1 '{"monthlyRate":13003}'
wfx_mod M4 "$TOK" "$ORG" H-4 1 '{"monthlyRate":13004}'
sim_edit "$TEN" H-2 '{"contract":"C-PEMS"}'          # another field: merged automatically
sim_edit "$TEN" H-3 '{"monthlyRate":14000}'          # the same field: a conflict
wfx_drive 20 sql_is 2 "SELECT min(version) FROM pfa_mirror WHERE organization_id = :'o'
  AND pfa_id IN ('H-2','H-3')" -v o="$ORG" || fail "upstream edits not pulled"
sim_fault "$TEN" '{"pfaId":"H-4","status":400,"count":1,"match":"writes"}'
wfx_write_sync "$TOK" "$ORG" 4
finished() { [ "$(fx_sql "SELECT count(*) FROM pfa_modification WHERE organization_id = :'o'
  AND status IN ('synced','conflict','sync_error')" -v o="$ORG")" = 4 ]; }
wfx_drive 30 finished || { fail "the four writes did not finish"; worker_log_tail; }
assert_eq "synced synced conflict sync_error" \
  "$(for m in "$M1" "$M2" "$M3" "$M4"; do fx_mod_status "$m"; done | tr '\n' ' ' | sed 's/ $//')" "outcomes"

test_begin "sync-history counts each outcome once, in its minute"
TO=$(date -u -d '+1 minute' +%FT%TZ)
api_as "$TOK" GET "/api/pems/sync-history?organizationId=$ORG&from=$FROM&to=$TO&bucket=minute"
assert_eq 200 "$HTTP_STATUS" "GET sync-history"
assert_jq '[.buckets[].synced] | add' 2 "synced: the plain write and the merge"
assert_jq '[.buckets[].merged] | add' 1 "merged: the automatic merge"
assert_jq '[.buckets[].conflict] | add' 1 "conflict"
assert_jq '[.buckets[].failed] | add' 1 "failed: PEMS's 400"
F=$(date -u -d "$FROM" +%s) T=$(date -u -d "$TO" +%s)
assert_jq '.buckets | length' $(( (T - 1) / 60 - F / 60 + 1 )) "one bucket per minute, from the one holding from"
assert_jq '.buckets[0].start' "$(date -u -d "@$((F / 60 * 60))" +%FT%T).000Z" "the first bucket holds from"
api_as "$TOK" GET "/api/pems/sync-history?organizationId=$ORG"
assert_jq '[.buckets[-1].synced, .buckets[-2].synced] | add' 2 "the default window: the last hours hold them"

test_begin "the worker's conflict: baseData from the history, pemsData current"
api_as "$TOK" GET "/api/pems/conflicts?organizationId=$ORG"
assert_jq '.total' 1 "one conflict"
assert_eq "$(jq -cS . <<<"$BASE")" "$(jbody '.conflicts[0].baseData' | jq -cS .)" "baseData is version 1 as pulled"
assert_jq '.conflicts[0].pemsData.monthlyRate' 14000 "pemsData is PEMS's edit"
sim_edit "$TEN" H-3 '{"monthlyRate":14500}'
wfx_drive 20 sql_is 3 "SELECT version FROM pfa_mirror WHERE organization_id = :'o' AND pfa_id = 'H-3'" \
  -v o="$ORG" || fail "the second edit was not pulled"
api_as "$TOK" GET "/api/pems/conflicts?organizationId=$ORG"
assert_jq '.conflicts[0] | [.pemsVersion, .pemsData.monthlyRate, .localVersion]' '[3,14500,1]' \
  "after the next pull: PEMS's record now, localVersion as found"
assert_jq '.conflicts[0].conflictFields' '["monthlyRate"]' "conflictFields as found"

finish
