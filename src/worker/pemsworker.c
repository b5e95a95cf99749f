/* pemsworker: drains the PEMS write queue and pulls PEMS's changes (README.md).
 *   pemsworker                 run on PEMS_WRITE_SYNC_SCHEDULE until SIGTERM/SIGINT
 *   pemsworker --once          pull, drain what is due now, exit 0
 *   pemsworker --until-idle[=S] pull, drain, and wait out scheduled retries (at most S seconds,
 *                              default 120) until no item is pending
 * Options: usage() below and pemsworker(8). */
#include "cli.h"
#include "pems_config.h"
#include "log.h"
#include "worker.h"
#include "util.h"

#include <getopt.h>
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

static void usage(void)
{
    fputs("Usage: pemsworker [OPTION]...\n"
          "Pull each organization's changed PFA records from its PEMS server and drain the\n"
          "write queue into PEMS, at each server's rate limit. Without --once or\n"
          "--until-idle, run on PEMS_WRITE_SYNC_SCHEDULE until SIGTERM or SIGINT.\n"
          "\n"
          "  -c, --config=FILE         read KEY=value settings from FILE (the environment wins)\n"
          "      --once                pull, drain every item due now, exit 0\n"
          "      --until-idle[=SECS]   pull, drain, and wait out scheduled retries until no\n"
          "                            item is pending (at most SECS, 1-86400, default 120)\n"
          "  -h, --help                show this help and exit\n"
          "  -V, --version             show the version and exit\n"
          "\n"
          "Signals: SIGTERM, SIGINT  start nothing new, let the requests in flight finish\n"
          "                          (PEMS_SHUTDOWN_TIMEOUT), record them, exit 0\n"
          "Exit status: 0 done (or stopped by a signal), 1 the database could not be\n"
          "reached at the start of --once or --until-idle, or a run failed, 2 usage error,\n"
          "78 a setting is missing or invalid.\n"
          "See pemsworker(8) and pems.conf(5).\n",
          stdout);
}

int main(int argc, char **argv)
{
    struct worker_options opt = { .mode = WORKER_SCHEDULE, .idle_timeout_s = 120 };
    const char *conf = NULL;
    enum { OPT_ONCE = 256, OPT_UNTIL_IDLE };
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        { "once", no_argument, NULL, OPT_ONCE },
        { "until-idle", optional_argument, NULL, OPT_UNTIL_IDLE },
        { 0 },
    };
    int c;
    long secs;
    opterr = 0;
    while ((c = getopt_long(argc, argv, CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (c) {
        case 'c': conf = optarg; break;
        case 'h': usage(); return PEMS_EXIT_OK;
        case 'V': cli_print_version("pemsworker"); return PEMS_EXIT_OK;
        case OPT_ONCE: opt.mode = WORKER_ONCE; break;
        case OPT_UNTIL_IDLE:
            opt.mode = WORKER_UNTIL_IDLE;
            if (optarg && !util_parse_long(optarg, 1, 86400, &secs))
                return cli_usage_error("pemsworker", "--until-idle takes seconds, 1 to 86400, "
                                       "not '%s'", optarg);
            if (optarg)
                opt.idle_timeout_s = (int)secs;
            break;
        default: return cli_getopt_error("pemsworker", c, argv, longopts);
        }
    }
    if (optind < argc)
        return cli_usage_error("pemsworker", "unexpected argument '%s'", argv[optind]);

    struct pems_config cfg;
    char err[256];
    if (config_load(&cfg, conf, err, sizeof err) != 0) {
        fprintf(stderr, "pemsworker: %s\n", err);
        return PEMS_EXIT_CONFIG;
    }
    config_init_logging(&cfg, "pemsworker");
    if (config_require(&cfg, CONFIG_NEED_DB | CONFIG_NEED_CRYPTO | CONFIG_NEED_SCHEDULE, err,
                       sizeof err) != 0) {
        log_error("config_invalid", "error=\"%s\"", err);
        config_free(&cfg);
        return PEMS_EXIT_CONFIG;
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
