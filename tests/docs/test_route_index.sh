#!/usr/bin/env bash
# src/README.md's route index agrees with the route table (make check, no stack): every route
# of routes[] in src/api/router.c has its row, with its handler, the file that defines the
# handler and a test file that exists; no row names a route the table does not have.
set -u
root=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { fails=$((fails + 1)); printf 'FAIL: %s\n' "$*" >&2; }

# { "POST", "/api/pems/write-sync", api_write_sync, ... }
sed -n 's/^ *{ "\([A-Z]*\)", "\(\/api\/pems\/[^"]*\)", \([a-z_]*\),.*/\1 \2 \3/p' \
  "$root/src/api/router.c" | sort > "$tmp/table"
# | `POST /api/pems/write-sync` | `api_write_sync` in `api_write_sync.c` | ... | `test_x.sh` | op |
sed -n 's/^| `\([A-Z]* \/api\/pems\/[^`]*\)` | `\([a-z_]*\)` in `\([a-z_]*\.c\)` | [^|]* | `\([a-z_]*\.sh\)` |.*/\1 \2 \3 \4/p' \
  "$root/src/README.md" | sort > "$tmp/readme"

[ -s "$tmp/table" ] || fail "no routes read from src/api/router.c"
cut -d' ' -f1-3 "$tmp/readme" > "$tmp/readme_routes"
diff "$tmp/table" "$tmp/readme_routes" > "$tmp/diff" ||
  fail "src/README.md's route index and routes[] differ ('<' routes[], '>' README): $(grep '^[<>]' "$tmp/diff" | tr '\n' ' ')"
while read -r method path handler file test; do
  grep -qE "^void $handler\(" "$root/src/api/$file" 2>/dev/null ||
    fail "$method $path: $handler is not defined in src/api/$file"
  [ -f "$root/tests/integration/$test" ] || fail "$method $path: tests/integration/$test does not exist"
done < "$tmp/readme"
[ "$fails" = 0 ] && echo "PASS: src/README.md indexes the $(wc -l < "$tmp/table") routes of routes[]"
[ "$fails" = 0 ]
