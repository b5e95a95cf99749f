#!/usr/bin/env bash
# The OpenAPI document (src/api/openapi.yaml) and the router's table name the same routes:
# every "METHOD PATTERN" of `pems-fcgi --list-routes` is an operation of the document, and
# every operation of the document is a route. Every operation declares the statuses nginx and
# the router answer on any route. Redocly's linter (tests/openapi, installed by scripts/setup
# when npm is there) finds nothing. Against the stack: statuses the service answers are the
# declared ones.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/integration/lib.sh"

FCGI=$(command -v pems-fcgi || true)
[ -n "$FCGI" ] || FCGI=${BUILD_DIR:-$ROOT/build}/src/pems-fcgi
YAML=$ROOT/src/api/openapi.yaml

test_begin "inputs"
assert_eq 0 "$([ -x "$FCGI" ]; echo $?)" "pems-fcgi is built ($FCGI)"
assert_eq 0 "$([ -f "$YAML" ]; echo $?)" "openapi.yaml exists"

# Router side: METHOD /api/pems/x/:id -> "METHOD /api/pems/x/{id}"
"$FCGI" --list-routes | awk '{ p = $2; gsub(/:[A-Za-z0-9_]+/, "{&}", p); gsub(/\{:/, "{", p);
                               print toupper($1) " " p }' | sort > "$TEST_TMP/router"
# Document side: a path is a 2-space-indented key under `paths:`, its operations 4-space keys
awk '
  /^[^ #]/ { in_paths = ($0 ~ /^paths:/); next }
  in_paths && /^  \/[^ ]*:[ ]*$/ { path = $1; sub(/:$/, "", path); next }
  in_paths && /^    (get|put|post|delete|patch|head|options):/ {
      m = $1; sub(/:$/, "", m); print toupper(m) " " path }
' "$YAML" | sort > "$TEST_TMP/openapi"

test_begin "router has routes"
assert_ge "$(wc -l < "$TEST_TMP/router")" 11 "pems-fcgi --list-routes prints every route"
test_begin "document has operations"
assert_ge "$(wc -l < "$TEST_TMP/openapi")" 11 "openapi.yaml has an operation per route"

test_begin "every route is documented"
while read -r line; do
  if grep -qxF "$line" "$TEST_TMP/openapi"; then pass; else fail "route '$line' is not in openapi.yaml"; fi
done < "$TEST_TMP/router"

test_begin "every documented operation is a route"
while read -r line; do
  if grep -qxF "$line" "$TEST_TMP/router"; then pass; else fail "openapi.yaml operation '$line' is not a route"; fi
done < "$TEST_TMP/openapi"

test_begin "the document is valid YAML with openapi 3"
if command -v python3 >/dev/null && python3 -c 'import yaml' 2>/dev/null; then
  v=$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["openapi"])' "$YAML" 2>&1)
  assert_match '^3\.' "$v" "openapi version"
else
  assert_match '^openapi: 3\.' "$(head -n 1 "$YAML")" "openapi version line"
fi

