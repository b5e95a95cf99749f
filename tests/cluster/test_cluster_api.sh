#!/usr/bin/env bash
# The API on several hosts behind one nginx: requests spread over every host, what is written
# through one host is read through another at once, and a host's FastCGI port answers only
# the balancer (FCGI_WEB_SERVER_ADDRS).
. "$(dirname "$0")/cluster_lib.sh"
cl_require

test_begin "spread"
m=$(log_mark)
for _ in $(seq 1 40); do
  api GET /api/pems/health
  [ "$HTTP_STATUS" = 200 ] || fail "GET /health through the balancer: $HTTP_STATUS $BODY"
done
for n in $(seq 1 "$PEMS_CLUSTER_HOSTS"); do
  # round robin: each of N hosts answers about 40/N; at least a quarter of that
  assert_ge "$(served_by "$m" "$n")" $((40 / PEMS_CLUSTER_HOSTS / 4)) "requests answered by app$n"
done
assert_eq 40 "$(hosts_since "$m" | grep -c .)" "requests in the access log"

test_begin "read your write on another host"
ORG=$(fx_org cluster)
USER_ID=$(fx_user "$ORG" Read,Write,Sync)
TOKEN=$(fx_token "$USER_ID")
fx_mirror "$ORG" PFA-C1 3 "$FX_RECORD" >/dev/null
for i in $(seq 1 6); do
  m=$(log_mark)
  api POST /api/pems/modifications \
    "{\"organizationId\":\"$ORG\",\"pfaId\":\"PFA-C1\",\"operation\":\"update\",\"baseVersion\":3,\"delta\":{\"monthlyRate\":$((13000 + i))}}"
  assert_eq 201 "$HTTP_STATUS" "POST /modifications ($BODY)"
  id=$(jbody .id)
  writer=$(hosts_since "$m" | tail -n 1)
  # the very next requests, until one lands on another host (round robin: the next one)
  other=0
  for _ in 1 2 3 4; do
    m=$(log_mark)
    api GET "/api/pems/modifications/$id"
    assert_eq 200 "$HTTP_STATUS" "GET /modifications/$id right after the write"
    assert_eq "$((13000 + i))" "$(jbody .delta.monthlyRate)" "the delta read back"
    reader=$(hosts_since "$m" | tail -n 1)
    if [ "$reader" != "$writer" ]; then other=1; break; fi
  done
  assert_eq 1 "$other" "a read of write $i served by a host other than app$writer"
  api GET "/api/pems/modifications?organizationId=$ORG&status=pending_sync&limit=100"
  assert_eq "$i" "$(jbody '.modifications | length')" "the organization's list after write $i"
done

test_begin "FastCGI answers only the balancer"
# a FastCGI request (BEGIN_REQUEST responder, PARAMS, empty PARAMS and STDIN) by hand
fcgi_probe() {  # [NAMESPACE] ADDR: the first bytes of the answer, in hex (empty: closed)
  local nsx=()
  [ $# -eq 2 ] && { nsx=(ip netns exec "$1"); shift; }
  "${nsx[@]}" timeout 5 bash -c '
    exec 3<>"/dev/tcp/$1/9000" || exit 0
    printf "\x01\x01\x00\x01\x00\x08\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" >&3
    printf "\x01\x04\x00\x01\x00\x31\x00\x00\x0e\x03REQUEST_METHODGET\x0c\x10DOCUMENT_URI/api/pems/health" >&3
    printf "\x01\x04\x00\x01\x00\x00\x00\x00\x01\x05\x00\x01\x00\x00\x00\x00" >&3
    timeout 3 head -c 8 <&3 | od -An -tx1 | tr -d " \n"' _ "$1"
}
app1=$(sed -n 's/^ *server \(10\.[0-9.]*\):9000 .*/\1/p' "$PEMS_CLUSTER_DIR/nginx/sites-enabled/pems.conf" | head -n 1)
ns1=$(cl_ns app1)
# from the balancer's own address (root's end of the link): a FastCGI STDOUT record (type 6)
assert_match '^0106' "$(fcgi_probe "$app1")" "a FastCGI request from nginx's address is answered"
# from any other address (here the host itself): closed without a byte
assert_eq "" "$(fcgi_probe "$ns1" "$app1")" "a FastCGI request from another address"

finish
