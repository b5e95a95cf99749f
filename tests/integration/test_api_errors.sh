#!/usr/bin/env bash
# The error envelope (src/api/openapi.yaml): unknown routes, wrong methods, bad bodies, strict
# validation of bodies and query parameters, injection-looking input treated as data.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG=$(fx_org errors)
USER_ID=$(fx_user "$ORG" Read,Write,Sync)
TOKEN=$(fx_token "$USER_ID")
fx_mirror "$ORG" PFA-E1 2 >/dev/null
MOD=$(fx_mod "$ORG" PFA-E1 "$USER_ID" draft 2 '{"model":"A"}')
MOD_C=$(fx_mod "$ORG" PFA-E1 "$USER_ID" conflict 1 '{"model":"C"}')
CONFLICT=$(fx_conflict "$ORG" "$MOD_C" PFA-E1 1 2 model '{"model":"C"}' "$FX_RECORD")
U=$(fx_uuid)

MODS_BEFORE=$(fx_org_mods "$ORG")

# a valid modification body with one key replaced: mod_body KEY JSON_VALUE
mod_body() {
  jq -cn --arg o "$ORG" --argjson v "$2" --arg k "$1" \
    '{organizationId:$o, pfaId:"PFA-E1", operation:"update", baseVersion:2, delta:{model:"B"}} | .[$k] = $v'
}

test_begin "control: a valid body is accepted"
api POST /api/pems/modifications "$(mod_body model '"x"' | jq -c 'del(.model)')"
assert_eq 201 "$HTTP_STATUS" "valid POST modifications"
MODS_BEFORE=$(fx_org_mods "$ORG")

test_begin "unknown routes -> 404 not_found"
for path in /api/pems/nope /api/pems/ /api/pems /api/pems/modifications/$U/extra \
            /api/pems/queue/$U /api/pems/conflicts/$U "/api/pems/write-sync/x"; do
  api GET "$path"
  assert_error 404 not_found "GET $path"
  assert_error_envelope "GET $path"
done
api POST /api/pems/queue/$U/explode '{}'
assert_error 404 not_found "POST queue/:id/explode"

test_begin "known path, wrong method -> 405 method_not_allowed"
for route in "GET /api/pems/write-sync" "DELETE /api/pems/write-sync" "PUT /api/pems/modifications" \
             "DELETE /api/pems/modifications/$MOD" "PATCH /api/pems/modifications/$MOD" \
             "POST /api/pems/sync-status" "DELETE /api/pems/conflicts" \
             "GET /api/pems/conflicts/$U/resolve" "GET /api/pems/queue/$U/retry" \
             "DELETE /api/pems/queue/$U/cancel" "POST /api/pems/health"; do
  read -r method path <<<"$route"
  api "$method" "$path"
  assert_error 405 method_not_allowed "$route"
done

test_begin "malformed JSON -> 400 invalid_json"
for body in '{"organizationId":' '{organizationId: 1}' "{\"organizationId\":\"$ORG\",}" '{"a":1}{"b":2}' \
            "{\"organizationId\":\"$ORG\"} trailing" "{'organizationId':'$ORG'}"; do
  api POST /api/pems/write-sync "$body"
  assert_error 400 invalid_json "body $body"
  assert_error_envelope "body $body"
done
api POST /api/pems/modifications '{"organizationId": "'"$ORG"'", "pfaId": "PFA-E1", "operation": "upd'
assert_error 400 invalid_json "truncated modification"

test_begin "invalid UTF-8 -> 400 invalid_json"
printf '{"organizationId":"%s","pfaId":"PFA-E1","operation":"update","baseVersion":2,"delta":{"model":"\xff\xfe"}}' \
  "$ORG" > "$TEST_TMP/bad-utf8.json"
api_ct "$TOKEN" POST /api/pems/modifications application/json "$TEST_TMP/bad-utf8.json"
assert_error 400 invalid_json "0xff 0xfe in a string"
printf '{"organizationId":"%s","pfaId":"PFA-E1","operation":"update","baseVersion":2,"delta":{"model":"\xc3"}}' \
  "$ORG" > "$TEST_TMP/bad-utf8-2.json"
api_ct "$TOKEN" POST /api/pems/modifications application/json "$TEST_TMP/bad-utf8-2.json"
assert_error 400 invalid_json "truncated 2-byte sequence"
printf '{"organizationId":"%s","pfaId":"PFA-E1","operation":"update","baseVersion":2,"delta":{"model":"\xc0\xaf"}}' \
  "$ORG" > "$TEST_TMP/bad-utf8-3.json"
