#!/usr/bin/env bash
# Auth: every bad token kind -> 401 unauthorized; no membership or missing
# permission -> 403 forbidden, with nothing changed in the database.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG=$(fx_org auth)
OTHER_ORG=$(fx_org auth-other)
FULL=$(fx_user "$ORG" Read,Write,Sync)
READER=$(fx_user "$ORG" Read)
WRITER=$(fx_user "$ORG" Read,Write)
SYNCER=$(fx_user "$ORG" Read,Sync)
OUTSIDER=$(fx_user "$OTHER_ORG" Read,Write,Sync)
T_FULL=$(fx_token "$FULL")
T_READER=$(fx_token "$READER")
T_WRITER=$(fx_token "$WRITER")
T_SYNCER=$(fx_token "$SYNCER")
T_OUTSIDER=$(fx_token "$OUTSIDER")

fx_mirror "$ORG" PFA-A1 3 >/dev/null
MOD_PENDING=$(fx_mod "$ORG" PFA-A1 "$FULL" pending_sync 3 '{"monthlyRate":100}')
MOD_CONFLICT=$(fx_mod "$ORG" PFA-A1 "$FULL" conflict 2 '{"monthlyRate":200}')
CONFLICT=$(fx_conflict "$ORG" "$MOD_CONFLICT" PFA-A1 2 3 monthlyRate '{"monthlyRate":200}' "$FX_RECORD")
MOD_FAILED=$(fx_mod "$ORG" PFA-A1 "$FULL" sync_error 3 '{"monthlyRate":300}')
ITEM_FAILED=$(fx_queue "$ORG" "$MOD_FAILED" failed)
MOD_QUEUED=$(fx_mod "$ORG" PFA-A1 "$FULL" queued 3 '{"monthlyRate":400}')
ITEM_PENDING=$(fx_queue "$ORG" "$MOD_QUEUED" pending '1 hour')

LIST="/api/pems/modifications?organizationId=$ORG"
NOW=$(date +%s)

test_begin "control: pemsctl token is accepted"
TOKEN=$T_FULL api GET "$LIST"
assert_eq 200 "$HTTP_STATUS" "GET modifications with a valid token"
assert_eq array "$(jbody '.modifications | type')" "modifications is a list"

test_begin "control: hand-made HS256 token is accepted"
# proves the hand-made tokens below differ from a valid one only in what each test changes
TOKEN=$(fx_jwt HS256 '{"alg":"HS256","typ":"JWT"}' "{\"sub\":\"$FULL\",\"exp\":$((NOW + 600))}" "$JWT_SECRET") \
  api GET "$LIST"
assert_eq 200 "$HTTP_STATUS" "hand-made HS256 token"

# assert_unauthorized MESSAGE [curl args...]: GET the list with the given headers, no $TOKEN
assert_unauthorized() {
  local msg=$1; shift
  TOKEN='' api GET "$LIST" '' "$@"
  assert_error 401 unauthorized "$msg"
  assert_error_envelope "$msg"
}

test_begin "no Authorization header"
assert_unauthorized "no header"

test_begin "wrong scheme"
assert_unauthorized "Basic scheme" -H "Authorization: Basic $(printf 'u:p' | base64)"
assert_unauthorized "Token scheme with a valid jwt" -H "Authorization: Token $T_FULL"
assert_unauthorized "bare token without scheme" -H "Authorization: $T_FULL"
assert_unauthorized "Bearer without token" -H "Authorization: Bearer"
assert_unauthorized "Bearer with empty token" -H "Authorization: Bearer "

test_begin "garbage tokens"
assert_unauthorized "garbage" -H "Authorization: Bearer not-a-jwt"
assert_unauthorized "three garbage parts" -H "Authorization: Bearer abc.def.ghi"
assert_unauthorized "two parts" -H "Authorization: Bearer ${T_FULL%.*}"
assert_unauthorized "valid token with trailing junk" -H "Authorization: Bearer ${T_FULL}x"
assert_unauthorized "very long token" -H "Authorization: Bearer $(head -c 6000 /dev/zero | tr '\0' a)"

test_begin "alg none"
PAYLOAD="{\"sub\":\"$FULL\",\"exp\":$((NOW + 600))}"
assert_unauthorized "alg none, empty signature" \
  -H "Authorization: Bearer $(fx_jwt none '{"alg":"none","typ":"JWT"}' "$PAYLOAD" x)"
