#!/usr/bin/env bash
# One organization's PEMS never holds up another (README, Security: isolation). In every case
# a hostile server sits beside a healthy one, and the healthy one's pulls and writes go on:
# health and error text of any bytes (a French 503 cut inside a character, a raw invalid UTF-8
# page, terminal escapes) is kept as valid UTF-8, fails only its organization, and pemsctl
# prints it escaped; a statement refused for one server's data fails that lane only; an
# endless pull is bounded by PEMS_PULL_MAX_SECONDS and never delays another organization's
# scheduled pull; a record over 64 KiB is refused alone. Runs its own stack whose pemsworker
# neither writes nor runs a schedule, so every run is this test's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
. "$(dirname "$0")/worker_fixtures.sh"
. "$(dirname "$0")/private_stack.sh"
WPID=""
cleanup() {
  [ -n "$WPID" ] && kill -9 "$WPID" 2>/dev/null
  private_stack_stop
  rm -rf "$TEST_TMP"
}
trap cleanup EXIT

private_stack_start wisolation "${PEMS_WISOLATION_HTTPS_PORT:-11243}" "${PEMS_WISOLATION_SIM_PORT:-21280}" \
  "${PEMS_WISOLATION_PG_PORT:-28132}" PEMS_FCGI_CHILDREN=2 ENABLE_PEMS_WRITE_SYNC=false \
  "PEMS_WRITE_SYNC_SCHEDULE=0 0 1 1 *" \
  || { fail "private stack did not start"; finish; exit 1; }
wfx_require

W_ENV=(ENABLE_PEMS_WRITE_SYNC=true "PEMS_WRITE_SYNC_SCHEDULE=0 0 1 1 *")
once() { wfx_once "${W_ENV[@]}" "$@"; }
ESC=$(printf '\033')
E_ACUTE=$(printf '\303\251')
FFFD=$(printf '\357\277\275')
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
valid_utf8() { printf '%s' "$1" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1; }
server_col() { fx_sql "SELECT $2 FROM api_servers WHERE organization_id = :'o'" -v o="$1"; }
health_of() {  # TOKEN ORG -> sync-status health
  api_as "$1" GET "/api/pems/sync-status?organizationId=$2"
  jbody .health
}
no_abort() {
  grep -q 'event=drain_aborted' "$TEST_TMP/worker.log" && { fail "$1: the run was aborted"; worker_log_tail; }
  return 0
}
# a healthy organization with two records pulled and a pending write on G-1
healthy_org() {
  wfx_org "$1"
  G_ORG=$W_ORG G_TEN=$W_TENANT G_TOK=$W_TOKEN
  sim_seed "$G_TEN" "$(wfx_records G 2)"
}
healthy_write() {
  wfx_mod G_MOD "$G_TOK" "$G_ORG" G-1 "$(mirror_version "$G_ORG" G-1)" "{\"monthlyRate\":$1}"
  wfx_write_sync "$G_TOK" "$G_ORG" 1
}

