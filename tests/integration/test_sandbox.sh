#!/usr/bin/env bash
# The units' sandbox, exercised without systemd as PID 1: pemsd (under spawn-fcgi, with its
# pems-fcgi children and pemsworker), pemsworker --once and pemsctl run against the stack as
# an unprivileged user with no capability at all (setpriv: CapabilityBoundingSet= and
# AmbientCapabilities= empty, NoNewPrivileges=yes) under the seccomp filter of the units
# (sandbox_exec.py: SystemCallFilter=@system-service ~@privileged @resources,
# SystemCallErrorNumber=EPERM, MemoryDenyWriteExecute=yes, RestrictAddressFamilies=AF_UNIX
# AF_INET AF_INET6). They serve, reload, sync and stop as they do unconfined; a call the
# filter denies fails with EPERM (checked, so the sandbox is known to bite).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
fx_require_stack
SANDBOX=$(cd "$(dirname "$0")" && pwd)/sandbox_exec.py
PEMSD_PID=""
cleanup() {
  [ -n "$PEMSD_PID" ] && kill "$PEMSD_PID" 2>/dev/null
  rm -rf "$TEST_TMP"
}
trap cleanup EXIT
if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null || ! /usr/bin/python3 -c 'import seccomp' 2>/dev/null \
   || ! command -v systemd-analyze >/dev/null; then
  test_begin "sandbox tools"
  fail "needs root, setpriv, systemd-analyze and python3-seccomp (scripts/setup installs them)"
  finish; exit
fi

# the programs where the unprivileged user can read them (the checkout may be in /root)
chmod 755 "$TEST_TMP"
BIN=$TEST_TMP/bin
mkdir -p "$BIN"
cp "$BUILD_DIR/src/pemsd" "$BUILD_DIR/src/pems-fcgi" "$BUILD_DIR/src/pemsworker" "$BUILD_DIR/src/pemsctl" "$BIN/"
cp "$SANDBOX" "$TEST_TMP/sandbox_exec.py"
chmod -R a+rX "$TEST_TMP"
# confined CMD...: as nobody, no capability, no new privileges, the units' seccomp filter
confined() {
  setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs --bounding-set=-all \
    --inh-caps=-all --ambient-caps=-all -- /usr/bin/python3 "$TEST_TMP/sandbox_exec.py" -- "$@"
}
# the same, replacing the (background) shell, so $! is pemsd's pid
confined_exec() {
  exec setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs --bounding-set=-all \
    --inh-caps=-all --ambient-caps=-all -- /usr/bin/python3 "$TEST_TMP/sandbox_exec.py" -- "$@"
}
# the stack's shared counters file is root's; pemsd makes one beside its socket
export PEMS_METRICS_FILE=
# a sanitizer build (CI's second pass): ASan's own setrlimit(RLIMIT_CORE) and LeakSanitizer's
# ptrace are not the programs' calls, and the filter refuses them
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}disable_coredump=0:detect_leaks=0"
SECRET=0123456789abcdef0123456789abcdef
export JWT_SECRET=${JWT_SECRET:-$SECRET}

test_begin "the sandbox bites: what the units forbid fails with EPERM"
out=$(confined /usr/bin/python3 -c 'import mmap; mmap.mmap(-1, 4096, prot=7)' 2>&1)
assert_match "Operation not permitted" "$out" "a writable and executable mapping (MemoryDenyWriteExecute)"
out=$(confined /usr/bin/python3 -c 'import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW)' 2>&1)
assert_match "Operation not permitted" "$out" "an AF_PACKET socket (RestrictAddressFamilies)"
out=$(confined nice -n 5 true 2>&1)
assert_match "Permission denied|not permitted" "$out" "setpriority (~@resources)"
out=$(confined /usr/bin/python3 -c 'import os; os.setgroups([])' 2>&1)
assert_match "Operation not permitted" "$out" "setgroups (~@privileged)"
assert_eq "CapBnd:	0000000000000000" "$(confined grep CapBnd /proc/self/status)" "no capability in the bounding set"
assert_eq "NoNewPrivs:	1" "$(confined grep NoNewPrivs /proc/self/status)" "no new privileges"
assert_eq "Seccomp:	2" "$(confined grep '^Seccomp:' /proc/self/status)" "a seccomp filter"

