#!/usr/bin/env bash
# The man pages (make check, as built from their .in in the build tree): `man -l` renders
# each without a warning, with the sections an operator looks for; every option a program's
# --help lists, every setting of the settings table (src/core/pems_config.c) and every
# pemsctl command with each of its options is in its page.
set -u
BUILD=${BUILD_DIR:-.}
SRC=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
PASSED=0
FAILED=0
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$*" >&2; }
ok() { PASSED=$((PASSED + 1)); }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
command -v man >/dev/null || { echo "man not installed (apt-get install man-db)" >&2; exit 99; }

# render PAGE: the page as plain text in $TMP/out (lines wide enough that nothing is
# hyphenated, runs of blanks squeezed to one), troff's warnings in $TMP/warn
render() {
  MANWIDTH=500 man --warnings -E UTF-8 -l "$1" 2>"$TMP/warn" | col -b -x | tr -s ' ' > "$TMP/out"
}

declare -A PAGE=(
  [pemsd]=src/supervisor/pemsd.8 [pemsworker]=src/worker/pemsworker.8
  [pemsctl]=src/ctl/pemsctl.1 [pems.conf]=src/core/pems.conf.5
)
for name in "${!PAGE[@]}"; do
  page=$BUILD/${PAGE[$name]}
  [ -s "$page" ] || { fail "$page not built"; continue; }
  render "$page"
  if [ -s "$TMP/warn" ]; then fail "$name: man warns: $(head -c 300 "$TMP/warn")"; else ok; fi
  grep -q '@[a-zA-Z_]*@' "$page" && fail "$name: a placeholder left: $(grep -o '@[a-zA-Z_]*@' "$page" | head -1)" || ok
  for section in NAME SYNOPSIS DESCRIPTION "SEE ALSO" FILES; do
    grep -q "^$section" "$TMP/out" && ok || fail "$name: no $section section"
  done
  case $name in
    pems.conf) ;;
    *) for section in "EXIT STATUS" ENVIRONMENT; do
         grep -q "^$section" "$TMP/out" && ok || fail "$name: no $section section"
       done ;;
  esac
  cp "$TMP/out" "$TMP/$name.txt"
done

# every long option of a program's --help, in its page
for p in pemsd pemsworker pemsctl; do
  opts=$("$BUILD/src/$p" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u)
  [ -n "$opts" ] || fail "$p --help lists no option"
  for o in $opts; do
    grep -qF -- "$o" "$TMP/$p.txt" && ok || fail "$p: $o is in --help, not in $p's man page"
  done
done
for s in SIGTERM SIGINT SIGHUP; do
  grep -q "$s" "$TMP/pemsd.txt" && ok || fail "pemsd(8) does not say what $s does"
done
for code in 0 1 2 78; do
  grep -qE "^ $code( |\$)" "$TMP/pemsd.txt" && ok || fail "pemsd(8): exit status $code missing"
done

# the exit statuses a program's --help tells ("Exit status: 0 ..., 1 ..., 78 ...") are those of
# its page's EXIT STATUS section
for p in pemsd pemsworker pemsctl; do
  help_codes=$("$BUILD/src/$p" --help | tr '\n' ' ' | sed -nE 's/.*Exit status: (.*)/\1/p' \
    | grep -oE '(^|, )[0-9]+ ' | grep -oE '[0-9]+' | sort -n | tr '\n' ' ')
  page_codes=$(awk '/^EXIT STATUS/ { on = 1; next } /^[A-Z]/ { on = 0 } on' "$TMP/$p.txt" \
    | grep -oE '^ [0-9]+( |$)' | grep -oE '[0-9]+' | sort -n | tr '\n' ' ')
  [ -n "$page_codes" ] && [ "$help_codes" = "$page_codes" ] && ok \
    || fail "$p: --help tells exit statuses '$help_codes', $p's page '$page_codes'"
done

# every setting of the table, in pems.conf(5)
settings=$(sed -nE 's/^ *[SIB]\("([A-Z_]+)",.*/\1/p' "$SRC/src/core/pems_config.c")
[ "$(wc -w <<<"$settings")" -ge 15 ] || fail "could not read the settings table ($settings)"
for s in $settings; do
  grep -qE "^ $s\$" "$TMP/pems.conf.txt" && ok || fail "pems.conf(5) does not describe $s"
done

# every pemsctl command and each of its options, in pemsctl(1)
"$BUILD/src/pemsctl" --help | sed -nE 's/^  ([a-z]+( [a-z]+)?)( .*)?$/\1/p' > "$TMP/commands"
[ "$(wc -l < "$TMP/commands")" -ge 10 ] || fail "pemsctl --help lists too few commands"
while read -r cmd; do
  grep -qE "^ $cmd( |\$)" "$TMP/pemsctl.txt" && ok || fail "pemsctl(1) has no entry for '$cmd'"
  for o in $("$BUILD/src/pemsctl" $cmd --help | head -n 1 | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
    awk -v c=" $cmd" 'index($0, c) == 1 { on = 1 } on' "$TMP/pemsctl.txt" | head -n 4 \
      | grep -qF -- "$o" && ok || fail "pemsctl(1): '$cmd' does not mention $o"
  done
done < "$TMP/commands"

printf 'test_manpages: %d passed, %d failed\n' "$PASSED" "$FAILED"
[ "$FAILED" -eq 0 ]
