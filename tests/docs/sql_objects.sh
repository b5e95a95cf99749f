#!/usr/bin/env bash
# Prints each object the migrations leave in the database, one line each:
#   KIND NAME FILE[,FILE...]
# FILE: every migration that creates, replaces, alters or drops it, in the order they run (the
# last one holds its current definition). Objects a later migration dropped are left out.
# Usage: tests/docs/sql_objects.sh [SQL_DIR]
set -eu
dir=${1:-$(dirname "$0")/../../sql}
for f in "$dir"/[0-9]*.sql; do
  awk -v file="$(basename "$f")" '
    function act(kind, name, op) {
      gsub(/"/, "", name); sub(/\(.*/, "", name); sub(/^public\./, "", name)
      key = kind " " tolower(name)
      print key, op, file
    }
    /^[[:space:]]*--/ { next }
    {
      line = tolower($0)
      if (match(line, /^[[:space:]]*create[[:space:]]+(or[[:space:]]+replace[[:space:]]+)?(unique[[:space:]]+)?(materialized[[:space:]]+)?(function|table|index|trigger|type|view|sequence)[[:space:]]+(if[[:space:]]+not[[:space:]]+exists[[:space:]]+)?[a-z_."][a-z0-9_."]*/)) {
        n = split(substr(line, RSTART, RLENGTH), w, /[[:space:]]+/)
        kind = ""; for (i = 1; i <= n; i++) if (w[i] ~ /^(function|table|index|trigger|type|view|sequence)$/) { kind = w[i]; break }
        act(kind, w[n], "create")
      } else if (match(line, /^[[:space:]]*alter[[:space:]]+(function|table|index|type|view|sequence)[[:space:]]+(if[[:space:]]+exists[[:space:]]+)?[a-z_."][a-z0-9_."]*/)) {
        n = split(substr(line, RSTART, RLENGTH), w, /[[:space:]]+/)
        kind = ""; for (i = 1; i <= n; i++) if (w[i] ~ /^(function|table|index|type|view|sequence)$/) { kind = w[i]; break }
        act(kind, w[n], "alter")
      } else if (match(line, /^[[:space:]]*drop[[:space:]]+(function|table|index|trigger|type|view|sequence)[[:space:]]+(if[[:space:]]+exists[[:space:]]+)?[a-z_."][a-z0-9_."]*/)) {
        n = split(substr(line, RSTART, RLENGTH), w, /[[:space:]]+/)
        act(w[2] == "" ? w[3] : w[2], w[n], "drop")
      }
    }' "$f"
done | awk '
  { key = $1 " " $2; op = $3; file = $4
    if (!(key in files)) { order[++n] = key; files[key] = "" }
    if (index("," files[key] ",", "," file ",") == 0) files[key] = files[key] (files[key] == "" ? "" : ",") file
    alive[key] = (op != "drop") }
  END { for (i = 1; i <= n; i++) if (alive[order[i]]) print order[i], files[order[i]] }'
