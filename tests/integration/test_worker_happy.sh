#!/usr/bin/env bash
# pemsworker against the PEMS simulator: pull, write, auto-merge (before a write and on a
# 409), convergent edits, upstream and local deletes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
. "$(dirname "$0")/worker_fixtures.sh"
wfx_require

# --- 1. happy path ---------------------------------------------------------------------------
test_begin "pull fills the mirror"
wfx_org happy
ORG=$W_ORG TEN=$W_TENANT TOK=$W_TOKEN
sim_seed "$TEN" "$(wfx_records H 3)"
wfx_drive 20 org_mirror_is "$ORG" 3 || { fail "mirror rows after a pull: $(org_mirror_count "$ORG")"; worker_log_tail; }
assert_eq 0 "$WORKER_RC" "pemsworker --once exit status"
for i in 1 2 3; do
  assert_eq 1 "$(mirror_version "$ORG" "H-$i")" "H-$i mirror version"
  assert_eq "LTM 1100" "$(mirror_field "$ORG" "H-$i" model)" "H-$i mirror data"
  assert_eq f "$(mirror_col "$ORG" "H-$i" deleted)" "H-$i not deleted"
done
assert_eq 0 "$(history_count "$ORG" H-1)" "no history for a first version"
assert_ge "$(sim_count "$TEN" "GET /pfa" 200)" 1 "the pull asked PEMS"

test_begin "local edit is written to PEMS"
wfx_mod MOD "$TOK" "$ORG" H-1 1 '{"monthlyRate":"13000","model":"  LTM 1150 "}'
assert_eq pending_sync "$(fx_mod_status "$MOD")" "new modification"
wfx_write_sync "$TOK" "$ORG" 1
assert_match "^write-sync-[0-9]+-$ORG\$" "$(jbody .jobId)" "jobId"
wfx_drive 20 mod_is "$MOD" synced || { fail "modification not synced: $(fx_mod_status "$MOD")"; worker_log_tail; }
assert_eq "completed|1|200" "$(queue_cols "$MOD" "status, attempts, last_http_status")" "queue item"
assert_eq "" "$(queue_cols "$MOD" "locked_by, locked_until")" "lease released"
assert_eq 2 "$(mirror_version "$ORG" H-1)" "mirror version advanced"
assert_eq 13000 "$(mirror_field "$ORG" H-1 monthlyRate)" "mirror has the new rate"
assert_eq "LTM 1150" "$(mirror_field "$ORG" H-1 model)" "mirror has the sanitized model"
assert_eq 1 "$(history_count "$ORG" H-1)" "one history row"
assert_eq "model,monthlyRate" "$(history_changed "$ORG" H-1 1)" "history v1 changed_fields"
assert_eq 2 "$(sim_record "$TEN" H-1 .version)" "PEMS version"
assert_eq 13000 "$(sim_record "$TEN" H-1 .data.monthlyRate)" "PEMS has the rate"
assert_eq "LTM 1150" "$(sim_record "$TEN" H-1 .data.model)" "PEMS has the model"
assert_eq "Cranes" "$(sim_record "$TEN" H-1 .data.category)" "PEMS kept the other fields"
assert_eq 1 "$(sim_count "$TEN" "PUT /pfa/{id}" 200)" "one PUT answered 200"
assert_eq 1 "$(sim_count "$TEN" "PUT /pfa/{id}" '*')" "one PUT in all"
assert_eq 1 "$(sim_stat "$TEN" .writesApplied)" "writesApplied"
assert_eq 0 "$(sim_stat "$TEN" .duplicateWrites)" "duplicateWrites"
ITEM=$(queue_cols "$MOD" id)
assert_eq 1 "$(audit_count "$MOD" modification.synced)" "audit modification.synced"
assert_eq 1 "$(audit_count "$ITEM" queue_item.completed)" "audit queue_item.completed"
api_as "$TOK" GET "/api/pems/modifications/$MOD"
assert_eq 200 "$HTTP_STATUS" "GET modification"
assert_jq .status synced "API status"
assert_jq .queueItem.status completed "API queueItem.status"
assert_jq .queueItem.lastHttpStatus 200 "API queueItem.lastHttpStatus"
assert_match "$ISO_RE" "$(jbody .queueItem.completedAt)" "API queueItem.completedAt"

