#!/usr/bin/env bash
# PostgreSQL restarted under both hosts mid-drain: both APIs answer again within seconds, both
# workers go on, every record is written exactly once. `pemsctl migrate` on two hosts at once
# on an empty database: both succeed, each migration is applied once.
. "$(dirname "$0")/cluster_lib.sh"
cl_require
rig_heal_all
trap 'rig db-start >/dev/null 2>&1; rig_heal_all; rm -rf "$TEST_TMP"' EXIT
RPS=10 ORGS=6 ITEMS=60

test_begin "PostgreSQL restarted under both hosts"
cl_orgs "$ORGS" "$ITEMS" "$RPS" 20 5
total=$((ORGS * ITEMS))
cl_write_sync
wait_for 60 cl_synced_at_least 30 || fail "nothing synced 60 s after write-sync"
rig_ok db-stop
td=$(date +%s.%N)
sleep 2
api_as "${CL_TOKEN[0]}" GET "/api/pems/modifications?organizationId=${CL_ORG[0]}&limit=1"
assert_eq 503 "$HTTP_STATUS" "the API while PostgreSQL is down"
assert_eq service_unavailable "$(jbody .error.code)" "its error code"
rig_ok db-start
tu=$(date +%s.%N)
# every host answers from the database again: a 200 from each, within 10 s
m=$(log_mark)
answered() {
  api_as "${CL_TOKEN[0]}" GET "/api/pems/modifications?organizationId=${CL_ORG[0]}&limit=1"
  local n ok=1
  for n in $(seq 1 "$PEMS_CLUSTER_HOSTS"); do
    [ "$(log_since "$m" | awk -v h="$(sed -n "s/^ *server \([0-9.]*\.$((10 + n))\.2:9000\).*/\1/p" \
      "$PEMS_CLUSTER_DIR/nginx/sites-enabled/pems.conf")" '$2 == h && $4 == 200' | wc -l)" -ge 1 ] || ok=0
  done
  [ $ok = 1 ]
}
wait_for 10 answered || fail "not every host answered 200 within 10 s of PostgreSQL's restart"
printf 'FIGURE cluster_db_restart api_back_s=%.1f (down %.1f s)\n' \
  "$(echo "$(date +%s.%N) - $tu" | bc -l)" "$(echo "$tu - $td" | bc -l)"
wait_for 120 cl_all_synced "$total" || fail "synced 120 s after the restart: $(cl_synced) of $total"
held=$(fx_sql "SELECT count(*) FROM pfa_write_queue WHERE organization_id IN ($(cl_org_list)) AND attempts > 1")
cl_check_tenants "$ITEMS" "$RPS" "around the restart" "$total"
twice=$(fx_sql "SELECT count(*) FROM (SELECT entity_id FROM audit_log WHERE action = 'queue_item.completed'
                AND organization_id IN ($(cl_org_list)) GROUP BY entity_id HAVING count(*) > 1) d")
assert_eq 0 "$twice" "queue items completed twice"
after=$(fx_sql "SELECT string_agg(DISTINCT actor, ' ' ORDER BY actor) FROM audit_log
                WHERE action = 'queue_item.completed' AND organization_id IN ($(cl_org_list))
                AND created_at > to_timestamp($tu)")
say "completed after the restart by: $after"
assert_ne "" "$after" "items completed after the restart"

test_begin "pemsctl migrate on two hosts at once"
DB2=pems_migrate_$$
psql -qtAX "${DATABASE_URL%/*}/postgres" -c "CREATE DATABASE $DB2" >/dev/null || fail "create database"
url2=${DATABASE_URL%/*}/$DB2
for n in 1 2; do
  ip netns exec "$(cl_ns "app$n")" \
    env DATABASE_URL="$url2" pemsctl migrate > "$TEST_TMP/migrate$n.out" 2> "$TEST_TMP/migrate$n.err" &
  eval "mig$n=\$!"
done
wait "$mig1"; rc1=$?
wait "$mig2"; rc2=$?
assert_eq 0 "$rc1" "pemsctl migrate on app1 ($(head -c 300 "$TEST_TMP/migrate1.err"))"
assert_eq 0 "$rc2" "pemsctl migrate on app2 ($(head -c 300 "$TEST_TMP/migrate2.err"))"
files=$(ls "$PEMS_ROOT"/sql/*.sql "$PEMS_ROOT"/sql/functions/*.sql | wc -l)
assert_eq "$files" "$(cat "$TEST_TMP"/migrate[12].out | grep -c .)" "migrations printed as applied, by both together"
assert_eq "$files" "$(cat "$TEST_TMP"/migrate[12].out | sort -u | grep -c .)" "migrations applied once each"
assert_eq "$files" "$(psql -qtAX "$url2" -c 'SELECT count(*) FROM schema_migrations')" "schema_migrations rows"
psql -qtAX "${DATABASE_URL%/*}/postgres" -c "DROP DATABASE $DB2" >/dev/null || fail "drop database"

finish
