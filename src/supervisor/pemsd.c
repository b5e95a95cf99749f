/* pemsd: the supervisor. spawn-fcgi binds the FastCGI socket and execs pemsd with it on fd 0;
 * pemsd preforks PEMS_FCGI_CHILDREN pems-fcgi (accepting on fd 0) and one pemsworker, restarts
 * any that dies (with backoff), drains them on SIGTERM/SIGINT and replaces them on SIGHUP.
 * Signal handlers only set flags; everything else happens in the main loop, which waits in
 * ppoll() with the signals unblocked only there, so no signal is ever missed or raced. */
#include "build_config.h"
#include "cli.h"
#include "pems_config.h"
#include "log.h"
#include "supervisor.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

extern char **environ;

/* Tells the service manager (Type=notify) what pemsd is doing: READY=1, RELOADING=1,
 * STOPPING=1, STATUS=... (sd_notify(3)); nothing without NOTIFY_SOCKET or libsystemd. */
static void service_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void service_notify(const char *fmt, ...)
{
#ifdef HAVE_LIBSYSTEMD
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int r = sd_notify(0, msg);
    if (r < 0)
        log_warn("notify_failed", "error=\"%s\"", strerror(-r));
#else
    (void)fmt;
#endif
}

enum child_kind { CHILD_FCGI, CHILD_WORKER };

static const char *const kind_program[] = { "pems-fcgi", "pemsworker" };
/* test-only overrides of the child programs, e.g. a stand-in that crashes */
static const char *const kind_override_env[] = { "PEMS_FCGI_PROGRAM", "PEMS_WORKER_PROGRAM" };
/* where make install put them (pemsd(8), ENVIRONMENT) */
#ifndef PEMS_FCGI_PATH
#define PEMS_FCGI_PATH NULL
#endif
#ifndef PEMS_WORKER_PATH
#define PEMS_WORKER_PATH NULL
#endif
static const char *const kind_installed[] = { PEMS_FCGI_PATH, PEMS_WORKER_PATH };

struct slot {
    enum child_kind kind;
    pid_t pid;              /* 0 while waiting to (re)start */
    long long started_ms;
    long long start_at_ms;  /* when pid == 0: earliest (re)start */
    long backoff_ms;
};

/* children replaced by a reload (or dropped slots): TERMed, not restarted */
struct retiring {
    pid_t pid;
    enum child_kind kind;
    long long kill_at_ms;
};

struct pemsd {
    const char *config_path;
    struct pems_config cfg;
    char **base_env;        /* environment at startup: it wins over the config file */
    char **child_env;       /* base_env plus the file's settings, handed to every child */
    char *self_exe;
    char *program[2];
    struct slot *slots;     /* fcgi_children pems-fcgi slots, then the pemsworker slot */
    size_t nslots;
    struct retiring *retiring;
    size_t nretiring, retiring_cap;
    struct restart_policy policy;
    bool shutting_down;
    long long shutdown_deadline_ms;
    int exit_status;        /* non-zero once a child refused its configuration */
};

static volatile sig_atomic_t got_sigchld, got_sigterm, got_sighup;

static void on_signal(int sig)
{
    switch (sig) {
    case SIGCHLD: got_sigchld = 1; break;
    case SIGHUP: got_sighup = 1; break;
    default: got_sigterm = 1; break;
    }
}

static void strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static size_t strv_len(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

static bool env_has_key(char *const *env, const char *key, size_t keylen)
{
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], key, keylen) == 0 && env[i][keylen] == '=')
            return true;
    return false;
}

/* The children read their settings from the environment only, so the config file's settings
 * (already validated by config_load) are passed down as KEY=value; the environment pemsd was
 * started with still wins, as in config_load. */