api_ct "$TOKEN" POST /api/pems/modifications application/json "$TEST_TMP/bad-utf8-3.json"
assert_error 400 invalid_json "overlong encoding"
assert_eq "$MODS_BEFORE" "$(fx_org_mods "$ORG")" "nothing created"

test_begin "nesting deeper than 32 -> invalid_json; 32 is parsed"
nest() {  # nest N: an object N levels deep counting the top-level one
  local n=$1 open="" close="" i
  for ((i = 1; i < n; i++)); do open+='['; close+=']'; done
  printf '{"organizationId":"%s","priority":%s1%s}' "$ORG" "$open" "$close"
}
api POST /api/pems/write-sync "$(nest 33)"
assert_error 400 invalid_json "depth 33"
api POST /api/pems/write-sync "$(nest 2000)"
assert_error 400 invalid_json "depth 2000"
api POST /api/pems/write-sync "$(nest 32)"
assert_error 400 validation_failed "depth 32 parses and fails validation (priority is not a number)"

test_begin "JSON that is not an object -> 400"
for body in '[1,2]' '"text"' 'null' '42' '[]'; do
  api POST /api/pems/write-sync "$body"
  assert_eq 400 "$HTTP_STATUS" "top-level $body (status)"
  assert_jq .error.code invalid_json "top-level $body (code)"
done

test_begin "empty body -> 400"
printf '' > "$TEST_TMP/empty"
api_ct "$TOKEN" POST /api/pems/write-sync application/json "$TEST_TMP/empty"
assert_eq 400 "$HTTP_STATUS" "empty body (status)"
assert_jq .error.code invalid_json "empty body (code)"

test_begin "wrong content type -> 415 unsupported_media_type"
printf '{"organizationId":"%s"}' "$ORG" > "$TEST_TMP/ws.json"
api_ct "$TOKEN" POST /api/pems/write-sync text/plain "$TEST_TMP/ws.json"
assert_error 415 unsupported_media_type "text/plain"
assert_error_envelope "text/plain"
api_ct "$TOKEN" POST /api/pems/write-sync application/x-www-form-urlencoded "$TEST_TMP/ws.json"
assert_error 415 unsupported_media_type "form-urlencoded"
api_ct "$TOKEN" POST /api/pems/write-sync application/xml "$TEST_TMP/ws.json"
assert_error 415 unsupported_media_type "application/xml"
mod_body delta '{"model":"C"}' > "$TEST_TMP/mod.json"
api_ct "$TOKEN" POST /api/pems/modifications text/plain "$TEST_TMP/mod.json"
assert_error 415 unsupported_media_type "modification as text/plain"
assert_eq "$MODS_BEFORE" "$(fx_org_mods "$ORG")" "nothing created"
api_ct "$TOKEN" POST /api/pems/modifications "application/json; charset=utf-8" "$TEST_TMP/mod.json"
assert_eq 201 "$HTTP_STATUS" "application/json; charset=utf-8 is JSON"
MODS_BEFORE=$(fx_org_mods "$ORG")

test_begin "body over 1 MiB -> 413 payload_too_large (JSON)"
{ printf '{"organizationId":"%s","pfaId":"PFA-E1","operation":"update","baseVersion":2,"delta":{"model":"' "$ORG"
  head -c $((1100 * 1024)) /dev/zero | tr '\0' a
  printf '"}}'; } > "$TEST_TMP/big.json"
api_ct "$TOKEN" POST /api/pems/modifications application/json "$TEST_TMP/big.json"
assert_error 413 payload_too_large "1.1 MiB body"
assert_error_envelope "1.1 MiB body"
{ printf '{"organizationId":"%s","pad":"' "$ORG"; head -c $((1024 * 1024)) /dev/zero | tr '\0' a; printf '"}'; } \
  > "$TEST_TMP/big2.json"
api_ct "$TOKEN" POST /api/pems/write-sync application/json "$TEST_TMP/big2.json"
assert_error 413 payload_too_large "1 MiB + 30 bytes body"
assert_eq "$MODS_BEFORE" "$(fx_org_mods "$ORG")" "nothing created"
# just under the limit is read and judged on its content
{ printf '{"organizationId":"%s","pad":"' "$ORG"; head -c $((900 * 1024)) /dev/zero | tr '\0' a; printf '"}'; } \
  > "$TEST_TMP/under.json"
api_ct "$TOKEN" POST /api/pems/write-sync application/json "$TEST_TMP/under.json"
assert_error 400 validation_failed "900 KiB body with an unknown key"

