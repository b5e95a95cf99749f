#!/usr/bin/env bash
# pemsworker against a PEMS with latency (the simulator's latencyMs): many requests in flight
# per server and across servers, each server at its rate limit whatever its latency; writes
# of one record in order; a hung server beside a healthy one; two workers; kill -9 and a
# graceful stop with requests in flight. Runs its own stack whose pemsworker writes nothing
# (ENABLE_PEMS_WRITE_SYNC=false), so every write is this test's workers'.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
. "$(dirname "$0")/worker_fixtures.sh"
. "$(dirname "$0")/private_stack.sh"
WPIDS=()
cleanup() {
  local p
  for p in "${WPIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  private_stack_stop
  cp "$TEST_TMP/worker.log" /tmp/winflight-debug.log 2>/dev/null
  rm -rf "$TEST_TMP"
}
trap cleanup EXIT

private_stack_start winflight "${PEMS_WINFLIGHT_HTTPS_PORT:-9543}" "${PEMS_WINFLIGHT_SIM_PORT:-19180}" \
  "${PEMS_WINFLIGHT_PG_PORT:-26532}" PEMS_FCGI_CHILDREN=2 ENABLE_PEMS_WRITE_SYNC=false \
  "PEMS_WRITE_SYNC_SCHEDULE=0 0 1 1 *" \
  || { fail "private stack did not start"; finish; exit 1; }
wfx_require

now_ms() { date +%s%3N; }
# this test's workers write (the stack's does not)
# (debug: each request's start is logged, with its wall-clock time)
W_ENV=(ENABLE_PEMS_WRITE_SYNC=true "PEMS_WRITE_SYNC_SCHEDULE=0 0 1 1 *" PEMS_LOG_LEVEL=debug)
once() { wfx_once "${W_ENV[@]}" "$@"; }

# an organization (globals as wfx_org) whose PEMS has N records R-1..R-N and answers in
# LATENCY_MS: setup NAME RPS LATENCY_MS N [MAX_IN_FLIGHT]; after a pull, mods ORG USER N
# makes N pending modifications
setup() {
  local name=$1 rps=$2 lat=$3 n=$4
  wfx_org "$name" "$rps" "$rps"
  [ -n "${5:-}" ] && fx_sql "UPDATE api_servers SET max_in_flight = :'k' WHERE organization_id = :'o'" \
    -v k="$5" -v o="$W_ORG" >/dev/null
  sim_seed "$W_TENANT" "$(wfx_records R "$n")"
  sim_control_ok "$W_TENANT" POST /config "{\"latencyMs\":$lat}"
}
mods() { wfx_mods_sql "$1" "$2" R "$3" 1 '{"monthlyRate":42000}'; }
pull_all() { once; assert_eq 0 "$WORKER_RC" "pull run exit status"; }
stats_reset() { sim_control_ok "$1" POST /stats/reset; }
queue_org() {  # ORG: POST /write-sync for every pending_sync modification of ORG
  api_as "$(fx_token "$(fx_user "$1" Read,Write,Sync)")" POST /api/pems/write-sync \
    "{\"organizationId\":\"$1\"}"
  assert_eq 202 "$HTTP_STATUS" "write-sync"
}
# the most requests this test's workers started to ORG's server in any one second (the
# guarantee is on starts; the simulator counts arrivals, which a loaded machine can bunch up
# by more than the worker's margin: it is printed beside)
starts_max_1s() {
  grep "event=request_started org=$1 " "$TEST_TMP/worker.log" | sed 's/.*wall_us=//' | sort -n |
    awk '{ t[NR] = $1 } END { m = 0; j = 1
           for (i = 1; i <= NR; i++) { while (t[i] - t[j] >= 1000000) j++; if (i - j + 1 > m) m = i - j + 1 }
           print m }'
}
in_flight_at_least() { [ "$(sim_stat "$1" .inFlight)" -ge "$2" ] 2>/dev/null; }
items_not_once() {
  fx_sql "SELECT count(*) FROM pfa_write_queue q WHERE q.organization_id = :'o'
          AND (SELECT count(*) FROM audit_log a WHERE a.entity_id = q.id::text
               AND a.action = 'queue_item.completed') <> 1" -v o="$1"
}

