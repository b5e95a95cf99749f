/* pemsctl: the operator's CLI. Each command prints its result (an id, a token) alone on
 * stdout; errors go to stderr with exit 1 (failure) or 2 (usage). */
#include "build_config.h"
#include "audit.h"
#include "cli.h"
#include "pems_config.h"
#include "cron.h"
#include "crypto.h"
#include "db.h"
#include "jwt_auth.h"
#include "log.h"
#include "migrate.h"
#include "pems_server.h"
#include "queue_actions.h"
#include "text.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACTOR "pemsctl"
#ifndef PEMS_CONFIG_DIR
#define PEMS_CONFIG_DIR "/etc/pems"
#endif
#define MAX_OPTS 16
#define MAX_ARGS 4

struct command;

struct options {
    const char *names[MAX_OPTS];
    const char *values[MAX_OPTS];  /* NULL for flags */
    int n;
    const char *args[MAX_ARGS];
    int nargs;
};

struct ctx {
    const struct command *cmd;
    struct options opt;
    char opt_names[MAX_OPTS][32];   /* the command's option names, from its spec */
    struct pems_config cfg;
    db_t *db;
    char org_id[37];                /* --org, resolved */
};

struct command {
    const char *name;     /* one or two words */
    const char *usage;
    const char *summary;
    const char *options;  /* "name=" takes a value, "name" is a flag */
    int nargs;            /* positional arguments */
    unsigned need;        /* CONFIG_NEED_* */
    int (*run)(struct ctx *c);
    const struct listing *list;   /* the rows a "... list" command prints (cmd_list) */
};

/* A "... list" command: one SELECT whose columns are named by keys (JSON keys and the TSV
 * header). A key's first character may give its type: '#' number, '?' boolean, '@' JSON text
 * (an array prints comma-separated in TSV). Parameters, in this order, as many as nparams:
 * $1 --org (uuid or NULL), $2 --status (or NULL), $3 the row limit + 1. */
struct listing {
    const char *sql;
    int nparams;
    const char *const *keys;
    int nkeys;
};

static int cmd_migrate(struct ctx *c);
static int cmd_org_add(struct ctx *c);
static int cmd_user_add(struct ctx *c);
static int cmd_server_add(struct ctx *c);
static int cmd_token(struct ctx *c);
static int cmd_status(struct ctx *c);
static int cmd_retry(struct ctx *c);
static int cmd_cancel(struct ctx *c);
static int cmd_help(struct ctx *c);
static int cmd_list(struct ctx *c);
static int cmd_org_remove(struct ctx *c);
static int cmd_user_remove(struct ctx *c);
static int cmd_user_revoke(struct ctx *c);
static int cmd_server_remove(struct ctx *c);
static int cmd_server_disable(struct ctx *c);
static int cmd_server_enable(struct ctx *c);

static const char *const org_list_keys[] = { "id", "code", "name", "createdAt" };
static const struct listing org_list = {
    "SELECT id, code, name, pems_iso(created_at) FROM organizations ORDER BY code",
    0, org_list_keys, 4,
};
static const char *const user_list_keys[] = { "id", "username", "email", "organizationId",
                                              "organizationCode", "@permissions" };
static const struct listing user_list = {
    "SELECT u.id, u.username, u.email, o.id, o.code, array_to_json(m.permissions)::text"
    " FROM users u LEFT JOIN user_organizations m ON m.user_id = u.id"
    " LEFT JOIN organizations o ON o.id = m.organization_id"
    " WHERE $1::uuid IS NULL OR m.organization_id = $1::uuid ORDER BY u.username, o.code",
    1, user_list_keys, 6,
};
static const char *const server_list_keys[] = {
    "id", "organizationId", "organizationCode", "baseUrl", "authType", "username",
    "#rateLimitRps", "#maxInFlight", "?writeEnabled", "pausedUntil", "lastPullAt", "?healthOk",
    "healthError",
};
static const struct listing server_list = {
    "SELECT s.id, s.organization_id, o.code, s.base_url, s.auth_type, s.username,"
    " s.rate_limit_rps, s.max_in_flight, s.write_enabled, pems_iso(s.paused_until),"
    " pems_iso(s.last_pull_at),"
    " s.health_ok, s.health_error"
    " FROM api_servers s JOIN organizations o ON o.id = s.organization_id"
    " WHERE $1::uuid IS NULL OR s.organization_id = $1::uuid ORDER BY o.code",
    1, server_list_keys, 13,
};
/* the most recently changed first: a failed item is where an operator starts */
static const char *const queue_list_keys[] = {
    "id", "organizationId", "organizationCode", "pfaId", "modificationId", "status",
    "#attempts", "scheduledAt", "updatedAt", "#lastHttpStatus", "lastError",
};
static const struct listing queue_list = {
    "SELECT q.id, q.organization_id, o.code, m.pfa_id, q.modification_id, q.status, q.attempts,"
    " pems_iso(q.scheduled_at), pems_iso(q.updated_at), q.last_http_status, q.last_error"
    " FROM pfa_write_queue q JOIN pfa_modification m ON m.id = q.modification_id"
    " JOIN organizations o ON o.id = q.organization_id"
    " WHERE ($1::uuid IS NULL OR q.organization_id = $1::uuid)"
    " AND ($2::text IS NULL OR q.status = $2::text)"
    " ORDER BY q.updated_at DESC, q.id LIMIT $3::int",
    3, queue_list_keys, 11,
};

static const struct command commands[] = {
    { "migrate", "", "apply sql/: the schema once, each changed function file again (prints each one applied)", "", 0,
      CONFIG_NEED_DB, cmd_migrate, NULL },
    { "org add", "--code C --name N", "create an organization, print its id", "code= name=", 0,
      CONFIG_NEED_DB, cmd_org_add, NULL },
    { "org list", "[--json]", "organizations: id, code, name", "json", 0, CONFIG_NEED_DB,
      cmd_list, &org_list },
    { "org remove", "ORG",
      "delete the organization (its code or id) and everything it owns: memberships, server, "
      "records, modifications, queue, conflicts; its audit history stays; prints its id",
      "", 1, CONFIG_NEED_DB, cmd_org_remove, NULL },
    { "user add", "--username U --email E --org ORG --perm Read,Write,Sync[,Admin]",
      "create a user (or reuse it) and set its permissions in the organization, print the user id",
      "username= email= org= perm=", 0, CONFIG_NEED_DB, cmd_user_add, NULL },
    { "user list", "[--org ORG] [--json]",
      "users with their organizations and permissions (one row per membership)", "org= json", 0,
      CONFIG_NEED_DB, cmd_list, &user_list },
    { "user remove", "USER_ID",
      "delete the user and their memberships (refused while modifications name them: revoke "
      "instead); prints the user id",
      "", 1, CONFIG_NEED_DB, cmd_user_remove, NULL },
    { "user revoke", "--user USER_ID --org ORG [--perm P[,P]...]",
      "take the user's permissions in the organization away: those of --perm, or all of them "
      "(the membership goes when none is left); prints the user id",
      "user= org= perm=", 0, CONFIG_NEED_DB, cmd_user_revoke, NULL },
    { "server add",
      "--org ORG --url URL --user U --password P|- [--rps N] [--max-in-flight N] [--read-only]"
      " [--api-key K] [--replace]",
      "register the organization's PEMS server (credentials encrypted), print its id; "
      "an organization has one: --replace replaces it",
      "org= url= user= password= api-key= rps= max-in-flight= read-only replace", 0,
      CONFIG_NEED_DB | CONFIG_NEED_CRYPTO, cmd_server_add, NULL },
    { "server list", "[--org ORG] [--json]",
      "PEMS servers: organization, URL, auth, rate limit, writes, health (never credentials)",
      "org= json", 0, CONFIG_NEED_DB, cmd_list, &server_list },
    { "server remove", "--org ORG",
      "delete the organization's PEMS server (its queue items wait for the next one); prints "
      "the server's id",
      "org=", 0, CONFIG_NEED_DB, cmd_server_remove, NULL },
    { "server disable", "--org ORG",
      "stop writes to the organization's PEMS server (pulls go on); prints the server's id",
      "org=", 0, CONFIG_NEED_DB, cmd_server_disable, NULL },
    { "server enable", "--org ORG",
      "let writes go to the organization's PEMS server again; prints the server's id",
      "org=", 0, CONFIG_NEED_DB, cmd_server_enable, NULL },
    { "token", "--user USER_ID [--ttl SECONDS]", "mint an HS256 JWT signed with JWT_SECRET",
      "user= ttl=", 0, CONFIG_NEED_DB | CONFIG_NEED_JWT, cmd_token, NULL },
    { "status", "[--org ORG] [--json]",
      "queue depth by status, the failed items, last/next run, worker heartbeats", "org= json", 0,
      CONFIG_NEED_DB, cmd_status, NULL },
    { "queue list", "[--org ORG] [--status S] [--limit N] [--json]",
      "write queue items, most recently changed first: ids, pfaId, status, attempts, last "
      "error (S: pending, processing, completed, failed, cancelled; N: 1-100000, default 100)",
      "org= status= limit= json", 0, CONFIG_NEED_DB, cmd_list, &queue_list },
    { "retry", "ITEM_ID", "a failed queue item goes back to pending; prints its modification id",
      "", 1, CONFIG_NEED_DB, cmd_retry, NULL },
    { "cancel", "ITEM_ID", "cancel a pending queue item; prints its modification id", "", 1,
      CONFIG_NEED_DB, cmd_cancel, NULL },
    { "help", "[COMMAND]", "this list, or one command's usage", "", -1, 0, cmd_help, NULL },
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static int failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int failf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pemsctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return PEMS_EXIT_FAILURE;
}

