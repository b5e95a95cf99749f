# Sourced after lib.sh and fixtures.sh by the worker tests (test_worker_*.sh): an organization
# wired to its own PEMS simulator tenant, simulator control calls, pemsworker runs, and
# queries on the mirror, modifications and queue items.
#
# The stack's own pemsworker (under pemsd) drains every organization's due items too, so a
# test may see its items processed by either worker: assertions are about end states and
# the simulator's counters, which hold whoever did the work.

WFX_RECORD=$(printf '%s' "$FX_RECORD" | jq -c .)

wfx_die() { fail "worker fixture: $*"; finish; exit 1; }

wfx_require() {
  fx_require_stack
  command -v pemsworker >/dev/null 2>&1 || wfx_die "pemsworker not on PATH"
  command -v pemsctl >/dev/null 2>&1 || wfx_die "pemsctl not on PATH"
  curl -sf -o /dev/null --max-time 5 "$PEMS_SIM_URL/__sim/stats" || wfx_die "no simulator at $PEMS_SIM_URL"
}

# --- simulator control (tests/pems-sim/README.md), per tenant ---------------------------------

# sim_control TENANT METHOD PATH [BODY]: a control call under /__sim; sets SIM_STATUS and SIM_BODY
sim_control() {
  local t=$1 m=$2 p=$3 d=${4-} sep='?'
  [[ $p == *\?* ]] && sep='&'
  local args=(-s -X "$m" -o "$TEST_TMP/simbody" -w '%{http_code}' --max-time 10)
  [ -n "$d" ] && args+=(-H 'Content-Type: application/json' --data-binary "$d")
  SIM_STATUS=$(curl "${args[@]}" "$PEMS_SIM_URL/__sim$p${sep}tenant=$t")
  SIM_BODY=$(cat "$TEST_TMP/simbody" 2>/dev/null)
}

# sim_control_ok TENANT METHOD PATH [BODY]: a control call that must answer 2xx
sim_control_ok() {
  sim_control "$@"
  [[ $SIM_STATUS == 2* ]] || wfx_die "sim_control $2 $3 (tenant $1): $SIM_STATUS $SIM_BODY"
}

# wfx_records PREFIX N [VERSION] [DATA_JSON] -> JSON array of N records PREFIX-1..PREFIX-N
wfx_records() {
  jq -cn --arg p "$1" --argjson n "$2" --argjson v "${3:-1}" --argjson d "${4:-$WFX_RECORD}" \
    '[range(1; $n + 1) | {pfaId: "\($p)-\(.)", version: $v, data: $d}]'
}

# sim_seed TENANT RECORDS_JSON_ARRAY
sim_seed() { sim_control_ok "$1" PUT /records "{\"records\":$2}"; }

# sim_edit TENANT PFA_ID CHANGES_JSON: an upstream edit (bumps the version at PEMS)
sim_edit() { sim_control_ok "$1" POST "/records/$2/edit" "{\"changes\":$3}"; }
sim_delete() { sim_control_ok "$1" POST "/records/$2/edit" '{"deleted":true}'; }

# sim_record TENANT PFA_ID JQ -> a value of the record as PEMS has it now
sim_record() {
  sim_control "$1" GET "/records/$2"
  printf '%s' "$SIM_BODY" | jq -c "$3" 2>/dev/null | sed 's/^"\(.*\)"$/\1/'
}

# sim_fault TENANT FAULT_JSON
sim_fault() { sim_control_ok "$1" POST /faults "$2"; }

# sim_stats TENANT: SIM_STATS holds the tenant's counters
sim_stats() {
  sim_control "$1" GET /stats
  SIM_STATS=$SIM_BODY
}

# sim_stat TENANT JQ -> one counter (fresh stats)
sim_stat() {
  sim_stats "$1"
  printf '%s' "$SIM_STATS" | jq -r "$2" 2>/dev/null
}

# sim_count TENANT ROUTE STATUS -> requests to ROUTE ("PUT /pfa/{id}", "GET /pfa", ...)
# answered STATUS ("*" = any status)
sim_count() {
  sim_stats "$1"
  printf '%s' "$SIM_STATS" | jq -r --arg r "$2" --arg s "$3" \
    '[(.requests[$r] // {}) | to_entries[] | select($s == "*" or .key == $s) | .value] | add // 0'
}

# --- an organization with its PEMS server: a fresh simulator tenant ------------------------

# wfx_org NAME [RPS] [SIM_RPS]: sets W_ORG, W_USER, W_TOKEN, W_TENANT, W_SERVER (global) for
# a new organization whose PEMS server (rate limit RPS, default 100) is the simulator tenant
# W_TENANT (reset, with credentials; SIM_RPS: the simulator's own limit, 0 = none).
wfx_org() {
  local name=$1 rps=${2:-100} sim_rps=${3:-0} pass
  W_TENANT=$(fx_tag "w$name")
  pass=$(openssl rand -hex 8)
  sim_control_ok "$W_TENANT" POST /reset
  sim_control_ok "$W_TENANT" POST /config \
    "{\"username\":\"pems-$name\",\"password\":\"$pass\",\"rateLimitRps\":$sim_rps}"
  W_ORG=$(fx_org "$name")
  W_USER=$(fx_user "$W_ORG" Read,Write,Sync)
  W_TOKEN=$(fx_token "$W_USER")
  W_SERVER=$(pemsctl server add --org "$W_ORG" --url "$PEMS_SIM_URL/t/$W_TENANT" \
    --user "pems-$name" --password "$pass" --rps "$rps") || wfx_die "pemsctl server add"
}

# --- pemsworker ------------------------------------------------------------------------------

