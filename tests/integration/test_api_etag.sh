#!/usr/bin/env bash
# Conditional GET (src/api/openapi.yaml): /sync-status, /conflicts and /modifications send an ETag
# and answer If-None-Match with 304 and no body while nothing changed; any change gives a new
# tag; the permission is checked before a 304 (a tag is no key); HEAD carries the tag too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG=$(fx_org etag)
ORG_B=$(fx_org etag-b)
USER_ID=$(fx_user "$ORG" Read,Write,Sync)
USER_B=$(fx_user "$ORG_B" Read)
TOKEN=$(fx_token "$USER_ID")
fx_mirror "$ORG" PFA-E1 2 >/dev/null

# cget PATH [IF_NONE_MATCH] [METHOD]: sets HTTP_STATUS, BODY, ETAG, CC (Cache-Control)
cget() {
  local args=(-sk -o "$TEST_TMP/body" -D "$TEST_TMP/headers" -w '%{http_code}' -H "Authorization: Bearer $TOKEN")
  [ -n "${2:-}" ] && args+=(-H "If-None-Match: $2")
  [ "${3:-GET}" = HEAD ] && args+=(-I)
  rm -f "$TEST_TMP/body"
  HTTP_STATUS=$(curl "${args[@]}" "$PEMS_URL$1")
  # (curl -I writes the headers where the body would go: only what is not a header counts)
  BODY=$(tr -d '\r' <"$TEST_TMP/body" 2>/dev/null | grep -Ev '^(HTTP/|[A-Za-z0-9-]+:|$)')
  ETAG=$(tr -d '\r' <"$TEST_TMP/headers" | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p')
  CC=$(tr -d '\r' <"$TEST_TMP/headers" | sed -n 's/^[Cc]ache-[Cc]ontrol: *//p')
}

# check_route NAME PATH CHANGE_COMMAND...
check_route() {
  local name=$1 path=$2; shift 2
  test_begin "$name: ETag, 304, a change gives a new tag"
  cget "$path"
  assert_eq 200 "$HTTP_STATUS" "$name: first GET"
  assert_match '^"[0-9a-f]+"$' "$ETAG" "$name: a strong entity tag"
  assert_eq "private, no-cache" "$CC" "$name: cacheable by the browser, revalidated each time"
  local tag=$ETAG first=$BODY
  cget "$path" "$tag"
  assert_eq 304 "$HTTP_STATUS" "$name: unchanged -> 304"
  assert_eq "" "$BODY" "$name: 304 has no body"
  assert_eq "$tag" "$ETAG" "$name: 304 repeats the tag"
  cget "$path" "W/$tag"
  assert_eq 304 "$HTTP_STATUS" "$name: a weak form of the tag matches"
  cget "$path" "\"0000\", $tag"
  assert_eq 304 "$HTTP_STATUS" "$name: the tag in a list matches"
  cget "$path" '*'
  assert_eq 304 "$HTTP_STATUS" "$name: * matches"
  cget "$path" '"0000000000000000"'
  assert_eq 200 "$HTTP_STATUS" "$name: another tag -> 200"
  assert_eq "$first" "$BODY" "$name: the same body"
  cget "$path" "$tag" HEAD
  assert_eq 304 "$HTTP_STATUS" "$name: HEAD with the tag -> 304"
  cget "$path" "" HEAD
  assert_eq 200 "$HTTP_STATUS" "$name: HEAD -> 200"
  assert_eq "$tag" "$ETAG" "$name: HEAD sends the same tag"
  assert_eq "" "$BODY" "$name: HEAD has no body"
  TOKEN=$(fx_token "$USER_B") cget "$path" "$tag"
  assert_error 403 forbidden "$name: a non-member with the tag"
  TOKEN='' cget "$path" "$tag"
  assert_eq 401 "$HTTP_STATUS" "$name: no token with the tag"
  "$@"
  cget "$path" "$tag"
  assert_eq 200 "$HTTP_STATUS" "$name: changed -> 200"
  assert_ne "$tag" "$ETAG" "$name: a new tag"
  assert_ne "$first" "$BODY" "$name: the new body"
  cget "$path" "$ETAG"
  assert_eq 304 "$HTTP_STATUS" "$name: the new tag -> 304"
}

add_mod() { M=$(fx_mod "$ORG" PFA-E1 "$USER_ID" draft 2 '{"model":"e"}'); }
add_item() { fx_queue "$ORG" "$(fx_mod "$ORG" PFA-E1 "$USER_ID" queued 2 '{"model":"q"}')" pending '1 hour' >/dev/null; }
add_conflict() {
  fx_conflict "$ORG" "$(fx_mod "$ORG" PFA-E1 "$USER_ID" conflict 1 '{"model":"c"}')" PFA-E1 1 2 model \
    '{"model":"c"}' "$FX_RECORD" >/dev/null
}

check_route sync-status "/api/pems/sync-status?organizationId=$ORG" add_item
check_route modifications "/api/pems/modifications?organizationId=$ORG" add_mod
check_route conflicts "/api/pems/conflicts?organizationId=$ORG" add_conflict

test_begin "modifications: a change of one row's status is a new tag"
cget "/api/pems/modifications?organizationId=$ORG"
TAG=$ETAG
fx_sql "UPDATE pfa_modification SET status = 'discarded' WHERE id = :'m'" -v m="$M" >/dev/null
cget "/api/pems/modifications?organizationId=$ORG" "$TAG"
assert_eq 200 "$HTTP_STATUS" "status changed -> 200"

test_begin "conflicts: PEMS's record moving on is a new tag"
cget "/api/pems/conflicts?organizationId=$ORG"
TAG=$ETAG
cget "/api/pems/conflicts?organizationId=$ORG" "$TAG"
assert_eq 304 "$HTTP_STATUS" "unchanged (page served from the cache) -> 304"
fx_sql "UPDATE pfa_mirror SET version = 3, data = data || '{\"model\":\"pems\"}' WHERE organization_id = :'o'" -v o="$ORG" >/dev/null
cget "/api/pems/conflicts?organizationId=$ORG" "$TAG"
assert_eq 200 "$HTTP_STATUS" "mirror moved -> 200"
assert_jq '.conflicts[0].pemsVersion' 3 "the current version"

finish
