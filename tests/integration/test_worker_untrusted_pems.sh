#!/usr/bin/env bash
# A PEMS server's answers are input like a client's (README, Security): records with wrong
# field types are not stored (logged with organization and pfaId, counted, /health degraded)
# while the rest of the page is; a record whose updatedAt lies beyond the pull's start is
# stored, but that updatedAt never becomes the cursor; versions are 64-bit: taken exactly up
# to 2^63-1 (beyond 2^31 and 2^53 too), refused beyond, never wrapped; a cursor that does not
# advance ends that organization's pull while the others go on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
. "$(dirname "$0")/worker_fixtures.sh"
wfx_require

GOOD=$WFX_RECORD
good_with() { printf '%s' "$GOOD" | jq -c "$1"; }
rejects() {  # ORG [PFA_ID] -> rows in pems_rejected_records
  fx_sql "SELECT count(*) FROM pems_rejected_records WHERE organization_id = :'o'
          AND (:'p' = '' OR pfa_id = :'p')" -v o="$1" -v p="${2:-}"
}
reject_reason() { fx_sql "SELECT reason FROM pems_rejected_records WHERE organization_id = :'o' AND pfa_id = :'p'" -v o="$1" -v p="$2"; }
mirror_has() { [ "$(fx_sql "SELECT count(*) FROM pfa_mirror WHERE organization_id = :'o' AND pfa_id = :'p'" -v o="$1" -v p="$2")" = 1 ]; }
rejected_metric() {
  curl -sk "$PEMS_URL/api/pems/metrics" |
    sed -n "s/^pems_upstream_rejected_total{reason=\"$1\"} \([0-9]*\)$/\1/p"
}
health_field() { curl -sk "$PEMS_URL/api/pems/health" | jq -r ".$1"; }
pull_since() { fx_sql "SELECT coalesce(pull_since, '') FROM api_servers WHERE organization_id = :'o'" -v o="$1"; }
iso_ago() { date -u -d "@$(($(date +%s) - $1))" +%Y-%m-%dT%H:%M:%S.000Z; }
cleanup_org() { fx_sql "DELETE FROM pems_rejected_records WHERE organization_id = :'o'" -v o="$1" >/dev/null; }

# --- 1. wrong field types ----------------------------------------------------------------------
test_begin "records with wrong types are not stored, the rest of the page is"
wfx_org typed
ORG=$W_ORG TEN=$W_TENANT
# a string over 500 characters (a record over 64 KiB is record_too_large: test_worker_isolation.sh)
BIG=$(head -c 600 /dev/zero | tr '\0' 'x')
RECS=$(jq -cn --argjson g "$GOOD" --arg big "$BIG" '[
  {pfaId:"T-ok1", version:1, data:$g},
  {pfaId:"T-cat", version:1, data:($g + {category:5})},
  {pfaId:"T-rate", version:1, data:($g + {monthlyRate:"abc"})},
  {pfaId:"T-src", version:1, data:($g + {source:["Rental"]})},
  {pfaId:"T-neg", version:1, data:($g + {purchasePrice:-5})},
  {pfaId:"T-big", version:1, data:($g + {model:$big})},
  {pfaId:"T-req", version:1, data:{model:"no category, source or dor"}},
  {pfaId:"T-ok2", version:1, data:$g}]')
sim_seed "$TEN" "$RECS"
before=$(rejected_metric invalid)
wfx_once
assert_eq 0 "$WORKER_RC" "pemsworker --once exit status"
for id in T-ok1 T-ok2; do mirror_has "$ORG" "$id" || fail "$id not stored"; done
pass
for id in T-cat T-rate T-src T-neg T-big T-req; do
  mirror_has "$ORG" "$id" && fail "$id stored in the mirror"
  assert_eq invalid "$(reject_reason "$ORG" "$id")" "$id recorded as rejected"
  grep -qE "event=pems_record_rejected org=$ORG pfa_id=\"?$id\"? reason=invalid" "$TEST_TMP/worker.log" ||
    fail "$id: no log line with organization and pfaId"
done
assert_ge "$(rejected_metric invalid)" $((before + 6)) "pems_upstream_rejected_total{reason=invalid}"
assert_eq degraded "$(health_field status)" "health status while records are rejected"
assert_eq rejected "$(health_field pemsData)" "health pemsData"

