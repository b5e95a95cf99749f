# Sourced by tests/integration/test_*.sh: assertion helpers and the pass/fail count.
# Each test file runs against the stack started by scripts/stack (env already exported).
set -uo pipefail

PASSED=0
FAILED=0
CURRENT_TEST=""
TEST_TMP=$(mktemp -d)
trap 'rm -rf "$TEST_TMP"' EXIT

test_begin() { CURRENT_TEST=$1; }

pass() { PASSED=$((PASSED + 1)); }
fail() {
  FAILED=$((FAILED + 1))
  printf 'FAIL [%s] %s\n' "$CURRENT_TEST" "$*" >&2
}

assert_eq() {  # expected actual message
  if [ "$1" == "$2" ]; then pass; else fail "$3: expected '$1', got '$2'"; fi
}
assert_ne() {
  if [ "$1" != "$2" ]; then pass; else fail "$3: did not expect '$1'"; fi
}
assert_ge() {  # a >= b
  if [ "$1" -ge "$2" ] 2>/dev/null; then pass; else fail "$3: expected $1 >= $2"; fi
}
assert_le() {
  if [ "$1" -le "$2" ] 2>/dev/null; then pass; else fail "$3: expected $1 <= $2"; fi
}
assert_match() {  # regex actual message
  if [[ $2 =~ $1 ]]; then pass; else fail "$3: '$2' does not match /$1/"; fi
}

# api METHOD PATH [BODY] [extra curl args...]: sets HTTP_STATUS and BODY (the response)
# Uses $TOKEN for Authorization when set.
api() {
  local method=$1 path=$2 data=${3-}
  shift 3 2>/dev/null || shift $#
  local args=(-sk -X "$method" -o "$TEST_TMP/body" -w '%{http_code}' --max-time 30)
  [ -n "${TOKEN:-}" ] && args+=(-H "Authorization: Bearer $TOKEN")
  if [ -n "$data" ]; then
    args+=(-H 'Content-Type: application/json' --data-binary "$data")
  fi
  HTTP_STATUS=$(curl "${args[@]}" "$@" "$PEMS_URL$path")
  BODY=$(cat "$TEST_TMP/body")
}

# jq on the last response body
jbody() { printf '%s' "$BODY" | jq -r "$1" 2>/dev/null; }

# asserts status and the error envelope's code
assert_error() {  # status code message
  assert_eq "$1" "$HTTP_STATUS" "$3 (status)"
  assert_eq "$2" "$(jbody '.error.code')" "$3 (error.code)"
}

psql_q() { psql -qtAX "$DATABASE_URL" -v ON_ERROR_STOP=1 -c "$1"; }

# waits until the command succeeds: wait_for SECONDS cmd...
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.2
  done
}

# A call of a helper or program that does not exist (a fixture renamed under a test) fails
# the test, also from inside $(...), whose own fail would be counted in the subshell only.
# The worker's wake-up: wake_listen LISTENs, for 3 s, on the channel pemsworker LISTENs on;
# wake_heard ORG MESSAGE asserts that a notification for ORG came on it meanwhile.
WAKE_CHANNEL=$(grep -rhoE '"LISTEN [a-z_]+' "$(dirname "${BASH_SOURCE[0]}")/../../src/worker" |
  awk '{print $2}' | sort -u)
wake_listen() {
  { printf 'LISTEN %s;\n' "$WAKE_CHANNEL"; sleep 3; printf 'SELECT 1;\n'; } |
    psql -X "$DATABASE_URL" > "$TEST_TMP/wake.out" 2>&1 &
  WAKE_PID=$!
  sleep 1
}
wake_heard() {
  wait "$WAKE_PID"
  assert_match "notification \"$WAKE_CHANNEL\" with payload \"$1\"" "$(cat "$TEST_TMP/wake.out")" "$2"
}

command_not_found_handle() {
  printf 'FAIL [%s] no such command or helper: %s\n' "$CURRENT_TEST" "$1" >&2
  printf '%s\n' "$1" >> "$TEST_TMP/missing_commands"
  return 127
}

finish() {
  if [ -s "$TEST_TMP/missing_commands" ]; then
    FAILED=$((FAILED + $(wc -l < "$TEST_TMP/missing_commands")))
    : > "$TEST_TMP/missing_commands"
  fi
  printf '%s: %d passed, %d failed\n' "$(basename "$0" .sh)" "$PASSED" "$FAILED"
  [ "$FAILED" -eq 0 ]
}
