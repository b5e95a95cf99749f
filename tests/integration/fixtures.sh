# Sourced after lib.sh by the API tests: organizations, users and tokens (through pemsctl),
# mirror rows, modifications, queue items and conflicts (through psql), hand-made JWTs, and
# a few assertion helpers for JSON bodies. Every fixture prints the new row's id on stdout.

# A short random tag so each test file works in its own organizations.
fx_tag() { printf '%s-%s' "$1" "$(openssl rand -hex 4)"; }

# Runs SQL from stdin-free arguments with psql variables: fx_sql SQL [-v name=value ...]
# (psql does not interpolate variables in -c, hence the here-string).
fx_sql() {
  local sql=$1; shift
  psql -qtAX "$DATABASE_URL" -v ON_ERROR_STOP=1 "$@" <<<"$sql"
}

fx_die() { fail "fixture: $*"; finish; exit 1; }

fx_uuid() { cat /proc/sys/kernel/random/uuid; }

# fx_org NAME -> organization id. The organization has no PEMS server (api_servers row), so
# the stack's pemsworker never claims, pulls or writes anything of it: an API test sees exactly
# the rows it made. (The worker tests add a server with wfx_server.)
fx_org() {
  local code id
  code=$(fx_tag "$1")
  id=$(pemsctl org add --code "$code" --name "$1 $code") || fx_die "pemsctl org add $code"
  printf '%s' "$id"
}

# fx_user ORG_ID PERMS [USERNAME] -> user id (PERMS like Read,Write,Sync); the e-mail is
# USERNAME@example.test. Given an existing USERNAME it adds a membership.
fx_user() {
  local org=$1 perms=$2 name=${3:-} id
  [ -n "$name" ] || name=$(fx_tag user)
  id=$(pemsctl user add --username "$name" --email "$name@example.test" --org "$org" --perm "$perms") \
    || fx_die "pemsctl user add $name"
  printf '%s' "$id"
}

# fx_user_field USER_ID username|email
fx_user_field() { fx_sql "SELECT $2 FROM users WHERE id = :'u'" -v u="$1"; }

# base64url without padding
fx_b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# fx_jwt ALG HEADER_JSON PAYLOAD_JSON SECRET -> token. ALG: HS256 | HS384 | HS512 | none
# (the header is given as is, so it may lie about the algorithm).
fx_jwt() {
  local alg=$1 header=$2 payload=$3 secret=$4 h p sig=""
  h=$(printf '%s' "$header" | fx_b64url)
  p=$(printf '%s' "$payload" | fx_b64url)
  case $alg in
    HS256) sig=$(printf '%s' "$h.$p" | openssl dgst -sha256 -hmac "$secret" -binary | fx_b64url) ;;
    HS384) sig=$(printf '%s' "$h.$p" | openssl dgst -sha384 -hmac "$secret" -binary | fx_b64url) ;;
    HS512) sig=$(printf '%s' "$h.$p" | openssl dgst -sha512 -hmac "$secret" -binary | fx_b64url) ;;
    none) sig="" ;;
  esac
  printf '%s.%s.%s' "$h" "$p" "$sig"
}

# fx_jwt_hs256 SUB [EXP_OFFSET_SECONDS] -> a well-formed token signed with $JWT_SECRET
fx_jwt_hs256() {
  local now; now=$(date +%s)
  fx_jwt HS256 '{"alg":"HS256","typ":"JWT"}' \
    "{\"sub\":\"$1\",\"iat\":$now,\"exp\":$((now + ${2:-3600}))}" "$JWT_SECRET"
}

# fx_token USER_ID [TTL] -> token from pemsctl
fx_token() {
  local t
  t=$(pemsctl token --user "$1" ${2:+--ttl "$2"}) || fx_die "pemsctl token"
  printf '%s' "$t"
}

# A valid record: Rental with its monthly rate, forecast dates in order.
FX_RECORD='{"category":"Cranes","forecastCategory":"Lifting","class":"Mobile Crane","areaSilo":"North",
 "manufacturer":"Liebherr","model":"LTM 1100","contract":"C-100","equipment":"EQ-1","source":"Rental",
 "dor":"BEO","isActualized":false,"isDiscontinued":false,"isFundsTransferable":true,"hasPlan":true,
 "hasActuals":false,"monthlyRate":12000,"purchasePrice":null,"originalStart":"2025-01-01",
 "originalEnd":"2025-12-31","forecastStart":"2025-02-01","forecastEnd":"2025-11-30",
 "actualStart":null,"actualEnd":null}'

# fx_mirror ORG PFA_ID VERSION [DATA_JSON] -> mirror row id
fx_mirror() {
  fx_sql "INSERT INTO pfa_mirror (organization_id, pfa_id, version, data)
          VALUES (:'o', :'p', :'v', :'d'::jsonb) RETURNING id" \
    -v o="$1" -v p="$2" -v v="$3" -v d="${4:-$FX_RECORD}" || fx_die "insert mirror $2"
}