static int usage_error(const struct command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int usage_error(const struct command *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pemsctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "usage: pemsctl %s %s\n", cmd->name, cmd->usage);
    else
        fputs("Try 'pemsctl --help' for more information.\n", stderr);
    return PEMS_EXIT_USAGE;
}

static int db_failure(struct ctx *c, const char *what)
{
    db_rollback(c->db);
    if (db_last_status(c->db) == DB_UNAVAILABLE)
        return failf("%s: database unavailable: %s", what, db_errmsg(c->db));
    return failf("%s: %s", what, db_errmsg(c->db));
}

static void print_usage(FILE *f)
{
    fputs("Usage: pemsctl [-c FILE] COMMAND [OPTION]... [ARG]...\n"
          "The pems-sync operator's tool: organizations, users, PEMS servers, the write\n"
          "queue. A command prints its result alone on stdout (an id, a token, rows);\n"
          "errors go to stderr.\n"
          "\n"
          "  -c, --config=FILE  read KEY=value settings from FILE (the environment wins)\n"
          "  -h, --help         show this help and exit\n"
          "  -V, --version      show the version and exit\n"
          "\n"
          "Commands (pemsctl help COMMAND, or pemsctl COMMAND --help, for one):\n", f);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %s%s%s\n      %s\n", commands[i].name, *commands[i].usage ? " " : "",
                commands[i].usage, commands[i].summary);
    fputs("\nORG is an organization's code or its id. Settings (DATABASE_URL, JWT_SECRET,\n"
          "ENCRYPTION_KEY, PEMS_SQL_DIR, ...) come from " PEMS_CONFIG_DIR "/pems.conf (or -c FILE),\n"
          "then " PEMS_CONFIG_DIR "/pems.env, each when readable, then the environment, which\n"
          "wins.\n"
          "Exit status: 0 done, 1 failed, 2 usage error.\n"
          "See pemsctl(1) and pems.conf(5).\n",
          f);
}

static const char *opt(const struct ctx *c, const char *name)
{
    for (int i = 0; i < c->opt.n; i++)
        if (strcmp(c->opt.names[i], name) == 0)
            return c->opt.values[i];
    return NULL;
}

static bool flag(const struct ctx *c, const char *name)
{
    for (int i = 0; i < c->opt.n; i++)
        if (strcmp(c->opt.names[i], name) == 0)
            return true;
    return false;
}

/* The command's option spec ("name=" takes a value, "name" is a flag) as getopt_long's table;
 * each option's val is OPT_BASE + its index. -1 when the spec does not fit. */
#define OPT_BASE 256
static int build_longopts(struct ctx *c, struct option *lo, size_t cap)
{
    const char *p = c->cmd->options;
    size_t n = 0;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, " =");
        if (!len)
            break;
        if (n + 2 > cap || n >= MAX_OPTS || len >= sizeof c->opt_names[0])
            return -1;
        memcpy(c->opt_names[n], p, len);
        c->opt_names[n][len] = '\0';
        bool valued = p[len] == '=';
        lo[n] = (struct option){ c->opt_names[n], valued ? required_argument : no_argument, NULL,
                                 OPT_BASE + (int)n };
        n++;
        p += len + (valued ? 1 : 0);
    }
    lo[n++] = (struct option){ "help", no_argument, NULL, 'h' };
    lo[n] = (struct option){ 0 };
    return 0;
}

/* getopt_long over the command's words (argv[0] is the command's last word): --name value,
 * --name=value, flags, and positional arguments. 1 = --help asked, -rc on a usage error. */
static int parse_options(struct ctx *c, int argc, char **argv)
{
    const struct command *cmd = c->cmd;
    struct option lo[MAX_OPTS + 2];
    if (build_longopts(c, lo, sizeof lo / sizeof lo[0]) < 0)
        return -failf("internal error: the options of '%s' do not fit", cmd->name);
    optind = 0;   /* glibc: start over, this is a second scan */
    opterr = 0;
    int r;
    while ((r = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        if (r == 'h')
            return 1;
        if (r < OPT_BASE) {
            char msg[256];
            cli_getopt_message(r, argv, lo, msg, sizeof msg);
            return -usage_error(cmd, "%s", msg);
        }
        const char *name = lo[r - OPT_BASE].name;
        for (int k = 0; k < c->opt.n; k++)
            if (!strcmp(c->opt.names[k], name))
                return -usage_error(cmd, "option '--%s' given twice", name);
        c->opt.names[c->opt.n] = name;
        c->opt.values[c->opt.n++] = optarg;
    }
    for (int i = optind; i < argc; i++) {
        if ((cmd->nargs >= 0 && c->opt.nargs >= cmd->nargs) || c->opt.nargs == MAX_ARGS)
            return -usage_error(cmd, "unexpected argument '%s'", argv[i]);
        c->opt.args[c->opt.nargs++] = argv[i];
    }
    if (cmd->nargs >= 0 && c->opt.nargs < cmd->nargs)
        return -usage_error(cmd, "missing argument");
    return 0;
}

/* Required options, all at once: NULL-terminated names. */
static int require_opts(const struct ctx *c, ...)
{
    va_list ap;
    va_start(ap, c);
    const char *name;
    int rc = 0;
    while ((name = va_arg(ap, const char *))) {
        const char *v = opt(c, name);
        if (!v || !*v) {
            rc = usage_error(c->cmd, "missing --%s", name);
            break;
        }
    }
    va_end(ap);
    return rc;
}

static bool print_line(const char *s)
{
    return printf("%s\n", s) > 0;
}

static int cmd_help(struct ctx *c)
{
    if (c->opt.nargs == 0) {
        print_usage(stdout);
        return 0;
    }
    /* "help org" lists every "org ..." command, "help org add" just that one */
    char name[128];
    snprintf(name, sizeof name, "%s%s%s", c->opt.args[0], c->opt.nargs > 1 ? " " : "",
             c->opt.nargs > 1 ? c->opt.args[1] : "");
    size_t len = strlen(name);
    int shown = 0;
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strncmp(commands[i].name, name, len) &&
            (commands[i].name[len] == '\0' || commands[i].name[len] == ' ')) {
            printf("usage: pemsctl %s %s\n    %s\n", commands[i].name, commands[i].usage,
                   commands[i].summary);
            shown++;
        }
    return shown ? 0 : usage_error(NULL, "unknown command '%s'", name);
}

static void print_applied(const char *version)
{
    print_line(version);
}

static int cmd_migrate(struct ctx *c)
{
    char err[1024];
    int n = migrate_run(c->db, c->cfg.sql_dir, print_applied, err, sizeof err);
    if (n < 0)
        return failf("migrate: %s", err);
    log_info("migrate_done", "applied=%d dir=%s", n, c->cfg.sql_dir);
    return 0;
}

