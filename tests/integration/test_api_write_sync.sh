#!/usr/bin/env bash
# POST /write-sync: the 202 body, what gets queued (and what not), explicit ids,
# never twice even under concurrent calls, priority range, NOTIFY to the worker.
# The worker may pick items up as soon as they are queued, so database checks accept
# the states a queued item can move on to.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG=$(fx_org wsync)
OTHER_ORG=$(fx_org wsync-other)
USER_ID=$(fx_user "$ORG" Read,Write,Sync)
OTHER_USER=$(fx_user "$OTHER_ORG" Read,Write,Sync)
TOKEN=$(fx_token "$USER_ID")
fx_mirror "$ORG" PFA-W1 1 >/dev/null
fx_mirror "$OTHER_ORG" PFA-W1 1 >/dev/null

ws() { api POST /api/pems/write-sync "$1"; }

P1=$(fx_mod "$ORG" PFA-W1 "$USER_ID" pending_sync 1 '{"model":"a"}')
P2=$(fx_mod "$ORG" PFA-W1 "$USER_ID" pending_sync 1 '{"model":"b"}')
P3=$(fx_mod "$ORG" PFA-W1 "$USER_ID" pending_sync 1 '{"model":"c"}')
DRAFT=$(fx_mod "$ORG" PFA-W1 "$USER_ID" draft 1 '{"model":"d"}')
ERRORED=$(fx_mod "$ORG" PFA-W1 "$USER_ID" sync_error 1 '{"model":"e"}')
fx_queue "$ORG" "$ERRORED" failed >/dev/null
CONFLICTED=$(fx_mod "$ORG" PFA-W1 "$USER_ID" conflict 0 '{"model":"f"}')
DISCARDED=$(fx_mod "$ORG" PFA-W1 "$USER_ID" discarded 1 '{"model":"g"}')
SYNCED=$(fx_mod "$ORG" PFA-W1 "$USER_ID" synced 1 '{"model":"h"}')
fx_queue "$ORG" "$SYNCED" completed >/dev/null
QUEUED=$(fx_mod "$ORG" PFA-W1 "$USER_ID" queued 1 '{"model":"i"}')
fx_queue "$ORG" "$QUEUED" pending '1 hour' >/dev/null
FOREIGN=$(fx_mod "$OTHER_ORG" PFA-W1 "$OTHER_USER" pending_sync 1 '{"model":"x"}')

test_begin "org-wide write-sync: 202 with the pinned body"
BEFORE_MS=$(($(date +%s%N) / 1000000))
ws "{\"organizationId\":\"$ORG\"}"
AFTER_MS=$(($(date +%s%N) / 1000000))
assert_eq 202 "$HTTP_STATUS" "POST write-sync"
assert_keys . "success jobId queuedCount estimatedCompletionTime" "202 keys"
assert_jq .success true "success"
assert_jq .queuedCount 3 "the three pending_sync modifications"
JOB=$(jbody .jobId)
assert_match "^write-sync-[0-9]{13}-$ORG\$" "$JOB" "jobId format"
JOB_MS=$(sed -E 's/^write-sync-([0-9]+)-.*/\1/' <<<"$JOB")
assert_ge "$JOB_MS" $((BEFORE_MS - 2000)) "jobId epoch ms not before the call"
assert_le "$JOB_MS" $((AFTER_MS + 2000)) "jobId epoch ms not after the call"
assert_match "$ISO_RE" "$(jbody .estimatedCompletionTime)" "estimatedCompletionTime ISO"

test_begin "org-wide write-sync: database effects"
for m in "$P1" "$P2" "$P3"; do
  assert_eq 1 "$(fx_mod_items "$m")" "one queue item for $m"
  assert_eq queued "$(fx_mod_status "$m")" "modification $m queued"
  assert_eq "5|$ORG" "$(fx_sql "SELECT priority || '|' || organization_id FROM pfa_write_queue
    WHERE modification_id = :'m'" -v m="$m")" "default priority 5, organization"
  assert_ge "$(fx_count audit_log "entity_id IN (:'m', (SELECT id::text FROM pfa_write_queue WHERE modification_id = :'m'))" \
    -v m="$m")" 1 "audit row for $m"
