#!/usr/bin/env bash
# pemsworker conflict detection on an overlapping edit, and each resolution through the API
# (use_local, use_pems, merge) carried through to PEMS.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
. "$(dirname "$0")/worker_fixtures.sh"
wfx_require

# --- 3. conflict on an overlapping field -------------------------------------------------------
test_begin "overlapping edit becomes a conflict"
wfx_org conflict
ORG=$W_ORG TEN=$W_TENANT TOK=$W_TOKEN USR=$W_USER
sim_seed "$TEN" "$(wfx_records K 4)"
wfx_drive 20 org_mirror_is "$ORG" 4 || fail "mirror rows after a pull"
wfx_mod MA "$TOK" "$ORG" K-1 1 '{"monthlyRate":13000,"model":"Local A"}'
wfx_mod MB "$TOK" "$ORG" K-2 1 '{"monthlyRate":13000}'
wfx_mod MC "$TOK" "$ORG" K-3 1 '{"monthlyRate":13000}'
for k in 1 2 3; do sim_edit "$TEN" "K-$k" '{"monthlyRate":14000,"contract":"C-PEMS"}'; done
wfx_drive 20 sql_is 2 "SELECT max(version) FROM pfa_mirror WHERE organization_id = :'o'
  AND pfa_id IN ('K-1','K-2','K-3') HAVING min(version) = 2" -v o="$ORG" || fail "upstream edits not pulled"
puts_before=$(sim_count "$TEN" "PUT /pfa/{id}" '*')
wfx_write_sync "$TOK" "$ORG" 3
all_conflict() { org_mods_are "$ORG" conflict 3; }
wfx_drive 20 all_conflict || { fail "conflicts: $(fx_org_mods "$ORG" conflict) of 3"; worker_log_tail; }
assert_eq "$puts_before" "$(sim_count "$TEN" "PUT /pfa/{id}" '*')" "no write sent to PEMS"
assert_eq 0 "$(sim_stat "$TEN" .writesApplied)" "writesApplied"
for m in "$MA" "$MB" "$MC"; do
  assert_eq conflict "$(fx_mod_status "$m")" "modification status"
  assert_eq "unresolved|monthlyRate|1|2" "$(fx_sql "SELECT concat_ws('|', status,
    array_to_string(conflict_fields, ','), local_version, pems_version) FROM pfa_sync_conflict
    WHERE modification_id = :'m'" -v m="$m")" "conflict row"
  assert_eq 1 "$(audit_count "$m" modification.conflict)" "audit modification.conflict"
  # the item is finished (skipped): completed with last_error 'conflict' (conflict_store.c)
  assert_eq "completed|conflict" "$(queue_cols "$m" "status, last_error")" "queue item skipped"
done
assert_eq 14000 "$(sim_record "$TEN" K-1 .data.monthlyRate)" "PEMS value untouched"
assert_eq 2 "$(sim_record "$TEN" K-1 .version)" "PEMS version untouched"
assert_eq 2 "$(mirror_version "$ORG" K-1)" "mirror at PEMS's version"

test_begin "GET /conflicts lists them"
api_as "$TOK" GET "/api/pems/conflicts?organizationId=$ORG&status=unresolved"
assert_eq 200 "$HTTP_STATUS" "status"
assert_jq .total 3 "total"
CA=$(jbody ".conflicts[] | select(.pfaId == \"K-1\") | .id")
CB=$(jbody ".conflicts[] | select(.pfaId == \"K-2\") | .id")
CC=$(jbody ".conflicts[] | select(.pfaId == \"K-3\") | .id")
assert_match "$UUID_RE" "$CA" "K-1 conflict id"
assert_jq '.conflicts[] | select(.pfaId == "K-1") | .conflictFields' '["monthlyRate"]' "conflictFields"
assert_jq '.conflicts[] | select(.pfaId == "K-1") | [.localVersion, .pemsVersion]' '[1,2]' "versions"
assert_jq '.conflicts[] | select(.pfaId == "K-1") | .localData.monthlyRate' 13000 "localData"
assert_jq '.conflicts[] | select(.pfaId == "K-1") | .pemsData.monthlyRate' 14000 "pemsData"
assert_jq '.conflicts[] | select(.pfaId == "K-1") | .modifiedBy.id' "$USR" "modifiedBy"
assert_jq '.conflicts[] | select(.pfaId == "K-1") | .pfaDetails.category' Cranes "pfaDetails"

