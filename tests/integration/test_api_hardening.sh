#!/usr/bin/env bash
# Findings of the attack on the API, each pinned: query names and values that are not UTF-8
# are 400 validation_failed (never a 500 from PostgreSQL, never silently accepted); every GET
# route answers HEAD.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG=$(fx_org harden)
USER_ID=$(fx_user "$ORG" Read,Write,Sync)
TOKEN=$(fx_token "$USER_ID")
fx_mirror "$ORG" PFA-H1 1 >/dev/null
MOD=$(fx_mod "$ORG" PFA-H1 "$USER_ID" draft 1 '{"model":"h"}')

test_begin "query values and names that are not UTF-8 -> 400 validation_failed"
for bad in '%ff' '%c3%28' '%ed%a0%80' '%c0%af' '%f4%90%80%80'; do
  for route in modifications conflicts sync-status sync-history; do
    case $route in modifications) p=pfaId ;; conflicts|sync-status) p=status ;; sync-history) p=bucket ;; esac
    api GET "/api/pems/$route?organizationId=$ORG&$p=$bad"
    assert_error 400 validation_failed "$route $p=$bad"
    api GET "/api/pems/$route?organizationId=$ORG&$bad=1"
    assert_error 400 validation_failed "$route name $bad"
  done
done
api GET "/api/pems/modifications?organizationId=$ORG&pfaId=PFA-%c3%a9"
assert_eq 200 "$HTTP_STATUS" "valid UTF-8 in a value is fine"

test_begin "every GET route answers HEAD"
for path in /api/pems/health "/api/pems/sync-status?organizationId=$ORG" "/api/pems/conflicts?organizationId=$ORG" \
            "/api/pems/modifications?organizationId=$ORG" "/api/pems/modifications/$MOD" \
            /api/pems/organizations "/api/pems/sync-history?organizationId=$ORG" /api/pems/metrics; do
  code=$(curl -sk -I -o "$TEST_TMP/head" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$PEMS_URL$path")
  assert_eq 200 "$code" "HEAD $path"
  assert_eq "" "$(tr -d '\r' <"$TEST_TMP/head" | grep -Ev '^(HTTP/|[A-Za-z0-9-]+:|$)')" "HEAD $path: no body"
done
code=$(curl -sk -I -o /dev/null -w '%{http_code}' "$PEMS_URL/api/pems/write-sync")
assert_eq 405 "$code" "HEAD of a POST-only route is 405"

finish
