#!/usr/bin/env bash
# The PEMS simulator on its own, on a private port: its wire protocol and control API
# (tests/pems-sim/README.md).
cd "$(dirname "$0")" || exit 1
. ./lib.sh
. ./sim_lib.sh
sim_start

seed() {  # tenant json-records-array
  sim PUT "/__sim/records?tenant=$1" "{\"records\": $2}"
}

test_begin "liveness"
sim GET /health
assert_eq 200 "$HTTP_STATUS" "GET /health"
sim GET /__sim/health
assert_eq ok "$(jbody .status)" "GET /__sim/health"

test_begin "seed and read one"
seed a '[{"pfaId":"P1","data":{"category":"Crane","monthlyRate":5,"source":"Rental"}},
         {"pfaId":"P2","version":7,"data":{"category":"Pump"}}]'
assert_eq 200 "$HTTP_STATUS" "seed"
assert_eq 2 "$(jbody .upserted)" "upserted count"
pems GET a /pfa/P1
assert_eq 200 "$HTTP_STATUS" "GET one"
assert_eq '{"pfaId":"P1","version":1,"data":{"category":"Crane","monthlyRate":5,"source":"Rental"}}' \
  "$(jbody tojson)" "GET one body"
pems GET a /pfa/P2
assert_eq 7 "$(jbody .version)" "seeded version kept"
pems GET a /pfa/NOPE
assert_eq 404 "$HTTP_STATUS" "unknown record"
sim GET /t/a/pfa/P1
assert_eq 401 "$HTTP_STATUS" "no credentials"
pems GET b /pfa/P1
assert_eq 404 "$HTTP_STATUS" "tenants are isolated"

test_begin "update"
pems PUT a /pfa/P1 '{"version":1,"changes":{"monthlyRate":7.5,"source":null,"class":"C1"}}'
assert_eq 200 "$HTTP_STATUS" "PUT applied"
assert_eq 2 "$(jbody .version)" "version bumped"
assert_eq '{"category":"Crane","monthlyRate":7.5,"class":"C1"}' "$(jbody '.data|tojson')" "changes applied, null removes"
assert_eq P1 "$(jbody .pfaId)" "pfaId echoed"
pems PUT a /pfa/P1 '{"version":1,"changes":{"class":"C2"}}'
assert_eq 409 "$HTTP_STATUS" "stale version"
assert_eq 2 "$(jbody .version)" "409 carries the current version"
assert_eq C1 "$(jbody .data.class)" "409 carries the current data"
assert_eq P1 "$(jbody .pfaId)" "409 carries pfaId"
pems PUT a /pfa/P1 'not json'
assert_eq 400 "$HTTP_STATUS" "malformed body"
pems PUT a /pfa/P1 '{"changes":{}}'
assert_eq 400 "$HTTP_STATUS" "missing version"
pems PUT a /pfa/P1 '{"version":2,"changes":[1]}'
assert_eq 400 "$HTTP_STATUS" "changes not an object"
pems PUT a /pfa/P1 '{"version":"2","changes":{}}'
assert_eq 400 "$HTTP_STATUS" "version not an integer"
pems PUT a /pfa/NOPE '{"version":1,"changes":{}}'
assert_eq 404 "$HTTP_STATUS" "PUT unknown record"
pems GET a /pfa/P1
assert_eq 2 "$(jbody .version)" "failed writes changed nothing"

test_begin "idempotency"
pems PUT a /pfa/P1 '{"version":2,"changes":{"model":"M1"}}' -H 'Idempotency-Key: item-1:2'
assert_eq 200 "$HTTP_STATUS" "first write"
first=$BODY
pems PUT a /pfa/P1 '{"version":2,"changes":{"model":"M1"}}' -H 'Idempotency-Key: item-1:2'
assert_eq 200 "$HTTP_STATUS" "replay status"
assert_eq "$first" "$BODY" "replay returns the remembered response"
pems GET a /pfa/P1
assert_eq 3 "$(jbody .version)" "replay not applied"
assert_eq 1 "$(stat_of a .duplicateWrites)" "duplicateWrites counted"
pems PUT a /pfa/P1 '{"version":1,"changes":{"model":"M2"}}' -H 'Idempotency-Key: item-2:1'
assert_eq 409 "$HTTP_STATUS" "failed write with a key"
pems PUT a /pfa/P1 '{"version":3,"changes":{"model":"M2"}}' -H 'Idempotency-Key: item-2:1'
assert_eq 200 "$HTTP_STATUS" "a failed request's key is not remembered"
assert_eq 4 "$(jbody .version)" "applied after the failure"
assert_eq 1 "$(stat_of a .duplicateWrites)" "still one duplicate"