test_begin "merge without mergedData is refused"
api_as "$TOK" POST "/api/pems/conflicts/$CC/resolve" '{"resolution":"merge"}'
assert_error 400 validation_failed "merge without mergedData"

test_begin "resolve use_local"
api_as "$TOK" POST "/api/pems/conflicts/$CA/resolve" '{"resolution":"use_local"}'
assert_eq 200 "$HTTP_STATUS" "status ($BODY)"
assert_jq .success true "success"
assert_jq .conflictId "$CA" "conflictId"
assert_match "$ISO_RE" "$(jbody .resolvedAt)" "resolvedAt"
assert_eq "conflict|queued" "$(fx_sql "SELECT concat_ws('|', before->>'status', after->>'status')
  FROM audit_log WHERE entity_type = 'pfa_modification' AND entity_id = :'m'
  AND action = 'modification.rebase'" -v m="$MA")" "the resolution queued the modification"
wfx_drive 20 mod_is "$MA" synced || { fail "use_local not synced: $(fx_mod_status "$MA")"; worker_log_tail; }
assert_eq 13000 "$(sim_record "$TEN" K-1 .data.monthlyRate)" "PEMS has the local value"
assert_eq "Local A" "$(sim_record "$TEN" K-1 .data.model)" "PEMS has the other local field"
assert_eq "C-PEMS" "$(sim_record "$TEN" K-1 .data.contract)" "PEMS kept its other field"
assert_eq 3 "$(sim_record "$TEN" K-1 .version)" "PEMS version"
assert_eq 3 "$(mirror_version "$ORG" K-1)" "mirror version"
assert_eq 2 "$(mod_base "$MA")" "rebased on the mirror version"
assert_eq "resolved|use_local|$USR" "$(fx_sql "SELECT concat_ws('|', status, resolution, resolved_by)
  FROM pfa_sync_conflict WHERE id = :'c'" -v c="$CA")" "conflict row resolved"
assert_eq 1 "$(sim_count "$TEN" "PUT /pfa/{id}" 200)" "one write so far"

test_begin "resolving twice is a conflict"
api_as "$TOK" POST "/api/pems/conflicts/$CA/resolve" '{"resolution":"use_pems"}'
assert_error 409 conflict "second resolution"

test_begin "resolve use_pems"
api_as "$TOK" POST "/api/pems/conflicts/$CB/resolve" '{"resolution":"use_pems"}'
assert_eq 200 "$HTTP_STATUS" "status ($BODY)"
assert_eq discarded "$(fx_mod_status "$MB")" "modification discarded"
assert_eq "resolved|use_pems" "$(fx_sql "SELECT concat_ws('|', status, resolution)
  FROM pfa_sync_conflict WHERE id = :'c'" -v c="$CB")" "conflict row resolved"

test_begin "resolve merge"
api_as "$TOK" POST "/api/pems/conflicts/$CC/resolve" '{"resolution":"merge","mergedData":{"monthlyRate":13500}}'
assert_eq 200 "$HTTP_STATUS" "status ($BODY)"
wfx_drive 20 mod_is "$MC" synced || { fail "merge not synced: $(fx_mod_status "$MC")"; worker_log_tail; }
assert_eq 13500 "$(sim_record "$TEN" K-3 .data.monthlyRate)" "PEMS has the merged value"
assert_eq "C-PEMS" "$(sim_record "$TEN" K-3 .data.contract)" "PEMS kept its other field"
assert_eq 3 "$(mirror_version "$ORG" K-3)" "mirror version"
assert_eq "resolved|merge|13500" "$(fx_sql "SELECT concat_ws('|', status, resolution,
  merged_data->>'monthlyRate') FROM pfa_sync_conflict WHERE id = :'c'" -v c="$CC")" "conflict row resolved"

