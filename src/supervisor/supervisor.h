#ifndef PEMS_SUPERVISOR_H
#define PEMS_SUPERVISOR_H

#include <stddef.h>

/* Pure helpers of pemsd's supervision: restart backoff, exit descriptions, child paths. */

/* A child that dies is restarted after a delay that starts at initial_ms and doubles on each
 * quick death up to max_ms; a child that stayed up stable_ms resets it (crash-loop guard). */
struct restart_policy {
    long initial_ms;
    long max_ms;
    long stable_ms;
};

#define RESTART_POLICY_DEFAULT { 100, 10000, 10000 }

/* backoff_ms carries the slot's state between deaths (0 before the first one).
 * Returns the delay before the next start and advances *backoff_ms. */
long restart_delay(const struct restart_policy *p, long *backoff_ms, long uptime_ms);

/* "exit_code=3", "signal=SIGKILL", "signal=SIGSEGV core_dumped=true" from a wait status */
void exit_describe(int status, char *buf, size_t len);

/* Path of program `name`: next to the binary self_exe (e.g. /proc/self/exe resolved) when it
 * is executable there (a build tree); otherwise `installed`, where make install put it, when
 * given; otherwise `name` itself, for a PATH search. Returns a malloc'd string. */
char *program_beside(const char *self_exe, const char *name, const char *installed);

#endif
