#!/usr/bin/env bash
# GET /changes (src/api/openapi.yaml): every record whose mirror row or open modifications
# changed after `since`, once each, in the order of its latest change, deletes as tombstones;
# next, upToDate and paging by limit; since beyond every position -> 409; positions kept by the
# database whatever writes; and the late commit: a change whose transaction began before, and
# committed after, a change already handed out is still delivered.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG=$(fx_org changes)
ORG_B=$(fx_org changes-b)
USER_ID=$(fx_user "$ORG" Read,Write)
OTHER=$(fx_user "$ORG_B" Read)
TOKEN=$(fx_token "$USER_ID")
F="/api/pems/changes?organizationId=$ORG"

test_begin "an organization without records"
api GET "$F"
assert_eq 200 "$HTTP_STATUS" "GET /changes"
assert_jq . '{"changes":[],"next":0,"upToDate":true}' "nothing yet"
api GET "$F&since=1"
assert_error 409 conflict "since beyond every position"

test_begin "each record once, in the order of its latest change, as the record object with seq"
fx_mirror "$ORG" C-1 1 >/dev/null
fx_mirror "$ORG" C-2 1 >/dev/null
fx_mirror "$ORG" C-3 1 >/dev/null
fx_mirror "$ORG_B" C-B 1 >/dev/null
api GET "$F"
assert_jq '[.changes[].pfaId]' '["C-1","C-2","C-3"]' "in order, another organization's left out"
assert_jq '.changes | map(.seq) == (map(.seq) | sort)' true "seq grows"
assert_keys '.changes[0]' "pfaId seq version data localData syncState pendingModifications updatedAt" "the record object plus seq"
assert_jq .upToDate true "upToDate"
assert_jq '.next == .changes[-1].seq' true "next is the last seq"
N0=$(jbody .next)
api GET "$F&since=$N0"
assert_jq . "{\"changes\":[],\"next\":$N0,\"upToDate\":true}" "a poll with nothing new keeps next"
M=$(fx_mod "$ORG" C-1 "$USER_ID" pending_sync 1 '{"model":"X"}')
fx_sql "UPDATE pfa_mirror SET version = 2 WHERE organization_id = :'o' AND pfa_id = 'C-2'" -v o="$ORG" >/dev/null
api GET "$F&since=$N0"
assert_jq '[.changes[].pfaId]' '["C-1","C-2"]' "a modification and a mirror change move their records"
assert_jq '.changes[0].localData.model' X "the record as the planner sees it"
assert_jq '.changes[0].pendingModifications' "[\"$M\"]" "with its modification"
N1=$(jbody .next)
fx_sql "UPDATE pfa_modification SET status = 'queued' WHERE id = :'m'" -v m="$M" >/dev/null
fx_sql "UPDATE pfa_mirror SET version = 3 WHERE organization_id = :'o' AND pfa_id = 'C-2'" -v o="$ORG" >/dev/null
fx_sql "UPDATE pfa_mirror SET version = 2 WHERE organization_id = :'o' AND pfa_id = 'C-1'" -v o="$ORG" >/dev/null
api GET "$F&since=$N1"
assert_jq '[.changes[].pfaId]' '["C-2","C-1"]' "each once, in the order of its latest change"
api GET "$F&since=0"
assert_jq '[.changes[].pfaId]' '["C-3","C-2","C-1"]' "from 0: every record once"

test_begin "deletes come as tombstones"
N2=$(jbody .next)
fx_sql "UPDATE pfa_mirror SET deleted = true, version = 4 WHERE organization_id = :'o' AND pfa_id = 'C-3'" -v o="$ORG" >/dev/null
api GET "$F&since=$N2"
assert_jq '.changes | length' 1 "one change"
assert_jq '.changes[0] | {pfaId, deleted, hasData: has("data")}' '{"pfaId":"C-3","deleted":true,"hasData":false}' "a tombstone"
assert_jq '.changes[0].seq > '"$N2" true "with its seq"
N3=$(jbody .next)
fx_sql "DELETE FROM pfa_mirror WHERE organization_id = :'o' AND pfa_id = 'C-3'" -v o="$ORG" >/dev/null
api GET "$F&since=$N3"
assert_jq '.changes[0] | {pfaId, deleted}' '{"pfaId":"C-3","deleted":true}' "a row removed from the mirror too"

