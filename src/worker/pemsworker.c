/* pemsworker: drains the PEMS write queue and pulls PEMS's changes (SPEC §1, §6).
 *   pemsworker                 run on PEMS_WRITE_SYNC_SCHEDULE until SIGTERM/SIGINT
 *   pemsworker --once          pull, drain what is due now, exit 0
 *   -c FILE                    configuration file (the environment wins) */
#include "pems_config.h"
#include "log.h"
#include "worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *to)
{
    fprintf(to, "usage: pemsworker [-c FILE] [--once]\n");
}

int main(int argc, char **argv)
{
    struct worker_options opt = { .mode = WORKER_SCHEDULE };
    const char *conf = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--once") == 0) {
            opt.mode = WORKER_ONCE;
        } else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            conf = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }

    struct pems_config cfg;
    char err[256];
    if (config_load(&cfg, conf, err, sizeof err) != 0) {
        fprintf(stderr, "pemsworker: %s\n", err);
        return 1;
    }
    config_init_logging(&cfg, "pemsworker");
    if (config_require(&cfg, CONFIG_NEED_DB | CONFIG_NEED_CRYPTO, err, sizeof err) != 0) {
        log_error("config_invalid", "error=\"%s\"", err);
        config_free(&cfg);
        return 1;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);

    int rc = worker_main(&cfg, &opt, &stop_requested);
    config_free(&cfg);
    return rc;
}