test_begin "delete"
pems DELETE a /pfa/P2
assert_eq 400 "$HTTP_STATUS" "DELETE without version"
pems DELETE a '/pfa/P2?version=6'
assert_eq 409 "$HTTP_STATUS" "DELETE stale version"
assert_eq 7 "$(jbody .version)" "DELETE 409 body"
pems DELETE a '/pfa/P2?version=7' '' -H 'Idempotency-Key: del-1:7'
assert_eq 200 "$HTTP_STATUS" "DELETE"
assert_eq '{"pfaId":"P2","deleted":true,"version":8}' "$(jbody tojson)" "DELETE body"
pems DELETE a '/pfa/P2?version=7' '' -H 'Idempotency-Key: del-1:7'
assert_eq 200 "$HTTP_STATUS" "DELETE replay"
assert_eq 2 "$(stat_of a .duplicateWrites)" "DELETE replay counted"
pems GET a /pfa/P2
assert_eq 404 "$HTTP_STATUS" "deleted record reads 404"
pems PUT a /pfa/P2 '{"version":8,"changes":{}}'
assert_eq 404 "$HTTP_STATUS" "deleted record cannot be updated"
pems GET a '/pfa?limit=10'
assert_eq '{"pfaId":"P2","version":8,"deleted":true}' \
  "$(jbody '[.records[]|select(.pfaId=="P2")][0]|{pfaId,version,deleted}|tojson')" "pull shows the tombstone"
assert_eq null "$(jbody '[.records[]|select(.pfaId=="P2")][0].data')" "tombstone has no data"
assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$' \
  "$(jbody '.records[0].updatedAt')" "updatedAt format"

test_begin "control: edit and inspect"
sim POST "/__sim/records/P1/edit?tenant=a" '{"changes":{"class":"UP"}}'
assert_eq 200 "$HTTP_STATUS" "upstream edit"
assert_eq 5 "$(jbody .version)" "edit bumps version"
assert_eq UP "$(jbody .data.class)" "edit applied"
sim GET "/__sim/records/P1?tenant=a"
assert_eq 5 "$(jbody .version)" "GET /__sim/records"
assert_eq false "$(jbody .deleted)" "not deleted"
sim POST "/__sim/records/NOPE/edit?tenant=a" '{"changes":{}}'
assert_eq 404 "$HTTP_STATUS" "edit unknown"
sim POST "/__sim/records/P1/edit?tenant=a" '{"changes":5}'
assert_eq 400 "$HTTP_STATUS" "edit malformed"
seed a '[{"pfaId":"P3","data":{}}]'
sim POST "/__sim/records/P3/edit?tenant=a" '{"deleted":true}'
assert_eq 2 "$(jbody .version)" "upstream delete bumps version"
assert_eq true "$(jbody .deleted)" "upstream delete"

test_begin "pagination"
for b in 0 1 2; do
  recs=$(jq -cn --argjson b $b '[range($b*400; $b*400+400) | {pfaId: ("R" + (1000000 + . | tostring)), data: {n: .}}]')
  seed p "$recs"
  assert_eq 200 "$HTTP_STATUS" "seed batch $b"
  sleep 0.01
done
: >"$TEST_TMP/pages"
cursor="" pages=0 sizes=""
while [ $pages -lt 10 ]; do
  q="/pfa?limit=500"
  [ -n "$cursor" ] && q="$q&cursor=$(jq -rn --arg c "$cursor" '$c|@uri')"
  pems GET p "$q"
  [ "$HTTP_STATUS" = 200 ] || { fail "page status $HTTP_STATUS"; break; }
  pages=$((pages + 1))
  sizes="$sizes $(jbody '.records|length')"
  jbody '.records[]|[.updatedAt,.pfaId]|@tsv' >>"$TEST_TMP/pages"
  cursor=$(jbody '.nextCursor // empty')
  [ -z "$cursor" ] && break
