#!/usr/bin/env bash
# pemsworkers on several hosts share the PEMS servers: 40 organizations, each its own server
# at 10 req/s behind latency; every host's worker takes servers, no record is written twice,
# no server sees more than its limit in any second across hosts. Then the busy host's pemsd
# is stopped gracefully mid-drain: it hands its items back and the other host's worker drives
# every server on at its rate.
. "$(dirname "$0")/cluster_lib.sh"
cl_require
rig_heal_all
trap 'rig_heal_all; rm -rf "$TEST_TMP"' EXIT

ORGS=${CL_ORGS:-40} ITEMS=${CL_ITEMS:-20} RPS=10

test_begin "$ORGS servers at $RPS req/s, latency 100 +/- 20 ms, on $PEMS_CLUSTER_HOSTS hosts"
cl_orgs "$ORGS" "$ITEMS" "$RPS" 100 20
total=$((ORGS * ITEMS))
t0=$(date +%s.%N)
cl_write_sync
wait_for 240 cl_all_synced "$total" || fail "synced after 240 s: $(cl_synced) of $total"
t1=$(date +%s.%N)
assert_eq "$total" "$(cl_synced)" "modifications synced"
cl_check_tenants "$ITEMS" "$RPS" "$ORGS servers"
by=$(cl_completed_by)
say "completed by worker: $(tr '\n' ' ' <<<"$by")"
for n in $(seq 1 "$PEMS_CLUSTER_HOSTS"); do
  assert_ge "$(awk -v w="app$n" '$1 == w {print $2}' <<<"$by" | grep . || echo 0)" 1 "items completed by app$n's worker"
done
assert_eq "$total" "$(awk '{s += $2} END {print s + 0}' <<<"$by")" "completions recorded (one per item)"
printf 'FIGURE cluster_writes_per_s hosts=%s servers=%s rps=%s items=%s writes_per_s=%.1f\n' \
  "$PEMS_CLUSTER_HOSTS" "$ORGS" "$RPS" "$total" "$(echo "$total / ($t1 - $t0)" | bc -l)"

test_begin "graceful stop of a busy host mid-drain"
ORGS2=4 ITEMS2=80
CL_ORG=() CL_USER=() CL_TOKEN=() CL_TENANT=()
cl_orgs "$ORGS2" "$ITEMS2" "$RPS" 20 5
total=$((ORGS2 * ITEMS2))
cl_write_sync
# a worker is writing: stop the host that wrote most so far (whichever worker discovered the
# servers first may hold all of them)
busy() { [ "$(cl_synced)" -ge $((total / 5)) ]; }
wait_for 60 busy || fail "nothing written 60 s after write-sync ($(cl_synced) of $total)"
victim=$(cl_completed_by | sort -k2,2nr | head -n 1 | cut -d' ' -f1)
other=app1; [ "$victim" = app1 ] && other=app2
pid=$(cat "$PEMS_CLUSTER_DIR/$victim/pemsd.pid")
kill -TERM "$pid"
ts=$(date +%s.%N)
wait_for 40 bash -c "! kill -0 $pid 2>/dev/null" || fail "$victim's pemsd still running 40 s after SIGTERM"
tx=$(date +%s.%N)
left=$(fx_sql "SELECT count(*) FROM pfa_write_queue WHERE locked_by = '$victim' AND status = 'processing'")
assert_eq 0 "$left" "items $victim still holds after its graceful stop"
done_at_stop=$(cl_synced)
assert_ne "$total" "$done_at_stop" "items left when $victim stopped"
wait_for 120 cl_all_synced "$total" || fail "synced 120 s after the stop: $(cl_synced) of $total"
te=$(date +%s.%N)
cl_check_tenants "$ITEMS2" "$RPS" "after the graceful stop"
# the servers the stopped host was writing are driven on by the other one
taken=$(fx_sql "SELECT count(DISTINCT organization_id) FROM audit_log a
                WHERE action = 'queue_item.completed' AND actor = '$other' AND created_at > to_timestamp($tx)
                  AND organization_id IN ($(cl_org_list))
                  AND EXISTS (SELECT 1 FROM audit_log b WHERE b.action = 'queue_item.completed'
                              AND b.actor = '$victim' AND b.organization_id = a.organization_id)")
assert_ge "$taken" 1 "servers $victim was writing that $other wrote to after the stop"
assert_eq 0 "$(fx_sql "SELECT count(*) FROM audit_log WHERE action = 'queue_item.completed'
                       AND actor = '$victim' AND created_at > to_timestamp($tx)")" "completions by $victim after it exited"
rate=$(echo "($total - $done_at_stop) / ($te - $ts)" | bc -l)
printf 'FIGURE cluster_takeover servers=%s remaining=%s seconds=%.1f items_per_s=%.1f (limit %s)\n' \
  "$ORGS2" "$((total - done_at_stop))" "$(echo "$te - $ts" | bc -l)" "$rate" "$((ORGS2 * RPS))"
rig_ok heal "${victim#app}"

finish
