#!/usr/bin/env bash
# POST/GET /modifications with their validation (openapi.yaml PfaDelta): the modification
# object, sanitizing, per-field details, business rules, no partial writes, the list with
# filters and paging, and `replaces` (a correction taking a refused change's place).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG=$(fx_org mods)
USER_ID=$(fx_user "$ORG" Read,Write,Sync)
USERNAME=$(fx_user_field "$USER_ID" username)
TOKEN=$(fx_token "$USER_ID")
fx_mirror "$ORG" PFA-M1 3 >/dev/null
fx_mirror "$ORG" PFA-M2 1 >/dev/null
ACTUALIZED=$(jq -c '.isActualized = true | .hasActuals = true | .actualStart = "2025-02-10" | .actualEnd = null' <<<"$FX_RECORD")
fx_mirror "$ORG" PFA-ACT 5 "$ACTUALIZED" >/dev/null
DISCONTINUED=$(jq -c '.isDiscontinued = true' <<<"$FX_RECORD")
fx_mirror "$ORG" PFA-DISC 2 "$DISCONTINUED" >/dev/null
PURCHASE=$(jq -c '.source = "Purchase" | .purchasePrice = 50000 | .monthlyRate = null' <<<"$FX_RECORD")
fx_mirror "$ORG" PFA-PUR 1 "$PURCHASE" >/dev/null

# body PFA OPERATION BASE DELTA_JSON
body() { jq -cn --arg o "$ORG" --arg p "$1" --arg op "$2" --argjson b "$3" --argjson d "$4" \
  '{organizationId:$o, pfaId:$p, operation:$op, baseVersion:$b, delta:$d}'; }
# rejected DELTA FIELD MESSAGE [PFA] [BASE]: 400 validation_failed with a detail naming FIELD
# (FIELD may be an alternation like monthlyRate|source)
rejected() {
  api POST /api/pems/modifications "$(body "${4:-PFA-M1}" update "${5:-3}" "$1")"
  assert_error 400 validation_failed "$3"
  assert_eq true "$(printf '%s' "$BODY" | jq --arg f "^($2)\$" '[.error.details[]?.field] | any(test($f))')" \
    "$3: a detail names $2 (details: $(printf '%s' "$BODY" | jq -c '[.error.details[]?.field]' 2>/dev/null))"
}

test_begin "create an update: 201 with the modification object"
api POST /api/pems/modifications "$(body PFA-M1 update 3 '{"model":"LTM 1200","monthlyRate":15000}')"
assert_eq 201 "$HTTP_STATUS" "POST modifications"
assert_modification_shape . "created"
MOD1=$(jbody .id)
assert_jq .organizationId "$ORG" "organizationId"
assert_jq .pfaId PFA-M1 "pfaId"
assert_jq .operation update "operation"
assert_jq .baseVersion 3 "baseVersion"
assert_jq .delta '{"model":"LTM 1200","monthlyRate":15000}' "delta"
assert_jq .status pending_sync "status"
assert_jq .queueItem null "queueItem null before any write-sync"
assert_jq .modifiedBy "{\"id\":\"$USER_ID\",\"username\":\"$USERNAME\",\"email\":\"$USERNAME@example.test\"}" "modifiedBy"
assert_eq "pending_sync|3|update|$USER_ID" \
  "$(fx_sql "SELECT status || '|' || base_version || '|' || operation || '|' || modified_by
             FROM pfa_modification WHERE id = :'m'" -v m="$MOD1")" "row stored"
assert_eq t "$(fx_sql "SELECT delta = '{\"model\":\"LTM 1200\",\"monthlyRate\":15000}'::jsonb
                          FROM pfa_modification WHERE id = :'m'" -v m="$MOD1")" "delta stored"
assert_ge "$(fx_count audit_log "entity_id = :'m'" -v m="$MOD1")" 1 "audit row written"
assert_eq "$USER_ID" "$(fx_sql "SELECT user_id FROM audit_log WHERE entity_id = :'m' ORDER BY id LIMIT 1" \
  -v m="$MOD1")" "audit row names the user"
assert_eq 0 "$(fx_count pfa_write_queue "modification_id = :'m'" -v m="$MOD1")" "not queued by creation"

test_begin "GET /modifications/:id returns the same object"
CREATED=$BODY
api GET "/api/pems/modifications/$MOD1"
assert_eq 200 "$HTTP_STATUS" "GET modification"
assert_modification_shape . "fetched"
assert_eq "$(jq -cS . <<<"$CREATED")" "$(jq -cS . <<<"$BODY")" "same object as the 201"
api GET "/api/pems/modifications/$(fx_uuid)"
assert_error 404 not_found "unknown id"