test_begin "a valid later version clears the reject"
sim_edit "$TEN" T-cat '{"category":"Cranes"}'
wfx_drive 20 mirror_has "$ORG" T-cat || fail "T-cat not stored after PEMS fixed it"
assert_eq 0 "$(rejects "$ORG" T-cat)" "T-cat no longer rejected"
assert_eq 2 "$(mirror_version "$ORG" T-cat)" "T-cat at its valid version"
assert_eq 5 "$(rejects "$ORG")" "the others still rejected"
cleanup_org "$ORG"

# --- 2. updatedAt ------------------------------------------------------------------------------
test_begin "a record with an updatedAt beyond the pull's start is stored; its updatedAt is not the cursor"
wfx_org clock
ORG=$W_ORG TEN=$W_TENANT
PAST=$(iso_ago 3600)
PAGE=$(jq -cn --argjson g "$GOOD" --arg past "$PAST" '{records:[
  {pfaId:"C-past", version:1, updatedAt:$past, data:$g},
  {pfaId:"C-future", version:1, updatedAt:"2999-01-01T00:00:00Z", data:$g},
  {pfaId:"C-garbage", version:1, updatedAt:"yesterday at noon", data:$g},
  {pfaId:"C-none", version:1, data:$g}], nextCursor:null}')
sim_fault "$TEN" "$(jq -cn --arg b "$PAGE" '{status:200, match:"pull", count:1, body:$b}')"
wfx_once
assert_eq 0 "$WORKER_RC" "pemsworker --once exit status"
mirror_has "$ORG" C-past || fail "C-past not stored"
pass
# PEMS is the source of truth for the record: stored; only its time is not trusted
mirror_has "$ORG" C-future || fail "C-future not stored"
assert_eq "" "$(reject_reason "$ORG" C-future)" "C-future not rejected"
grep -qE "event=pems_updated_at_untrusted org=$ORG .*pfa_id=\"?C-future\"?" "$TEST_TMP/worker.log" ||
  fail "C-future: no log line for its untrusted updatedAt"
for id in C-garbage C-none; do mirror_has "$ORG" "$id" && fail "$id stored"; done
assert_eq invalid "$(reject_reason "$ORG" C-garbage)" "C-garbage rejected"
assert_eq "${PAST%Z}" "$(pull_since "$ORG" | sed 's/Z$//')" "the cursor is the newest trusted updatedAt"
cleanup_org "$ORG"

test_begin "a stored cursor that is garbage or in the future is not sent again"
for bad in 'garbage' '2999-01-01T00:00:00Z'; do
  wfx_org since
  ORG=$W_ORG TEN=$W_TENANT
  sim_seed "$TEN" "$(wfx_records S 2)"
  fx_sql "UPDATE api_servers SET pull_since = :'s' WHERE organization_id = :'o'" -v s="$bad" -v o="$ORG" >/dev/null
  wfx_once
  assert_eq 0 "$(sim_count "$TEN" "GET /pfa" 400)" "since=$bad: no 400 from PEMS"
  assert_eq 2 "$(org_mirror_count "$ORG")" "since=$bad: the records are pulled"
  assert_match '^20[0-9]{2}-' "$(pull_since "$ORG")" "since=$bad: a real cursor stored"
  assert_ne "$bad" "$(pull_since "$ORG")" "since=$bad: replaced"
done

# --- 3. versions -------------------------------------------------------------------------------
mirror_is_version() { sql_is "$3" "SELECT version FROM pfa_mirror WHERE organization_id = :'o' AND pfa_id = :'p'" -v o="$1" -v p="$2"; }
superseded_by() {  # ORG PFA_ID VERSION -> the version that replaced it in the history
  fx_sql "SELECT superseded_by FROM pfa_mirror_history WHERE organization_id = :'o' AND pfa_id = :'p'
          AND version = :'v'" -v o="$1" -v p="$2" -v v="$3"
}
# the integer after "KEY": in a raw JSON text (jq 1.6 reads numbers as doubles)
raw_int() { printf '%s' "$2" | grep -oE "\"$1\" *: *[0-9]+" | head -n 1 | grep -oE '[0-9]+$'; }

