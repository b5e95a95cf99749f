#!/usr/bin/env bash
# nginx in front of the API: TLS versions, ALPN h2, JSON error bodies (400/404/413/429/501/502/505
# and malformed requests, with HSTS and nosniff),
# per-client rate limit, loopback-only metrics, idempotent stack start.
# Runs its own stack with a low client rate so the shared stack's clients are never throttled.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/private_stack.sh"
trap 'private_stack_stop; rm -rf "$TEST_TMP"' EXIT

RATE=5
BURST=5
private_stack_start nginx 9743 19380 26732 PEMS_FCGI_CHILDREN=2 \
  PEMS_CLIENT_RATE=$RATE PEMS_CLIENT_BURST=$BURST PEMS_SHUTDOWN_TIMEOUT=5 \
  || { fail "private stack"; finish; exit; }
HOST_PORT=127.0.0.1:$PEMS_HTTPS_PORT

# the limit is RATE/s: after a throttling test, wait for the bucket to drain
cool_down() { sleep $(((BURST + RATE - 1) / RATE + 1)); }

# handshake VERSION_FLAG: openssl s_client output; the client is allowed every version
# (SECLEVEL=0), so a refusal can only come from the server
handshake() {
  echo | timeout 10 openssl s_client -connect "$HOST_PORT" -servername localhost "$1" \
    -cipher 'DEFAULT@SECLEVEL=0' 2>&1
}

test_begin "TLS 1.0 and 1.1 refused"
for v in tls1 tls1_1; do
  out=$(handshake "-$v")
  assert_match "alert protocol version" "$out" "$v refused by the server"
  assert_match "Cipher is \(NONE\)" "$out" "$v: no session"
done

test_begin "TLS 1.2 and 1.3 accepted"
out=$(handshake -tls1_2)
assert_match "Protocol *: TLSv1\.2" "$out" "TLS 1.2 negotiated"
assert_match "Cipher is ECDHE-" "$out" "forward-secret cipher"
out=$(handshake -tls1_3)
assert_match "New, TLSv1\.3" "$out" "TLS 1.3 negotiated"
for v in 1.2 1.3; do
  code=$(curl -sk -o /dev/null -w '%{http_code}' --tlsv$v --tls-max $v "$PEMS_URL/api/pems/health")
  assert_eq 200 "$code" "health over TLS $v"
done
cool_down

test_begin "HTTP/2 offered with ALPN"
out=$(curl -skv --http2 -o /dev/null "$PEMS_URL/api/pems/health" 2>&1)
assert_match "ALPN: server accepted h2" "$out" "ALPN h2"
assert_eq 2 "$(curl -sk --http2 -o /dev/null -w '%{http_version}' "$PEMS_URL/api/pems/health")" "HTTP version"
assert_eq 1.1 "$(curl -sk --http1.1 -o /dev/null -w '%{http_version}' "$PEMS_URL/api/pems/health")" "HTTP/1.1 still served"

test_begin "outside /api/pems: JSON 404"
api GET /index.html
assert_error 404 not_found "/index.html"
ctype=$(curl -sk -o /dev/null -w '%{content_type}' "$PEMS_URL/no-such-page")
assert_match '^application/json' "$ctype" "content type"
api GET /dashboard/no-such.js
assert_error 404 not_found "a file the dashboard does not have"
cool_down

test_begin "/ is the dashboard, with its Content-Security-Policy"
curl -sk -D "$TEST_TMP/h" -o "$TEST_TMP/page" "$PEMS_URL/"
hdr() { sed -n "s/^$1: //Ip" "$TEST_TMP/h" | tr -d '\r' | tail -n 1; }
assert_match '^HTTP/[0-9.]+ 200' "$(head -n 1 "$TEST_TMP/h")" "status"
assert_match '^text/html' "$(hdr content-type)" "content type"
csp=$(hdr content-security-policy)
assert_match "script-src 'self';" "$csp" "scripts from the origin only"
assert_match "frame-ancestors 'none'" "$csp" "never framed"
assert_eq "" "$(grep -o "unsafe-inline" <<<"$csp")" "no inline script or style allowed"
assert_eq nosniff "$(hdr x-content-type-options)" "nosniff kept"
assert_match '^max-age=' "$(hdr strict-transport-security)" "HSTS kept"
assert_match '<script type="module" src="/dashboard/app.js">' "$(cat "$TEST_TMP/page")" "the page's module"
for f in /dashboard/app.js /javascript/chart.js/chart.esm.js /javascript/chart.js/chunks/helpers.segment.js; do
  assert_match '^text/javascript' "$(curl -sk -o /dev/null -w '%{content_type}' "$PEMS_URL$f")" "$f type"
done
assert_match '^text/css' "$(curl -sk -o /dev/null -w '%{content_type}' "$PEMS_URL/dashboard/dashboard.css")" "stylesheet type"
cool_down