assert_unauthorized "alg None, empty signature" \
  -H "Authorization: Bearer $(fx_jwt none '{"alg":"None","typ":"JWT"}' "$PAYLOAD" x)"
# a none header carrying a valid HS256 signature over its own header and payload
assert_unauthorized "alg none with an HS256 signature" \
  -H "Authorization: Bearer $(fx_jwt HS256 '{"alg":"none","typ":"JWT"}' "$PAYLOAD" "$JWT_SECRET")"
assert_unauthorized "no alg at all" \
  -H "Authorization: Bearer $(fx_jwt HS256 '{"typ":"JWT"}' "$PAYLOAD" "$JWT_SECRET")"

test_begin "other algorithms"
assert_unauthorized "HS512 signed with the right secret" \
  -H "Authorization: Bearer $(fx_jwt HS512 '{"alg":"HS512","typ":"JWT"}' "$PAYLOAD" "$JWT_SECRET")"
assert_unauthorized "HS384 signed with the right secret" \
  -H "Authorization: Bearer $(fx_jwt HS384 '{"alg":"HS384","typ":"JWT"}' "$PAYLOAD" "$JWT_SECRET")"
assert_unauthorized "RS256 header with an HMAC signature" \
  -H "Authorization: Bearer $(fx_jwt HS256 '{"alg":"RS256","typ":"JWT"}' "$PAYLOAD" "$JWT_SECRET")"

test_begin "wrong signature"
OTHER_TOKEN=$(JWT_SECRET=another-secret-entirely pemsctl token --user "$FULL")
assert_unauthorized "signed with another secret" -H "Authorization: Bearer $OTHER_TOKEN"
# a valid token whose payload is swapped for another user's: the signature no longer matches
SWAPPED="${T_FULL%%.*}.$(printf '{"sub":"%s","exp":%d}' "$READER" $((NOW + 600)) | fx_b64url).${T_FULL##*.}"
assert_unauthorized "payload swapped under a valid signature" -H "Authorization: Bearer $SWAPPED"
assert_unauthorized "signature stripped" -H "Authorization: Bearer ${T_FULL%.*}."

test_begin "expired and missing exp"
assert_unauthorized "expired a minute ago" -H "Authorization: Bearer $(fx_jwt HS256 '{"alg":"HS256","typ":"JWT"}' \
  "{\"sub\":\"$FULL\",\"iat\":$((NOW - 3600)),\"exp\":$((NOW - 60))}" "$JWT_SECRET")"
assert_unauthorized "no exp" -H "Authorization: Bearer $(fx_jwt HS256 '{"alg":"HS256","typ":"JWT"}' \
  "{\"sub\":\"$FULL\",\"iat\":$NOW}" "$JWT_SECRET")"
assert_unauthorized "exp as a string" -H "Authorization: Bearer $(fx_jwt HS256 '{"alg":"HS256","typ":"JWT"}' \
  "{\"sub\":\"$FULL\",\"exp\":\"$((NOW + 600))\"}" "$JWT_SECRET")"
SHORT=$(pemsctl token --user "$FULL" --ttl 1)
sleep 2.2
assert_unauthorized "pemsctl token with --ttl 1, 2 s later" -H "Authorization: Bearer $SHORT"

test_begin "a token accepted while valid is refused once it expires, and its altered twin always"
# each pems-fcgi remembers the tokens it verified (src/api/auth.c): enough requests that every
# child has seen this one, then the same after its exp
EXP=$(( $(date +%s) + 6 ))
BRIEF=$(fx_jwt HS256 '{"alg":"HS256","typ":"JWT"}' "{\"sub\":\"$FULL\",\"exp\":$EXP}" "$JWT_SECRET")
sig=${BRIEF##*.}
case ${sig: -1} in A) alt=B ;; *) alt=A ;; esac
TWIN=${BRIEF%.*}.${sig%?}$alt
ok=0 twin_ok=0
for _ in $(seq 12); do
  TOKEN=$BRIEF api GET "$LIST"
  [ "$HTTP_STATUS" = 200 ] && ok=$((ok + 1))
  TOKEN=$TWIN api GET "$LIST"
  [ "$HTTP_STATUS" = 401 ] && twin_ok=$((twin_ok + 1))