# fx_history ORG PFA_ID VERSION SUPERSEDED_BY DATA_JSON CHANGED_FIELDS(comma list)
fx_history() {
  fx_sql "INSERT INTO pfa_mirror_history (organization_id, pfa_id, version, data, changed_fields,
            superseded_by)
          VALUES (:'o', :'p', :'v', :'d'::jsonb, string_to_array(:'f', ','), :'s') RETURNING id" \
    -v o="$1" -v p="$2" -v v="$3" -v s="$4" -v d="$5" -v f="$6" || fx_die "insert history $2"
}

# fx_mod ORG PFA_ID USER_ID STATUS BASE_VERSION DELTA_JSON [OPERATION] -> modification id
fx_mod() {
  fx_sql "INSERT INTO pfa_modification (organization_id, pfa_id, operation, base_version, delta,
            status, modified_by)
          VALUES (:'o', :'p', :'op', :'b', :'d'::jsonb, :'s', :'u') RETURNING id" \
    -v o="$1" -v p="$2" -v u="$3" -v s="$4" -v b="$5" -v d="$6" -v op="${7:-update}" \
    || fx_die "insert modification $2"
}

# fx_queue ORG MOD_ID STATUS [SCHEDULE_OFFSET e.g. '1 hour'] -> queue item id
# Items get what their status requires: a lease when processing, completed_at when completed,
# four attempts and an error when failed.
fx_queue() {
  fx_sql "INSERT INTO pfa_write_queue (organization_id, modification_id, status, priority, attempts,
            scheduled_at, locked_by, locked_until, last_error, last_http_status, started_at,
            completed_at, duration_ms)
          SELECT :'o', :'m', :'s', 5,
            CASE :'s' WHEN 'failed' THEN 4 WHEN 'completed' THEN 1 WHEN 'processing' THEN 1 ELSE 0 END,
            now() + CAST(:'off' AS interval),
            CASE WHEN :'s' = 'processing' THEN 'fixture-worker' END,
            CASE WHEN :'s' = 'processing' THEN now() + interval '1 hour' END,
            CASE WHEN :'s' = 'failed' THEN 'upstream 500' END,
            CASE WHEN :'s' = 'failed' THEN 500 WHEN :'s' = 'completed' THEN 200 END,
            CASE WHEN :'s' IN ('processing', 'completed', 'failed') THEN now() - interval '1 second' END,
            CASE WHEN :'s' IN ('completed', 'failed') THEN now() END,
            CASE WHEN :'s' IN ('completed', 'failed') THEN 1000 END
          RETURNING id" \
    -v o="$1" -v m="$2" -v s="$3" -v off="${4:-0 seconds}" || fx_die "insert queue item $3"
}

# fx_conflict ORG MOD_ID PFA_ID LOCAL_VERSION PEMS_VERSION FIELDS(comma list) LOCAL_JSON PEMS_JSON
#   [STATUS] -> conflict id
fx_conflict() {
  local st=${9:-unresolved}
  fx_sql "INSERT INTO pfa_sync_conflict (organization_id, modification_id, pfa_id, local_version,
            pems_version, conflict_fields, local_data, pems_data, status, resolution, resolved_at)
          VALUES (:'o', :'m', :'p', :'lv', :'pv', string_to_array(:'f', ','), :'ld'::jsonb,
            :'pd'::jsonb, :'st', CASE WHEN :'st' = 'resolved' THEN 'use_pems' END,
            CASE WHEN :'st' = 'resolved' THEN now() END)
          RETURNING id" \
    -v o="$1" -v m="$2" -v p="$3" -v lv="$4" -v pv="$5" -v f="$6" -v ld="$7" -v pd="$8" -v st="$st" \
    || fx_die "insert conflict $3"
}

# api_as TOKEN METHOD PATH [BODY] [curl args...]: api with another caller's token
api_as() {
  local tok=$1; shift
  TOKEN=$tok api "$@"
}

# api_ct TOKEN METHOD PATH CONTENT_TYPE BODY_FILE: a body from a file with a chosen content type
api_ct() {
  local args=(-sk -X "$2" -o "$TEST_TMP/body" -w '%{http_code}' --max-time 30)
  [ -n "$1" ] && args+=(-H "Authorization: Bearer $1")
  [ -n "$4" ] && args+=(-H "Content-Type: $4")
  args+=(--data-binary "@$5")
  HTTP_STATUS=$(curl "${args[@]}" "$PEMS_URL$3")
  BODY=$(cat "$TEST_TMP/body")
}

# assert_jq JQ_EXPR EXPECTED MESSAGE (on the last body; -c output so objects compare as text)
assert_jq() {
  local got
  got=$(printf '%s' "$BODY" | jq -c "$1" 2>/dev/null | sed 's/^"\(.*\)"$/\1/')
  assert_eq "$2" "$got" "$3"
}

