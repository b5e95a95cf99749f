#!/usr/bin/env bash
# pemsd supervision: process tree, restart after kill -9 under load, crash-loop backoff,
# SIGHUP replacement, SIGTERM drain, start-up refusals. Destructive: runs its own stack.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/private_stack.sh"
trap 'private_stack_stop; rm -rf "$TEST_TMP"' EXIT

CHILDREN=3
SECRET=0123456789abcdef0123456789abcdef
KEY=$SECRET$SECRET
CONFIG_EXIT=78   # PEMS_EXIT_CONFIG (README, Configuration)

# --- pemsd alone under spawn-fcgi, with stand-in children -----------------------------------
# the stand-ins: one serves nothing and exits 0 on SIGTERM, one crashes at once, one ignores TERM
cat > "$TEST_TMP/idle-child" <<'EOF'
#!/bin/sh
trap 'exit 0' TERM
while :; do sleep 0.1; done
EOF
cat > "$TEST_TMP/crashing-child" <<'EOF'
#!/bin/sh
exit 3
EOF
cat > "$TEST_TMP/stubborn-child" <<'EOF'
#!/bin/sh
trap '' TERM
while :; do sleep 0.1; done
EOF
chmod +x "$TEST_TMP"/*-child

# standalone_pemsd LOG VAR=value...: pemsd on its own socket; sets STANDALONE_PID
standalone_pemsd() {
  local log=$1; shift
  rm -f "$TEST_TMP/sock"
  env DATABASE_URL=postgresql://unused JWT_SECRET=$SECRET ENCRYPTION_KEY=$KEY PEMS_FCGI_CHILDREN=2 "$@" \
    setsid spawn-fcgi -n -s "$TEST_TMP/sock" -M 0666 -- "$BUILD_DIR/src/pemsd" >"$log" 2>&1 </dev/null &
  STANDALONE_PID=$!
}

# the process has exited (a zombie child of this shell counts as exited)
gone() {
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null)
  [ -z "$st" ] || [[ $st == Z* ]]
}

# starts of program $2 logged in file $1, as epoch milliseconds
start_times_ms() {
  grep "event=child_started" "$1" | grep "program=.*$2" \
    | sed -E 's/^ts=([0-9T:.-]+)Z.*/\1/' \
    | while read -r ts; do date -u -d "${ts/T/ } UTC" +%s%3N; done
}