done
assert_eq 12 "$ok" "the token is accepted 12 times before its exp"
assert_eq 12 "$twin_ok" "the token with one signature character changed is refused every time"
while [ "$(date +%s)" -lt "$EXP" ]; do sleep 0.2; done
refused=0
for _ in $(seq 12); do
  TOKEN=$BRIEF api GET "$LIST"
  [ "$HTTP_STATUS" = 401 ] && refused=$((refused + 1))
done
assert_eq 12 "$refused" "the same token is refused 12 times from its exp on"

test_begin "sub that is no user"
assert_unauthorized "sub a random uuid" -H "Authorization: Bearer $(fx_jwt_hs256 "$(fx_uuid)")"
assert_unauthorized "sub not a uuid" -H "Authorization: Bearer $(fx_jwt_hs256 admin)"
assert_unauthorized "sub with SQL" -H "Authorization: Bearer $(fx_jwt_hs256 "x' OR '1'='1")"
assert_unauthorized "no sub" -H "Authorization: Bearer $(fx_jwt HS256 '{"alg":"HS256","typ":"JWT"}' \
  "{\"exp\":$((NOW + 600))}" "$JWT_SECRET")"

test_begin "every authenticated route answers 401 without a token"
for route in "GET /api/pems/sync-status?organizationId=$ORG" \
             "GET /api/pems/conflicts?organizationId=$ORG" \
             "GET /api/pems/modifications?organizationId=$ORG" \
             "GET /api/pems/modifications/$MOD_PENDING" \
             "POST /api/pems/write-sync" \
             "POST /api/pems/modifications" \
             "POST /api/pems/conflicts/$CONFLICT/resolve" \
             "POST /api/pems/queue/$ITEM_FAILED/retry" \
             "POST /api/pems/queue/$ITEM_PENDING/cancel"; do
  read -r method path <<<"$route"
  body=''
  [ "$method" = POST ] && body="{\"organizationId\":\"$ORG\"}"
  TOKEN='' api "$method" "$path" "$body"
  assert_error 401 unauthorized "$route without token"
done

test_begin "health needs no token"
TOKEN='' api GET /api/pems/health
assert_eq 200 "$HTTP_STATUS" "health without token"

test_begin "valid user without membership -> 403"
for path in "/api/pems/modifications?organizationId=$ORG" "/api/pems/conflicts?organizationId=$ORG" \
            "/api/pems/sync-status?organizationId=$ORG"; do
  TOKEN=$T_OUTSIDER api GET "$path"
  assert_error 403 forbidden "GET $path by a member of another organization"
  assert_error_envelope "GET $path non-member"
done
COUNT_BEFORE=$(fx_count pfa_modification "organization_id = :'o'" -v o="$ORG")
TOKEN=$T_OUTSIDER api POST /api/pems/modifications \
  "{\"organizationId\":\"$ORG\",\"pfaId\":\"PFA-A1\",\"operation\":\"update\",\"baseVersion\":3,\"delta\":{\"model\":\"X\"}}"
assert_error 403 forbidden "POST modifications by a non-member"
TOKEN=$T_OUTSIDER api POST /api/pems/write-sync "{\"organizationId\":\"$ORG\"}"
assert_error 403 forbidden "POST write-sync by a non-member"
assert_eq "$COUNT_BEFORE" "$(fx_count pfa_modification "organization_id = :'o'" -v o="$ORG")" "no modification created"
assert_eq 0 "$(fx_count pfa_write_queue "modification_id = :'m'" -v m="$MOD_PENDING")" "nothing queued"

test_begin "Read-only user may read"
for path in "/api/pems/modifications?organizationId=$ORG" "/api/pems/conflicts?organizationId=$ORG" \
            "/api/pems/sync-status?organizationId=$ORG" "/api/pems/modifications/$MOD_PENDING"; do
  TOKEN=$T_READER api GET "$path"
  assert_eq 200 "$HTTP_STATUS" "GET $path by a Read user"
done

test_begin "Read-only user cannot change anything -> 403"
TOKEN=$T_READER api POST /api/pems/write-sync "{\"organizationId\":\"$ORG\"}"
assert_error 403 forbidden "write-sync without Sync"
TOKEN=$T_READER api POST /api/pems/modifications \
  "{\"organizationId\":\"$ORG\",\"pfaId\":\"PFA-A1\",\"operation\":\"update\",\"baseVersion\":3,\"delta\":{\"model\":\"X\"}}"