done
for m in "$DRAFT" "$CONFLICTED" "$DISCARDED"; do
  assert_eq 0 "$(fx_mod_items "$m")" "$(fx_mod_status "$m") modification not queued"
done
assert_eq draft "$(fx_mod_status "$DRAFT")" "draft untouched"
assert_eq sync_error "$(fx_mod_status "$ERRORED")" "sync_error untouched by an org-wide call"
assert_eq 1 "$(fx_mod_items "$ERRORED")" "sync_error keeps only its failed item"
assert_eq pending_sync "$(fx_mod_status "$FOREIGN")" "other organization untouched"
assert_eq 0 "$(fx_mod_items "$FOREIGN")" "other organization not queued"

test_begin "queueItem appears on the modification"
api GET "/api/pems/modifications/$P1"
assert_eq 200 "$HTTP_STATUS" "GET modification"
assert_eq object "$(jbody '.queueItem | type')" "queueItem is an object"
assert_modification_shape . "queued modification"
assert_jq .queueItem.id "$(fx_sql "SELECT id FROM pfa_write_queue WHERE modification_id = :'m'" -v m="$P1")" "queueItem.id"
assert_jq .queueItem.priority 5 "queueItem.priority"
assert_jq .queueItem.status pending "queueItem.status"

test_begin "second call queues nothing"
ws "{\"organizationId\":\"$ORG\"}"
assert_eq 202 "$HTTP_STATUS" "second POST write-sync"
assert_jq .queuedCount 0 "queuedCount 0"
for m in "$P1" "$P2" "$P3"; do assert_eq 1 "$(fx_mod_items "$m")" "still one item for $m"; done

test_begin "explicit ids: draft and sync_error may be queued"
ws "{\"organizationId\":\"$ORG\",\"modificationIds\":[\"$DRAFT\",\"$ERRORED\"],\"priority\":9}"
assert_eq 202 "$HTTP_STATUS" "write-sync with ids"
assert_jq .queuedCount 2 "both queued"
assert_eq queued "$(fx_mod_status "$DRAFT")" "draft now queued"
assert_eq queued "$(fx_mod_status "$ERRORED")" "sync_error now queued"
assert_eq 1 "$(fx_mod_items "$DRAFT")" "one item for the draft"
assert_eq 9 "$(fx_sql "SELECT priority FROM pfa_write_queue WHERE modification_id = :'m'" -v m="$DRAFT")" "priority 9 stored"
assert_eq 2 "$(fx_mod_items "$ERRORED")" "a new item beside the old failed one"
queue_audit() {  # MOD -> "before status>after status"
  fx_sql "SELECT (before->>'status') || '>' || (after->>'status') FROM audit_log
          WHERE entity_id = :'m' AND action = 'modification.queue'" -v m="$1"
}
assert_eq "draft>queued" "$(queue_audit "$DRAFT")" "audit: the draft's status before"
assert_eq "sync_error>queued" "$(queue_audit "$ERRORED")" "audit: the sync_error's status before"
assert_eq "pending_sync>queued" "$(queue_audit "$P1")" "audit: an org-wide call's status before"

test_begin "explicit ids in other states -> 409 with a detail per id, nothing queued"
NEW=$(fx_mod "$ORG" PFA-W1 "$USER_ID" draft 1 '{"model":"j"}')
ws "{\"organizationId\":\"$ORG\",\"modificationIds\":[\"$NEW\",\"$SYNCED\",\"$QUEUED\"]}"
assert_error 409 conflict "synced and queued ids"
assert_error_envelope "409"
assert_eq 2 "$(jbody '.error.details | length')" "two details"
DETAILS=$(jbody '.error.details | tostring')
assert_match "$SYNCED" "$DETAILS" "a detail names the synced id"
assert_match "$QUEUED" "$DETAILS" "a detail names the queued id"
assert_eq 0 "$(fx_mod_items "$NEW")" "the valid draft in the same request was not queued"
assert_eq draft "$(fx_mod_status "$NEW")" "draft unchanged"
ws "{\"organizationId\":\"$ORG\",\"modificationIds\":[\"$CONFLICTED\"]}"
assert_error 409 conflict "conflict modification"
ws "{\"organizationId\":\"$ORG\",\"modificationIds\":[\"$DISCARDED\"]}"
assert_error 409 conflict "discarded modification"