done
assert_eq " 500 500 200" "$sizes" "page sizes"
assert_eq 1200 "$(cut -f2 "$TEST_TMP/pages" | sort -u | wc -l)" "every record once"
assert_eq "$(cat "$TEST_TMP/pages")" "$(LC_ALL=C sort "$TEST_TMP/pages")" "oldest change first, then pfaId"
since=$(sed -n 401p "$TEST_TMP/pages" | cut -f1)
pems GET p "/pfa?limit=500&updatedSince=$since"
assert_eq 500 "$(jbody '.records|length')" "updatedSince page 1"
assert_eq R1000400 "$(jbody '.records[0].pfaId')" "updatedSince is inclusive"
c2=$(jbody .nextCursor)
pems GET p "/pfa?limit=500&updatedSince=$since&cursor=$(jq -rn --arg c "$c2" '$c|@uri')"
assert_eq 300 "$(jbody '.records|length')" "updatedSince page 2"
assert_eq null "$(jbody .nextCursor)" "last page cursor null"
sim POST "/__sim/records/R1000005/edit?tenant=p" '{"changes":{"n":-1}}'
last=$(tail -1 "$TEST_TMP/pages" | cut -f1)
pems GET p "/pfa?limit=500&updatedSince=$last"
assert_eq R1000005 "$(jbody '.records[-1].pfaId')" "an edited record comes again, last"
assert_eq 2 "$(jbody '.records[-1].version')" "at its new version"
pems GET p "/pfa?updatedSince=2999-01-01T00:00:00Z"
assert_eq '{"records":[],"nextCursor":null}' "$(jbody tojson)" "nothing newer"
pems GET p "/pfa?updatedSince=$(jq -rn '"2020-01-01T00:00:00+02:00"|@uri')&limit=1"
assert_eq 1 "$(jbody '.records|length')" "offset form accepted"
for bad in limit=0 limit=501 limit=abc updatedSince=yesterday updatedSince=2024-02-30T00:00:00Z cursor=zz; do
  pems GET p "/pfa?$bad"
  assert_eq 400 "$HTTP_STATUS" "pull with $bad"
done

test_begin "faults"
seed f '[{"pfaId":"F1","data":{}},{"pfaId":"F2","data":{}}]'
sim POST "/__sim/faults?tenant=f" '{"status":503,"count":2,"retryAfter":7}'
assert_eq 200 "$HTTP_STATUS" "fault accepted"
pems GET f /pfa/F1
assert_eq 200 "$HTTP_STATUS" "a write fault spares reads"
pems PUT f /pfa/F1 '{"version":1,"changes":{}}'
assert_eq 503 "$HTTP_STATUS" "fault 1"
assert_eq 7 "$(header_value Retry-After)" "fault Retry-After"
pems DELETE f '/pfa/F2?version=1'
assert_eq 503 "$HTTP_STATUS" "fault 2 (any write)"
pems PUT f /pfa/F1 '{"version":1,"changes":{}}'
assert_eq 200 "$HTTP_STATUS" "fault count exhausted"
sim POST "/__sim/faults?tenant=f" '{"pfaId":"F2","status":500,"count":1}'
pems PUT f /pfa/F1 '{"version":2,"changes":{}}'
assert_eq 200 "$HTTP_STATUS" "record fault spares other records"
pems GET f /pfa/F2
assert_eq 500 "$HTTP_STATUS" "record fault hits reads of that record"
pems GET f /pfa/F2
assert_eq 200 "$HTTP_STATUS" "then gone"
sim POST "/__sim/faults?tenant=f" '{"status":429,"count":1,"retryAfter":"Wed, 21 Oct 2037 07:28:00 GMT","match":"pull"}'
pems GET f /pfa
assert_eq 429 "$HTTP_STATUS" "pull fault"
assert_eq "Wed, 21 Oct 2037 07:28:00 GMT" "$(header_value Retry-After)" "HTTP-date Retry-After verbatim"
sim POST "/__sim/faults?tenant=f" '{"pfaId":"F1","status":409,"count":1}'
pems PUT f /pfa/F1 '{"version":3,"changes":{}}'
assert_eq 409 "$HTTP_STATUS" "409 fault"
assert_eq 3 "$(jbody .version)" "409 fault carries the record"
sim POST "/__sim/faults?tenant=f" '{"status":0,"count":1}'
curl -s -o /dev/null -u u:p -X PUT --data-binary '{"version":3,"changes":{}}' --max-time 5 "$SIM/t/f/pfa/F1"
assert_eq 52 "$?" "status 0 closes the connection (curl: empty reply)"
sim POST "/__sim/faults?tenant=f" '{"delayMs":600,"count":1,"match":"reads"}'
t0=$(date +%s%N)
pems GET f /pfa/F1
t1=$(date +%s%N)
assert_eq 200 "$HTTP_STATUS" "delay-only fault answers normally"
assert_ge $(((t1 - t0) / 1000000)) 550 "delayMs delays"
sim POST "/__sim/faults?tenant=f" '{"status":503,"count":-1}'
for i in 1 2 3; do pems PUT f /pfa/F1 '{"version":3,"changes":{}}'; done
assert_eq 503 "$HTTP_STATUS" "count -1 is unlimited"
sim DELETE "/__sim/faults?tenant=f"
pems PUT f /pfa/F1 '{"version":3,"changes":{}}'
assert_eq 200 "$HTTP_STATUS" "DELETE /__sim/faults clears"
for bad in '{"count":1}' '{"status":99}' '{"status":500,"count":0}' '{"status":500,"match":"x"}' '[]'; do
  sim POST "/__sim/faults?tenant=f" "$bad"
  assert_eq 400 "$HTTP_STATUS" "bad fault $bad"
