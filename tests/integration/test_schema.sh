#!/usr/bin/env bash
# Migrations (sql/README.md) and constraints, on throw-away databases of the stack's PostgreSQL.
. "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SQL_DIR=${PEMS_SQL_DIR:-$ROOT/sql}
BASE_URL=${DATABASE_URL%/*}
DBS=()

new_db() {  # new_db NAME: creates a database of our own, dropped on exit
  local name="pems_schema_$1_$$_$RANDOM"
  psql -qtAX "$BASE_URL/postgres" -v ON_ERROR_STOP=1 -c "CREATE DATABASE $name" >/dev/null || return 1
  DBS+=("$name")
  printf '%s/%s' "$BASE_URL" "$name"
}
drop_dbs() {
  for d in "${DBS[@]}"; do
    psql -qtAX "$BASE_URL/postgres" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1
  done
  rm -rf "$TEST_TMP"
}
trap drop_dbs EXIT

# migrate URL [SQL_DIR]: sets OUT, ERR, RC
migrate() {
  OUT=$(DATABASE_URL=$1 PEMS_SQL_DIR=${2:-$SQL_DIR} pemsctl migrate 2>"$TEST_TMP/err")
  RC=$?
  ERR=$(cat "$TEST_TMP/err")
}
q() { psql -qtAX "$URL" -v ON_ERROR_STOP=1 -c "$1"; }
# newer pg_dump brackets its output with random \restrict keys
dump() { pg_dump --schema-only --no-owner "$1" | grep -v -e '^-- Dumped' -e '^\\restrict' -e '^\\unrestrict'; }

# expect_reject what SQL: the statement must fail (constraint, trigger)
expect_reject() {
  if psql -qtAX "$URL" -v ON_ERROR_STOP=1 -c "$2" >/dev/null 2>"$TEST_TMP/rej"; then
    fail "$1: accepted"
  else
    pass
  fi
}
expect_ok() {
  if psql -qtAX "$URL" -v ON_ERROR_STOP=1 -c "$2" >/dev/null 2>"$TEST_TMP/ok"; then
    pass
  else
    fail "$1: refused: $(head -1 "$TEST_TMP/ok")"
  fi
}

# schema.sql, then the repeatable files by name
FILES=$(cd "$SQL_DIR" && { echo schema.sql; ls -1 -- functions/*.sql | LC_ALL=C sort; })
NFILES=$(printf '%s\n' "$FILES" | wc -l)

test_begin "fresh database: the schema, then every function file, in order"
URL=$(new_db main) || { fail "cannot create a database"; finish; exit 1; }
migrate "$URL"
assert_eq 0 "$RC" "first migrate exit status ($ERR)"
assert_eq "$FILES" "$OUT" "first migrate prints every file in order"
assert_eq "$NFILES" "$(q 'SELECT count(*) FROM schema_migrations')" "one schema_migrations row per file"
assert_eq "$(printf '%s\n' "$FILES" | LC_ALL=C sort)" \
  "$(q 'SELECT version FROM schema_migrations ORDER BY version COLLATE "C"')" "versions are the file names"
for f in $FILES; do
  assert_eq "$(sha256sum "$SQL_DIR/$f" | cut -d' ' -f1)" \
    "$(q "SELECT checksum FROM schema_migrations WHERE version = '$f'")" "checksum of $f"
done

test_begin "second migrate changes nothing"
dump "$URL" > "$TEST_TMP/dump1"
migrate "$URL"
assert_eq 0 "$RC" "second migrate exit status ($ERR)"
assert_eq "" "$OUT" "second migrate applies nothing"
dump "$URL" > "$TEST_TMP/dump2"
if [ -s "$TEST_TMP/dump1" ] && cmp -s "$TEST_TMP/dump1" "$TEST_TMP/dump2"; then pass; else
  fail "pg_dump --schema-only differs (or is empty) after a second migrate"
  diff "$TEST_TMP/dump1" "$TEST_TMP/dump2" | head -20 >&2
fi
assert_eq "$NFILES" "$(q 'SELECT count(*) FROM schema_migrations')" "still one row per file"

# What the files define, one "KIND NAME" a line: each CREATE statement's object
sql_objects() {
  cat "$SQL_DIR"/*.sql "$SQL_DIR"/functions/*.sql | tr 'A-Z' 'a-z' | sed -n -E \
    's/^[[:space:]]*create[[:space:]]+(or[[:space:]]+replace[[:space:]]+)?(unique[[:space:]]+|unlogged[[:space:]]+|constraint[[:space:]]+)?(table|index|function|aggregate|trigger|type|sequence|view)[[:space:]]+(if[[:space:]]+not[[:space:]]+exists[[:space:]]+)?([a-z0-9_]+).*/\3 \5/p' |
    sed 's/^aggregate /function /'   # pg_proc holds aggregates beside functions
}
test_begin "each object is defined once, and the catalog holds exactly what the files define"
dups=$(sql_objects | sort | uniq -d | tr '\n' ' ')
assert_eq "" "$dups" "objects defined in more than one place"
q "SELECT 'table ' || relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE nspname = 'public' AND relkind IN ('r', 'p') AND relname <> 'schema_migrations'
   UNION ALL
   SELECT 'view ' || relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE nspname = 'public' AND relkind IN ('v', 'm')
   UNION ALL
   SELECT 'index ' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE nspname = 'public' AND relkind = 'i'
     AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid)
   UNION ALL
   SELECT 'sequence ' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE nspname = 'public' AND relkind = 'S'
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))
   UNION ALL
   SELECT 'type ' || t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
   JOIN pg_class c ON c.oid = t.typrelid WHERE nspname = 'public' AND c.relkind = 'c'
   UNION ALL
   SELECT 'function ' || proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE nspname = 'public'
   UNION ALL
   SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal" | sort > "$TEST_TMP/catalog"