test_begin "pulling again changes nothing"
hist_before=$(fx_count pfa_mirror_history "organization_id = :'o'" -v o="$ORG")
upd_before=$(mirror_col "$ORG" H-1 updated_at)
wfx_once
assert_eq 0 "$WORKER_RC" "pemsworker --once exit status"
assert_eq 2 "$(mirror_version "$ORG" H-1)" "H-1 version unchanged"
assert_eq 1 "$(mirror_version "$ORG" H-2)" "H-2 version unchanged"
assert_eq "$upd_before" "$(mirror_col "$ORG" H-1 updated_at)" "H-1 row untouched"
assert_eq "$hist_before" "$(fx_count pfa_mirror_history "organization_id = :'o'" -v o="$ORG")" "no new history"
assert_eq 1 "$(sim_count "$TEN" "PUT /pfa/{id}" '*')" "no new write"
assert_eq 1 "$(fx_mod_items "$MOD")" "not queued again"

test_begin "upstream edit and delete reach the mirror"
sim_edit "$TEN" H-2 '{"model":"LTM 1300","monthlyRate":9000}'
sim_delete "$TEN" H-3
is_deleted() { [ "$(mirror_col "$ORG" H-3 deleted)" = t ] && [ "$(mirror_version "$ORG" H-2)" = 2 ]; }
wfx_drive 20 is_deleted || fail "upstream changes not pulled"
assert_eq "LTM 1300" "$(mirror_field "$ORG" H-2 model)" "H-2 mirror model"
assert_eq 9000 "$(mirror_field "$ORG" H-2 monthlyRate)" "H-2 mirror rate"
assert_eq "model,monthlyRate" "$(history_changed "$ORG" H-2 1)" "H-2 history changed_fields"
assert_eq t "$(mirror_col "$ORG" H-3 deleted)" "H-3 marked deleted"
assert_ge "$(mirror_version "$ORG" H-3)" 2 "H-3 version advanced"
assert_eq 1 "$(history_count "$ORG" H-3)" "H-3 history row"
assert_eq 0 "$(sim_count "$TEN" "DELETE /pfa/{id}" '*')" "an upstream delete is not written back"

test_begin "local delete"
wfx_mod DEL "$TOK" "$ORG" H-2 2 '{}' delete
wfx_write_sync "$TOK" "$ORG" 1
wfx_drive 20 mod_is "$DEL" synced || { fail "delete not synced: $(fx_mod_status "$DEL")"; worker_log_tail; }
assert_eq 1 "$(sim_count "$TEN" "DELETE /pfa/{id}" 200)" "one DELETE answered 200"
assert_eq true "$(sim_record "$TEN" H-2 .deleted)" "PEMS record deleted"
assert_eq t "$(mirror_col "$ORG" H-2 deleted)" "mirror marked deleted"
assert_eq 3 "$(mirror_version "$ORG" H-2)" "mirror version advanced"
assert_eq 0 "$(sim_stat "$TEN" .duplicateWrites)" "duplicateWrites"

# --- 2. auto-merge ---------------------------------------------------------------------------
test_begin "auto-merge of an upstream edit pulled before the write"
wfx_org merge
ORG=$W_ORG TEN=$W_TENANT TOK=$W_TOKEN
sim_seed "$TEN" "$(wfx_records M 2)"
wfx_drive 20 org_mirror_is "$ORG" 2 || fail "mirror rows after a pull"
wfx_mod MOD "$TOK" "$ORG" M-1 1 '{"monthlyRate":13000}'
sim_edit "$TEN" M-1 '{"model":"LTM 1200"}'
wfx_drive 20 sql_is 2 "SELECT version FROM pfa_mirror WHERE organization_id = :'o' AND pfa_id = 'M-1'" -v o="$ORG" \
  || fail "upstream edit not pulled"
