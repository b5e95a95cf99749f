#!/usr/bin/env bash
# Every migration has a number of its own, and sql/README.md's index agrees with the
# migrations: every object they leave in the database has its row, naming every file that
# creates, replaces, alters or drops it, in order (make check; no database needed).
set -u
here=$(cd "$(dirname "$0")" && pwd)
sql=${srcdir:+$srcdir/sql}
sql=${sql:-$here/../../sql}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# each migration has its own number (sql/README.md: two branches that pick the same number, the
# one merging later renumbers)
dups=$(cd "$sql" && ls [0-9]*.sql | sed 's/_.*//' | sort | uniq -d)
if [ -n "$dups" ]; then
  echo "FAIL: migrations that share a number (renumber the later one after the last):" >&2
  for n in $dups; do (cd "$sql" && ls "$n"_*.sql) >&2; done
  exit 1
fi

"$here/sql_objects.sh" "$sql" | sort > "$tmp/migrations" || { echo "FAIL: sql_objects.sh" >&2; exit 1; }
# | `name` | kind | f1, f2 | what |
sed -n 's/^| `\([a-z0-9_]*\)` | \([a-z]*\) | \([^|]*\) |.*/\2 \1 \3/p' "$sql/README.md" \
  | sed 's/ *$//; s/, /,/g' | sort > "$tmp/readme"

[ -s "$tmp/migrations" ] || { echo "FAIL: no objects read from $sql" >&2; exit 1; }
if diff "$tmp/migrations" "$tmp/readme" > "$tmp/diff"; then
  echo "PASS: sql/README.md lists the $(wc -l < "$tmp/migrations") objects of the migrations"
  exit 0
fi
echo "FAIL: sql/README.md and the migrations disagree (KIND NAME FILES; '<' the migrations, '>' the README):" >&2
grep '^[<>]' "$tmp/diff" >&2
exit 1