sql_objects | sort > "$TEST_TMP/files"
assert_ge "$(wc -l < "$TEST_TMP/catalog")" 60 "catalog objects read"
if diff "$TEST_TMP/files" "$TEST_TMP/catalog" > "$TEST_TMP/catalog.diff"; then pass; else
  fail "the catalog and the files' objects differ ('<' files, '>' catalog): $(grep '^[<>]' "$TEST_TMP/catalog.diff" | tr '\n' ' ')"
fi
for t in organizations users user_organizations api_servers pfa_mirror pfa_mirror_history \
         pfa_modification pfa_write_queue pfa_sync_conflict sync_batches worker_heartbeats audit_log; do
  grep -qxF "table $t" "$TEST_TMP/catalog" && pass || fail "table $t missing"
done

test_begin "every function file can be applied again"
URL2=$(new_db rerun)
migrate "$URL2"
for f in $FILES; do
  [ "$f" = schema.sql ] && continue
  if psql -qtAX "$URL2" -v ON_ERROR_STOP=1 -f "$SQL_DIR/$f" >/dev/null 2>"$TEST_TMP/re"; then pass; else
    fail "$f fails when run a second time: $(grep -m1 ERROR "$TEST_TMP/re")"
  fi
done

test_begin "constraints make bad states impossible"
q "INSERT INTO organizations (id, code, name) VALUES
     ('00000000-0000-0000-0000-0000000000a1', 'A', 'Org A'),
     ('00000000-0000-0000-0000-0000000000a2', 'B', 'Org B');
   INSERT INTO users (id, username, email) VALUES
     ('00000000-0000-0000-0000-0000000000b1', 'ann', 'ann@example.com');
   INSERT INTO pfa_mirror (organization_id, pfa_id, version, data) VALUES
     ('00000000-0000-0000-0000-0000000000a1', 'PFA-1', 3, '{\"category\":\"Crane\"}');
   INSERT INTO pfa_modification (id, organization_id, pfa_id, operation, base_version, delta, status, modified_by)
   VALUES ('00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1', 'PFA-1',
           'update', 3, '{\"model\":\"X\"}', 'queued', '00000000-0000-0000-0000-0000000000b1');
   INSERT INTO pfa_write_queue (id, organization_id, modification_id) VALUES
     ('00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000a1',
      '00000000-0000-0000-0000-0000000000c1');" >/dev/null || fail "fixture rows refused"
