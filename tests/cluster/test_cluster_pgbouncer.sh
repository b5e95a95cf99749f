#!/usr/bin/env bash
# The product behind pgbouncer in session mode: app2 reaches PostgreSQL through a pgbouncer
# (pool_mode = session) in the database's namespace while app1 connects directly; app2's API
# answers, and app2 alone drains servers through it with every record written once and the
# rate limit kept (server leases are session advisory locks, the wake-up is LISTEN: both need
# a session of their own, which session mode gives and transaction mode does not).
. "$(dirname "$0")/cluster_lib.sh"
cl_require
rig_heal_all
command -v pgbouncer >/dev/null 2>&1 || { fail "pgbouncer not installed (scripts/setup installs it)"; finish; exit 1; }
DBNS=$(cl_ns db)
DBHOST=$(sed -E 's|^postgresql://[^@]*@([^:/]*).*|\1|' <<<"$DATABASE_URL")
BDIR=$PEMS_CLUSTER_DIR/pgbouncer
restore() {
  rm -f "$PEMS_CLUSTER_DIR/app2/env"
  rig kill 2 >/dev/null 2>&1
  rig_heal_all
  [ -n "${BPID:-}" ] && kill "$BPID" 2>/dev/null
  rm -rf "$TEST_TMP"
}
trap restore EXIT
RPS=10 ORGS=8 ITEMS=40

test_begin "pgbouncer in session mode"
mkdir -p "$BDIR"
echo '"pems" ""' > "$BDIR/users.txt"
cat > "$BDIR/pgbouncer.ini" <<INI
[databases]
pems = host=127.0.0.1 port=5432 dbname=pems
[pgbouncer]
listen_addr = $DBHOST
listen_port = 6432
unix_socket_dir =
auth_type = trust
auth_file = $BDIR/users.txt
admin_users = pems
pool_mode = session
max_client_conn = 200
default_pool_size = 60
logfile = $BDIR/pgbouncer.log
INI
chown -R postgres "$BDIR"
ip netns exec "$DBNS" runuser -u postgres -- pgbouncer "$BDIR/pgbouncer.ini" >/dev/null 2>&1 &
BPID=$!
BURL="postgresql://pems@$DBHOST:6432/pems"
answers() { psql -qtAX "$BURL" -c 'SELECT 1' >/dev/null 2>&1; }
wait_for 10 answers || fail "pgbouncer does not answer on $DBHOST:6432"
echo "DATABASE_URL=$BURL" > "$PEMS_CLUSTER_DIR/app2/env"
rig_ok kill 2
rig_ok heal 2

m=$(log_mark)
for _ in $(seq 1 20); do
  api GET /api/pems/health
  [ "$HTTP_STATUS" = 200 ] || fail "GET /health: $HTTP_STATUS $BODY"
done
assert_ge "$(served_by "$m" 2)" 5 "requests answered by app2 (through pgbouncer)"

cl_orgs "$ORGS" "$ITEMS" "$RPS" 20 5
total=$((ORGS * ITEMS))
# app2 alone: its API takes the write-syncs (LISTEN/NOTIFY), its worker every server
# (session advisory locks) and every item (leases), all through pgbouncer
rig_ok kill 1
cl_write_sync
wait_for 120 cl_all_synced "$total" || fail "synced: $(cl_synced) of $total"
assert_eq "app2 $total" "$(cl_completed_by)" "items completed, by worker"
cl_check_tenants "$ITEMS" "$RPS" "app2 through pgbouncer"
clients=$(psql -qtAX "postgresql://pems@$DBHOST:6432/pgbouncer" -c 'SHOW CLIENTS' 2>/dev/null | grep -c '|pems|' || true)
assert_ge "$clients" 5 "app2's connections in pgbouncer (pems-fcgi x4, pemsworker)"
assert_eq "" "$(grep -iE 'error|fatal|warning' "$BDIR/pgbouncer.log" | head -3)" "errors in pgbouncer's log"
rig_ok heal 1

finish
