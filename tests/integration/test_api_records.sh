#!/usr/bin/env bash
# GET /records, /records/{pfaId}, /records/{pfaId}/history (src/api/openapi.yaml): the record
# object (PEMS's data with the open modifications laid over it, oldest first; null under a
# delete; syncState by precedence), filters, keyset paging in byte order with total and
# nextCursor, ETag/304 and HEAD, 404s, tenancy, and the history's kinds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG=$(fx_org records)
ORG_B=$(fx_org records-b)
USER_ID=$(fx_user "$ORG" Read,Write,Sync)
OTHER=$(fx_user "$ORG_B" Read,Write)
NOREAD=$(fx_user "$ORG" Write)
TOKEN=$(fx_token "$USER_ID")
R="/api/pems/records?organizationId=$ORG"

rec() {  # rec CATEGORY CLASS -> FX_RECORD with those
  printf '%s' "$FX_RECORD" | jq -c --arg c "$1" --arg k "$2" '.category = $c | .class = $k'
}
fx_mirror "$ORG" PFA-010 4 "$(rec Cranes 'Mobile Crane')" >/dev/null
fx_mirror "$ORG" PFA-002 1 "$(rec Trucks 'Dump Truck')" >/dev/null
fx_mirror "$ORG" Zeta 1 "$(rec Cranes 'Tower Crane')" >/dev/null
fx_mirror "$ORG" alpha 1 "$(rec Pumps 'Concrete Pump')" >/dev/null
fx_mirror "$ORG" 'A/B x' 2 "$(rec Lifts 'Scissor')" >/dev/null
fx_mirror "$ORG" GONE 5 >/dev/null
fx_sql "UPDATE pfa_mirror SET deleted = true WHERE organization_id = :'o' AND pfa_id = 'GONE'" -v o="$ORG"
fx_mirror "$ORG_B" PFA-B1 1 >/dev/null

test_begin "the list: byte order, total, keyset pages, deleted records left out"
api GET "$R"
assert_eq 200 "$HTTP_STATUS" "GET /records"
assert_jq '[.records[].pfaId]' '["A/B x","PFA-002","PFA-010","Zeta","alpha"]' "ordered by pfaId in byte order, GONE not listed"
assert_jq .total 5 "total"
assert_jq .nextCursor null "one page: no next cursor"
assert_keys '.records[0]' "pfaId version data localData syncState pendingModifications updatedAt" "record object keys"
assert_match "$ISO_RE" "$(jbody '.records[0].updatedAt')" "updatedAt ISO"
api GET "$R&limit=2"
assert_jq '[.records[].pfaId]' '["A/B x","PFA-002"]' "page 1"
assert_jq .total 5 "total on a page"
C1=$(jbody .nextCursor)
assert_match '^[A-Za-z0-9_-]+$' "$C1" "an opaque cursor"
api GET "$R&limit=2&cursor=$C1"
assert_jq '[.records[].pfaId]' '["PFA-010","Zeta"]' "page 2 after the cursor"
C2=$(jbody .nextCursor)
api GET "$R&limit=2&cursor=$C2"
assert_jq '[.records[].pfaId]' '["alpha"]' "last page"
assert_jq .nextCursor null "no cursor after the last page"
api GET "$R&limit=5"
assert_jq .nextCursor null "a page that ends exactly at the last record has no cursor"

test_begin "filters: q (pfaId, category, class; any case), category, syncState"
api GET "$R&q=crane"
assert_jq '[.records[].pfaId]' '["PFA-010","Zeta"]' "q matches class in any case"
assert_jq .total 2 "total counts the matches"
api GET "$R&q=pfa-0"
assert_jq '[.records[].pfaId]' '["PFA-002","PFA-010"]' "q matches pfaId in any case"
api GET "$R&q=PUMPS"
assert_jq '[.records[].pfaId]' '["alpha"]' "q matches category"
api GET "$R&category=Cranes"
assert_jq '[.records[].pfaId]' '["PFA-010","Zeta"]' "category exact"
api GET "$R&category=cranes"
assert_jq .total 0 "category is exact (case too)"
assert_jq '.records' '[]' "no records"
api GET "$R&q=%25"
assert_jq .total 0 "q is a substring, not a pattern"