ORG=00000000-0000-0000-0000-0000000000a1
MOD=00000000-0000-0000-0000-0000000000c1
USR=00000000-0000-0000-0000-0000000000b1
QI=00000000-0000-0000-0000-0000000000d1
expect_reject "priority 11" "UPDATE pfa_write_queue SET priority = 11 WHERE id = '$QI'"
expect_reject "priority -1" "UPDATE pfa_write_queue SET priority = -1 WHERE id = '$QI'"
expect_ok "priority 10" "UPDATE pfa_write_queue SET priority = 10 WHERE id = '$QI'"
expect_ok "priority 0" "UPDATE pfa_write_queue SET priority = 0 WHERE id = '$QI'"
expect_reject "unknown queue status" "UPDATE pfa_write_queue SET status = 'done' WHERE id = '$QI'"
expect_reject "processing without a lease" "UPDATE pfa_write_queue SET status = 'processing' WHERE id = '$QI'"
expect_reject "completed without completed_at" "UPDATE pfa_write_queue SET status = 'completed' WHERE id = '$QI'"
expect_reject "negative attempts" "UPDATE pfa_write_queue SET attempts = -1 WHERE id = '$QI'"
expect_reject "a second live queue item for one modification" \
  "INSERT INTO pfa_write_queue (organization_id, modification_id) VALUES ('$ORG', '$MOD')"
expect_ok "a new item once the old one is finished" \
  "BEGIN; UPDATE pfa_write_queue SET status = 'failed' WHERE id = '$QI';
   INSERT INTO pfa_write_queue (organization_id, modification_id) VALUES ('$ORG', '$MOD'); ROLLBACK"
expect_reject "queue item of an unknown modification" \
  "INSERT INTO pfa_write_queue (organization_id, modification_id) VALUES ('$ORG', gen_random_uuid())"
expect_reject "unknown modification status" "UPDATE pfa_modification SET status = 'sent' WHERE id = '$MOD'"
expect_reject "unknown operation" "UPDATE pfa_modification SET operation = 'insert' WHERE id = '$MOD'"
expect_reject "delta that is not an object" "UPDATE pfa_modification SET delta = '[1]' WHERE id = '$MOD'"
expect_reject "modification of a record not in the mirror" \
  "INSERT INTO pfa_modification (organization_id, pfa_id, operation, base_version, modified_by)
   VALUES ('$ORG', 'PFA-404', 'update', 1, '$USR')"
expect_reject "modification of another organization's record" \
  "INSERT INTO pfa_modification (organization_id, pfa_id, operation, base_version, modified_by)
   VALUES ('00000000-0000-0000-0000-0000000000a2', 'PFA-1', 'update', 1, '$USR')"
expect_reject "duplicate (organization, pfa_id) in the mirror" \
  "INSERT INTO pfa_mirror (organization_id, pfa_id, version, data) VALUES ('$ORG', 'PFA-1', 4, '{}')"
expect_ok "same pfa_id in another organization" \
  "INSERT INTO pfa_mirror (organization_id, pfa_id, version, data)
   VALUES ('00000000-0000-0000-0000-0000000000a2', 'PFA-1', 1, '{}')"
expect_reject "mirror data that is not an object" \
  "INSERT INTO pfa_mirror (organization_id, pfa_id, version, data) VALUES ('$ORG', 'PFA-2', 1, '\"x\"')"
expect_reject "history superseded by an older version" \
  "INSERT INTO pfa_mirror_history (organization_id, pfa_id, version, data, superseded_by)
   VALUES ('$ORG', 'PFA-1', 3, '{}', 2)"
expect_reject "unknown permission" \
  "INSERT INTO user_organizations (user_id, organization_id, permissions) VALUES ('$USR', '$ORG', '{Read,Root}')"
expect_ok "known permissions" \
  "INSERT INTO user_organizations (user_id, organization_id, permissions) VALUES ('$USR', '$ORG', '{Read,Write,Sync,Admin}')"
