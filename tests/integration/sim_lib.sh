# Sourced by test_sim.sh / test_pems_client.sh after lib.sh: starts a private PEMS simulator
# on a free port (pems-sim --port 0) and offers helpers to call it.

find_bin() {  # name relative to the build dir, e.g. tests/pems-sim/pems-sim
  local rel=$1 name
  name=$(basename "$rel")
  for d in "${BUILD_DIR:-}" "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build"; do
    if [ -n "$d" ] && [ -x "$d/$rel" ]; then printf '%s\n' "$d/$rel"; return 0; fi
  done
  command -v "$name" 2>/dev/null
}

SIM_BIN=${PEMS_SIM_BIN:-$(find_bin tests/pems-sim/pems-sim)}
[ -x "$SIM_BIN" ] || { echo "pems-sim not found (set BUILD_DIR or PEMS_SIM_BIN)" >&2; exit 1; }

sim_start() {
  SIM_PID=""
  "$SIM_BIN" --port 0 >"$TEST_TMP/sim.out" 2>"$TEST_TMP/sim.log" &
  SIM_PID=$!
  local i
  for i in $(seq 1 50); do
    SIM_PORT=$(sed -n 's/^port=//p' "$TEST_TMP/sim.out" 2>/dev/null)
    [ -n "$SIM_PORT" ] && break
    sleep 0.1
  done
  [ -n "$SIM_PORT" ] || { echo "pems-sim did not start" >&2; cat "$TEST_TMP/sim.log" >&2; exit 1; }
  SIM=http://127.0.0.1:$SIM_PORT
  trap 'sim_stop; rm -rf "$TEST_TMP"' EXIT
}

sim_stop() {
  if [ -n "${SIM_PID:-}" ]; then
    kill "$SIM_PID" 2>/dev/null
    wait "$SIM_PID" 2>/dev/null
    SIM_PID=""
  fi
}

# sim METHOD PATH [BODY] [extra curl args...]: sets HTTP_STATUS, BODY and HEADERS
sim() {
  local method=$1 path=$2 data=${3-}
  shift 3 2>/dev/null || shift $#
  local args=(-s -X "$method" -o "$TEST_TMP/body" -D "$TEST_TMP/headers" -w '%{http_code}'
    --max-time 20)
  [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
  HTTP_STATUS=$(curl "${args[@]}" "$@" "$SIM$path")
  BODY=$(cat "$TEST_TMP/body" 2>/dev/null)
  HEADERS=$(tr -d '\r' <"$TEST_TMP/headers" 2>/dev/null)
}

# the tenant API with credentials: pems METHOD TENANT PATH [BODY] [curl args...]
pems() {
  local method=$1 tenant=$2 path=$3 data=${4-}
  shift 4 2>/dev/null || shift $#
  sim "$method" "/t/$tenant$path" "$data" -u "${SIM_USER:-user}:${SIM_PASS:-secret}" "$@"
}

header_value() {  # name: value of that header in the last response
  printf '%s\n' "$HEADERS" | awk -v n="$(echo "$1" | tr A-Z a-z)" -F': ' \
    'tolower($1) == n { print $2 }'
}

stat_of() {  # tenant jq-expression
  curl -s --max-time 10 "$SIM/__sim/stats?tenant=$1" | jq -r "$2"
}