static char **child_env_build(char *const *base, const char *path)
{
    size_t n = strv_len(base), cap = n + 32, len = 0;
    char **env = calloc(cap + 1, sizeof *env);
    FILE *f = NULL;
    if (!env)
        return NULL;
    /* the children never speak to the service manager (NotifyAccess=main) */
    for (size_t i = 0; i < n; i++)
        if (strncmp(base[i], "NOTIFY_SOCKET=", 14) != 0 && !(env[len++] = strdup(base[i])))
            goto fail;
    if (!path)
        return env;
    f = fopen(path, "r");
    if (!f)
        goto fail;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *key, *val;
        if (config_parse_line(line, &key, &val) <= 0)
            continue;
        if (env_has_key(env, key, strlen(key)))
            continue;
        if (len == cap) {
            char **grown = realloc(env, (cap * 2 + 1) * sizeof *env);
            if (!grown)
                goto fail;
            env = grown;
            cap *= 2;
        }
        size_t sz = strlen(key) + strlen(val) + 2;
        if (!(env[len] = malloc(sz)))
            goto fail;
        snprintf(env[len++], sz, "%s=%s", key, val);
        env[len] = NULL;
    }
    fclose(f);
    return env;
fail:
    if (f)
        fclose(f);
    strv_free(env);
    return NULL;
}

static char **strv_dup(char *const *v)
{
    size_t n = strv_len(v);
    char **copy = calloc(n + 1, sizeof *copy);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(copy[i] = strdup(v[i]))) {
            strv_free(copy);
            return NULL;
        }
    return copy;
}

static void resolve_programs(struct pemsd *d)
{
    for (int k = 0; k < 2; k++) {
        free(d->program[k]);
        const char *override = getenv(kind_override_env[k]);
        d->program[k] = override && *override ? strdup(override)
                                              : program_beside(d->self_exe, kind_program[k],
                                                               kind_installed[k]);
        if (!d->program[k]) {
            log_error("out_of_memory", NULL);
            exit(1);
        }
    }
}

/* Between fork and exec: only async-signal-safe work (pemsd is single-threaded, so the log
 * line on exec failure is safe too). */
static void child_exec(struct pemsd *d, enum child_kind kind, pid_t parent)
{
    /* never outlive pemsd, even when it is SIGKILLed */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
        _exit(0);
    struct sigaction dfl = { .sa_handler = SIG_DFL };
    sigemptyset(&dfl.sa_mask);
    const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPIPE };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (kind == CHILD_WORKER) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
            _exit(126);
        if (fd != STDIN_FILENO)
            close(fd);
    }
    close_range(3, ~0U, 0);
    const char *prog = d->program[kind];
    const char *base = strrchr(prog, '/');
    char *argv[] = { (char *)(base ? base + 1 : prog), NULL };
    if (strchr(prog, '/'))
        execve(prog, argv, d->child_env);
    else
        execvpe(prog, argv, d->child_env);
    log_error("child_exec_failed", "program=%s error=\"%s\"", prog, strerror(errno));
    _exit(127);
}

static pid_t spawn(struct pemsd *d, enum child_kind kind)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        child_exec(d, kind, parent);
    if (pid < 0) {
        log_error("child_fork_failed", "program=%s error=\"%s\"", kind_program[kind],
                  strerror(errno));
        return -1;
    }
    log_info("child_started", "child_pid=%d program=%s", (int)pid, d->program[kind]);
    return pid;
}

static void slot_start(struct pemsd *d, struct slot *s)
{
    long long now = util_mono_ms();
    pid_t pid = spawn(d, s->kind);
    if (pid < 0) {
        s->pid = 0;
        s->start_at_ms = now + restart_delay(&d->policy, &s->backoff_ms, 0);
        return;
    }
    s->pid = pid;
    s->started_ms = now;
}

static void retire(struct pemsd *d, pid_t pid, enum child_kind kind)
{
    if (d->nretiring == d->retiring_cap) {
        size_t cap = d->retiring_cap ? d->retiring_cap * 2 : 16;
        struct retiring *grown = realloc(d->retiring, cap * sizeof *grown);
        if (!grown) {
            /* cannot track it: stop it hard rather than lose it */
            kill(pid, SIGKILL);
            return;
        }
        d->retiring = grown;
        d->retiring_cap = cap;
    }
    kill(pid, SIGTERM);
    d->retiring[d->nretiring++] = (struct retiring){
        .pid = pid, .kind = kind, .kill_at_ms = util_mono_ms() + d->cfg.shutdown_timeout * 1000LL,
    };
}