done
for bad in '{"status":503,"bodyHex":"abc"}' '{"status":503,"bodyHex":"zz"}' '{"status":503,"bodyBase64":"a*b="}' \
           '{"status":503,"body":"x","bodyHex":"00"}' '{"status":200,"match":"pull","endless":5}'; do
  sim POST "/__sim/faults?tenant=f" "$bad"
  assert_eq 400 "$HTTP_STATUS" "bad fault $bad"
done
assert_eq 4 "$(stat_of f '.requests["PUT /pfa/{id}"]["503"]')" "stats count injected statuses"

test_begin "faults answer any bytes (bodyHex, bodyBase64)"
sim POST "/__sim/faults?tenant=fb" '{"status":503,"match":"health","count":1,"bodyHex":"fffe00411b5b324ac3"}'
curl -s -o "$TEST_TMP/raw" -u u:p "$SIM/t/fb/health"
assert_eq fffe00411b5b324ac3 "$(od -An -tx1 "$TEST_TMP/raw" | tr -d ' \n')" "bodyHex answered byte for byte"
sim POST "/__sim/faults?tenant=fb" "{\"status\":500,\"match\":\"health\",\"count\":1,\"bodyBase64\":\"$(printf '\xff\x00\xc3\xa9' | base64)\"}"
curl -s -o "$TEST_TMP/raw" -u u:p "$SIM/t/fb/health"
assert_eq ff00c3a9 "$(od -An -tx1 "$TEST_TMP/raw" | tr -d ' \n')" "bodyBase64 answered byte for byte"

test_begin "endless pull pages, each with a fresh cursor"
sim POST "/__sim/faults?tenant=fe" '{"status":200,"match":"pull","count":-1,"endless":{"category":"Cranes"}}'
seen=""
for i in 1 2 3; do
  pems GET fe "/pfa?updatedSince=1970-01-01T00:00:00Z&cursor=${cur:-}"
  cur=$(jbody .nextCursor)
  assert_eq 1 "$(jbody '.records | length')" "page $i has one record"
  assert_eq Cranes "$(jbody '.records[0].data.category')" "page $i record has the fault's data"
  [[ " $seen " == *" $cur "* ]] && fail "cursor $cur came twice"
  seen="$seen $cur"
done
assert_eq "endless-3" "$cur" "cursors count up"
assert_eq 1 "$(stat_of f '.requests["PUT /pfa/{id}"]["0"]')" "stats count closed connections as 0"

