#!/usr/bin/env bash
# POST /queue/:itemId/retry and /cancel: allowed states, the returned modification,
# database effects; a cancelled modification is a draft that org-wide write-sync skips.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG=$(fx_org queue)
USER_ID=$(fx_user "$ORG" Read,Write,Sync)
TOKEN=$(fx_token "$USER_ID")
fx_mirror "$ORG" PFA-Q1 1 >/dev/null

item_row() { fx_sql "SELECT status || '|' || attempts FROM pfa_write_queue WHERE id = :'i'" -v i="$1"; }
# item_with MOD_STATUS ITEM_STATUS [SCHEDULE_OFFSET] -> "modification_id item_id"
item_with() {
  local m i
  m=$(fx_mod "$ORG" PFA-Q1 "$USER_ID" "$1" 1 '{"model":"q"}')
  i=$(fx_queue "$ORG" "$m" "$2" "${3:-0 seconds}")
  printf '%s %s' "$m" "$i"
}

read -r M_FAILED I_FAILED < <(item_with sync_error failed)
# pending items are scheduled an hour ahead so no worker claims them during the test
read -r M_PENDING I_PENDING < <(item_with queued pending '1 hour')
read -r M_PENDING2 I_PENDING2 < <(item_with queued pending '1 hour')
read -r M_DONE I_DONE < <(item_with synced completed)
read -r M_PROC I_PROC < <(item_with queued processing)
read -r M_CANC I_CANC < <(item_with draft cancelled)

test_begin "retry a failed item"
wake_listen
api POST "/api/pems/queue/$I_FAILED/retry" '{}'
assert_eq 200 "$HTTP_STATUS" "retry failed"
wake_heard "$ORG" "the worker is woken"
assert_modification_shape . "retry"
assert_jq .id "$M_FAILED" "the item's modification"
assert_jq .status queued "modification back to queued"
assert_jq .queueItem.id "$I_FAILED" "queueItem is the retried item"
assert_jq .queueItem.status pending "item pending"
assert_jq .queueItem.attempts 0 "attempts reset"
SCHED=$(jbody .queueItem.scheduledAt)
assert_match "$ISO_RE" "$SCHED" "scheduledAt ISO"
assert_le "$(date -d "$SCHED" +%s)" "$(($(date +%s) + 2))" "due now"
assert_eq pending "$(fx_item_status "$I_FAILED")" "item row pending"
assert_eq t "$(fx_sql "SELECT scheduled_at <= now() + interval '2 seconds' FROM pfa_write_queue WHERE id = :'i'" \
  -v i="$I_FAILED")" "scheduled_at due now"
assert_eq queued "$(fx_mod_status "$M_FAILED")" "modification row queued"
assert_ge "$(fx_count audit_log "entity_id IN (:'i', :'m')" -v i="$I_FAILED" -v m="$M_FAILED")" 1 "audit row"

test_begin "retry in any other state -> 409"
for pair in "$I_PENDING pending" "$I_DONE completed" "$I_PROC processing" "$I_CANC cancelled"; do
  read -r item st <<<"$pair"
  api POST "/api/pems/queue/$item/retry" '{}'
  assert_error 409 conflict "retry $st"
  assert_eq "$st" "$(fx_item_status "$item")" "$st item unchanged"
done

test_begin "cancel a pending item"
api POST "/api/pems/queue/$I_PENDING/cancel" '{}'
assert_eq 200 "$HTTP_STATUS" "cancel pending"
assert_modification_shape . "cancel"
assert_jq .id "$M_PENDING" "the item's modification"
assert_jq .status draft "modification draft"
assert_jq .queueItem.id "$I_PENDING" "queueItem is the cancelled item"
assert_jq .queueItem.status cancelled "item cancelled"
assert_eq cancelled "$(fx_item_status "$I_PENDING")" "item row cancelled"
assert_eq draft "$(fx_mod_status "$M_PENDING")" "modification row draft"
assert_ge "$(fx_count audit_log "entity_id IN (:'i', :'m')" -v i="$I_PENDING" -v m="$M_PENDING")" 1 "audit row"

test_begin "cancel in any other state -> 409"
for pair in "$I_DONE completed" "$I_PROC processing" "$I_PENDING cancelled"; do
  read -r item st <<<"$pair"
  api POST "/api/pems/queue/$item/cancel" '{}'
  assert_error 409 conflict "cancel $st"
  assert_eq "$st" "$(fx_item_status "$item")" "$st item unchanged"
done
FAILED2=$(item_with sync_error failed | cut -d' ' -f2)
api POST "/api/pems/queue/$FAILED2/cancel" '{}'
assert_error 409 conflict "cancel failed"
assert_eq failed "$(fx_item_status "$FAILED2")" "failed item unchanged"

test_begin "a cancelled (draft) modification is not queued by an org-wide write-sync"
api POST /api/pems/write-sync "{\"organizationId\":\"$ORG\"}"
assert_eq 202 "$HTTP_STATUS" "org-wide write-sync"
assert_jq .queuedCount 0 "nothing to queue"
assert_eq draft "$(fx_mod_status "$M_PENDING")" "still draft"
assert_eq 1 "$(fx_count pfa_write_queue "modification_id = :'m'" -v m="$M_PENDING")" "no new item"
api POST /api/pems/write-sync "{\"organizationId\":\"$ORG\",\"modificationIds\":[\"$M_PENDING\"]}"
assert_eq 202 "$HTTP_STATUS" "explicitly queued again"
assert_jq .queuedCount 1 "queued"
assert_eq 2 "$(fx_count pfa_write_queue "modification_id = :'m'" -v m="$M_PENDING")" "a new item beside the cancelled one"

test_begin "the body may be absent"
api POST "/api/pems/queue/$I_PENDING2/cancel"
assert_eq 200 "$HTTP_STATUS" "cancel without a body"
assert_eq cancelled "$(fx_item_status "$I_PENDING2")" "cancelled"

test_begin "unknown item -> 404"
api POST "/api/pems/queue/$(fx_uuid)/retry" '{}'
assert_error 404 not_found "retry unknown"
api POST "/api/pems/queue/$(fx_uuid)/cancel" '{}'
assert_error 404 not_found "cancel unknown"

test_begin "unknown keys in the body -> 400"
read -r _ I_P3 < <(item_with queued pending '1 hour')
api POST "/api/pems/queue/$I_P3/cancel" '{"force":true}'
assert_error 400 validation_failed "cancel with force"
assert_eq pending "$(fx_item_status "$I_P3")" "item unchanged"

test_begin "concurrent cancels: one wins"
read -r M_P4 I_P4 < <(item_with queued pending '1 hour')
for i in 1 2 3 4 5; do
  curl -sk -o /dev/null -w '%{http_code}\n' --max-time 30 -X POST -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data-binary '{}' "$PEMS_URL/api/pems/queue/$I_P4/cancel" \
    > "$TEST_TMP/cancel-$i" &
done
wait
cat "$TEST_TMP"/cancel-[0-9] > "$TEST_TMP/cancel-codes"
assert_eq 1 "$(grep -c '^200$' "$TEST_TMP/cancel-codes")" "one 200"
assert_eq 4 "$(grep -c '^409$' "$TEST_TMP/cancel-codes")" "four 409"
assert_eq "cancelled|draft" "$(fx_item_status "$I_P4")|$(fx_mod_status "$M_P4")" "cancelled once"

finish
