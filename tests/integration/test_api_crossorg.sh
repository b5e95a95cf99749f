#!/usr/bin/env bash
# Tenancy: ids of another organization answer 404 (never 403: their existence does
# not leak) and change nothing; lists hold only the requested organization's rows; routes
# addressed by an id take the organization (and so the permission) from the row.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG_A=$(fx_org xorg-a)
ORG_B=$(fx_org xorg-b)
USER_A=$(fx_user "$ORG_A" Read,Write,Sync)
USER_B=$(fx_user "$ORG_B" Read,Write,Sync)
T_A=$(fx_token "$USER_A")
T_B=$(fx_token "$USER_B")
fx_mirror "$ORG_A" PFA-X1 1 >/dev/null
fx_mirror "$ORG_B" PFA-X1 1 >/dev/null
fx_mirror "$ORG_B" PFA-ONLY-B 1 >/dev/null

A_MOD=$(fx_mod "$ORG_A" PFA-X1 "$USER_A" pending_sync 1 '{"model":"a"}')
B_MOD=$(fx_mod "$ORG_B" PFA-X1 "$USER_B" pending_sync 1 '{"model":"b"}')
B_DRAFT=$(fx_mod "$ORG_B" PFA-X1 "$USER_B" draft 1 '{"model":"bd"}')
B_CMOD=$(fx_mod "$ORG_B" PFA-X1 "$USER_B" conflict 0 '{"model":"bc"}')
B_CONFLICT=$(fx_conflict "$ORG_B" "$B_CMOD" PFA-X1 0 1 model '{"model":"bc"}' "$FX_RECORD")
A_CMOD=$(fx_mod "$ORG_A" PFA-X1 "$USER_A" conflict 0 '{"model":"ac"}')
A_CONFLICT=$(fx_conflict "$ORG_A" "$A_CMOD" PFA-X1 0 1 model '{"model":"ac"}' "$FX_RECORD")
B_FMOD=$(fx_mod "$ORG_B" PFA-X1 "$USER_B" sync_error 1 '{"model":"bf"}')
B_FAILED=$(fx_queue "$ORG_B" "$B_FMOD" failed)
B_PMOD=$(fx_mod "$ORG_B" PFA-X1 "$USER_B" queued 1 '{"model":"bp"}')
B_PENDING=$(fx_queue "$ORG_B" "$B_PMOD" pending '1 hour')

snapshot() {
  fx_sql "SELECT string_agg(x, ',' ORDER BY x) FROM (
            SELECT id || status || base_version || delta::text AS x FROM pfa_modification WHERE organization_id = :'o'
            UNION ALL SELECT id || status || attempts FROM pfa_write_queue WHERE organization_id = :'o'
            UNION ALL SELECT id || status FROM pfa_sync_conflict WHERE organization_id = :'o') s" -v o="$ORG_B"
}
B_BEFORE=$(snapshot)

test_begin "another organization's ids -> 404"
TOKEN=$T_A api GET "/api/pems/modifications/$B_MOD"
assert_error 404 not_found "GET B's modification"
TOKEN=$T_A api POST "/api/pems/conflicts/$B_CONFLICT/resolve" '{"resolution":"use_pems"}'
assert_error 404 not_found "resolve B's conflict"
TOKEN=$T_A api POST "/api/pems/conflicts/$B_CONFLICT/resolve" '{"resolution":"merge","mergedData":{"model":"z"}}'
assert_error 404 not_found "merge B's conflict"
TOKEN=$T_A api POST "/api/pems/queue/$B_FAILED/retry" '{}'
assert_error 404 not_found "retry B's item"
TOKEN=$T_A api POST "/api/pems/queue/$B_PENDING/cancel" '{}'
assert_error 404 not_found "cancel B's item"
TOKEN=$T_A api POST /api/pems/write-sync "{\"organizationId\":\"$ORG_A\",\"modificationIds\":[\"$B_DRAFT\"]}"
assert_error 404 not_found "write-sync A with B's modification id"
TOKEN=$T_A api POST /api/pems/modifications \
  "{\"organizationId\":\"$ORG_A\",\"pfaId\":\"PFA-ONLY-B\",\"operation\":\"update\",\"baseVersion\":1,\"delta\":{\"model\":\"z\"}}"
