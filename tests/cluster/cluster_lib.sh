# Sourced by tests/cluster/test_*.sh: the integration helpers, plus the rig's verbs and a view
# of nginx's access log (which app host answered each request). Run through
# `scripts/test cluster`, which starts the rig (scripts/cluster) and exports its env.
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEMS_ROOT=$(cd "$TESTS_DIR/.." && pwd)
. "$TESTS_DIR/integration/lib.sh"
. "$TESTS_DIR/integration/fixtures.sh"
. "$TESTS_DIR/integration/worker_fixtures.sh"

rig() { "$PEMS_ROOT/scripts/cluster" "$@"; }

cl_require() {
  [ -n "${PEMS_CLUSTER_DIR:-}" ] && [ -n "${PEMS_CLUSTER_OUTSIDE_ADDR:-}" ] \
    || { fail "no rig env (eval \"\$(scripts/cluster env)\")"; finish; exit 1; }
  wfx_require
}

ACCESS_LOG=${PEMS_CLUSTER_DIR:-/nonexistent}/log/access.log
# log_mark: the access log's current length (lines); log_since MARK: the lines after it
log_mark() { wc -l < "$ACCESS_LOG" 2>/dev/null || echo 0; }
log_since() { tail -n +$(($1 + 1)) "$ACCESS_LOG" 2>/dev/null; }
# host_of UPSTREAM_ADDR (10.x.(10+N).2:9000) -> N
host_of() { local a=${1%%:*}; a=${a#*.*.}; echo $(( ${a%%.*} - 10 )); }
# hosts_since MARK -> "N status method uri" per request, the host that answered last
hosts_since() {
  log_since "$1" | while read -r _ up _; do
    local last=${up##* }; last=${last%,}
    [[ $last == *:9000 ]] && host_of "$last" || echo 0
  done
}
# served_by MARK N -> how many requests since MARK host N answered (its last upstream)
served_by() { hosts_since "$1" | grep -cx "$2" || true; }

# the worker's log of app host N
host_log() { cat "$PEMS_CLUSTER_DIR/log/app$1.log"; }
host_log_lines() { wc -l < "$PEMS_CLUSTER_DIR/log/app$1.log"; }

# one rig verb; a failure is a test failure
rig_ok() { rig "$@" >/dev/null 2>"$TEST_TMP/rig.err" || fail "scripts/cluster $*: $(tail -3 "$TEST_TMP/rig.err")"; }

# every host back up and on the database (a test that killed or cut one)
rig_heal_all() {
  local n
  for n in $(seq 1 "$PEMS_CLUSTER_HOSTS"); do rig heal "$n" >/dev/null 2>&1 || true; done
}