test_begin "delta is sanitized"
api POST /api/pems/modifications "$(body PFA-M1 update 3 \
  '{"category":"  Heavy Cranes  ","monthlyRate":" 1500.50 ","purchasePrice":"42","forecastStart":" 2025-03-01 ","forecastEnd":"2025-10-31","model":null}')"
assert_eq 201 "$HTTP_STATUS" "sanitizable delta accepted"
assert_jq .delta.category "Heavy Cranes" "string trimmed"
assert_jq '.delta.monthlyRate | type' number "numeric string -> number"
assert_jq .delta.monthlyRate 1500.5 "numeric value"
assert_jq .delta.purchasePrice 42 "integer string -> 42"
assert_jq .delta.forecastStart 2025-03-01 "date trimmed to canonical"
assert_jq .delta.forecastEnd 2025-10-31 "date kept"
assert_jq '.delta | has("model")' true "null kept (clears model)"
assert_jq .delta.model null "model null"
assert_eq "Heavy Cranes|number" "$(fx_sql "SELECT (delta->>'category') || '|' || jsonb_typeof(delta->'monthlyRate')
  FROM pfa_modification WHERE id = :'m'" -v m="$(jbody .id)")" "sanitized form stored"

test_begin "invalid deltas: 400 validation_failed, one detail per field"
BEFORE=$(fx_org_mods "$ORG")
rejected '{"forecastStart":"2025-06-01","forecastEnd":"2025-05-01"}' forecastEnd "forecastEnd before forecastStart"
rejected '{"forecastEnd":"2025-01-15"}' forecastEnd "forecastEnd before the mirror's forecastStart"
rejected '{"originalStart":"2025-06-01","originalEnd":"2025-05-01"}' originalEnd "originalEnd before originalStart"
rejected '{"actualStart":"2025-06-01","actualEnd":"2025-05-01"}' actualEnd "actualEnd before actualStart"
rejected '{"forecastStart":"2025-02-30"}' forecastStart "not a calendar date"
rejected '{"forecastStart":"2025/02/01"}' forecastStart "not YYYY-MM-DD"
rejected '{"monthlyRate":-5}' monthlyRate "negative number"
rejected '{"monthlyRate":"abc"}' monthlyRate "non-numeric string"
rejected '{"purchasePrice":true}' purchasePrice "boolean as number"
rejected '{"dor":"XYZ"}' dor "dor outside its set"
rejected '{"source":"Lease"}' source "source outside its set"
rejected '{"isActualized":"yes"}' isActualized "string as boolean"
rejected '{"hasPlan":1}' hasPlan "number as boolean"
rejected '{"category":null}' category "category cannot be cleared"
rejected '{"source":null}' source "source cannot be cleared"
rejected '{"dor":null}' dor "dor cannot be cleared"
rejected '{"model":42}' model "number as string"
rejected '{"colour":"red"}' colour "unknown field"
rejected '{"monthlyRate":null}' 'monthlyRate|source' "Rental without monthlyRate"
rejected '{"source":"Purchase"}' 'purchasePrice|source' "Purchase without purchasePrice"
api POST /api/pems/modifications "$(body PFA-M1 update 3 '{"dor":"XYZ","monthlyRate":-1,"hasPlan":"no"}')"
assert_error 400 validation_failed "three bad fields"
assert_eq '["dor","hasPlan","monthlyRate"]' "$(printf '%s' "$BODY" | jq -c '[.error.details[].field] | unique')" \
  "a detail for each of the three fields"
assert_eq true "$(printf '%s' "$BODY" | jq '[.error.details[].message | type == "string" and length > 0] | all')" \
  "every detail has a message"
assert_eq "$BEFORE" "$(fx_org_mods "$ORG")" "no row written by any failure"

test_begin "business rules against the mirror"
BEFORE=$(fx_org_mods "$ORG")
rejected '{"source":"Purchase","purchasePrice":1000}' source "actualized record cannot change source" PFA-ACT 5
rejected '{"actualStart":"2025-03-01"}' actualStart "actualized record cannot move actualStart forward" PFA-ACT 5
rejected '{"isDiscontinued":false}' isDiscontinued "discontinued record cannot be un-discontinued" PFA-DISC 2
api POST /api/pems/modifications "$(body PFA-ACT delete 5 '{}')"
assert_error 400 validation_failed "actualized record cannot be deleted"
assert_eq "$BEFORE" "$(fx_org_mods "$ORG")" "nothing written"
api POST /api/pems/modifications "$(body PFA-ACT update 5 '{"actualStart":"2025-02-01"}')"
assert_eq 201 "$HTTP_STATUS" "actualized record may move actualStart back"
api POST /api/pems/modifications "$(body PFA-PUR update 1 '{"purchasePrice":"60000.00"}')"
assert_eq 201 "$HTTP_STATUS" "Purchase record with its price"
assert_jq .delta.purchasePrice 60000 "canonical number"