# wfx_once [VAR=value...]: one `pemsworker --once` (bounded), log appended to $TEST_TMP/worker.log
wfx_once() {
  env "$@" timeout 120 pemsworker --once >>"$TEST_TMP/worker.log" 2>&1 </dev/null
  WORKER_RC=$?
  return 0
}

# wfx_drive SECONDS CHECK...: runs `pemsworker --once` until CHECK succeeds (the stack's
# worker may get there first), at most SECONDS. Fails when time runs out.
wfx_drive() {
  local deadline=$((SECONDS + $1)); shift
  while :; do
    "$@" && return 0
    [ $SECONDS -ge $deadline ] && return 1
    wfx_once
    "$@" && return 0
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.5
  done
}

# sql_is EXPECTED SQL [-v ...]: the query answers EXPECTED (for wait_for / wfx_drive)
sql_is() {
  local want=$1 sql=$2; shift 2
  [ "$(fx_sql "$sql" "$@" 2>/dev/null)" = "$want" ]
}

worker_log_tail() { tail -n 30 "$TEST_TMP/worker.log" 2>/dev/null >&2; }

# --- the organization's API calls ---------------------------------------------------------------

# wfx_mod VAR TOKEN ORG PFA_ID BASE_VERSION DELTA_JSON [OPERATION]: creates a modification
# through the API (must answer 201) and stores its id in VAR
wfx_mod() {
  local var=$1 body; shift
  if [ "${6:-update}" = delete ]; then
    body=$(jq -cn --arg o "$2" --arg p "$3" --argjson b "$4" \
      '{organizationId:$o, pfaId:$p, operation:"delete", baseVersion:$b}')
  else
    body=$(jq -cn --arg o "$2" --arg p "$3" --argjson b "$4" --argjson d "$5" \
      '{organizationId:$o, pfaId:$p, operation:"update", baseVersion:$b, delta:$d}')
  fi
  api_as "$1" POST /api/pems/modifications "$body"
  assert_eq 201 "$HTTP_STATUS" "POST /modifications $3 ($(printf '%s' "$BODY" | head -c 300))"
  printf -v "$var" '%s' "$(jbody '.id // empty')"
}

# wfx_mods_sql ORG USER PREFIX N BASE DELTA_JSON: N pending_sync modifications PREFIX-1..N
# straight into the database (bulk; the API is exercised by the smaller tests)
wfx_mods_sql() {
  fx_sql "INSERT INTO pfa_modification (organization_id, pfa_id, operation, base_version, delta,
            status, modified_by)
          SELECT :'o', :'p' || '-' || i, 'update', :'b', :'d'::jsonb, 'pending_sync', :'u'
          FROM generate_series(1, :'n'::int) i" \
    -v o="$1" -v u="$2" -v p="$3" -v n="$4" -v b="$5" -v d="$6" >/dev/null || wfx_die "insert modifications"
}

# wfx_write_sync TOKEN ORG EXPECTED_COUNT [MOD_IDS_JSON]: POST /write-sync answers 202 with
# queuedCount EXPECTED_COUNT (BODY keeps the answer)
wfx_write_sync() {
  local body
  if [ -n "${4:-}" ]; then
    body=$(jq -cn --arg o "$2" --argjson ids "$4" '{organizationId:$o, modificationIds:$ids}')
  else
    body=$(jq -cn --arg o "$2" '{organizationId:$o}')
  fi
  api_as "$1" POST /api/pems/write-sync "$body"
  assert_eq 202 "$HTTP_STATUS" "POST /write-sync ($(printf '%s' "$BODY" | head -c 300))"
  assert_eq "$3" "$(jbody .queuedCount)" "write-sync queuedCount"
}

# --- database views ----------------------------------------------------------------------------

mirror_col() {  # ORG PFA_ID SQL_EXPR
  fx_sql "SELECT $3 FROM pfa_mirror WHERE organization_id = :'o' AND pfa_id = :'p'" -v o="$1" -v p="$2"
}
mirror_version() { mirror_col "$1" "$2" version; }
mirror_field() { mirror_col "$1" "$2" "data->>'$3'"; }
history_count() {  # ORG PFA_ID
  fx_sql "SELECT count(*) FROM pfa_mirror_history WHERE organization_id = :'o' AND pfa_id = :'p'" \
    -v o="$1" -v p="$2"
}
# changed_fields of the history row of VERSION, as a comma list
history_changed() {  # ORG PFA_ID VERSION
  fx_sql "SELECT array_to_string(changed_fields, ',') FROM pfa_mirror_history
          WHERE organization_id = :'o' AND pfa_id = :'p' AND version = :'v'" -v o="$1" -v p="$2" -v v="$3"
}
mod_base() { fx_sql "SELECT base_version FROM pfa_modification WHERE id = :'m'" -v m="$1"; }
# the modification's latest queue item: COLUMNS (SQL list) joined by |
queue_cols() {  # MOD_ID COLUMNS
  fx_sql "SELECT concat_ws('|', $2) FROM pfa_write_queue WHERE modification_id = :'m'
          ORDER BY created_at DESC LIMIT 1" -v m="$1"
}
mod_is() { [ "$(fx_mod_status "$1")" = "$2" ]; }
# audit rows of an entity with ACTION
audit_count() {  # ENTITY_ID ACTION
  fx_sql "SELECT count(*) FROM audit_log WHERE entity_id = :'e' AND action = :'a'" -v e="$1" -v a="$2"
}
org_mods_are() { [ "$(fx_org_mods "$1" "$2")" = "$3" ]; }  # ORG STATUS COUNT
org_mirror_count() {
  fx_sql "SELECT count(*) FROM pfa_mirror WHERE organization_id = :'o'" -v o="$1"
}
org_mirror_is() { [ "$(org_mirror_count "$1")" = "$2" ]; }