static int cmd_org_add(struct ctx *c)
{
    int rc = require_opts(c, "code", "name", (const char *)NULL);
    if (rc)
        return rc;
    const char *params[] = { opt(c, "code"), opt(c, "name") };
    json_t *after = NULL;
    PGresult *res = NULL;
    rc = PEMS_EXIT_FAILURE;
    if (db_begin(c->db) != DB_OK)
        return db_failure(c, "org add");
    res = db_query(c->db, NULL,
                   "INSERT INTO organizations (code, name) VALUES ($1, $2) RETURNING id", 2,
                   params);
    if (!res) {
        if (!strcmp(db_sqlstate(c->db), "23505")) {
            db_rollback(c->db);
            rc = failf("org add: an organization with code '%s' already exists", params[0]);
        } else if (!strcmp(db_sqlstate(c->db), "23514")) {
            db_rollback(c->db);
            rc = failf("org add: code and name must not be blank");
        } else {
            rc = db_failure(c, "org add");
        }
        goto cleanup;
    }
    const char *id = PQgetvalue(res, 0, 0);
    after = json_pack("{s:s, s:s}", "code", params[0], "name", params[1]);
    if (audit_write(c->db, id, NULL, ACTOR, "create", "organizations", id, NULL, after) != DB_OK ||
        db_commit(c->db) != DB_OK) {
        rc = db_failure(c, "org add");
        goto cleanup;
    }
    rc = print_line(id) ? 0 : PEMS_EXIT_FAILURE;
cleanup:
    PQclear(res);
    json_decref(after);
    return rc;
}

static const char *const known_perms[] = { "Read", "Write", "Sync", "Admin" };

/* "Read,Write" -> a JSON array and a PostgreSQL array literal, duplicates dropped */
static int parse_perms(struct ctx *c, const char *spec, json_t **arr, char *lit, size_t litlen)
{
    *arr = json_array();
    size_t used = 0;
    lit[used++] = '{';
    const char *p = spec;
    while (*arr) {
        size_t n = strcspn(p, ",");
        while (n && isspace((unsigned char)*p)) {
            p++;
            n--;
        }
        size_t m = n;
        while (m && isspace((unsigned char)p[m - 1]))
            m--;
        const char *found = NULL;
        for (size_t k = 0; k < sizeof known_perms / sizeof known_perms[0]; k++)
            if (strlen(known_perms[k]) == m && !strncmp(known_perms[k], p, m))
                found = known_perms[k];
        if (!found) {
            json_decref(*arr);
            *arr = NULL;
            return usage_error(c->cmd,
                               "unknown permission '%.*s' (expected Read, Write, Sync or Admin)",
                               (int)m, p);
        }
        bool dup = false;
        size_t i;
        json_t *v;
        json_array_foreach(*arr, i, v) dup |= !strcmp(json_string_value(v), found);
        if (!dup) {
            json_array_append_new(*arr, json_string(found));
            used += (size_t)snprintf(lit + used, litlen - used, "%s%s",
                                     json_array_size(*arr) > 1 ? "," : "", found);
        }
        if (p[n] != ',')
            break;
        p += n + 1;
    }
    if (!*arr)
        return failf("out of memory");
    snprintf(lit + used, litlen - used, "}");
    return 0;
}

static bool valid_email(const char *e)
{
    const char *at = strchr(e, '@');
    return at && at > e && at[1] != '\0';
}

static json_t *query_json(struct ctx *c, const char *sql, int n, const char *const *params)
{
    PGresult *res = db_query(c->db, NULL, sql, n, params);
    if (!res)
        return NULL;
    json_t *j = PQntuples(res) && !PQgetisnull(res, 0, 0)
                    ? json_loads(PQgetvalue(res, 0, 0), 0, NULL)
                    : json_null();
    PQclear(res);
    return j;
}

static int cmd_user_add(struct ctx *c)
{
    int rc = require_opts(c, "username", "email", "org", "perm", (const char *)NULL);
    if (rc)
        return rc;
    const char *username = opt(c, "username"), *email = opt(c, "email"), *org = opt(c, "org");
    if (!valid_email(email))
        return usage_error(c->cmd, "--email '%s' is not an email address", email);
    json_t *perms = NULL, *before = NULL, *after = NULL, *user_after = NULL;
    char lit[128];
    if ((rc = parse_perms(c, opt(c, "perm"), &perms, lit, sizeof lit)))
        return rc;
    PGresult *res = NULL;
    char user_id[37] = "";
    rc = PEMS_EXIT_FAILURE;

    if (db_begin(c->db) != DB_OK) {
        rc = db_failure(c, "user add");
        goto cleanup;
    }
    const char *porg[] = { org };
    if (!(res = db_query(c->db, NULL, "SELECT 1 FROM organizations WHERE id = $1 FOR SHARE", 1,
                         porg))) {
        rc = db_failure(c, "user add");
        goto cleanup;
    }
    if (PQntuples(res) == 0) {
        db_rollback(c->db);
        rc = failf("user add: organization %s not found", org);
        goto cleanup;
    }
    PQclear(res);
    const char *pu[] = { username, email };
    if (!(res = db_query(c->db, NULL,
                         "INSERT INTO users (username, email) VALUES ($1, $2)"
                         " ON CONFLICT (username) DO NOTHING RETURNING id",
                         2, pu))) {
        rc = !strcmp(db_sqlstate(c->db), "23514")
                 ? (db_rollback(c->db), failf("user add: username or email rejected"))
                 : db_failure(c, "user add");
        goto cleanup;
    }
    if (PQntuples(res) == 1) {
        snprintf(user_id, sizeof user_id, "%s", PQgetvalue(res, 0, 0));
        user_after = json_pack("{s:s, s:s}", "username", username, "email", email);
        if (!user_after || audit_write(c->db, org, NULL, ACTOR, "create", "users", user_id, NULL,
                                       user_after) != DB_OK) {
            rc = db_failure(c, "user add");
            goto cleanup;
        }
    } else {
        PQclear(res);
        if (!(res = db_query(c->db, NULL, "SELECT id, email FROM users WHERE username = $1", 1,
                             pu)) ||
            PQntuples(res) != 1) {
            rc = db_failure(c, "user add");
            goto cleanup;
        }
        snprintf(user_id, sizeof user_id, "%s", PQgetvalue(res, 0, 0));
        if (strcmp(PQgetvalue(res, 0, 1), email) != 0)
            fprintf(stderr, "pemsctl: note: user '%s' exists with email %s (kept)\n", username,
                    PQgetvalue(res, 0, 1));
    }
    const char *pm[] = { user_id, org, lit };
    before = query_json(c,
                        "SELECT array_to_json(permissions)::text FROM user_organizations"
                        " WHERE user_id = $1 AND organization_id = $2 FOR UPDATE",
                        2, pm);
    if (!before) {
        rc = db_failure(c, "user add");
        goto cleanup;
    }
    if (db_exec(c->db, NULL,
                "INSERT INTO user_organizations (user_id, organization_id, permissions)"
                " VALUES ($1, $2, $3::text[]) ON CONFLICT (user_id, organization_id)"
                " DO UPDATE SET permissions = EXCLUDED.permissions",
                3, pm) != DB_OK) {
        rc = db_failure(c, "user add");
        goto cleanup;
    }
    json_t *bperm = json_is_null(before) ? NULL : json_pack("{s:O}", "permissions", before);
    after = json_pack("{s:O}", "permissions", perms);
    int arc = after ? audit_write(c->db, org, NULL, ACTOR, json_is_null(before) ? "grant" : "update",
                                  "user_organizations", user_id, bperm, after)
                    : DB_ERROR;
    json_decref(bperm);
    if (arc != DB_OK || db_commit(c->db) != DB_OK) {
        rc = db_failure(c, "user add");
        goto cleanup;
    }
    rc = print_line(user_id) ? 0 : PEMS_EXIT_FAILURE;
cleanup:
    PQclear(res);
    json_decref(perms);
    json_decref(before);
    json_decref(after);
    json_decref(user_after);
    return rc;
}