expect_reject "duplicate organization code" "INSERT INTO organizations (code, name) VALUES ('A', 'again')"
expect_reject "blank organization code" "INSERT INTO organizations (code, name) VALUES ('  ', 'blank')"
expect_reject "duplicate username" "INSERT INTO users (username, email) VALUES ('ann', 'x@example.com')"
expect_reject "email without @" "INSERT INTO users (username, email) VALUES ('bob', 'bob')"
expect_reject "server URL that is not http(s)" \
  "INSERT INTO api_servers (organization_id, base_url, credentials_enc) VALUES ('$ORG', 'ftp://x', '\\x00')"
expect_reject "server without credentials" \
  "INSERT INTO api_servers (organization_id, base_url) VALUES ('$ORG', 'http://x')"
expect_reject "rate limit 0" \
  "INSERT INTO api_servers (organization_id, base_url, credentials_enc, rate_limit_rps) VALUES ('$ORG', 'http://x', '\\x00', 0)"
expect_ok "a server" "INSERT INTO api_servers (organization_id, base_url, credentials_enc) VALUES ('$ORG', 'http://x', '\\x00')"
assert_eq 10 "$(q "SELECT rate_limit_rps FROM api_servers WHERE organization_id = '$ORG'")" "rate_limit_rps defaults to 10"
expect_reject "a second server for one organization" \
  "INSERT INTO api_servers (organization_id, base_url, credentials_enc) VALUES ('$ORG', 'http://y', '\\x00')"

CONFLICT_COLS="organization_id, modification_id, pfa_id, local_version, pems_version, conflict_fields, local_data, pems_data"
CONFLICT_VALS="'$ORG', '$MOD', 'PFA-1', 3, 4, '{model}', '{}', '{}'"
expect_reject "conflict without conflict fields" \
  "INSERT INTO pfa_sync_conflict ($CONFLICT_COLS) VALUES ('$ORG', '$MOD', 'PFA-1', 3, 4, '{}', '{}', '{}')"
expect_reject "resolved conflict without a resolution" \
  "INSERT INTO pfa_sync_conflict ($CONFLICT_COLS, status, resolved_at) VALUES ($CONFLICT_VALS, 'resolved', now())"
expect_reject "resolution on an unresolved conflict" \
  "INSERT INTO pfa_sync_conflict ($CONFLICT_COLS, resolution, resolved_at) VALUES ($CONFLICT_VALS, 'use_pems', now())"
expect_reject "merge without merged data" \
  "INSERT INTO pfa_sync_conflict ($CONFLICT_COLS, status, resolution, resolved_at) VALUES ($CONFLICT_VALS, 'resolved', 'merge', now())"
expect_reject "unknown resolution" \
  "INSERT INTO pfa_sync_conflict ($CONFLICT_COLS, status, resolution, resolved_at) VALUES ($CONFLICT_VALS, 'resolved', 'coin_flip', now())"
expect_reject "unknown conflict status" \
  "INSERT INTO pfa_sync_conflict ($CONFLICT_COLS, status) VALUES ($CONFLICT_VALS, 'open')"
expect_ok "an unresolved conflict" "INSERT INTO pfa_sync_conflict ($CONFLICT_COLS) VALUES ($CONFLICT_VALS)"
expect_reject "a second open conflict for one modification" \
  "INSERT INTO pfa_sync_conflict ($CONFLICT_COLS) VALUES ($CONFLICT_VALS)"
expect_ok "a merge resolution with merged data" \
  "UPDATE pfa_sync_conflict SET status = 'resolved', resolution = 'merge', merged_data = '{}', resolved_at = now(), resolved_by = '$USR'"

expect_ok "audit_log insert" \
  "INSERT INTO audit_log (actor, action, entity_type, entity_id) VALUES ('test', 'create', 'x', '1')"
expect_reject "audit_log UPDATE" "UPDATE audit_log SET actor = 'mallory'"
expect_reject "audit_log DELETE" "DELETE FROM audit_log"
assert_eq 1 "$(q 'SELECT count(*) FROM audit_log')" "audit_log row survives"
# an organization (and a user) with history can be deleted; the history keeps their ids, and
# the organization's records and queue items go with it
GONE_ORG=$(q "INSERT INTO organizations (code, name) VALUES ('GONE', 'Gone') RETURNING id")
GONE_USR=$(q "INSERT INTO users (username, email) VALUES ('gone', 'gone@example.test') RETURNING id")
expect_ok "history of the organization" \
  "INSERT INTO audit_log (organization_id, user_id, actor, action, entity_type, entity_id)
   VALUES ('$GONE_ORG', '$GONE_USR', 'gone', 'create', 'x', '2')"