test_begin "a 409 at version 4294967298 moves the mirror there; the next write carries it"
wfx_org version
ORG=$W_ORG TEN=$W_TENANT TOK=$W_TOKEN
sim_seed "$TEN" "$(wfx_records V 1 4294967297)"
wfx_drive 20 mirror_is_version "$ORG" V-1 4294967297 || fail "V-1 not pulled at 4294967297: $(mirror_version "$ORG" V-1)"
wfx_mod MOD "$TOK" "$ORG" V-1 4294967297 '{"monthlyRate":13000}'
assert_eq 4294967297 "$(raw_int baseVersion "$BODY")" "POST /modifications answers baseVersion 4294967297"
assert_eq 4294967297 "$(mod_base "$MOD")" "baseVersion stored as sent"
# PEMS moves on; the write on 4294967297 gets PEMS's own 409 with the record at 4294967298
sim_edit "$TEN" V-1 '{"category":"Upstream"}'
sim_control_ok "$TEN" GET /records/V-1
CUR=$SIM_BODY
assert_eq 4294967298 "$(raw_int version "$CUR")" "PEMS at 4294967298"
sim_fault "$TEN" "$(jq -cn --arg b "$CUR" '{status:409, pfaId:"V-1", match:"writes", count:1, body:$b}')"
wfx_write_sync "$TOK" "$ORG" 1
wfx_drive 40 mod_is "$MOD" synced || fail "modification not synced: $(fx_mod_status "$MOD")"
# PEMS applies a write only on its own version: it took one on 4294967298
assert_eq 4294967299 "$(sim_record "$TEN" V-1 .version)" "PEMS applied the write made on 4294967298"
assert_eq 13000 "$(sim_record "$TEN" V-1 .data.monthlyRate)" "PEMS has the local change"
assert_eq 4294967299 "$(mirror_version "$ORG" V-1)" "mirror at the version the write made"
assert_eq 4294967298 "$(superseded_by "$ORG" V-1 4294967297)" "4294967297 superseded by 4294967298, not wrapped"
assert_eq 4294967299 "$(superseded_by "$ORG" V-1 4294967298)" "4294967298 superseded by the write's version"
assert_eq "Upstream|13000" "$(mirror_col "$ORG" V-1 "concat_ws('|', data->>'category', data->>'monthlyRate')")" "mirror has both changes"
assert_eq 0 "$(rejects "$ORG")" "nothing rejected"
# the Idempotency-Key of that write was <item>:4294967298: PEMS answers a replay under that
# key from its memory, and a write under any other key is new (and stale: 409)
ITEM=$(queue_cols "$MOD" id)
sim_control_ok "$TEN" POST /config '{"apiKey":"v64-replay"}'
replay() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X PUT -H 'x-api-key: v64-replay' \
    -H "Idempotency-Key: $1" -H 'Content-Type: application/json' \
    --data-binary '{"version":4294967298,"changes":{"monthlyRate":13000}}' "$PEMS_SIM_URL/t/$TEN/pfa/V-1"
}
dup=$(sim_stat "$TEN" .duplicateWrites)
assert_eq 409 "$(replay "$ITEM:2")" "a write under key <item>:2 is not one PEMS saw"
assert_eq 200 "$(replay "$ITEM:4294967298")" "PEMS saw the write under key <item>:4294967298"
assert_eq $((dup + 1)) "$(sim_stat "$TEN" .duplicateWrites)" "answered from PEMS's key memory"
assert_eq 4294967299 "$(sim_record "$TEN" V-1 .version)" "the replay changed nothing"
cleanup_org "$ORG"

