#!/usr/bin/env bash
# The nginx site inside Debian's own nginx.conf: a copy of /etc/nginx (the system's is never
# touched) with nginx/pems-site.conf.in enabled as sites-available + sites-enabled, or as
# conf.d/pems.conf, beside the stock default site; `nginx -t` clean (no error, no warning);
# then served from that layout: the site's own TLS versions, JSON errors and content type
# hold under Debian's http-level settings (ssl_protocols TLSv1 TLSv1.1..., default_type
# application/octet-stream, gzip on).
# Needs no stack.
. "$(dirname "$0")/lib.sh"
PEMS_ROOT=${PEMS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
RENDER=$PEMS_ROOT/nginx/render
PORT=$((8643 + ${PEMS_PORT_OFFSET:-0}))
ETC=$TEST_TMP/etc-nginx
NGINX_PID=""
trap '[ -n "$NGINX_PID" ] && kill -QUIT "$NGINX_PID" 2>/dev/null; rm -rf "$TEST_TMP"' EXIT

if [ ! -f /etc/nginx/nginx.conf ] || ! command -v nginx >/dev/null; then
  test_begin "Debian's nginx"
  fail "no /etc/nginx/nginx.conf or nginx (apt-get install nginx)"
  finish; exit
fi

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -keyout "$TEST_TMP/key.pem" -out "$TEST_TMP/cert.pem" >/dev/null 2>&1
chmod 644 "$TEST_TMP/key.pem"   # read by the master only; the copy lives in a private temp dir

# fresh_etc: a copy of the system's /etc/nginx whose absolute paths point into the copy; temp
# files and logs go to the test's directory through one conf.d file of the test's own
fresh_etc() {
  rm -rf "$ETC" "$TEST_TMP/log" "$TEST_TMP/temp"
  cp -a /etc/nginx "$ETC"
  mkdir -p "$TEST_TMP/log" "$TEST_TMP/temp"
  sed -i -e "s|/etc/nginx/|$ETC/|g" -e "s|/var/log/nginx/|$TEST_TMP/log/|g" \
    -e "s|/run/nginx.pid|$TEST_TMP/nginx.pid|" "$ETC/nginx.conf"
  local d
  for d in client_body fastcgi proxy uwsgi scgi; do
    echo "${d}_temp_path $TEST_TMP/temp/$d;"
  done > "$ETC/conf.d/zz-test-paths.conf"
  cp "$PEMS_ROOT/nginx/pems-fastcgi.conf" "$ETC/snippets/pems-fastcgi.conf"
  cp "$PEMS_ROOT/nginx/pems-dashboard.conf" "$ETC/snippets/pems-dashboard.conf"
}

# the site as a server gets it (nginx/README.md), with a certificate of the test's
render_site() {  # LISTEN (a bare port listens on IPv6 too, as the installed site does)
  local v6=""
  [[ $1 =~ ^[0-9]+$ ]] && v6="listen [::]:$1 ssl http2;"
  "$RENDER" "$PEMS_ROOT/nginx/pems-site.conf.in" LISTEN="$1" LISTEN_IPV6="$v6" SERVER_NAME=_ \
    FCGI_SOCKET="$TEST_TMP/no-such.sock" CLIENT_RATE=100 CLIENT_BURST=200 \
    DASHBOARD_DIR=/usr/local/share/pems-sync/dashboard JAVASCRIPT_DIR=/usr/share/javascript \
    TLS_CERT="$TEST_TMP/cert.pem" TLS_KEY="$TEST_TMP/key.pem"
}

ngx() { nginx -e "$TEST_TMP/log/error.log" -c "$ETC/nginx.conf" "$@"; }

# nginx -t output without the one warning a non-root run always gets
check_output() {
  ngx -t 2>&1 | grep -v 'the "user" directive makes sense only if the master process runs with super-user'
}

test_begin "render refuses a placeholder left without a value"
out=$("$RENDER" "$PEMS_ROOT/nginx/pems-site.conf.in" LISTEN=443 2>&1 >/dev/null)
assert_ne 0 "$("$RENDER" "$PEMS_ROOT/nginx/pems-site.conf.in" LISTEN=443 >/dev/null 2>&1; echo $?)" "exit status"
assert_match "no value for .*@FCGI_SOCKET@" "$out" "names what is missing"
site=$(render_site 443)
assert_eq "" "$(grep -o '@[A-Z_]*@' <<<"$site")" "a full render leaves no placeholder"

test_begin "sites-available + sites-enabled, beside the default site: nginx -t"
fresh_etc
render_site 443 > "$ETC/sites-available/pems"
ln -s ../sites-available/pems "$ETC/sites-enabled/pems"
assert_eq 1 "$(ls "$ETC/sites-enabled" | grep -c '^default$')" "Debian's default site still enabled"
out=$(check_output); rc=$?
assert_match "syntax is ok" "$out" "syntax"
assert_match "test is successful" "$out" "test"
assert_eq "" "$(grep -E '\[(warn|emerg|crit|alert)\]' <<<"$out")" "no warning, no error"
dump=$(ngx -T 2>/dev/null)
assert_eq 1 "$(grep -c "^# configuration file $ETC/sites-enabled/pems:" <<<"$dump")" "the site is loaded"
assert_eq 1 "$(grep -c "^# configuration file $ETC/snippets/pems-fastcgi.conf:" <<<"$dump")" \
  "the snippet is loaded from snippets/"
assert_eq 1 "$(grep -c '^pid ' "$ETC/nginx.conf")" "nginx.conf keeps its one pid"
assert_eq "" "$(grep -E '^\s*(pid|user|error_log|access_log|include .*mime|default_type application/octet)' "$ETC/sites-available/pems")" \
  "the site sets nothing nginx.conf sets"

test_begin "the site make install puts in pkgdatadir: nginx -t"
BUILT=${BUILD_DIR:-$PEMS_ROOT/build}/nginx/pems-site.conf
if [ ! -f "$BUILT" ]; then
  fail "$BUILT not built (make renders it)"
else
  fresh_etc
  # as installed, but with the test's certificate where Debian's snakeoil pair would be
  sed -e "s|/etc/ssl/certs/ssl-cert-snakeoil.pem|$TEST_TMP/cert.pem|" \
      -e "s|/etc/ssl/private/ssl-cert-snakeoil.key|$TEST_TMP/key.pem|" "$BUILT" > "$ETC/sites-available/pems"
  assert_eq 2 "$(diff "$BUILT" "$ETC/sites-available/pems" | grep -c '^>')" "only the two certificate lines differ"
  ln -s ../sites-available/pems "$ETC/sites-enabled/pems"
  out=$(check_output)
  assert_match "test is successful" "$out" "test"
  assert_eq "" "$(grep -E '\[(warn|emerg|crit|alert)\]' <<<"$out")" "no warning, no error"
  assert_eq "443 ssl http2;|[::]:443 ssl http2;" "$(sed -nE 's/^ *listen (.*)$/\1/p' "$BUILT" | paste -sd'|')" \
    "listens on 443 and [::]:443"
  # unchanged, with ssl-cert's snakeoil pair (the package recommends ssl-cert), when the host has it
  if [ -r /etc/ssl/private/ssl-cert-snakeoil.key ]; then
    fresh_etc
    cp "$BUILT" "$ETC/sites-available/pems"
    ln -s ../sites-available/pems "$ETC/sites-enabled/pems"
    out=$(check_output)
    assert_match "test is successful" "$out" "with ssl-cert's snakeoil pair: test"
    assert_eq "" "$(grep -E '\[(warn|emerg|crit|alert)\]' <<<"$out")" "with the snakeoil pair: no warning"
  fi
fi

test_begin "conf.d/pems.conf: nginx -t"
fresh_etc
render_site 443 > "$ETC/conf.d/pems.conf"
out=$(check_output)
assert_match "test is successful" "$out" "test"
assert_eq "" "$(grep -E '\[(warn|emerg|crit|alert)\]' <<<"$out")" "no warning, no error"

test_begin "a broken site is caught (the check can fail)"
fresh_etc
render_site 443 | sed 's/limit_req zone=pems_clients/limit_req zone=no_such_zone/' > "$ETC/conf.d/pems.conf"
out=$(check_output)
assert_match "\[emerg\]" "$out" "unknown zone rejected"

test_begin "served from Debian's layout"
if ss -Hltn "sport = :$PORT" | grep -q .; then
  fail "port $PORT is taken by another program"
else
  fresh_etc
  rm -f "$ETC/sites-enabled/default"   # port 80 is not the test's to take
  render_site "127.0.0.1:$PORT" > "$ETC/sites-available/pems"
  ln -s ../sites-available/pems "$ETC/sites-enabled/pems"
  if ngx 2>"$TEST_TMP/start.err"; then
    wait_for 10 test -s "$TEST_TMP/nginx.pid"
    NGINX_PID=$(cat "$TEST_TMP/nginx.pid")
    PEMS_URL=https://127.0.0.1:$PORT
    api GET /index.html
    assert_error 404 not_found "outside /api/pems"
    assert_match '^application/json' "$(curl -sk -o /dev/null -w '%{content_type}' "$PEMS_URL/")" \
      "content type (not Debian's application/octet-stream)"
    api GET /api/pems/health
    assert_error 502 service_unavailable "no pems-fcgi behind the socket"
    out=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -tls1_1 \
      -cipher 'DEFAULT@SECLEVEL=0' 2>&1)
    assert_match "alert protocol version" "$out" "TLS 1.1 refused although nginx.conf allows it"
    assert_match "New, TLSv1\.3" "$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" 2>&1)" \
      "TLS 1.3"
    hdrs=$(curl -sk --http2 -D - -o /dev/null "$PEMS_URL/")
    assert_match "HTTP/2 404" "$hdrs" "HTTP/2"
    assert_match "strict-transport-security: max-age=31536000" "$hdrs" "HSTS"
    assert_eq 1 "$(grep -c 'GET /index.html' "$TEST_TMP/log/access.log")" \
      "requests are logged in nginx.conf's access log"
    kill -QUIT "$NGINX_PID"
    wait_for 10 bash -c "! kill -0 $NGINX_PID 2>/dev/null" || fail "nginx did not stop"
    NGINX_PID=""
  else
    fail "nginx did not start: $(cat "$TEST_TMP/start.err")"
  fi
fi

finish