expect_ok "a record" "INSERT INTO pfa_mirror (organization_id, pfa_id, version, data) VALUES ('$GONE_ORG', 'G-1', 1, '{}')"
GONE_MOD=$(q "INSERT INTO pfa_modification (organization_id, pfa_id, operation, base_version, delta, modified_by)
              VALUES ('$GONE_ORG', 'G-1', 'update', 1, '{}', '$GONE_USR') RETURNING id")
expect_ok "a queue item" \
  "INSERT INTO pfa_write_queue (organization_id, modification_id) VALUES ('$GONE_ORG', '$GONE_MOD')"
expect_ok "a conflict" \
  "INSERT INTO pfa_sync_conflict (organization_id, modification_id, pfa_id, local_version, pems_version,
     conflict_fields, local_data, pems_data) VALUES ('$GONE_ORG', '$GONE_MOD', 'G-1', 1, 2, '{x}', '{}', '{}')"
expect_ok "delete the organization" "DELETE FROM organizations WHERE id = '$GONE_ORG'"
expect_ok "delete the user" "DELETE FROM users WHERE id = '$GONE_USR'"
assert_eq 0 "$(q "SELECT count(*) FROM pfa_write_queue WHERE organization_id = '$GONE_ORG'")" \
  "its queue items went with it"
assert_eq "$GONE_ORG|$GONE_USR" \
  "$(q "SELECT organization_id || '|' || user_id FROM audit_log WHERE entity_id = '2'")" \
  "its history stays, with the ids it was written with"
assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$' \
  "$(q "SELECT pems_iso('2024-03-10 07:30:00+00'::timestamptz)")" "pems_iso format"
assert_eq "2024-03-10T07:30:00.000Z" "$(q "SELECT pems_iso('2024-03-10 02:30:00-05'::timestamptz)")" "pems_iso is UTC"

test_begin "a changed schema file is refused"
cp -r "$SQL_DIR" "$TEST_TMP/sql-changed"
printf '\n-- edited after it was applied\n' >> "$TEST_TMP/sql-changed/schema.sql"
printf 'CREATE TABLE IF NOT EXISTS zz_should_not_exist (x int);\n' > "$TEST_TMP/sql-changed/999_later.sql"
migrate "$URL" "$TEST_TMP/sql-changed"
assert_ne 0 "$RC" "migrate with an edited schema.sql exits non-zero"
assert_match "schema.sql.*changed" "$ERR" "the error names the changed file"
assert_eq "" "$OUT" "nothing reported as applied"
assert_eq "" "$(q "SELECT to_regclass('zz_should_not_exist')")" "later files are not applied either"
assert_eq "$NFILES" "$(q 'SELECT count(*) FROM schema_migrations')" "nothing recorded"

test_begin "a changed function file is applied again, alone"
cp -r "$SQL_DIR" "$TEST_TMP/sql-repeat"
printf '\nCREATE OR REPLACE FUNCTION zz_repeatable() RETURNS int LANGUAGE sql AS $$ SELECT 2 $$;\n' \
  >> "$TEST_TMP/sql-repeat/functions/servers.sql"
migrate "$URL" "$TEST_TMP/sql-repeat"
assert_eq 0 "$RC" "migrate with a changed function file ($ERR)"
assert_eq "functions/servers.sql" "$OUT" "only the changed file is applied"
assert_eq 2 "$(q 'SELECT zz_repeatable()')" "its new definition is in place"
assert_eq "$(sha256sum "$TEST_TMP/sql-repeat/functions/servers.sql" | cut -d' ' -f1)" \
  "$(q "SELECT checksum FROM schema_migrations WHERE version = 'functions/servers.sql'")" \
  "its new checksum is recorded"
migrate "$URL" "$TEST_TMP/sql-repeat"
assert_eq "" "$OUT" "applied once per change"
printf 'CREATE OR REPLACE FUNCTION zz_new() RETURNS int LANGUAGE sql AS $$ SELECT 3 $$;\n' \
  > "$TEST_TMP/sql-repeat/functions/zz_new.sql"