/* "-" reads the secret from the first line of stdin, so it stays out of ps and history */
static char *read_secret(const char *value)
{
    if (strcmp(value, "-") != 0)
        return strdup(value);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

static int cmd_server_add(struct ctx *c)
{
    int rc = require_opts(c, "org", "url", (const char *)NULL);
    if (rc)
        return rc;
    const char *org = opt(c, "org"), *url = opt(c, "url"), *user = opt(c, "user");
    const char *password = opt(c, "password"), *api_key = opt(c, "api-key");
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return usage_error(c->cmd, "--url must start with http:// or https://");
    if (api_key && password)
        return usage_error(c->cmd, "give either --password or --api-key, not both");
    if (!api_key && (rc = require_opts(c, "user", "password", (const char *)NULL)))
        return rc;
    if (api_key && !*api_key)
        return usage_error(c->cmd, "--api-key must not be empty");
    long rps = 10;
    if (opt(c, "rps") && !util_parse_long(opt(c, "rps"), 1, 100000, &rps))
        return usage_error(c->cmd, "--rps must be an integer between 1 and 100000");
    long max_in_flight = 0;
    if (opt(c, "max-in-flight") &&
        !util_parse_long(opt(c, "max-in-flight"), 1, 10000, &max_in_flight))
        return usage_error(c->cmd, "--max-in-flight must be an integer between 1 and 10000");
    unsigned char key[CRYPTO_KEY_LEN];
    if (crypto_key_from_hex(c->cfg.encryption_key, key) < 0)
        return failf("ENCRYPTION_KEY must be 64 hex characters");
    char *secret = read_secret(api_key ? api_key : password);
    if (!secret) {
        explicit_bzero(key, sizeof key);
        return failf("server add: cannot read the secret from stdin");
    }
    bool write_enabled = !flag(c, "read-only");
    enum pems_auth auth = api_key ? PEMS_AUTH_API_KEY : PEMS_AUTH_BASIC;
    char id[37] = "";
    json_t *before = NULL, *after = NULL;
    rc = PEMS_EXIT_FAILURE;
    const char *porg[] = { org };
    PGresult *res = NULL;
    /* FOR NO KEY UPDATE: two server adds for one organization take turns, so the second
     * sees the first one's server and refuses (without --replace) */
    if (db_begin(c->db) != DB_OK ||
        !(res = db_query(c->db, NULL,
                         "SELECT 1 FROM organizations WHERE id = $1 FOR NO KEY UPDATE", 1,
                         porg))) {
        rc = db_failure(c, "server add");
        goto cleanup;
    }
    if (PQntuples(res) == 0) {
        db_rollback(c->db);
        rc = failf("server add: organization %s not found", org);
        goto cleanup;
    }
    before = query_json(c,
                        "SELECT json_build_object('baseUrl', base_url, 'authType', auth_type,"
                        " 'username', username, 'rateLimitRps', rate_limit_rps,"
                        " 'writeEnabled', write_enabled)::text"
                        " FROM api_servers WHERE organization_id = $1 FOR UPDATE",
                        1, porg);
    if (!before) {
        rc = db_failure(c, "server add");
        goto cleanup;
    }
    /* one server per organization: replacing it redirects every write, so only when asked */
    if (!json_is_null(before) && !flag(c, "replace")) {
        db_rollback(c->db);
        rc = failf("server add: organization %s already has a PEMS server (%s); "
                   "--replace replaces it", org,
                   json_string_value(json_object_get(before, "baseUrl")));
        goto cleanup;
    }
    int src = pems_server_save(c->db, org, url, auth, user, secret, (int)rps, (int)max_in_flight,
                               write_enabled, key, id);
    if (src != DB_OK) {
        if (src == DB_ERROR && !db_sqlstate(c->db)[0]) {
            db_rollback(c->db);
            rc = failf("server add: cannot encrypt the credentials");
        } else {
            rc = db_failure(c, "server add");
        }
        goto cleanup;
    }
    /* the secret never goes into the audit log */
    after = json_pack("{s:s, s:s, s:s?, s:i, s:b}", "baseUrl", url, "authType",
                      api_key ? "api_key" : "basic", "username", user, "rateLimitRps", (int)rps,
                      "writeEnabled", write_enabled);
    if (!after ||
        audit_write(c->db, org, NULL, ACTOR, json_is_null(before) ? "create" : "update",
                    "api_servers", id, json_is_null(before) ? NULL : before, after) != DB_OK ||
        db_commit(c->db) != DB_OK) {
        rc = db_failure(c, "server add");
        goto cleanup;
    }
    rc = print_line(id) ? 0 : PEMS_EXIT_FAILURE;
cleanup:
    PQclear(res);
    json_decref(before);
    json_decref(after);
    explicit_bzero(secret, strlen(secret));
    free(secret);
    explicit_bzero(key, sizeof key);
    return rc;
}

/* --org and org remove's ORG: an organization's code or its id, to its id (in out). 0, or
 * the exit status with the message printed. */
static int org_resolve(struct ctx *c, const char *what, const char *org, char out[37])
{
    const char *params[] = { org };
    /* a code may look like a uuid: both are tried, the id first */
    PGresult *res = db_query(c->db, NULL,
                             util_is_uuid(org)
                                 ? "SELECT id FROM organizations WHERE id = $1::text::uuid"
                                   " UNION ALL SELECT id FROM organizations WHERE code = $1::text"
                                 : "SELECT id FROM organizations WHERE code = $1::text",
                             1, params);
    if (!res)
        return db_failure(c, what);
    int rc = 0;
    if (PQntuples(res) == 0)
        rc = failf("%s: organization '%s' not found (give its code or its id)", what, org);
    else
        snprintf(out, 37, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

static int finish_change(struct ctx *c, const char *what, const char *org, const char *action,
                         const char *entity, const char *id, const json_t *before,
                         const json_t *after)
{
    if (audit_write(c->db, org, NULL, ACTOR, action, entity, id, before, after) != DB_OK ||
        db_commit(c->db) != DB_OK)
        return db_failure(c, what);
    return print_line(id) ? 0 : PEMS_EXIT_FAILURE;
}

static int cmd_org_remove(struct ctx *c)
{
    char org[37];
    int rc;
    if (db_begin(c->db) != DB_OK)
        return db_failure(c, "org remove");
    if ((rc = org_resolve(c, "org remove", c->opt.args[0], org))) {
        db_rollback(c->db);
        return rc;
    }
    const char *p[] = { org };
    json_t *before = query_json(c,
                                "SELECT json_build_object('code', code, 'name', name)::text"
                                " FROM organizations WHERE id = $1 FOR UPDATE",
                                1, p);
    if (!before)
        return db_failure(c, "org remove");
    /* everything it owns goes with it (ON DELETE CASCADE); its audit history stays */
    if (json_is_null(before)) {
        rc = (db_rollback(c->db), failf("org remove: organization %s not found", org));
    } else if (db_exec(c->db, NULL, "DELETE FROM organizations WHERE id = $1", 1, p) != DB_OK) {
        rc = db_failure(c, "org remove");
    } else {
        rc = finish_change(c, "org remove", org, "delete", "organizations", org, before, NULL);
    }
    json_decref(before);
    return rc;
}

static int cmd_user_remove(struct ctx *c)
{
    const char *user = c->opt.args[0];
    if (!util_is_uuid(user))
        return usage_error(c->cmd, "USER_ID must be a user id (uuid), got '%s'", user);
    const char *p[] = { user };
    if (db_begin(c->db) != DB_OK)
        return db_failure(c, "user remove");
    json_t *before = query_json(c,
                                "SELECT json_build_object('username', username, 'email', email,"
                                " 'organizations', (SELECT coalesce(json_agg(json_build_object("
                                "'organizationId', organization_id, 'permissions', permissions)"
                                " ORDER BY organization_id), '[]') FROM user_organizations"
                                " WHERE user_id = u.id))::text"
                                " FROM users u WHERE id = $1 FOR UPDATE",
                                1, p);
    int rc;
    if (!before)
        return db_failure(c, "user remove");
    if (json_is_null(before)) {
        rc = (db_rollback(c->db), failf("user remove: user %s not found", user));
    } else if (db_exec(c->db, NULL, "DELETE FROM users WHERE id = $1", 1, p) != DB_OK) {
        /* the modifications a user made name them (modified_by): the history stays whole */
        if (!strcmp(db_sqlstate(c->db), "23503"))
            rc = (db_rollback(c->db),
                  failf("user remove: user %s has made modifications, which keep naming them; "
                        "'user revoke' takes their permissions away instead", user));
        else
            rc = db_failure(c, "user remove");
    } else {
        rc = finish_change(c, "user remove", NULL, "delete", "users", user, before, NULL);
    }
    json_decref(before);
    return rc;
}

static int cmd_user_revoke(struct ctx *c)
{
    int rc = require_opts(c, "user", "org", (const char *)NULL);
    if (rc)
        return rc;
    const char *user = opt(c, "user"), *org = opt(c, "org");
    if (!util_is_uuid(user))
        return usage_error(c->cmd, "--user must be a user id (uuid), got '%s'", user);
    json_t *perms = NULL, *before = NULL, *after = NULL;
    char lit[128] = "{}";
    if (opt(c, "perm") && (rc = parse_perms(c, opt(c, "perm"), &perms, lit, sizeof lit)))
        return rc;
    const char *p[] = { user, org, lit };
    if (db_begin(c->db) != DB_OK) {
        rc = db_failure(c, "user revoke");
        goto cleanup;
    }
    if (!(before = query_json(c,
                              "SELECT array_to_json(permissions)::text FROM user_organizations"
                              " WHERE user_id = $1 AND organization_id = $2 FOR UPDATE",
                              2, p))) {
        rc = db_failure(c, "user revoke");
        goto cleanup;
    }
    if (json_is_null(before)) {
        db_rollback(c->db);
        rc = failf("user revoke: user %s is not a member of organization %s", user, org);
        goto cleanup;
    }
    /* without --perm the membership goes; with it, those permissions (none left: it goes) */
    PGresult *res = db_query(c->db, NULL,
                             "WITH kept AS (SELECT ARRAY(SELECT x FROM unnest(permissions) x"
                             " WHERE NOT (x = ANY ($3::text[]))) AS p FROM user_organizations"
                             " WHERE user_id = $1 AND organization_id = $2),"
                             " gone AS (DELETE FROM user_organizations WHERE user_id = $1"
                             " AND organization_id = $2 AND ($3::text[] = '{}'"
                             " OR (SELECT cardinality(p) = 0 FROM kept)) RETURNING 1),"
                             " changed AS (UPDATE user_organizations SET permissions ="
                             " (SELECT p FROM kept) WHERE user_id = $1 AND organization_id = $2"
                             " AND $3::text[] <> '{}' AND (SELECT cardinality(p) > 0 FROM kept)"
                             " RETURNING permissions)"
                             " SELECT (SELECT array_to_json(permissions)::text FROM changed)",
                             3, p);
    if (!res) {
        rc = db_failure(c, "user revoke");
        goto cleanup;
    }
    bool removed = PQgetisnull(res, 0, 0);
    after = removed ? NULL : json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    json_t *b = json_pack("{s:O}", "permissions", before);
    json_t *a = after ? json_pack("{s:O}", "permissions", after) : NULL;
    if (audit_write(c->db, org, NULL, ACTOR, "revoke", "user_organizations", user, b, a) !=
            DB_OK ||
        db_commit(c->db) != DB_OK)
        rc = db_failure(c, "user revoke");
    else
        rc = print_line(user) ? 0 : PEMS_EXIT_FAILURE;
    json_decref(b);
    json_decref(a);
cleanup:
    json_decref(perms);
    json_decref(before);
    json_decref(after);
    return rc;
}

#define SERVER_ROW_JSON \
    "SELECT id, json_build_object('baseUrl', base_url, 'authType', auth_type, 'username'," \
    " username, 'rateLimitRps', rate_limit_rps, 'writeEnabled', write_enabled)::text" \
    " FROM api_servers WHERE organization_id = $1 FOR UPDATE"

/* server remove and server disable|enable: the organization's server row, locked */
static int server_change(struct ctx *c, const char *what, int enable)
{
    int rc = require_opts(c, "org", (const char *)NULL);
    if (rc)
        return rc;
    const char *org = opt(c, "org");
    const char *p[] = { org, enable > 0 ? "true" : "false" };
    if (db_begin(c->db) != DB_OK)
        return db_failure(c, what);
    PGresult *res = db_query(c->db, NULL, SERVER_ROW_JSON, 1, p);
    if (!res)
        return db_failure(c, what);
    if (PQntuples(res) == 0) {
        PQclear(res);
        db_rollback(c->db);
        return failf("%s: organization %s has no PEMS server", what, org);
    }
    char id[37];
    snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    json_t *before = json_loads(PQgetvalue(res, 0, 1), 0, NULL), *after = NULL;
    PQclear(res);
    if (!before) {
        db_rollback(c->db);
        return failf("%s: out of memory", what);
    }
    int erc;
    if (enable < 0) {
        /* its queue items stay: they wait for the next server the organization gets */
        erc = db_exec(c->db, NULL, "DELETE FROM api_servers WHERE organization_id = $1", 1, p);
    } else {
        erc = db_exec(c->db, NULL,
                      "UPDATE api_servers SET write_enabled = $2::boolean, updated_at = now()"
                      " WHERE organization_id = $1",
                      2, p);
        after = json_deep_copy(before);
        json_object_set_new(after, "writeEnabled", json_boolean(enable > 0));
    }
    if (erc != DB_OK)
        rc = db_failure(c, what);
    else
        rc = finish_change(c, what, org, enable < 0 ? "delete" : enable ? "enable" : "disable",
                           "api_servers", id, before, after);
    json_decref(before);
    json_decref(after);
    return rc;
}

static int cmd_server_remove(struct ctx *c)
{
    return server_change(c, "server remove", -1);
}

static int cmd_server_disable(struct ctx *c)
{
    return server_change(c, "server disable", 0);
}

static int cmd_server_enable(struct ctx *c)
{
    return server_change(c, "server enable", 1);
}

static int cmd_token(struct ctx *c)
{
    int rc = require_opts(c, "user", (const char *)NULL);
    if (rc)
        return rc;
    const char *user = opt(c, "user");
    if (!util_is_uuid(user))
        return usage_error(c->cmd, "--user must be a user id (uuid), got '%s'", user);
    long ttl = 3600;
    if (opt(c, "ttl") && !util_parse_long(opt(c, "ttl"), 1, 10L * 366 * 24 * 3600, &ttl))
        return usage_error(c->cmd, "--ttl must be a positive number of seconds");
    const char *params[] = { user };
    PGresult *res = db_query(c->db, NULL, "SELECT id FROM users WHERE id = $1", 1, params);
    if (!res)
        return db_failure(c, "token");
    int found = PQntuples(res);
    char sub[37];
    if (found)
        snprintf(sub, sizeof sub, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!found)
        return failf("token: user %s not found", user);
    char *tok = jwt_mint_hs256(c->cfg.jwt_secret, sub, ttl, time(NULL));
    if (!tok)
        return failf("token: cannot sign the token");
    rc = print_line(tok) ? 0 : PEMS_EXIT_FAILURE;
    free(tok);
    return rc;
}

/* status: one REPEATABLE READ snapshot, rendered as JSON or text */

/* one column of a row as JSON, by the type character of its key (struct listing) */
static json_t *col_json(const PGresult *res, int row, int col, char type)
{
    const char *v = db_value(res, row, col);
    if (!v)
        return json_null();
    switch (type) {
    case '#': return json_integer(atoll(v));
    case '?': return json_boolean(v[0] == 't');
    case '@': return json_loads(v, JSON_DECODE_ANY, NULL);
    default: return json_string(v);
    }
}

static const char *key_name(const char *key)
{
    return strchr("#?@", key[0]) ? key + 1 : key;
}

/* Runs sql and returns rows as objects keyed by keys (typed as in struct listing). */
static json_t *query_rows(struct ctx *c, const char *sql, int n, const char *const *params,
                          const char *const *keys, int nkeys)
{
    PGresult *res = db_query(c->db, NULL, sql, n, params);
    if (!res)
        return NULL;
    json_t *rows = json_array();
    for (int r = 0; rows && r < PQntuples(res); r++) {
        json_t *o = json_object();
        for (int k = 0; o && k < nkeys; k++)
            json_object_set_new(o, key_name(keys[k]), col_json(res, r, k, keys[k][0]));
        json_array_append_new(rows, o);
    }
    PQclear(res);
    return rows;
}

/* "status, count" rows -> {status: count}, every status of all present with 0 */
static json_t *counts(struct ctx *c, const char *sql, const char *org, const char *const *all)
{
    const char *params[] = { org };
    PGresult *res = db_query(c->db, NULL, sql, 1, params);
    if (!res)
        return NULL;
    json_t *o = json_object();
    for (int i = 0; o && all[i]; i++)
        json_object_set_new(o, all[i], json_integer(0));
    for (int r = 0; o && r < PQntuples(res); r++)
        json_object_set_new(o, PQgetvalue(res, r, 0), json_integer(atoll(PQgetvalue(res, r, 1))));
    PQclear(res);
    return o;
}

static const char *const queue_statuses[] = { "pending", "processing", "completed", "failed",
                                              "cancelled", NULL };
static const char *const mod_statuses[] = { "draft", "pending_sync", "queued", "synced",
                                            "sync_error", "conflict", "discarded", NULL };

#define ORG_FILTER " ($1::uuid IS NULL OR organization_id = $1::uuid)"
/* status names this many failed items, the most recent; queue list --status failed has all */
#define STATUS_FAILED_SHOWN "10"

/* status --org: the organization, its PEMS server and what GET /sync-status answers for it,
 * into st. 1 done, 0 no such organization, -1 database failure. */
static int status_organization(struct ctx *c, const char *org, const char *period,
                               const char *next, json_t *st)
{
    const char *params[] = { org };
    static const char *const okeys[] = { "id", "code", "name" };
    json_t *rows = query_rows(c, "SELECT id, code, name FROM organizations WHERE id = $1", 1,
                              params, okeys, 3);
    if (!rows)
        return -1;
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        return 0;
    }
    json_object_set(st, "organization", json_array_get(rows, 0));
    json_decref(rows);
    static const char *const skeys[] = { "id", "baseUrl", "authType", "#rateLimitRps",
                                         "writeEnabled", "pausedUntil", "lastPullAt" };
    rows = query_rows(c,
                      "SELECT id, base_url, auth_type, rate_limit_rps,"
                      " CASE WHEN write_enabled THEN 'true' ELSE 'false' END,"
                      " pems_iso(paused_until), pems_iso(last_pull_at)"
                      " FROM api_servers WHERE organization_id = $1",
                      1, params, skeys, 7);
    if (!rows)
        return -1;
    json_t *srv = json_array_get(rows, 0);
    if (srv)
        json_object_set_new(srv, "writeEnabled",
                            json_boolean(!strcmp(json_string_value(
                                json_object_get(srv, "writeEnabled")), "true")));
    json_object_set(st, "server", srv ? srv : json_null());
    json_decref(rows);
    const char *sp[] = { org, period, next };
    PGresult *res = db_query(c->db, NULL,
                             "SELECT doc FROM pems_sync_status($1::uuid, NULL, NULL, NULL,"
                             " $2::int, $3::timestamptz)",
                             3, sp);
    json_t *sync = res ? json_loads(PQgetvalue(res, 0, 0), 0, NULL) : NULL;
    PQclear(res);
    if (!sync)
        return -1;
    json_object_set_new(st, "syncStatus", sync);
    return 1;
}

/* period: the schedule's, in seconds; next: its next fire time (sql/functions/sync_status.sql) */
static json_t *status_collect(struct ctx *c, const char *org, const char *period,
                              const char *next)
{
    const char *params[] = { org };
    const char *sched[] = { period };
    json_t *st = json_object(), *v;
    if (!st)
        return NULL;
    if (org) {
        int found = status_organization(c, org, period, next, st);
        if (found < 0)
            goto fail;
        if (found == 0) {
            json_decref(st);
            return json_null();
        }
    }
    if (!(v = counts(c,
                     "SELECT status, count(*) FROM pfa_write_queue WHERE" ORG_FILTER
                     " GROUP BY status",
                     org, queue_statuses)))
        goto fail;
    json_object_set_new(st, "queue", v);
    static const char *const dkeys[] = { "#dueNow", "#overdue", "nextDueAt", "#expiredLeases" };
    json_t *rows = query_rows(
        c,
        "SELECT count(*) FILTER (WHERE status = 'pending' AND scheduled_at <= now()),"
        " count(*) FILTER (WHERE pems_queue_item_overdue(status, scheduled_at)),"
        " pems_iso(min(scheduled_at) FILTER (WHERE status = 'pending')),"
        " count(*) FILTER (WHERE status = 'processing' AND locked_until < now())"
        " FROM pfa_write_queue WHERE" ORG_FILTER,
        1, params, dkeys, 4);
    if (!rows)
        goto fail;
    json_object_set(st, "due", json_array_get(rows, 0));
    json_decref(rows);
    static const char *const fkeys[] = { "id", "pfaId", "organizationCode", "#attempts",
                                         "updatedAt", "#lastHttpStatus", "lastError" };
    rows = query_rows(c,
                      "SELECT q.id, m.pfa_id, o.code, q.attempts, pems_iso(q.updated_at),"
                      " q.last_http_status, q.last_error FROM pfa_write_queue q"
                      " JOIN pfa_modification m ON m.id = q.modification_id"
                      " JOIN organizations o ON o.id = q.organization_id"
                      " WHERE q.status = 'failed'"
                      " AND ($1::uuid IS NULL OR q.organization_id = $1::uuid)"
                      " ORDER BY q.updated_at DESC, q.id LIMIT " STATUS_FAILED_SHOWN,
                      1, params, fkeys, 7);
    if (!rows)
        goto fail;
    json_object_set_new(st, "failedItems", rows);
    if (!(v = counts(c,
                     "SELECT status, count(*) FROM pfa_modification WHERE" ORG_FILTER
                     " GROUP BY status",
                     org, mod_statuses)))
        goto fail;
    json_object_set_new(st, "modifications", v);
    if (!(v = counts(c,
                     "SELECT status, count(*) FROM pfa_sync_conflict WHERE" ORG_FILTER
                     " GROUP BY status",
                     org, (const char *const[]){ "unresolved", "resolved", NULL })))
        goto fail;
    json_object_set_new(st, "conflicts", v);
    static const char *const bkeys[] = { "id", "workerId", "startedAt", "completedAt",
                                         "#totalProcessed", "#successful", "#failed",
                                         "#conflicts", "#skipped", "#merged", "#pulled" };
    rows = query_rows(c,
                      "SELECT id, worker_id, pems_iso(started_at), pems_iso(completed_at),"
                      " total_processed, successful, failed, conflicts, skipped, merged, pulled"
                      " FROM sync_batches ORDER BY started_at DESC LIMIT 1",
                      0, NULL, bkeys, 11);
    if (!rows)
        goto fail;
    json_object_set(st, "lastBatch", json_array_size(rows) ? json_array_get(rows, 0) : json_null());
    json_decref(rows);
    static const char *const rkeys[] = { "lastRunAt", "nextRunAt" };
    rows = query_rows(c,
                      "SELECT pems_iso(GREATEST((SELECT max(completed_at) FROM sync_batches),"
                      " (SELECT max(last_run_at) FROM worker_heartbeats))),"
                      " pems_iso((SELECT next_sync_at FROM pems_next_sync($1::int)))",
                      1, sched, rkeys, 2);
    if (!rows)
        goto fail;
    json_object_update(st, json_array_get(rows, 0));
    json_decref(rows);
    static const char *const wkeys[] = { "workerId", "hostname", "#pid", "state", "startedAt",
                                         "lastSeenAt", "lastRunAt", "nextSyncAt",
                                         "#secondsSinceSeen" };
    rows = query_rows(c,
                      "SELECT worker_id, hostname, pid, state, pems_iso(started_at),"
                      " pems_iso(last_seen_at), pems_iso(last_run_at), pems_iso(next_sync_at),"
                      " floor(extract(epoch FROM now() - last_seen_at))::bigint"
                      " FROM worker_heartbeats ORDER BY last_seen_at DESC LIMIT 50",
                      0, NULL, wkeys, 9);
    if (!rows)
        goto fail;
    json_object_set_new(st, "workers", rows);
    return st;
fail:
    json_decref(st);
    return NULL;
}

/* A value from data (PEMS's error text, names) for the terminal: control characters escaped
 * (text_escape_controls). The last few stay valid, enough for one printf's arguments. */
static const char *str_or(const json_t *o, const char *key, const char *def)
{
    static char *ring[16];
    static int next;
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return def;
    free(ring[next]);
    ring[next] = text_escape_controls(json_string_value(v), json_string_length(v),
                                      TEXT_ESCAPE_FIELD);
    const char *s = ring[next];
    next = (next + 1) % 16;
    return s ? s : def;
}

/* JSON as pemsctl prints it (--json): DEL and C1 escaped too, which jansson leaves raw */
static int print_json(const json_t *j, size_t flags)
{
    char *txt = json_dumps(j, flags);
    char *safe = txt ? text_escape_controls(txt, strlen(txt), TEXT_ESCAPE_JSON) : NULL;
    int rc = safe && print_line(safe) ? 0 : PEMS_EXIT_FAILURE;
    free(txt);
    free(safe);
    return rc;
}

static void print_counts(const char *label, const json_t *o, const char *const *order)
{
    printf("%-15s", label);
    for (int i = 0; order[i]; i++)
        printf(" %s=%lld", order[i], (long long)json_integer_value(json_object_get(o, order[i])));
    putchar('\n');
}

static void status_print_text(const json_t *st)
{
    const json_t *org = json_object_get(st, "organization");
    if (org) {
        printf("%-15s %s (%s, %s)\n", "organization:", str_or(org, "id", ""),
               str_or(org, "code", ""), str_or(org, "name", ""));
        const json_t *srv = json_object_get(st, "server");
        if (json_is_object(srv))
            printf("%-15s %s auth=%s rps=%lld writes=%s%s%s\n", "pems server:",
                   str_or(srv, "baseUrl", ""), str_or(srv, "authType", ""),
                   (long long)json_integer_value(json_object_get(srv, "rateLimitRps")),
                   json_is_true(json_object_get(srv, "writeEnabled")) ? "enabled" : "disabled",
                   json_is_string(json_object_get(srv, "pausedUntil")) ? " paused until " : "",
                   str_or(srv, "pausedUntil", ""));
        else
            printf("%-15s none configured\n", "pems server:");
        const json_t *sync = json_object_get(st, "syncStatus");
        printf("%-15s %s success_rate=%lld%% next_sync=%s (GET /sync-status)\n", "health:",
               str_or(sync, "health", "-"),
               (long long)json_integer_value(json_object_get(sync, "successRate")),
               str_or(sync, "nextSyncAt", "-"));
    }
    print_counts("queue:", json_object_get(st, "queue"), queue_statuses);
    const json_t *due = json_object_get(st, "due");
    printf("%-15s due_now=%lld overdue=%lld expired_leases=%lld next_due=%s\n", "",
           (long long)json_integer_value(json_object_get(due, "dueNow")),
           (long long)json_integer_value(json_object_get(due, "overdue")),
           (long long)json_integer_value(json_object_get(due, "expiredLeases")),
           str_or(due, "nextDueAt", "-"));
    const json_t *failed = json_object_get(st, "failedItems");
    if (json_array_size(failed)) {
        long long nfailed = json_integer_value(json_object_get(json_object_get(st, "queue"),
                                                               "failed"));
        printf("%-15s %lld (%s%s)\n", "failed items:", nfailed,
               nfailed > (long long)json_array_size(failed) ? "the most recent " STATUS_FAILED_SHOWN
                                                            : "each",
               "; pemsctl queue list --status failed, pemsctl retry ITEM_ID");
        size_t i;
        const json_t *f;
        json_array_foreach(failed, i, f) {
            printf("  %s pfa=%s org=%s attempts=%lld", str_or(f, "id", ""),
                   str_or(f, "pfaId", ""), str_or(f, "organizationCode", ""),
                   (long long)json_integer_value(json_object_get(f, "attempts")));
            if (json_is_integer(json_object_get(f, "lastHttpStatus")))
                printf(" http=%lld",
                       (long long)json_integer_value(json_object_get(f, "lastHttpStatus")));
            printf(" at=%s error=", str_or(f, "updatedAt", "-"));
            json_t *err = json_object_get(f, "lastError");
            char *e = json_dumps(err ? err : json_null(), JSON_ENCODE_ANY);
            char *safe = e ? text_escape_controls(e, strlen(e), TEXT_ESCAPE_JSON) : NULL;
            printf("%s\n", safe ? safe : "null");
            free(safe);
            free(e);
        }
    }
    print_counts("modifications:", json_object_get(st, "modifications"), mod_statuses);
    print_counts("conflicts:", json_object_get(st, "conflicts"),
                 (const char *const[]){ "unresolved", "resolved", NULL });
    printf("%-15s %s\n", "last run:", str_or(st, "lastRunAt", "never"));
    const json_t *b = json_object_get(st, "lastBatch");
    if (json_is_object(b))
        printf("%-15s batch %s by %s: processed=%lld successful=%lld failed=%lld "
               "conflicts=%lld skipped=%lld\n",
               "", str_or(b, "id", ""), str_or(b, "workerId", ""),
               (long long)json_integer_value(json_object_get(b, "totalProcessed")),
               (long long)json_integer_value(json_object_get(b, "successful")),
               (long long)json_integer_value(json_object_get(b, "failed")),
               (long long)json_integer_value(json_object_get(b, "conflicts")),
               (long long)json_integer_value(json_object_get(b, "skipped")));
    printf("%-15s %s\n", "next run:", str_or(st, "nextRunAt", "unknown (no live worker)"));
    const json_t *workers = json_object_get(st, "workers");
    printf("%-15s %zu\n", "workers:", json_array_size(workers));
    size_t i;
    const json_t *w;
    json_array_foreach(workers, i, w)
        printf("  %s host=%s pid=%lld state=%s last_seen=%s (%llds ago) next_sync=%s\n",
               str_or(w, "workerId", ""), str_or(w, "hostname", ""),
               (long long)json_integer_value(json_object_get(w, "pid")), str_or(w, "state", ""),
               str_or(w, "lastSeenAt", "-"),
               (long long)json_integer_value(json_object_get(w, "secondsSinceSeen")),
               str_or(w, "nextSyncAt", "-"));
}

static int cmd_status(struct ctx *c)
{
    const char *org = opt(c, "org");
    if (db_exec(c->db, NULL, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL) !=
        DB_OK)
        return db_failure(c, "status");
    char period[24], next[UTIL_ISO_SIZE];
    time_t now = time(NULL);
    struct cron_expr *ce = cron_parse(c->cfg.write_sync_schedule, NULL, 0);
    snprintf(period, sizeof period, "%ld", cron_period(ce, now, c->cfg.write_sync_tz));
    util_iso_time(next, (int64_t)cron_next_run(ce, now, c->cfg.write_sync_tz) * 1000);
    cron_free(ce);
    json_t *st = status_collect(c, org, period, next);
    if (!st)
        return db_failure(c, "status");
    db_rollback(c->db);
    if (json_is_null(st)) {
        json_decref(st);
        return failf("status: organization %s not found", org);
    }
    int rc = 0;
    if (flag(c, "json")) {
        rc = print_json(st, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    } else {
        status_print_text(st);
    }
    json_decref(st);
    return rc;
}

/* One TSV field: NULL is empty, an array is comma-separated; tab, newline, carriage return
 * and backslash are escaped as in PostgreSQL's COPY text format, so a row stays one line, and
 * every other control character as \u00XX, so none reaches the terminal. */
static void tsv_field(const json_t *v)
{
    if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e) {
            if (i)
                putchar(',');
            tsv_field(e);
        }
        return;
    }
    if (json_is_integer(v)) {
        printf("%lld", (long long)json_integer_value(v));
        return;
    }
    if (json_is_boolean(v)) {
        fputs(json_is_true(v) ? "true" : "false", stdout);
        return;
    }
    if (!json_is_string(v))
        return;
    char *safe = text_escape_controls(json_string_value(v), json_string_length(v),
                                      TEXT_ESCAPE_FIELD);
    if (safe)
        fputs(safe, stdout);
    free(safe);
}

static void print_tsv(const struct listing *l, const json_t *rows)
{
    for (int k = 0; k < l->nkeys; k++)
        printf("%s%s", k ? "\t" : "", key_name(l->keys[k]));
    putchar('\n');
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row) {
        for (int k = 0; k < l->nkeys; k++) {
            if (k)
                putchar('\t');
            tsv_field(json_object_get(row, key_name(l->keys[k])));
        }
        putchar('\n');
    }
}

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list))
            return true;
    return false;
}