assert_error 403 forbidden "modifications without Write"
TOKEN=$T_READER api POST "/api/pems/conflicts/$CONFLICT/resolve" '{"resolution":"use_pems"}'
assert_error 403 forbidden "resolve without Sync"
TOKEN=$T_READER api POST "/api/pems/queue/$ITEM_FAILED/retry" '{}'
assert_error 403 forbidden "retry without Sync"
TOKEN=$T_READER api POST "/api/pems/queue/$ITEM_PENDING/cancel" '{}'
assert_error 403 forbidden "cancel without Sync"
assert_eq "$COUNT_BEFORE" "$(fx_count pfa_modification "organization_id = :'o'" -v o="$ORG")" "no modification created"
assert_eq 0 "$(fx_count pfa_write_queue "modification_id = :'m'" -v m="$MOD_PENDING")" "write-sync queued nothing"
assert_eq unresolved "$(fx_sql "SELECT status FROM pfa_sync_conflict WHERE id = :'c'" -v c="$CONFLICT")" "conflict untouched"
assert_eq failed "$(fx_sql "SELECT status FROM pfa_write_queue WHERE id = :'i'" -v i="$ITEM_FAILED")" "failed item untouched"
assert_eq pending "$(fx_sql "SELECT status FROM pfa_write_queue WHERE id = :'i'" -v i="$ITEM_PENDING")" "pending item untouched"

test_begin "Write without Sync, Sync without Write -> 403"
TOKEN=$T_WRITER api POST /api/pems/write-sync "{\"organizationId\":\"$ORG\"}"
assert_error 403 forbidden "write-sync by a Read,Write user"
TOKEN=$T_WRITER api POST "/api/pems/conflicts/$CONFLICT/resolve" '{"resolution":"use_pems"}'
assert_error 403 forbidden "resolve by a Read,Write user"
TOKEN=$T_WRITER api POST "/api/pems/queue/$ITEM_PENDING/cancel" '{}'
assert_error 403 forbidden "cancel by a Read,Write user"
TOKEN=$T_SYNCER api POST /api/pems/modifications \
  "{\"organizationId\":\"$ORG\",\"pfaId\":\"PFA-A1\",\"operation\":\"update\",\"baseVersion\":3,\"delta\":{\"model\":\"X\"}}"
assert_error 403 forbidden "modifications by a Read,Sync user"
assert_eq "$COUNT_BEFORE" "$(fx_count pfa_modification "organization_id = :'o'" -v o="$ORG")" "no modification created"
assert_eq unresolved "$(fx_sql "SELECT status FROM pfa_sync_conflict WHERE id = :'c'" -v c="$CONFLICT")" "conflict untouched"

test_begin "permissions of the row's organization, not another membership"
# SYNCER gets full rights in OTHER_ORG only: that must not lend Write in ORG
fx_user "$OTHER_ORG" Read,Write,Sync "$(fx_user_field "$SYNCER" username)" >/dev/null
TOKEN=$T_SYNCER api POST /api/pems/modifications \
  "{\"organizationId\":\"$ORG\",\"pfaId\":\"PFA-A1\",\"operation\":\"update\",\"baseVersion\":3,\"delta\":{\"model\":\"X\"}}"
assert_error 403 forbidden "Write in another organization does not count"

test_begin "the token's user is the author"
TOKEN=$T_WRITER api POST /api/pems/modifications \
  "{\"organizationId\":\"$ORG\",\"pfaId\":\"PFA-A1\",\"operation\":\"update\",\"baseVersion\":3,\"delta\":{\"model\":\"Y\"}}"
assert_eq 201 "$HTTP_STATUS" "POST modifications by a Read,Write user"
assert_jq .modifiedBy.id "$WRITER" "modifiedBy is the token's user"
assert_jq .modifiedBy.username "$(fx_user_field "$WRITER" username)" "modifiedBy.username"
assert_eq "$WRITER" "$(fx_sql "SELECT modified_by FROM pfa_modification WHERE id = :'m'" -v m="$(jbody .id)")" \
  "modified_by stored"

finish
