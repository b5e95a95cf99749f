#!/usr/bin/env bash
# Idempotency-Key on every POST (README, "Idempotent POSTs"; src/api/openapi.yaml): a
# successful answer kept per user for 24 hours, in the transaction of its work; the same
# request again gets it with Idempotent-Replayed: true and nothing is done twice; another
# method, path or body -> 422 idempotency_key_reused; while the first runs -> 409; an error
# answer is not kept; a malformed key -> 400 (field Idempotency-Key); another user's key is
# unrelated; expired keys are pruned.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG=$(fx_org idem)
USER_ID=$(fx_user "$ORG" Read,Write,Sync)
USER_2=$(fx_user "$ORG" Read,Write,Sync)
TOKEN=$(fx_token "$USER_ID")
TOKEN_2=$(fx_token "$USER_2")
for p in I-1 I-2 I-3 I-4; do fx_mirror "$ORG" "$p" 1 >/dev/null; done
key() { printf 'key-%s-%s' "$1" "$(openssl rand -hex 6)"; }

# kpost TOKEN KEY PATH BODY: POST with the key; sets HTTP_STATUS, BODY, REPLAYED
kpost() {
  local args=(-sk -X POST -o "$TEST_TMP/body" -D "$TEST_TMP/headers" -w '%{http_code}' --max-time 30
              -H "Authorization: Bearer $1" -H 'Content-Type: application/json')
  # (curl sends a header with an empty value only in its "Name;" form)
  if [ -n "$2" ]; then args+=(-H "Idempotency-Key: $2"); else args+=(-H 'Idempotency-Key;'); fi
  [ -n "$4" ] && args+=(--data-binary "$4")
  HTTP_STATUS=$(curl "${args[@]}" "$PEMS_URL$3")
  BODY=$(cat "$TEST_TMP/body")
  REPLAYED=$(tr -d '\r' <"$TEST_TMP/headers" | sed -n 's/^[Ii]dempotent-[Rr]eplayed: *//p')
}
audits() { fx_count audit_log "organization_id = :'o'" -v o="$ORG"; }
mod_body() {  # PFA_ID MODEL
  printf '{"organizationId":"%s","pfaId":"%s","operation":"update","baseVersion":1,"delta":{"model":"%s"}}' "$ORG" "$1" "$2"
}

test_begin "POST /modifications: replayed, done once, kept in the transaction of its work"
K=$(key mod)
kpost "$TOKEN" "$K" /api/pems/modifications "$(mod_body I-1 One)"
assert_eq 201 "$HTTP_STATUS" "first"
assert_eq "" "$REPLAYED" "the first answer is no replay"
FIRST=$BODY
MOD=$(jbody .id)
mods=$(fx_org_mods "$ORG"); aud=$(audits)
kpost "$TOKEN" "$K" /api/pems/modifications "$(mod_body I-1 One)"
assert_eq 201 "$HTTP_STATUS" "the same request again: the same status"
assert_eq "$FIRST" "$BODY" "the same body"
assert_eq true "$REPLAYED" "Idempotent-Replayed: true"
assert_eq "$mods" "$(fx_org_mods "$ORG")" "no second modification"
assert_eq "$aud" "$(audits)" "no second audit row"
# now() is the transaction's start: equal stamps are one transaction
assert_eq t "$(fx_sql "SELECT k.created_at = m.created_at FROM api_idempotency_keys k, pfa_modification m
                       WHERE k.user_id = :'u' AND k.key = :'k' AND m.id = :'m'" -v u="$USER_ID" -v k="$K" -v m="$MOD")" \
  "the answer was written by the transaction that made the modification"
assert_eq t "$(fx_sql "SELECT expires_at - created_at >= interval '24 hours' FROM api_idempotency_keys
                       WHERE user_id = :'u' AND key = :'k'" -v u="$USER_ID" -v k="$K")" "kept for at least 24 hours"

test_begin "the same key for another request: 422; another user: unrelated"
kpost "$TOKEN" "$K" /api/pems/modifications "$(mod_body I-1 Two)"
assert_error 422 idempotency_key_reused "another body"
kpost "$TOKEN" "$K" /api/pems/modifications/batch "{\"organizationId\":\"$ORG\",\"modifications\":[$(mod_body I-1 One | jq -c 'del(.organizationId)')]}"
assert_error 422 idempotency_key_reused "another path"
assert_eq "$mods" "$(fx_org_mods "$ORG")" "nothing done"
kpost "$TOKEN_2" "$K" /api/pems/modifications "$(mod_body I-1 One)"
assert_eq 201 "$HTTP_STATUS" "another user's same key is a new request"
assert_eq "" "$REPLAYED" "not a replay"
assert_ne "$MOD" "$(jbody .id)" "its own modification"
assert_eq "$USER_2" "$(jbody .modifiedBy.id)" "made by that user"