# every answer nginx makes itself carries the two security headers
assert_security_headers() {  # HEADERS_FILE MESSAGE
  assert_match '(^|'$'\n'')strict-transport-security: max-age=31536000' "$(tr -d '\r' < "$1" | tr 'A-Z' 'a-z')" "$2: HSTS"
  assert_match '(^|'$'\n'')x-content-type-options: nosniff' "$(tr -d '\r' < "$1" | tr 'A-Z' 'a-z')" "$2: nosniff"
}
# raw REQUEST: sends the bytes (printf format) over TLS as they are; RAW_STATUS, RAW_HEADERS
# (file), BODY
raw() {
  printf "$1" | timeout 10 openssl s_client -quiet -ign_eof -connect "$HOST_PORT" \
    -servername localhost 2>/dev/null > "$TEST_TMP/raw"
  RAW_STATUS=$(head -n 1 "$TEST_TMP/raw" | cut -d' ' -f2)
  sed -n '1,/^\r\{0,1\}$/p' "$TEST_TMP/raw" > "$TEST_TMP/raw_headers"
  BODY=$(sed '1,/^\r\{0,1\}$/d' "$TEST_TMP/raw")
}
assert_envelope() {  # STATUS CODE MESSAGE: the last raw answer is the JSON error envelope
  assert_eq "$1" "$RAW_STATUS" "$3 (status)"
  assert_eq "$2" "$(jbody '.error.code')" "$3 (error.code)"
  assert_eq 0 "$(jbody '.error.details | length')" "$3 (details)"
  assert_match 'content-type: application/json' "$(tr 'A-Z' 'a-z' < "$TEST_TMP/raw_headers")" "$3 (content type)"
  assert_security_headers "$TEST_TMP/raw_headers" "$3"
}

test_begin "malformed request lines: JSON envelope, not nginx's HTML page"
# a path nginx cannot decode or normalize, sent as it is
for path in '/api/pems/health%00' '/api/pems/health%zz' '/../api/pems/health' '/api/pems/%2e%2e/%2e%2e/x%00'; do
  HTTP_STATUS=$(curl -sk --path-as-is -D "$TEST_TMP/h" -o "$TEST_TMP/body" -w '%{http_code}' "$PEMS_URL$path")
  BODY=$(cat "$TEST_TMP/body")
  assert_error 400 validation_failed "GET $path"
  assert_security_headers "$TEST_TMP/h" "GET $path"
done
HTTP_STATUS=$(curl -sk -X get -D "$TEST_TMP/h" -o "$TEST_TMP/body" -w '%{http_code}' "$PEMS_URL/api/pems/health")
BODY=$(cat "$TEST_TMP/body")
assert_error 400 validation_failed "lowercase method over HTTP/2"
raw 'get /api/pems/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
assert_envelope 400 validation_failed "lowercase method over HTTP/1.1"
raw 'GET /api/pems/hea\001lth HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
assert_envelope 400 validation_failed "a control character in the path"
raw 'GET /api/pems/he\talth HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
assert_envelope 400 validation_failed "a tab in the path"
raw 'GET /api/pems/health HTTP/1.1\r\nHost: local\001host\r\nConnection: close\r\n\r\n'
assert_envelope 400 validation_failed "a control character in Host"
cool_down

test_begin "501 and 505: JSON envelope"
raw 'GET /api/pems/health HTTP/2.0\r\nHost: localhost\r\nConnection: close\r\n\r\n'
assert_envelope 505 validation_failed "HTTP/2.0 request line over TLS/1.1 framing"
raw 'GET /api/pems/health HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n'
assert_envelope 501 validation_failed "unsupported Transfer-Encoding"
assert_eq "" "$(grep -i '<html' "$TEST_TMP/raw")" "501: no HTML"
cool_down

test_begin "nginx's own errors keep HSTS and nosniff"
curl -sk -D "$TEST_TMP/h" -o /dev/null "$PEMS_URL/index.html"
assert_security_headers "$TEST_TMP/h" "404 outside the API"
head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' 'a' > "$TEST_TMP/big"
curl -sk -D "$TEST_TMP/h" -o /dev/null -H 'Content-Type: application/json' --data-binary @"$TEST_TMP/big" \
  "$PEMS_URL/api/pems/modifications"
assert_security_headers "$TEST_TMP/h" "413"
cool_down

test_begin "413 JSON for a body over 1 MiB"
head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' 'a' > "$TEST_TMP/big"
api POST /api/pems/modifications "" -H 'Content-Type: application/json' --data-binary @"$TEST_TMP/big"
assert_error 413 payload_too_large "1 MiB + 1 byte"
head -c $((1024 * 1024)) /dev/zero | tr '\0' 'a' > "$TEST_TMP/max"
api POST /api/pems/modifications "" -H 'Content-Type: application/json' --data-binary @"$TEST_TMP/max"
assert_ne 413 "$HTTP_STATUS" "exactly 1 MiB passes nginx"
cool_down

