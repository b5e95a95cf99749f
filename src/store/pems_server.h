#ifndef PEMS_PEMS_SERVER_H
#define PEMS_PEMS_SERVER_H

#include <stdbool.h>

#include "crypto.h"
#include "db.h"

/* api_servers rows: credentials sealed with crypto_seal (stored as bytea). */

enum pems_auth { PEMS_AUTH_BASIC, PEMS_AUTH_API_KEY };

/* One api_servers row with its credentials decrypted. */
struct pems_server {
    char id[37];
    char org_id[37];
    char *org_code;      /* the organization's code, for log lines */
    char *base_url;
    enum pems_auth auth;
    char *username;      /* basic auth */
    char *secret;        /* password or api key */
    long timeout_ms;
    int rate_limit_rps;
    int max_in_flight;   /* requests in flight at once, at most (api_server_in_flight_cap) */
    bool write_enabled;
};
/* Frees what srv holds, the secret wiped first. */
void pems_server_clear(struct pems_server *srv);

/* What loading an organization's server found. */
enum pems_server_load_result {
    PEMS_SERVER_LOADED,         /* *out filled, its secret decrypted */
    PEMS_SERVER_NONE,           /* no server configured for the organization */
    PEMS_SERVER_BAD_SECRET,     /* the credentials cannot be decrypted with the key */
    PEMS_SERVER_UNAVAILABLE,    /* the database cannot be reached */
    PEMS_SERVER_FAILED          /* the database refused the statement, or out of memory */
};

/* Loads the organization's server and decrypts its secret (*out zeroed unless LOADED). */
enum pems_server_load_result pems_server_load(db_t *db, const char *org_id,
                                              const unsigned char key[CRYPTO_KEY_LEN],
                                              struct pems_server *out);

/* Inserts or replaces the organization's server; writes its id into id_out[37].
 * max_in_flight 0: the default derived from the rate (sql/functions/servers.sql). */
int pems_server_save(db_t *db, const char *org_id, const char *base_url, enum pems_auth auth,
                     const char *username, const char *secret, int rate_limit_rps,
                     int max_in_flight, bool write_enabled,
                     const unsigned char key[CRYPTO_KEY_LEN], char id_out[37]);

#endif
