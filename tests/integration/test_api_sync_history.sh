#!/usr/bin/env bash
# GET /sync-history (src/api/openapi.yaml): finished writes per UTC bucket from the audit log —
# synced, failed, conflict, merged — oldest first, empty buckets included; strict parameters;
# one organization's history never shows in another's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG=$(fx_org history)
ORG_B=$(fx_org history-b)
USER_ID=$(fx_user "$ORG" Read)
WRITER=$(fx_user "$ORG" Write)
USER_B=$(fx_user "$ORG_B" Read,Write,Sync)
TOKEN=$(fx_token "$USER_ID")

# event ORG ACTION AT [AFTER_JSON]: an audit row as the worker writes it
event() {
  fx_sql "INSERT INTO audit_log (organization_id, actor, action, entity_type, entity_id, after, created_at)
          VALUES (:'o', 'fixture-worker', :'a', 'pfa_modification', gen_random_uuid()::text,
                  :'j'::jsonb, :'t')" -v o="$1" -v a="$2" -v t="$3" -v j="${4:-{\}}" >/dev/null
}
D=2026-01-01
event "$ORG" modification.synced "${D}T10:05:00Z" '{"status":"synced","merged":false}'
event "$ORG" modification.synced "${D}T10:20:00Z" '{"status":"synced","merged":true}'
event "$ORG" modification.sync_error "${D}T10:40:00Z" '{"status":"sync_error"}'
event "$ORG" modification.create "${D}T10:45:00Z"        # not a finished write
event "$ORG" conflict.created "${D}T11:10:00Z"
event "$ORG" modification.synced "${D}T12:00:00Z" '{"status":"synced"}'
event "$ORG" modification.synced "${D}T13:00:00Z" '{"status":"synced"}'   # at `to`: excluded
event "$ORG_B" modification.synced "${D}T10:30:00Z" '{"status":"synced","merged":true}'
event "$ORG_B" conflict.created "${D}T12:30:00Z"

b() { printf '{"start":"%s","synced":%d,"failed":%d,"conflict":%d,"merged":%d}' "$@"; }

test_begin "hourly buckets, oldest first, empty ones included"
api GET "/api/pems/sync-history?organizationId=$ORG&from=${D}T10:00:00Z&to=${D}T14:00:00Z&bucket=hour"
assert_eq 200 "$HTTP_STATUS" "GET sync-history"
assert_eq "{\"bucket\":\"hour\",\"buckets\":[$(b "${D}T10:00:00.000Z" 2 1 0 1),$(b "${D}T11:00:00.000Z" 0 0 1 0),$(b "${D}T12:00:00.000Z" 1 0 0 0),$(b "${D}T13:00:00.000Z" 1 0 0 0)]}" \
  "$(jbody . | jq -c .)" "exact buckets"

test_begin "events count from \`from\` up to \`to\` (exclusive); buckets start at the bucket holding from"
api GET "/api/pems/sync-history?organizationId=$ORG&from=${D}T10:10:00Z&to=${D}T13:00:00Z"
assert_eq 200 "$HTTP_STATUS" "GET sync-history (bucket defaults to hour)"
assert_eq "{\"bucket\":\"hour\",\"buckets\":[$(b "${D}T10:00:00.000Z" 1 1 0 1),$(b "${D}T11:00:00.000Z" 0 0 1 0),$(b "${D}T12:00:00.000Z" 1 0 0 0)]}" \
  "$(jbody . | jq -c .)" "10:05 and 13:00 are outside"

test_begin "minute and day buckets"
api GET "/api/pems/sync-history?organizationId=$ORG&from=${D}T10:04:00Z&to=${D}T10:07:00Z&bucket=minute"
assert_eq 200 "$HTTP_STATUS" "minute buckets"
assert_eq "{\"bucket\":\"minute\",\"buckets\":[$(b "${D}T10:04:00.000Z" 0 0 0 0),$(b "${D}T10:05:00.000Z" 1 0 0 0),$(b "${D}T10:06:00.000Z" 0 0 0 0)]}" \
  "$(jbody . | jq -c .)" "three minutes"
