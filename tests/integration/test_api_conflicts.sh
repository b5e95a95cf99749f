#!/usr/bin/env bash
# GET /conflicts (shape, filter, paging) and POST /conflicts/:id/resolve
# (use_local, use_pems, merge, validation, already resolved). Conflicts are made with SQL,
# as the worker would leave them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG=$(fx_org conflicts)
USER_ID=$(fx_user "$ORG" Read,Write,Sync)
USERNAME=$(fx_user_field "$USER_ID" username)
AUTHOR=$(fx_user "$ORG" Read,Write)
AUTHOR_NAME=$(fx_user_field "$AUTHOR" username)
TOKEN=$(fx_token "$USER_ID")

# PEMS moved PFA-C1 from version 4 to 5 changing monthlyRate; our edit was made on 4.
V4=$(jq -c '.monthlyRate = 12000' <<<"$FX_RECORD")
V5=$(jq -c '.monthlyRate = 13000 | .category = "Cranes" | .class = "Crawler"' <<<"$FX_RECORD")
fx_mirror "$ORG" PFA-C1 5 "$V5" >/dev/null
fx_history "$ORG" PFA-C1 4 5 "$V4" monthlyRate >/dev/null

# new_conflict FIELDS LOCAL_DELTA [STATUS] -> "modification_id conflict_id"
new_conflict() {
  local m c
  m=$(fx_mod "$ORG" PFA-C1 "$AUTHOR" conflict 4 "$2")
  c=$(fx_conflict "$ORG" "$m" PFA-C1 4 5 "$1" "$2" "$V5" "${3:-unresolved}")
  printf '%s %s' "$m" "$c"
}
resolve() { api POST "/api/pems/conflicts/$1/resolve" "$2"; }
conflict_row() { fx_sql "SELECT status || '|' || coalesce(resolution, '-') FROM pfa_sync_conflict WHERE id = :'c'" -v c="$1"; }

read -r M1 C1 < <(new_conflict monthlyRate '{"monthlyRate":14000}')
read -r M2 C2 < <(new_conflict monthlyRate '{"monthlyRate":15000}')
read -r M3 C3 < <(new_conflict monthlyRate '{"monthlyRate":16000,"model":"LTM 9"}')
read -r M4 C4 < <(new_conflict monthlyRate '{"monthlyRate":17000}')
read -r M5 C5 < <(new_conflict monthlyRate '{"monthlyRate":18000}' resolved)

test_begin "list: shape of a conflict"
api GET "/api/pems/conflicts?organizationId=$ORG&status=unresolved"
assert_eq 200 "$HTTP_STATUS" "GET conflicts"
assert_keys . "conflicts total" "list keys"
assert_jq .total 4 "four unresolved"
C=".conflicts[] | select(.id == \"$C3\")"
assert_keys "$C" "id pfaId pfaDetails localVersion pemsVersion conflictFields localData pemsData status createdAt modifiedBy" \
  "conflict keys"
assert_jq "$C | .pfaId" PFA-C1 "pfaId"
assert_jq "$C | .pfaDetails" '{"category":"Cranes","class":"Crawler"}' "pfaDetails from the mirror"
assert_jq "$C | .localVersion" 4 "localVersion is the base version"
assert_jq "$C | .pemsVersion" 5 "pemsVersion is the mirror version"
assert_jq "$C | .conflictFields" '["monthlyRate"]' "conflictFields"
assert_jq "$C | .localData == {\"monthlyRate\":16000,\"model\":\"LTM 9\"}" true "localData is the delta"
assert_eq "$(jq -cS . <<<"$V5")" "$(printf '%s' "$BODY" | jq -cS "$C | .pemsData")" "pemsData is PEMS's record"
assert_jq "$C | .status" unresolved "status"
assert_match "$ISO_RE" "$(jbody "$C | .createdAt")" "createdAt ISO"
assert_jq "$C | .modifiedBy" "{\"id\":\"$AUTHOR\",\"username\":\"$AUTHOR_NAME\",\"email\":\"$AUTHOR_NAME@example.test\"}" \
  "modifiedBy is the modification's author"