test_begin "rate limit"
seed r '[{"pfaId":"X","data":{}}]'
sim POST "/__sim/config?tenant=r" '{"rateLimitRps":5}'
assert_eq 5 "$(jbody .rateLimitRps)" "config echo"
urls=()
for i in $(seq 1 20); do urls+=(-o /dev/null "$SIM/t/r/pfa/X"); done
codes=$(curl -s -u u:p -w '%{http_code}\n' "${urls[@]}")
assert_eq 5 "$(grep -c '^200$' <<<"$codes")" "5 requests pass in a second"
assert_eq 15 "$(grep -c '^429$' <<<"$codes")" "the rest are 429"
pems GET r /pfa/X
assert_eq 429 "$HTTP_STATUS" "still limited"
assert_eq 1 "$(header_value Retry-After)" "Retry-After: 1"
assert_eq 16 "$(stat_of r .rateLimited)" "rateLimited counted"
sleep 1.1
pems GET r /pfa/X
assert_eq 200 "$HTTP_STATUS" "window slides"
sim POST "/__sim/config?tenant=r" '{"rateLimitRps":0}'
codes=$(curl -s -u u:p -w '%{http_code}\n' "${urls[@]}")
assert_eq 20 "$(grep -c '^200$' <<<"$codes")" "0 turns the limit off"
sim POST "/__sim/config?tenant=r" '{"rateLimitRps":-1}'
assert_eq 400 "$HTTP_STATUS" "negative limit"

test_begin "maxRequestsInAnySecond"
murls=()
for i in $(seq 1 7); do murls+=(-o /dev/null "$SIM/t/m/health"); done
sim GET "/__sim/stats?tenant=m"
assert_eq 0 "$(jbody .maxRequestsInAnySecond)" "fresh tenant"
curl -s -u u:p "${murls[@]:0:9}"
sleep 1.2
curl -s -u u:p "${murls[@]}"
sleep 1.2
curl -s -u u:p "${murls[@]:0:15}"
assert_eq 7 "$(stat_of m .maxRequestsInAnySecond)" "the busiest one-second window"
assert_eq 15 "$(stat_of m .totalRequests)" "totalRequests"
assert_eq 15 "$(stat_of m '.requests["GET /health"]["200"]')" "all answered"

test_begin "latency: config"
sim GET "/__sim/config?tenant=l"
assert_eq '0 0' "$(jbody '"\(.latencyMs) \(.jitterMs)"')" "no latency by default"
sim POST "/__sim/config?tenant=l" '{"latencyMs":3000,"jitterMs":0}'
assert_eq 200 "$HTTP_STATUS" "latency set"
assert_eq '3000 0 0' "$(jbody '"\(.latencyMs) \(.jitterMs) \(.rateLimitRps)"')" "config echo"
for bad in '{"latencyMs":-1}' '{"latencyMs":"5"}' '{"latencyMs":1.5}' '{"jitterMs":600001}' \
           '{"jitterMs":null}'; do
  sim POST "/__sim/config?tenant=l" "$bad"
  assert_eq 400 "$HTTP_STATUS" "bad latency config $bad"
done
sim GET "/__sim/config?tenant=l"
assert_eq 3000 "$(jbody .latencyMs)" "bad configs changed nothing"

in_flight_is() { [ "$(stat_of "$1" .inFlight)" = "$2" ]; }

test_begin "latency: requests overlap, within a tenant and across tenants"
seed l '[{"pfaId":"L","data":{"n":0}}]'
seed q '[{"pfaId":"Q","data":{}}]'
t0=$SECONDS
pids=()
for i in $(seq 1 8); do
  curl -s -u u:p -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 30 \
    "$SIM/t/l/pfa/L" >"$TEST_TMP/lat.$i" &
  pids+=($!)