test_begin "every operation declares what nginx and the router answer on any route"
# PATH METHOD CODE... per operation, from the 8-space response keys of its responses block
awk '
  /^[^ #]/ { in_paths = ($0 ~ /^paths:/) }
  function flush() { if (op != "") print op codes; op = ""; codes = "" }
  in_paths && /^  \/[^ ]*:[ ]*$/ { flush(); path = $1; sub(/:$/, "", path); next }
  in_paths && /^    (get|put|post|delete|patch):/ { flush(); m = $1; sub(/:$/, "", m); op = toupper(m) " " path; sec = 1; next }
  in_paths && /^      security: \[\]/ { codes = codes " public" }
  in_paths && op != "" && /^        .?[0-9][0-9][0-9].?:/ { c = $1; gsub(/[^0-9]/, "", c); codes = codes " " c }
  !in_paths { flush() }
  END { flush() }
' "$YAML" > "$TEST_TMP/declared"
assert_eq "$(wc -l < "$TEST_TMP/openapi")" "$(wc -l < "$TEST_TMP/declared")" "one line per operation"
while read -r method path codes; do
  want="400 405 413 429 500 502 503 504"
  [[ " $codes " == *" public "* ]] || want="$want 401 403"
  for c in $want; do
    if [[ " $codes " == *" $c "* ]]; then pass; else fail "$method $path does not declare $c"; fi
  done
done < "$TEST_TMP/declared"

test_begin "Redocly's linter finds nothing"
LINT_DIR=$ROOT/tests/openapi
if ! command -v npm >/dev/null; then
  echo "test_openapi: npm not installed: the lint is skipped" >&2
elif [ ! -x "$LINT_DIR/node_modules/.bin/redocly" ]; then
  fail "tests/openapi/node_modules missing: scripts/setup runs npm ci there"
else
  out=$(cd "$LINT_DIR" && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true timeout 300 \
        ./node_modules/.bin/redocly lint "$YAML" --config redocly.yaml --format stylish 2>&1)
  rc=$?
  assert_eq 0 "$rc" "redocly lint exit status ($(grep -E 'error|warning' <<<"$out" | head -n 5))"
  assert_match "is valid" "$out" "redocly says valid"
  # the check can fail: the nullable without a type it once had is refused
  sed 's|^\(          \)oneOf:$|\1nullable: true\n\1allOf: [{ $ref: "#/components/schemas/QueueItem" }]\n\1x-was-oneOf:|' \
    "$YAML" > "$TEST_TMP/broken.yaml"
  out=$(cd "$LINT_DIR" && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true timeout 300 \
        ./node_modules/.bin/redocly lint "$TEST_TMP/broken.yaml" --config redocly.yaml 2>&1)
  assert_ne 0 "$?" "a document with a broken schema fails the lint"
fi

if [ -n "${PEMS_URL:-}" ] && curl -sk -o /dev/null --max-time 5 "$PEMS_URL/api/pems/health"; then
  # status METHOD PATH [curl args...]: the status the service answers
  status() { local m=$1 p=$2; shift 2; curl -sk -o /dev/null -w '%{http_code}' -X "$m" "$@" "$PEMS_URL$p"; }
  declared() {  # METHOD PATH CODE: the document declares CODE for the operation
    grep -q "^$1 $2 .*\b$3\b" "$TEST_TMP/declared"
  }
  test_begin "the statuses the stack answers are declared"
  ID=00000000-0000-0000-0000-000000000000
  code=$(status PUT /api/pems/write-sync)
  assert_eq 405 "$code" "PUT /write-sync"
  declared POST /api/pems/write-sync 405 && pass || fail "405 of /write-sync not declared"
  allow=$(curl -sk -D - -o /dev/null -X DELETE "$PEMS_URL/api/pems/queue/$ID/retry" | tr -d '\r' | grep -i '^allow:')
  assert_match '^[Aa]llow: .*POST' "$allow" "405 names the path's methods"
  head -c $((1024 * 1024 + 1)) /dev/zero > "$TEST_TMP/big"
  code=$(status POST "/api/pems/queue/$ID/retry" -H 'Content-Type: application/json' --data-binary @"$TEST_TMP/big")
  assert_eq 413 "$code" "a queue action with a body over 1 MiB"
  declared POST "/api/pems/queue/{itemId}/retry" 413 && pass || fail "413 of the queue retry not declared"
  code=$(status GET /api/pems/sync-status)
  assert_eq 401 "$code" "no token"
  declared GET /api/pems/sync-status 401 && pass || fail "401 of /sync-status not declared"
  # a request line nginx cannot parse: 400 in the API's envelope
  out=$(printf 'GET /api/pems/health HTTP/1.1 junk\r\nHost: x\r\n\r\n' \
        | timeout 10 openssl s_client -quiet -connect "${PEMS_URL#https://}" 2>/dev/null | head -c 2000)
  assert_match '^HTTP/1\.1 400' "$out" "nginx: malformed request"
  assert_match '"code":"validation_failed"' "$out" "nginx's 400 is the API's envelope"
  declared GET /api/pems/health 400 && pass || fail "400 of /health not declared"

  # the answers themselves against the document's schemas, with a strict validator (Ajv):
  # a modification before it is queued (queueItem null) and after, lists, an error body
  if [ -x "$LINT_DIR/node_modules/.bin/redocly" ]; then
    test_begin "answers match their schemas (Ajv, strict)"
    . "$ROOT/tests/integration/fixtures.sh"
    (cd "$LINT_DIR" && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
       ./node_modules/.bin/redocly bundle "$YAML" --dereferenced --ext json -o "$TEST_TMP/bundle.json" \
       >/dev/null 2>&1) || fail "redocly bundle"
    # valid METHOD PATH_TEMPLATE STATUS URL_PATH: the answer to GET URL_PATH matches the schema
    valid() {
      local code
      code=$(curl -sk -o "$TEST_TMP/answer.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$PEMS_URL$4")
      assert_eq "$3" "$code" "GET $4"
      out=$(node "$LINT_DIR/validate.js" "$TEST_TMP/bundle.json" "$1" "$2" "$3" < "$TEST_TMP/answer.json" 2>&1)
      assert_eq valid "$out" "$1 $2 $3 matches its schema"
    }
    ORG=$(fx_org oas)
    USR=$(fx_user "$ORG" Read,Write,Sync)
    TOKEN=$(fx_token "$USR")
    fx_mirror "$ORG" OAS-1 1 >/dev/null
    MOD=$(fx_mod "$ORG" OAS-1 "$USR" pending_sync 1 '{"monthlyRate":13000}')
    assert_eq null "$(curl -sk -H "Authorization: Bearer $TOKEN" "$PEMS_URL/api/pems/modifications/$MOD" | jq -c .queueItem)" \
      "not queued yet: queueItem is null"
    valid GET "/api/pems/modifications/{id}" 200 "/api/pems/modifications/$MOD"
    fx_sql "UPDATE pfa_modification SET status = 'queued' WHERE id = :'m'" -v m="$MOD" >/dev/null
    fx_queue "$ORG" "$MOD" failed >/dev/null
    assert_eq object "$(curl -sk -H "Authorization: Bearer $TOKEN" "$PEMS_URL/api/pems/modifications/$MOD" | jq -r '.queueItem | type')" \
      "queued: queueItem is an object"
    valid GET "/api/pems/modifications/{id}" 200 "/api/pems/modifications/$MOD"
    valid GET /api/pems/modifications 200 "/api/pems/modifications?organizationId=$ORG"
    valid GET /api/pems/sync-status 200 "/api/pems/sync-status?organizationId=$ORG"
    valid GET /api/pems/conflicts 200 "/api/pems/conflicts?organizationId=$ORG"
    valid GET "/api/pems/modifications/{id}" 404 "/api/pems/modifications/$ID"
    # the record routes: a record with an open modification, one under a delete, a tombstone
    fx_mirror "$ORG" 'OAS/2' 1 >/dev/null
    fx_mod "$ORG" 'OAS/2' "$USR" pending_sync 1 '{}' delete >/dev/null
    fx_mirror "$ORG" OAS-GONE 1 >/dev/null
    fx_sql "UPDATE pfa_mirror SET deleted = true WHERE organization_id = :'o' AND pfa_id = 'OAS-GONE'" -v o="$ORG" >/dev/null
    valid GET /api/pems/records 200 "/api/pems/records?organizationId=$ORG&limit=1"
    valid GET "/api/pems/records/{pfaId}" 200 "/api/pems/records/OAS-1?organizationId=$ORG"
    valid GET "/api/pems/records/{pfaId}" 200 "/api/pems/records/OAS%2F2?organizationId=$ORG"
    valid GET "/api/pems/records/{pfaId}" 404 "/api/pems/records/OAS-GONE?organizationId=$ORG"
    valid GET "/api/pems/records/{pfaId}/history" 200 "/api/pems/records/OAS-1/history?organizationId=$ORG"
    valid GET /api/pems/changes 200 "/api/pems/changes?organizationId=$ORG"
    assert_eq true "$(jq '[.changes[] | select(.deleted)] | length == 1' "$TEST_TMP/answer.json")" \
      "the feed validated holds a tombstone"
    valid GET /api/pems/changes 409 "/api/pems/changes?organizationId=$ORG&since=999999999"
    # the check can fail: the schema this document had, a nullable without a type, is refused
    sed "s|^          oneOf:\$|          nullable: true\n          allOf: [{ \$ref: '#/components/schemas/QueueItem' }]\n          x-was-oneOf:|" \
      "$YAML" > "$TEST_TMP/old.yaml"
    (cd "$LINT_DIR" && REDOCLY_TELEMETRY=off ./node_modules/.bin/redocly bundle "$TEST_TMP/old.yaml" \
       --dereferenced --ext json -o "$TEST_TMP/old.json" >/dev/null 2>&1)
    fx_sql "DELETE FROM pfa_write_queue WHERE modification_id = :'m'" -v m="$MOD" >/dev/null
    curl -sk -H "Authorization: Bearer $TOKEN" "$PEMS_URL/api/pems/modifications/$MOD" > "$TEST_TMP/answer.json"
    node "$LINT_DIR/validate.js" "$TEST_TMP/old.json" GET "/api/pems/modifications/{id}" 200 \
      < "$TEST_TMP/answer.json" >/dev/null 2>&1
    assert_ne 0 "$?" "the old queueItem schema fails a strict validator"
  fi
fi

finish
