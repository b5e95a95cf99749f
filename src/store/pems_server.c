#include "pems_server.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *hex_encode(const unsigned char *buf, size_t len)
{
    char *out = malloc(2 * len + 1);
    if (out)
        util_hex_encode(buf, len, out);
    return out;
}

/* PostgreSQL's bytea hex output: \x followed by the digits */
static unsigned char *hex_decode(const char *s, size_t *len)
{
    if (s[0] == '\\' && s[1] == 'x')
        s += 2;
    size_t n = strlen(s);
    if (n % 2)
        return NULL;
    unsigned char *out = malloc(n / 2 + 1);
    if (!out)
        return NULL;
    if (!util_hex_decode(s, out, n / 2)) {
        free(out);
        return NULL;
    }
    *len = n / 2;
    return out;
}

int pems_server_save(db_t *db, const char *org_id, const char *base_url, enum pems_auth auth,
                     const char *username, const char *secret, int rate_limit_rps,
                     int max_in_flight, bool write_enabled,
                     const unsigned char key[CRYPTO_KEY_LEN],
                     char id_out[37])
{
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    char *hex = NULL;
    char rps[16], cap[16];
    int rc = DB_ERROR;

    if (crypto_seal(key, (const unsigned char *)(secret ? secret : ""),
                    secret ? strlen(secret) : 0, &sealed, &sealed_len) < 0 ||
        !(hex = hex_encode(sealed, sealed_len)))
        goto cleanup;
    snprintf(rps, sizeof rps, "%d", rate_limit_rps > 0 ? rate_limit_rps : 10);
    snprintf(cap, sizeof cap, "%d", max_in_flight);
    const char *params[] = { org_id, base_url, auth == PEMS_AUTH_API_KEY ? "api_key" : "basic",
                             username, hex, rps, write_enabled ? "true" : "false",
                             max_in_flight > 0 ? cap : NULL };
    /* a new base URL is another server: its pull cursor and pause do not carry over */
    PGresult *res = db_query(
        db, "pems_server_save",
        "INSERT INTO api_servers (organization_id, base_url, auth_type, username,"
        " credentials_enc, rate_limit_rps, write_enabled, max_in_flight)"
        " VALUES ($1, $2, $3, $4, decode($5, 'hex'), $6, $7, $8::int)"
        " ON CONFLICT (organization_id) DO UPDATE SET base_url = EXCLUDED.base_url,"
        " auth_type = EXCLUDED.auth_type, username = EXCLUDED.username,"
        " credentials_enc = EXCLUDED.credentials_enc, rate_limit_rps = EXCLUDED.rate_limit_rps,"
        " write_enabled = EXCLUDED.write_enabled, max_in_flight = EXCLUDED.max_in_flight,"
        " pull_since = CASE WHEN api_servers.base_url = EXCLUDED.base_url"
        "   THEN api_servers.pull_since END,"
        " last_pull_at = CASE WHEN api_servers.base_url = EXCLUDED.base_url"
        "   THEN api_servers.last_pull_at END,"
        " paused_until = CASE WHEN api_servers.base_url = EXCLUDED.base_url"
        "   THEN api_servers.paused_until END,"
        " updated_at = now()"
        " RETURNING id",
        8, params);
    if (!res) {
        rc = db_last_status(db);
        goto cleanup;
    }
    snprintf(id_out, 37, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    rc = DB_OK;
cleanup:
    free(sealed);
    free(hex);
    return rc;
}

enum pems_server_load_result pems_server_load(db_t *db, const char *org_id,
                                              const unsigned char key[CRYPTO_KEY_LEN],
                                              struct pems_server *out)
{
    const char *params[] = { org_id };
    unsigned char *sealed = NULL, *plain = NULL;
    size_t sealed_len = 0, plain_len = 0;
    enum pems_server_load_result rc = PEMS_SERVER_FAILED;

    memset(out, 0, sizeof *out);
    PGresult *res = db_query(db, "pems_server_load",
                             "SELECT id, organization_id, base_url, auth_type, username,"
                             " credentials_enc, timeout_ms, rate_limit_rps, write_enabled,"
                             " (SELECT code FROM organizations o WHERE o.id = organization_id),"
                             " api_server_in_flight_cap(max_in_flight, rate_limit_rps)"
                             " FROM api_servers WHERE organization_id = $1",
                             1, params);
    if (!res)
        return db_last_status(db) == DB_UNAVAILABLE ? PEMS_SERVER_UNAVAILABLE : PEMS_SERVER_FAILED;
    if (PQntuples(res) == 0) {
        rc = PEMS_SERVER_NONE;
        goto cleanup;
    }
    if (!(sealed = hex_decode(PQgetvalue(res, 0, 5), &sealed_len)))
        goto cleanup;
    if (crypto_open(key, sealed, sealed_len, &plain, &plain_len) < 0) {
        rc = PEMS_SERVER_BAD_SECRET;
        goto cleanup;
    }
    snprintf(out->id, sizeof out->id, "%s", PQgetvalue(res, 0, 0));
    snprintf(out->org_id, sizeof out->org_id, "%s", PQgetvalue(res, 0, 1));
    out->base_url = strdup(PQgetvalue(res, 0, 2));
    out->org_code = strdup(db_value(res, 0, 9) ? db_value(res, 0, 9) : "");
    out->auth = strcmp(PQgetvalue(res, 0, 3), "api_key") == 0 ? PEMS_AUTH_API_KEY
                                                              : PEMS_AUTH_BASIC;
    out->username = db_value(res, 0, 4) ? strdup(db_value(res, 0, 4)) : NULL;
    out->secret = malloc(plain_len + 1);
    if (out->secret) {
        memcpy(out->secret, plain, plain_len);
        out->secret[plain_len] = '\0';
    }
    out->timeout_ms = atol(PQgetvalue(res, 0, 6));
    out->rate_limit_rps = atoi(PQgetvalue(res, 0, 7));
    out->write_enabled = PQgetvalue(res, 0, 8)[0] == 't';
    out->max_in_flight = atoi(PQgetvalue(res, 0, 10));
    if (!out->base_url || !out->secret || !out->org_code ||
        (db_value(res, 0, 4) && !out->username)) {
        free(out->base_url);
        free(out->org_code);
        free(out->username);
        free(out->secret);
        memset(out, 0, sizeof *out);
        goto cleanup;
    }
    rc = PEMS_SERVER_LOADED;
cleanup:
    if (plain) {
        explicit_bzero(plain, plain_len);
        free(plain);
    }
    free(sealed);
    PQclear(res);
    return rc;
}

void pems_server_clear(struct pems_server *srv)
{
    if (!srv)
        return;
    free(srv->base_url);
    free(srv->org_code);
    free(srv->username);
    if (srv->secret) {
        /* the secret is decrypted credentials: wipe before freeing */
        volatile char *p = srv->secret;
        while (*p)
            *p++ = '\0';
        free(srv->secret);
    }
    memset(srv, 0, sizeof(*srv));
}
