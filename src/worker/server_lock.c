#include "server_lock.h"
#include "log.h"
#include "pems_server.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_S 1000000000LL
/* cap of the window handed over: at most one second of starts */
#define WINDOW_MAX 20000
/* request arrival jitter allowed for (a new connection's request reaches PEMS a little
 * later than one on a kept-alive connection, and a loaded PEMS reads it later); costs
 * 1 % of the rate */
#define JITTER_MARGIN_NS 10000000LL
#define MARGIN_MAX_RPS 1000

/* "{1,2,3}" -> values; returns the count */
static int parse_bigint_array(const char *s, int64_t *out, int max)
{
    int n = 0;
    if (!s)
        return 0;
    while (*s && n < max) {
        while (*s == '{' || *s == ',' || *s == ' ')
            s++;
        if (*s == '}' || !*s)
            break;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s)
            break;
        out[n++] = v;
        s = end;
    }
    return n;
}

static int lock_server(db_t *db, const char *server_id, const char *stmt, const char *fn,
                       bool *ok)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT %s(hashtextextended('pems_server:' || $1, 0))", fn);
    const char *params[] = { server_id };
    PGresult *res = db_query(db, stmt, sql, 1, params);
    if (!res)
        return db_last_status(db);
    *ok = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return DB_OK;
}

enum step server_lock_acquire(db_t *db, const char *org_id,
                              const unsigned char key[CRYPTO_KEY_LEN],
                              struct server_lock *out, enum server_lock_why *why)
{
    memset(out, 0, sizeof *out);
    switch (pems_server_load(db, org_id, key, &out->srv)) {
    case PEMS_SERVER_LOADED:
        break;
    case PEMS_SERVER_NONE:
        *why = SERVER_LOCK_NONE;
        return STEP_DECLINED;
    case PEMS_SERVER_BAD_SECRET:
        *why = SERVER_LOCK_BAD_SECRET;
        return STEP_DECLINED;
    case PEMS_SERVER_UNAVAILABLE:
        return STEP_UNAVAILABLE;
    case PEMS_SERVER_FAILED:
        return STEP_ERROR;
    }
    int rc;
    bool got = false;
    rc = lock_server(db, out->srv.id, "lease_try_lock", "pg_try_advisory_lock", &got);
    if (rc != DB_OK || !got) {
        pems_server_clear(&out->srv);
        *why = SERVER_LOCK_BUSY;
        return rc != DB_OK ? rc : STEP_DECLINED;
    }
    out->session = db_session(db);
    out->held = true;

    const char *params[] = { out->srv.id };
    PGresult *res = db_query(db, "lease_take_window",
        "WITH old AS (SELECT rate_window, rate_window_clean, paused_until FROM api_servers"
        "             WHERE id = $1)"
        " UPDATE api_servers s SET rate_window_clean = false FROM old WHERE s.id = $1"
        " RETURNING old.rate_window::text, old.rate_window_clean,"
        "           (extract(epoch FROM old.paused_until) * 1e9)::bigint", 1, params);
    if (!res) {
        rc = db_last_status(db);
        server_lock_release(db, out);
        return rc;
    }
    int rps = out->srv.rate_limit_rps > 0 ? out->srv.rate_limit_rps : 10;
    out->rl = rate_limiter_new(rps);
    if (rps <= MARGIN_MAX_RPS)
        out->recent = malloc(sizeof *out->recent * (size_t)rps);
    out->client = pems_client_new(&out->srv);
    if (!out->rl || !out->client) {
        PQclear(res);
        server_lock_release(db, out);
        return STEP_ERROR;
    }
    if (PQntuples(res) == 1) {
        int cap = rps < WINDOW_MAX ? rps : WINDOW_MAX;
        int64_t *starts = malloc(sizeof *starts * (size_t)cap);
        if (starts) {
            int n = parse_bigint_array(PQgetvalue(res, 0, 0), starts, cap);
            rate_limiter_seed(out->rl, starts, n);
            free(starts);
        }
        int64_t now = util_wall_ns();
        if (PQgetvalue(res, 0, 1)[0] != 't') {
            /* the last holder died holding it: its last second is unknown */
            rate_limiter_pause_until(out->rl, now + NS_PER_S);
            log_info("server_window_unknown", "server=%s", out->srv.id);
        }
        if (!PQgetisnull(res, 0, 2)) {
            int64_t until = atoll(PQgetvalue(res, 0, 2));
            if (until > now)
                rate_limiter_pause_until(out->rl, until);
        }
    }
    PQclear(res);
    log_debug("server_acquired", "server=%s org=%s org_code=%s rps=%d", out->srv.id, org_id,
              out->srv.org_code, rps);
    return STEP_OK;
}

