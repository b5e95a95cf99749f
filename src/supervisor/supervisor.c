#include "supervisor.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

long restart_delay(const struct restart_policy *p, long *backoff_ms, long uptime_ms)
{
    if (*backoff_ms <= 0 || uptime_ms >= p->stable_ms)
        *backoff_ms = p->initial_ms;
    long delay = *backoff_ms;
    *backoff_ms = delay >= p->max_ms / 2 ? p->max_ms : delay * 2;
    return delay;
}

void exit_describe(int status, char *buf, size_t len)
{
    if (WIFEXITED(status)) {
        snprintf(buf, len, "exit_code=%d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(sig);
        if (abbrev)
            snprintf(buf, len, "signal=SIG%s%s", abbrev,
                     WCOREDUMP(status) ? " core_dumped=true" : "");
        else
            snprintf(buf, len, "signal=%d", sig);
    } else {
        snprintf(buf, len, "status=0x%x", (unsigned)status);
    }
}

char *program_beside(const char *self_exe, const char *name, const char *installed)
{
    if (self_exe && *self_exe) {
        const char *slash = strrchr(self_exe, '/');
        if (slash) {
            size_t dirlen = (size_t)(slash - self_exe);
            size_t n = dirlen + 1 + strlen(name) + 1;
            char *path = malloc(n);
            if (!path)
                return NULL;
            snprintf(path, n, "%.*s/%s", (int)dirlen, self_exe, name);
            if (access(path, X_OK) == 0)
                return path;
            free(path);
        }
    }
    return strdup(installed && *installed ? installed : name);
}