test_begin "refuses to start without JWT_SECRET"
out=$(env -u JWT_SECRET DATABASE_URL=postgresql://unused "$BUILD_DIR/src/pemsd" </dev/null 2>&1)
rc=$?
assert_ne 0 "$rc" "exit status"
assert_match "JWT_SECRET" "$out" "names the missing setting"

# every required setting is checked before anything is forked: the exit status is
# PEMS_EXIT_CONFIG, the message names the setting, and nothing was started
refuses() {  # NAME PATTERN VAR=value...
  local name=$1 pattern=$2; shift 2
  test_begin "refuses to start: $name"
  standalone_pemsd "$TEST_TMP/refuse.log" PEMS_FCGI_PROGRAM="$TEST_TMP/idle-child" \
    PEMS_WORKER_PROGRAM="$TEST_TMP/idle-child" "$@"
  wait_for 10 gone "$STANDALONE_PID" || { fail "pemsd still runs"; kill "$STANDALONE_PID"; }
  wait "$STANDALONE_PID"
  local rc=$?
  assert_eq "$CONFIG_EXIT" "$rc" "exit status"
  assert_match "$pattern" "$(cat "$TEST_TMP/refuse.log")" "names the setting"
  assert_eq 0 "$(grep -c 'event=child_started' "$TEST_TMP/refuse.log")" "no child started"
}
refuses "empty ENCRYPTION_KEY" "ENCRYPTION_KEY" ENCRYPTION_KEY=
refuses "ENCRYPTION_KEY not 64 hex" "ENCRYPTION_KEY" ENCRYPTION_KEY="${KEY:0:63}g"
refuses "ENCRYPTION_KEY too short" "ENCRYPTION_KEY" ENCRYPTION_KEY="${KEY:0:62}"
refuses "empty DATABASE_URL" "DATABASE_URL" DATABASE_URL=
refuses "bad schedule" "PEMS_WRITE_SYNC_SCHEDULE" PEMS_WRITE_SYNC_SCHEDULE="61 * * * *"
refuses "unknown time zone" "PEMS_WRITE_SYNC_TZ" PEMS_WRITE_SYNC_TZ="Mars/Olympus_Mons"
refuses "time zone outside the tz database" "PEMS_WRITE_SYNC_TZ" PEMS_WRITE_SYNC_TZ="../../etc/passwd"

test_begin "children exit with PEMS_EXIT_CONFIG on a bad configuration"
out=$(env -u ENCRYPTION_KEY DATABASE_URL=postgresql://unused "$BUILD_DIR/src/pemsworker" --once </dev/null 2>&1)
assert_eq "$CONFIG_EXIT" "$?" "pemsworker without ENCRYPTION_KEY"
assert_match "ENCRYPTION_KEY" "$out" "pemsworker names the setting"
out=$(env DATABASE_URL=postgresql://unused ENCRYPTION_KEY=$KEY PEMS_WRITE_SYNC_TZ=Nowhere/Land "$BUILD_DIR/src/pemsworker" --once </dev/null 2>&1)
assert_eq "$CONFIG_EXIT" "$?" "pemsworker with an unknown zone"
out=$(env -u JWT_SECRET DATABASE_URL=postgresql://unused "$BUILD_DIR/src/pems-fcgi" </dev/null 2>&1)
assert_eq "$CONFIG_EXIT" "$?" "pems-fcgi without JWT_SECRET"

test_begin "a child refusing its configuration stops pemsd instead of a restart loop"
printf '#!/bin/sh\necho "misconfigured-child: ENCRYPTION_KEY rejected" >&2\nexit %s\n' "$CONFIG_EXIT" \
  > "$TEST_TMP/misconfigured-child"
chmod +x "$TEST_TMP/misconfigured-child"
standalone_pemsd "$TEST_TMP/misconf.log" PEMS_FCGI_PROGRAM="$TEST_TMP/idle-child" \
  PEMS_WORKER_PROGRAM="$TEST_TMP/misconfigured-child" PEMS_SHUTDOWN_TIMEOUT=5
wait_for 10 gone "$STANDALONE_PID" || { fail "pemsd still runs after a configuration exit"; kill "$STANDALONE_PID"; }
wait "$STANDALONE_PID"
assert_eq "$CONFIG_EXIT" "$?" "pemsd exit status"
assert_eq 1 "$(grep -c 'event=child_started.*misconfigured-child' "$TEST_TMP/misconf.log")" "started once, never restarted"
assert_match "event=child_config_invalid .*program=pemsworker exit_code=$CONFIG_EXIT" \
  "$(cat "$TEST_TMP/misconf.log")" "logged with the child and its exit code"
assert_eq 0 "$(pgrep -f "$TEST_TMP/idle-child" | wc -l)" "the other children were stopped"

test_begin "refuses to start when fd 0 is not a listening socket"
out=$(env DATABASE_URL=postgresql://unused JWT_SECRET=$SECRET "$BUILD_DIR/src/pemsd" </dev/null 2>&1)
rc=$?
assert_ne 0 "$rc" "exit status"
assert_match "spawn-fcgi" "$out" "explains how to start it"
[[ $out == *0666* ]] && fail "suggests a world-writable socket: $out" || pass

test_begin "--check-config (-t): 0 and a line when valid, 78 and the setting when not"
out=$(env DATABASE_URL=postgresql://unused JWT_SECRET=$SECRET ENCRYPTION_KEY=$KEY \
  "$BUILD_DIR/src/pemsd" --check-config </dev/null 2>&1)
assert_eq 0 "$?" "valid: exit status"
assert_match "valid" "$out" "valid: says so"
printf 'PEMS_WRITE_SYNC_TZ=Mars/Olympus_Mons\n' > "$TEST_TMP/bad.conf"
out=$(env DATABASE_URL=postgresql://unused JWT_SECRET=$SECRET ENCRYPTION_KEY=$KEY \
  "$BUILD_DIR/src/pemsd" -t -c "$TEST_TMP/bad.conf" </dev/null 2>&1 >/dev/null)
assert_eq "$CONFIG_EXIT" "$?" "bad zone in the file: exit status"
assert_match "PEMS_WRITE_SYNC_TZ" "$out" "names the setting"
printf 'NO_SUCH_SETTING=1\n' > "$TEST_TMP/unknown.conf"
out=$(env DATABASE_URL=postgresql://unused JWT_SECRET=$SECRET ENCRYPTION_KEY=$KEY \
  "$BUILD_DIR/src/pemsd" -t -c "$TEST_TMP/unknown.conf" </dev/null 2>&1 >/dev/null)
assert_eq "$CONFIG_EXIT" "$?" "unknown setting: exit status"
assert_match "NO_SUCH_SETTING" "$out" "names it"
out=$(env -u JWT_SECRET DATABASE_URL=postgresql://unused ENCRYPTION_KEY=$KEY \
  "$BUILD_DIR/src/pemsd" -t </dev/null 2>&1 >/dev/null)
assert_eq "$CONFIG_EXIT" "$?" "no JWT_SECRET: exit status"
assert_match "JWT_SECRET" "$out" "names it"

test_begin "Type=notify: READY=1, RELOADING=1 with MONOTONIC_USEC, READY=1, STOPPING=1"
# the service manager's end of NOTIFY_SOCKET: one datagram per line in notify.log
cat > "$TEST_TMP/notify-listen.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
with open(sys.argv[2], "a", buffering=1) as out:
    try:
        while True:
            out.write(s.recv(4096).decode().replace("\n", " ") + "\n")
    except socket.timeout:
        pass
EOF
rm -f "$TEST_TMP/notify.sock" "$TEST_TMP/notify.log"
python3 "$TEST_TMP/notify-listen.py" "$TEST_TMP/notify.sock" "$TEST_TMP/notify.log" &
LISTENER=$!
wait_for 5 test -S "$TEST_TMP/notify.sock" || fail "listener did not bind"
cat > "$TEST_TMP/env-child" <<'EOF'
#!/bin/sh
echo "child NOTIFY_SOCKET=${NOTIFY_SOCKET:-unset}" >&2
trap 'exit 0' TERM
while :; do sleep 0.1; done
EOF
chmod +x "$TEST_TMP/env-child"
standalone_pemsd "$TEST_TMP/notify-pemsd.log" NOTIFY_SOCKET="$TEST_TMP/notify.sock" \
  PEMS_FCGI_PROGRAM="$TEST_TMP/env-child" PEMS_WORKER_PROGRAM="$TEST_TMP/env-child"
notified() { grep -q "$1" "$TEST_TMP/notify.log" 2>/dev/null; }
wait_for 10 notified '^READY=1' || fail "no READY=1: $(cat "$TEST_TMP/notify.log" 2>/dev/null)"
kill -HUP "$STANDALONE_PID"
wait_for 10 notified 'RELOADING=1' || fail "no RELOADING=1 after SIGHUP"
assert_match "RELOADING=1 MONOTONIC_USEC=[0-9]+" "$(grep RELOADING "$TEST_TMP/notify.log")" \
  "RELOADING=1 carries MONOTONIC_USEC"
wait_for 10 notified 'READY=1.*reloaded' || fail "no READY=1 after the reload"
kill -TERM "$STANDALONE_PID"
wait_for 10 notified 'STOPPING=1' || fail "no STOPPING=1 on SIGTERM"
wait_for 10 gone "$STANDALONE_PID" || kill -9 "$STANDALONE_PID"
wait "$STANDALONE_PID" 2>/dev/null
assert_eq "" "$(grep 'child NOTIFY_SOCKET=' "$TEST_TMP/notify-pemsd.log" | grep -v '=unset$')" \
  "the children do not get NOTIFY_SOCKET"
[ "$(grep -c 'child NOTIFY_SOCKET=unset' "$TEST_TMP/notify-pemsd.log")" -ge 3 ] \
  || fail "the stand-in children did not report: $(head -c 500 "$TEST_TMP/notify-pemsd.log")"
kill "$LISTENER" 2>/dev/null
wait "$LISTENER" 2>/dev/null

test_begin "crash loop is throttled by backoff"
standalone_pemsd "$TEST_TMP/crash.log" PEMS_FCGI_PROGRAM="$TEST_TMP/idle-child" \
  PEMS_WORKER_PROGRAM="$TEST_TMP/crashing-child" PEMS_SHUTDOWN_TIMEOUT=5
sleep 3.5
mapfile -t starts < <(start_times_ms "$TEST_TMP/crash.log" crashing-child)
# 100+200+400+800+1600 ms: about 6 starts in 3.5 s; without backoff it would be thousands
assert_ge "${#starts[@]}" 4 "the crashing child was restarted"
assert_le "${#starts[@]}" 7 "restarts in 3.5 s"
# each gap is at least its delay, 100 ms doubling (src/supervisor/supervisor.h); a busy machine
# only lengthens a gap, so a lower bound holds where a ratio of two gaps does not
short=""
for ((i = 1; i < ${#starts[@]}; i++)); do
  gap=$((starts[i] - starts[i - 1])) want=$((100 << (i - 1)))
  [ "$gap" -ge "$want" ] || short+=" gap $i ${gap} ms < ${want} ms"
done
assert_eq "" "$short" "restart gaps at least double (${starts[*]})"
assert_match "event=child_died .*program=pemsworker exit_code=3 .*restart_in_ms=400" \
  "$(cat "$TEST_TMP/crash.log")" "exit logged with its reason and the delay"
assert_eq 2 "$(pgrep -P "$STANDALONE_PID" -f idle-child | wc -l)" "other children unaffected"
kill -TERM "$STANDALONE_PID"
wait_for 5 gone "$STANDALONE_PID"
assert_eq 0 "$?" "pemsd exited after SIGTERM"
assert_eq 0 "$(pgrep -f "$TEST_TMP/idle-child" | wc -l)" "no child left"

test_begin "a child that ignores SIGTERM is killed at PEMS_SHUTDOWN_TIMEOUT"
standalone_pemsd "$TEST_TMP/stubborn.log" PEMS_FCGI_PROGRAM="$TEST_TMP/stubborn-child" \
  PEMS_WORKER_PROGRAM="$TEST_TMP/idle-child" PEMS_SHUTDOWN_TIMEOUT=2
wait_for 5 bash -c "[ \$(pgrep -P $STANDALONE_PID | wc -l) -eq 3 ]"
t0=$(date +%s%3N)
kill -TERM "$STANDALONE_PID"
wait_for 8 gone "$STANDALONE_PID"
elapsed=$(($(date +%s%3N) - t0))
assert_ge "$elapsed" 1900 "waited for the drain ($elapsed ms)"
assert_le "$elapsed" 4000 "gave up at the timeout ($elapsed ms)"
assert_eq 0 "$(pgrep -f "$TEST_TMP/(stubborn|idle)-child" | wc -l)" "no child left"
assert_match "event=shutdown_timeout" "$(cat "$TEST_TMP/stubborn.log")" "timeout logged"

test_begin "children die with a SIGKILLed pemsd (PR_SET_PDEATHSIG)"
standalone_pemsd "$TEST_TMP/orphans.log" PEMS_FCGI_PROGRAM="$TEST_TMP/idle-child" \
  PEMS_WORKER_PROGRAM="$TEST_TMP/idle-child"
wait_for 5 bash -c "[ \$(pgrep -P $STANDALONE_PID | wc -l) -eq 3 ]"
kill -KILL "$STANDALONE_PID"
wait "$STANDALONE_PID" 2>/dev/null
wait_for 5 bash -c "[ \$(pgrep -f '$TEST_TMP/idle-child' | wc -l) -eq 0 ]"
assert_eq 0 "$(pgrep -f "$TEST_TMP/idle-child" | wc -l)" "no orphan"

# --- the real programs, in a private stack ----------------------------------------------------
if [ ! -x "$BUILD_DIR/src/pems-fcgi" ] || [ ! -x "$BUILD_DIR/src/pemsworker" ]; then
  fail "pems-fcgi or pemsworker not built in $BUILD_DIR/src: stack tests skipped"
  finish
  exit
fi
private_stack_start supervisor 9643 19280 26632 PEMS_FCGI_CHILDREN=$CHILDREN \
  PEMS_SHUTDOWN_TIMEOUT=10 PEMS_CLIENT_RATE=100000 PEMS_CLIENT_BURST=100000 \
  || { fail "private stack"; finish; exit; }

test_begin "process tree"
PEMSD=$(pemsd_pid)
assert_eq pemsd "$(cat /proc/"$PEMSD"/comm)" "pemsd runs as itself (spawn-fcgi -n exec'd it)"
assert_eq "$CHILDREN" "$(children_of pems-fcgi | wc -l)" "pems-fcgi children"
assert_eq 1 "$(children_of pemsworker | wc -l)" "pemsworker child"
fcgi1=$(children_of pems-fcgi | head -1)
worker=$(children_of pemsworker)
assert_match '^socket:' "$(readlink /proc/"$fcgi1"/fd/0)" "pems-fcgi has the socket on fd 0"
assert_eq /dev/null "$(readlink /proc/"$worker"/fd/0)" "pemsworker's fd 0 is /dev/null"

# load LOOPS SECONDS: parallel curl loops on /health; one status per line in $TEST_TMP/load.N
load() {
  local loops=$1 secs=$2
  rm -f "$TEST_TMP"/load.*
  for n in $(seq 1 "$loops"); do
    (
      end=$((SECONDS + secs)) i=0
      while [ $SECONDS -lt $end ] && [ $i -lt 5000 ]; do
        curl -sk -o /dev/null -w '%{http_code}\n' --max-time 10 "$PEMS_URL/api/pems/health"
        i=$((i + 1))
      done > "$TEST_TMP/load.$n"
    ) &
  done
}
load_failures() { cat "$TEST_TMP"/load.* | grep -cv '^200$'; }
load_total() { cat "$TEST_TMP"/load.* | wc -l; }

test_begin "kill -9 of a pems-fcgi under load"
load 4 4
sleep 1
victim=$(children_of pems-fcgi | head -1)
kill -KILL "$victim"
wait
echo "kill -9 under load: $(load_failures) failed of $(load_total) requests"
assert_le "$(load_failures)" 2 "failed requests out of $(load_total)"
assert_ge "$(load_total)" 40 "requests made"
wait_for 2 gone "$victim"
assert_eq 0 "$?" "the killed child is gone"
wait_for 5 bash -c "[ \$(pgrep -P $PEMSD -x pems-fcgi | wc -l) -eq $CHILDREN ]"
assert_eq "$CHILDREN" "$(children_of pems-fcgi | wc -l)" "replaced"
assert_match "event=child_died child_pid=$victim program=pems-fcgi signal=SIGKILL" \
  "$(cat "$STACK_DIR/log/pemsd.log")" "death logged with the signal"

test_begin "kill -9 of pemsworker"
worker=$(children_of pemsworker)
kill -KILL "$worker"
wait_for 5 bash -c "w=\$(pgrep -P $PEMSD -x pemsworker); [ -n \"\$w\" ] && [ \"\$w\" != $worker ]"
new_worker=$(children_of pemsworker)
assert_eq 1 "$(printf '%s\n' "$new_worker" | grep -c .)" "one pemsworker"
assert_ne "$worker" "$new_worker" "a new pemsworker"

test_begin "SIGHUP replaces every child, service keeps answering"
old=$(children_of pems-fcgi; children_of pemsworker)
load 2 3
kill -HUP "$PEMSD"
wait_for 10 bash -c "[ -z \"\$(comm -12 <(echo '$old') <( (pgrep -P $PEMSD -x pems-fcgi; pgrep -P $PEMSD -x pemsworker) | sort))\" ] && [ \$(pgrep -P $PEMSD -x pems-fcgi | wc -l) -eq $CHILDREN ]"
wait
new=$(children_of pems-fcgi; children_of pemsworker)
assert_eq "" "$(comm -12 <(echo "$old") <(echo "$new"))" "no old child left"
assert_eq "$CHILDREN" "$(children_of pems-fcgi | wc -l)" "pems-fcgi count after reload"
assert_eq 1 "$(children_of pemsworker | wc -l)" "pemsworker count after reload"
assert_eq 0 "$(load_failures)" "failed requests during reload out of $(load_total)"
api GET /api/pems/health
assert_eq 200 "$HTTP_STATUS" "health after reload"

test_begin "SIGTERM drains and exits within PEMS_SHUTDOWN_TIMEOUT"
kids=$(pgrep -P "$PEMSD")
assert_eq "" "$(ps -o stat= --ppid "$PEMSD" | grep Z)" "no zombie children"
t0=$(date +%s%3N)
kill -TERM "$PEMSD"
wait_for 12 gone "$PEMSD"
elapsed=$(($(date +%s%3N) - t0))
assert_le "$elapsed" 10500 "pemsd exit time ($elapsed ms)"
left=0
for k in $kids; do gone "$k" || left=$((left + 1)); done
assert_eq 0 "$left" "children left"
assert_match "event=shutdown_complete" "$(tail -5 "$STACK_DIR/log/pemsd.log")" "clean exit logged"
assert_eq "" "$(ps -eo stat=,comm= | awk '$1 ~ /^Z/ && ($2 == "pems-fcgi" || $2 == "pemsworker")')" \
  "no zombie pems-fcgi/pemsworker anywhere"

test_begin "stack start brings pemsd back, stop leaves nothing"
"$PEMS_ROOT/scripts/stack" start >/dev/null 2>&1
api GET /api/pems/health
assert_eq 200 "$HTTP_STATUS" "health after restart"
PEMSD=$(pemsd_pid)
kids=$(pgrep -P "$PEMSD")
nginx_pid=$(cat "$STACK_DIR/nginx/nginx.pid")
"$PEMS_ROOT/scripts/stack" stop >/dev/null 2>&1
left=0
for p in $PEMSD $kids $nginx_pid; do gone "$p" || left=$((left + 1)); done
assert_eq 0 "$left" "processes left after stack stop"
PRIVATE_STACK=

finish
