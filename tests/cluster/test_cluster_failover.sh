#!/usr/bin/env bash
# kill -9 of a whole app host (pemsd and its children) mid-drain: nginx answers through the
# other host (only a request in flight on the dead host may fail, and a POST is never run
# twice), and the surviving worker finishes the dead host's items within the lease plus a
# few seconds, each record written to PEMS once.
. "$(dirname "$0")/cluster_lib.sh"
cl_require
rig_heal_all
trap 'kill $CLIENT 2>/dev/null; rig_heal_all; rm -rf "$TEST_TMP"' EXIT
LEASE=$(rig_setting PEMS_LEASE_SECONDS 30)
RPS=10 ORGS=6 ITEMS=60

test_begin "setup"
# the API client's organization: records to write modifications on
API_ORG=$(fx_org failover)
API_USER=$(fx_user "$API_ORG" Read,Write,Sync)
API_TOKEN=$(fx_token "$API_USER")
fx_sql "INSERT INTO pfa_mirror (organization_id, pfa_id, version, data)
        SELECT :'o', 'API-' || i, 1, :'d'::jsonb FROM generate_series(1, 5000) i" \
  -v o="$API_ORG" -v d="$WFX_RECORD" >/dev/null || fail "mirror rows"
cl_orgs "$ORGS" "$ITEMS" "$RPS" 50 10
total=$((ORGS * ITEMS))

# one client, one request at a time, alternately a read and a write (each on a new record):
# "epoch_seconds method status pfaId" per request
client() {
  local i=0 t code
  while :; do
    i=$((i + 1))
    code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 20 -H "Authorization: Bearer $API_TOKEN" \
      "$PEMS_URL/api/pems/sync-status?organizationId=$API_ORG")
    t=$(date +%s.%N); echo "$t GET $code -"
    code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 20 -H "Authorization: Bearer $API_TOKEN" \
      -H 'Content-Type: application/json' --data-binary \
      "{\"organizationId\":\"$API_ORG\",\"pfaId\":\"API-$i\",\"operation\":\"update\",\"baseVersion\":1,\"delta\":{\"monthlyRate\":$((20000 + i))}}" \
      "$PEMS_URL/api/pems/modifications")
    t=$(date +%s.%N); echo "$t POST $code API-$i"
  done
}