test_begin "wrong types -> 400 validation_failed"
for pair in 'organizationId 123' 'organizationId null' 'pfaId 42' 'pfaId ["PFA-E1"]' 'operation true' \
            'baseVersion "2"' 'baseVersion 2.5' 'baseVersion -1' 'delta "model=B"' 'delta [1]'; do
  read -r key value <<<"$pair"
  api POST /api/pems/modifications "$(mod_body "$key" "$value")"
  assert_error 400 validation_failed "modification $key=$value"
  assert_error_envelope "modification $key=$value"
done
for body in "{\"organizationId\":\"$ORG\",\"priority\":\"5\"}" "{\"organizationId\":\"$ORG\",\"priority\":true}" \
            "{\"organizationId\":\"$ORG\",\"modificationIds\":\"$MOD\"}" \
            "{\"organizationId\":\"$ORG\",\"modificationIds\":[1]}" "{\"organizationId\":[\"$ORG\"]}" \
            '{"organizationId":"not-a-uuid"}' '{}'; do
  api POST /api/pems/write-sync "$body"
  assert_error 400 validation_failed "write-sync $body"
done
assert_eq 0 "$(fx_org_items "$ORG")" "nothing queued"
assert_eq "$MODS_BEFORE" "$(fx_org_mods "$ORG")" "nothing created"

test_begin "unknown fields -> 400 validation_failed naming the field"
api POST /api/pems/write-sync "{\"organizationId\":\"$ORG\",\"force\":true}"
assert_error 400 validation_failed "write-sync with force"
assert_eq true "$(jbody '[.error.details[]?.field] | any(. == "force")')" "detail names force"
api POST /api/pems/modifications "$(mod_body comment '"hi"')"
assert_error 400 validation_failed "modification with comment"
assert_eq true "$(jbody '[.error.details[]?.field] | any(test("comment"))')" "detail names comment"
api POST /api/pems/modifications "$(mod_body delta '{"colour":"red"}')"
assert_error 400 validation_failed "delta with an unknown record field"
assert_eq true "$(jbody '[.error.details[]?.field] | any(test("colour"))')" "detail names colour"
assert_eq 0 "$(fx_org_items "$ORG")" "nothing queued"
assert_eq "$MODS_BEFORE" "$(fx_org_mods "$ORG")" "nothing created"

test_begin "80,000 unknown keys -> 100 details, the message says how many more failed"
many_keys() {  # JQ_PATH: a modification body with 80,000 unknown keys at that path
  jq -cn --arg o "$ORG" '{organizationId:$o, pfaId:"PFA-E1", operation:"update", baseVersion:2,
    delta:{model:"B"}}' | jq -c --argjson n 80000 "$1 += ([range(0; \$n) | {key: \"k\(.)\", value: 1}] | from_entries)"
}
for where in . .delta; do
  many_keys "$where" > "$TEST_TMP/many.json"
  t0=$(date +%s%N)
  HTTP_STATUS=$(curl -sk -o "$TEST_TMP/body" -w '%{http_code}' --max-time 30 -X POST \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary @"$TEST_TMP/many.json" "$PEMS_URL/api/pems/modifications")
  ms=$((($(date +%s%N) - t0) / 1000000))
  BODY=$(cat "$TEST_TMP/body")
  assert_error 400 validation_failed "80,000 unknown keys at $where"
  assert_eq 100 "$(jbody '.error.details | length')" "details listed ($where)"
  assert_match '79,?900 more failed' "$(jbody .error.message)" "the message counts the rest ($where)"
  assert_le "$(stat -c %s "$TEST_TMP/body")" 20000 "bytes of the answer ($where)"
  assert_le "$ms" 3000 "ms for the answer ($where)"
done
assert_eq "$MODS_BEFORE" "$(fx_org_mods "$ORG")" "nothing created"

test_begin "unknown enum values -> 400 validation_failed"
api POST /api/pems/modifications "$(mod_body operation '"upsert"')"
assert_error 400 validation_failed "operation upsert"
api POST /api/pems/modifications "$(mod_body operation '"UPDATE"')"
assert_error 400 validation_failed "operation UPDATE"
api POST "/api/pems/conflicts/$CONFLICT/resolve" '{"resolution":"use_both"}'
assert_error 400 validation_failed "resolution use_both"
assert_eq unresolved "$(fx_sql "SELECT status FROM pfa_sync_conflict WHERE id = :'c'" -v c="$CONFLICT")" \
  "conflict still unresolved"