test_begin "explicit ids outside the organization -> 404"
ws "{\"organizationId\":\"$ORG\",\"modificationIds\":[\"$(fx_uuid)\"]}"
assert_error 404 not_found "unknown id"
ws "{\"organizationId\":\"$ORG\",\"modificationIds\":[\"$NEW\",\"$FOREIGN\"]}"
assert_error 404 not_found "another organization's id"
assert_eq 0 "$(fx_mod_items "$FOREIGN")" "foreign modification not queued"
assert_eq 0 "$(fx_mod_items "$NEW")" "nothing queued by the failed request"
ws "{\"organizationId\":\"$ORG\",\"modificationIds\":[\"not-a-uuid\"]}"
assert_error 400 validation_failed "non-uuid id"

test_begin "priority range"
for p in 11 -1 100 5.5 '"5"' null; do
  ws "{\"organizationId\":\"$ORG\",\"modificationIds\":[\"$NEW\"],\"priority\":$p}"
  assert_error 400 validation_failed "priority $p"
done
assert_eq 0 "$(fx_mod_items "$NEW")" "nothing queued"
ws "{\"organizationId\":\"$ORG\",\"modificationIds\":[\"$NEW\"],\"priority\":10}"
assert_eq 202 "$HTTP_STATUS" "priority 10"
assert_eq 10 "$(fx_sql "SELECT priority FROM pfa_write_queue WHERE modification_id = :'m'" -v m="$NEW")" "priority 10 stored"
ZERO=$(fx_mod "$ORG" PFA-W1 "$USER_ID" pending_sync 1 '{"model":"k"}')
ws "{\"organizationId\":\"$ORG\",\"priority\":0}"
assert_eq 202 "$HTTP_STATUS" "priority 0"
assert_jq .queuedCount 1 "one new pending_sync"
assert_eq 0 "$(fx_sql "SELECT priority FROM pfa_write_queue WHERE modification_id = :'m'" -v m="$ZERO")" "priority 0 stored"

test_begin "concurrent org-wide calls queue each modification exactly once"
PORG=$(fx_org wsync-par)
PUSER=$(fx_user "$PORG" Read,Write,Sync)
PTOKEN=$(fx_token "$PUSER")
fx_mirror "$PORG" PFA-P 1 >/dev/null
N=40
fx_sql "INSERT INTO pfa_modification (organization_id, pfa_id, operation, base_version, delta, status, modified_by)
        SELECT :'o', 'PFA-P', 'update', 1, jsonb_build_object('model', 'm' || g), 'pending_sync', :'u'
        FROM generate_series(1, $N) g" -v o="$PORG" -v u="$PUSER"
seq 1 12 | xargs -P 12 -I{} curl -sk -o "$TEST_TMP/par-{}.json" -w '%{http_code}\n' --max-time 30 \
  -X POST -H "Authorization: Bearer $PTOKEN" -H 'Content-Type: application/json' \
  --data-binary "{\"organizationId\":\"$PORG\"}" "$PEMS_URL/api/pems/write-sync" > "$TEST_TMP/par-codes"
assert_eq 12 "$(grep -c '^202$' "$TEST_TMP/par-codes")" "all 12 calls answered 202"
SUM=$(cat "$TEST_TMP"/par-*.json | jq -s 'map(.queuedCount // 0) | add')
assert_eq "$N" "$SUM" "queuedCount adds up to $N"
assert_eq "$N" "$(fx_count pfa_write_queue "organization_id = :'o'" -v o="$PORG")" "$N queue rows"
assert_eq 0 "$(fx_sql "SELECT count(*) FROM (SELECT modification_id FROM pfa_write_queue WHERE organization_id = :'o'
  GROUP BY modification_id HAVING count(*) <> 1) d" -v o="$PORG")" "no modification queued twice"
assert_eq 0 "$(fx_count pfa_modification "organization_id = :'o' AND status = 'pending_sync'" -v o="$PORG")" \
  "none left pending_sync"
