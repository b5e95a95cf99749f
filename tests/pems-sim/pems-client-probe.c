/* pems-client-probe: calls pems_client against a PEMS base URL and prints each outcome as
 * one JSON line, so the client can be tested against the real simulator from shell.
 *
 *   pems-client-probe --url BASE [--user U] [--secret S | --api-key K] [--timeout-ms N]
 *                     [--repeat N] COMMAND ARGS...
 *     update PFA_ID VERSION CHANGES_JSON [IDEMPOTENCY_KEY]
 *     delete PFA_ID VERSION [IDEMPOTENCY_KEY]
 *     get PFA_ID
 *     pull [--since ISO] [--cursor C] [--limit N]
 *     health
 *     batch          (one call per stdin line, fields separated by tabs, one client)
 *
 * Output: {"outcome", "httpStatus", "retryAfter", "error", "body", "connects"}; exit 0 when
 * every call obtained a response (of any outcome), 1 on a local failure, 2 on bad usage. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pems_client.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: pems-client-probe --url BASE [--user U] [--secret S | --api-key K]\n"
            "         [--timeout-ms N] [--repeat N] COMMAND ARGS\n"
            "  update PFA_ID VERSION CHANGES_JSON [KEY] | delete PFA_ID VERSION [KEY]\n"
            "  get PFA_ID | pull [--since ISO] [--cursor C] [--limit N] | health\n"
            "  batch (stdin: one tab-separated call per line, on one client)\n");
    return 2;
}

static void print_response(const struct pems_client *pc, const struct pems_response *r)
{
    json_t *o = json_pack("{s:s, s:I, s:I, s:s, s:O?, s:I}", "outcome",
                          pems_outcome_name(r->outcome), "httpStatus",
                          (json_int_t)r->http_status, "retryAfter",
                          (json_int_t)r->retry_after_s, "error", r->error, "body", r->body,
                          "connects", (json_int_t)pems_client_connects(pc));
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(o);
}

/* One call: COMMAND ARGS. 0 when a response was obtained, 1 on a local failure, 2 on bad
 * usage (nothing printed). */
static int run_call(struct pems_client *pc, int nargs, char **args)
{
    if (nargs < 1)
        return usage();
    const char *cmd = args[0], *since = NULL, *cursor = NULL;
    int limit = 0, got;
    json_t *changes = NULL;
    struct pems_response r;
    args++;
    nargs--;
    if (strcmp(cmd, "update") == 0) {
        if (nargs < 3 || nargs > 4)
            return usage();
        if (!(changes = json_loads(args[2], 0, NULL))) {
            fprintf(stderr, "pems-client-probe: CHANGES_JSON is not JSON\n");
            return 2;
        }
        got = pems_client_update(pc, args[0], atoll(args[1]), changes,
                                 nargs > 3 ? args[3] : NULL, &r);
        json_decref(changes);
    } else if (strcmp(cmd, "delete") == 0) {
        if (nargs < 2 || nargs > 3)
            return usage();
        got = pems_client_delete(pc, args[0], atoll(args[1]), nargs > 2 ? args[2] : NULL, &r);
    } else if (strcmp(cmd, "get") == 0) {
        if (nargs != 1)
            return usage();
        got = pems_client_get(pc, args[0], &r);
    } else if (strcmp(cmd, "pull") == 0) {
        for (int k = 0; k < nargs; k += 2) {
            if (k + 1 >= nargs)
                return usage();
            if (strcmp(args[k], "--since") == 0)
                since = args[k + 1];
            else if (strcmp(args[k], "--cursor") == 0)
                cursor = args[k + 1];
            else if (strcmp(args[k], "--limit") == 0)
                limit = atoi(args[k + 1]);
            else
                return usage();
        }
        got = pems_client_pull(pc, since, cursor, limit, &r);
    } else if (strcmp(cmd, "health") == 0 && nargs == 0) {
        got = pems_client_health(pc, &r);
    } else {
        return usage();
    }
    print_response(pc, &r);
    pems_response_clear(&r);
    return got != 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct pems_server srv = {.auth = PEMS_AUTH_BASIC};
    const char *url = NULL, *user = "user", *secret = "secret";
    long repeat = 1;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (i + 1 >= argc)
            return usage();
        const char *a = argv[i], *v = argv[i + 1];
        i++;
        if (strcmp(a, "--url") == 0) {
            url = v;
        } else if (strcmp(a, "--user") == 0) {
            user = v;
        } else if (strcmp(a, "--secret") == 0) {
            secret = v;
        } else if (strcmp(a, "--api-key") == 0) {
            secret = v;
            srv.auth = PEMS_AUTH_API_KEY;
        } else if (strcmp(a, "--timeout-ms") == 0) {
            srv.timeout_ms = strtol(v, NULL, 10);
        } else if (strcmp(a, "--repeat") == 0) {
            repeat = strtol(v, NULL, 10);
        } else {
            return usage();
        }
    }
    if (!url || i >= argc || repeat < 1)
        return usage();
    int rc = 0;
    srv.base_url = strdup(url);
    srv.username = strdup(user);
    srv.secret = strdup(secret);
    struct pems_client *pc = srv.base_url && srv.username && srv.secret
                                 ? pems_client_new(&srv) : NULL;
    if (!pc) {
        fprintf(stderr, "pems-client-probe: cannot create client\n");
        rc = 1;
        goto cleanup;
    }
    if (strcmp(argv[i], "batch") == 0) {
        /* one call per stdin line, fields separated by tabs, all on this one client */
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (rc != 2 && (n = getline(&line, &cap, stdin)) > 0) {
            char *fields[8];
            int nf = 0;
            line[strcspn(line, "\r\n")] = '\0';
            if (!*line)
                continue;
            for (char *save = NULL, *f = strtok_r(line, "\t", &save); f && nf < 8;
                 f = strtok_r(NULL, "\t", &save))
                fields[nf++] = f;
            int r = run_call(pc, nf, fields);
            if (r)
                rc = r;
        }
        free(line);
    } else {
        for (long k = 0; k < repeat && rc != 2; k++) {
            int r = run_call(pc, argc - i, argv + i);
            if (r)
                rc = r;
        }
    }
cleanup:
    pems_client_free(pc);
    pems_server_clear(&srv);
    return rc;
}
