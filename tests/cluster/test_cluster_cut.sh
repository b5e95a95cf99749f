#!/usr/bin/env bash
# One app host cut off the database (its link down) for 10 s mid-drain: its API answers 503
# service_unavailable (not a hang), its worker writes no item whose lease it can no longer
# renew and stops before the other host takes its servers over; once the link is back every record is
# written exactly once and no stale result is recorded over a newer one.
. "$(dirname "$0")/cluster_lib.sh"
cl_require
rig_heal_all
trap 'kill $CLIENT 2>/dev/null; rig_heal_all; rm -rf "$TEST_TMP"' EXIT
RPS=10 ORGS=6 ITEMS=60 CUT=10

test_begin "setup"
cl_orgs "$ORGS" "$ITEMS" "$RPS" 20 5
total=$((ORGS * ITEMS))
host_addr() { sed -n "s/^ *server \([0-9.]*\.$((10 + $1))\.2\):9000.*/\1/p" "$PEMS_CLUSTER_DIR/nginx/sites-enabled/pems.conf"; }

test_begin "cut mid-drain"
cl_write_sync
wait_for 60 cl_synced_at_least 20 || fail "nothing synced 60 s after write-sync"
victim=""
for _ in $(seq 1 100); do victim=$(cl_busiest_holder); [ -n "$victim" ] && break; sleep 0.1; done
[ -n "$victim" ] || { fail "no host holds items mid-drain"; finish; exit 1; }
n=${victim#app}
held=$(fx_sql "SELECT id || ' ' || claim_seq FROM pfa_write_queue WHERE status = 'processing' AND locked_by = '$victim'")
# the leases it holds, as the database has them, just before the cut and once it is cut off
# (it cannot renew them from then on): "org pfa_id locked_until"
leases_of() {
  fx_sql "SELECT q.organization_id || ' ' || m.pfa_id || ' ' || extract(epoch FROM q.locked_until)
          FROM pfa_write_queue q JOIN pfa_modification m ON m.id = q.modification_id
          WHERE q.status = 'processing' AND q.locked_by = '$victim'"
}
leases=$(leases_of)
rig_ok cut "$n"
tc=$(date +%s.%N)
leases+=$'\n'$(leases_of)
nheld=$(grep -c . <<<"$held")
say "cut $victim off the database holding $nheld items"
# the API while the host is cut: one request at a time, "epoch status code"
(
  while :; do
    out=$(curl -sk --max-time 20 -w ' %{http_code}' -H "Authorization: Bearer ${CL_TOKEN[0]}" \
      "$PEMS_URL/api/pems/modifications?organizationId=${CL_ORG[0]}&limit=1")
    code=${out##* }
    echo "$(date +%s.%N) $code $(jq -r '.error.code // "-"' <<<"${out% *}" 2>/dev/null)"
  done
) > "$TEST_TMP/client.log" 2>/dev/null &
CLIENT=$!
sleep "$CUT"
kill "$CLIENT" 2>/dev/null; wait "$CLIENT" 2>/dev/null
rig_ok heal "$n"
th=$(date +%s.%N)
# requests that ended after the heal may have been answered by the healed host
m0=$(awk -v a="$tc" -v b="$th" '$1 > a && $1 < b' "$TEST_TMP/client.log")

test_begin "the cut host's API answers 503"
by_cut=$(awk -v a="$tc" -v b="$th" -v h="$(host_addr "$n"):9000" '$1 > a && $1 < b && $2 == h' "$ACCESS_LOG")
assert_ge "$(grep -c . <<<"$by_cut")" 1 "requests the cut host answered during the cut"
assert_eq 0 "$(grep . <<<"$by_cut" | awk '$4 != 503' | wc -l)" "of those, answered other than 503 ($(awk '{print $4}' <<<"$by_cut" | sort | uniq -c | tr '\n' ' '))"
assert_eq 0 "$(grep . <<<"$m0" | awk '$2 == 503 && $3 != "service_unavailable"' | wc -l)" "503s without code service_unavailable"
assert_eq 0 "$(grep . <<<"$m0" | awk '$2 != 200 && $2 != 503' | wc -l)" "answers other than 200 or 503 ($(awk '{print $2}' <<<"$m0" | sort | uniq -c | tr '\n' ' '))"
other_ok=$(awk -v a="$tc" -v b="$th" -v h="$(host_addr "$n"):9000" '$1 > a && $1 < b && $2 != h && $4 == 200' "$ACCESS_LOG" | wc -l)
assert_ge "$other_ok" 1 "requests the other host answered 200 during the cut"

test_begin "the cut host's worker stops writing to PEMS"
# what arrived at PEMS from the cut host's link (10.x.(150 + N).1) and from the others since
# the cut, by arrival: "arrival from tenant method url"
vaddr="$(host_addr "$n" | cut -d. -f1-2).$((150 + n)).1"
sed -n 's/^pems-sim: \([A-Z]*\) \([^ ]*\) tenant=\([^ ]*\) status=[0-9]* arrived=\([0-9.]*\) from=\([0-9.?]*\).*/\4 \5 \3 \1 \2/p' \
  "$PEMS_CLUSTER_DIR/log/pems-sim.log" | awk -v a="$tc" '$1 > a' | sort -n > "$TEST_TMP/arrivals"
sent=$(awk -v v="$vaddr" '$2 == v' "$TEST_TMP/arrivals" | wc -l)
last=$(awk -v v="$vaddr" -v a="$tc" '$2 == v { l = $1 - a } END { printf "%.1f", l }' "$TEST_TMP/arrivals")
say "app$n ($vaddr) sent PEMS $sent requests after the cut, the last ${last} s into it"
# each write for an item whose lease had not ended (the database's locked_until)
for i in "${!CL_TENANT[@]}"; do echo "${CL_TENANT[i]} ${CL_ORG[i]}"; done > "$TEST_TMP/tenants"
printf '%s\n' "$leases" > "$TEST_TMP/leases"
unleased=$(awk -v v="$vaddr" '
  FILENAME == ARGV[1] { org[$1] = $2; next }
  FILENAME == ARGV[2] { k = $1 " " $2; if (!(k in until) || $3 > until[k]) until[k] = $3; next }
  $2 == v && ($4 == "PUT" || $4 == "DELETE") {
    id = $5; sub(/.*\//, "", id); k = org[$3] " " id
    if (!(k in until) || $1 >= until[k]) print $0 " lease_until=" (k in until ? until[k] : "none") }' \
  "$TEST_TMP/tenants" "$TEST_TMP/leases" "$TEST_TMP/arrivals")
[ -z "$unleased" ] || say "writes without a live lease: $unleased"
assert_eq 0 "$(grep -c . <<<"$unleased")" "writes the cut host sent for items whose lease had ended"
# one worker at a time per PEMS server: nothing from the cut host after the other host began
overlap=$(awk -v v="$vaddr" '
  $2 != v && !($3 in first) { first[$3] = $1 }
  $2 == v && ($3 in first) { print $0 " (the other host began at " first[$3] ")" }' "$TEST_TMP/arrivals")
[ -z "$overlap" ] || say "requests after the other host took the server over: $overlap"
assert_eq 0 "$(grep -c . <<<"$overlap")" "requests from the cut host after another host began on that server"

test_begin "after the heal: every record once, no stale result"
wait_for 180 cl_all_synced "$total" || fail "synced 180 s after the heal: $(cl_synced) of $total"
cl_check_tenants "$ITEMS" "$RPS" "around the cut" "$nheld"
twice=$(fx_sql "SELECT count(*) FROM (SELECT entity_id FROM audit_log WHERE action = 'queue_item.completed'
                AND organization_id IN ($(cl_org_list)) GROUP BY entity_id HAVING count(*) > 1) d")
assert_eq 0 "$twice" "queue items completed twice"
# the mirror has what PEMS has: version 2 (one write) and the written value, for every record
bad=$(fx_sql "SELECT count(*) FROM pfa_mirror WHERE organization_id IN ($(cl_org_list))
              AND (version <> 2 OR (data->>'monthlyRate')::numeric <> 15000)")
assert_eq 0 "$bad" "mirror records not at version 2 with the written value"
assert_eq "$total" "$(fx_sql "SELECT count(*) FROM pfa_mirror_history WHERE organization_id IN ($(cl_org_list))")" \
  "superseded versions archived (one per record)"
stale=$(fx_sql "SELECT count(*) FROM audit_log WHERE actor = '$victim' AND action = 'queue_item.completed'
                AND created_at > to_timestamp($th)
                AND entity_id IN (SELECT entity_id FROM audit_log WHERE action = 'queue_item.completed'
                                  AND actor <> '$victim')")
assert_eq 0 "$stale" "items the cut host recorded after the heal that the other host had completed"

finish