test_begin "limit cuts the page: upToDate false, next continues"
for i in 1 2 3 4 5; do fx_mirror "$ORG" "P-$i" 1 >/dev/null; done
api GET "$F&since=$N3&limit=3"
assert_jq '.changes | length' 3 "three"
assert_jq .upToDate false "the page was cut"
assert_jq '.next == .changes[-1].seq' true "next is the last seq handed out"
N4=$(jbody .next)
api GET "$F&since=$N4&limit=3"
assert_jq '[.changes[].pfaId]' '["P-3","P-4","P-5"]' "the rest"
assert_jq .upToDate true "up to date"

test_begin "bad queries, tenancy"
api GET "$F&since=-1"
assert_error 400 validation_failed "negative since"
api GET "$F&since=x"
assert_error 400 validation_failed "since not an integer"
api GET "$F&limit=501"
assert_error 400 validation_failed "limit over 500"
api GET /api/pems/changes
assert_error 400 validation_failed "organizationId required"
api GET "$F&since=$((N4 + 1000000))"
assert_error 409 conflict "since beyond -> 409"
api_as "$(fx_token "$OTHER")" GET "$F"
assert_error 403 forbidden "a non-member"
api_as "" GET "$F"
assert_error 401 unauthorized "no token"
curl -sk -I -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$PEMS_URL$F" > "$TEST_TMP/head"
assert_eq 200 "$(cat "$TEST_TMP/head")" "HEAD"

test_begin "late commit: a transaction open before a later change was handed out is still delivered"
api GET "$F"
NL=$(jbody .next)
fx_mirror "$ORG" L-OLD 1 >/dev/null
fx_mirror "$ORG" L-NEW 1 >/dev/null
api GET "$F&since=$NL"
NL=$(jbody .next)
mkfifo "$TEST_TMP/held"
PGAPPNAME=records-late-commit psql -qtAX "$DATABASE_URL" -v ON_ERROR_STOP=1 < "$TEST_TMP/held" > "$TEST_TMP/held.out" 2>&1 &
HELD=$!
exec 3>"$TEST_TMP/held"
# the held transaction changes L-OLD first, and stays open
printf '%s\n' "BEGIN;" \
  "UPDATE pfa_mirror SET version = 2 WHERE organization_id = '$ORG' AND pfa_id = 'L-OLD';" \
  "SELECT 'updated';" >&3
held_open() {
  [ "$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'records-late-commit'
               AND state = 'idle in transaction'")" = 1 ]
}
wait_for 10 held_open || fail "the held transaction did not start"
# then a later change commits, and a client is handed it
fx_sql "UPDATE pfa_mirror SET version = 2 WHERE organization_id = :'o' AND pfa_id = 'L-NEW'" -v o="$ORG" >/dev/null
api GET "$F&since=$NL"
assert_jq '[.changes[].pfaId]' '["L-NEW"]' "the committed change is handed out, the open one is not"
NH=$(jbody .next)
printf '%s\n' "COMMIT;" >&3
exec 3>&-
wait "$HELD"
assert_eq 0 "$?" "the held transaction commits ($(cat "$TEST_TMP/held.out"))"
api GET "$F&since=$NH"
assert_jq '[.changes[].pfaId]' '["L-OLD"]' "the change that committed late is delivered after next"
assert_jq '.changes[0].version' 2 "as it is now"

test_begin "positions are the database's: whatever writes, a rolled back write moves nothing"
api GET "$F"
NR=$(jbody .next)
fx_sql "BEGIN; UPDATE pfa_mirror SET version = 9 WHERE organization_id = :'o' AND pfa_id = 'P-1'; ROLLBACK;" -v o="$ORG" >/dev/null
api GET "$F&since=$NR"
assert_jq . "{\"changes\":[],\"next\":$NR,\"upToDate\":true}" "a rolled back change is no change"
fx_sql "BEGIN; UPDATE pfa_mirror SET version = 9 WHERE organization_id = :'o' AND pfa_id = 'P-1';
        SAVEPOINT s; UPDATE pfa_mirror SET version = 9 WHERE organization_id = :'o' AND pfa_id = 'P-2';
        ROLLBACK TO SAVEPOINT s; COMMIT;" -v o="$ORG" >/dev/null
api GET "$F&since=$NR"
assert_jq '[.changes[].pfaId]' '["P-1"]' "what a rolled back savepoint did is no change"
assert_eq 0 "$(fx_sql 'SELECT count(*) FROM pfa_record_touched')" "no notes left behind"

finish