test_begin "an error answer is not kept: the corrected request takes the key"
K=$(key err)
kpost "$TOKEN" "$K" /api/pems/modifications "$(mod_body I-2 X | jq -c '.delta.forecastEnd = "2020-01-01"')"
assert_error 400 validation_failed "refused"
assert_eq 0 "$(fx_count api_idempotency_keys "user_id = :'u' AND key = :'k'" -v u="$USER_ID" -v k="$K")" "no answer kept"
kpost "$TOKEN" "$K" /api/pems/modifications "$(mod_body I-2 X)"
assert_eq 201 "$HTTP_STATUS" "the corrected request with the same key"
assert_eq "" "$REPLAYED" "done, not replayed"
kpost "$TOKEN" "$K" /api/pems/modifications/batch '{'
assert_error 422 idempotency_key_reused "once kept, another body is refused"

test_begin "a malformed key: 400 with the field Idempotency-Key"
for bad in "" "with space" "$(head -c 256 /dev/zero | tr '\0' k)" "caf$(printf '\xc3\xa9')"; do
  kpost "$TOKEN" "$bad" /api/pems/modifications "$(mod_body I-2 Y)"
  assert_error 400 validation_failed "key '${bad:0:20}'"
  assert_jq '.error.details[0].field' Idempotency-Key "named"
done
kpost "$TOKEN" "$(head -c 255 /dev/zero | tr '\0' k)" /api/pems/modifications "$(mod_body I-2 Y)"
assert_eq 201 "$HTTP_STATUS" "255 characters is a key"
kpost "" "$(key anon)" /api/pems/modifications "$(mod_body I-2 Y)"
assert_error 401 unauthorized "no token comes first"

test_begin "every POST: write-sync, batch, resolve, retry, cancel are replayed and done once"
K=$(key ws)
kpost "$TOKEN" "$K" /api/pems/write-sync "{\"organizationId\":\"$ORG\"}"
assert_eq 202 "$HTTP_STATUS" "write-sync"
FIRST=$BODY; items=$(fx_org_items "$ORG")
assert_ge "$items" 1 "items queued"
fx_mod "$ORG" I-3 "$USER_ID" pending_sync 1 '{"model":"late"}' >/dev/null
kpost "$TOKEN" "$K" /api/pems/write-sync "{\"organizationId\":\"$ORG\"}"
assert_eq 202 "$HTTP_STATUS" "write-sync replayed"
assert_eq "$FIRST" "$BODY" "its answer (jobId too)"
assert_eq true "$REPLAYED" "replayed"
assert_eq "$items" "$(fx_org_items "$ORG")" "nothing queued the second time"

K=$(key batch)
BATCH="{\"organizationId\":\"$ORG\",\"modifications\":[{\"pfaId\":\"I-4\",\"operation\":\"update\",\"baseVersion\":1,\"delta\":{\"model\":\"B\"}}]}"
kpost "$TOKEN" "$K" /api/pems/modifications/batch "$BATCH"
assert_eq 201 "$HTTP_STATUS" "batch"
FIRST=$BODY; mods=$(fx_org_mods "$ORG")
kpost "$TOKEN" "$K" /api/pems/modifications/batch "$BATCH"
assert_eq "201 true" "$HTTP_STATUS $REPLAYED" "batch replayed"
assert_eq "$FIRST" "$BODY" "its answer"
assert_eq "$mods" "$(fx_org_mods "$ORG")" "no second batch"

MC=$(fx_mod "$ORG" I-4 "$USER_ID" conflict 1 '{"model":"C"}')
CF=$(fx_conflict "$ORG" "$MC" I-4 1 2 model '{"model":"C"}' "$FX_RECORD")
K=$(key resolve)
kpost "$TOKEN" "$K" "/api/pems/conflicts/$CF/resolve" '{"resolution":"use_pems"}'
assert_eq 200 "$HTTP_STATUS" "resolve"
FIRST=$BODY; aud=$(audits)
kpost "$TOKEN" "$K" "/api/pems/conflicts/$CF/resolve" '{"resolution":"use_pems"}'
assert_eq "200 true" "$HTTP_STATUS $REPLAYED" "resolve replayed, not 409 already resolved"
assert_eq "$FIRST" "$BODY" "its answer"
assert_eq "$aud" "$(audits)" "no second audit row"