# --- 1. health text in any bytes -------------------------------------------------------------
test_begin "a French 503 and a raw invalid UTF-8 health page fail their organizations only"
healthy_org healthy1
wfx_org french
FR_ORG=$W_ORG FR_TEN=$W_TENANT FR_TOK=$W_TOKEN
sim_seed "$FR_TEN" "$(wfx_records F 1)"
wfx_org rawpage
RAW_ORG=$W_ORG RAW_TEN=$W_TENANT RAW_TOK=$W_TOKEN
once
assert_eq 2 "$(org_mirror_count "$G_ORG")" "the healthy organization pulled"
healthy_write 15000
sim_edit "$G_TEN" G-2 '{"category":"Upstream"}'
# "a" + 150 x "é": cut at 200 bytes, the old text ended inside a character
FRENCH=$(jq -cn --arg m "a$(printf "$E_ACUTE%.0s" $(seq 150))" '{error:{message:$m}}')
sim_fault "$FR_TEN" "$(jq -cn --arg b "$FRENCH" '{status:503, match:"health", count:-1, body:$b}')"
sim_fault "$RAW_TEN" "{\"status\":502, \"match\":\"health\", \"count\":-1, \"bodyHex\":\"fffe$(hex '<html>proxy')00c3\"}"
: > "$TEST_TMP/worker.log"
once
assert_eq 0 "$WORKER_RC" "pemsworker --once exits 0 when only servers misbehaved"
no_abort "hostile health text"
assert_eq synced "$(fx_mod_status "$G_MOD")" "the healthy organization's write"
assert_eq Upstream "$(mirror_field "$G_ORG" G-2 category)" "the healthy organization's PEMS edit pulled"
FR_ERR=$(server_col "$FR_ORG" health_error)
valid_utf8 "$FR_ERR" || fail "French health text is not valid UTF-8"
assert_match "^HTTP error: PEMS 503: a($E_ACUTE){50,}" "$FR_ERR" "French health text kept (what PEMS said)"
assert_eq f "$(server_col "$FR_ORG" health_ok)" "French server's health"
RAW_ERR=$(server_col "$RAW_ORG" health_error)
valid_utf8 "$RAW_ERR" || fail "raw health text is not valid UTF-8"
assert_eq "HTTP error: PEMS 502: $FFFD$FFFD<html>proxy$FFFD$FFFD" "$RAW_ERR" "raw page: invalid bytes replaced, never dropped"
assert_eq unhealthy "$(health_of "$FR_TOK" "$FR_ORG")" "sync-status of the French organization"
assert_eq unhealthy "$(health_of "$RAW_TOK" "$RAW_ORG")" "sync-status of the raw-page organization"
assert_eq healthy "$(health_of "$G_TOK" "$G_ORG")" "sync-status of the healthy organization"
LIST=$(pemsctl server list)
printf '%s\n' "$LIST" | grep -F "$FR_ORG" | grep -qF "a$E_ACUTE$E_ACUTE$E_ACUTE" ||
  fail "pemsctl server list does not say what the French PEMS said"
sim_control_ok "$RAW_TEN" DELETE /faults

# --- 2. a write refused with such text keeps its reason ---------------------------------------
test_begin "a write refused with hostile text keeps its reason; pemsctl prints it escaped"
wfx_mod FR_MOD "$FR_TOK" "$FR_ORG" F-1 1 '{"monthlyRate":16000}'
healthy_write 16000
# a raw body with terminal escapes (clear screen, retitle), a cut character and 0xff
BODY_HEX=$(hex "$(printf '\033[2J\033]0;pwned\007 refus')")$(printf 'c3a9%.0s' $(seq 150))ff
sim_fault "$FR_TEN" "{\"status\":400, \"match\":\"writes\", \"count\":-1, \"bodyHex\":\"$BODY_HEX\"}"
wfx_write_sync "$FR_TOK" "$FR_ORG" 1
: > "$TEST_TMP/worker.log"
once
assert_eq 0 "$WORKER_RC" "pemsworker --once exit status"
no_abort "hostile write text"
assert_eq synced "$(fx_mod_status "$G_MOD")" "the healthy organization's write beside it"
assert_eq sync_error "$(fx_mod_status "$FR_MOD")" "the refused write"
api_as "$FR_TOK" GET "/api/pems/modifications/$FR_MOD"
LAST=$(jbody .queueItem.lastError)
assert_ne null "$LAST" "lastError says why"
assert_match "refus$E_ACUTE" "$LAST" "lastError holds what PEMS said"
valid_utf8 "$LAST" || fail "lastError is not valid UTF-8"
QL=$(pemsctl queue list --org "$FR_ORG")
case $QL in *"$ESC"*) fail "pemsctl queue list printed a raw ESC" ;; esac
assert_match '\\u001b\[2J\\u001b\]0;pwned\\u0007 refus' "$QL" "pemsctl queue list escapes control characters"
QJ=$(pemsctl queue list --org "$FR_ORG" --json)
case $QJ in *"$ESC"*) fail "pemsctl queue list --json printed a raw ESC" ;; esac
printf '%s' "$QJ" | jq -e . >/dev/null || fail "pemsctl queue list --json is not JSON"
ST=$(pemsctl status --org "$FR_ORG")
case $ST in *"$ESC"*) fail "pemsctl status printed a raw ESC" ;; esac
sim_control_ok "$FR_TEN" DELETE /faults

