#!/usr/bin/env bash
# The Debian package as an operator gets it: `dpkg-buildpackage -us -uc -b` from the committed
# tree, lintian (no error, no warning), then `apt install ./pems-sync_*.deb` into a clean
# bookworm root made from Debian's packages (mmdebstrap): the pems user, /etc/pems and its
# modes, the conffile, pems.env with fresh secrets, the units installed and not enabled,
# nothing started, the units' verify and security score, `nginx -t` with the site and
# ssl-cert's snakeoil pair; a reinstall keeps pems.env; a purge leaves nothing behind.
# Root only (chroot). PEMS_DEB=FILE tests a package already built. .ci/run runs it.
. "$(dirname "$0")/../integration/lib.sh"
PEMS_ROOT=${PEMS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
VERSION=$(awk -F'[][]' '/^AC_INIT/ { print $4; exit }' "$PEMS_ROOT/configure.ac")
ARCH=$(dpkg --print-architecture)
DEB_NAME=pems-sync_${VERSION}_${ARCH}.deb
ROOT=$TEST_TMP/root
cleanup() {
  mountpoint -q "$ROOT/proc" 2>/dev/null && umount "$ROOT/proc"
  rm -rf "$TEST_TMP"
}
trap cleanup EXIT
[ "$(id -u)" -eq 0 ] || { echo "test_package: needs root (chroot)" >&2; exit 1; }
for tool in dpkg-buildpackage lintian mmdebstrap; do
  command -v "$tool" >/dev/null || { test_begin tools; fail "$tool missing (.ci/run installs it)"; finish; exit; }
done
in_root() { chroot "$ROOT" "$@"; }

test_begin "dpkg-buildpackage -us -uc -b"
if [ -n "${PEMS_DEB:-}" ]; then
  DEB=$PEMS_DEB
else
  # the committed files only, as a clone has them
  mkdir -p "$TEST_TMP/src/pems-sync"
  git -C "$PEMS_ROOT" ls-files -z | (cd "$PEMS_ROOT" && xargs -0 tar -cf -) | tar -xf - -C "$TEST_TMP/src/pems-sync"
  (cd "$TEST_TMP/src/pems-sync" && dpkg-buildpackage -us -uc -b) > "$TEST_TMP/build.log" 2>&1
  assert_eq 0 "$?" "dpkg-buildpackage exit status ($(tail -n 5 "$TEST_TMP/build.log"))"
  DEB=$TEST_TMP/src/$DEB_NAME
fi
[ -f "$DEB" ] || { fail "no $DEB_NAME (the name: configure.ac's version, the host's arch)"; finish; exit; }
pass
assert_eq "$DEB_NAME" "$(basename "$DEB")" "the package's file name"
echo "== dpkg -c $DEB_NAME"
dpkg -c "$DEB" | awk '{ print $1, $2, $6 }'

test_begin "lintian: no error, no warning"
lintian --fail-on error,warning "$DEB" > "$TEST_TMP/lintian" 2>&1
rc=$?
echo "== lintian $DEB_NAME (exit $rc)"
grep -v 'running with root privileges' "$TEST_TMP/lintian"
assert_eq 0 "$rc" "lintian exit status"
assert_eq "" "$(grep -E '^[EW]: ' "$TEST_TMP/lintian")" "no E: or W: line"

test_begin "what the package holds"
dpkg -c "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|' > "$TEST_TMP/files"
for f in /usr/sbin/pemsd /usr/sbin/pemsworker /usr/bin/pemsctl /usr/libexec/pems-sync/pems-fcgi \
    /lib/systemd/system/pemsd.service /lib/systemd/system/pemsworker.service /etc/pems/pems.conf \
    /usr/share/pems-sync/nginx/pems-site.conf /usr/share/pems-sync/prometheus/pems-sync.rules.yml \
    /usr/share/pems-sync/sql/schema.sql /usr/share/doc/pems-sync/README.Debian \
    /usr/share/doc/pems-sync/copyright /usr/share/man/man8/pemsd.8.gz; do
  grep -qxF "$f" "$TEST_TMP/files" && pass || fail "$f not in the package"
done
assert_eq "" "$(grep -E 'sysusers|tmpfiles|\.service\.in$|/build/' "$TEST_TMP/files")" "nothing of make install's own"
dpkg-deb -f "$DEB" Depends > "$TEST_TMP/depends"
for d in spawn-fcgi libpq5 libfcgi0ldbl libcurl4 libjansson4 libsystemd0 adduser; do
  grep -q "$d" "$TEST_TMP/depends" && pass || fail "Depends has no $d: $(cat "$TEST_TMP/depends")"
done
assert_eq "libjs-chart.js, nginx, postgresql, ssl-cert" "$(dpkg-deb -f "$DEB" Recommends)" "Recommends"

test_begin "a clean bookworm root from Debian's packages (mmdebstrap)"
mmdebstrap --quiet --variant=apt --include=systemd bookworm "$ROOT" > "$TEST_TMP/mmdebstrap.log" 2>&1
assert_eq 0 "$?" "mmdebstrap ($(tail -n 3 "$TEST_TMP/mmdebstrap.log"))"
[ -x "$ROOT/usr/bin/apt-get" ] || { fail "no root made"; finish; exit; }
mount -t proc proc "$ROOT/proc"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null
# no service of any package starts in the root (Debian's policy-rc.d convention)
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
chmod +x "$ROOT/usr/sbin/policy-rc.d"
cp "$DEB" "$ROOT/tmp/"
in_root apt-get update -qq > "$TEST_TMP/update.log" 2>&1 || fail "apt-get update in the root: $(tail -n 3 "$TEST_TMP/update.log")"

test_begin "apt install ./$DEB_NAME on a host with nothing configured"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/$DEB_NAME" > "$TEST_TMP/install.log" 2>&1
assert_eq 0 "$?" "apt install ($(tail -n 5 "$TEST_TMP/install.log"))"
for r in nginx ssl-cert postgresql libjs-chart.js spawn-fcgi; do
  in_root dpkg-query -W -f='${Status}' "$r" 2>/dev/null | grep -q 'install ok installed' && pass \
    || fail "$r not installed with the package"
done

test_begin "the pems user and group"
pw=$(in_root getent passwd pems)
assert_match '^pems:x:[0-9]+:[0-9]+:[^:]*:/var/lib/pems:/usr/sbin/nologin$' "$pw" "passwd entry"
uid=$(cut -d: -f3 <<<"$pw")
assert_le "${uid:-1000}" 999 "a system uid"
assert_match '^pems:' "$(in_root getent group pems)" "the group"

test_begin "/etc/pems, the conffile, pems.env"
assert_eq "750 root pems" "$(in_root stat -c '%a %U %G' /etc/pems)" "/etc/pems"
assert_eq "640 root pems" "$(in_root stat -c '%a %U %G' /etc/pems/pems.env)" "pems.env"
assert_match "/etc/pems/pems.conf [0-9a-f]{32}" "$(in_root dpkg-query -W -f='${Conffiles}' pems-sync)" "pems.conf is a conffile"
assert_match '^JWT_SECRET=[0-9a-f]{64}$' "$(grep '^JWT_SECRET=' "$ROOT/etc/pems/pems.env")" "a fresh JWT_SECRET"
assert_match '^ENCRYPTION_KEY=[0-9a-f]{64}$' "$(grep '^ENCRYPTION_KEY=' "$ROOT/etc/pems/pems.env")" "a fresh ENCRYPTION_KEY"
assert_ne "$(grep '^JWT_SECRET=' "$ROOT/etc/pems/pems.env" | cut -d= -f2)" \
  "$(grep '^ENCRYPTION_KEY=' "$ROOT/etc/pems/pems.env" | cut -d= -f2)" "two different secrets"
ENV_SUM=$(sha256sum < "$ROOT/etc/pems/pems.env")
# the pems user reads both; pemsd -t finds the configuration valid; pemsctl reads pems.env
# with nothing sourced (the database is not there yet: a connection error, not a missing setting)
out=$(in_root runuser -u pems -- sh -c 'set -a; . /etc/pems/pems.env; exec pemsd --check-config -c /etc/pems/pems.conf' 2>&1)
assert_eq 0 "$?" "pemsd --check-config as pems ($out)"
out=$(in_root runuser -u pems -- env -i PATH=/usr/bin:/bin pemsctl org list 2>&1)
assert_match "cannot connect to the database" "$out" "pemsctl reads DATABASE_URL from pems.env"

test_begin "the units: installed, not enabled, nothing started"
for u in pemsd pemsworker; do
  [ -f "$ROOT/lib/systemd/system/$u.service" ] && pass || fail "$u.service not installed"
  assert_eq disabled "$(in_root systemctl is-enabled "$u.service" 2>&1)" "$u.service is not enabled"
done
running=""
for p in /proc/[0-9]*; do
  case $(readlink "$p/root" 2>/dev/null) in "$ROOT"*) running+="$(tr '\0' ' ' < "$p/cmdline") ";; esac
