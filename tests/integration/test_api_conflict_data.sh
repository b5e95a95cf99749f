#!/usr/bin/env bash
# GET /conflicts (src/api/openapi.yaml): baseData is the record at localVersion (from the history,
# or the mirror while it still holds that version; null when neither does); pemsData,
# pemsVersion and pfaDetails are PEMS's record as the mirror holds it now, also after later
# pulls, while conflictFields and localData stay as the conflict found them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack

ORG=$(fx_org cdata)
USER_ID=$(fx_user "$ORG" Read,Write,Sync)
TOKEN=$(fx_token "$USER_ID")

V3=$(jq -c '.monthlyRate = 11000' <<<"$FX_RECORD")
V4=$(jq -c '.monthlyRate = 12000' <<<"$FX_RECORD")
V5=$(jq -c '.monthlyRate = 13000 | .class = "Crawler"' <<<"$FX_RECORD")
V6=$(jq -c '.monthlyRate = 13500 | .category = "Lifting" | .class = "Tower"' <<<"$FX_RECORD")
fx_mirror "$ORG" PFA-D1 5 "$V5" >/dev/null
fx_history "$ORG" PFA-D1 4 5 "$V4" monthlyRate >/dev/null
fx_mirror "$ORG" PFA-D2 5 "$V5" >/dev/null

M1=$(fx_mod "$ORG" PFA-D1 "$USER_ID" conflict 4 '{"monthlyRate":14000}')
C1=$(fx_conflict "$ORG" "$M1" PFA-D1 4 5 monthlyRate '{"monthlyRate":14000}' "$V5")
M2=$(fx_mod "$ORG" PFA-D2 "$USER_ID" conflict 3 '{"monthlyRate":14000}')
C2=$(fx_conflict "$ORG" "$M2" PFA-D2 3 5 monthlyRate '{"monthlyRate":14000}' "$V5")

entry() { printf '.conflicts[] | select(.id == "%s")' "$1"; }
same_json() {  # EXPECTED_JSON JQ_PATH MESSAGE
  assert_eq "$(jq -cS . <<<"$1")" "$(printf '%s' "$BODY" | jq -cS "$2")" "$3"
}

test_begin "baseData: the record at localVersion"
api GET "/api/pems/conflicts?organizationId=$ORG"
assert_eq 200 "$HTTP_STATUS" "GET conflicts"
assert_keys "$(entry "$C1")" "baseData localData pemsData" "conflict keys"
same_json "$V4" "$(entry "$C1") | .baseData" "baseData from the history (version 4)"
assert_jq "$(entry "$C2") | .baseData" null "no record of version 3 anywhere: null"

test_begin "baseData: history written after the conflict is seen"
fx_history "$ORG" PFA-D2 3 5 "$V3" monthlyRate >/dev/null
api GET "/api/pems/conflicts?organizationId=$ORG"
same_json "$V3" "$(entry "$C2") | .baseData" "baseData of version 3 once the history holds it"

test_begin "PEMS's record moves on: the list shows the current one"
fx_sql "WITH h AS (INSERT INTO pfa_mirror_history (organization_id, pfa_id, version, data, changed_fields, superseded_by)
          SELECT organization_id, pfa_id, version, data, '{monthlyRate,category,class}', 6 FROM pfa_mirror
          WHERE organization_id = :'o' AND pfa_id = 'PFA-D1')
        UPDATE pfa_mirror SET version = 6, data = :'d'::jsonb WHERE organization_id = :'o' AND pfa_id = 'PFA-D1'" \
  -v o="$ORG" -v d="$V6" >/dev/null
api GET "/api/pems/conflicts?organizationId=$ORG"
assert_eq 200 "$HTTP_STATUS" "GET conflicts after the pull"
assert_jq "$(entry "$C1") | .pemsVersion" 6 "pemsVersion is the mirror's version now"
same_json "$V6" "$(entry "$C1") | .pemsData" "pemsData is the mirror's record now"
assert_jq "$(entry "$C1") | .pfaDetails" '{"category":"Lifting","class":"Tower"}' "pfaDetails from the current record"
assert_jq "$(entry "$C1") | .conflictFields" '["monthlyRate"]' "conflictFields as found"
assert_jq "$(entry "$C1") | .localData" '{"monthlyRate":14000}' "localData as found"
same_json "$V4" "$(entry "$C1") | .baseData" "baseData still version 4"
assert_jq "$(entry "$C1") | .localVersion" 4 "localVersion unchanged"
assert_jq "$(entry "$C2") | .pemsVersion" 5 "the other record's conflict is unchanged"
assert_eq "$(jq -cS . <<<"$V5")" "$(fx_sql "SELECT pems_data FROM pfa_sync_conflict WHERE id = :'c'" -v c="$C1" | jq -cS .)" \
  "the row keeps what the conflict found"

test_begin "the same page twice: the second, from a process's cache, is also current"
for _ in 1 2 3 4 5 6 7 8; do api GET "/api/pems/conflicts?organizationId=$ORG&limit=10"; done
fx_sql "UPDATE pfa_mirror SET version = 7, data = data || '{\"monthlyRate\":9999}' WHERE organization_id = :'o' AND pfa_id = 'PFA-D1'" \
  -v o="$ORG" >/dev/null
for _ in 1 2 3 4 5 6 7 8; do
  api GET "/api/pems/conflicts?organizationId=$ORG&limit=10"
  assert_jq "$(entry "$C1") | [.pemsVersion, .pemsData.monthlyRate]" '[7,9999]' "every process serves the current record"
done

finish