static int slots_alloc(struct pemsd *d)
{
    size_t n = (size_t)d->cfg.fcgi_children + 1;
    struct slot *slots = calloc(n, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < n; i++)
        slots[i].kind = i + 1 == n ? CHILD_WORKER : CHILD_FCGI;
    free(d->slots);
    d->slots = slots;
    d->nslots = n;
    return 0;
}

static size_t live_children(const struct pemsd *d)
{
    size_t n = d->nretiring;
    for (size_t i = 0; i < d->nslots; i++)
        n += d->slots[i].pid > 0;
    return n;
}

static void on_child_exit(struct pemsd *d, pid_t pid, int status)
{
    char why[64];
    exit_describe(status, why, sizeof why);
    long long now = util_mono_ms();
    for (size_t i = 0; i < d->nretiring; i++) {
        if (d->retiring[i].pid != pid)
            continue;
        log_info("child_exited", "child_pid=%d program=%s %s reason=%s", (int)pid,
                 kind_program[d->retiring[i].kind], why,
                 d->shutting_down ? "shutdown" : "reload");
        d->retiring[i] = d->retiring[--d->nretiring];
        return;
    }
    for (size_t i = 0; i < d->nslots; i++) {
        struct slot *s = &d->slots[i];
        if (s->pid != pid)
            continue;
        s->pid = 0;
        long uptime = (long)(now - s->started_ms);
        if (d->shutting_down) {
            log_info("child_exited", "child_pid=%d program=%s %s reason=shutdown uptime_ms=%ld",
                     (int)pid, kind_program[s->kind], why, uptime);
            return;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == PEMS_EXIT_CONFIG) {
            /* restarting cannot fix a configuration: stop, so the service manager sees it */
            log_error("child_config_invalid", "child_pid=%d program=%s %s action=shutdown",
                      (int)pid, kind_program[s->kind], why);
            d->exit_status = PEMS_EXIT_CONFIG;
            got_sigterm = 1;
            return;
        }
        long delay = restart_delay(&d->policy, &s->backoff_ms, uptime);
        s->start_at_ms = now + delay;
        /* a child never exits on its own while pemsd runs: any exit is a failure */
        log_event(WIFSIGNALED(status) ? PEMS_LOG_ERROR : PEMS_LOG_WARN, "child_died",
                  "child_pid=%d program=%s %s uptime_ms=%ld restart_in_ms=%ld", (int)pid,
                  kind_program[s->kind], why, uptime, delay);
        return;
    }
    log_debug("unknown_child_reaped", "child_pid=%d %s", (int)pid, why);
}

static void reap(struct pemsd *d, bool block)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, block ? 0 : WNOHANG)) > 0)
        on_child_exit(d, pid, status);
}

static void signal_all(struct pemsd *d, int sig)
{
    for (size_t i = 0; i < d->nslots; i++)
        if (d->slots[i].pid > 0)
            kill(d->slots[i].pid, sig);
    for (size_t i = 0; i < d->nretiring; i++)
        kill(d->retiring[i].pid, sig);
}

static void shutdown_begin(struct pemsd *d)
{
    service_notify("STOPPING=1\nSTATUS=stopping");
    d->shutting_down = true;
    d->shutdown_deadline_ms = util_mono_ms() + d->cfg.shutdown_timeout * 1000LL;
    log_info("shutdown_begin", "children=%zu timeout_s=%d", live_children(d),
             d->cfg.shutdown_timeout);
    /* stop holding the listening socket: once the children drained, connects are refused */
    int fd = open("/dev/null", O_RDONLY);
    if (fd >= 0 && fd != STDIN_FILENO) {
        dup2(fd, STDIN_FILENO);
        close(fd);
    }
    signal_all(d, SIGTERM);
}

