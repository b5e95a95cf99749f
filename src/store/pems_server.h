#ifndef PEMS_PEMS_SERVER_H
#define PEMS_PEMS_SERVER_H

#include "crypto.h"
#include "db.h"
#include "pems_client.h"

/* api_servers rows: credentials sealed with crypto_seal (stored as bytea). */

/* Loads the organization's server and decrypts its secret. 0 ok, 1 none configured,
 * DB_UNAVAILABLE / DB_ERROR, or -3 when the secret cannot be decrypted (wrong key). */
int pems_server_load(db_t *db, const char *org_id, const unsigned char key[CRYPTO_KEY_LEN],
                     struct pems_server *out);

/* Inserts or replaces the organization's server; writes its id into id_out[37].
 * max_in_flight 0: the default derived from the rate (sql/functions/servers.sql). */
int pems_server_save(db_t *db, const char *org_id, const char *base_url, enum pems_auth auth,
                     const char *username, const char *secret, int rate_limit_rps,
                     int max_in_flight, bool write_enabled,
                     const unsigned char key[CRYPTO_KEY_LEN], char id_out[37]);

#endif