# --- one server at 10 req/s answering in 250 ms ------------------------------------------------
test_begin "10 req/s at 250 ms: 60 writes at the limit"
setup lat250 10 250 60
ORG=$W_ORG TEN=$W_TENANT TOK=$W_TOKEN
pull_all
assert_eq 60 "$(org_mirror_count "$ORG")" "mirror rows after the pull"
mods "$ORG" "$W_USER" 60
sleep 1.1   # the pull's requests leave the window
wfx_write_sync "$TOK" "$ORG" 60
stats_reset "$TEN"
t0=$(now_ms)
once
took=$(($(now_ms) - t0))
printf 'info: 60 writes at 10 req/s, 250 ms latency: %d ms\n' "$took" >&2
assert_eq 0 "$WORKER_RC" "exit status"
assert_eq 60 "$(fx_org_mods "$ORG" synced)" "modifications synced"
assert_eq 60 "$(sim_stat "$TEN" .writesApplied)" "writesApplied"
printf 'info: simulator: %s arrived in its busiest second, %s answered 429\n' \
  "$(sim_stat "$TEN" .maxRequestsInAnySecond)" "$(sim_stat "$TEN" .rateLimited)" >&2
assert_eq 10 "$(starts_max_1s "$ORG")" "never more than 10 started in any second (and 10 at times)"
# one at a time would be 4 writes/s; at 10/s and 250 ms, 2 or 3 are in flight at once
assert_ge "$(sim_stat "$TEN" .maxInFlight)" 2 "requests overlap"
assert_ge "$took" 5000 "rate bound: 60 writes take 5 s at least"
assert_le "$took" 12000 "at the limit (about 6 s; one at a time takes 15 s)"

# --- 20 organizations at 100 ms, side by side ------------------------------------------------
test_begin "20 organizations at 100 ms: side by side"
setup solo 10 100 20
SOLO_ORG=$W_ORG SOLO_TEN=$W_TENANT SOLO_USR=$W_USER
ORGS=() TENS=() USRS=()
for i in $(seq 1 20); do
  setup "many$i" 10 100 20
  ORGS+=("$W_ORG") TENS+=("$W_TENANT") USRS+=("$W_USER")
done
pull_all
mods "$SOLO_ORG" "$SOLO_USR" 20
for i in "${!ORGS[@]}"; do mods "${ORGS[$i]}" "${USRS[$i]}" 20; done
sleep 1.1
queue_org "$SOLO_ORG"
t0=$(now_ms); once; solo=$(($(now_ms) - t0))
assert_eq 20 "$(fx_org_mods "$SOLO_ORG" synced)" "one organization: synced"
for o in "${ORGS[@]}"; do queue_org "$o"; done
for t in "${TENS[@]}"; do stats_reset "$t"; done
t0=$(now_ms); once; many=$(($(now_ms) - t0))
printf 'info: one organization %d ms, twenty side by side %d ms\n' "$solo" "$many" >&2
assert_eq 0 "$WORKER_RC" "exit status"
synced=0 applied=0 maxsec=0 overlapped=0 persec=""
for i in "${!ORGS[@]}"; do
  synced=$((synced + $(fx_org_mods "${ORGS[$i]}" synced)))
  applied=$((applied + $(sim_stat "${TENS[$i]}" .writesApplied)))
  s=$(starts_max_1s "${ORGS[$i]}"); [ "$s" -gt "$maxsec" ] && maxsec=$s
  persec+=" $(sim_stat "${TENS[$i]}" .maxRequestsInAnySecond)"
  [ "$(sim_stat "${TENS[$i]}" .maxInFlight)" -ge 2 ] && overlapped=$((overlapped + 1))