test_begin "unknown pfaId -> 404; baseVersion newer than the mirror -> 400"
BEFORE=$(fx_org_mods "$ORG")
api POST /api/pems/modifications "$(body PFA-NOPE update 1 '{"model":"X"}')"
assert_error 404 not_found "unknown pfaId"
api POST /api/pems/modifications "$(body PFA-M1 update 4 '{"model":"X"}')"
assert_error 400 validation_failed "baseVersion 4 > mirror 3"
assert_eq "$BEFORE" "$(fx_org_mods "$ORG")" "nothing written"
api POST /api/pems/modifications "$(body PFA-M1 update 2 '{"model":"X"}')"
assert_eq 201 "$HTTP_STATUS" "an older baseVersion is allowed (conflict check happens at sync)"
assert_jq .baseVersion 2 "baseVersion kept"

test_begin "delete"
BEFORE=$(fx_org_mods "$ORG")
api POST /api/pems/modifications "$(body PFA-M2 delete 1 '{"model":"X"}')"
assert_error 400 validation_failed "delete with a non-empty delta"
assert_eq "$BEFORE" "$(fx_org_mods "$ORG")" "nothing written"
api POST /api/pems/modifications "$(body PFA-M2 delete 1 '{}')"
assert_eq 201 "$HTTP_STATUS" "delete with an empty delta"
assert_jq .operation delete "operation delete"
assert_jq .delta '{}' "delta empty"
assert_jq .status pending_sync "status pending_sync"
api POST /api/pems/modifications "$(jq -cn --arg o "$ORG" '{organizationId:$o, pfaId:"PFA-M2", operation:"delete", baseVersion:1}')"
assert_eq 201 "$HTTP_STATUS" "delete without delta"
assert_jq .delta '{}' "absent delta stored as {}"

test_begin "required fields"
BEFORE=$(fx_org_mods "$ORG")
for drop in organizationId pfaId operation baseVersion; do
  api POST /api/pems/modifications "$(body PFA-M1 update 3 '{"model":"X"}' | jq -c --arg k "$drop" 'del(.[$k])')"
  assert_error 400 validation_failed "missing $drop"
done
assert_eq "$BEFORE" "$(fx_org_mods "$ORG")" "nothing written"

test_begin "list: newest first, total, filters, paging"
api GET "/api/pems/modifications?organizationId=$ORG"
assert_eq 200 "$HTTP_STATUS" "GET list"
assert_keys . "modifications total" "list keys"
TOTAL=$(fx_org_mods "$ORG")
assert_jq .total "$TOTAL" "total counts every row of the organization"
assert_jq '.modifications | length' "$([ "$TOTAL" -gt 50 ] && echo 50 || echo "$TOTAL")" "default page"
assert_modification_shape '.modifications[0]' "list item"
assert_eq true "$(jbody '[.modifications[].createdAt] | . == (sort | reverse)')" "newest first"
assert_eq true "$(jbody "[.modifications[].organizationId] | all(. == \"$ORG\")")" "only this organization"
api GET "/api/pems/modifications?organizationId=$ORG&pfaId=PFA-M2"
assert_jq .total 2 "pfaId filter total"
assert_eq true "$(jbody '[.modifications[].pfaId] | all(. == "PFA-M2")')" "pfaId filter rows"
# the queue viewer's PFA id filter finds a part of the id, in any case (a planner types "m2")
api GET "/api/pems/modifications?organizationId=$ORG&pfaId=a-m2"
assert_jq .total 2 "pfaId filter: a part, any case"
assert_eq true "$(jbody '[.modifications[].pfaId] | all(. == "PFA-M2")')" "pfaId part filter rows"
api GET "/api/pems/modifications?organizationId=$ORG&pfaId=pfa-m"
assert_jq .total "$(fx_count pfa_modification "organization_id = :'o' AND pfa_id LIKE 'PFA-M%'" -v o="$ORG")" \
  "pfaId filter: the common part matches both records"
api GET "/api/pems/modifications?organizationId=$ORG&pfaId=%25"
assert_jq .total 0 "pfaId filter: % is a character, not a pattern"
api GET "/api/pems/modifications?organizationId=$ORG&status=pending_sync&limit=2&offset=1"
assert_jq .total "$(fx_count pfa_modification "organization_id = :'o' AND status = 'pending_sync'" -v o="$ORG")" \
  "status filter total ignores paging"