static void reload(struct pemsd *d)
{
    struct pems_config cfg;
    char err[512];
    struct timespec mono;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    service_notify("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
                   (unsigned long long)mono.tv_sec * 1000000ULL +
                       (unsigned long long)mono.tv_nsec / 1000ULL);
    if (config_load(&cfg, d->config_path, err, sizeof err) < 0 ||
        config_require(&cfg, CONFIG_NEED_ALL, err, sizeof err) < 0) {
        log_error("reload_failed", "error=\"%s\" action=keeping_current_config", err);
        service_notify("READY=1\nSTATUS=reload failed, running the previous configuration: %s",
                       err);
        config_free(&cfg);
        return;
    }
    char **env = child_env_build(d->base_env, d->config_path);
    if (!env) {
        log_error("reload_failed", "error=\"cannot build child environment\"");
        service_notify("READY=1\nSTATUS=reload failed: cannot build the children's environment");
        config_free(&cfg);
        return;
    }
    config_free(&d->cfg);
    d->cfg = cfg;
    config_init_logging(&d->cfg, "pemsd");
    strv_free(d->child_env);
    d->child_env = env;
    resolve_programs(d);

    size_t running = live_children(d);
    struct slot *old = d->slots;
    size_t nold = d->nslots;
    d->slots = NULL;
    if (slots_alloc(d) < 0) {
        log_error("out_of_memory", NULL);
        exit(1);
    }
    log_info("reload", "fcgi_children=%d running_children=%zu", d->cfg.fcgi_children, running);
    /* a crash loop stays throttled across reloads */
    for (size_t i = 0; i + 1 < d->nslots && i + 1 < nold; i++)
        d->slots[i].backoff_ms = old[i].backoff_ms;
    d->slots[d->nslots - 1].backoff_ms = old[nold - 1].backoff_ms;
    /* one by one: the replacement is up before the old child is asked to finish */
    size_t nfcgi_old = nold - 1, nfcgi_new = d->nslots - 1;
    for (size_t i = 0; i < nfcgi_new || i < nfcgi_old; i++) {
        if (i < nfcgi_new)
            slot_start(d, &d->slots[i]);
        if (i < nfcgi_old && old[i].pid > 0)
            retire(d, old[i].pid, CHILD_FCGI);
    }
    slot_start(d, &d->slots[d->nslots - 1]);
    if (old[nold - 1].pid > 0)
        retire(d, old[nold - 1].pid, CHILD_WORKER);
    free(old);
    service_notify("READY=1\nSTATUS=running %d pems-fcgi and a pemsworker (reloaded)",
                   d->cfg.fcgi_children);
}

/* next moment the loop must act without a signal: a due restart or a kill deadline */
static int next_timeout_ms(const struct pemsd *d, long long now)
{
    long long next = LLONG_MAX;
    if (d->shutting_down) {
        next = d->shutdown_deadline_ms;
    } else {
        for (size_t i = 0; i < d->nslots; i++)
            if (d->slots[i].pid == 0 && d->slots[i].start_at_ms < next)
                next = d->slots[i].start_at_ms;
        for (size_t i = 0; i < d->nretiring; i++)
            if (d->retiring[i].kill_at_ms < next)
                next = d->retiring[i].kill_at_ms;
    }
    if (next == LLONG_MAX)
        return 60000;
    long long wait = next - now;
    return wait < 0 ? 0 : wait > 60000 ? 60000 : (int)wait;
}

static void tick(struct pemsd *d, long long now)
{
    for (size_t i = 0; i < d->nslots; i++)
        if (d->slots[i].pid == 0 && d->slots[i].start_at_ms <= now)
            slot_start(d, &d->slots[i]);
    for (size_t i = 0; i < d->nretiring; i++)
        if (d->retiring[i].kill_at_ms <= now && d->retiring[i].kill_at_ms > 0) {
            log_warn("child_kill", "child_pid=%d program=%s reason=drain_timeout",
                     (int)d->retiring[i].pid, kind_program[d->retiring[i].kind]);
            kill(d->retiring[i].pid, SIGKILL);
            d->retiring[i].kill_at_ms = LLONG_MAX; /* reaped via SIGCHLD */
        }
}