done
wait_for 10 in_flight_is l 8
assert_eq 8 "$(stat_of l .inFlight)" "8 requests of one tenant sleep at once"
pems GET q /pfa/Q
assert_eq 200 "$HTTP_STATUS" "another tenant answers meanwhile"
assert_eq 8 "$(stat_of l .inFlight)" "...before any delayed request of the slow tenant is answered"
wait "${pids[@]}"
elapsed=$((SECONDS - t0))
assert_eq 8 "$(cat "$TEST_TMP"/lat.* | grep -c '^200 ')" "every delayed request answered"
assert_eq 0 "$(cat "$TEST_TMP"/lat.* | awk '$2 < 3.0' | wc -l)" "each took at least latencyMs"
assert_le "$elapsed" 12 "side by side: 8 x 3 s in well under 24 s"
assert_eq 8 "$(stat_of l .maxInFlight)" "maxInFlight"
assert_eq 0 "$(stat_of l .inFlight)" "nothing left in flight"
assert_eq 1 "$(stat_of q .maxInFlight)" "the fast tenant had one at a time"

test_begin "latency: writes land after it, faults and 429s wait for it too"
sim POST "/__sim/config?tenant=l" '{"latencyMs":300}'
out=$(curl -s -u u:p -o /dev/null -w '%{http_code} %{time_total}' -X PUT \
  -H 'Content-Type: application/json' --data-binary '{"version":1,"changes":{"n":1}}' "$SIM/t/l/pfa/L")
