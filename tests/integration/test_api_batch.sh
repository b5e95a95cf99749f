#!/usr/bin/env bash
# POST /modifications/batch (src/api/openapi.yaml): 1 to 500 entries, each checked as POST
# /modifications checks one, all stored in one transaction or none; details named
# modifications[i].<field>; an unknown pfaId and two entries for one pfaId refused; the answer
# in the request's order; the audit rows and the records' positions.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG=$(fx_org batch)
ORG_B=$(fx_org batch-b)
USER_ID=$(fx_user "$ORG" Read,Write)
READER=$(fx_user "$ORG" Read)
OTHER=$(fx_user "$ORG_B" Read,Write)
TOKEN=$(fx_token "$USER_ID")
B=/api/pems/modifications/batch
for p in B-1 B-2 B-3; do fx_mirror "$ORG" "$p" 2 >/dev/null; done
fx_mirror "$ORG_B" B-OTHER 1 >/dev/null

entry() {  # entry PFA_ID DELTA_JSON [OPERATION] [BASE]
  printf '{"pfaId":"%s","operation":"%s","baseVersion":%s,"delta":%s}' "$1" "${3:-update}" "${4:-2}" "$2"
}
batch() {  # batch ENTRY...
  local IFS=,
  printf '{"organizationId":"%s","modifications":[%s]}' "$ORG" "$*"
}

test_begin "a batch: every entry stored, pending_sync, in the request's order"
api POST "$B" "$(batch "$(entry B-3 '{"model":" Three "}')" "$(entry B-1 '{"monthlyRate":"1500.50"}')" "$(entry B-2 '{}' delete)")"
assert_eq 201 "$HTTP_STATUS" "201"
assert_jq '[.modifications[].pfaId]' '["B-3","B-1","B-2"]' "the request's order"
assert_jq '[.modifications[].status] | unique' '["pending_sync"]' "each pending_sync"
assert_jq '.modifications[0].delta' '{"model":"Three"}' "deltas sanitized (trimmed)"
assert_jq '.modifications[1].delta' '{"monthlyRate":1500.5}' "numeric strings parsed"
assert_jq '.modifications[2].operation' delete "a delete"
assert_modification_shape '.modifications[0]' "entry 0"
assert_eq 3 "$(fx_org_mods "$ORG")" "three modifications stored"
assert_eq 3 "$(fx_count audit_log "organization_id = :'o' AND action = 'modification.create'" -v o="$ORG")" \
  "an audit row each"
M0=$(jbody '.modifications[0].id')
assert_eq "$USER_ID" "$(fx_sql "SELECT user_id FROM audit_log WHERE entity_id = :'m'" -v m="$M0")" "audit names the user"
api GET "/api/pems/records/B-3?organizationId=$ORG"
assert_jq .localData.model Three "the record shows it"

test_begin "all or nothing: one failing entry stores nothing; details modifications[i].<field>"
before=$(fx_org_mods "$ORG")
api POST "$B" "$(batch "$(entry B-1 '{"model":"ok"}')" "$(entry B-2 '{"forecastEnd":"2024-01-01"}')" \
  "$(entry B-404 '{"model":"x"}')" "$(entry B-3 '{"model":"y"}' update 3)" "$(entry B-OTHER '{"model":"z"}')")"
assert_error 400 validation_failed "a batch with failing entries"
assert_jq '[.error.details[].field]' \
  '["modifications[1].forecastEnd","modifications[2].pfaId","modifications[3].baseVersion","modifications[4].pfaId"]' \
  "one detail per failing field, named by entry"
assert_eq "$before" "$(fx_org_mods "$ORG")" "nothing stored"
api POST "$B" "$(batch "$(entry B-1 '{"model":"a"}')" "$(entry B-2 '{"model":"b"}')" "$(entry B-1 '{"model":"c"}')")"
assert_error 400 validation_failed "two entries for one pfaId"
assert_jq '[.error.details[].field]' '["modifications[2].pfaId"]' "the second entry is named"
assert_eq "$before" "$(fx_org_mods "$ORG")" "nothing stored"
api POST "$B" "$(batch '{"pfaId":"B-1","operation":"rename","baseVersion":-1,"colour":1}' '"x"' "$(entry B-2 '{"model":"b"}' delete)" '{"pfaId":"B-3","operation":"update","baseVersion":2}')"
assert_error 400 validation_failed "shape errors"
assert_jq '[.error.details[].field] | sort' \
  '["modifications[0].baseVersion","modifications[0].colour","modifications[0].delta","modifications[0].operation","modifications[1]","modifications[2].delta","modifications[3].delta"]' \
  "every shape error with its entry"
assert_eq "$before" "$(fx_org_mods "$ORG")" "nothing stored"

test_begin "1 to 500 entries; the body itself"
api POST "$B" "{\"organizationId\":\"$ORG\",\"modifications\":[]}"
assert_error 400 validation_failed "no entries"
assert_jq '.error.details[0].field' modifications "named"
big=$(for i in $(seq 0 500); do printf '%s{"pfaId":"B-%d","operation":"update","baseVersion":1,"delta":{"model":"m"}}' "$([ "$i" -gt 0 ] && echo ,)" "$i"; done)
api POST "$B" "{\"organizationId\":\"$ORG\",\"modifications\":[$big]}"
assert_error 400 validation_failed "501 entries"
api POST "$B" "{\"modifications\":[$(entry B-1 '{"model":"x"}')],\"extra\":1}"
assert_error 400 validation_failed "organizationId missing, unknown key"
assert_jq '[.error.details[].field] | sort' '["extra","organizationId"]' "both named"
api POST "$B" '[1]'
assert_error 400 invalid_json "not an object"

test_begin "500 entries in one batch"
vals=$(for i in $(seq 1 500); do printf "('%s','BIG-%03d',1,'%s'::jsonb)," "$ORG" "$i" "$FX_RECORD"; done)
fx_sql "INSERT INTO pfa_mirror (organization_id, pfa_id, version, data) VALUES ${vals%,}" >/dev/null
entries=$(for i in $(seq 1 500); do printf '%s{"pfaId":"BIG-%03d","operation":"update","baseVersion":1,"delta":{"model":"M%d"}}' "$([ "$i" -gt 1 ] && echo ,)" "$i" "$i"; done)
api POST "$B" "{\"organizationId\":\"$ORG\",\"modifications\":[$entries]}"
assert_eq 201 "$HTTP_STATUS" "500 entries stored"
assert_jq '.modifications | length' 500 "500 answered"
assert_jq '.modifications[499] | {pfaId, delta}' '{"pfaId":"BIG-500","delta":{"model":"M500"}}' "in order"

test_begin "permission and tenancy"
api_as "$(fx_token "$READER")" POST "$B" "$(batch "$(entry B-1 '{"model":"r"}')")"
assert_error 403 forbidden "Read only"
api_as "$(fx_token "$OTHER")" POST "$B" "$(batch "$(entry B-1 '{"model":"r"}')")"
assert_error 403 forbidden "a non-member"
api_as "" POST "$B" "$(batch "$(entry B-1 '{"model":"r"}')")"
assert_error 401 unauthorized "no token"
api GET "$B"
assert_error 404 not_found "GET /modifications/batch is no modification"

finish