# --- 3. a statement refused for one server's data -----------------------------------------------
test_begin "a statement refused for one server's data fails that lane only, never the run"
healthy_org healthy3
wfx_org poison
P_ORG=$W_ORG P_TEN=$W_TENANT P_TOK=$W_TOKEN
sim_seed "$P_TEN" "$(wfx_records P 1)"
wfx_org poisonw
Q_ORG=$W_ORG Q_TEN=$W_TENANT Q_TOK=$W_TOKEN
sim_seed "$Q_TEN" "$(wfx_records Q 1)"
once
healthy_write 17000
wfx_mod Q_MOD "$Q_TOK" "$Q_ORG" Q-1 1 '{"monthlyRate":17000}'
# the database refuses what two servers send: one's pulled record, the other's write result
fx_sql "CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS \$\$
        BEGIN RAISE EXCEPTION 'refused for the test' USING ERRCODE = '22000'; END \$\$;
        CREATE TRIGGER test_poison_mirror BEFORE INSERT OR UPDATE ON pfa_mirror FOR EACH ROW
          WHEN (NEW.pfa_id LIKE 'P-%') EXECUTE FUNCTION test_poison();
        CREATE TRIGGER test_poison_queue BEFORE UPDATE ON pfa_write_queue FOR EACH ROW
          WHEN (NEW.last_error LIKE '%POISON%') EXECUTE FUNCTION test_poison();" >/dev/null
sim_edit "$P_TEN" P-1 '{"category":"Poisoned"}'
sim_seed "$G_TEN" "$(wfx_records G3 2)"
sim_fault "$Q_TEN" '{"status":400, "match":"writes", "count":-1, "body":"{\"error\":\"POISON\"}"}'
wfx_write_sync "$Q_TOK" "$Q_ORG" 1
: > "$TEST_TMP/worker.log"
once
assert_eq 0 "$WORKER_RC" "pemsworker --once exit status"
no_abort "a refused statement"
grep -q "event=lane_failed org=$P_ORG" "$TEST_TMP/worker.log" || { fail "no lane_failed for the organization whose record was refused"; worker_log_tail; }
grep -q "event=result_refused" "$TEST_TMP/worker.log" || fail "no result_refused for the refused result"
assert_eq synced "$(fx_mod_status "$G_MOD")" "the healthy write beside the refused result"
assert_eq 4 "$(org_mirror_count "$G_ORG")" "the healthy organization pulled"
assert_eq unhealthy "$(health_of "$P_TOK" "$P_ORG")" "sync-status of the organization whose record was refused"
assert_eq healthy "$(health_of "$G_TOK" "$G_ORG")" "sync-status of the healthy organization"
fx_sql "DROP TRIGGER test_poison_mirror ON pfa_mirror; DROP TRIGGER test_poison_queue ON pfa_write_queue;
        DROP FUNCTION test_poison()" >/dev/null
sim_control_ok "$Q_TEN" DELETE /faults

# --- 4. records: too large, untrusted time --------------------------------------------------------
test_begin "a record over 64 KiB is refused alone, the rest of its page stored"
healthy_org healthy4
wfx_org bigrec
B_ORG=$W_ORG B_TEN=$W_TENANT
FIELDS=$(jq -cn --argjson g "$WFX_RECORD" '$g + ([range(0; 7000) | {key: "extra\(.)", value: .}] | from_entries)')
sim_seed "$B_TEN" "$(jq -cn --argjson g "$WFX_RECORD" --argjson f "$FIELDS" \
  '[{pfaId:"B-ok1", data:$g}, {pfaId:"B-huge", data:$f}, {pfaId:"B-ok2", data:$g}]')"