assert_eq 200 "${out% *}" "delayed write"
assert_eq 1 "$(awk -v t="${out#* }" 'BEGIN { print (t >= 0.3) }')" "write waited ($out)"
assert_eq 1 "$(stat_of l .writesApplied)" "write applied"
sim POST "/__sim/faults?tenant=l" '{"status":503,"count":1}'
out=$(curl -s -u u:p -o /dev/null -w '%{http_code} %{time_total}' -X PUT \
  -H 'Content-Type: application/json' --data-binary '{"version":2,"changes":{"n":2}}' "$SIM/t/l/pfa/L")
assert_eq 503 "${out% *}" "fault"
assert_eq 1 "$(awk -v t="${out#* }" 'BEGIN { print (t >= 0.3) }')" "fault waited ($out)"
sim POST "/__sim/config?tenant=l" '{"rateLimitRps":1}'
codes=$(curl -s -u u:p -w '%{http_code} %{time_total}\n' -o /dev/null "$SIM/t/l/pfa/L" \
  -o /dev/null "$SIM/t/l/pfa/L")
assert_eq '200 429' "$(awk '{ printf "%s%s", (NR > 1 ? " " : ""), $1 }' <<<"$codes")" "limit holds"
assert_eq 0 "$(awk '$2 < 0.3' <<<"$codes" | wc -l)" "429 waited too"
sim POST "/__sim/config?tenant=l" '{"rateLimitRps":0}'

test_begin "jitter"
sim POST "/__sim/config?tenant=l" '{"latencyMs":0,"jitterMs":400}'
urls=()
for i in $(seq 1 20); do urls+=(-o /dev/null "$SIM/t/l/pfa/L"); done
times=$(curl -s -u u:p -w '%{http_code} %{time_total}\n' "${urls[@]}")
assert_eq 20 "$(grep -c '^200 ' <<<"$times")" "all answered"
assert_eq 1 "$(awk '$2 >= 0.1 { n++ } END { print (n > 0) }' <<<"$times")" "jitter delays some (P(none) < 1e-4)"
sim POST "/__sim/config?tenant=l" '{"latencyMs":200,"jitterMs":100}'
times=$(curl -s -u u:p -w '%{http_code} %{time_total}\n' "${urls[@]:0:30}")
assert_eq 0 "$(awk '$2 < 0.1' <<<"$times" | wc -l)" "never below latency - jitter"

test_begin "latency: stats reset keeps what is in flight, reset clears the latency"
sim POST "/__sim/config?tenant=l" '{"latencyMs":2000,"jitterMs":0}'
pids=()
for i in 1 2; do curl -s -u u:p -o /dev/null --max-time 30 "$SIM/t/l/pfa/L" & pids+=($!); done
wait_for 10 in_flight_is l 2
sim POST "/__sim/stats/reset?tenant=l"
assert_eq '2 2' "$(jbody '"\(.inFlight) \(.maxInFlight)"')" "in-flight survive a stats reset"
wait "${pids[@]}"
assert_eq '0 2' "$(stat_of l '"\(.inFlight) \(.maxInFlight)"')" "and leave"
sim POST "/__sim/reset?tenant=l"
sim GET "/__sim/config?tenant=l"
assert_eq '0 0' "$(jbody '"\(.latencyMs) \(.jitterMs)"')" "reset clears latency"

test_begin "auth"
seed s '[{"pfaId":"S","data":{}}]'
sim POST "/__sim/config?tenant=s" '{"username":"alice","password":"pw1"}'
SIM_USER=alice SIM_PASS=pw1 pems GET s /pfa/S
assert_eq 200 "$HTTP_STATUS" "right basic credentials"
SIM_USER=alice SIM_PASS=nope pems GET s /pfa/S
assert_eq 401 "$HTTP_STATUS" "wrong password"
sim GET /t/s/pfa/S '' -H 'x-api-key: k'
assert_eq 401 "$HTTP_STATUS" "api key when basic configured"
sim POST "/__sim/config?tenant=s" '{"username":null,"apiKey":"k-123"}'
sim GET /t/s/pfa/S '' -H 'x-api-key: k-123'
assert_eq 200 "$HTTP_STATUS" "right api key"
sim GET /t/s/pfa/S '' -H 'x-api-key: k-12'
assert_eq 401 "$HTTP_STATUS" "wrong api key"
sim GET /t/s/health
assert_eq 401 "$HTTP_STATUS" "no credentials at all"
sim GET /t/s/health '' -H 'x-api-key: k-123'
assert_eq '{"status":"ok"}' "$BODY" "tenant health"
assert_eq 2 "$(stat_of s '.requests["GET /health"]|add')" "health counted"

test_begin "odd pfaIds"
seed o '[{"pfaId":"A B/C?&%+é","data":{"k":1}}]'
enc=$(jq -rn '"A B/C?&%+é"|@uri')
pems GET o "/pfa/$enc"
assert_eq 200 "$HTTP_STATUS" "URL-encoded pfaId"
assert_eq "A B/C?&%+é" "$(jbody .pfaId)" "decoded pfaId"
sim GET "/__sim/records/$enc?tenant=o"
assert_eq 1 "$(jbody .data.k)" "control GET with encoded id"

test_begin "stats shape"
sim GET "/__sim/stats?tenant=a"
assert_eq a "$(jbody .tenant)" "tenant"
assert_eq '["DELETE /pfa/{id}","GET /health","GET /pfa","GET /pfa/{id}","PUT /pfa/{id}"]' \
  "$(jbody '.requests|keys|tojson')" "route keys"
assert_eq 2 "$(jbody '.requests["PUT /pfa/{id}"]["409"]')" "409s counted"
assert_eq 4 "$(jbody .writesApplied)" "writesApplied"
assert_eq 0 "$(jbody .rateLimited)" "rateLimited"
assert_ge "$(jbody .totalRequests)" 20 "totalRequests"
assert_eq "$(jbody '[.requests[]|add // 0]|add')" "$(jbody .totalRequests)" "routes add up"
sim POST "/__sim/stats/reset?tenant=a"
assert_eq 0 "$(jbody .totalRequests)" "stats reset"

test_begin "reset"
sim POST "/__sim/reset?tenant=a"
assert_eq 200 "$HTTP_STATUS" "reset tenant"
pems GET a /pfa/P1
assert_eq 404 "$HTTP_STATUS" "records gone"
pems GET p /pfa/R1000001
assert_eq 200 "$HTTP_STATUS" "other tenant kept"
sim POST "/__sim/reset?all=1"
pems GET p /pfa/R1000001
assert_eq 404 "$HTTP_STATUS" "reset all"
assert_eq 0 "$(stat_of r .rateLimitRps)" "config reset"

test_begin "unknown routes"
sim GET /nope
assert_eq 404 "$HTTP_STATUS" "unknown path"
sim GET /__sim/nope
assert_eq 404 "$HTTP_STATUS" "unknown control path"
pems POST a /pfa/X '{}'
assert_eq 404 "$HTTP_STATUS" "unknown tenant route"

test_begin "shutdown"
kill -0 "$SIM_PID" 2>/dev/null
assert_eq 0 "$?" "simulator still running"
kill -TERM "$SIM_PID"
wait "$SIM_PID"
assert_eq 0 "$?" "clean exit on SIGTERM ($(tail -c 600 "$TEST_TMP/sim.log"))"
SIM_PID=""
finish