MF=$(fx_mod "$ORG" I-3 "$USER_ID" sync_error 1 '{"model":"F"}')
QF=$(fx_queue "$ORG" "$MF" failed)
K=$(key retry)
kpost "$TOKEN" "$K" "/api/pems/queue/$QF/retry" ""
assert_eq 200 "$HTTP_STATUS" "retry"
FIRST=$BODY
kpost "$TOKEN" "$K" "/api/pems/queue/$QF/retry" ""
assert_eq "200 true" "$HTTP_STATUS $REPLAYED" "retry replayed, not 409 (the item is pending now)"
assert_eq "$FIRST" "$BODY" "its answer"
K=$(key cancel)
kpost "$TOKEN" "$K" "/api/pems/queue/$QF/cancel" ""
assert_eq 200 "$HTTP_STATUS" "cancel"
aud=$(audits)
kpost "$TOKEN" "$K" "/api/pems/queue/$QF/cancel" ""
assert_eq "200 true" "$HTTP_STATUS $REPLAYED" "cancel replayed"
assert_eq "$aud" "$(audits)" "no second audit row"
assert_eq cancelled "$(fx_item_status "$QF")" "cancelled once"

test_begin "the same key while the first request still runs: 409; then the first answer"
K=$(key running)
mkfifo "$TEST_TMP/lock"
PGAPPNAME=records-idem-lock psql -qtAX "$DATABASE_URL" -v ON_ERROR_STOP=1 < "$TEST_TMP/lock" > "$TEST_TMP/lock.out" 2>&1 &
LOCKER=$!
exec 3>"$TEST_TMP/lock"
printf '%s\n' "BEGIN;" "LOCK TABLE pfa_modification IN EXCLUSIVE MODE;" "SELECT 'locked';" >&3
locked() {
  [ "$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'records-idem-lock'
               AND state = 'idle in transaction'")" = 1 ]
}
wait_for 10 locked || fail "the lock was not taken"
curl -sk -X POST -o "$TEST_TMP/first" -w '%{http_code}' --max-time 60 -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -H "Idempotency-Key: $K" --data-binary "$(mod_body I-2 Slow)" \
  "$PEMS_URL/api/pems/modifications" > "$TEST_TMP/first.status" &
FIRST_PID=$!
waiting() {
  [ "$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
               AND query LIKE 'INSERT INTO pfa_modification%'")" -ge 1 ]
}
wait_for 10 waiting || fail "the first request did not reach the lock"
kpost "$TOKEN" "$K" /api/pems/modifications "$(mod_body I-2 Slow)"
assert_error 409 conflict "the same key while the first runs"
kpost "$TOKEN_2" "$K" /api/pems/modifications/batch '{}'
assert_error 400 validation_failed "another user's same key is not held up"
printf '%s\n' "COMMIT;" >&3
exec 3>&-
wait "$LOCKER"
wait "$FIRST_PID"
assert_eq 201 "$(cat "$TEST_TMP/first.status")" "the first request finishes"
kpost "$TOKEN" "$K" /api/pems/modifications "$(mod_body I-2 Slow)"
assert_eq "201 true" "$HTTP_STATUS $REPLAYED" "then its answer is replayed"
assert_eq "$(jq -r .id "$TEST_TMP/first")" "$(jbody .id)" "the first request's modification"
assert_eq 1 "$(fx_count pfa_modification "organization_id = :'o' AND delta->>'model' = 'Slow'" -v o="$ORG")" "made once"

test_begin "expired keys: pruned, and a key past its time is new again"
K=$(key old)
kpost "$TOKEN" "$K" /api/pems/modifications "$(mod_body I-1 Old)"
assert_eq 201 "$HTTP_STATUS" "made"
OLD_ID=$(jbody .id)
OTHER_OLD=$(key other-old)
kpost "$TOKEN" "$OTHER_OLD" /api/pems/modifications "$(mod_body I-1 Older)"
fx_sql "UPDATE api_idempotency_keys SET created_at = now() - interval '25 hours', expires_at = now() - interval '1 hour'
        WHERE user_id = :'u' AND key IN (:'k', :'k2')" -v u="$USER_ID" -v k="$K" -v k2="$OTHER_OLD" >/dev/null
kpost "$TOKEN" "$K" /api/pems/modifications "$(mod_body I-1 Old)"
assert_eq 201 "$HTTP_STATUS" "an expired key: done again"
assert_eq "" "$REPLAYED" "not replayed"
assert_ne "$OLD_ID" "$(jbody .id)" "a new modification"
assert_eq 0 "$(fx_count api_idempotency_keys "expires_at <= now()")" "expired keys pruned by the next key kept"

test_begin "GET ignores the header"
curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H 'Idempotency-Key: bad key' \
  "$PEMS_URL/api/pems/records?organizationId=$ORG" > "$TEST_TMP/get"
assert_eq 200 "$(cat "$TEST_TMP/get")" "a GET with a malformed key"

finish