assert_error 404 not_found "modification on a record only B has"
assert_eq "$B_BEFORE" "$(snapshot)" "organization B unchanged"

test_begin "the same ids answer their own organization"
TOKEN=$T_B api GET "/api/pems/modifications/$B_MOD"
assert_eq 200 "$HTTP_STATUS" "B reads its modification"
TOKEN=$T_A api GET "/api/pems/modifications/$A_MOD"
assert_eq 200 "$HTTP_STATUS" "A reads its modification"

test_begin "lists hold only the organization's rows"
TOKEN=$T_A api GET "/api/pems/modifications?organizationId=$ORG_A&limit=500"
assert_eq 200 "$HTTP_STATUS" "A's modifications"
assert_eq true "$(jbody "[.modifications[].organizationId] | all(. == \"$ORG_A\")")" "only A's organizationId"
assert_eq false "$(jbody "[.modifications[].id] | any(. == \"$B_MOD\" or . == \"$B_DRAFT\")")" "no B ids"
assert_jq .total 2 "A's two modifications"
TOKEN=$T_A api GET "/api/pems/conflicts?organizationId=$ORG_A&status=unresolved"
assert_eq "[\"$A_CONFLICT\"]" "$(printf '%s' "$BODY" | jq -c '[.conflicts[].id]')" "only A's conflict"
TOKEN=$T_A api GET "/api/pems/modifications?organizationId=$ORG_A&pfaId=PFA-X1"
assert_jq .total 2 "pfaId filter stays in A"
TOKEN=$T_A api GET "/api/pems/sync-status?organizationId=$ORG_A"
assert_jq .failed 0 "B's failed item not counted for A"
assert_jq .totalQueued 0 "B's pending item not counted for A"

test_begin "A's org-wide write-sync leaves B alone"
TOKEN=$T_A api POST /api/pems/write-sync "{\"organizationId\":\"$ORG_A\"}"
assert_eq 202 "$HTTP_STATUS" "write-sync A"
assert_jq .queuedCount 1 "A's one pending_sync"
assert_eq 0 "$(fx_count pfa_write_queue "modification_id = :'m'" -v m="$B_MOD")" "B's pending_sync not queued"
assert_eq "$B_BEFORE" "$(snapshot)" "organization B unchanged"

test_begin "organizationId of another organization -> 403"
TOKEN=$T_A api GET "/api/pems/modifications?organizationId=$ORG_B"
assert_error 403 forbidden "list B as A"
TOKEN=$T_A api POST /api/pems/write-sync "{\"organizationId\":\"$ORG_B\"}"
assert_error 403 forbidden "write-sync B as A"
TOKEN=$T_A api POST /api/pems/write-sync "{\"organizationId\":\"$(fx_uuid)\"}"
assert_error 403 forbidden "write-sync of an organization that does not exist (as of one the caller is not in)"
assert_eq "$B_BEFORE" "$(snapshot)" "organization B unchanged"

test_begin "id routes take the permission from the row's organization"
# A's user becomes a Read-only member of B: B's ids are now visible, but not actionable
fx_user "$ORG_B" Read "$(fx_user_field "$USER_A" username)" >/dev/null
TOKEN=$T_A api GET "/api/pems/modifications/$B_MOD"
assert_eq 200 "$HTTP_STATUS" "Read member of B reads B's modification"
TOKEN=$T_A api POST "/api/pems/conflicts/$B_CONFLICT/resolve" '{"resolution":"use_pems"}'
assert_error 403 forbidden "resolve B's conflict with Read in B (Sync in A)"
TOKEN=$T_A api POST "/api/pems/queue/$B_FAILED/retry" '{}'
assert_error 403 forbidden "retry B's item with Read in B"
TOKEN=$T_A api POST "/api/pems/queue/$B_PENDING/cancel" '{}'
assert_error 403 forbidden "cancel B's item with Read in B"
assert_eq "$B_BEFORE" "$(snapshot)" "organization B unchanged"

finish