test_begin "kill -9 of the host holding items"
cl_write_sync
client > "$TEST_TMP/client.log" 2>/dev/null &
CLIENT=$!
wait_for 60 cl_synced_at_least 20 || fail "nothing synced 60 s after write-sync"
victim=""
for _ in $(seq 1 100); do victim=$(cl_busiest_holder); [ -n "$victim" ] && break; sleep 0.1; done
[ -n "$victim" ] || { fail "no host holds items mid-drain"; finish; exit 1; }
n=${victim#app}
rig_ok kill "$n"
tk=$(date +%s.%N)
held=$(fx_sql "SELECT id FROM pfa_write_queue WHERE status = 'processing' AND locked_by = '$victim'")
nheld=$(grep -c . <<<"$held")
say "killed $victim holding $nheld items"
assert_ge "$nheld" 1 "items the killed host held"
sleep 6
kill "$CLIENT" 2>/dev/null; wait "$CLIENT" 2>/dev/null

test_begin "the API through the balancer"
after=$(awk -v k="$tk" '$1 > k' "$TEST_TMP/client.log")
fails=$(awk -v k="$tk" '$1 > k - 1 && $3 !~ /^2/' "$TEST_TMP/client.log")
nfail=$(grep -c . <<<"$fails")
assert_ge "$(grep -c . <<<"$after")" 20 "requests answered after the kill"
# one request at a time: at most the one in flight on the dead host fails
assert_le "$nfail" 1 "failed requests around the kill ($(tr '\n' ';' <<<"$fails"))"
assert_eq 0 "$(awk -v k="$tk" '$1 > k + 1 && $3 !~ /^2/' "$TEST_TMP/client.log" | grep -c .)" "failures from 1 s after the kill"
last_fail=$(tail -n 1 <<<"$fails" | cut -d' ' -f1)
ref=${last_fail:-$tk}
first_ok=$(awk -v r="$ref" '$1 > r && $3 ~ /^2/ {print $1; exit}' "$TEST_TMP/client.log")
printf 'FIGURE cluster_failover_ms=%.0f (from the %s to the first success; %d failed)\n' \
  "$(echo "($first_ok - $ref) * 1000" | bc -l)" "$([ -n "$last_fail" ] && echo "last failure" || echo kill)" "$nfail"
# a POST is never run twice: each pfaId has at most one modification, exactly one when it got 201
twice=$(fx_sql "SELECT count(*) FROM (SELECT pfa_id FROM pfa_modification WHERE organization_id = '$API_ORG'
                GROUP BY pfa_id HAVING count(*) > 1) d")
assert_eq 0 "$twice" "records with two modifications from one POST"
ok201=$(awk '$2 == "POST" && $3 == 201 {print $4}' "$TEST_TMP/client.log" | sort -u | wc -l)
stored=$(fx_sql "SELECT count(*) FROM pfa_modification WHERE organization_id = '$API_ORG'
                 AND pfa_id = ANY(string_to_array(:'ids', ','))" \
         -v ids="$(awk '$2 == "POST" && $3 == 201 {print $4}' "$TEST_TMP/client.log" | paste -sd,)")
assert_eq "$ok201" "$stored" "modifications stored for the POSTs answered 201"
served_after=$(awk -v k="$tk" '$1 > k + 1 {print $2}' "$ACCESS_LOG" | grep -c "$(sed -n "s/^ *server \([0-9.]*\.$((10 + n))\.2:9000\).*/\1/p" "$PEMS_CLUSTER_DIR/nginx/sites-enabled/pems.conf")$" || true)
assert_eq 0 "$served_after" "requests answered by the dead host"

test_begin "the surviving worker rescues the dead host's items"
rescued() {
  [ "$(fx_sql "SELECT count(*) FROM pfa_write_queue WHERE id = ANY(string_to_array(:'ids', ',')::uuid[])
               AND status = 'completed'" -v ids="$(paste -sd, <<<"$held")")" = "$nheld" ]
}
ids=$(paste -sd, <<<"$held")
first_rescue() {
  [ "$(fx_sql "SELECT count(*) FROM pfa_write_queue WHERE id = ANY(string_to_array(:'ids', ',')::uuid[])
               AND status = 'completed'" -v ids="$ids")" -ge 1 ]
}
wait_for $((LEASE + 30)) first_rescue || fail "none of the dead host's items completed $((LEASE + 30)) s after the kill"
t1=$(date +%s.%N)
# all of them: at the servers' rate once their leases expired (one server's worth as the bound)
wait_for $((LEASE + 30 + nheld / RPS)) rescued || fail "the dead host's items not all completed"
t2=$(date +%s.%N)
first=$(echo "$t1 - $tk" | bc -l) all=$(echo "$t2 - $tk" | bc -l)
printf 'FIGURE cluster_rescue first_s=%.1f all_s=%.1f (lease %s s; %d items the dead host held)\n' \
  "$first" "$all" "$LEASE" "$nheld"
assert_le "${first%.*}" $((LEASE + 5)) "seconds from the kill until the first of its items was completed (lease $LEASE s)"
assert_le "${all%.*}" $((LEASE + 5 + nheld / RPS)) "seconds until all $nheld were (lease $LEASE s, then at $RPS/s)"
wait_for 120 cl_all_synced "$total" || fail "synced: $(cl_synced) of $total"
cl_check_tenants "$ITEMS" "$RPS" "after the kill" "$nheld"
by_dead_after=$(fx_sql "SELECT count(*) FROM audit_log WHERE actor = '$victim' AND created_at > to_timestamp($tk)")
assert_eq 0 "$by_dead_after" "results recorded by the dead host after the kill"
rig_ok heal "$n"
rig status | grep "^$victim: running" >/dev/null && pass || fail "$victim running again after heal"

finish
