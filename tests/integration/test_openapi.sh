#!/usr/bin/env bash
# The OpenAPI document (src/api/openapi.yaml) and the router's table name the same routes:
# every "METHOD PATTERN" of `pems-fcgi --list-routes` is an operation of the document, and
# every operation of the document is a route. Needs no running stack.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/integration/lib.sh"

FCGI=$(command -v pems-fcgi || true)
[ -n "$FCGI" ] || FCGI=${BUILD_DIR:-$ROOT/build}/src/pems-fcgi
YAML=$ROOT/src/api/openapi.yaml

test_begin "inputs"
assert_eq 0 "$([ -x "$FCGI" ]; echo $?)" "pems-fcgi is built ($FCGI)"
assert_eq 0 "$([ -f "$YAML" ]; echo $?)" "openapi.yaml exists"

# Router side: METHOD /api/pems/x/:id -> "METHOD /api/pems/x/{id}"
"$FCGI" --list-routes | awk '{ p = $2; gsub(/:[A-Za-z0-9_]+/, "{&}", p); gsub(/\{:/, "{", p);
                               print toupper($1) " " p }' | sort > "$TEST_TMP/router"
# Document side: a path is a 2-space-indented key under `paths:`, its operations 4-space keys
awk '
  /^[^ #]/ { in_paths = ($0 ~ /^paths:/); next }
  in_paths && /^  \/[^ ]*:[ ]*$/ { path = $1; sub(/:$/, "", path); next }
  in_paths && /^    (get|put|post|delete|patch|head|options):/ {
      m = $1; sub(/:$/, "", m); print toupper(m) " " path }
' "$YAML" | sort > "$TEST_TMP/openapi"

test_begin "router has routes"
assert_ge "$(wc -l < "$TEST_TMP/router")" 11 "pems-fcgi --list-routes prints every route"
test_begin "document has operations"
assert_ge "$(wc -l < "$TEST_TMP/openapi")" 11 "openapi.yaml has an operation per route"

test_begin "every route is documented"
while read -r line; do
  if grep -qxF "$line" "$TEST_TMP/openapi"; then pass; else fail "route '$line' is not in openapi.yaml"; fi
done < "$TEST_TMP/router"

test_begin "every documented operation is a route"
while read -r line; do
  if grep -qxF "$line" "$TEST_TMP/router"; then pass; else fail "openapi.yaml operation '$line' is not a route"; fi
done < "$TEST_TMP/openapi"

test_begin "the document is valid YAML with openapi 3"
if command -v python3 >/dev/null && python3 -c 'import yaml' 2>/dev/null; then
  v=$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["openapi"])' "$YAML" 2>&1)
  assert_match '^3\.' "$v" "openapi version"
else
  assert_match '^openapi: 3\.' "$(head -n 1 "$YAML")" "openapi version line"
fi

finish
