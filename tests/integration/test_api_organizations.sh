#!/usr/bin/env bash
# GET /organizations (src/api/openapi.yaml): the caller's memberships with code, name and the
# permissions they give (Admin implies every other); nobody else's; who the caller is (the
# dashboard names the signed-in user); 401 without a user.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG_A=$(fx_org orgs-a)
ORG_B=$(fx_org orgs-b)
ORG_OTHER=$(fx_org orgs-other)
USER_ID=$(fx_user "$ORG_A" Read,Sync)
USERNAME=$(fx_user_field "$USER_ID" username)
fx_user "$ORG_B" Admin "$USERNAME" >/dev/null
OTHER=$(fx_user "$ORG_OTHER" Read,Write)
TOKEN=$(fx_token "$USER_ID")
code_of() { fx_sql "SELECT code FROM organizations WHERE id = :'o'" -v o="$1"; }
name_of() { fx_sql "SELECT name FROM organizations WHERE id = :'o'" -v o="$1"; }

test_begin "the caller's organizations, by code, with effective permissions"
api GET /api/pems/organizations
assert_eq 200 "$HTTP_STATUS" "GET organizations"
EXPECTED=$(jq -cn --arg a "$ORG_A" --arg ac "$(code_of "$ORG_A")" --arg an "$(name_of "$ORG_A")" \
                  --arg b "$ORG_B" --arg bc "$(code_of "$ORG_B")" --arg bn "$(name_of "$ORG_B")" \
  --arg u "$USER_ID" --arg un "$USERNAME" --arg ue "$(fx_user_field "$USER_ID" email)" \
  '{user: {id: $u, username: $un, email: $ue},
    organizations: ([{id: $a, code: $ac, name: $an, permissions: ["Read", "Sync"]},
                     {id: $b, code: $bc, name: $bn, permissions: ["Read", "Write", "Sync", "Admin"]}]
                    | sort_by(.code))}')
assert_eq "$EXPECTED" "$(jbody . | jq -c .)" "exactly the two memberships"

test_begin "another user sees only theirs"
api_as "$(fx_token "$OTHER")" GET /api/pems/organizations
assert_eq 200 "$HTTP_STATUS" "GET organizations as another user"
assert_jq '[.organizations[].id]' "[\"$ORG_OTHER\"]" "only the other organization"
assert_jq '.organizations[0].permissions' '["Read","Write"]' "its permissions"
assert_jq .user.id "$OTHER" "the other user is named as the caller"

test_begin "a user without memberships: an empty list"
LONELY=$(fx_user "$ORG_OTHER" Read)
fx_sql "DELETE FROM user_organizations WHERE user_id = :'u'" -v u="$LONELY" >/dev/null
api_as "$(fx_token "$LONELY")" GET /api/pems/organizations
assert_eq 200 "$HTTP_STATUS" "GET organizations without memberships"
assert_eq '[]' "$(jbody .organizations | jq -c .)" "empty list"
assert_jq .user.id "$LONELY" "still says who the caller is"

test_begin "HEAD answers like GET, without a body"
HEAD_STATUS=$(curl -sk -I -o "$TEST_TMP/head" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
  "$PEMS_URL/api/pems/organizations")
assert_eq 200 "$HEAD_STATUS" "HEAD organizations"

test_begin "errors"
api GET "/api/pems/organizations?organizationId=$ORG_A"
assert_error 400 validation_failed "a query parameter the route does not define"
TOKEN='' api GET /api/pems/organizations
assert_error 401 unauthorized "no token"
GONE=$(fx_user "$ORG_OTHER" Read)
GONE_TOKEN=$(fx_token "$GONE")
fx_sql "DELETE FROM users WHERE id = :'u'" -v u="$GONE" >/dev/null
api_as "$GONE_TOKEN" GET /api/pems/organizations
assert_error 401 unauthorized "the token's user no longer exists"
api POST /api/pems/organizations '{}'
assert_error 405 method_not_allowed "POST"

finish
