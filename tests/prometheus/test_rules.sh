#!/usr/bin/env bash
# The alert rules the package installs (scripts/prometheus/pems-sync.rules.yml): promtool
# finds them valid and their unit tests pass (pems-sync.rules.test.yml beside this file).
# promtool comes with Debian's prometheus package (.ci/run installs it); skipped without it.
set -u
SRC=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v promtool >/dev/null || { echo "promtool not installed (apt-get install prometheus): skipped"; exit 77; }
PASSED=0 FAILED=0
run() {
  if out=$("$@" 2>&1); then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); printf 'FAIL %s\n%s\n' "$*" "$out" >&2; fi
}
run promtool check rules "$SRC/scripts/prometheus/pems-sync.rules.yml"
# promtool reads rule_files relative to the test file
run promtool test rules "$SRC/tests/prometheus/pems-sync.rules.test.yml"
printf 'test_rules: %d passed, %d failed\n' "$PASSED" "$FAILED"
[ "$FAILED" -eq 0 ]