M_OLD=$(fx_mod "$ORG" PFA-010 "$USER_ID" queued 4 '{"model":"First","contract":"C-1"}')
sleep 0.01
M_NEW=$(fx_mod "$ORG" PFA-010 "$USER_ID" pending_sync 4 '{"model":"Second","equipment":null}')
fx_mod "$ORG" PFA-010 "$USER_ID" synced 3 '{"model":"Old"}' >/dev/null
fx_mod "$ORG" PFA-010 "$USER_ID" discarded 3 '{"model":"Dropped"}' >/dev/null
M_ERR=$(fx_mod "$ORG" PFA-002 "$USER_ID" sync_error 1 '{"model":"E"}')
fx_mod "$ORG" PFA-002 "$USER_ID" draft 1 '{"contract":"D"}' >/dev/null
M_CONF=$(fx_mod "$ORG" Zeta "$USER_ID" conflict 1 '{"model":"C"}')
fx_mod "$ORG" Zeta "$USER_ID" sync_error 1 '{"contract":"E"}' >/dev/null
M_DEL=$(fx_mod "$ORG" alpha "$USER_ID" pending_sync 1 '{}' delete)

api GET "$R&syncState=pending"
assert_jq '[.records[].pfaId]' '["PFA-010","alpha"]' "syncState=pending"
api GET "$R&syncState=error"
assert_jq '[.records[].pfaId]' '["PFA-002"]' "syncState=error (sync_error above pending)"
api GET "$R&syncState=conflict"
assert_jq '[.records[].pfaId]' '["Zeta"]' "syncState=conflict (above error)"
api GET "$R&syncState=in_sync"
assert_jq '[.records[].pfaId]' '["A/B x"]' "syncState=in_sync"
assert_jq .total 1 "in_sync total"
api GET "$R&syncState=pending&q=pfa"
assert_jq '[.records[].pfaId]' '["PFA-010"]' "filters combine"

test_begin "the record object: open modifications laid over the data, oldest first"
api GET "/api/pems/records/PFA-010?organizationId=$ORG"
assert_eq 200 "$HTTP_STATUS" "GET /records/PFA-010"
assert_jq .version 4 "version: the mirror's"
assert_jq .data.model 'LTM 1100' "data is PEMS's record"
assert_jq .localData.model 'Second' "the newer open modification wins"
assert_jq .localData.contract 'C-1' "the older one's other fields stay"
assert_jq '.localData | has("equipment")' false "a null in a delta clears the field"
assert_jq .data.equipment 'EQ-1' "data keeps it"
assert_jq .pendingModifications "[\"$M_OLD\",\"$M_NEW\"]" "open modifications, oldest first (synced and discarded left out)"
assert_jq .syncState 'pending' "pending"
api GET "/api/pems/records/alpha?organizationId=$ORG"
assert_jq .localData null "a pending delete: localData null"
assert_jq .pendingModifications "[\"$M_DEL\"]" "the delete is pending"
api GET "/api/pems/records/Zeta?organizationId=$ORG"
assert_jq .syncState 'conflict' "conflict above error"
api GET "/api/pems/records/PFA-002?organizationId=$ORG"
assert_jq .syncState 'error' "error above pending"
assert_jq .pendingModifications[0] "$M_ERR" "error's modification listed"
api GET "/api/pems/records/A%2FB%20x?organizationId=$ORG"
assert_eq 200 "$HTTP_STATUS" "a pfaId with an encoded slash and space"
assert_jq .pfaId 'A/B x' "the decoded pfaId"
assert_jq .syncState 'in_sync' "in_sync"
assert_jq '.localData == .data' true "in_sync: localData is data"
api GET "/api/pems/records/A/B%20x?organizationId=$ORG"
assert_error 404 not_found "an unencoded slash is two segments"

