#!/usr/bin/env bash
# The services' logs are logfmt that an independent parser (the npm logfmt package, set up
# in tests/logfmt by scripts/setup) reads back: values with quotes, backslashes, '=' and
# spaces come back whole; libpq's messages (a FATAL when the server ends a connection) go
# through the logger, never raw; a write PEMS refused is a warning naming the organization's
# code; a run with nothing to do is a debug line. When stderr is the journal (JOURNAL_STREAM
# names it), each line starts with its syslog priority, <3> error ... <7> debug.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
. "$(dirname "$0")/worker_fixtures.sh"
wfx_require
PEMS_ROOT=${PEMS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
PARSER=$PEMS_ROOT/tests/logfmt/parse.js
WORKER_PID=""
FRESH_DB=""
cleanup() {
  [ -n "$WORKER_PID" ] && kill "$WORKER_PID" 2>/dev/null
  [ -n "$FRESH_DB" ] && psql -qtAX "${DATABASE_URL%/*}/postgres" -c "DROP DATABASE IF EXISTS $FRESH_DB WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$TEST_TMP"
}
trap cleanup EXIT

if ! command -v node >/dev/null || [ ! -d "$PEMS_ROOT/tests/logfmt/node_modules/logfmt" ]; then
  test_begin "logfmt parser"
  fail "node or tests/logfmt/node_modules/logfmt missing (scripts/setup runs npm ci there)"
  finish; exit
fi

# parsed FILE: one JSON object per line of FILE (lines not starting with ts= as {"__raw"})
parsed() { node "$PARSER" < "$1"; }
raw_lines() { parsed "$1" | jq -r 'select(.__raw) | .__raw'; }
# every line has the keys every event has, and a level the service uses
malformed() {
  parsed "$1" | jq -c 'select(.__raw or (.ts == null) or (.prog == null) or (.pid == null)
    or (.event == null) or ((.level | tostring) | test("^(debug|info|warn|error)$") | not))'
}

test_begin "a value with quotes, a backslash, '=' and spaces parses back whole"
DIR="$TEST_TMP/sql \"dir\" a=b back\\slash"
mkdir -p "$DIR"
cp -r "$PEMS_SQL_DIR"/. "$DIR"/   # all applied already: nothing to do but log
PEMS_LOG_LEVEL=info PEMS_SQL_DIR=$DIR pemsctl migrate >/dev/null 2>"$TEST_TMP/migrate.log"
assert_eq 0 "$?" "migrate ($(head -c 300 "$TEST_TMP/migrate.log"))"
assert_eq 1 "$(grep -c . "$TEST_TMP/migrate.log")" "one line"
assert_eq "$DIR" "$(parsed "$TEST_TMP/migrate.log" | jq -r 'select(.event == "migrate_done") | .dir')" \
  "dir= read back by the logfmt parser"
assert_eq 0 "$(parsed "$TEST_TMP/migrate.log" | jq -r 'select(.event == "migrate_done") | .applied')" "applied=0"
assert_eq "" "$(malformed "$TEST_TMP/migrate.log")" "every line well formed"

test_begin "a newline and a tab stay inside one line"
DIR2="$TEST_TMP/two
lines	tab"
mkdir -p "$DIR2"
cp -r "$PEMS_SQL_DIR"/. "$DIR2"/
PEMS_LOG_LEVEL=info PEMS_SQL_DIR=$DIR2 pemsctl migrate >/dev/null 2>"$TEST_TMP/migrate2.log"
assert_eq 1 "$(grep -c . "$TEST_TMP/migrate2.log")" "still one line"
assert_match 'dir="[^"]*/two\\nlines\\ttab"' "$(cat "$TEST_TMP/migrate2.log")" "escaped as \\n and \\t"

test_begin "libpq's error text with quotes and a newline"
DATABASE_URL='postgresql://pems@127.0.0.1:1/pems' pemsctl status >/dev/null 2>"$TEST_TMP/refused.log"
grep '^ts=' "$TEST_TMP/refused.log" > "$TEST_TMP/refused.events"
err=$(parsed "$TEST_TMP/refused.events" | jq -r 'select(.event == "db_connect_failed") | .error')
assert_match '^connection to server at "127\.0\.0\.1", port 1 failed' "$err" "quotes inside the error kept"
assert_eq "" "$(malformed "$TEST_TMP/refused.events")" "every event line well formed"

# a database of its own: the worker there has nothing to do and no other process uses it
FRESH_DB="pems_logs_$$_$RANDOM"
psql -qtAX "${DATABASE_URL%/*}/postgres" -c "CREATE DATABASE $FRESH_DB" >/dev/null
FRESH_URL="${DATABASE_URL%/*}/$FRESH_DB"
DATABASE_URL=$FRESH_URL pemsctl migrate >/dev/null 2>&1 || fail "migrate the fresh database"

test_begin "a run with nothing to do is a debug line"
DATABASE_URL=$FRESH_URL PEMS_LOG_LEVEL=info timeout 60 pemsworker --once >/dev/null 2>"$TEST_TMP/idle-info.log"
assert_eq 0 "$?" "pemsworker --once"
assert_eq 0 "$(grep -c 'event=run_done' "$TEST_TMP/idle-info.log")" "no run_done at info"
assert_eq "" "$(malformed "$TEST_TMP/idle-info.log")" "every line well formed"
DATABASE_URL=$FRESH_URL PEMS_LOG_LEVEL=debug timeout 60 pemsworker --once >/dev/null 2>"$TEST_TMP/idle-debug.log"
assert_eq "debug 0" "$(parsed "$TEST_TMP/idle-debug.log" | jq -r 'select(.event == "run_done") | "\(.level) \(.processed)"')" \
  "run_done processed=0 at debug"