done
assert_eq 400 "$synced" "every organization's modifications synced"
assert_eq 400 "$applied" "writes applied at PEMS"
printf 'info: simulator, busiest second per server:%s\n' "$persec" >&2
assert_le "$maxsec" 10 "each server: never more than 10 started in any second"
assert_eq 20 "$overlapped" "every server had requests overlapping"
assert_le "$many" $((solo * 5)) "side by side: well under 20 x one organization's time"

# --- two edits of one record, in order --------------------------------------------------------
test_begin "two edits of one record: in order, never overlapping"
setup order 10 200 8
ORG=$W_ORG TEN=$W_TENANT TOK=$W_TOKEN USR=$W_USER
pull_all
wfx_mod M1 "$TOK" "$ORG" R-1 1 '{"monthlyRate":111}'
wfx_mod M2 "$TOK" "$ORG" R-1 1 '{"model":"second"}'
OTHERS=()
for i in 2 3 4 5 6 7 8; do wfx_mod m "$TOK" "$ORG" "R-$i" 1 '{"monthlyRate":7}'; OTHERS+=("\"$m\""); done
wfx_write_sync "$TOK" "$ORG" 1 "[\"$M1\"]"
sleep 0.05
wfx_write_sync "$TOK" "$ORG" 8 "[\"$M2\",$(IFS=,; echo "${OTHERS[*]}")]"
stats_reset "$TEN"
once
assert_eq synced "$(fx_mod_status "$M1")" "first edit synced"
assert_eq synced "$(fx_mod_status "$M2")" "second edit synced"
assert_eq 3 "$(sim_record "$TEN" R-1 .version)" "two writes on the record"
assert_eq '111|second' "$(sim_record "$TEN" R-1 '"\(.data.monthlyRate)|\(.data.model)"')" "both edits at PEMS"
assert_eq monthlyRate "$(history_changed "$ORG" R-1 1)" "the first edit was written first"
assert_eq model "$(history_changed "$ORG" R-1 2)" "the second edit was written second"
assert_eq 0 "$(sim_count "$TEN" "PUT /pfa/{id}" 409)" "no 409: the second write waited for the first"
assert_eq 9 "$(sim_count "$TEN" "PUT /pfa/{id}" 200)" "nine writes"
assert_ge "$(sim_stat "$TEN" .maxInFlight)" 3 "other records' writes overlapped"

# --- a hung server beside a healthy one ---------------------------------------------------------
test_begin "a hung server does not slow a healthy one"
setup hung 10 4000 6 3
HORG=$W_ORG HTEN=$W_TENANT HTOK=$W_TOKEN HUSR=$W_USER
fx_sql "UPDATE api_servers SET timeout_ms = 1500 WHERE organization_id = :'o'" -v o="$HORG" >/dev/null
setup healthy 10 100 40
GORG=$W_ORG GTEN=$W_TENANT GTOK=$W_TOKEN
sim_control_ok "$HTEN" POST /config '{"latencyMs":0}'   # the pull answers, then the server hangs
pull_all
mods "$HORG" "$HUSR" 6
mods "$GORG" "$W_USER" 40
sim_control_ok "$HTEN" POST /config '{"latencyMs":4000}'
sleep 1.1
wfx_write_sync "$HTOK" "$HORG" 6
wfx_write_sync "$GTOK" "$GORG" 40
stats_reset "$HTEN"; stats_reset "$GTEN"
# the worker's cap is small: the hung server holds at most its own 3
once PEMS_WORKER_MAX_IN_FLIGHT=6
assert_eq 40 "$(fx_org_mods "$GORG" synced)" "healthy server: every write synced"
assert_eq 10 "$(starts_max_1s "$GORG")" "healthy server driven at its limit"
# counted as they arrive (they are answered 4 s later): the pull's GET /health and GET /pfa,
# then each item once
assert_eq 8 "$(sim_stat "$HTEN" .totalRequests)" "hung server: each item tried once, then rescheduled"
assert_eq 0 "$(fx_org_mods "$HORG" synced)" "hung server: nothing synced"
assert_eq 0 "$(fx_count pfa_write_queue "organization_id = :'o' AND status = 'processing'" -v o="$HORG")" \
  "hung server's items not left processing"