test_begin "404s, tenancy, permission, bad queries"
api GET "/api/pems/records/GONE?organizationId=$ORG"
assert_error 404 not_found "a record PEMS deleted"
api GET "/api/pems/records/PFA-404?organizationId=$ORG"
assert_error 404 not_found "an unknown record"
api GET "/api/pems/records/PFA-B1?organizationId=$ORG"
assert_error 404 not_found "another organization's record, asked in this one"
api GET "/api/pems/records/%FF?organizationId=$ORG"
assert_error 404 not_found "a pfaId that is not UTF-8"
api GET "/api/pems/records/PFA-010"
assert_error 400 validation_failed "organizationId is required"
api_as "$(fx_token "$OTHER")" GET "$R"
assert_error 403 forbidden "a non-member lists"
api_as "$(fx_token "$OTHER")" GET "/api/pems/records/PFA-010?organizationId=$ORG"
assert_error 403 forbidden "a non-member reads a record"
api_as "$(fx_token "$OTHER")" GET "/api/pems/records/PFA-010/history?organizationId=$ORG"
assert_error 403 forbidden "a non-member reads a history"
api_as "$(fx_token "$NOREAD")" GET "$R"
assert_error 403 forbidden "a member without Read"
api_as "" GET "$R"
assert_error 401 unauthorized "no token"
api GET "$R&limit=501"
assert_error 400 validation_failed "limit over 500"
api GET "$R&syncState=synced"
assert_error 400 validation_failed "syncState outside its set"
assert_jq '.error.details[0].field' syncState "named"
api GET "$R&cursor=not*a*cursor"
assert_error 400 validation_failed "a cursor this API did not give"
assert_jq '.error.details[0].field' cursor "named"
api GET "$R&colour=red"
assert_error 400 validation_failed "unknown parameter"
api POST "$R" '{}'
assert_error 405 method_not_allowed "POST /records"

