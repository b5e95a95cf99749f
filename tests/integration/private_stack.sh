# Sourced by tests that stop, kill or throttle parts of the stack: they run their own stack
# (own STACK_DIR and ports) so the shared one, used by the other tests, is never disturbed.
#   private_stack_start NAME HTTPS_PORT SIM_PORT PG_PORT [VAR=value...]   (ports move by PEMS_PORT_OFFSET)
#   private_stack_stop
PEMS_ROOT=${PEMS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# the binaries under test: BUILD_DIR, else the directory the stack's PATH puts pemsd in
if [ -z "${BUILD_DIR:-}" ]; then
  _pemsd=$(command -v pemsd || true)
  [ -n "$_pemsd" ] && BUILD_DIR=$(cd "$(dirname "$_pemsd")/.." && pwd)
fi
export BUILD_DIR=${BUILD_DIR:-$PEMS_ROOT/build}

private_stack_start() {
  local name=$1
  local off=${PEMS_PORT_OFFSET:-0}
  export STACK_DIR=/tmp/pems-stack-$name-$(id -u)-$off
  export PEMS_HTTPS_PORT=$(($2 + off)) PEMS_SIM_PORT=$(($3 + off)) PEMS_PG_PORT=$(($4 + off))
  shift 4
  local kv
  for kv in "$@"; do export "${kv?}"; done
  "$PEMS_ROOT/scripts/stack" stop >/dev/null 2>&1 || true
  rm -rf "$STACK_DIR"   # fresh every time: no database left by another build's run
  local port
  for port in "$PEMS_HTTPS_PORT" "$PEMS_SIM_PORT" "$PEMS_PG_PORT"; do
    if ss -Hltn "sport = :$port" | grep -q .; then
      echo "private stack $name: port $port is taken by another program" >&2
      return 1
    fi
  done
  if ! "$PEMS_ROOT/scripts/stack" start; then
    echo "private stack $name did not start" >&2
    return 1
  fi
  eval "$("$PEMS_ROOT/scripts/stack" env)"
  PRIVATE_STACK=1
}

private_stack_stop() {
  [ -n "${PRIVATE_STACK:-}" ] || return 0
  "$PEMS_ROOT/scripts/stack" stop >/dev/null 2>&1 || true
  PRIVATE_STACK=
}

pemsd_log_tail() { tail -n 60 "$STACK_DIR/log/pemsd.log" 2>/dev/null | sed 's/^/  pemsd.log: /' >&2; }
pemsd_pid() { cat "$STACK_DIR/pemsd.pid" 2>/dev/null; }
# children of pemsd running program $1, one pid per line
children_of() { pgrep -P "$(pemsd_pid)" -x "$1" | sort; }