test_begin "list: filter and paging"
api GET "/api/pems/conflicts?organizationId=$ORG&status=resolved"
assert_jq .total 1 "one resolved"
assert_jq '[.conflicts[].id]' "[\"$C5\"]" "the resolved one"
api GET "/api/pems/conflicts?organizationId=$ORG"
assert_eq 200 "$HTTP_STATUS" "without status"
assert_jq .total 5 "without status: every conflict"
api GET "/api/pems/conflicts?organizationId=$ORG&status=unresolved&limit=3"
assert_jq '.conflicts | length' 3 "limit 3"
assert_jq .total 4 "total ignores limit"
PAGE1=$(jbody '[.conflicts[].id]')
assert_eq "[\"$C4\",\"$C3\",\"$C2\"]" "$(jq -c . <<<"$PAGE1")" "newest first"
api GET "/api/pems/conflicts?organizationId=$ORG&status=unresolved&limit=3&offset=3"
assert_jq '.conflicts | length' 1 "offset 3: the last one"
assert_jq .total 4 "total ignores offset"
ALL=$(jq -cn --argjson a "$PAGE1" --argjson b "$(jbody '[.conflicts[].id]')" '$a + $b | sort')
assert_eq "$(jq -cn --arg a "$C1" --arg b "$C2" --arg c "$C3" --arg d "$C4" '[$a,$b,$c,$d] | sort')" "$ALL" \
  "the two pages hold each conflict once"
api GET "/api/pems/conflicts?organizationId=$ORG&status=unresolved&offset=50"
assert_jq .conflicts '[]' "past the end"

test_begin "resolve use_local: rebased on the mirror version and queued"
wake_listen
resolve "$C1" '{"resolution":"use_local"}'
assert_eq 200 "$HTTP_STATUS" "use_local"
wake_heard "$ORG" "the worker is woken"
assert_keys . "success conflictId resolvedAt appliedChanges" "resolve keys"
assert_jq .success true "success"
assert_jq .conflictId "$C1" "conflictId"
assert_match "$ISO_RE" "$(jbody .resolvedAt)" "resolvedAt ISO"
assert_eq "resolved|use_local" "$(conflict_row "$C1")" "conflict resolved"
assert_eq "$USER_ID" "$(fx_sql "SELECT resolved_by FROM pfa_sync_conflict WHERE id = :'c'" -v c="$C1")" "resolved_by"
assert_eq 5 "$(fx_sql "SELECT base_version FROM pfa_modification WHERE id = :'m'" -v m="$M1")" "rebased on version 5"
assert_eq queued "$(fx_mod_status "$M1")" "modification queued"
assert_eq 1 "$(fx_mod_items "$M1")" "a queue item exists"
assert_eq t "$(fx_sql "SELECT delta = '{\"monthlyRate\":14000}'::jsonb FROM pfa_modification WHERE id = :'m'" -v m="$M1")" \
  "delta unchanged"
assert_ge "$(fx_count audit_log "entity_id = :'c'" -v c="$C1")" 1 "audit row for the conflict"
api GET "/api/pems/conflicts?organizationId=$ORG&status=resolved"
assert_jq "[.conflicts[] | select(.id == \"$C1\") | .status]" '["resolved"]' "the list shows it resolved"
api GET "/api/pems/conflicts?organizationId=$ORG&status=unresolved"
assert_jq "[.conflicts[].id | select(. == \"$C1\")]" '[]' "and no longer among the unresolved"

test_begin "resolve use_pems: modification discarded"
resolve "$C2" '{"resolution":"use_pems"}'
assert_eq 200 "$HTTP_STATUS" "use_pems"
assert_jq .conflictId "$C2" "conflictId"
assert_eq "resolved|use_pems" "$(conflict_row "$C2")" "conflict resolved"
assert_eq discarded "$(fx_mod_status "$M2")" "modification discarded"
assert_eq 0 "$(fx_mod_items "$M2")" "nothing queued"