: > "$TEST_TMP/worker.log"
once
assert_eq 0 "$WORKER_RC" "pemsworker --once exit status"
for id in B-ok1 B-ok2; do [ -n "$(mirror_version "$B_ORG" "$id")" ] || fail "$id not stored"; done
assert_eq "" "$(mirror_version "$B_ORG" B-huge)" "the record over 64 KiB is not stored"
assert_eq record_too_large "$(fx_sql "SELECT reason FROM pems_rejected_records WHERE organization_id = :'o' AND pfa_id = 'B-huge'" -v o="$B_ORG")" "refused as record_too_large"
grep -qE "event=pems_record_rejected org=$B_ORG pfa_id=\"?B-huge\"? reason=record_too_large" "$TEST_TMP/worker.log" ||
  fail "no log line with the organization and pfaId"
assert_eq degraded "$(curl -sk "$PEMS_URL/api/pems/health" | jq -r .status)" "health degraded while a record is refused"
assert_eq 2 "$(org_mirror_count "$G_ORG")" "the healthy organization pulled"
fx_sql "DELETE FROM pems_rejected_records WHERE organization_id = :'o'" -v o="$B_ORG" >/dev/null

# --- 5. an endless pull ----------------------------------------------------------------------------
test_begin "an endless pull stops at PEMS_PULL_MAX_SECONDS, the others are pulled, the next run resumes"
healthy_org healthy5
wfx_org endless
EN_ORG=$W_ORG EN_TEN=$W_TENANT
sim_fault "$EN_TEN" "$(jq -cn --argjson g "$WFX_RECORD" '{status:200, match:"pull", count:-1, endless:$g}')"
: > "$TEST_TMP/worker.log"
t0=$SECONDS
once PEMS_PULL_MAX_SECONDS=3
assert_eq 0 "$WORKER_RC" "pemsworker --once exit status"
assert_le $((SECONDS - t0)) 20 "seconds the run took with an endless pull and a 3 s bound"
grep -q "event=pull_time_limit org=$EN_ORG" "$TEST_TMP/worker.log" || { fail "no pull_time_limit for the endless server"; worker_log_tail; }
assert_eq 2 "$(org_mirror_count "$G_ORG")" "the healthy organization pulled"
SINCE1=$(server_col "$EN_ORG" pull_since)
assert_match '^20[0-9]{2}-' "$SINCE1" "the endless pull stored its cursor"
PAGES1=$(org_mirror_count "$EN_ORG")
once PEMS_PULL_MAX_SECONDS=2
SINCE2=$(server_col "$EN_ORG" pull_since)
[[ "$SINCE2" > "$SINCE1" ]] || fail "the next run did not resume past $SINCE1 ($SINCE2)"
assert_ge "$(org_mirror_count "$EN_ORG")" $((PAGES1 + 1)) "the next run stored more of it"

test_begin "an endless pull never delays another organization's scheduled pull"
# this test's pemsworker runs the schedule (every minute); the endless pull is bounded at 150 s
sim_edit "$G_TEN" G-1 '{"category":"BeforeSchedule"}'
: > "$TEST_TMP/worker.log"
env ENABLE_PEMS_WRITE_SYNC=true "PEMS_WRITE_SYNC_SCHEDULE=* * * * *" PEMS_PULL_MAX_SECONDS=150 \
  pemsworker >>"$TEST_TMP/worker.log" 2>&1 </dev/null &
WPID=$!
wfx_field_is() { [ "$(mirror_field "$G_ORG" G-1 category)" = "$1" ]; }
wait_for 20 wfx_field_is BeforeSchedule || fail "the first run did not pull the healthy organization"
sim_edit "$G_TEN" G-1 '{"category":"NextMinute"}'
started=$SECONDS
wait_for 80 wfx_field_is NextMinute || { fail "the next scheduled pull waited for the endless one"; worker_log_tail; }
assert_le $((SECONDS - started)) 75 "seconds until the next scheduled pull"
grep -q "event=pull_time_limit org=$EN_ORG" "$TEST_TMP/worker.log" && fail "the endless pull ended first: nothing was shown"
kill -TERM "$WPID"; wait "$WPID" 2>/dev/null; WPID=""
sim_control_ok "$EN_TEN" DELETE /faults
finish