/* every "... list" command: its listing's rows as TSV with a header line, or --json */
static int cmd_list(struct ctx *c)
{
    const struct listing *l = c->cmd->list;
    const char *org = opt(c, "org"), *status = opt(c, "status"), *limit_s = opt(c, "limit");
    if (status && !in_list(status, queue_statuses))
        return usage_error(c->cmd, "unknown --status '%s' (pending, processing, completed, "
                           "failed or cancelled)", status);
    long limit = 100;
    if (limit_s && !util_parse_long(limit_s, 1, 100000, &limit))
        return usage_error(c->cmd, "--limit must be an integer between 1 and 100000");
    char limit_plus_one[24];
    snprintf(limit_plus_one, sizeof limit_plus_one, "%ld", limit + 1);
    const char *params[] = { org, status, limit_plus_one };
    json_t *rows = query_rows(c, l->sql, l->nparams, params, l->keys, l->nkeys);
    if (!rows)
        return db_failure(c, c->cmd->name);
    /* the one row past the limit only says there are more */
    bool more = l->nparams >= 3 && json_array_size(rows) > (size_t)limit;
    if (more)
        json_array_remove(rows, json_array_size(rows) - 1);
    int rc = 0;
    if (flag(c, "json")) {
        rc = print_json(rows, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    } else {
        print_tsv(l, rows);
    }
    if (more)
        fprintf(stderr, "pemsctl: note: more than %ld rows; --limit shows more\n", limit);
    json_decref(rows);
    return rc;
}

static int queue_action(struct ctx *c, bool retry)
{
    const char *item = c->opt.args[0];
    char mod[37] = "";
    enum queue_action_result r = retry ? queue_item_retry(c->db, item, NULL, NULL, mod)
                                       : queue_item_cancel(c->db, item, NULL, NULL, mod);
    const char *name = retry ? "retry" : "cancel";
    switch (r) {
    case QUEUE_ACTION_OK:
        return print_line(mod) ? 0 : PEMS_EXIT_FAILURE;
    case QUEUE_ACTION_NOT_FOUND:
        return failf("%s: queue item %s not found", name, item);
    case QUEUE_ACTION_WRONG_STATE: {
        const char *params[] = { item };
        PGresult *res = db_query(c->db, NULL,
                                 "SELECT q.status, m.status FROM pfa_write_queue q"
                                 " JOIN pfa_modification m ON m.id = q.modification_id"
                                 " WHERE q.id = $1",
                                 1, params);
        int rc = failf("%s: wrong state: queue item %s is %s (modification %s); %s", name, item,
                       res && PQntuples(res) ? PQgetvalue(res, 0, 0) : "?",
                       res && PQntuples(res) ? PQgetvalue(res, 0, 1) : "?",
                       retry ? "only a failed item can be retried"
                             : "only a pending item can be cancelled");
        PQclear(res);
        return rc;
    }
    case QUEUE_ACTION_DB_UNAVAILABLE:
    case QUEUE_ACTION_DB_ERROR:
        break;
    }
    return db_failure(c, name);
}

static int cmd_retry(struct ctx *c)
{
    return queue_action(c, true);
}

static int cmd_cancel(struct ctx *c)
{
    return queue_action(c, false);
}

/* Matches "org add" against argv; returns the number of words used, 0 if no command. */
static const struct command *find_command(int argc, char **argv, int *used, bool *prefix)
{
    *prefix = false;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const char *name = commands[i].name, *sp = strchr(name, ' ');
        size_t first = sp ? (size_t)(sp - name) : strlen(name);
        if (strlen(argv[0]) != first || strncmp(argv[0], name, first) != 0)
            continue;
        if (!sp) {
            *used = 1;
            return &commands[i];
        }
        *prefix = true;
        if (argc > 1 && !strcmp(argv[1], sp + 1)) {
            *used = 2;
            return &commands[i];
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    static const struct option longopts[] = { CLI_COMMON_LONGOPTS, { 0 } };
    int r;
    opterr = 0;
    /* "+": the options before the command are pemsctl's, the rest are the command's */
    while ((r = getopt_long(argc, argv, "+" CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (r) {
        case 'c': config_path = optarg; break;
        case 'h': print_usage(stdout); return PEMS_EXIT_OK;
        case 'V': cli_print_version("pemsctl"); return PEMS_EXIT_OK;
        default: {
            char msg[256];
            cli_getopt_message(r, argv, longopts, msg, sizeof msg);
            return usage_error(NULL, "%s", msg);
        }
        }
    }
    int i = optind;
    if (i == argc) {
        print_usage(stderr);
        return PEMS_EXIT_USAGE;
    }
    int used = 0;
    bool prefix;
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.cmd = find_command(argc - i, argv + i, &used, &prefix);
    if (!c.cmd) {
        if (prefix)
            return usage_error(NULL, "unknown command '%s %s'", argv[i],
                               i + 1 < argc ? argv[i + 1] : "");
        return usage_error(NULL, "unknown command '%s'", argv[i]);
    }
    /* the command's last word stands in for argv[0] */
    int prc = parse_options(&c, argc - i - used + 1, argv + i + used - 1);
    if (prc == 1) {
        printf("usage: pemsctl %s %s\n    %s\n", c.cmd->name, c.cmd->usage, c.cmd->summary);
        return 0;
    }
    if (prc < 0)
        return -prc;

    /* like the daemons under their unit: pems.conf (or -c FILE), then the secrets of
     * pems.env, then the environment; the default files only when they can be read */
    char err[512], conf_default[PATH_MAX], env_file[PATH_MAX];
    const char *dir = getenv("PEMS_CONFIG_DIR");
    if (!dir || !*dir)
        dir = PEMS_CONFIG_DIR;
    snprintf(conf_default, sizeof conf_default, "%s/pems.conf", dir);
    snprintf(env_file, sizeof env_file, "%s/pems.env", dir);
    const struct config_file files[] = {
        { .path = config_path ? config_path : conf_default, .optional = !config_path },
        { .path = env_file, .optional = true, .other_keys = true },
    };
    if (config_load_files(&c.cfg, files, 2, err, sizeof err) < 0) {
        config_free(&c.cfg);
        return failf("%s", err);
    }
    int rc = PEMS_EXIT_FAILURE;
    if (config_require(&c.cfg, c.cmd->need, err, sizeof err) < 0) {
        rc = failf("%s", err);
        goto cleanup;
    }
    /* a CLI is quiet on success unless asked otherwise */
    if (getenv("PEMS_LOG_LEVEL"))
        config_init_logging(&c.cfg, "pemsctl");
    else
        log_init("pemsctl", PEMS_LOG_WARN);
    if (c.cmd->need & CONFIG_NEED_DB) {
        if (!(c.db = db_new(c.cfg.database_url))) {
            rc = failf("out of memory");
            goto cleanup;
        }
        if (db_connect(c.db) != DB_OK) {
            rc = failf("cannot connect to the database: %s", db_errmsg(c.db));
            goto cleanup;
        }
    }
    /* --org: a code or an id, the id from here on */
    for (int k = 0; k < c.opt.n; k++)
        if (!strcmp(c.opt.names[k], "org") && c.opt.values[k]) {
            if ((rc = org_resolve(&c, c.cmd->name, c.opt.values[k], c.org_id)))
                goto cleanup;
            c.opt.values[k] = c.org_id;
        }
    rc = c.cmd->run(&c);
    if (fflush(stdout) != 0 && rc == 0)
        rc = failf("cannot write to stdout: %s", strerror(errno));
cleanup:
    db_free(c.db);
    config_free(&c.cfg);
    return rc;
}