test_begin "429 JSON past the client rate"
rm -rf "$TEST_TMP/burst" && mkdir "$TEST_TMP/burst"
# 40 requests at once against RATE=5/s, BURST=5: about 6 pass, the rest are limited
curl -sk --parallel --parallel-max 40 -o /dev/null -w '%{http_code}\n' \
  "$PEMS_URL/api/pems/health?n=[1-40]" > "$TEST_TMP/burst/codes" 2>/dev/null
limited=$(grep -c '^429$' "$TEST_TMP/burst/codes")
served=$(grep -cE '^(200|503)$' "$TEST_TMP/burst/codes")
assert_ge "$limited" 25 "requests limited"
assert_ge "$served" 1 "requests within the burst served"
assert_le "$served" $((BURST + 3)) "requests served"
# one limited response, looked at closely (sequential requests outrun 5/s at once)
for _ in $(seq 1 30); do
  HTTP_STATUS=$(curl -sk -D "$TEST_TMP/hdrs" -o "$TEST_TMP/body" -w '%{http_code}' "$PEMS_URL/api/pems/health")
  [ "$HTTP_STATUS" = 429 ] && break
done
BODY=$(cat "$TEST_TMP/body")
assert_error 429 rate_limited "a limited request"
assert_eq 0 "$(jbody '.error.details | length')" "details is an empty array"
assert_ne "" "$(jbody '.error.message')" "message"
hdrs=$(cat "$TEST_TMP/hdrs")
assert_match 'content-type: application/json' "$hdrs" "429 content type"
assert_match 'retry-after: 1' "$hdrs" "429 Retry-After"
assert_security_headers "$TEST_TMP/hdrs" "429"

test_begin "the limit is per client address"
code=$(curl -sk --interface 127.0.0.2 -o /dev/null -w '%{http_code}' "$PEMS_URL/api/pems/health")
assert_eq 200 "$code" "another address is not throttled"
cool_down
api GET /api/pems/health
assert_eq 200 "$HTTP_STATUS" "the bucket refills"

test_begin "metrics: loopback 127.0.0.1 only"
code=$(curl -sk -o "$TEST_TMP/metrics" -w '%{http_code}' "$PEMS_URL/api/pems/metrics")
assert_eq 200 "$code" "from 127.0.0.1"
assert_ne "" "$(head -c 64 "$TEST_TMP/metrics")" "metrics body"
BODY=$(curl -sk --interface 127.0.0.2 "$PEMS_URL/api/pems/metrics")
HTTP_STATUS=$(curl -sk --interface 127.0.0.2 -o /dev/null -w '%{http_code}' "$PEMS_URL/api/pems/metrics")
assert_error 403 forbidden "from 127.0.0.2"
cool_down

test_begin "start is idempotent"
nginx_pid=$(cat "$STACK_DIR/nginx/nginx.pid")
pemsd=$(pemsd_pid)
"$PEMS_ROOT/scripts/stack" start >/dev/null 2>&1
assert_eq 0 "$?" "second start succeeds"
assert_eq "$nginx_pid" "$(cat "$STACK_DIR/nginx/nginx.pid")" "same nginx"
assert_eq "$pemsd" "$(pemsd_pid)" "same pemsd"
assert_eq 1 "$(pgrep -f "nginx: master process .*$STACK_DIR" | wc -l)" "one nginx master"
assert_eq 1 "$(pgrep -x pemsd | while read -r p; do [ "$p" = "$pemsd" ] && echo x; done | wc -l)" "pemsd listed once"
cool_down

test_begin "application down: JSON 502, then back"
kill -TERM "$pemsd"
wait_for 10 bash -c "! ps -o stat= -p $pemsd | grep -qv Z"
api GET /api/pems/health "" -D "$TEST_TMP/h"
assert_error 502 service_unavailable "pemsd stopped"
assert_match 'retry-after: 5' "$(tr -d '\r' < "$TEST_TMP/h")" "502 Retry-After"
assert_security_headers "$TEST_TMP/h" "502"
"$PEMS_ROOT/scripts/stack" start >/dev/null 2>&1
assert_eq 0 "$?" "start brings pemsd back"
api GET /api/pems/health
assert_eq 200 "$HTTP_STATUS" "health after restart"
"$PEMS_ROOT/scripts/stack" status > "$TEST_TMP/status"
assert_eq 4 "$(grep -c . "$TEST_TMP/status")" "status: one line per part"
assert_match "nginx: running" "$(cat "$TEST_TMP/status")" "status names nginx"

finish
