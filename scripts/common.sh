# Sourced by the scripts: paths shared by setup, stack, test, demo and bench.
PEMS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Out-of-tree build so several builds (plain, sanitizers) can live side by side.
BUILD_DIR=${BUILD_DIR:-$PEMS_ROOT/build}
# Where the throw-away stack keeps its data, sockets and logs.
STACK_DIR=${STACK_DIR:-$PEMS_ROOT/.stack}

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