assert_eq 6 "$(fx_count pfa_write_queue "organization_id = :'o' AND status = 'pending' AND attempts = 1
  AND last_error ILIKE '%timeout%'" -v o="$HORG")" "timed-out items rescheduled with an attempt used"
# out of the way of the next runs
fx_sql "UPDATE api_servers SET write_enabled = false WHERE organization_id = :'o'" -v o="$HORG" >/dev/null
sim_control_ok "$HTEN" POST /config '{"latencyMs":0}'

# --- the per-server cap ---------------------------------------------------------------------------
test_begin "a server's max_in_flight caps its requests in flight"
setup cap 100 1000 9 3
ORG=$W_ORG TEN=$W_TENANT
pull_all
mods "$ORG" "$W_USER" 9
queue_org "$ORG"
stats_reset "$TEN"
once
assert_eq 9 "$(fx_org_mods "$ORG" synced)" "synced"
assert_eq 3 "$(sim_stat "$TEN" .maxInFlight)" "3 in flight at most, and at once"

# --- two workers at once ------------------------------------------------------------------------
test_begin "two workers, four servers at 150 ms"
T_ORGS=() T_TENS=()
T_USRS=()
for i in 1 2 3 4; do
  setup "two$i" 10 150 25
  T_ORGS+=("$W_ORG") T_TENS+=("$W_TENANT") T_USRS+=("$W_USER")
done
pull_all
for i in "${!T_ORGS[@]}"; do mods "${T_ORGS[$i]}" "${T_USRS[$i]}" 25; done
sleep 1.1
for o in "${T_ORGS[@]}"; do queue_org "$o"; done
for t in "${T_TENS[@]}"; do stats_reset "$t"; done
once PEMS_WORKER_ID="inflight-a-$$" &
pa=$!
once PEMS_WORKER_ID="inflight-b-$$" &
pb=$!
wait "$pa" "$pb"
for i in "${!T_ORGS[@]}"; do
  o=${T_ORGS[$i]} t=${T_TENS[$i]}
  assert_eq 25 "$(fx_org_mods "$o" synced)" "server $i: synced"
  assert_eq 25 "$(sim_stat "$t" .writesApplied)" "server $i: each write applied once"
  assert_eq 0 "$(sim_stat "$t" .duplicateWrites)" "server $i: no write sent twice"
  assert_le "$(starts_max_1s "$o")" 10 "server $i: limit held across both workers"
  assert_eq 0 "$(items_not_once "$o")" "server $i: each item completed once"
done

# --- --until-idle ----------------------------------------------------------------------------------
test_begin "--until-idle waits out the retries it scheduled"
setup idle 10 100 3
ORG=$W_ORG TEN=$W_TENANT
pull_all
mods "$ORG" "$W_USER" 3
queue_org "$ORG"
sim_fault "$TEN" '{"pfaId":"R-2","status":503,"count":1}'
stats_reset "$TEN"
env "${W_ENV[@]}" timeout 60 pemsworker --until-idle=40 >>"$TEST_TMP/worker.log" 2>&1 </dev/null
assert_eq 0 "$?" "exit status"
assert_eq 3 "$(fx_org_mods "$ORG" synced)" "the retried item too is synced when it returns"
assert_eq 1 "$(sim_count "$TEN" "PUT /pfa/{id}" 503)" "the fault answered once"
assert_eq 2 "$(fx_sql "SELECT q.attempts FROM pfa_write_queue q JOIN pfa_modification m
  ON m.id = q.modification_id WHERE m.organization_id = :'o' AND m.pfa_id = 'R-2'" -v o="$ORG")" \
  "two attempts: the 503, then the write"

