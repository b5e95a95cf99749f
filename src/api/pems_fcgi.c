/* pems-fcgi: the REST API that openapi.yaml documents, one FastCGI responder per process.
 * pemsd execs it with the listening socket on fd 0; it accepts until SIGTERM/SIGINT,
 * finishes the request in flight, and exits 0. */
#include "api_common.h"
#include "api_params.h"
#include "cli.h"
#include "auth.h"
#include "pems_config.h"
#include "cron.h"
#include "db.h"
#include "http.h"
#include "idempotency.h"
#include "log.h"
#include "metrics.h"
#include "page_cache.h"
#include "router.h"
#include "token_cache.h"
#include "util.h"

#include <errno.h>
#include <fcgiapp.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <time.h>

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;   /* no SA_RESTART: a blocked accept() returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void handle(struct api_ctx *ctx, FCGX_Request *fr)
{
    int64_t t0 = util_mono_ns();
    struct http_request req;
    http_request_init(&req, fr, config_is_development(ctx->cfg));
    const struct route *rt = NULL;
    char allow[64];
    switch (router_match(req.method, req.path, &req, &rt, allow, sizeof allow)) {
    case ROUTE_NOT_FOUND:
        http_send_error(&req, 404, "not_found", "No such route", NULL);
        break;
    case ROUTE_BAD_METHOD:
        http_send_method_not_allowed(&req, allow);
        break;
    case ROUTE_FOUND:
        if (rt->access == ROUTE_METRICS && !addr_allow_match(&ctx->metrics_allow, req.remote_addr)) {
            http_send_error(&req, 403, "forbidden", "This address may not read the metrics", NULL);
            break;
        }
        if (rt->access == ROUTE_TOKEN && auth_token(ctx, &req) != 0)
            break;
        if (rt->access == ROUTE_TOKEN && strcmp(req.method, "POST") == 0 &&
            req.idempotency_key) {
            api_idempotent_run(ctx, &req, rt);
            break;
        }
        /* a handler's work is one transaction: after a deadlock or serialization failure it
         * is rolled back and run again, a bounded number of times (db_retry_due) */
        for (int retries = 0;; retries++) {
            api_handler_attempt(ctx, &req, rt, retries);
            if (!req.retry)
                break;
            db_rollback(ctx->db);
            if (!db_retry_due(ctx->db, retries))
                break;
        }
        break;
    }
    if (!req.status)
        api_internal_error(&req, "the handler sent no response");
    db_rollback(ctx->db);   /* no-op unless a handler left a transaction open */
    double secs = (double)(util_mono_ns() - t0) / 1e9;
    metrics_http_observe(rt ? rt->pattern : "unmatched", req.status, secs);
    if (log_enabled(PEMS_LOG_DEBUG))
        log_debug("request", "method=%s path=%s status=%d ms=%.2f", req.method, req.path,
                  req.status, secs * 1000);
    http_request_clear(&req);
}

static void usage(void)
{
    fputs("Usage: pems-fcgi [OPTION]...\n"
          "Serve /api/pems over FastCGI on the listening socket given as fd 0. pemsd starts\n"
          "it (PEMS_FCGI_CHILDREN of them); it is not meant to be run by hand.\n"
          "\n"
          "  -c, --config=FILE  read KEY=value settings from FILE (the environment wins)\n"
          "      --list-routes  print \"METHOD PATTERN\" for every route and exit\n"
          "  -h, --help         show this help and exit\n"
          "  -V, --version      show the version and exit\n"
          "\n"
          "Signals: SIGTERM, SIGINT  finish the request in hand, then exit 0\n"
          "Exit status: 0 stopped by a signal, 1 start-up or accept error, 2 usage error,\n"
          "78 a setting is missing or invalid (pemsd then stops: pemsd(8)).\n"
          "See pemsd(8) and pems.conf(5); the routes are documented in openapi.yaml.\n",
          stdout);
}