test_begin "the server ending a connection: libpq's FATAL through the logger"
APP="pems-logtest-$$"
DATABASE_URL=$FRESH_URL PGAPPNAME=$APP PEMS_WORKER_ID="logtest-$$" PEMS_LOG_LEVEL=info \
  PEMS_WRITE_SYNC_SCHEDULE="0 0 1 1 *" pemsworker </dev/null >/dev/null 2>"$TEST_TMP/worker-fatal.log" &
WORKER_PID=$!
backends() { psql -qtAX "$FRESH_URL" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$APP'"; }
has_backends() { [ "$(backends)" -ge 1 ] 2>/dev/null; }
wait_for 20 has_backends || fail "the worker never connected"
psql -qtAX "$FRESH_URL" -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '$APP'" >/dev/null
notice_logged() { grep -q 'event=db_notice' "$TEST_TMP/worker-fatal.log"; }
wait_for 20 notice_logged || fail "no db_notice line: $(tail -n 5 "$TEST_TMP/worker-fatal.log")"
kill -TERM "$WORKER_PID"
wait "$WORKER_PID"
WORKER_PID=""
line=$(parsed "$TEST_TMP/worker-fatal.log" | jq -c 'select(.event == "db_notice")' | head -n 1)
assert_eq "warn FATAL 57P01" "$(jq -r '"\(.level) \(.severity) \(.sqlstate)"' <<<"$line")" "severity, level, SQLSTATE"
assert_match "terminating connection due to administrator command" "$(jq -r .message <<<"$line")" "libpq's message"
assert_eq "" "$(raw_lines "$TEST_TMP/worker-fatal.log")" "no raw line from libpq"
assert_eq "" "$(malformed "$TEST_TMP/worker-fatal.log")" "every line well formed"

test_begin "a write PEMS refused is a warning with the organization's code"
wfx_org logs
sim_seed "$W_TENANT" "$(wfx_records L 1)"
wfx_drive 20 org_mirror_is "$W_ORG" 1 || fail "mirror not pulled"
sim_fault "$W_TENANT" '{"pfaId":"L-1","status":400,"count":1,"match":"writes"}'
wfx_mod MOD "$W_TOKEN" "$W_ORG" L-1 1 '{"monthlyRate":13000}'
wfx_write_sync "$W_TOKEN" "$W_ORG" 1
wfx_drive 30 mod_is "$MOD" sync_error || fail "the refused write did not fail"
ITEM=$(fx_sql "SELECT id FROM pfa_write_queue WHERE modification_id = :'m'" -v m="$MOD")
CODE=$(fx_sql "SELECT code FROM organizations WHERE id = :'o'" -v o="$W_ORG")
# the stack's pemsworker or this test's may have sent it
cat "$TEST_TMP/worker.log" "$STACK_DIR/log/pemsd.log" 2>/dev/null | grep "event=item_failed" | grep "item=$ITEM" \
  > "$TEST_TMP/failed.log"
assert_eq "warn $CODE L-1 400" \
  "$(parsed "$TEST_TMP/failed.log" | jq -r '"\(.level) \(.org_code) \(.pfa_id) \(.http_status)"' | head -n 1)" \
  "item_failed: level, org_code, pfa_id, http_status"
grep '^ts=' "$TEST_TMP/worker.log" > "$TEST_TMP/worker.events" 2>/dev/null
assert_eq "" "$(malformed "$TEST_TMP/worker.events")" "every worker line well formed"

test_begin "stderr is the journal: each line starts with its syslog priority"
J="$TEST_TMP/journal.log"
: > "$J"
JS=$(stat -c '%d:%i' "$J")
# debug and info lines (a migrate with nothing to do), then a warning and an error
JOURNAL_STREAM=$JS PEMS_LOG_LEVEL=debug pemsctl migrate >/dev/null 2>>"$J"
JOURNAL_STREAM=$JS DATABASE_URL=postgresql://127.0.0.1:1/none PEMS_LOG_LEVEL=debug \
  pemsworker --once >/dev/null 2>>"$J"
for pair in "<7>:debug" "<6>:info" "<4>:warn" "<3>:error"; do
  n=$(grep -c "^${pair%%:*}ts=[^ ]* level=${pair#*:} " "$J")
  [ "$n" -ge 1 ] || fail "no ${pair#*:} line starting with ${pair%%:*}: $(head -c 600 "$J")"
done
assert_eq "" "$(grep -vE '^<[3467]>ts=' "$J")" "every line has its priority prefix"
# pemsd's refusal of its configuration, before logging is set up, is an error too
JOURNAL_STREAM=$JS env -u DATABASE_URL pemsd -t >/dev/null 2>>"$J"
assert_eq "78" "$?" "pemsd -t without DATABASE_URL exits 78"
assert_eq "<3>pemsd: DATABASE_URL is required" "$(tail -n 1 "$J")" "pemsd -t's message is an error"

test_begin "JOURNAL_STREAM naming another stream: no prefix"
OTHER="$TEST_TMP/other"
: > "$OTHER"
JOURNAL_STREAM=$(stat -c '%d:%i' "$OTHER") PEMS_LOG_LEVEL=debug pemsctl migrate >/dev/null \
  2>"$TEST_TMP/plain.log"
assert_eq "" "$(grep -v '^ts=' "$TEST_TMP/plain.log")" "lines start with ts= (stderr is not the journal)"
[ -s "$TEST_TMP/plain.log" ] || fail "pemsctl migrate logged nothing at debug"
JOURNAL_STREAM=garbage PEMS_LOG_LEVEL=debug pemsctl migrate >/dev/null 2>"$TEST_TMP/plain2.log"
assert_eq "" "$(grep -v '^ts=' "$TEST_TMP/plain2.log")" "a malformed JOURNAL_STREAM: no prefix"

finish