test_begin "use_pems wrote nothing"
wfx_once
assert_eq discarded "$(fx_mod_status "$MB")" "still discarded"
assert_eq 14000 "$(sim_record "$TEN" K-2 .data.monthlyRate)" "PEMS value kept"
assert_eq 2 "$(sim_record "$TEN" K-2 .version)" "PEMS version unchanged"
assert_eq 2 "$(sim_count "$TEN" "PUT /pfa/{id}" 200)" "two writes (use_local, merge)"
assert_eq 2 "$(sim_stat "$TEN" .writesApplied)" "writesApplied"
assert_eq 0 "$(sim_stat "$TEN" .duplicateWrites)" "duplicateWrites"
api_as "$TOK" GET "/api/pems/conflicts?organizationId=$ORG&status=unresolved"
assert_jq .total 0 "no unresolved conflicts left"

test_begin "conflict found on a 409 (edit not pulled)"
sim_fault "$TEN" '{"status":503,"count":1000,"match":"pull"}'
wfx_mod MD "$TOK" "$ORG" K-4 1 '{"monthlyRate":16000}'
sim_edit "$TEN" K-4 '{"monthlyRate":17000}'
wfx_write_sync "$TOK" "$ORG" 1
wfx_drive 20 mod_is "$MD" conflict || { fail "no conflict after a 409: $(fx_mod_status "$MD")"; worker_log_tail; }
sim_control_ok "$TEN" DELETE /faults
assert_eq 1 "$(sim_count "$TEN" "PUT /pfa/{id}" 409)" "one PUT answered 409"
assert_eq 17000 "$(sim_record "$TEN" K-4 .data.monthlyRate)" "PEMS value untouched"
assert_eq 2 "$(mirror_version "$ORG" K-4)" "mirror refreshed from the 409"
assert_eq "unresolved|monthlyRate|1|2" "$(fx_sql "SELECT concat_ws('|', status,
  array_to_string(conflict_fields, ','), local_version, pems_version) FROM pfa_sync_conflict
  WHERE modification_id = :'m'" -v m="$MD")" "conflict row"

test_begin "merge keeping PEMS's value in every field is use_pems: nothing written to PEMS"
wfx_org mergekeep
ORG=$W_ORG TEN=$W_TENANT TOK=$W_TOKEN
sim_seed "$TEN" "$(wfx_records M 1)"
wfx_drive 20 org_mirror_is "$ORG" 1 || fail "mirror row after a pull"
wfx_mod ME "$TOK" "$ORG" M-1 1 '{"monthlyRate":13000}'
sim_edit "$TEN" M-1 '{"monthlyRate":14000}'
wfx_drive 20 sql_is 2 "SELECT version FROM pfa_mirror WHERE organization_id = :'o' AND pfa_id = 'M-1'" \
  -v o="$ORG" || fail "upstream edit not pulled"
wfx_write_sync "$TOK" "$ORG" 1
wfx_drive 20 mod_is "$ME" conflict || { fail "no conflict: $(fx_mod_status "$ME")"; worker_log_tail; }
CE=$(fx_sql "SELECT id FROM pfa_sync_conflict WHERE modification_id = :'m'" -v m="$ME")
puts_before=$(sim_count "$TEN" "PUT /pfa/{id}" '*')
api_as "$TOK" POST "/api/pems/conflicts/$CE/resolve" '{"resolution":"merge","mergedData":{"monthlyRate":14000.0}}'
assert_eq 200 "$HTTP_STATUS" "status ($BODY)"
assert_jq .appliedChanges '{}' "nothing applied"
assert_eq "resolved|use_pems|" "$(fx_sql "SELECT concat_ws('|', status, resolution, coalesce(merged_data::text, ''))
  FROM pfa_sync_conflict WHERE id = :'c'" -v c="$CE")" "recorded as use_pems, no merged data"
assert_eq discarded "$(fx_mod_status "$ME")" "modification discarded"
assert_eq 0 "$(fx_sql "SELECT count(*) FROM pfa_write_queue WHERE modification_id = :'m'
  AND status IN ('pending', 'processing')" -v m="$ME")" "nothing queued"
wfx_once
assert_eq "$puts_before" "$(sim_count "$TEN" "PUT /pfa/{id}" '*')" "no write reached PEMS"
assert_eq 2 "$(sim_record "$TEN" M-1 .version)" "PEMS version unchanged"
assert_eq 14000 "$(sim_record "$TEN" M-1 .data.monthlyRate)" "PEMS value kept"

finish