test_begin "a record at version 9007199254740993 (beyond 2^53) is exact in the mirror and the API"
wfx_org huge
ORG=$W_ORG TEN=$W_TENANT TOK=$W_TOKEN
# jq 1.6 would round it: the JSON is written as text
sim_seed "$TEN" "$(wfx_records H 1 | sed 's/"version":1,/"version":9007199254740993,/')"
wfx_drive 20 mirror_is_version "$ORG" H-1 9007199254740993 || fail "H-1 not pulled at 9007199254740993: $(mirror_version "$ORG" H-1)"
mod_body() { printf '{"organizationId":"%s","pfaId":"H-1","operation":"update","baseVersion":%s,"delta":{"monthlyRate":%s}}' "$ORG" "$1" "$2"; }
api_as "$TOK" POST /api/pems/modifications "$(mod_body 9007199254740994 13000)"
assert_error 400 validation_failed "a baseVersion newer than the mirror's"
assert_match "newer than the mirror's version 9007199254740993" "$BODY" "the message names the mirror's exact version"
api_as "$TOK" POST /api/pems/modifications "$(mod_body 9223372036854775808 13000)"
assert_eq 400 "$HTTP_STATUS" "a baseVersion beyond 2^63-1 ($(printf '%s' "$BODY" | head -c 200))"
api_as "$TOK" POST /api/pems/modifications "$(mod_body 9007199254740993 13000)"
assert_eq 201 "$HTTP_STATUS" "POST /modifications on 9007199254740993 ($(printf '%s' "$BODY" | head -c 300))"
MOD=$(jbody .id)
assert_eq 9007199254740993 "$(raw_int baseVersion "$BODY")" "POST answers baseVersion exactly"
api_as "$TOK" GET "/api/pems/modifications/$MOD"
assert_eq 9007199254740993 "$(raw_int baseVersion "$BODY")" "GET /modifications/{id} baseVersion exactly"
# PEMS changes the same field: a conflict between 9007199254740993 and 9007199254740994
sim_edit "$TEN" H-1 '{"monthlyRate":999}'
wfx_write_sync "$TOK" "$ORG" 1
wfx_drive 40 mod_is "$MOD" conflict || fail "no conflict: $(fx_mod_status "$MOD")"
api_as "$TOK" GET "/api/pems/conflicts?organizationId=$ORG"
assert_eq 200 "$HTTP_STATUS" "GET /conflicts"
assert_eq 9007199254740993 "$(raw_int localVersion "$BODY")" "conflict localVersion exactly"
assert_eq 9007199254740994 "$(raw_int pemsVersion "$BODY")" "conflict pemsVersion exactly"
assert_eq 9007199254740994 "$(mirror_version "$ORG" H-1)" "mirror at PEMS's version"
# use_local rebases the modification on the mirror's version and PEMS takes the write on it
CID=$(jbody '.conflicts[0].id')
api_as "$TOK" POST "/api/pems/conflicts/$CID/resolve" '{"resolution":"use_local"}'
assert_eq 200 "$HTTP_STATUS" "resolve use_local ($(printf '%s' "$BODY" | head -c 300))"
assert_eq 9007199254740994 "$(mod_base "$MOD")" "the modification rebased on 9007199254740994 exactly"
wfx_drive 40 mod_is "$MOD" synced || fail "use_local not synced: $(fx_mod_status "$MOD")"
assert_eq 13000 "$(sim_record "$TEN" H-1 .data.monthlyRate)" "PEMS has the local value"
assert_eq 9007199254740995 "$(mirror_version "$ORG" H-1)" "mirror at the version the write made"
cleanup_org "$ORG"

test_begin "a version beyond 2^63-1 is refused for its record alone, logged and counted"
wfx_org toobig
ORG=$W_ORG TEN=$W_TENANT
PAST=$(iso_ago 3600)
PAGE=$(jq -cn --argjson g "$GOOD" --arg past "$PAST" '{records:[
  {pfaId:"Z-max", version:"@MAX@", updatedAt:$past, data:$g},
  {pfaId:"Z-huge", version:"@HUGE@", updatedAt:$past, data:$g},
  {pfaId:"Z-real", version:"@REAL@", updatedAt:$past, data:$g}], nextCursor:null}' |
  sed 's/"@MAX@"/9223372036854775807/; s/"@HUGE@"/9223372036854775808/; s/"@REAL@"/4294967298.0/')
# every pull gets the page while this test's worker runs (the stack's worker may pull too)
sim_fault "$TEN" "$(jq -cn --arg b "$PAGE" '{status:200, match:"pull", count:-1, body:$b}')"
before=$(rejected_metric invalid)
: > "$TEST_TMP/worker.log"
wfx_once
sim_control_ok "$TEN" DELETE /faults
assert_eq 0 "$WORKER_RC" "pemsworker --once exit status"
assert_eq 9223372036854775807 "$(mirror_version "$ORG" Z-max)" "2^63-1 stored exactly, on the same page"
for id in Z-huge Z-real; do
  mirror_has "$ORG" "$id" && fail "$id stored in the mirror"
  assert_eq invalid "$(reject_reason "$ORG" "$id")" "$id recorded as rejected"
  grep -qE "event=pems_record_rejected org=$ORG pfa_id=\"?$id\"? reason=invalid" "$TEST_TMP/worker.log" ||
    fail "$id: no log line with organization and pfaId"
done
assert_ge "$(rejected_metric invalid)" $((before + 2)) "pems_upstream_rejected_total{reason=invalid}"
cleanup_org "$ORG"