assert_eq model "$(history_changed "$ORG" M-1 1)" "history names the upstream field"
wfx_write_sync "$TOK" "$ORG" 1
wfx_drive 20 mod_is "$MOD" synced || { fail "merge not synced: $(fx_mod_status "$MOD")"; worker_log_tail; }
assert_eq 13000 "$(sim_record "$TEN" M-1 .data.monthlyRate)" "PEMS has the local field"
assert_eq "LTM 1200" "$(sim_record "$TEN" M-1 .data.model)" "PEMS kept the upstream field"
assert_eq 3 "$(sim_record "$TEN" M-1 .version)" "PEMS version"
assert_eq 3 "$(mirror_version "$ORG" M-1)" "mirror version"
assert_eq "LTM 1200" "$(mirror_field "$ORG" M-1 model)" "mirror upstream field"
assert_eq 13000 "$(mirror_field "$ORG" M-1 monthlyRate)" "mirror local field"
assert_eq monthlyRate "$(history_changed "$ORG" M-1 2)" "history v2 changed_fields"
assert_eq 0 "$(fx_count pfa_sync_conflict "modification_id = :'m'" -v m="$MOD")" "no conflict row"
assert_eq "completed|1" "$(queue_cols "$MOD" "status, attempts")" "queue item"
assert_eq 1 "$(sim_count "$TEN" "PUT /pfa/{id}" 200)" "one PUT"
assert_eq 0 "$(sim_count "$TEN" "PUT /pfa/{id}" 409)" "no 409 (the pull saw the change)"
assert_eq true "$(fx_sql "SELECT after->>'merged' FROM audit_log WHERE entity_id = :'m'
  AND action = 'modification.synced'" -v m="$MOD")" "audit says merged"

test_begin "auto-merge after a 409 (upstream edit the worker has not pulled)"
# every pull fails from here on, so the worker learns of the edit only from the 409
sim_fault "$TEN" '{"status":503,"count":1000,"match":"pull"}'
wfx_mod MOD2 "$TOK" "$ORG" M-2 1 '{"monthlyRate":14000}'
sim_edit "$TEN" M-2 '{"model":"LTM 1400"}'
wfx_write_sync "$TOK" "$ORG" 1
wfx_drive 25 mod_is "$MOD2" synced || { fail "409 merge not synced: $(fx_mod_status "$MOD2")"; worker_log_tail; }
sim_control_ok "$TEN" DELETE /faults
assert_eq 1 "$(sim_count "$TEN" "PUT /pfa/{id}" 409)" "one PUT answered 409"
assert_eq 2 "$(sim_count "$TEN" "PUT /pfa/{id}" 200)" "then the rebased PUT"
assert_eq 14000 "$(sim_record "$TEN" M-2 .data.monthlyRate)" "PEMS has the local field"
assert_eq "LTM 1400" "$(sim_record "$TEN" M-2 .data.model)" "PEMS kept the upstream field"
assert_eq 3 "$(sim_record "$TEN" M-2 .version)" "PEMS version"
assert_eq 3 "$(mirror_version "$ORG" M-2)" "mirror version"
assert_eq "LTM 1400" "$(mirror_field "$ORG" M-2 model)" "mirror upstream field"
assert_eq model "$(history_changed "$ORG" M-2 1)" "409 refresh archived v1 with its changed field"
assert_eq monthlyRate "$(history_changed "$ORG" M-2 2)" "the write archived v2"
assert_eq 0 "$(fx_count pfa_sync_conflict "modification_id = :'m'" -v m="$MOD2")" "no conflict row"
assert_eq synced "$(fx_mod_status "$MOD2")" "modification synced"
assert_eq 2 "$(sim_stat "$TEN" .writesApplied)" "writesApplied"
assert_eq 0 "$(sim_stat "$TEN" .duplicateWrites)" "duplicateWrites"

# --- 4. convergent edits ---------------------------------------------------------------------
test_begin "convergent edit is not a conflict"
wfx_org conv
ORG=$W_ORG TEN=$W_TENANT TOK=$W_TOKEN
sim_seed "$TEN" "$(wfx_records C 2)"
wfx_drive 20 org_mirror_is "$ORG" 2 || fail "mirror rows after a pull"
wfx_mod C1 "$TOK" "$ORG" C-1 1 '{"monthlyRate":15000}'
wfx_mod C2 "$TOK" "$ORG" C-2 1 '{"monthlyRate":15000,"model":"LTM 1500"}'
sim_edit "$TEN" C-1 '{"monthlyRate":15000}'
sim_edit "$TEN" C-2 '{"monthlyRate":15000,"contract":"C-200"}'
wfx_drive 20 sql_is 2 "SELECT min(version) FROM pfa_mirror WHERE organization_id = :'o'" -v o="$ORG" \
  || fail "upstream edits not pulled"