bool server_lock_valid(db_t *db, const struct server_lock *sl)
{
    return sl->held && sl->session != 0 && db_session(db) == sl->session;
}

void server_lock_release(db_t *db, struct server_lock *sl)
{
    if (sl->held && server_lock_valid(db, sl)) {
        char *window = NULL;
        if (sl->rl) {
            int rps = sl->srv.rate_limit_rps > 0 ? sl->srv.rate_limit_rps : 10;
            int cap = rps < WINDOW_MAX ? rps : WINDOW_MAX;
            int64_t *starts = malloc(sizeof *starts * (size_t)cap);
            window = malloc((size_t)cap * 21 + 3);
            if (starts && window) {
                int n = rate_limiter_recent(sl->rl, starts, cap);
                size_t len = 0;
                window[len++] = '{';
                for (int i = 0; i < n; i++)
                    len += (size_t)sprintf(window + len, i ? ",%lld" : "%lld", (long long)starts[i]);
                window[len++] = '}';
                window[len] = '\0';
            } else {
                free(window);
                window = NULL;
            }
            free(starts);
        }
        if (window) {
            const char *params[] = { sl->srv.id, window };
            if (db_exec(db, "lease_put_window",
                        "UPDATE api_servers SET rate_window = $2::bigint[], rate_window_clean = true,"
                        " rate_window_at = now() WHERE id = $1", 2, params) != DB_OK)
                log_warn("server_window_not_saved", "server=%s error=\"%s\"", sl->srv.id,
                         db_errmsg(db));
            free(window);
        }
        bool ok = false;
        lock_server(db, sl->srv.id, "lease_unlock", "pg_advisory_unlock", &ok);
    }
    if (sl->client)
        pems_client_free(sl->client);
    if (sl->rl)
        rate_limiter_free(sl->rl);
    free(sl->recent);
    pems_server_clear(&sl->srv);
    memset(sl, 0, sizeof *sl);
}

int64_t server_lock_sending(struct server_lock *sl, int64_t started_ns)
{
    int64_t now = util_wall_ns();
    return rate_limiter_restamp(sl->rl, started_ns, now) ? now : started_ns;
}

int64_t server_lock_try_slot(struct server_lock *sl, int64_t *started_ns)
{
    int64_t now = util_wall_ns();
    *started_ns = now;
    int rps = rate_limiter_rate(sl->rl);
    int64_t gap = sl->recent && rps > 0 && rps <= MARGIN_MAX_RPS ? NS_PER_S / rps : 0;
    if (gap) {
        /* PEMS counts arrivals, we count starts. Starts are spread 1/rps apart (one that
         * fires late may catch up by half a gap): a steady stream keeps a few connections
         * busy, where bursts open new ones, whose requests reach PEMS later than those on a
         * kept-alive connection. And the oldest start of a full window is kept a little
         * more than a second behind, so arrival jitter cannot put rps + 1 requests into
         * one of PEMS's seconds. */
        if (now < sl->pace_ns - gap / 2)
            return sl->pace_ns - gap / 2 - now;
        int n = rate_limiter_recent(sl->rl, sl->recent, rps);
        if (n == rps && now - sl->recent[0] < NS_PER_S + JITTER_MARGIN_NS)
            return sl->recent[0] + NS_PER_S + JITTER_MARGIN_NS - now;
    }
    int64_t wait = rate_limiter_acquire(sl->rl, now);
    if (wait == 0 && gap)
        sl->pace_ns = (sl->pace_ns > now - gap / 2 ? sl->pace_ns : now - gap / 2) + gap;
    return wait;
}

void server_lock_pause(db_t *db, struct server_lock *sl, long seconds)
{
    if (seconds < 1)
        seconds = 1;
    rate_limiter_pause_until(sl->rl, util_wall_ns() + (int64_t)seconds * NS_PER_S);
    char ssec[24];
    snprintf(ssec, sizeof ssec, "%ld", seconds);
    const char *params[] = { sl->srv.id, ssec };
    if (db_exec(db, "lease_pause",
                "UPDATE api_servers SET paused_until = now() + make_interval(secs => $2::int)"
                " WHERE id = $1", 2, params) != DB_OK)
        log_warn("server_pause_not_saved", "server=%s error=\"%s\"", sl->srv.id, db_errmsg(db));
}