# assert_keys JQ_PATH "k1 k2 ..." MESSAGE: the object at JQ_PATH has every key
assert_keys() {
  local k missing=""
  for k in $2; do
    [ "$(printf '%s' "$BODY" | jq -r "$1 | has(\"$k\")" 2>/dev/null)" = true ] || missing+=" $k"
  done
  if [ -z "$missing" ]; then pass; else fail "$3: missing keys:$missing in $(printf '%s' "$BODY" | head -c 600)"; fi
}

ISO_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$'
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'

# assert_error_envelope MESSAGE: error.message is a non-empty string, details (if any) an array
assert_error_envelope() {
  assert_eq true "$(jbody '(.error.message | type == "string" and length > 0)')" "$1 (error.message)"
  assert_eq true "$(jbody '((.error.details // []) | type == "array")')" "$1 (error.details array)"
}

# the modification object's pinned keys, checked at JQ_PATH
MOD_KEYS="id organizationId pfaId operation baseVersion delta status createdAt updatedAt modifiedBy queueItem"
QITEM_KEYS="id status priority attempts scheduledAt lastError lastHttpStatus completedAt"
assert_modification_shape() {  # JQ_PATH MESSAGE
  local p=${1%.}  # "." -> "", so "$p.key" is a valid path either way
  assert_keys "$1" "$MOD_KEYS" "$2 modification keys"
  assert_keys "$p.modifiedBy" "id username email" "$2 modifiedBy keys"
  assert_match "$ISO_RE" "$(jbody "$p.createdAt")" "$2 createdAt ISO"
  assert_match "$ISO_RE" "$(jbody "$p.updatedAt")" "$2 updatedAt ISO"
  assert_match "$UUID_RE" "$(jbody "$p.id")" "$2 id uuid"
  if [ "$(jbody "$p.queueItem | type")" = object ]; then
    assert_keys "$p.queueItem" "$QITEM_KEYS" "$2 queueItem keys"
    assert_match "$ISO_RE" "$(jbody "$p.queueItem.scheduledAt")" "$2 queueItem.scheduledAt ISO"
  fi
}

# Refuses to run without a stack that answers.
fx_require_stack() {
  [ -n "${PEMS_URL:-}" ] && [ -n "${DATABASE_URL:-}" ] || fx_die "no stack env (eval \"\$(scripts/stack env)\")"
  psql_q "SELECT 1 FROM pfa_modification LIMIT 1" >/dev/null 2>&1 || fx_die "database not migrated"
  curl -sk -o /dev/null --max-time 5 "$PEMS_URL/api/pems/health" || fx_die "no API at $PEMS_URL"
}

# counts rows: fx_count TABLE WHERE [-v ...]
fx_count() {
  local t=$1 w=$2; shift 2
  fx_sql "SELECT count(*) FROM $t WHERE $w" "$@"
}

# fx_mod_status MOD_ID -> the modification's status
fx_mod_status() { fx_sql "SELECT status FROM pfa_modification WHERE id = :'m'" -v m="$1"; }
# fx_mod_items MOD_ID -> how many queue items the modification has (any status)
fx_mod_items() { fx_count pfa_write_queue "modification_id = :'m'" -v m="$1"; }
# fx_item_status ITEM_ID -> the queue item's status
fx_item_status() { fx_sql "SELECT status FROM pfa_write_queue WHERE id = :'i'" -v i="$1"; }
# fx_org_mods ORG [STATUS] / fx_org_items ORG [STATUS] -> how many modifications / queue items
# the organization has (with STATUS, in that status)
fx_org_mods() {
  fx_count pfa_modification "organization_id = :'o' AND (:'s' = '' OR status = :'s')" -v o="$1" -v s="${2:-}"
}
fx_org_items() {
  fx_count pfa_write_queue "organization_id = :'o' AND (:'s' = '' OR status = :'s')" -v o="$1" -v s="${2:-}"
}

# The trigger-kept counters (pfa_queue_stats) agree with the queue, for every organization:
# prints the organizations where they differ (nothing when all agree).
queue_stats_drift() {
  fx_sql "WITH q AS (
            SELECT organization_id,
                   count(*) FILTER (WHERE status = 'pending') AS pending,
                   count(*) FILTER (WHERE status = 'processing') AS processing,
                   count(*) FILTER (WHERE status = 'completed') AS completed,
                   count(*) FILTER (WHERE status = 'failed') AS failed,
                   count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                   coalesce(sum(duration_ms) FILTER (WHERE status = 'completed'), 0) AS dur,
                   count(duration_ms) FILTER (WHERE status = 'completed') AS timed
            FROM pfa_write_queue GROUP BY organization_id)
          SELECT coalesce(q.organization_id, s.organization_id)
          FROM q FULL JOIN pfa_queue_stats s ON s.organization_id = q.organization_id
          WHERE (coalesce(q.pending, 0), coalesce(q.processing, 0), coalesce(q.completed, 0),
                 coalesce(q.failed, 0), coalesce(q.cancelled, 0), coalesce(q.dur, 0),
                 coalesce(q.timed, 0))
             IS DISTINCT FROM
                (coalesce(s.pending, 0), coalesce(s.processing, 0), coalesce(s.completed, 0),
                 coalesce(s.failed, 0), coalesce(s.cancelled, 0),
                 coalesce(s.completed_duration_ms, 0), coalesce(s.completed_timed, 0))"
}
assert_queue_stats_consistent() {  # MESSAGE
  local drift
  drift=$(queue_stats_drift 2>&1)
  assert_eq "" "$drift" "$1: pfa_queue_stats agrees with pfa_write_queue"
}