# --- kill -9 with requests in flight -------------------------------------------------------------
test_begin "kill -9 with 100 requests in flight"
setup kill9 200 1500 100 100
ORG=$W_ORG TEN=$W_TENANT TOK=$W_TOKEN
pull_all
mods "$ORG" "$W_USER" 100
wfx_write_sync "$TOK" "$ORG" 100
stats_reset "$TEN"
env "${W_ENV[@]}" PEMS_LEASE_SECONDS=4 pemsworker >>"$TEST_TMP/worker.log" 2>&1 </dev/null &
wpid=$!
WPIDS+=("$wpid")
wait_for 15 in_flight_at_least "$TEN" 100 || fail "never 100 in flight ($(sim_stat "$TEN" .inFlight))"
kill -9 "$wpid"
wait "$wpid" 2>/dev/null
flying=$(sim_stat "$TEN" .inFlight)
printf 'info: killed with %s requests in flight at PEMS\n' "$flying" >&2
assert_eq 100 "$flying" "killed with 100 in flight"
sleep 5   # the requests land at PEMS and the item leases (4 s) expire
once PEMS_LEASE_SECONDS=4
assert_eq 100 "$(fx_org_mods "$ORG" synced)" "nothing lost: every modification synced"
assert_eq 100 "$(sim_stat "$TEN" .writesApplied)" "nothing applied twice at PEMS"
# the recovery's pull sees PEMS at the written values (converged, nothing to send); a write
# sent again carries its Idempotency-Key and is answered from PEMS's memory
dups=$(sim_stat "$TEN" .duplicateWrites)
assert_eq $((100 + dups)) "$(sim_count "$TEN" "PUT /pfa/{id}" '*')" "every PUT after the first was a keyed replay"
assert_eq 0 "$(items_not_once "$ORG")" "each item completed once"
assert_eq 100 "$(fx_count pfa_mirror "organization_id = :'o' AND version = 2
  AND data->>'monthlyRate' = '42000'" -v o="$ORG")" "mirror rows at the written version"

# --- graceful stop with requests in flight --------------------------------------------------------
test_begin "SIGTERM with requests in flight: they finish and are recorded"
setup term 200 2000 100 40
ORG=$W_ORG TEN=$W_TENANT TOK=$W_TOKEN
pull_all
mods "$ORG" "$W_USER" 100
wfx_write_sync "$TOK" "$ORG" 100
stats_reset "$TEN"
env "${W_ENV[@]}" PEMS_SHUTDOWN_TIMEOUT=20 pemsworker >>"$TEST_TMP/worker.log" 2>&1 </dev/null &
wpid=$!
WPIDS+=("$wpid")
wait_for 15 in_flight_at_least "$TEN" 40 || fail "never 40 in flight ($(sim_stat "$TEN" .inFlight))"
kill -TERM "$wpid"
t0=$(now_ms)
wait "$wpid"
rc=$? took=$(($(now_ms) - t0))
printf 'info: stopped in %d ms\n' "$took" >&2
assert_eq 0 "$rc" "clean exit"
assert_le "$took" 18000 "within PEMS_SHUTDOWN_TIMEOUT"
assert_eq 0 "$(sim_stat "$TEN" .inFlight)" "nothing left in flight at PEMS"
applied=$(sim_stat "$TEN" .writesApplied)
assert_eq 40 "$applied" "the 40 in flight finished, nothing new started"
assert_eq "$applied" "$(fx_org_mods "$ORG" synced)" "every write PEMS applied is recorded"
assert_eq 0 "$(fx_count pfa_write_queue "organization_id = :'o' AND status = 'processing'" -v o="$ORG")" \
  "no item left leased"
assert_eq 60 "$(fx_org_items "$ORG" pending)" "the others handed back"
once
assert_eq 100 "$(fx_org_mods "$ORG" synced)" "the next run writes the rest"
assert_eq 100 "$(sim_stat "$TEN" .writesApplied)" "each write applied once"
assert_eq 0 "$(sim_stat "$TEN" .duplicateWrites)" "none sent twice"
finish
