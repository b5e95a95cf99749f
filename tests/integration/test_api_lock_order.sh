#!/usr/bin/env bash
# Two requests over the same rows never fail with 500 because of each other: concurrent
# POST /write-sync in the organization-wide form and in the modificationIds form over the same
# modifications (and retry/cancel and resolve beside them) take their row locks in one order
# (sql/functions/locks.sql), and a deadlock or serialization failure that still happens is run
# again inside pems-fcgi. Every round: only 202s, and each modification queued exactly once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG=$(fx_org locks)
USER_ID=$(fx_user "$ORG" Read,Write,Sync)
TOKEN=$(fx_token "$USER_ID")
fx_mirror "$ORG" PFA-L1 1 >/dev/null
N=1000
fx_sql "INSERT INTO pfa_modification (organization_id, pfa_id, operation, base_version, delta, status, modified_by)
        SELECT :'o', 'PFA-L1', 'update', 1, jsonb_build_object('model', 'm' || g), 'pending_sync', :'u'
        FROM generate_series(1, :'n') g" -v o="$ORG" -v u="$USER_ID" -v n="$N" >/dev/null

post() {  # post BODY OUT_FILE
  curl -sk -o "$2.body" -w '%{http_code}' --max-time 60 -X POST -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data-binary "$1" "$PEMS_URL/api/pems/write-sync" >"$2"
}

ROUNDS=8
for round in $(seq 1 $ROUNDS); do
  test_begin "round $round: organization-wide and modificationIds write-sync at once"
  fx_sql "DELETE FROM pfa_write_queue WHERE organization_id = :'o';
          UPDATE pfa_modification SET status = 'pending_sync' WHERE organization_id = :'o'" -v o="$ORG" >/dev/null
  # the named form lists the ids newest first: the opposite of their uuid order half the time
  IDS=$(fx_sql "SELECT json_agg(id ORDER BY created_at DESC, md5(id::text || :'r')) FROM pfa_modification WHERE organization_id = :'o'" \
        -v o="$ORG" -v r="$round")
  post "{\"organizationId\":\"$ORG\"}" "$TEST_TMP/a" &
  post "{\"organizationId\":\"$ORG\",\"modificationIds\":$IDS}" "$TEST_TMP/b" &
  post "{\"organizationId\":\"$ORG\"}" "$TEST_TMP/c" &
  wait
  for k in a c; do
    assert_eq 202 "$(cat "$TEST_TMP/$k")" "organization-wide form ($k): $(head -c 300 "$TEST_TMP/$k.body")"
  done
  # the named form is 202 when it ran first, else 409 (its ids were already queued): never 500
  code=$(cat "$TEST_TMP/b")
  if [ "$code" = 409 ]; then
    assert_eq conflict "$(jq -r .error.code <"$TEST_TMP/b.body")" "named form: 409 conflict"
  else
    assert_eq 202 "$code" "named form: $(head -c 300 "$TEST_TMP/b.body")"
  fi
  QUEUED=0
  for k in a b c; do
    [ "$(cat "$TEST_TMP/$k")" = 202 ] && QUEUED=$((QUEUED + $(jq .queuedCount <"$TEST_TMP/$k.body")))
  done
  assert_eq "$N" "$QUEUED" "queuedCount over the calls adds up to every modification once"
  assert_eq "$N" "$(fx_count pfa_write_queue "organization_id = :'o'" -v o="$ORG")" "one queue item per modification"
done

test_begin "a named write-sync beside the worker's flush of the same modifications"
# The worker's flush locks its queue items, then their modifications, in its own order. A
# named write-sync over modifications the worker holds (queued ones: 409) takes no lock on
# them, so the two never form a cycle: PostgreSQL detects no deadlock.
FLUSH_ORG=$(fx_org locks-flush)
FLUSH_USER=$(fx_user "$FLUSH_ORG" Read,Write,Sync)
fx_mirror "$FLUSH_ORG" PFA-F1 1 >/dev/null
read -r LO HI < <(for _ in 1 2; do
  m=$(fx_mod "$FLUSH_ORG" PFA-F1 "$FLUSH_USER" queued 1 '{"model":"f"}')
  fx_queue "$FLUSH_ORG" "$m" processing >/dev/null
  echo "$m"
done | sort | tr '\n' ' ')
PGLOG=$STACK_DIR/log/postgres.log
DEADLOCKS_BEFORE=$(grep -c 'deadlock detected' "$PGLOG")
# the flush: HI's item and modification, a pause, then LO's
fx_sql "BEGIN;
        UPDATE pfa_write_queue SET updated_at = now() WHERE modification_id = :'hi';
        UPDATE pfa_modification SET updated_at = now() WHERE id = :'hi';
        SELECT pg_sleep(1.2);
        UPDATE pfa_write_queue SET updated_at = now() WHERE modification_id = :'lo';
        UPDATE pfa_modification SET updated_at = now() WHERE id = :'lo';
        COMMIT;" -v hi="$HI" -v lo="$LO" >"$TEST_TMP/flush.out" 2>&1 &
