#!/usr/bin/env bash
# pemsctl against the stack's database: output contract, errors, audit rows, queue actions,
# --org by code or id, the reverse of each add (remove, revoke, disable), the default files.
. "$(dirname "$0")/lib.sh"

UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
SUFFIX="$$-$RANDOM"

# ctl ARGS...: sets OUT (stdout), ERR (stderr), RC
ctl() {
  OUT=$(pemsctl "$@" 2>"$TEST_TMP/err" </dev/null)
  RC=$?
  ERR=$(cat "$TEST_TMP/err")
}
lines() { if [ -z "$1" ]; then echo 0; else printf '%s\n' "$1" | wc -l; fi; }
# asserts: exit 0, exactly one line on stdout that is a uuid
assert_id_output() {
  assert_eq 0 "$RC" "$1: exit status ($ERR)"
  assert_eq 1 "$(lines "$OUT")" "$1: one line on stdout"
  assert_match "$UUID_RE" "$OUT" "$1: prints an id"
}
assert_fails() {  # expected-rc stderr-regex message
  assert_eq "$1" "$RC" "$3: exit status"
  assert_eq "" "$OUT" "$3: nothing on stdout"
  assert_match "$2" "$ERR" "$3: stderr"
}
b64url_decode() {
  local s=$1
  s=${s//-/+}; s=${s//_/\/}
  case $(( ${#s} % 4 )) in 2) s="$s==" ;; 3) s="$s=" ;; esac
  printf '%s' "$s" | base64 -d 2>/dev/null
}

test_begin "help"
ctl --help
assert_eq 0 "$RC" "--help exit status"
for c in migrate "org add" "org list" "org remove" "user add" "user list" "user remove" "user revoke" "server add" "server list" "server remove" "server disable" "server enable" "queue list" token status retry cancel; do
  assert_match "$c" "$OUT" "--help lists $c"
done
ctl help
assert_eq 0 "$RC" "help exit status"
assert_match "server add" "$OUT" "help lists commands"
ctl help token
assert_match "--ttl" "$OUT" "help token shows its usage"
ctl org add --help
assert_eq 0 "$RC" "org add --help"
assert_match "--code" "$OUT" "org add --help shows usage"
ctl
assert_eq 2 "$RC" "no command is a usage error"

test_begin "migrate"
# on a database of its own: the shared one is migrated by scripts/stack start
MIG_DB="pems_ctl_$$_$RANDOM"
psql -qtAX "${DATABASE_URL%/*}/postgres" -c "CREATE DATABASE $MIG_DB" >/dev/null
MIG_URL="${DATABASE_URL%/*}/$MIG_DB"
OUT=$(DATABASE_URL=$MIG_URL pemsctl migrate 2>"$TEST_TMP/err"); RC=$?; ERR=$(cat "$TEST_TMP/err")
assert_eq 0 "$RC" "migrate exit status ($ERR)"
assert_eq "$(cd "${PEMS_SQL_DIR}" && { echo schema.sql; ls -1 -- functions/*.sql | LC_ALL=C sort; })" "$OUT" \
  "prints each file applied: the schema, then the functions"
OUT=$(DATABASE_URL=$MIG_URL pemsctl migrate 2>"$TEST_TMP/err"); RC=$?
assert_eq "0|" "$RC|$OUT" "second migrate: exit 0, nothing applied"
psql -qtAX "${DATABASE_URL%/*}/postgres" -c "DROP DATABASE $MIG_DB WITH (FORCE)" >/dev/null

test_begin "org add"
ctl org add --code "ctl-$SUFFIX" --name "pemsctl test org"
assert_id_output "org add"
ORG=$OUT
assert_eq "ctl-$SUFFIX|pemsctl test org" "$(psql_q "SELECT code || '|' || name FROM organizations WHERE id = '$ORG'")" "row stored"
assert_eq "pemsctl|create" "$(psql_q "SELECT actor || '|' || action FROM audit_log WHERE entity_type = 'organizations' AND entity_id = '$ORG'")" "audit row"
ctl org add --code="ctl2-$SUFFIX" --name="second"
assert_id_output "org add --code=C --name=N"
ORG2=$OUT
ctl org add --code "ctl-$SUFFIX" --name "again"
assert_fails 1 "already exists" "duplicate org code"
ctl org add --code "x-$SUFFIX"
assert_fails 2 "missing --name" "org add without --name"
ctl org add --name n
assert_fails 2 "missing --code" "org add without --code"
ctl org add --code c --name n --colour red
assert_fails 2 "unknown option" "org add with an unknown option"
ctl org add --code c --name
assert_fails 2 "needs a value" "option without its value"
ctl org add --code "  " --name n
assert_fails 1 "blank" "blank code"
ctl org frobnicate
assert_fails 2 "unknown command" "unknown subcommand"
ctl frobnicate
assert_fails 2 "unknown command" "unknown command"

test_begin "user add"
ctl user add --username "ann-$SUFFIX" --email "ann@example.com" --org "$ORG" --perm Read,Write,Sync
assert_id_output "user add"
USR=$OUT
assert_eq "{Read,Write,Sync}" "$(psql_q "SELECT permissions FROM user_organizations WHERE user_id = '$USR' AND organization_id = '$ORG'")" "permissions stored"
ctl user add --username "ann-$SUFFIX" --email "ann@example.com" --org "$ORG2" --perm Read
assert_id_output "user add to a second org"
assert_eq "$USR" "$OUT" "the existing user is reused"
assert_eq 2 "$(psql_q "SELECT count(*) FROM user_organizations WHERE user_id = '$USR'")" "two memberships"
ctl user add --username "ann-$SUFFIX" --email "ann@example.com" --org "$ORG" --perm "Read, Admin,Read"
assert_eq "$USR" "$OUT" "same user again"
assert_eq "{Read,Admin}" "$(psql_q "SELECT permissions FROM user_organizations WHERE user_id = '$USR' AND organization_id = '$ORG'")" "permissions replaced, duplicates dropped"
assert_eq 1 "$(psql_q "SELECT count(*) FROM users WHERE username = 'ann-$SUFFIX'")" "one user row"
assert_eq "pemsctl|update|{\"permissions\": [\"Read\", \"Write\", \"Sync\"]}|{\"permissions\": [\"Read\", \"Admin\"]}" \
  "$(psql_q "SELECT actor || '|' || action || '|' || before::text || '|' || after::text FROM audit_log
             WHERE entity_type = 'user_organizations' AND entity_id = '$USR' AND organization_id = '$ORG'
             ORDER BY id DESC LIMIT 1")" "membership change audited with before/after"
ctl user add --username "bob-$SUFFIX" --email "bob@example.com" --org "$ORG" --perm Read,Fly
assert_fails 2 "unknown permission 'Fly'" "unknown permission"
assert_eq 0 "$(psql_q "SELECT count(*) FROM users WHERE username = 'bob-$SUFFIX'")" "no user created on a bad permission"
ctl user add --username "bob-$SUFFIX" --email "bob@example.com" --org "$ORG" --perm ""
assert_fails 2 "perm" "empty permission list"
ctl user add --username "bob-$SUFFIX" --email "bob@example.com" --org 00000000-0000-0000-0000-000000000000 --perm Read
assert_fails 1 "organization .* not found" "unknown organization"
assert_eq 0 "$(psql_q "SELECT count(*) FROM users WHERE username = 'bob-$SUFFIX'")" "no user created for an unknown org"
ctl user add --username "bob-$SUFFIX" --email "bob@example.com" --org not-a-code --perm Read
assert_fails 1 "organization 'not-a-code' not found" "an organization code that does not exist"
ctl user add --username "bob-$SUFFIX" --email "bob" --org "$ORG" --perm Read
assert_fails 2 "email" "bad email"
ctl user add --username "bob-$SUFFIX" --org "$ORG" --perm Read
assert_fails 2 "missing --email" "missing email"

test_begin "server add"
PASSWORD="pw-$SUFFIX-Secret!"
ctl server add --org "$ORG" --url "http://127.0.0.1:18080/t/ctl-$SUFFIX" --user pemsuser --password "$PASSWORD" --rps 7
assert_id_output "server add"
SRV=$OUT
assert_eq "http://127.0.0.1:18080/t/ctl-$SUFFIX|basic|pemsuser|7|true" \
  "$(psql_q "SELECT base_url || '|' || auth_type || '|' || username || '|' || rate_limit_rps || '|' || write_enabled FROM api_servers WHERE id = '$SRV'")" "server row"
assert_eq 0 "$(psql_q "SELECT position(convert_to('$PASSWORD', 'UTF8') in credentials_enc) FROM api_servers WHERE id = '$SRV'")" "no plaintext password in credentials_enc"
assert_eq $((12 + ${#PASSWORD} + 16)) "$(psql_q "SELECT octet_length(credentials_enc) FROM api_servers WHERE id = '$SRV'")" "sealed as nonce || ciphertext || tag"
assert_eq 0 "$(psql_q "SELECT count(*) FROM audit_log WHERE before::text LIKE '%$PASSWORD%' OR after::text LIKE '%$PASSWORD%'")" "password not in the audit log"
assert_eq 1 "$(psql_q "SELECT count(*) FROM audit_log WHERE entity_type = 'api_servers' AND entity_id = '$SRV' AND action = 'create'")" "audit row"
SEALED1=$(psql_q "SELECT encode(credentials_enc, 'hex') FROM api_servers WHERE id = '$SRV'")
ctl server add --org "$ORG" --url "https://pems.example.com/api" --user pemsuser --password "$PASSWORD" --read-only
assert_fails 1 "already has a PEMS server \(http://127.0.0.1:18080/t/ctl-$SUFFIX\); --replace replaces it" \
  "a second server add without --replace"
assert_eq "http://127.0.0.1:18080/t/ctl-$SUFFIX|7|$SEALED1" \
  "$(psql_q "SELECT base_url || '|' || rate_limit_rps || '|' || encode(credentials_enc, 'hex') FROM api_servers WHERE organization_id = '$ORG'")" \
  "the refused add changed nothing"
assert_eq 0 "$(psql_q "SELECT count(*) FROM audit_log WHERE entity_type = 'api_servers' AND entity_id = '$SRV' AND action = 'update'")" \
  "no audit row for the refused add"
ctl server add --org "$ORG" --url "https://pems.example.com/api" --user pemsuser --password "$PASSWORD" --read-only --replace
assert_id_output "server add --replace"
assert_eq "$SRV" "$OUT" "one server per organization: replaced in place"
assert_eq "https://pems.example.com/api|10|false" \
  "$(psql_q "SELECT base_url || '|' || rate_limit_rps || '|' || write_enabled FROM api_servers WHERE organization_id = '$ORG'")" "replaced values, default rps, read-only"
assert_ne "$SEALED1" "$(psql_q "SELECT encode(credentials_enc, 'hex') FROM api_servers WHERE id = '$SRV'")" "a fresh nonce each time"
OUT=$(printf '%s\n' "$PASSWORD" | pemsctl server add --org "$ORG2" --url http://127.0.0.1:18080/t/x --user u --password - 2>"$TEST_TMP/err"); RC=$?
assert_eq 0 "$RC" "password from stdin ($(cat "$TEST_TMP/err"))"
assert_eq $((12 + ${#PASSWORD} + 16)) "$(psql_q "SELECT octet_length(credentials_enc) FROM api_servers WHERE organization_id = '$ORG2'")" "stdin password without its newline"
ctl server add --org "$ORG2" --url http://127.0.0.1:18080/t/x --api-key "key-$SUFFIX" --replace
assert_id_output "server add with an api key"
assert_eq "api_key" "$(psql_q "SELECT auth_type FROM api_servers WHERE organization_id = '$ORG2'")" "auth type api_key"
ctl server add --org "$ORG" --url http://x --user u
assert_fails 2 "missing --password" "server add without a password"
ctl server add --org "$ORG" --url ftp://x --user u --password p
assert_fails 2 "http" "non-http URL"
ctl server add --org "$ORG" --url http://x --user u --password p --rps 0
assert_fails 2 "rps" "rps 0"
ctl server add --org "$ORG" --url http://x --user u --password p --rps ten
assert_fails 2 "rps" "rps not a number"
ctl server add --org 00000000-0000-0000-0000-000000000000 --url http://x --user u --password p
assert_fails 1 "not found" "server for an unknown org"
OUT=$(env -u ENCRYPTION_KEY pemsctl server add --org "$ORG" --url http://x --user u --password p 2>"$TEST_TMP/err"); RC=$?; ERR=$(cat "$TEST_TMP/err")
assert_fails 1 "ENCRYPTION_KEY" "server add without ENCRYPTION_KEY"

test_begin "two server adds at once: one wins, the other refuses"
ORG3=$(pemsctl org add --code "race-$SUFFIX" --name race 2>/dev/null)
for n in 1 2; do
  pemsctl server add --org "$ORG3" --url "http://127.0.0.1:18080/t/race$n" --user u --password p \
    >"$TEST_TMP/race$n.out" 2>"$TEST_TMP/race$n.err" &
done
wait
assert_eq 1 "$(cat "$TEST_TMP"/race[12].out | grep -c .)" "one id printed"
assert_eq 1 "$(cat "$TEST_TMP"/race[12].err | grep -c 'already has a PEMS server')" "the other refused"
assert_eq "$(cat "$TEST_TMP"/race[12].out)" "$(psql_q "SELECT id FROM api_servers WHERE organization_id = '$ORG3'")" \
  "the server is the winner's"

test_begin "org list, user list, server list"
ctl org list
assert_eq 0 "$RC" "org list exit status ($ERR)"
assert_eq "$(printf 'id\tcode\tname\tcreatedAt')" "$(head -n 1 <<<"$OUT")" "org list header"
assert_eq "$ORG	ctl-$SUFFIX" "$(awk -F'\t' -v c="ctl-$SUFFIX" '$2 == c {print $1 "\t" $2}' <<<"$OUT")" \
  "org list: find an organization's id from its code"
assert_eq "$(psql_q "SELECT count(*) FROM organizations")" "$(($(lines "$OUT") - 1))" "one row per organization"
assert_eq 4 "$(awk -F'\t' '{print NF}' <<<"$OUT" | sort -u)" "four fields on every line"
ctl org list --json
assert_eq "$ORG" "$(jq -r --arg c "ctl-$SUFFIX" '.[] | select(.code == $c) | .id' <<<"$OUT")" "org list --json"
ctl user list --org "$ORG"
assert_eq "$(printf 'id\tusername\temail\torganizationId\torganizationCode\tpermissions')" \
  "$(head -n 1 <<<"$OUT")" "user list header"
assert_eq "$USR	ann-$SUFFIX	ann@example.com	$ORG	ctl-$SUFFIX	Read,Admin" \
  "$(grep "ann-$SUFFIX" <<<"$OUT")" "user list --org: the membership and its permissions"
assert_eq "$(psql_q "SELECT count(*) FROM user_organizations WHERE organization_id = '$ORG'")" "$(($(lines "$OUT") - 1))" \
  "only the organization's members"
ctl user list --json
assert_eq '["Read","Admin"]' "$(jq -c --arg o "$ORG" --arg u "ann-$SUFFIX" '.[] | select(.username == $u and .organizationId == $o) | .permissions' <<<"$OUT")" \
  "user list --json: permissions as an array"
ctl user list --org nope
assert_fails 1 "not found" "user list of an organization code that does not exist"
ctl server list --org "$ORG"
assert_eq 0 "$RC" "server list exit status ($ERR)"
assert_eq 2 "$(lines "$OUT")" "header and one server"
assert_eq "$SRV|$ORG|ctl-$SUFFIX|https://pems.example.com/api|basic|pemsuser|10||false" \
  "$(tail -n 1 <<<"$OUT" | cut -f1-9 | tr '\t' '|')" "server list row (no --max-in-flight: empty)"
ctl server list --json
assert_eq "false 10 null" "$(jq -r --arg s "$SRV" '.[] | select(.id == $s) | "\(.writeEnabled) \(.rateLimitRps) \(.maxInFlight)"' <<<"$OUT")" \
  "server list --json: typed values"
ctl server add --org "$ORG2" --url http://127.0.0.1:18080/t/x --api-key "key-$SUFFIX" --max-in-flight 7 --replace
ctl server list --org "$ORG2" --json
assert_eq 7 "$(jq -r '.[0].maxInFlight' <<<"$OUT")" "server list: the --max-in-flight given"
assert_eq "" "$(grep -e "$PASSWORD" -e "key-$SUFFIX" <<<"$OUT")" "no credentials listed"
assert_eq "" "$(jq -r '.[] | keys[]' <<<"$OUT" | sort -u | grep -i -e cred -e password -e secret)" "no credential fields"

test_begin "token"
ctl token --user "$USR"
assert_eq 0 "$RC" "token exit status ($ERR)"
assert_eq 1 "$(lines "$OUT")" "token: one line"
assert_match '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' "$OUT" "token is a JWS"
TOKEN_OUT=$OUT
IFS=. read -r JH JP JS <<<"$TOKEN_OUT"
HEADER=$(b64url_decode "$JH")
PAYLOAD=$(b64url_decode "$JP")
assert_eq "HS256" "$(printf '%s' "$HEADER" | jq -r .alg)" "alg HS256"
assert_eq "$USR" "$(printf '%s' "$PAYLOAD" | jq -r .sub)" "sub is the user id"
NOW=$(date +%s)
EXP=$(printf '%s' "$PAYLOAD" | jq -r .exp)
assert_ge "$EXP" $((NOW + 3590)) "default ttl 3600 (lower bound)"
assert_le "$EXP" $((NOW + 3610)) "default ttl 3600 (upper bound)"
SIG=$(printf '%s.%s' "$JH" "$JP" | openssl dgst -sha256 -hmac "$JWT_SECRET" -binary | base64 | tr '+/' '-_' | tr -d '=\n')
assert_eq "$SIG" "$JS" "signed with JWT_SECRET"
ctl token --user "$USR" --ttl 120
P2=$(b64url_decode "$(printf '%s' "$OUT" | cut -d. -f2)")
assert_eq 120 $(( $(printf '%s' "$P2" | jq -r .exp) - $(printf '%s' "$P2" | jq -r .iat) )) "--ttl sets exp - iat"
ctl token --user 00000000-0000-0000-0000-000000000000
assert_fails 1 "not found" "token for an unknown user"
ctl token --user "$USR" --ttl -5
assert_fails 2 "ttl" "negative ttl"
ctl token
assert_fails 2 "missing --user" "token without --user"
OUT=$(env -u JWT_SECRET pemsctl token --user "$USR" 2>"$TEST_TMP/err"); RC=$?; ERR=$(cat "$TEST_TMP/err")
assert_fails 1 "JWT_SECRET" "token without JWT_SECRET"

test_begin "configuration"
OUT=$(env -u DATABASE_URL pemsctl org add --code "y-$SUFFIX" --name y 2>"$TEST_TMP/err"); RC=$?; ERR=$(cat "$TEST_TMP/err")
assert_fails 1 "DATABASE_URL" "DATABASE_URL missing"
OUT=$(DATABASE_URL=postgresql://pems@127.0.0.1:1/pems pemsctl status 2>"$TEST_TMP/err"); RC=$?; ERR=$(cat "$TEST_TMP/err")
assert_fails 1 "connect" "database unreachable"
printf 'DATABASE_URL=%s\n' "$DATABASE_URL" > "$TEST_TMP/pems.conf"
OUT=$(env -u DATABASE_URL pemsctl -c "$TEST_TMP/pems.conf" org add --code "cfg-$SUFFIX" --name cfg 2>"$TEST_TMP/err"); RC=$?; ERR=$(cat "$TEST_TMP/err")
assert_id_output "settings from -c FILE"
ctl -c "$TEST_TMP/missing.conf" status
assert_fails 1 "missing.conf" "missing config file"
printf '# a comment\n\n  DATABASE_URL = "%s"  \n' "$DATABASE_URL" > "$TEST_TMP/quoted.conf"
OUT=$(env -u DATABASE_URL pemsctl -c "$TEST_TMP/quoted.conf" org add --code "cfgq-$SUFFIX" --name cfgq 2>"$TEST_TMP/err"); RC=$?; ERR=$(cat "$TEST_TMP/err")
assert_id_output "comments, blank lines, spaces and a quoted value"
printf 'DATABASE_URL\n' > "$TEST_TMP/bad.conf"
ctl -c "$TEST_TMP/bad.conf" status
assert_fails 1 "expected KEY=value" "a line without ="

# a mirror record, a modification and queue items in our own organization
mk_item() {  # mk_item ITEM_STATUS MOD_STATUS -> prints the queue item id
  local pfa="PFA-$RANDOM$RANDOM"
  psql_q "INSERT INTO pfa_mirror (organization_id, pfa_id, version, data) VALUES ('$ORG', '$pfa', 2, '{\"category\":\"Crane\"}');
          WITH m AS (INSERT INTO pfa_modification (organization_id, pfa_id, operation, base_version, delta, status, modified_by)
                     VALUES ('$ORG', '$pfa', 'update', 2, '{\"model\":\"Z\"}', '$2', '$USR') RETURNING id)
          INSERT INTO pfa_write_queue (organization_id, modification_id, status, attempts, deferrals, scheduled_at,
                                       last_error, last_http_status, completed_at)
          SELECT '$ORG', id, '$1', 4, 3, now() + interval '1 hour', 'HTTP 503', 503,
                 CASE WHEN '$1' = 'completed' THEN now() END FROM m RETURNING id"
}
item_state() { psql_q "SELECT q.status || '|' || q.attempts || '|' || q.deferrals || '|' || m.status FROM pfa_write_queue q JOIN pfa_modification m ON m.id = q.modification_id WHERE q.id = '$1'"; }
mod_of() { psql_q "SELECT modification_id FROM pfa_write_queue WHERE id = '$1'"; }

test_begin "retry"
IT_FAILED=$(mk_item failed sync_error)
assert_match "$UUID_RE" "$IT_FAILED" "fixture queue item"
wake_listen
ctl retry "$IT_FAILED"
assert_id_output "retry"
wake_heard "$ORG" "the worker is woken: the item is due now"
assert_eq "$(mod_of "$IT_FAILED")" "$OUT" "retry prints the modification id"
assert_eq "pending|0|0|queued" "$(item_state "$IT_FAILED")" "failed -> pending, attempts and deferrals reset, modification queued"
assert_eq t "$(psql_q "SELECT scheduled_at <= now() AND last_error = 'HTTP 503' FROM pfa_write_queue WHERE id = '$IT_FAILED'")" "due now, last error kept"
assert_eq 2 "$(psql_q "SELECT count(*) FROM audit_log WHERE actor = 'pemsctl' AND action = 'retry' AND entity_id IN ('$IT_FAILED', '$(mod_of "$IT_FAILED")')")" "audit rows for item and modification"
assert_eq "failed|pending" "$(psql_q "SELECT (before->>'status') || '|' || (after->>'status') FROM audit_log WHERE entity_type = 'pfa_write_queue' AND entity_id = '$IT_FAILED'")" "audit before/after"
ctl retry "$IT_FAILED"
assert_fails 1 "wrong state" "retry of a pending item"
assert_eq "pending|0|0|queued" "$(item_state "$IT_FAILED")" "unchanged by the refused retry"
DONE=$(mk_item completed synced)
ctl retry "$DONE"
assert_fails 1 "wrong state" "retry of a completed item"
GONE=$(mk_item failed discarded)
ctl retry "$GONE"
assert_fails 1 "wrong state" "retry of an item whose modification was discarded"
ctl retry 00000000-0000-0000-0000-000000000000
assert_fails 1 "not found" "retry of an unknown item"
ctl retry not-a-uuid
assert_fails 1 "not found" "retry of a malformed id"
ctl retry
assert_fails 2 "missing argument" "retry without an id"
ctl retry "$IT_FAILED" "$DONE"
assert_fails 2 "unexpected argument" "retry with two ids"

test_begin "cancel"
PENDING=$(mk_item pending queued)
ctl cancel "$PENDING"
assert_id_output "cancel"
assert_eq "$(mod_of "$PENDING")" "$OUT" "cancel prints the modification id"
assert_eq "cancelled|4|3|draft" "$(item_state "$PENDING")" "pending -> cancelled, modification draft"
assert_eq "pending|cancelled" "$(psql_q "SELECT (before->>'status') || '|' || (after->>'status') FROM audit_log WHERE entity_type = 'pfa_write_queue' AND entity_id = '$PENDING'")" "audit before/after"
assert_eq "queued|draft" "$(psql_q "SELECT (before->>'status') || '|' || (after->>'status') FROM audit_log WHERE entity_type = 'pfa_modification' AND entity_id = '$(mod_of "$PENDING")'")" "modification audit"
ctl cancel "$PENDING"
assert_fails 1 "wrong state" "cancel of a cancelled item"
ctl cancel "$DONE"
assert_fails 1 "wrong state" "cancel of a completed item"
PROC=$(mk_item failed sync_error)
psql_q "UPDATE pfa_write_queue SET status = 'processing', locked_by = 'w1', locked_until = now() + interval '30 s' WHERE id = '$PROC'"
ctl cancel "$PROC"
assert_fails 1 "wrong state" "cancel of an item a worker holds"
assert_eq "processing|4|3|sync_error" "$(item_state "$PROC")" "the worker's item is untouched"
ctl cancel 00000000-0000-0000-0000-000000000000
assert_fails 1 "not found" "cancel of an unknown item"

test_begin "cancel waits for a worker's lock and sees its claim"
RACE=$(mk_item pending queued)
# a "worker" claims the item in an open transaction; cancel must block, then see processing
( psql -qtAX "$DATABASE_URL" -c "BEGIN; SELECT 1 FROM pfa_write_queue WHERE id = '$RACE' FOR UPDATE;
    UPDATE pfa_write_queue SET status = 'processing', locked_by = 'w2', locked_until = now() + interval '30 s' WHERE id = '$RACE';
    SELECT pg_sleep(1); COMMIT;" >/dev/null ) &
CLAIM=$!
sleep 0.3
ctl cancel "$RACE"
wait $CLAIM
assert_fails 1 "wrong state" "cancel after a concurrent claim"
assert_eq "processing|4|3|queued" "$(item_state "$RACE")" "the claim is not overwritten"

test_begin "queue list"
QL_ORG=$(pemsctl org add --code "ql-$SUFFIX" --name "queue list org" 2>/dev/null)
ORG_SAVE=$ORG; ORG=$QL_ORG
QL_FAILED=$(mk_item failed sync_error)
QL_PENDING=$(mk_item pending queued)
ORG=$ORG_SAVE
psql_q "UPDATE pfa_write_queue SET last_error = E'PEMS said \"no\"\tthen\nmore \\\\ text' WHERE id = '$QL_FAILED'"
ctl queue list --org "$QL_ORG"
assert_eq 0 "$RC" "queue list exit status ($ERR)"
assert_eq "$(printf 'id\torganizationId\torganizationCode\tpfaId\tmodificationId\tstatus\tattempts\tscheduledAt\tupdatedAt\tlastHttpStatus\tlastError')" \
  "$(head -n 1 <<<"$OUT")" "queue list header"
assert_eq 3 "$(lines "$OUT")" "header and the organization's two items"
row=$(grep "^$QL_FAILED" <<<"$OUT")
assert_eq "$QL_FAILED|$QL_ORG|ql-$SUFFIX|$(psql_q "SELECT m.pfa_id FROM pfa_write_queue q JOIN pfa_modification m ON m.id = q.modification_id WHERE q.id = '$QL_FAILED'")|$(mod_of "$QL_FAILED")|failed|4" \
  "$(cut -f1-7 <<<"$row" | tr '\t' '|')" "the failed item: ids, pfaId, status, attempts"
assert_eq 11 "$(awk -F'\t' '{print NF}' <<<"$row")" "a tab inside the error does not split the row"
assert_eq 'PEMS said "no"\tthen\nmore \\ text' "$(cut -f11 <<<"$row")" "last error, escaped as COPY text"
assert_eq 503 "$(cut -f10 <<<"$row")" "last HTTP status"
ctl queue list --org "$QL_ORG" --status failed --json
assert_eq "$QL_FAILED" "$(jq -r '.[].id' <<<"$OUT")" "--status failed: only the failed item"
assert_eq "$(printf 'PEMS said "no"\tthen\nmore \\ text')" "$(jq -r '.[0].lastError' <<<"$OUT")" "--json: last error as it is"
assert_eq 4 "$(jq -r '.[0].attempts' <<<"$OUT")" "--json: attempts is a number"
ctl queue list --org "$QL_ORG" --status pending --limit 1
assert_eq "$QL_PENDING" "$(tail -n 1 <<<"$OUT" | cut -f1)" "--status pending"
ctl queue list --org "$QL_ORG" --limit 1
assert_eq 2 "$(lines "$OUT")" "--limit 1: one row"
assert_match "more than 1 rows" "$ERR" "--limit: says there are more"
ctl queue list --org "$QL_ORG" --limit 2
assert_eq "" "$ERR" "no note when everything fits"
ctl queue list --status broken
assert_fails 2 "unknown --status 'broken'" "unknown status"
ctl queue list --limit 0
assert_fails 2 "limit" "--limit 0"

test_begin "status"
ST_ORG=$(pemsctl org add --code "st-$SUFFIX" --name "status org" 2>/dev/null)
ORG_SAVE=$ORG; ORG=$ST_ORG
mk_item pending queued >/dev/null; mk_item pending queued >/dev/null
mk_item failed sync_error >/dev/null
mk_item completed synced >/dev/null
ORG=$ORG_SAVE
ctl status --org "$ST_ORG"
assert_eq 0 "$RC" "status --org exit status ($ERR)"
assert_match "pending=2 processing=0 completed=1 failed=1 cancelled=0" "$OUT" "queue depth by status"
assert_match "st-$SUFFIX" "$OUT" "names the organization"
assert_match "last run:" "$OUT" "last run line"
assert_match "next run:" "$OUT" "next run line"
assert_match "workers:" "$OUT" "heartbeats section"
ST_FAILED=$(psql_q "SELECT id FROM pfa_write_queue WHERE organization_id = '$ST_ORG' AND status = 'failed'")
assert_match "failed items: +1 " "$OUT" "failed items line"
assert_match "  $ST_FAILED pfa=PFA-[0-9]+ org=st-$SUFFIX attempts=4 http=503 at=[0-9T:.-]+Z error=\"HTTP 503\"" "$OUT" \
  "status names the failed item"
ctl status --org "$ST_ORG" --json
assert_eq 0 "$RC" "status --json exit status"
assert_eq "2 0 1 1 0" "$(printf '%s' "$OUT" | jq -r '.queue | "\(.pending) \(.processing) \(.completed) \(.failed) \(.cancelled)"')" "JSON queue counts"
assert_eq "2 1 1" "$(printf '%s' "$OUT" | jq -r '.modifications | "\(.queued) \(.sync_error) \(.synced)"')" "JSON modification counts"
assert_eq "array" "$(printf '%s' "$OUT" | jq -r '.workers | type')" "JSON workers list"
assert_eq "0" "$(printf '%s' "$OUT" | jq -r '.due.dueNow')" "nothing due (scheduled in an hour)"
assert_eq "$ST_FAILED 4 HTTP 503" "$(printf '%s' "$OUT" | jq -r '.failedItems[] | "\(.id) \(.attempts) \(.lastError)"')" \
  "JSON failedItems"
HB="ctl-test-$SUFFIX"
psql_q "INSERT INTO worker_heartbeats (worker_id, hostname, pid, last_run_at, next_sync_at) VALUES ('$HB', 'testhost', 4242, now(), now() + interval '1 min')"
ctl status --json
assert_eq 0 "$RC" "status (all organizations)"
assert_eq "testhost" "$(printf '%s' "$OUT" | jq -r --arg w "$HB" '.workers[] | select(.workerId == $w) | .hostname')" "heartbeat listed"
assert_match '^[0-9T:.-]+Z$' "$(printf '%s' "$OUT" | jq -r '.nextRunAt')" "next run from the heartbeats"
ctl status
assert_match "$HB host=testhost pid=4242" "$OUT" "text lists the heartbeat"
psql_q "DELETE FROM worker_heartbeats WHERE worker_id = '$HB'" >/dev/null
ctl status --org 00000000-0000-0000-0000-000000000000
assert_fails 1 "not found" "status of an unknown org"
ctl status --org nope
assert_fails 1 "not found" "status of an organization code that does not exist"

test_begin "--org takes a code or an id"
CO_CODE="code-$SUFFIX"
ctl org add --code "$CO_CODE" --name "by code"
CO_ORG=$OUT
ctl user add --username "cody-$SUFFIX" --email c@example.com --org "$CO_CODE" --perm Read,Write
assert_id_output "user add --org CODE"
CODY=$OUT
assert_eq "{Read,Write}" "$(psql_q "SELECT permissions FROM user_organizations WHERE user_id = '$CODY' AND organization_id = '$CO_ORG'")" \
  "the membership is in the organization of that code"
ctl user list --org "$CO_CODE"
assert_eq 0 "$RC" "user list --org CODE ($ERR)"
assert_match "cody-$SUFFIX" "$OUT" "user list --org CODE lists its member"
ctl server add --org "$CO_CODE" --url "http://127.0.0.1:18080/t/code-$SUFFIX" --user u --password p
assert_id_output "server add --org CODE"
CO_SERVER=$OUT
ctl server list --org "$CO_ORG"
assert_match "$CO_SERVER" "$OUT" "server list --org ID"
ctl status --org "$CO_CODE"
assert_eq 0 "$RC" "status --org CODE ($ERR)"
ctl queue list --org "$CO_CODE"
assert_eq 0 "$RC" "queue list --org CODE ($ERR)"
# a code that looks like an id still names its organization
UUIDISH=$(cat /proc/sys/kernel/random/uuid)
ctl org add --code "$UUIDISH" --name "uuid-shaped code"
UO=$OUT
ctl server list --org "$UUIDISH"
assert_eq 0 "$RC" "a uuid-shaped code ($ERR)"

test_begin "server disable | enable --org ORG"
ctl server disable --org "$CO_CODE"
assert_id_output "server disable"
assert_eq "$CO_SERVER" "$OUT" "prints the server's id"
assert_eq "f" "$(psql_q "SELECT write_enabled FROM api_servers WHERE id = '$CO_SERVER'")" "write_enabled is false"
assert_eq "pemsctl|disable|true|false" \
  "$(psql_q "SELECT actor || '|' || action || '|' || (before->>'writeEnabled') || '|' || (after->>'writeEnabled') FROM audit_log WHERE entity_type = 'api_servers' AND entity_id = '$CO_SERVER' ORDER BY id DESC LIMIT 1")" \
  "audit row: disable, before and after"
assert_eq "$CO_ORG" "$(psql_q "SELECT organization_id FROM audit_log WHERE entity_id = '$CO_SERVER' ORDER BY id DESC LIMIT 1")" \
  "audit row: the organization's id"
ctl server enable --org "$CO_ORG"
assert_id_output "server enable --org ID"
assert_eq "t" "$(psql_q "SELECT write_enabled FROM api_servers WHERE id = '$CO_SERVER'")" "write_enabled is true again"
assert_eq "enable" "$(psql_q "SELECT action FROM audit_log WHERE entity_id = '$CO_SERVER' ORDER BY id DESC LIMIT 1")" "audit row: enable"
ctl server disable --org "no-such-$SUFFIX"
assert_fails 1 "not found" "disable for an unknown organization"
ctl server disable --org "$UUIDISH"
assert_fails 1 "no PEMS server" "disable for an organization without a server"
ctl server disable
assert_fails 2 "missing --org" "disable without --org"

test_begin "user revoke --user USER_ID --org ORG [--perm P]"
ctl user revoke --user "$CODY" --org "$CO_CODE" --perm Write
assert_id_output "user revoke --perm Write"
assert_eq "$CODY" "$OUT" "prints the user's id"
assert_eq "{Read}" "$(psql_q "SELECT permissions FROM user_organizations WHERE user_id = '$CODY' AND organization_id = '$CO_ORG'")" \
  "Write is gone, Read stays"
assert_eq 'pemsctl|revoke|["Read", "Write"]|["Read"]' \
  "$(psql_q "SELECT actor || '|' || action || '|' || (before->'permissions')::text || '|' || (after->'permissions')::text FROM audit_log WHERE entity_type = 'user_organizations' AND entity_id = '$CODY' ORDER BY id DESC LIMIT 1")" \
  "audit row: the permissions before and after"
ctl user revoke --user "$CODY" --org "$CO_CODE" --perm Fly
assert_fails 2 "unknown permission" "an unknown permission"
ctl user revoke --user "$CODY" --org "$CO_ORG"
assert_id_output "user revoke without --perm"
assert_eq 0 "$(psql_q "SELECT count(*) FROM user_organizations WHERE user_id = '$CODY' AND organization_id = '$CO_ORG'")" \
  "the membership is gone"
assert_eq "revoke|" "$(psql_q "SELECT action || '|' || coalesce(after::text, '') FROM audit_log WHERE entity_id = '$CODY' ORDER BY id DESC LIMIT 1")" \
  "audit row: nothing after"
ctl user revoke --user "$CODY" --org "$CO_ORG"
assert_fails 1 "not a member" "revoke of a membership that is not there"
ctl user revoke --user nope --org "$CO_ORG"
assert_fails 2 "uuid" "revoke with a malformed user id"

test_begin "user remove USER_ID"
ctl user add --username "gone-$SUFFIX" --email g@example.com --org "$CO_CODE" --perm Read
GONE=$OUT
ctl user remove "$GONE"
assert_id_output "user remove"
assert_eq 0 "$(psql_q "SELECT count(*) FROM users WHERE id = '$GONE'")" "the user is gone"
assert_eq 0 "$(psql_q "SELECT count(*) FROM user_organizations WHERE user_id = '$GONE'")" "and their memberships"
assert_eq "delete|gone-$SUFFIX|Read" \
  "$(psql_q "SELECT action || '|' || (before->>'username') || '|' || (before->'organizations'->0->'permissions'->>0) FROM audit_log WHERE entity_type = 'users' AND entity_id = '$GONE' ORDER BY id DESC LIMIT 1")" \
  "audit row: the user and memberships before"
ctl user remove "$GONE"
assert_fails 1 "not found" "remove a user that is not there"
ctl user remove not-a-uuid
assert_fails 2 "uuid" "remove with a malformed id"
# a user whose modifications name them stays
psql_q "INSERT INTO pfa_mirror (organization_id, pfa_id, version, data) VALUES ('$CO_ORG', 'RM-1', 1, '{}')" >/dev/null
psql_q "INSERT INTO pfa_modification (organization_id, pfa_id, operation, base_version, delta, status, modified_by) VALUES ('$CO_ORG', 'RM-1', 'update', 1, '{\"a\":1}', 'draft', '$CODY')" >/dev/null \
  || fail "could not insert a modification by the user"
ctl user remove "$CODY"
assert_fails 1 "modifications" "remove a user who made modifications"
assert_eq 1 "$(psql_q "SELECT count(*) FROM users WHERE id = '$CODY'")" "the user stays"

test_begin "server remove --org ORG"
ctl server remove --org "$CO_CODE"
assert_id_output "server remove"
assert_eq "$CO_SERVER" "$OUT" "prints the server's id"
assert_eq 0 "$(psql_q "SELECT count(*) FROM api_servers WHERE id = '$CO_SERVER'")" "the server is gone"
assert_eq "delete|http://127.0.0.1:18080/t/code-$SUFFIX" \
  "$(psql_q "SELECT action || '|' || (before->>'baseUrl') FROM audit_log WHERE entity_type = 'api_servers' AND entity_id = '$CO_SERVER' ORDER BY id DESC LIMIT 1")" \
  "audit row: the server before"
assert_eq 0 "$(psql_q "SELECT count(*) FROM audit_log WHERE entity_id = '$CO_SERVER' AND before::text ~ 'credential|password'")" \
  "no credential in the audit log"
ctl server remove --org "$CO_CODE"
assert_fails 1 "no PEMS server" "remove a server that is not there"

test_begin "org remove ORG"
ctl org remove "$CO_CODE"
assert_id_output "org remove CODE"
assert_eq "$CO_ORG" "$OUT" "prints its id"
assert_eq 0 "$(psql_q "SELECT count(*) FROM organizations WHERE id = '$CO_ORG'")" "the organization is gone"
assert_eq 0 "$(psql_q "SELECT count(*) FROM pfa_modification WHERE organization_id = '$CO_ORG'")" "its modifications went with it"
assert_eq "delete|$CO_CODE" \
  "$(psql_q "SELECT action || '|' || (before->>'code') FROM audit_log WHERE entity_type = 'organizations' AND entity_id = '$CO_ORG' ORDER BY id DESC LIMIT 1")" \
  "audit row: the organization before"
assert_ge "$(psql_q "SELECT count(*) FROM audit_log WHERE organization_id = '$CO_ORG'")" 4 "its audit history stays"
ctl org remove "$UO"
assert_id_output "org remove ID"
ctl org remove "$CO_CODE"
assert_fails 1 "not found" "remove an organization that is not there"
ctl org remove
assert_fails 2 "missing argument" "org remove without ORG"

test_begin "the configuration files: pems.conf and pems.env by default, the environment wins"
CONF_DIR=$TEST_TMP/etc-pems
mkdir -p "$CONF_DIR"
printf 'PEMS_LOG_LEVEL=warn\n' > "$CONF_DIR/pems.conf"
printf '# as the package writes it\nDATABASE_URL="%s"\nOTHER_VARIABLE=ignored\n' "$DATABASE_URL" > "$CONF_DIR/pems.env"
OUT=$(env -u DATABASE_URL PEMS_CONFIG_DIR="$CONF_DIR" pemsctl org list 2>"$TEST_TMP/err"); RC=$?
assert_eq 0 "$RC" "org list with nothing in the environment but the directory ($(cat "$TEST_TMP/err"))"
assert_match "ctl-$SUFFIX" "$OUT" "it read DATABASE_URL from pems.env"
OUT=$(DATABASE_URL=postgresql://127.0.0.1:1/none PEMS_CONFIG_DIR="$CONF_DIR" pemsctl org list 2>"$TEST_TMP/err"); RC=$?
assert_eq 1 "$RC" "the environment's DATABASE_URL wins over pems.env"
printf 'DATABASE_URL=postgresql://127.0.0.1:1/none\n' > "$CONF_DIR/pems.conf"
OUT=$(env -u DATABASE_URL PEMS_CONFIG_DIR="$CONF_DIR" pemsctl org list 2>"$TEST_TMP/err"); RC=$?
assert_eq 0 "$RC" "pems.env wins over pems.conf, as the unit's EnvironmentFile does ($(cat "$TEST_TMP/err"))"
printf 'NOT_A_SETTING=1\n' > "$TEST_TMP/other.conf"
OUT=$(PEMS_CONFIG_DIR="$CONF_DIR" pemsctl -c "$TEST_TMP/other.conf" org list 2>"$TEST_TMP/err"); RC=$?
assert_eq 1 "$RC" "-c FILE replaces pems.conf (an unknown setting in it is an error)"
assert_match "NOT_A_SETTING" "$(cat "$TEST_TMP/err")" "the message names it"
OUT=$(env -u DATABASE_URL PEMS_CONFIG_DIR="$TEST_TMP/nowhere" pemsctl org list 2>"$TEST_TMP/err"); RC=$?
assert_eq 1 "$RC" "no files, nothing in the environment"
assert_match "DATABASE_URL is required" "$(cat "$TEST_TMP/err")" "names the setting"
chmod 000 "$CONF_DIR/pems.env"
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  OUT=$(env -u DATABASE_URL PEMS_CONFIG_DIR="$CONF_DIR" setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$BUILD_DIR/src/pemsctl" org list 2>"$TEST_TMP/err"); RC=$?
  assert_match "DATABASE_URL is required" "$(cat "$TEST_TMP/err")" "an unreadable pems.env is skipped, not an error"
fi
chmod 600 "$CONF_DIR/pems.env"

finish