static int run(struct pemsd *d)
{
    sigset_t wait_mask;
    sigprocmask(SIG_BLOCK, NULL, &wait_mask);
    sigdelset(&wait_mask, SIGCHLD);
    sigdelset(&wait_mask, SIGTERM);
    sigdelset(&wait_mask, SIGINT);
    sigdelset(&wait_mask, SIGHUP);

    for (size_t i = 0; i < d->nslots; i++)
        slot_start(d, &d->slots[i]);
    /* ready once the children are started: they accept on the socket spawn-fcgi bound */
    service_notify("READY=1\nSTATUS=running %d pems-fcgi and a pemsworker", d->cfg.fcgi_children);

    for (;;) {
        if (got_sigchld) {
            got_sigchld = 0;
            reap(d, false);
        }
        if (got_sigterm && !d->shutting_down)
            shutdown_begin(d);
        if (got_sighup) {
            got_sighup = 0;
            if (!d->shutting_down)
                reload(d);
        }
        long long now = util_mono_ms();
        if (d->shutting_down) {
            if (live_children(d) == 0)
                break;
            if (now >= d->shutdown_deadline_ms) {
                log_warn("shutdown_timeout", "killing=%zu", live_children(d));
                signal_all(d, SIGKILL);
                reap(d, true);
                break;
            }
        } else {
            tick(d, now);
        }
        int ms = next_timeout_ms(d, util_mono_ms());
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        if (ppoll(NULL, 0, &ts, &wait_mask) < 0 && errno != EINTR) {
            log_error("ppoll_failed", "error=\"%s\"", strerror(errno));
            signal_all(d, SIGKILL);
            reap(d, true);
            return 1;
        }
    }
    if (d->exit_status)
        log_error("shutdown_complete", "exit_code=%d reason=child_config_invalid", d->exit_status);
    else
        log_info("shutdown_complete", NULL);
    return d->exit_status;
}

/* spawn-fcgi hands over the bound, listening socket as fd 0 (FCGI_LISTENSOCK_FILENO) */
static int check_listen_socket(char *err, size_t errlen)
{
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(STDIN_FILENO, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0) {
        snprintf(err, errlen, "fd 0 is not a socket (%s): start pemsd under spawn-fcgi, e.g. "
                 "spawn-fcgi -n -s $PEMS_FCGI_SOCKET -M 0660 -- pemsd (nginx's user in pemsd's group)", strerror(errno));
        return -1;
    }
    if (!listening) {
        snprintf(err, errlen, "fd 0 is a socket but not listening: start pemsd under spawn-fcgi");
        return -1;
    }
    return 0;
}

static void usage(void)
{
    fputs("Usage: spawn-fcgi -n -s SOCKET [-M MODE] -- pemsd [OPTION]...\n"
          "       pemsd -t [-c FILE]\n"
          "Supervise the pems-sync API: PEMS_FCGI_CHILDREN pems-fcgi processes accepting\n"
          "FastCGI connections on the listening socket given as fd 0, and one pemsworker.\n"
          "A child that dies is restarted with a backoff.\n"
          "\n"
          "  -c, --config=FILE   read KEY=value settings from FILE (the environment wins)\n"
          "  -t, --check-config  check the settings (file and environment), say what is\n"
          "                      wrong, exit 0 or 78; start nothing\n"
          "  -h, --help          show this help and exit\n"
          "  -V, --version       show the version and exit\n"
          "\n"
          "Signals: SIGTERM, SIGINT  stop accepting, let requests finish, exit within\n"
          "                          PEMS_SHUTDOWN_TIMEOUT seconds\n"
          "         SIGHUP           re-read the configuration, replace children one by one\n"
          "Exit status: 0 stopped cleanly (or -t: the configuration is valid), 1 start-up\n"
          "error (standard input is not a listening socket, out of memory) or a child that\n"
          "did not stop in time, 2 usage error, 78 a setting is missing or invalid (or a\n"
          "child exited with 78).\n"
          "Settings (DATABASE_URL, JWT_SECRET, ENCRYPTION_KEY, ...): pems.conf(5).\n"
          "See pemsd(8).\n",
          stdout);
}

