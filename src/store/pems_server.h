#ifndef PEMS_PEMS_SERVER_H
#define PEMS_PEMS_SERVER_H

#include "crypto.h"
#include "db.h"
#include "pems_client.h"

/* api_servers rows: credentials sealed with crypto_seal (stored as bytea). */

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