# cget PATH [IF_NONE_MATCH] [METHOD]: sets HTTP_STATUS, BODY, ETAG
cget() {
  local args=(-sk -o "$TEST_TMP/body" -D "$TEST_TMP/headers" -w '%{http_code}' -H "Authorization: Bearer $TOKEN")
  [ -n "${2:-}" ] && args+=(-H "If-None-Match: $2")
  [ "${3:-GET}" = HEAD ] && args+=(-I)
  rm -f "$TEST_TMP/body"
  HTTP_STATUS=$(curl "${args[@]}" "$PEMS_URL$1")
  BODY=$( { [ -f "$TEST_TMP/body" ] && tr -d '\r' <"$TEST_TMP/body"; } | grep -Ev '^(HTTP/|[A-Za-z0-9-]+:|$)')
  ETAG=$(tr -d '\r' <"$TEST_TMP/headers" | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p')
}

# etag_cycle NAME PATH CHANGE_COMMAND...: tag, 304, HEAD, a change gives a new tag and body
etag_cycle() {
  local name=$1 path=$2; shift 2
  cget "$path"
  assert_eq 200 "$HTTP_STATUS" "$name: GET"
  assert_match '^"[0-9a-f]+"$' "$ETAG" "$name: an entity tag"
  local tag=$ETAG first=$BODY
  cget "$path" "$tag"
  assert_eq 304 "$HTTP_STATUS" "$name: unchanged -> 304"
  assert_eq "" "$BODY" "$name: 304 without a body"
  assert_eq "$tag" "$ETAG" "$name: 304 repeats the tag"
  cget "$path" "W/$tag"
  assert_eq 304 "$HTTP_STATUS" "$name: weak form"
  cget "$path" "\"00\", $tag"
  assert_eq 304 "$HTTP_STATUS" "$name: in a list"
  cget "$path" "$tag" HEAD
  assert_eq 304 "$HTTP_STATUS" "$name: HEAD with the tag"
  cget "$path" "" HEAD
  assert_eq 200 "$HTTP_STATUS" "$name: HEAD"
  assert_eq "$tag" "$ETAG" "$name: HEAD's tag"
  assert_eq "" "$BODY" "$name: HEAD without a body"
  TOKEN=$(fx_token "$OTHER") cget "$path" "$tag"
  assert_error 403 forbidden "$name: a tag is no key"
  cget "$path" '"0000000000000000"'
  assert_eq 200 "$HTTP_STATUS" "$name: another tag -> 200"
  assert_eq "$first" "$BODY" "$name: the same body"
  "$@"
  cget "$path" "$tag"
  assert_eq 200 "$HTTP_STATUS" "$name: changed -> 200"
  assert_ne "$tag" "$ETAG" "$name: a new tag"
  assert_ne "$first" "$BODY" "$name: a new body"
  cget "$path" "$ETAG"
  assert_eq 304 "$HTTP_STATUS" "$name: the new tag -> 304"
}

add_mod() { fx_mod "$ORG" "$1" "$USER_ID" pending_sync 1 "$2" >/dev/null; }

test_begin "ETag, 304 and HEAD: the list and a record; any change gives a new tag"
etag_cycle list "$R&limit=2" fx_sql "UPDATE pfa_mirror SET data = data || '{\"model\":\"M2\"}', version = 5
  WHERE organization_id = :'o' AND pfa_id = 'A/B x'" -v o="$ORG"
etag_cycle record "/api/pems/records/PFA-002?organizationId=$ORG" \
  add_mod PFA-002 '{"model":"Later"}'
cget "/api/pems/records/PFA-002?organizationId=$ORG"
T1=$ETAG
fx_sql "UPDATE pfa_modification SET status = 'queued' WHERE id = :'m'" -v m="$M_ERR" >/dev/null
cget "/api/pems/records/PFA-002?organizationId=$ORG" "$T1"
assert_eq 200 "$HTTP_STATUS" "a modification's status change is a change of the record"
assert_jq .syncState 'pending' "and it shows"
cget "$R&limit=2&q=x"
T2=$ETAG
fx_mirror "$ORG" PFA-NEW 1 >/dev/null
cget "$R&limit=2&q=x" "$T2"
assert_eq 200 "$HTTP_STATUS" "a new record in the organization changes the list's tag"
cget "$R&limit=2&q=x" "$ETAG"
assert_eq 304 "$HTTP_STATUS" "and the new tag holds"
cget "/api/pems/records?organizationId=$ORG_B" "$ETAG"
assert_error 403 forbidden "another organization's list with this tag"

test_begin "history: PEMS's versions, local edits, queue, synced, failed, conflict, resolved"
H=PFA-H1
fx_mirror "$ORG" "$H" 7 "$(rec Cranes 'History Crane')" >/dev/null
fx_history "$ORG" "$H" 5 6 "$(rec Cranes 'History Crane')" model >/dev/null
fx_history "$ORG" "$H" 6 7 "$(rec Cranes 'History Crane')" contract,equipment >/dev/null
api POST /api/pems/modifications "{\"organizationId\":\"$ORG\",\"pfaId\":\"$H\",\"operation\":\"update\",\"baseVersion\":7,\"delta\":{\"model\":\"Local\"}}"
assert_eq 201 "$HTTP_STATUS" "a local edit"
MH=$(jbody .id)
api POST /api/pems/write-sync "{\"organizationId\":\"$ORG\",\"modificationIds\":[\"$MH\"]}"
assert_eq 202 "$HTTP_STATUS" "queued"
QI=$(fx_sql "SELECT id FROM pfa_write_queue WHERE modification_id = :'m'" -v m="$MH")
# the worker's rows as pfa_write_queue_record writes them (a synced write made version 8)
fx_sql "INSERT INTO audit_log (organization_id, actor, action, entity_type, entity_id, before, after, created_at)
        VALUES (:'o', 'w1', 'modification.synced', 'pfa_modification', :'m', '{\"status\":\"queued\"}',
                jsonb_build_object('status', 'synced', 'queueItemId', :'q', 'version', 8), now() + interval '1 second')" \
  -v o="$ORG" -v m="$MH" -v q="$QI" >/dev/null
fx_history "$ORG" "$H" 7 8 "$(rec Cranes 'History Crane')" model >/dev/null
fx_sql "UPDATE pfa_mirror SET version = 8 WHERE organization_id = :'o' AND pfa_id = :'p'" -v o="$ORG" -v p="$H" >/dev/null
MF=$(fx_mod "$ORG" "$H" "$USER_ID" sync_error 8 '{"contract":"F"}')
QF=$(fx_queue "$ORG" "$MF" failed)
fx_sql "INSERT INTO audit_log (organization_id, actor, action, entity_type, entity_id, before, after, created_at)
        VALUES (:'o', 'w1', 'modification.sync_error', 'pfa_modification', :'m', '{\"status\":\"queued\"}',
                jsonb_build_object('status', 'sync_error', 'queueItemId', :'q', 'error', 'upstream 500'),
                now() + interval '2 seconds')" -v o="$ORG" -v m="$MF" -v q="$QF" >/dev/null
MC=$(fx_mod "$ORG" "$H" "$USER_ID" conflict 7 '{"model":"C"}')
CF=$(fx_conflict "$ORG" "$MC" "$H" 7 8 model '{"model":"C"}' "$FX_RECORD" resolved)
fx_sql "UPDATE pfa_sync_conflict SET created_at = now() + interval '3 seconds', resolved_at = now() + interval '4 seconds',
          resolved_by = :'u' WHERE id = :'c'" -v c="$CF" -v u="$USER_ID" >/dev/null
api GET "/api/pems/records/$H/history?organizationId=$ORG"
assert_eq 200 "$HTTP_STATUS" "GET history"
assert_jq .pfaId "$H" "pfaId"
assert_jq '[.events[].kind]' '["resolved","conflict","failed","synced","local_edit","local_edit","queued","local_edit","pems_version","pems_version","pems_version"]' \
  "every kind, newest first (the version our write made shows as synced)"
assert_jq '[.events[].at] == ([.events[].at] | sort | reverse)' true "newest first"
assert_jq '.events[0] | {conflictId, resolution, by: .by.id}' "{\"conflictId\":\"$CF\",\"resolution\":\"use_pems\",\"by\":\"$USER_ID\"}" "resolved"
assert_jq '.events[1] | {modificationId, conflictId, fields}' "{\"modificationId\":\"$MC\",\"conflictId\":\"$CF\",\"fields\":[\"model\"]}" "conflict"
assert_jq '.events[2] | {modificationId, httpStatus, error}' "{\"modificationId\":\"$MF\",\"httpStatus\":500,\"error\":\"upstream 500\"}" "failed"
assert_jq '.events[3] | {modificationId, version}' "{\"modificationId\":\"$MH\",\"version\":8}" "synced"
assert_jq "[.events[] | select(.kind == \"local_edit\" and .modificationId == \"$MH\")][0] | {operation, fields, by: .by.username}" \
  "{\"operation\":\"update\",\"fields\":[\"model\"],\"by\":\"$(fx_user_field "$USER_ID" username)\"}" "local_edit: what and who"
assert_jq "[.events[] | select(.kind == \"queued\")][0].by.id" "$USER_ID" "queued: who"
assert_jq '[.events[] | select(.kind == "pems_version") | {version, fields}]' \
  '[{"version":7,"fields":["contract","equipment"]},{"version":6,"fields":["model"]},{"version":5,"fields":null}]' \
  "PEMS's versions with the fields they changed; the first seen: null"
assert_match "$ISO_RE" "$(jbody '.events[0].at')" "at is ISO"
api GET "/api/pems/records/$H/history?organizationId=$ORG&limit=2"
assert_jq '[.events[].kind]' '["resolved","conflict"]' "limit keeps the newest"
api GET "/api/pems/records/PFA-404/history?organizationId=$ORG"
assert_error 404 not_found "history of an unknown record"
api GET "/api/pems/records/PFA-B1/history?organizationId=$ORG"
assert_error 404 not_found "history of another organization's record"
api GET "/api/pems/records/$H/history?organizationId=$ORG&limit=0"
assert_error 400 validation_failed "limit 0"

finish