printf 'CREATE OR REPLACE FUNCTION zz_broken() RETURNS int LANGUAGE sql AS $$ SELEC 3 $$;\n' \
  >> "$TEST_TMP/sql-repeat/functions/servers.sql"
migrate "$URL" "$TEST_TMP/sql-repeat"
assert_ne 0 "$RC" "a failing function file exits non-zero"
assert_match "functions/servers.sql" "$ERR" "the error names it"
assert_eq "" "$(q "SELECT to_regprocedure('zz_broken()')")" "its statements are rolled back"
assert_eq "" "$(q "SELECT to_regprocedure('zz_new()')")" "files after it are not applied"
migrate "$URL"
assert_eq 0 "$RC" "back to the tree's files ($ERR)"
assert_eq "functions/servers.sql" "$OUT" "the tree's version of the file is applied again"
q "DROP FUNCTION zz_repeatable()"

test_begin "a new file is applied alone; a failing file rolls back"
cp -r "$SQL_DIR" "$TEST_TMP/sql-new"
printf 'CREATE TABLE IF NOT EXISTS zz_added (x int);\n' > "$TEST_TMP/sql-new/990_added.sql"
migrate "$URL" "$TEST_TMP/sql-new"
assert_eq 0 "$RC" "migrate with a new file ($ERR)"
assert_eq "990_added.sql" "$OUT" "only the new file is applied"
assert_eq "zz_added" "$(q "SELECT to_regclass('zz_added')")" "its table exists"
printf 'CREATE TABLE zz_partial (x int);\nSELEC broken;\n' > "$TEST_TMP/sql-new/991_bad.sql"
printf 'CREATE TABLE zz_after_bad (x int);\n' > "$TEST_TMP/sql-new/992_after.sql"
migrate "$URL" "$TEST_TMP/sql-new"
assert_ne 0 "$RC" "a failing migration exits non-zero"
assert_match "991_bad.sql" "$ERR" "the error names the failing file"
assert_eq "" "$(q "SELECT to_regclass('zz_partial')")" "the failing file's statements are rolled back"
assert_eq "" "$(q "SELECT to_regclass('zz_after_bad')")" "files after it are not applied"
assert_eq 0 "$(q "SELECT count(*) FROM schema_migrations WHERE version IN ('991_bad.sql', '992_after.sql')")" \
  "the failing file is not recorded"
printf 'BEGIN; CREATE TABLE zz_tx (x int); COMMIT;\n' > "$TEST_TMP/sql-new/991_bad.sql"
migrate "$URL" "$TEST_TMP/sql-new"
assert_ne 0 "$RC" "a file that commits by itself is refused"
migrate "$URL"
assert_ne 0 "$RC" "a database made from files the tree does not have is refused"
assert_match "990_added.sql" "$ERR" "the error names the file it lacks"

test_begin "two migrators at once"
URL3=$(new_db race)
DATABASE_URL=$URL3 pemsctl migrate >"$TEST_TMP/race1" 2>&1 &
p1=$!
DATABASE_URL=$URL3 pemsctl migrate >"$TEST_TMP/race2" 2>&1 &
p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
assert_eq "0 0" "$r1 $r2" "both succeed ($(cat "$TEST_TMP/race1" "$TEST_TMP/race2" | grep -m1 -i error))"
assert_eq "$(printf '%s\n' "$FILES" | LC_ALL=C sort)" "$(cat "$TEST_TMP/race1" "$TEST_TMP/race2" | LC_ALL=C sort)" \
  "each file applied by exactly one of them"
URL=$URL3
assert_eq "$NFILES" "$(q 'SELECT count(*) FROM schema_migrations')" "one row per file"

test_begin "errors"
migrate "postgresql://pems@127.0.0.1:1/none"
assert_eq 1 "$RC" "unreachable database exits 1"
assert_match "connect|unavailable" "$ERR" "says it cannot connect"
migrate "$URL" "$TEST_TMP/no-such-dir"
assert_eq 1 "$RC" "missing migrations directory exits 1"
assert_match "no-such-dir" "$ERR" "names the directory"

finish