test_begin "resolve merge: validation"
resolve "$C3" '{"resolution":"merge"}'
assert_error 400 validation_failed "merge without mergedData"
resolve "$C3" '{"resolution":"merge","mergedData":null}'
assert_error 400 validation_failed "merge with null mergedData"
resolve "$C3" '{"resolution":"merge","mergedData":{"monthlyRate":-1}}'
assert_error 400 validation_failed "merge with a negative rate"
assert_eq true "$(jbody '[.error.details[]?.field] | any(test("monthlyRate"))')" "detail names monthlyRate"
resolve "$C3" '{"resolution":"merge","mergedData":{"forecastStart":"2025-12-01","forecastEnd":"2025-01-01"}}'
assert_error 400 validation_failed "merge with reversed dates"
assert_eq true "$(jbody '[.error.details[]?.field] | any(test("forecastEnd"))')" "detail names forecastEnd"
resolve "$C3" '{"resolution":"merge","mergedData":{"colour":"red"}}'
assert_error 400 validation_failed "merge with an unknown field"
resolve "$C3" '{"resolution":"merge","mergedData":"monthlyRate=1"}'
assert_error 400 validation_failed "mergedData not an object"
resolve "$C3" '{}'
assert_error 400 validation_failed "no resolution"
resolve "$C3" '{"resolution":"use_local","extra":1}'
assert_error 400 validation_failed "unknown key"
assert_eq "unresolved|-" "$(conflict_row "$C3")" "still unresolved after every failure"
assert_eq conflict "$(fx_mod_status "$M3")" "modification still conflict"
assert_eq 0 "$(fx_mod_items "$M3")" "nothing queued"

test_begin "resolve merge: delta becomes the (sanitized) merged data"
resolve "$C3" '{"resolution":"merge","mergedData":{"monthlyRate":" 14500 ","model":" LTM 9 "}}'
assert_eq 200 "$HTTP_STATUS" "merge"
assert_jq .success true "success"
assert_eq "resolved|merge" "$(conflict_row "$C3")" "conflict resolved"
assert_eq '{"model": "LTM 9", "monthlyRate": 14500}' \
  "$(fx_sql "SELECT delta FROM pfa_modification WHERE id = :'m'" -v m="$M3")" "delta = sanitized merged data"
assert_eq t "$(fx_sql "SELECT merged_data IS NOT NULL FROM pfa_sync_conflict WHERE id = :'c'" -v c="$C3")" \
  "merged_data stored"
assert_eq 5 "$(fx_sql "SELECT base_version FROM pfa_modification WHERE id = :'m'" -v m="$M3")" "rebased"
assert_eq queued "$(fx_mod_status "$M3")" "modification queued"
assert_eq 1 "$(fx_mod_items "$M3")" "queued once"

test_begin "already resolved -> 409"
for c in "$C1" "$C2" "$C3" "$C5"; do
  resolve "$c" '{"resolution":"use_pems"}'
  assert_error 409 conflict "resolve $c again"
done
assert_eq "resolved|use_local" "$(conflict_row "$C1")" "first resolution kept"
assert_eq queued "$(fx_mod_status "$M1")" "use_local not undone"

test_begin "unknown conflict -> 404"
resolve "$(fx_uuid)" '{"resolution":"use_pems"}'
assert_error 404 not_found "random uuid"

test_begin "concurrent resolves: one wins"
for i in 1 2 3 4 5 6; do
  res=use_local
  [ $((i % 2)) = 0 ] && res=use_pems
  curl -sk -o /dev/null -w '%{http_code}\n' --max-time 30 -X POST -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data-binary "{\"resolution\":\"$res\"}" \
    "$PEMS_URL/api/pems/conflicts/$C4/resolve" > "$TEST_TMP/res-$i" &