assert_jq '.modifications | length' 2 "limit 2"
assert_eq true "$(jbody '[.modifications[].status] | all(. == "pending_sync")')" "status filter rows"
api GET "/api/pems/modifications?organizationId=$ORG&limit=1"
FIRST=$(jbody '.modifications[0].id')
api GET "/api/pems/modifications?organizationId=$ORG&limit=1&offset=1"
SECOND=$(jbody '.modifications[0].id')
api GET "/api/pems/modifications?organizationId=$ORG&limit=2"
assert_eq "$FIRST $SECOND" "$(jbody '[.modifications[].id] | join(" ")')" "pages line up"
api GET "/api/pems/modifications?organizationId=$ORG&offset=1000"
assert_jq '.modifications' '[]' "offset past the end"
assert_jq .total "$TOTAL" "total past the end"
api GET "/api/pems/modifications?organizationId=$ORG&status=synced"
assert_jq .total 0 "nothing synced"

test_begin "replaces: the correction of a refused change takes its place, in one transaction"
fx_mirror "$ORG" PFA-R1 2 >/dev/null
fx_mirror "$ORG" PFA-R2 1 >/dev/null
REFUSED=$(fx_mod "$ORG" PFA-R1 "$USER_ID" sync_error 2 '{"forecastEnd":"2025-11-29"}')
REFUSED_ITEM=$(fx_queue "$ORG" "$REFUSED" failed)
AUDIT_BEFORE=$(fx_count audit_log "entity_id IN (:'m', :'i')" -v m="$REFUSED" -v i="$REFUSED_ITEM")
with_replaces() {  # with_replaces PFA OLD_ID DELTA_JSON
  jq -cn --arg o "$ORG" --arg p "$1" --arg r "$2" --argjson d "$3" \
    '{organizationId:$o, pfaId:$p, operation:"update", baseVersion:2, delta:$d, replaces:$r}'
}
# of another record: 400 on the field, nothing stored
OTHER=$(fx_mod "$ORG" PFA-R2 "$USER_ID" sync_error 1 '{"model":"X"}')
N_BEFORE=$(fx_org_mods "$ORG")
api POST /api/pems/modifications "$(with_replaces PFA-R1 "$OTHER" '{"forecastEnd":"2025-11-28"}')"
assert_error 400 validation_failed "a modification of another record"
assert_jq '.error.details[0].field' replaces "the detail names replaces"
assert_eq "$N_BEFORE" "$(fx_org_mods "$ORG")" "nothing stored"
# an id in no organization of the caller: 404
api POST /api/pems/modifications "$(with_replaces PFA-R1 "$(fx_uuid)" '{"forecastEnd":"2025-11-28"}')"
assert_error 404 not_found "an unknown modification"
assert_eq "$N_BEFORE" "$(fx_org_mods "$ORG")" "nothing stored after the 404"
# one that is no longer a draft or refused: 409, nothing stored
SYNCED=$(fx_mod "$ORG" PFA-R1 "$USER_ID" synced 1 '{"model":"Y"}')
api POST /api/pems/modifications "$(with_replaces PFA-R1 "$SYNCED" '{"forecastEnd":"2025-11-28"}')"
assert_error 409 conflict "a synced modification"
assert_jq '.error.details[0].field' replaces "the 409 names replaces"
assert_eq synced "$(fx_mod_status "$SYNCED")" "left as it was"
assert_eq "$((N_BEFORE + 1))" "$(fx_org_mods "$ORG")" "nothing stored after the 409 (the synced fixture only)"
# the refused one: replaced
api POST /api/pems/modifications "$(with_replaces PFA-R1 "$REFUSED" '{"forecastEnd":"2025-11-28"}')"
assert_eq 201 "$HTTP_STATUS" "the correction is made"
assert_jq .status pending_sync "the correction waits for a sync"
assert_jq .delta.forecastEnd 2025-11-28 "with the corrected value"
assert_eq discarded "$(fx_mod_status "$REFUSED")" "the refused change is discarded"
assert_eq cancelled "$(fx_item_status "$REFUSED_ITEM")" "its failed item is cancelled: no retry brings it back"
assert_eq "$((AUDIT_BEFORE + 2))" "$(fx_count audit_log "entity_id IN (:'m', :'i')" -v m="$REFUSED" -v i="$REFUSED_ITEM")" \
  "an audit row for each"
api POST "/api/pems/queue/$REFUSED_ITEM/retry" '{}'
assert_error 409 conflict "the cancelled item cannot be retried"
# a replaced one cannot be replaced twice
api POST /api/pems/modifications "$(with_replaces PFA-R1 "$REFUSED" '{"forecastEnd":"2025-11-27"}')"
assert_error 409 conflict "already replaced"
api POST /api/pems/modifications "$(jq -cn --arg o "$ORG" '{organizationId:$o, pfaId:"PFA-R1",
  operation:"update", baseVersion:2, delta:{model:"Z"}, replaces:"not-a-uuid"}')"
assert_error 400 validation_failed "replaces must be a uuid"

finish