FLUSH=$!
sleep 0.4
api_as "$(fx_token "$FLUSH_USER")" POST /api/pems/write-sync \
  "{\"organizationId\":\"$FLUSH_ORG\",\"modificationIds\":[\"$LO\",\"$HI\"]}"
wait "$FLUSH"
assert_eq 0 "$?" "the flush committed: $(cat "$TEST_TMP/flush.out")"
assert_error 409 conflict "write-sync of two queued modifications"
assert_eq "$DEADLOCKS_BEFORE" "$(grep -c 'deadlock detected' "$PGLOG")" "no deadlock detected by PostgreSQL"

# A transient failure that happens anyway is run again inside pems-fcgi: a trigger on this
# organization's modifications raises deadlock_detected (40P01) or serialization_failure
# (40001) while a sequence (which no rollback resets) is at most FAILS; each run calls it
# once per row until it raises.
fx_sql "$(cat <<'SQL'
CREATE TABLE IF NOT EXISTS test_lock_order_fails (org uuid PRIMARY KEY, fails int, code text);
CREATE SEQUENCE IF NOT EXISTS test_lock_order_calls;
CREATE OR REPLACE FUNCTION test_lock_order_fail() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE f test_lock_order_fails;
BEGIN
  SELECT * INTO f FROM test_lock_order_fails WHERE org = NEW.organization_id;
  IF FOUND AND nextval('test_lock_order_calls') <= f.fails THEN
    RAISE EXCEPTION 'injected' USING ERRCODE = f.code;
  END IF;
  RETURN NEW;
END $f$;
DROP TRIGGER IF EXISTS test_lock_order_fail ON pfa_modification;
CREATE TRIGGER test_lock_order_fail BEFORE UPDATE ON pfa_modification
  FOR EACH ROW EXECUTE FUNCTION test_lock_order_fail();
SQL
)" >/dev/null || fx_die "install the failing trigger"
cleanup_trigger() {
  fx_sql "DROP TRIGGER IF EXISTS test_lock_order_fail ON pfa_modification;
          DROP FUNCTION IF EXISTS test_lock_order_fail(); DROP TABLE IF EXISTS test_lock_order_fails;
          DROP SEQUENCE IF EXISTS test_lock_order_calls" >/dev/null 2>&1
}
trap cleanup_trigger EXIT
inject() {  # inject FAILS SQLSTATE
  fx_sql "DELETE FROM test_lock_order_fails;
          DELETE FROM pfa_write_queue WHERE organization_id = :'o';
          UPDATE pfa_modification SET status = 'pending_sync' WHERE organization_id = :'o';
          SELECT setval('test_lock_order_calls', 1, false);
          INSERT INTO test_lock_order_fails VALUES (:'o', :'n', :'c')" \
    -v o="$ORG" -v n="$1" -v c="$2" >/dev/null
}
calls() { fx_sql "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM test_lock_order_calls"; }

for code in 40P01 40001; do
  test_begin "a transient failure ($code) is run again: the caller sees 202"
  inject 2 "$code"
  api POST /api/pems/write-sync "{\"organizationId\":\"$ORG\"}"
  assert_eq 202 "$HTTP_STATUS" "write-sync after two injected $code failures: $BODY"
  assert_jq .queuedCount "$N" "every modification queued by the third run"
  assert_eq $((2 + N)) "$(calls)" "two runs failed at their first row, the third updated every row"
  assert_eq "$N" "$(fx_count pfa_write_queue "organization_id = :'o'" -v o="$ORG")" "one queue item per modification"
done

test_begin "the retries are bounded: then 503 service_unavailable, never 500"
inject 1000000 40P01
api POST /api/pems/write-sync "{\"organizationId\":\"$ORG\"}"
assert_error 503 service_unavailable "write-sync while every run deadlocks"
assert_eq 5 "$(calls)" "one run and four more"
assert_eq 0 "$(fx_count pfa_write_queue "organization_id = :'o'" -v o="$ORG")" "nothing queued"

finish
