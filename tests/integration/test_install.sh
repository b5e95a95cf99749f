#!/usr/bin/env bash
# `make install` as a packager runs it: configure with Debian's directories and the systemd
# unit directory, build, install into a DESTDIR. Checks the tree (daemons in sbin, pems-fcgi
# in libexec, data, docs, man pages, units, sysusers.d, tmpfiles.d), the paths substituted
# into the units, `systemd-analyze verify` clean (and failing on a broken unit),
# systemd-sysusers and systemd-tmpfiles applying the two files to a scratch root, the man
# pages rendering from where man looks, an installed pemsd finding pems-fcgi in libexecdir
# (PEMS_FCGI_PROGRAM overriding it), and `make uninstall` leaving nothing. Needs no stack.
. "$(dirname "$0")/lib.sh"
PEMS_ROOT=${PEMS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=$TEST_TMP/build
D=$TEST_TMP/destdir
PEMSD_PID=""
trap '[ -n "$PEMSD_PID" ] && kill -KILL "$PEMSD_PID" 2>/dev/null; rm -rf "$TEST_TMP"' EXIT

test_begin "configure, build, make install DESTDIR"
[ -x "$PEMS_ROOT/configure" ] || (cd "$PEMS_ROOT" && autoreconf -fi >/dev/null 2>&1)
mkdir -p "$B"
if ! (cd "$B" && "$PEMS_ROOT/configure" -q --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
        --runstatedir=/run --with-systemdsystemunitdir=/lib/systemd/system >"$TEST_TMP/build.log" 2>&1 \
      && make -s -j2 >>"$TEST_TMP/build.log" 2>&1 \
      && make -s install DESTDIR="$D" >>"$TEST_TMP/build.log" 2>&1); then
  fail "build or install failed: $(tail -n 20 "$TEST_TMP/build.log")"
  finish; exit
fi
pass
(cd "$D" && find . -mindepth 1 \( -type f -o -type l \) | sed 's|^\.||' | sort) > "$TEST_TMP/tree"
echo "installed tree:" >&2
sed 's/^/  /' "$TEST_TMP/tree" >&2

test_begin "the installed tree"
for f in /usr/sbin/pemsd /usr/sbin/pemsworker /usr/bin/pemsctl /usr/libexec/pems-sync/pems-fcgi \
         /usr/share/pems-sync/openapi.yaml /usr/share/pems-sync/nginx/pems-site.conf \
         /usr/share/pems-sync/nginx/pems-fastcgi.conf /usr/share/pems-sync/nginx/pems-dashboard.conf \
         /usr/share/pems-sync/dashboard/index.html /usr/share/pems-sync/sql/schema.sql \
         /usr/share/pems-sync/sql/functions/conflicts.sql \
         /usr/share/doc/pems-sync/README.md /usr/share/doc/pems-sync/pems.conf.example \
         /usr/share/doc/pems-sync/pems.env.example \
         /usr/share/man/man1/pemsctl.1 /usr/share/man/man5/pems.conf.5 /usr/share/man/man8/pemsd.8 \
         /usr/share/man/man8/pemsworker.8 /lib/systemd/system/pemsd.service \
         /lib/systemd/system/pemsworker.service /usr/lib/sysusers.d/pems-sync.conf \
         /usr/lib/tmpfiles.d/pems-sync.conf; do
  grep -qxF "$f" "$TEST_TMP/tree" && pass || fail "not installed: $f"
done
assert_eq "/usr/bin/pemsctl" "$(grep -E '^/usr/s?bin/' "$TEST_TMP/tree" | grep -v '/usr/sbin/pems\(d\|worker\)$')" \
  "bindir holds pemsctl only (pems-fcgi is not a command)"
assert_eq "$(ls "$PEMS_ROOT"/sql/*.sql "$PEMS_ROOT"/sql/functions/*.sql | wc -l)" \
  "$(grep -c '^/usr/share/pems-sync/sql/.*\.sql$' "$TEST_TMP/tree")" "every sql/ file"
for p in /usr/sbin/pemsd /usr/sbin/pemsworker /usr/bin/pemsctl /usr/libexec/pems-sync/pems-fcgi; do
  [ -x "$D$p" ] && pass || fail "$p not executable"
done
assert_eq "" "$(grep -rl '@[a-zA-Z_]*@' "$D/lib" "$D/usr/lib" "$D/usr/share/man" "$D/usr/share/pems-sync/nginx")" \
  "no placeholder left in what was rendered"
site=$(cat "$D/usr/share/pems-sync/nginx/pems-site.conf")
assert_match "server unix:/run/pems/pems.sock" "$site" "the site talks to the unit's socket"
assert_match "include snippets/pems-fastcgi.conf;" "$site" "the site includes its snippet from snippets/"
assert_eq "$("$B/src/pemsd" --version)" "$("$D/usr/sbin/pemsd" --version)" "the installed pemsd runs"

test_begin "the units name the installed paths"
unit=$(grep -v '^#' "$D/lib/systemd/system/pemsd.service")
spawn=$(command -v spawn-fcgi || echo /usr/bin/spawn-fcgi)
assert_match "ExecStart=$spawn -n -s /run/pems/pems.sock -M 0660 -- /usr/sbin/pemsd -c /etc/pems/pems.conf" \
  "$unit" "pemsd's ExecStart"
assert_match "EnvironmentFile=/etc/pems/pems.env" "$unit" "secrets from /etc/pems"
assert_match "RestartPreventExitStatus=78" "$unit" "no restart on a bad configuration"
assert_match "ExecStart=/usr/sbin/pemsworker -c /etc/pems/pems.conf" \
  "$(cat "$D/lib/systemd/system/pemsworker.service")" "pemsworker's ExecStart"
assert_match "^d /etc/pems 0750 root pems" "$(grep -v '^#' "$D/usr/lib/tmpfiles.d/pems-sync.conf")" \
  "tmpfiles.d: /etc/pems"

test_begin "systemd-analyze verify"
# a root holding the install plus what the units refer to outside it (the system's units,
# spawn-fcgi, kill), so verify checks every path without the system's / being touched
R=$TEST_TMP/vroot
cp -a "$D" "$R"
mkdir -p "$R/usr/bin" "$R/bin" "$R/lib/systemd/system"
cp -an /lib/systemd/system/. "$R/lib/systemd/system/" 2>/dev/null
cp "$spawn" "$R$spawn"
cp /bin/kill "$R/bin/kill"
out=$(systemd-analyze verify --man=no --root="$R" /lib/systemd/system/pemsd.service \
        /lib/systemd/system/pemsworker.service 2>&1)
assert_eq "0|" "$?|$out" "both units verify clean"
# the check can fail: a program that is not there fails verify, a bad value is reported
sed "s|^ExecStart=$spawn|ExecStart=/usr/bin/no-such-spawn-fcgi|" \
  "$R/lib/systemd/system/pemsd.service" > "$R/lib/systemd/system/broken.service"
out=$(systemd-analyze verify --man=no --root="$R" /lib/systemd/system/broken.service 2>&1)
assert_ne 0 "$?" "a missing program fails verify"
assert_match "no-such-spawn-fcgi" "$out" "verify names the missing program"
sed 's|^Restart=on-failure|Restart=sometimes|' \
  "$R/lib/systemd/system/pemsd.service" > "$R/lib/systemd/system/broken2.service"
out=$(systemd-analyze verify --man=no --root="$R" /lib/systemd/system/broken2.service 2>&1)
assert_match "Failed to parse service restart specifier" "$out" "a bad value is reported"

test_begin "sysusers.d and tmpfiles.d applied to a scratch root"
S=$TEST_TMP/sroot
mkdir -p "$S/etc"
systemd-sysusers --root="$S" "$D/usr/lib/sysusers.d/pems-sync.conf" 2>"$TEST_TMP/sysusers.err"
assert_eq 0 "$?" "systemd-sysusers ($(cat "$TEST_TMP/sysusers.err"))"
assert_match "^pems:x:[0-9]+:[0-9]+:pems-sync service:/var/lib/pems:" "$(grep '^pems:' "$S/etc/passwd")" "the pems user"
assert_match "^pems:x:[0-9]+:" "$(grep '^pems:' "$S/etc/group")" "the pems group"
systemd-tmpfiles --root="$S" --create "$D/usr/lib/tmpfiles.d/pems-sync.conf" 2>"$TEST_TMP/tmpfiles.err"
assert_eq 0 "$?" "systemd-tmpfiles ($(cat "$TEST_TMP/tmpfiles.err"))"
pems_gid=$(awk -F: '$1 == "pems" {print $3}' "$S/etc/group")
assert_eq "750 0 $pems_gid" "$(stat -c '%a %u %g' "$S/etc/pems")" "/etc/pems mode and owners"
assert_eq "640 0 $pems_gid 0" "$(stat -c '%a %u %g %s' "$S/etc/pems/pems.conf")" "an empty pems.conf, 0640 root:pems"

test_begin "man finds and renders the installed pages"
for page in pemsd.8 pemsworker.8 pemsctl.1 pems.conf.5; do
  name=${page%.*}; sec=${page##*.}
  out=$(MANPATH="$D/usr/share/man" MANWIDTH=80 man --warnings "$sec" "$name" 2>"$TEST_TMP/man.err")
  assert_eq "" "$(cat "$TEST_TMP/man.err")" "man $sec $name: no warning"
  assert_match "^${name^^}\\($sec\\)" "$out" "man $sec $name: its header"
done
assert_match "/usr/libexec/pems-sync/pems-fcgi" "$(MANPATH="$D/usr/share/man" MANWIDTH=200 man 8 pemsd)" \
  "pemsd(8) names the installed pems-fcgi"

test_begin "an installed pemsd finds pems-fcgi in libexecdir"
# /usr/libexec/pems-sync/pems-fcgi is not on this machine (only in DESTDIR): pemsd names it
# on its first line, then its children cannot start; PEMS_FCGI_PROGRAM overrides the path
run_pemsd() {  # LOG [VAR=value...]
  local log=$1; shift
  rm -f "$TEST_TMP/sock"
  env DATABASE_URL=postgresql://unused JWT_SECRET=0123456789abcdef0123456789abcdef \
    ENCRYPTION_KEY=$(printf '%064d' 0) PEMS_FCGI_CHILDREN=1 PEMS_SHUTDOWN_TIMEOUT=2 "$@" \
    setsid spawn-fcgi -n -s "$TEST_TMP/sock" -- "$D/usr/sbin/pemsd" >"$log" 2>&1 </dev/null &
  PEMSD_PID=$!
  wait_for 10 grep -qs 'event=started' "$log"
  kill -TERM "$PEMSD_PID" 2>/dev/null
  wait_for 10 bash -c "! kill -0 $PEMSD_PID 2>/dev/null"
  PEMSD_PID=""
}
run_pemsd "$TEST_TMP/pemsd1.log"
# pemsworker is beside pemsd in DESTDIR too, and found there (as in a build tree)
assert_match "fcgi_program=/usr/libexec/pems-sync/pems-fcgi worker_program=$D/usr/sbin/pemsworker " \
  "$(grep 'event=started' "$TEST_TMP/pemsd1.log")" "pems-fcgi from libexecdir, pemsworker beside"
run_pemsd "$TEST_TMP/pemsd2.log" PEMS_FCGI_PROGRAM="$D/usr/libexec/pems-sync/pems-fcgi"
assert_match "fcgi_program=$D/usr/libexec/pems-sync/pems-fcgi " \
  "$(grep 'event=started' "$TEST_TMP/pemsd2.log")" "PEMS_FCGI_PROGRAM wins"

test_begin "make uninstall leaves nothing"
(cd "$B" && make -s uninstall DESTDIR="$D" >/dev/null 2>&1)
assert_eq "" "$(cd "$D" && find . -type f | head -n 5)" "no file left"

finish