done
assert_eq "" "$running" "no process runs from the root"
[ -e "$ROOT/run/pems" ] && fail "/run/pems exists" || pass
out=$(in_root systemd-analyze verify --man=no /lib/systemd/system/pemsd.service /lib/systemd/system/pemsworker.service 2>&1)
assert_eq 0 "$?" "systemd-analyze verify ($out)"
for u in pemsd pemsworker; do
  score=$(in_root systemd-analyze security --offline=true --no-pager "/lib/systemd/system/$u.service" 2>&1 \
    | sed -nE 's/.*Overall exposure level for .*: ([0-9.]+) .*/\1/p')
  echo "== systemd-analyze security $u.service: $score"
  assert_eq 1 "$(awk -v s="${score:-99}" 'BEGIN { print (s <= 2.5) }')" "$u.service exposure $score <= 2.5"
done

test_begin "nginx -t with the site, as README.Debian says, and ssl-cert's snakeoil pair"
in_root sh -e -c 'cp /usr/share/pems-sync/nginx/pems-fastcgi.conf /usr/share/pems-sync/nginx/pems-dashboard.conf /etc/nginx/snippets/
  cp /usr/share/pems-sync/nginx/pems-site.conf /etc/nginx/sites-available/pems
  ln -s ../sites-available/pems /etc/nginx/sites-enabled/pems'
