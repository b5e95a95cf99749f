#!/usr/bin/env bash
# Each route's permission, declared once in the route table (src/api/router.c), holds on the
# wire: the permission passes, the other ones are 403 forbidden, and Admin (one SQL rule,
# pems_has_permission) passes everywhere.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG=$(fx_org perms)
declare -A T
for p in Read Write Sync Admin; do T[$p]=$(fx_token "$(fx_user "$ORG" "$p")"); done
AUTHOR=$(fx_user "$ORG" Write)
fx_mirror "$ORG" PFA-P1 2 >/dev/null
MOD=$(fx_mod "$ORG" PFA-P1 "$AUTHOR" draft 2 '{"model":"p"}')

# expect ROUTE_LABEL PERMISSION OK_STATUS METHOD PATH [BODY|@make_body]: the permission and
# Admin get OK_STATUS; every other single permission gets 403 forbidden
expect() {
  local label=$1 need=$2 ok=$3 method=$4 path=$5 body=${6:-} p b u
  test_begin "$label needs $need"
  for p in Read Write Sync Admin; do
    b=$body
    case $b in @*) b=$(${b#@}) ;; esac
    u=$path   # a fresh item or conflict for each caller
    case $u in *@ITEM*) u=${u//@ITEM/$(new_item)} ;; esac
    case $u in *@CONFLICT*) u=${u//@CONFLICT/$(new_conflict_id)} ;; esac
    api_as "${T[$p]}" "$method" "$u" "$b"
    if [ "$p" = "$need" ] || [ "$p" = Admin ]; then
      assert_eq "$ok" "$HTTP_STATUS" "$label as $p: $(printf '%s' "$BODY" | head -c 200)"
    else
      assert_error 403 forbidden "$label as $p"
    fi
  done
}
new_item() { fx_queue "$ORG" "$(fx_mod "$ORG" PFA-P1 "$AUTHOR" queued 2 '{"model":"q"}')" pending '1 hour'; }
new_conflict_id() {
  fx_conflict "$ORG" "$(fx_mod "$ORG" PFA-P1 "$AUTHOR" conflict 1 '{"model":"c"}')" PFA-P1 1 2 model \
    '{"model":"c"}' "$FX_RECORD"
}
create_body() { printf '{"organizationId":"%s","pfaId":"PFA-P1","operation":"update","baseVersion":2,"delta":{"model":"n"}}' "$ORG"; }

expect "GET /sync-status" Read 200 GET "/api/pems/sync-status?organizationId=$ORG"
expect "GET /sync-history" Read 200 GET "/api/pems/sync-history?organizationId=$ORG"
expect "GET /conflicts" Read 200 GET "/api/pems/conflicts?organizationId=$ORG"
expect "GET /modifications" Read 200 GET "/api/pems/modifications?organizationId=$ORG"
expect "GET /modifications/:id" Read 200 GET "/api/pems/modifications/$MOD"
expect "POST /modifications" Write 201 POST /api/pems/modifications @create_body
expect "POST /write-sync" Sync 202 POST /api/pems/write-sync "{\"organizationId\":\"$ORG\"}"
expect "POST /queue/:id/cancel" Sync 200 POST "/api/pems/queue/@ITEM/cancel"
expect "POST /conflicts/:id/resolve" Sync 200 POST "/api/pems/conflicts/@CONFLICT/resolve" '{"resolution":"use_pems"}'

test_begin "GET /organizations needs only a user"
for p in Read Write Sync Admin; do
  api_as "${T[$p]}" GET /api/pems/organizations
  assert_eq 200 "$HTTP_STATUS" "organizations as $p"
done

finish