api GET "/api/pems/sync-history?organizationId=$ORG&from=2025-12-31&to=${D}&bucket=day"
assert_eq 200 "$HTTP_STATUS" "day buckets"
assert_eq "{\"bucket\":\"day\",\"buckets\":[$(b "2025-12-31T00:00:00.000Z" 0 0 0 0),$(b "${D}T00:00:00.000Z" 4 1 1 1)]}" \
  "$(jbody . | jq -c .)" "a date alone as to includes that day"
api GET "/api/pems/sync-history?organizationId=$ORG&from=${D}T12:00:00%2B02:00&to=${D}T11:00:00Z"
assert_eq 200 "$HTTP_STATUS" "offsets are honoured"
assert_eq "[$(b "${D}T10:00:00.000Z" 2 1 0 1)]" "$(jbody .buckets | jq -c .)" "12:00+02:00 is 10:00Z"

test_begin "default: the last 24 hours by hour"
event "$ORG" modification.sync_error "$(date -u -d '-90 minutes' +%FT%TZ)"
api GET "/api/pems/sync-history?organizationId=$ORG"
assert_eq 200 "$HTTP_STATUS" "GET sync-history without a window"
assert_jq .bucket hour "bucket hour"
assert_jq '.buckets | length' 25 "24 h not on an hour boundary span 25 hourly buckets"
assert_jq '[.buckets[].failed] | add' 1 "the event of 90 minutes ago"
assert_jq '[.buckets[].synced, .buckets[].conflict] | add' 0 "nothing else in the last day"
assert_eq "$(date -u +%Y-%m-%dT%H):00:00.000Z" "$(jbody '.buckets[-1].start')" "the last bucket holds now"

test_begin "strict parameters"
api GET "/api/pems/sync-history?organizationId=$ORG&bucket=week"
assert_error 400 validation_failed "bucket outside its set"
api GET "/api/pems/sync-history?organizationId=$ORG&from=yesterday"
assert_error 400 validation_failed "from not a date"
api GET "/api/pems/sync-history?organizationId=$ORG&from=${D}T12:00:00Z&to=${D}T12:00:00Z"
assert_error 400 validation_failed "empty window"
api GET "/api/pems/sync-history?organizationId=$ORG&from=${D}T13:00:00Z&to=${D}T12:00:00Z"
assert_error 400 validation_failed "from after to"
api GET "/api/pems/sync-history?organizationId=$ORG&from=2025-01-01&to=${D}&bucket=minute"
assert_error 400 validation_failed "too many buckets"
assert_jq '.error.details[0].field' bucket "the detail names bucket"
api GET "/api/pems/sync-history?organizationId=$ORG&from=${D}&to=2026-03-25T08:00:00Z&bucket=hour"
assert_eq 200 "$HTTP_STATUS" "2000 hourly buckets are allowed"
assert_jq '.buckets | length' 2000 "2000 buckets"
api GET "/api/pems/sync-history?organizationId=$ORG&from=${D}&to=2026-03-25T08:00:01Z&bucket=hour"
assert_error 400 validation_failed "2001 are not"
api GET "/api/pems/sync-history?organizationId=$ORG&bogus=1"
assert_error 400 validation_failed "unknown parameter"
api GET "/api/pems/sync-history?from=${D}"
assert_error 400 validation_failed "organizationId required"
api GET "/api/pems/sync-history?organizationId=$ORG&bucket=hour&bucket=day"
assert_error 400 validation_failed "a repeated parameter"

test_begin "isolation, 401 and 403"
api_as "$(fx_token "$USER_B")" GET "/api/pems/sync-history?organizationId=$ORG_B&from=${D}T10:00:00Z&to=${D}T13:00:00Z"
assert_eq 200 "$HTTP_STATUS" "the other organization's own history"
assert_eq "[$(b "${D}T10:00:00.000Z" 1 0 0 1),$(b "${D}T11:00:00.000Z" 0 0 0 0),$(b "${D}T12:00:00.000Z" 0 0 1 0)]" \
  "$(jbody .buckets | jq -c .)" "only its events"
api_as "$(fx_token "$USER_B")" GET "/api/pems/sync-history?organizationId=$ORG"
assert_error 403 forbidden "not a member"
api_as "$(fx_token "$WRITER")" GET "/api/pems/sync-history?organizationId=$ORG"
assert_error 403 forbidden "a member without Read"
TOKEN='' api GET "/api/pems/sync-history?organizationId=$ORG"
assert_error 401 unauthorized "no token"

finish