wfx_write_sync "$TOK" "$ORG" 2
both_synced() { mod_is "$C1" synced && mod_is "$C2" synced; }
wfx_drive 20 both_synced || { fail "convergent edits: $(fx_mod_status "$C1") $(fx_mod_status "$C2")"; worker_log_tail; }
assert_eq 0 "$(fx_count pfa_sync_conflict "organization_id = :'o'" -v o="$ORG")" "no conflict rows"
assert_eq 15000 "$(sim_record "$TEN" C-1 .data.monthlyRate)" "C-1 at PEMS"
assert_eq "LTM 1500" "$(sim_record "$TEN" C-2 .data.model)" "C-2 local field at PEMS"
assert_eq "C-200" "$(sim_record "$TEN" C-2 .data.contract)" "C-2 upstream field kept"
assert_eq 15000 "$(sim_record "$TEN" C-2 .data.monthlyRate)" "C-2 convergent field"
assert_le "$(sim_count "$TEN" "PUT /pfa/{id}" 200)" 2 "at most one PUT each"
assert_ge "$(sim_count "$TEN" "PUT /pfa/{id}" 200)" 1 "C-2 written"
assert_eq 0 "$(sim_count "$TEN" "PUT /pfa/{id}" 409)" "no 409"
assert_eq "completed" "$(queue_cols "$C1" status)" "C-1 queue item completed"
assert_eq 0 "$(sim_stat "$TEN" .duplicateWrites)" "duplicateWrites"

test_begin "several edits of one record in one write-sync: written one after the other"
# the edits touch different fields, each on version 1: the first is written as it is, each
# later one is merged onto the version the one before it made (never claimed or written
# while the write before it is unrecorded)
wfx_org samerec
ORG=$W_ORG TEN=$W_TENANT TOK=$W_TOKEN
sim_seed "$TEN" "$(wfx_records S 60)"
wfx_drive 20 org_mirror_is "$ORG" 60 || fail "mirror rows after a pull"
wfx_mods_sql "$ORG" "$W_USER" S 60 1 '{"monthlyRate":21000}'
wfx_mod S1 "$TOK" "$ORG" S-1 1 '{"model":"LTM 1300"}'
wfx_mod S2 "$TOK" "$ORG" S-1 1 '{"contract":"C-77"}'
wfx_write_sync "$TOK" "$ORG" 62
all_synced() { sql_is 62 "SELECT count(*) FROM pfa_modification WHERE organization_id = :'o' AND status = 'synced'" -v o="$ORG"; }
wfx_drive 40 all_synced || { fail "not all synced: $(fx_sql "SELECT string_agg(status || ':' || n, ' ') FROM (SELECT status, count(*) n FROM pfa_modification WHERE organization_id = :'o' GROUP BY 1) s" -v o="$ORG")"; worker_log_tail; }
assert_eq 0 "$(fx_count pfa_sync_conflict "organization_id = :'o'" -v o="$ORG")" "no conflict rows"
assert_eq 21000 "$(sim_record "$TEN" S-1 .data.monthlyRate)" "S-1 rate at PEMS"
assert_eq "LTM 1300" "$(sim_record "$TEN" S-1 .data.model)" "S-1 model at PEMS"
assert_eq "C-77" "$(sim_record "$TEN" S-1 .data.contract)" "S-1 contract at PEMS"
assert_eq 4 "$(sim_record "$TEN" S-1 .version)" "three writes of S-1 at PEMS"
assert_eq 4 "$(mirror_version "$ORG" S-1)" "mirror at version 4"
assert_eq 2 "$(sim_record "$TEN" S-60 .version)" "the other records written once"
assert_eq 0 "$(sim_count "$TEN" "PUT /pfa/{id}" 409)" "no 409: each write knew the version before it"
assert_eq 0 "$(sim_stat "$TEN" .duplicateWrites)" "duplicateWrites"
assert_eq 3 "$(history_count "$ORG" S-1)" "three history rows for S-1"

finish
