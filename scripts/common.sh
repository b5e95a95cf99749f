# Sourced by the scripts: paths shared by setup, stack, test, demo and bench.
PEMS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Out-of-tree build so several builds (plain, sanitizers) can live side by side.
BUILD_DIR=${BUILD_DIR:-$PEMS_ROOT/build}
# absolute, so the PATH that `scripts/stack env` prints and every test that changes directory
# (make check runs in the build tree, the browser tests in tests/browser) still find it
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$PWD/$BUILD_DIR ;; esac
# Where the throw-away stack keeps its data, sockets and logs.
# Under /tmp so the unprivileged postgres and nginx users can reach it.
STACK_DIR=${STACK_DIR:-/tmp/pems-stack-$(id -u)-$(printf %s "$PEMS_ROOT" | md5sum | cut -c1-8)}

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
# Several checkouts on one machine (worktrees, parallel CI jobs): every default port and
# private stack directory moves by PEMS_PORT_OFFSET (default 0).
PEMS_PORT_OFFSET=${PEMS_PORT_OFFSET:-0}
port() { echo $(( $1 + PEMS_PORT_OFFSET )); }