done
wait
cat "$TEST_TMP"/res-[0-9] > "$TEST_TMP/res-codes"
assert_eq 1 "$(grep -c '^200$' "$TEST_TMP/res-codes")" "one 200"
assert_eq 5 "$(grep -c '^409$' "$TEST_TMP/res-codes")" "five 409"
WINNER=$(fx_sql "SELECT resolution FROM pfa_sync_conflict WHERE id = :'c'" -v c="$C4")
case $WINNER in
  use_local) assert_eq 1 "$(fx_mod_items "$M4")" "use_local won: queued once" ;;
  use_pems) assert_eq 0 "$(fx_mod_items "$M4")" "use_pems won: nothing queued" ;;
  *) fail "the winner's resolution is '$WINNER'" ;;
esac

# Each pems-fcgi sends a page again while its organization's conflicts are unchanged
# (sql/functions/conflicts.sql). Eight reads over the stack's children: some child serves a
# page it already holds; after each kind of write every read must show the write.
test_begin "list: a page served again follows every change"
pages() {  # STATUS -> the totals of eight reads, one per line
  local i
  for i in 1 2 3 4 5 6 7 8; do
    api GET "/api/pems/conflicts?organizationId=$ORG&status=$1"
    jbody .total
  done
}
distinct_totals() { pages "$1" | sort -u | tr '\n' ' ' | sed 's/ $//'; }
RESOLVED=$(fx_count pfa_sync_conflict "organization_id = :'o' AND status = 'resolved'" -v o="$ORG")
assert_eq "$RESOLVED" "$(distinct_totals resolved)" "every read: the resolved total"
fx_sql "UPDATE pfa_sync_conflict SET status = 'unresolved', resolution = NULL, resolved_at = NULL,
          resolved_by = NULL WHERE id = :'c'" -v c="$C5" >/dev/null
assert_eq "$((RESOLVED - 1))" "$(distinct_totals resolved)" "an update is seen by every read"
read -r M6 C6 < <(new_conflict monthlyRate '{"monthlyRate":19000}' resolved)
assert_eq "$RESOLVED" "$(distinct_totals resolved)" "an insert is seen by every read"
api GET "/api/pems/conflicts?organizationId=$ORG&status=resolved"
assert_jq ".conflicts[0].id" "$C6" "the new conflict heads the page"
fx_sql "DELETE FROM pfa_sync_conflict WHERE id = :'c'" -v c="$C6" >/dev/null
assert_eq "$((RESOLVED - 1))" "$(distinct_totals resolved)" "a delete is seen by every read"
assert_eq "1" "$(distinct_totals unresolved)" "the other filter: C5 only"
# zero-padded integers name the same page; a long padded offset is not cut off the page's key
# (it once was, and offset 1 was served offset 0's page)
Z=$(printf '0%.0s' $(seq 150))
for i in 1 2 3 4 5 6 7 8; do
  api GET "/api/pems/conflicts?organizationId=$ORG&status=resolved&limit=${Z}1&offset=${Z}0"
  printf '%s\n' "$(jbody '.conflicts[0].id')"
done | sort -u > "$TEST_TMP/page0"
for i in 1 2 3 4 5 6 7 8; do
  api GET "/api/pems/conflicts?organizationId=$ORG&status=resolved&limit=${Z}1&offset=${Z}1"
  printf '%s\n' "$(jbody '.conflicts[0].id')"
done | sort -u > "$TEST_TMP/page1"
assert_eq 1 "$(wc -l < "$TEST_TMP/page0")" "offset 0: one page in every read"
assert_eq 1 "$(wc -l < "$TEST_TMP/page1")" "offset 1: one page in every read"
assert_ne "$(cat "$TEST_TMP/page0")" "$(cat "$TEST_TMP/page1")" "offset 1 is not offset 0's page"
# TRUNCATE fires no row trigger; it is the last write of this file (other files make their own)
fx_sql "TRUNCATE pfa_sync_conflict" >/dev/null
assert_eq "0" "$(distinct_totals unresolved)" "a truncate is seen by every read"
assert_eq "0" "$(distinct_totals resolved)" "a truncate is seen by every read (other filter)"

finish