out=$(in_root nginx -t 2>&1)
assert_eq 0 "$?" "nginx -t ($out)"
assert_eq "" "$(grep -E '\[(warn|emerg)\]' <<<"$out")" "no warning"
assert_match "listen \[::\]:443 ssl http2;" "$(cat "$ROOT/etc/nginx/sites-available/pems")" "listens on [::]:443"
rm -f "$ROOT/etc/nginx/sites-enabled/pems" "$ROOT/etc/nginx/sites-available/pems" \
  "$ROOT/etc/nginx/snippets/pems-fastcgi.conf" "$ROOT/etc/nginx/snippets/pems-dashboard.conf"

test_begin "a reinstall (the upgrade path) keeps pems.env and an edited pems.conf"
echo "PEMS_FCGI_CHILDREN=2" >> "$ROOT/etc/pems/pems.conf"
in_root env DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold "/tmp/$DEB_NAME" > "$TEST_TMP/reinstall.log" 2>&1
assert_eq 0 "$?" "dpkg -i again ($(tail -n 3 "$TEST_TMP/reinstall.log"))"
assert_eq "$ENV_SUM" "$(sha256sum < "$ROOT/etc/pems/pems.env")" "pems.env unchanged"
assert_eq "640 root pems" "$(in_root stat -c '%a %U %G' /etc/pems/pems.env)" "pems.env's mode unchanged"
assert_eq "PEMS_FCGI_CHILDREN=2" "$(tail -n 1 "$ROOT/etc/pems/pems.conf")" "the edit of pems.conf kept"

test_begin "remove keeps the configuration; purge leaves nothing behind"
in_root dpkg-query -L pems-sync > "$TEST_TMP/owned"
in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q pems-sync > "$TEST_TMP/remove.log" 2>&1
assert_eq 0 "$?" "apt remove"
[ -f "$ROOT/etc/pems/pems.env" ] && pass || fail "remove took pems.env"
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q pems-sync > "$TEST_TMP/purge.log" 2>&1
assert_eq 0 "$?" "apt purge ($(tail -n 3 "$TEST_TMP/purge.log"))"
assert_eq "" "$(in_root dpkg-query -W -f='${Status}' pems-sync 2>/dev/null | grep -v 'not-installed')" "no dpkg record left"
for d in /etc/pems /var/lib/pems /run/pems; do
  [ -e "$ROOT$d" ] && fail "$d left: $(ls -la "$ROOT$d")" || pass
done
left=""
while read -r f; do
  { [ -f "$ROOT$f" ] || [ -L "$ROOT$f" ]; } && [ ! -d "$ROOT$f" ] && left+="$f "
done < "$TEST_TMP/owned"
assert_eq "" "$left" "no file of the package left"
assert_eq "" "$(in_root getent passwd pems)" "the pems user is gone"
assert_eq "" "$(in_root getent group pems)" "the pems group is gone"
assert_eq "" "$(find "$ROOT/etc/systemd" "$ROOT/var/lib/systemd/deb-systemd-helper-enabled" -name 'pems*' 2>/dev/null)" \
  "no unit state left"

finish