test_begin "a 200 write result with wrong types leaves the mirror to the next pull"
wfx_org result
ORG=$W_ORG TEN=$W_TENANT TOK=$W_TOKEN
sim_seed "$TEN" "$(wfx_records R 1)"
wfx_drive 20 org_mirror_is "$ORG" 1 || fail "R-1 not pulled"
wfx_mod MOD "$TOK" "$ORG" R-1 1 '{"monthlyRate":14000}'
BAD=$(jq -cn --argjson g "$GOOD" '{pfaId:"R-1", version:2, data:($g + {category:5, monthlyRate:"abc"})}')
sim_fault "$TEN" "$(jq -cn --arg b "$BAD" '{status:200, pfaId:"R-1", match:"writes", count:1, body:$b}')"
wfx_write_sync "$TOK" "$ORG" 1
wfx_drive 40 mod_is "$MOD" synced || fail "modification not synced: $(fx_mod_status "$MOD")"
assert_eq Cranes "$(mirror_field "$ORG" R-1 category)" "the result's category never reached the mirror"
assert_eq 1 "$(mirror_version "$ORG" R-1)" "mirror left at its version for the next pull"
assert_eq invalid "$(reject_reason "$ORG" R-1)" "the result recorded as rejected"
cleanup_org "$ORG"

test_begin "a 200 write result without data is the record written, on its version"
wfx_org bare
ORG=$W_ORG TEN=$W_TENANT TOK=$W_TOKEN
sim_seed "$TEN" "$(wfx_records B 1)"
wfx_drive 20 org_mirror_is "$ORG" 1 || fail "B-1 not pulled"
wfx_mod MOD "$TOK" "$ORG" B-1 1 '{"monthlyRate":15000}'
sim_fault "$TEN" '{"status":200, "pfaId":"B-1", "match":"writes", "count":1, "body":"{\"pfaId\":\"B-1\",\"version\":7}"}'
wfx_write_sync "$TOK" "$ORG" 1
wfx_drive 40 mod_is "$MOD" synced || fail "modification not synced: $(fx_mod_status "$MOD")"
assert_eq 7 "$(mirror_version "$ORG" B-1)" "mirror at the version PEMS answered"
assert_eq 15000 "$(mirror_field "$ORG" B-1 monthlyRate)" "mirror has what was written"
assert_eq 0 "$(rejects "$ORG")" "nothing rejected"

# --- 4. cursors --------------------------------------------------------------------------------
test_begin "a cursor that does not advance ends that organization's pull, the others go on"
wfx_org stuck
STUCK=$W_ORG STEN=$W_TENANT
wfx_org healthy
OK_ORG=$W_ORG OTEN=$W_TENANT
sim_seed "$OTEN" "$(wfx_records OK 3)"
LOOP=$(jq -cn --argjson g "$GOOD" --arg t "$(iso_ago 60)" \
  '{records:[{pfaId:"L-1", version:1, updatedAt:$t, data:$g}], nextCursor:"same"}')
sim_fault "$STEN" "$(jq -cn --arg b "$LOOP" '{status:200, match:"pull", count:-1, body:$b}')"
before=$(rejected_metric stuck_cursor)
: > "$TEST_TMP/worker.log"
wfx_once
grep -q "event=pull_cursor_stuck org=$STUCK" "$TEST_TMP/worker.log" || { fail "no pull_cursor_stuck for the looping org"; worker_log_tail; }
assert_le "$(sim_count "$STEN" "GET /pfa" '*')" 6 "pull requests to the looping server"
assert_eq 3 "$(org_mirror_count "$OK_ORG")" "the other organization was pulled"
assert_ge "$(rejected_metric stuck_cursor)" $((before + 1)) "pems_upstream_rejected_total{reason=stuck_cursor}"
sim_control_ok "$STEN" DELETE /faults

test_begin "a page that brings nothing but a cursor ends the pull"
EMPTY='{"records":[],"nextCursor":"more"}'
sim_fault "$STEN" "$(jq -cn --arg b "$EMPTY" '{status:200, match:"pull", count:-1, body:$b}')"
: > "$TEST_TMP/worker.log"
wfx_once
grep -q "event=pull_cursor_stuck org=$STUCK" "$TEST_TMP/worker.log" || fail "no pull_cursor_stuck for an empty page with a cursor"
assert_le "$(sim_count "$STEN" "GET /pfa" '*')" 12 "pull requests to the server sending empty pages"
sim_control_ok "$STEN" DELETE /faults
cleanup_org "$STUCK"
finish