int main(int argc, char **argv)
{
    const char *conf = NULL;
    enum { OPT_LIST_ROUTES = 256 };
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        { "list-routes", no_argument, NULL, OPT_LIST_ROUTES },
        { 0 },
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (c) {
        case 'c': conf = optarg; break;
        case 'h': usage(); return PEMS_EXIT_OK;
        case 'V': cli_print_version("pems-fcgi"); return PEMS_EXIT_OK;
        case OPT_LIST_ROUTES: {
            size_t n;
            const struct route *routes = router_routes(&n);
            for (size_t k = 0; k < n; k++)
                printf("%s %s\n", routes[k].method, routes[k].pattern);
            return PEMS_EXIT_OK;
        }
        default: return cli_getopt_error("pems-fcgi", c, argv, longopts);
        }
    }
    if (optind < argc)
        return cli_usage_error("pems-fcgi", "unexpected argument '%s'", argv[optind]);

    struct pems_config cfg;
    char err[256];
    if (config_load(&cfg, conf, err, sizeof err) < 0) {
        fprintf(stderr, "pems-fcgi: %s\n", err);
        return PEMS_EXIT_CONFIG;
    }
    config_init_logging(&cfg, "pems-fcgi");
    if (config_require(&cfg, CONFIG_NEED_DB | CONFIG_NEED_JWT, err, sizeof err) < 0) {
        log_error("config_invalid", "error=\"%s\"", err);
        config_free(&cfg);
        return PEMS_EXIT_CONFIG;
    }
    install_signals();
    /* db_retry_due pauses differ per process */
    srandom((unsigned)getpid() ^ (unsigned)time(NULL));
    if (cfg.metrics_file && *cfg.metrics_file)
        metrics_open(cfg.metrics_file);

    struct api_ctx ctx = { .cfg = &cfg };
    char aerr[160];
    addr_allow_parse(&ctx.metrics_allow, cfg.metrics_allow, aerr, sizeof aerr);   /* checked */
    ctx.db = db_new(cfg.database_url);
    /* every route is one prepared statement whose best plan does not depend on its values;
     * without this PostgreSQL re-plans the optional-filter statements on each call */
    if (ctx.db)
        db_set_session(ctx.db, "SET plan_cache_mode = force_generic_plan");
    char cerr[128];
    ctx.schedule = cron_parse(cfg.write_sync_schedule, cerr, sizeof cerr);
    if (!ctx.schedule)
        log_warn("schedule_invalid", "schedule=\"%s\" error=\"%s\"", cfg.write_sync_schedule, cerr);
    int rc = 0;
    if (!ctx.db || FCGX_Init() != 0) {
        log_error("startup_failed", "error=\"out of memory or FastCGI init failed\"");
        rc = 1;
        goto out;
    }
    FCGX_Request fr;
    FCGX_InitRequest(&fr, 0, FCGI_FAIL_ACCEPT_ON_INTR);
    db_connect(ctx.db);   /* early, so the first request is fast; failure is retried lazily */
    log_info("started", "metrics=%s", cfg.metrics_file ? cfg.metrics_file : "-");
    while (!stopping) {
        if (FCGX_Accept_r(&fr) < 0) {
            if (stopping || errno == EINTR)
                continue;
            log_error("accept_failed", "error=\"%s\"", strerror(errno));
            rc = 1;
            break;
        }
        handle(&ctx, &fr);
        FCGX_Finish_r(&fr);
    }
    FCGX_Free(&fr, 1);
    log_info("stopped", "reason=%s", rc ? "error" : "signal");
out:
    page_cache_free(ctx.conflict_pages);
    page_cache_free(ctx.record_pages);
    token_cache_free(ctx.tokens);
    page_cache_free(ctx.status_pages);
    addr_allow_free(&ctx.metrics_allow);
    cron_free(ctx.schedule);
    db_free(ctx.db);
    metrics_close();
    config_free(&cfg);
    return rc;
}