for path in "/api/pems/conflicts?organizationId=$ORG&status=open" \
            "/api/pems/modifications?organizationId=$ORG&status=bogus" \
            "/api/pems/sync-status?organizationId=$ORG&status=bogus"; do
  api GET "$path"
  assert_error 400 validation_failed "GET $path"
done

test_begin "query ranges -> 400 validation_failed"
for q in limit=501 limit=-1 limit=abc limit=10x limit= offset=-1 offset=abc limit=1e3 "limit=99999999999999999999"; do
  for base in conflicts modifications; do
    api GET "/api/pems/$base?organizationId=$ORG&$q"
    assert_error 400 validation_failed "GET $base $q"
  done
done
for q in limit=500 offset=0 "limit=1&offset=1000"; do
  api GET "/api/pems/conflicts?organizationId=$ORG&$q"
  assert_eq 200 "$HTTP_STATUS" "GET conflicts $q"
done
api GET "/api/pems/modifications"
assert_error 400 validation_failed "missing organizationId"
api GET "/api/pems/conflicts?organizationId=not-a-uuid"
assert_error 400 validation_failed "organizationId not a uuid"

test_begin "sync-status dates"
for q in startDate=yesterday startDate=2024-13-01 endDate=2024-02-30 "endDate=2024-01-01T25:00:00Z"; do
  api GET "/api/pems/sync-status?organizationId=$ORG&$q"
  assert_error 400 validation_failed "sync-status $q"
done
api GET "/api/pems/sync-status?organizationId=$ORG&startDate=2024-01-01T00:00:00Z&endDate=2030-01-01"
assert_eq 200 "$HTTP_STATUS" "sync-status with valid dates"
api GET "/api/pems/sync-status"
assert_error 400 validation_failed "sync-status without organizationId"

test_begin "non-uuid ids in paths -> 404 not_found (no such item)"
for route in "GET /api/pems/modifications/not-a-uuid" "POST /api/pems/conflicts/not-a-uuid/resolve" \
             "POST /api/pems/queue/12345/retry" "POST /api/pems/queue/'%20OR%201=1--/cancel"; do
  read -r method path <<<"$route"
  body=''
  [ "$method" = POST ] && body='{"resolution":"use_pems"}'
  [[ $path == */queue/* ]] && body='{}'
  api "$method" "$path" "$body"
  assert_eq 404 "$HTTP_STATUS" "$route (status)"
  assert_jq .error.code not_found "$route (code)"
done

test_begin "injection-looking strings are data"
INJ="x'); DROP TABLE pfa_mirror; --"
api POST /api/pems/modifications "$(mod_body pfaId "$(jq -n --arg s "$INJ" '$s')")"
assert_error 404 not_found "pfaId with SQL is an unknown record"
api GET "/api/pems/modifications?organizationId=$ORG&pfaId=$(jq -rn --arg s "' OR '1'='1" '$s|@uri')"
assert_eq 200 "$HTTP_STATUS" "pfaId filter with SQL"
assert_jq .total 0 "pfaId filter with SQL matches nothing"
api GET "/api/pems/modifications?organizationId=$ORG%27%20OR%20%271%27=%271"
assert_error 400 validation_failed "organizationId with SQL"
DELTA=$(jq -cn --arg s "Robert'); DROP TABLE pfa_modification;--" '{model:$s, manufacturer:"\"; SELECT pg_sleep(5); --"}')
api POST /api/pems/modifications "$(mod_body delta "$DELTA")"
assert_eq 201 "$HTTP_STATUS" "delta with SQL strings is stored"
assert_jq .delta.model "Robert'); DROP TABLE pfa_modification;--" "returned as given"
assert_eq "Robert'); DROP TABLE pfa_modification;--" \
  "$(fx_sql "SELECT delta->>'model' FROM pfa_modification WHERE id = :'m'" -v m="$(jbody .id)")" "stored as given"
assert_eq 1 "$(fx_sql "SELECT count(*) FROM pfa_mirror WHERE organization_id = :'o'" -v o="$ORG")" "pfa_mirror intact"
api GET "/api/pems/modifications?organizationId=$ORG"
assert_eq 200 "$HTTP_STATUS" "the service still answers"
assert_eq "$(fx_org_mods "$ORG")" "$(jbody .total)" "list total equals the table's rows"

test_begin "errors are JSON"
curl -sk -o /dev/null -D "$TEST_TMP/h" "$PEMS_URL/api/pems/nope" -H "Authorization: Bearer $TOKEN"
assert_match '^application/json' "$(grep -i '^content-type:' "$TEST_TMP/h" | sed 's/^[^:]*: *//' | tr -d '\r')" \
  "content-type of a 404"

finish
