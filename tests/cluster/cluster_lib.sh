# Sourced by tests/cluster/test_*.sh: the integration helpers, plus the rig's verbs and a view
# of nginx's access log (which app host answered each request). Run through
# `scripts/test cluster`, which starts the rig (scripts/cluster) and exports its env.
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEMS_ROOT=$(cd "$TESTS_DIR/.." && pwd)
. "$TESTS_DIR/integration/lib.sh"
. "$TESTS_DIR/integration/fixtures.sh"
. "$TESTS_DIR/integration/worker_fixtures.sh"

rig() { "$PEMS_ROOT/scripts/cluster" "$@"; }
# the rig's namespace NAME (db, pems, appN): its own, also while another checkout's rig runs
cl_ns() { echo "$PEMS_CLUSTER_NS-$1"; }

cl_require() {
  [ -n "${PEMS_CLUSTER_DIR:-}" ] && [ -n "${PEMS_CLUSTER_OUTSIDE_ADDR:-}" ] && [ -n "${PEMS_CLUSTER_NS:-}" ] \
    || { fail "no rig env (eval \"\$(scripts/cluster env)\")"; finish; exit 1; }
  wfx_require
}

ACCESS_LOG=${PEMS_CLUSTER_DIR:-/nonexistent}/log/access.log
# log_mark: the access log's current length (lines); log_since MARK: the lines after it
log_mark() { wc -l < "$ACCESS_LOG" 2>/dev/null || echo 0; }
log_since() { tail -n +$(($1 + 1)) "$ACCESS_LOG" 2>/dev/null; }
# host_of UPSTREAM_ADDR (10.x.(10+N).2:9000) -> N
host_of() { local a=${1%%:*}; a=${a#*.*.}; echo $(( ${a%%.*} - 10 )); }
# hosts_since MARK -> "N status method uri" per request, the host that answered last
hosts_since() {
  log_since "$1" | while read -r _ up _; do
    local last=${up##* }; last=${last%,}
    [[ $last == *:9000 ]] && host_of "$last" || echo 0
  done
}
# served_by MARK N -> how many requests since MARK host N answered (its last upstream)
served_by() { hosts_since "$1" | grep -cx "$2" || true; }

# the worker's log of app host N
host_log() { cat "$PEMS_CLUSTER_DIR/log/app$1.log"; }
host_log_lines() { wc -l < "$PEMS_CLUSTER_DIR/log/app$1.log"; }

# one rig verb; a failure is a test failure
rig_ok() { rig "$@" >/dev/null 2>"$TEST_TMP/rig.err" || fail "scripts/cluster $*: $(tail -3 "$TEST_TMP/rig.err")"; }

# every host back up and on the database (a test that killed or cut one)
rig_heal_all() {
  local n
  for n in $(seq 1 "$PEMS_CLUSTER_HOSTS"); do rig heal "$n" >/dev/null 2>&1 || true; done
}

# --- many organizations, each with its own PEMS server (a simulator tenant) ---------------

# cl_orgs COUNT ITEMS RPS LATENCY_MS JITTER_MS: COUNT organizations (CL_ORG[i], CL_USER[i],
# CL_TOKEN[i], CL_TENANT[i]), each with a server at RPS and ITEMS mirror records (version 1,
# seeded at the simulator too) with a pending_sync modification each; the simulator answers
# in LATENCY_MS +/- JITTER_MS and does not limit (it counts the most requests in any second)
CL_ORG=() CL_USER=() CL_TOKEN=() CL_TENANT=()
cl_orgs() {
  local count=$1 items=$2 rps=$3 lat=$4 jit=$5 i recs
  recs=$(wfx_records PFA "$items")
  for i in $(seq 0 $((count - 1))); do
    wfx_org "c$i" "$rps" 0
    sim_control_ok "$W_TENANT" POST /config "{\"latencyMs\":$lat,\"jitterMs\":$jit}"
    sim_seed "$W_TENANT" "$recs"
    fx_sql "INSERT INTO pfa_mirror (organization_id, pfa_id, version, data)
            SELECT :'o', 'PFA-' || i, 1, :'d'::jsonb FROM generate_series(1, :'n'::int) i" \
      -v o="$W_ORG" -v n="$items" -v d="$WFX_RECORD" >/dev/null || wfx_die "mirror rows"
    wfx_mods_sql "$W_ORG" "$W_USER" PFA "$items" 1 '{"monthlyRate":15000}'
    CL_ORG[i]=$W_ORG CL_USER[i]=$W_USER CL_TOKEN[i]=$W_TOKEN CL_TENANT[i]=$W_TENANT
  done
}

# cl_write_sync: POST /write-sync for every organization of cl_orgs, through the balancer
cl_write_sync() {
  local i
  for i in "${!CL_ORG[@]}"; do
    api_as "${CL_TOKEN[i]}" POST /api/pems/write-sync "{\"organizationId\":\"${CL_ORG[i]}\"}"
    [ "$HTTP_STATUS" = 202 ] || fail "POST /write-sync org $i: $HTTP_STATUS $BODY"
  done
}

# SQL list of the organizations of cl_orgs
cl_org_list() { local IFS=,; printf "'%s'" "${CL_ORG[*]}" | sed "s/,/','/g"; }

# cl_synced -> modifications of cl_orgs that are synced
cl_synced() {
  fx_sql "SELECT count(*) FROM pfa_modification WHERE organization_id IN ($(cl_org_list)) AND status = 'synced'"
}
cl_all_synced() { [ "$(cl_synced)" = "$1" ]; }
cl_synced_at_least() { [ "$(cl_synced)" -ge "$1" ]; }  # N

# cl_busiest_holder -> the worker holding the most processing items of cl_orgs (empty: none)
cl_busiest_holder() {
  fx_sql "SELECT locked_by FROM pfa_write_queue WHERE status = 'processing'
          AND organization_id IN ($(cl_org_list)) GROUP BY locked_by ORDER BY count(*) DESC LIMIT 1"
}

# cl_completed_by -> "worker count" of the queue items of cl_orgs completed, by worker id
cl_completed_by() {
  fx_sql "SELECT actor || ' ' || count(*) FROM audit_log
          WHERE action = 'queue_item.completed' AND organization_id IN ($(cl_org_list))
          GROUP BY actor ORDER BY actor"
}

# cl_check_tenants ITEMS RPS LABEL [REPLAYS]: at every organization's simulator tenant, every record
# written once (writesApplied = ITEMS, no write answered from the idempotency memory) and
# never more than RPS requests in any one-second window
# (REPLAYS: writes a dead worker had sent whose answer it never recorded may come again with
# their Idempotency-Key, answered from the simulator's memory without applying them; at most
# REPLAYS of them in all, default 0)
cl_check_tenants() {
  local items=$1 rps=$2 label=$3 replays=${4:-0} i st applied dup max bad_w=0 worst=0 dups=0
  for i in "${!CL_TENANT[@]}"; do
    sim_stats "${CL_TENANT[i]}"
    st=$SIM_STATS
    applied=$(jq -r .writesApplied <<<"$st")
    dup=$(jq -r .duplicateWrites <<<"$st")
    max=$(jq -r .maxRequestsInAnySecond <<<"$st")
    [ "$applied" = "$items" ] || { bad_w=$((bad_w + 1)); say "tenant $i: writesApplied $applied"; }
    [ "$dup" = 0 ] || say "tenant $i: duplicateWrites $dup (replayed by idempotency key, not applied)"
    dups=$((dups + dup))
    if [ "$max" -gt "$rps" ]; then
      say "tenant $i: $max requests in one second (limit $rps): $(jq -c .requests <<<"$st")"
      cl_densest_second "${CL_TENANT[i]}" >&2
    fi
    [ "$max" -gt "$worst" ] && worst=$max
  done
  assert_eq 0 "$bad_w" "$label: servers where not every record was written exactly once"
  assert_le "$dups" "$replays" "$label: writes sent again with the same idempotency key"
  assert_le "$worst" "$rps" "$label: the most requests any server saw in one second (limit $rps)"
}

say() { printf '%s\n' "$*" >&2; }

# rig_setting NAME DEFAULT: a setting the rig's hosts run with (scripts/cluster start's env)
rig_setting() {
  local v
  v=$(sed -n "s/^$1=//p" "$PEMS_CLUSTER_DIR/settings" 2>/dev/null | tail -n 1)
  echo "${v:-$2}"
}

# cl_densest_second TENANT: the requests of the busiest one-second window at the simulator
# (its log: arrival time, client address = which host; app N's link to PEMS is 10.x.(150+N).1)
cl_densest_second() {
  grep -F "tenant=$1 " "$PEMS_CLUSTER_DIR/log/pems-sim.log" 2>/dev/null \
    | sed -n 's/^pems-sim: \([A-Z]*\) \([^ ]*\) .*status=\([0-9]*\) arrived=\([0-9.]*\) from=\([0-9.?]*\).*/\4 \5 \1 \2 \3/p' \
    | sort -n | awk '{ t[NR] = $1; l[NR] = $0 }
      END { best = 0; j = 1
            for (i = 1; i <= NR; i++) { while (t[i] - t[j] >= 1.0) j++; if (i - j + 1 > best) { best = i - j + 1; bi = j; bj = i } }
            printf "  busiest second: %d requests (arrival, from, method, path, status):\n", best
            for (k = bi; k <= bj; k++) print "    " l[k] }'
}
