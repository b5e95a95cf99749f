#!/usr/bin/python3
"""Runs a command under the seccomp filter the systemd units give pemsd and pemsworker, as
systemd would apply it (scripts/pemsd.service.in), for machines without systemd as PID 1:

  SystemCallFilter=@system-service, SystemCallFilter=~@privileged @resources,
  SystemCallErrorNumber=EPERM, MemoryDenyWriteExecute=yes (no mapping both writable and
  executable, no mprotect to executable), RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
  (socket() of another family fails), SystemCallArchitectures=native.

The groups are expanded from `systemd-analyze syscall-filter` (the machine's systemd), so the
list is systemd's own. A denied call fails with EPERM, as under the unit; with --log it
is logged by the kernel instead (SCMP_ACT_LOG) so a run can name what it would deny.

  sandbox_exec.py [--log] -- COMMAND [ARG]...
"""
import errno
import os
import re
import subprocess
import sys

import seccomp


def groups():
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"], check=True,
                         capture_output=True, text=True).stdout
    table, name = {}, None
    for line in out.splitlines():
        if re.match(r"^@[a-z-]+$", line):
            name = line
            table[name] = []
        elif name and line.startswith("    ") and not line.strip().startswith("#"):
            table[name].append(line.strip())
    return table


def expand(table, item, seen=None):
    seen = set() if seen is None else seen
    if not item.startswith("@"):
        return {item}
    if item in seen:
        return set()
    seen.add(item)
    names = set()
    for entry in table.get(item, []):
        names |= expand(table, entry, seen)
    return names


def main():
    args = sys.argv[1:]
    log = False
    if args and args[0] == "--log":
        log, args = True, args[1:]
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        sys.exit("usage: sandbox_exec.py [--log] -- COMMAND [ARG]...")
    table = groups()
    allowed = expand(table, "@system-service") - expand(table, "@privileged") \
        - expand(table, "@resources")
    # MemoryDenyWriteExecute: mmap/mprotect are allowed below only without W+X / X
    allowed -= {"mmap", "mprotect", "pkey_mprotect"}
    # RestrictAddressFamilies: socket() only for these (AF_UNIX, AF_INET, AF_INET6)
    allowed -= {"socket"}
    deny = seccomp.LOG if log else seccomp.ERRNO(errno.EPERM)
    f = seccomp.SyscallFilter(defaction=deny)
    for name in sorted(allowed):
        try:
            f.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError, OSError):
            pass   # not a call of this architecture
    PROT_WRITE, PROT_EXEC = 0x2, 0x4
    for prot in range(8):
        if not (prot & PROT_WRITE and prot & PROT_EXEC):
            f.add_rule(seccomp.ALLOW, "mmap", seccomp.Arg(2, seccomp.MASKED_EQ, 7, prot))
        if not prot & PROT_EXEC:
            f.add_rule(seccomp.ALLOW, "mprotect", seccomp.Arg(2, seccomp.MASKED_EQ, 7, prot))
            f.add_rule(seccomp.ALLOW, "pkey_mprotect", seccomp.Arg(2, seccomp.MASKED_EQ, 7, prot))
    for family in (1, 2, 10):
        f.add_rule(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, family))
    f.load()
    os.execvp(args[0], args)


main()