int main(int argc, char **argv)
{
    struct pemsd d = { .policy = RESTART_POLICY_DEFAULT };
    char err[512];
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        { "check-config", no_argument, NULL, 't' },
        { 0 },
    };
    int opt;
    bool check_only = false;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORTOPTS "t", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': d.config_path = optarg; break;
        case 't': check_only = true; break;
        case 'h': usage(); return PEMS_EXIT_OK;
        case 'V': cli_print_version("pemsd"); return PEMS_EXIT_OK;
        default: return cli_getopt_error("pemsd", opt, argv, longopts);
        }
    }
    if (optind < argc)
        return cli_usage_error("pemsd", "unexpected argument '%s'", argv[optind]);
    if (config_load(&d.cfg, d.config_path, err, sizeof err) < 0 ||
        config_require(&d.cfg, CONFIG_NEED_ALL, err, sizeof err) < 0) {
        /* <3>: an error in the journal, like every logged error line */
        fprintf(stderr, "%spemsd: %s\n", log_stderr_is_journal() ? "<3>" : "", err);
        config_free(&d.cfg);
        return PEMS_EXIT_CONFIG;
    }
    if (check_only) {
        printf("pemsd: the configuration%s%s is valid\n", d.config_path ? " in " : "",
               d.config_path ? d.config_path : "");
        config_free(&d.cfg);
        return PEMS_EXIT_OK;
    }
    config_init_logging(&d.cfg, "pemsd");
    if (check_listen_socket(err, sizeof err) < 0) {
        log_error("startup_failed", "error=\"%s\"", err);
        config_free(&d.cfg);
        return 1;
    }

    struct sockaddr_un addr = { 0 };
    struct sockaddr_storage any = { 0 };
    socklen_t alen = sizeof any;
    char sock_buf[INET6_ADDRSTRLEN + 16] = "?";
    const char *sock = sock_buf;
    if (getsockname(STDIN_FILENO, (struct sockaddr *)&any, &alen) == 0) {
        if (any.ss_family == AF_UNIX) {
            memcpy(&addr, &any, sizeof addr);
            if (addr.sun_path[0])
                sock = addr.sun_path;
        } else if (any.ss_family == AF_INET || any.ss_family == AF_INET6) {
            /* FastCGI over TCP (spawn-fcgi -a ADDR -p PORT): one of several API hosts */
            char host[INET6_ADDRSTRLEN] = "?";
            const void *a = any.ss_family == AF_INET
                                ? (const void *)&((struct sockaddr_in *)&any)->sin_addr
                                : (const void *)&((struct sockaddr_in6 *)&any)->sin6_addr;
            unsigned port = ntohs(any.ss_family == AF_INET ? ((struct sockaddr_in *)&any)->sin_port
                                                           : ((struct sockaddr_in6 *)&any)->sin6_port);
            inet_ntop(any.ss_family, a, host, sizeof host);
            snprintf(sock_buf, sizeof sock_buf, "tcp:%s:%u", host, port);
        }
    }
    /* /metrics counts for the whole service only through a shared file: without one
     * configured, the children share one beside the socket */
    char metrics_path[sizeof addr.sun_path + 16];
    if ((!d.cfg.metrics_file || !*d.cfg.metrics_file) && sock[0] == '/') {
        snprintf(metrics_path, sizeof metrics_path, "%s.metrics", sock);
        setenv("PEMS_METRICS_FILE", metrics_path, 1);
    }

    d.base_env = strv_dup(environ);
    d.child_env = d.base_env ? child_env_build(d.base_env, d.config_path) : NULL;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    d.self_exe = strdup(exe);
    if (!d.child_env || !d.self_exe || slots_alloc(&d) < 0) {
        fprintf(stderr, "pemsd: out of memory or unreadable config file\n");
        return 1;
    }
    resolve_programs(&d);

    /* the flags are only looked at with these signals blocked; ppoll unblocks them */
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, NULL);
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    log_info("started", "socket=%s fcgi_children=%d fcgi_program=%s worker_program=%s "
             "shutdown_timeout_s=%d", sock, d.cfg.fcgi_children, d.program[CHILD_FCGI],
             d.program[CHILD_WORKER], d.cfg.shutdown_timeout);

    int rc = run(&d);

    config_free(&d.cfg);
    strv_free(d.base_env);
    strv_free(d.child_env);
    free(d.self_exe);
    free(d.program[0]);
    free(d.program[1]);
    free(d.slots);
    free(d.retiring);
    return rc;
}
