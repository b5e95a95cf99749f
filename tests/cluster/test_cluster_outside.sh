#!/usr/bin/env bash
# A PEMS server outside the rig, listening on PEMS_CLUSTER_OUTSIDE_ADDR in the root namespace,
# serves every app host: each host reaches it, and the hosts' workers write an organization's
# records to it, each once.
. "$(dirname "$0")/cluster_lib.sh"
cl_require
rig_heal_all
trap 'kill $OPID 2>/dev/null; rm -rf "$TEST_TMP"' EXIT

test_begin "a simulator on the outside address"
pems-sim --host "$PEMS_CLUSTER_OUTSIDE_ADDR" --port 0 > "$TEST_TMP/outside.out" 2> "$TEST_TMP/outside.err" &
OPID=$!
port=""
for _ in $(seq 1 50); do port=$(sed -n 's/^port=//p' "$TEST_TMP/outside.out"); [ -n "$port" ] && break; sleep 0.1; done
[ -n "$port" ] || { fail "pems-sim on $PEMS_CLUSTER_OUTSIDE_ADDR did not start: $(cat "$TEST_TMP/outside.err")"; finish; exit 1; }
OUT=http://$PEMS_CLUSTER_OUTSIDE_ADDR:$port
for n in $(seq 1 "$PEMS_CLUSTER_HOSTS"); do
  code=$(ip netns exec "$(cl_ns "app$n")" \
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$OUT/__sim/stats")
  assert_eq 200 "$code" "app$n reaches the outside address"
done

test_begin "the hosts' workers write to it"
PEMS_SIM_URL=$OUT   # the fixtures' simulator is the outside one from here on
ITEMS=30
wfx_org outside 10 0
sim_seed "$W_TENANT" "$(wfx_records PFA "$ITEMS")"
fx_sql "INSERT INTO pfa_mirror (organization_id, pfa_id, version, data)
        SELECT :'o', 'PFA-' || i, 1, :'d'::jsonb FROM generate_series(1, :'n'::int) i" \
  -v o="$W_ORG" -v n="$ITEMS" -v d="$WFX_RECORD" >/dev/null || fail "mirror rows"
wfx_mods_sql "$W_ORG" "$W_USER" PFA "$ITEMS" 1 '{"monthlyRate":15000}'
CL_ORG=("$W_ORG") CL_TENANT=("$W_TENANT")
api_as "$W_TOKEN" POST /api/pems/write-sync "{\"organizationId\":\"$W_ORG\"}"
assert_eq 202 "$HTTP_STATUS" "POST /write-sync"
wait_for 60 cl_all_synced "$ITEMS" || fail "synced: $(cl_synced) of $ITEMS"
cl_check_tenants "$ITEMS" 10 "the outside server"
assert_eq "$ITEMS" "$(sim_stat "$W_TENANT" '.requests["PUT /pfa/{id}"]["200"]')" "writes the outside server answered"

finish