JOBS=$(cat "$TEST_TMP"/par-*.json | jq -r .jobId | sort -u | wc -l)
assert_ge "$JOBS" 1 "jobIds returned"

test_begin "concurrent explicit-id calls queue the modification once"
ONE=$(fx_mod "$PORG" PFA-P "$PUSER" draft 1 '{"model":"once"}')
seq 1 8 | xargs -P 8 -I{} curl -sk -o "$TEST_TMP/one-{}.json" -w '%{http_code}\n' --max-time 30 \
  -X POST -H "Authorization: Bearer $PTOKEN" -H 'Content-Type: application/json' \
  --data-binary "{\"organizationId\":\"$PORG\",\"modificationIds\":[\"$ONE\"]}" "$PEMS_URL/api/pems/write-sync" \
  > "$TEST_TMP/one-codes"
assert_eq 1 "$(fx_mod_items "$ONE")" "one queue row"
# a call reads the ids' states without a lock (src/api/api_write_sync.c, check_explicit): one
# that read it after another call queued it answers 409; one that read it before, but updates
# after, finds nothing left to queue (202, queuedCount 0). Which of the two a loser gets is
# timing; that exactly one call queued it is not.
answers=$(for i in $(seq 1 8); do jq -r '.queuedCount // .error.code' "$TEST_TMP/one-$i.json"; done | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')
assert_eq 1 "$(for i in $(seq 1 8); do jq -r '.queuedCount // empty' "$TEST_TMP/one-$i.json"; done | grep -cx 1)" \
  "exactly one call queued it ($answers)"
assert_eq 7 "$(for i in $(seq 1 8); do jq -r '.queuedCount // .error.code' "$TEST_TMP/one-$i.json"; done | grep -cxE '0|conflict')" \
  "the seven others queued nothing: 409 conflict, or 202 with queuedCount 0 ($answers)"

test_begin "NOTIFY wakes the worker"
NMOD=$(fx_mod "$ORG" PFA-W1 "$USER_ID" pending_sync 1 '{"model":"notify"}')
wake_listen
ws "{\"organizationId\":\"$ORG\"}"
assert_eq 202 "$HTTP_STATUS" "write-sync while listening"
wake_heard "$ORG" "a notification on $WAKE_CHANNEL, the worker's channel"

test_begin "a modification that already has a live queue item is not queued twice"
# an inconsistent row (pending_sync, yet a live item): the insert skips it and its audit row
# names no queue item, while the other modification of the call gets its item's id
STUCK=$(fx_mod "$ORG" PFA-W1 "$USER_ID" pending_sync 1 '{"model":"stuck"}')
STUCK_ITEM=$(fx_queue "$ORG" "$STUCK" pending '1 hour')
FRESH=$(fx_mod "$ORG" PFA-W1 "$USER_ID" pending_sync 1 '{"model":"fresh"}')
ws "{\"organizationId\":\"$ORG\",\"modificationIds\":[\"$STUCK\",\"$FRESH\"]}"
assert_eq 202 "$HTTP_STATUS" "write-sync"
assert_jq .queuedCount 2 "both moved to queued"
assert_eq 1 "$(fx_mod_items "$STUCK")" "still one live item for the stuck one"
assert_eq "$STUCK_ITEM" "$(fx_sql "SELECT id FROM pfa_write_queue WHERE modification_id = :'m'" -v m="$STUCK")" \
  "the stuck one keeps its item"
assert_eq "" "$(fx_sql "SELECT after->>'queueItemId' FROM audit_log WHERE entity_id = :'m'
  AND action = 'modification.queue'" -v m="$STUCK")" "its audit row names no new item"
assert_eq "$(fx_sql "SELECT id FROM pfa_write_queue WHERE modification_id = :'m'" -v m="$FRESH")" \
  "$(fx_sql "SELECT after->>'queueItemId' FROM audit_log WHERE entity_id = :'m'
  AND action = 'modification.queue'" -v m="$FRESH")" "the other one's audit row names its item"

test_begin "queue counters"
assert_queue_stats_consistent "after concurrent write-syncs"

finish