test_begin "confined: pemsd --check-config, pemsctl"
out=$(confined "$BIN/pemsd" --check-config 2>&1)
assert_eq 0 "$?" "pemsd -t ($out)"
ORG=$(fx_org sandbox)
out=$(confined env PEMS_SQL_DIR="$PEMS_SQL_DIR" "$BIN/pemsctl" org list 2>&1)
assert_eq 0 "$?" "pemsctl org list (${out:0:300})"
assert_match "$ORG" "$out" "lists the organizations"
out=$(confined env PEMS_SQL_DIR="$PEMS_SQL_DIR" "$BIN/pemsctl" migrate 2>&1)
assert_eq 0 "$?" "pemsctl migrate, nothing to do (${out:0:300})"

test_begin "confined: spawn-fcgi + pemsd serve, reload and stop"
USER_ID=$(fx_user "$ORG" Read,Write,Sync)
TOKEN=$(fx_token "$USER_ID")
SOCK=$TEST_TMP/sandbox.sock
chmod 777 "$TEST_TMP"
confined_exec spawn-fcgi -n -s "$SOCK" -M 0660 -- "$BIN/pemsd" > "$TEST_TMP/pemsd.log" 2>&1 </dev/null &
PEMSD_PID=$!
children_up() { [ "$(grep -c 'event=child_started' "$TEST_TMP/pemsd.log")" -ge 5 ]; }
wait_for 15 children_up || fail "pemsd did not start its children: $(head -c 800 "$TEST_TMP/pemsd.log")"
fcgi() {  # fcgi PATH [AUTHORIZATION] -> the Status line's code; the answer in $TEST_TMP/f
  env -i REQUEST_METHOD=GET DOCUMENT_URI="$1" REQUEST_URI="$1" QUERY_STRING="${1#*\?}" \
    SCRIPT_NAME="${1%%\?*}" REMOTE_ADDR=127.0.0.1 ${2:+HTTP_AUTHORIZATION="Bearer $2"} \
    cgi-fcgi -bind -connect "$SOCK" >"$TEST_TMP/f" 2>/dev/null
  sed -n 's/^Status: \([0-9]*\).*/\1/p' "$TEST_TMP/f" | tr -d '\r' | head -n 1
}
serves() {
  assert_eq 200 "$(fcgi /api/pems/health)" "$1: health"
  assert_eq 200 "$(fcgi /api/pems/metrics)" "$1: metrics"
  assert_eq "pems_database_up 1" "$(grep '^pems_database_up' "$TEST_TMP/f")" "$1: the database is read"
  assert_eq 200 "$(fcgi "/api/pems/sync-status?organizationId=$ORG" "$TOKEN")" "$1: sync-status with a token"
}
serves "confined"
kill -HUP "$PEMSD_PID"
reloaded() { grep -q 'event=reload ' "$TEST_TMP/pemsd.log" && [ "$(grep -c 'event=child_started' "$TEST_TMP/pemsd.log")" -ge 10 ]; }
wait_for 15 reloaded || fail "no reload: $(tail -c 800 "$TEST_TMP/pemsd.log")"
sleep 1
serves "after SIGHUP"
kill -TERM "$PEMSD_PID"
wait "$PEMSD_PID"
assert_eq 0 "$?" "pemsd exits 0 on SIGTERM"
PEMSD_PID=""
assert_eq "" "$(grep -E 'not permitted|EPERM|child_died|signal=' "$TEST_TMP/pemsd.log" | head -n 3)" \
  "nothing denied, no child died"

test_begin "confined: pemsworker --once pulls and writes through libcurl"
out=$(confined "$BIN/pemsworker" --once 2>&1)
assert_eq 0 "$?" "pemsworker --once ($(tail -c 400 <<<"$out"))"
assert_eq "" "$(grep -E 'not permitted|level=error' <<<"$out" | head -n 3)" "nothing denied"

finish
