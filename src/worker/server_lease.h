#ifndef PEMS_SERVER_LEASE_H
#define PEMS_SERVER_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"
#include "db.h"
#include "pems_client.h"
#include "rate_limiter.h"

/* Exclusive use of one PEMS server by one worker among all workers on the database: a
 * session advisory lock on the server id, held on the worker's main connection while it
 * pulls from or writes to that server. The sliding rate window (request start times) is
 * handed from holder to holder through api_servers.rate_window, so the limit holds across
 * the hand-over; a holder that died without handing over costs the next one a second. */
struct server_lease {
    struct pems_server srv;
    struct pems_client *client;
    struct rate_limiter *rl;
    int64_t *recent;        /* scratch for the window's starts */
    unsigned long session;  /* the session that holds the lock (db_session) */
    bool held;
};

enum server_lease_status {
    SERVER_LEASE_OK = 0,
    SERVER_LEASE_BUSY = 1,       /* another worker holds it */
    SERVER_LEASE_NONE = 2,       /* no PEMS server configured for the organization */
    SERVER_LEASE_BAD_SECRET = 3  /* credentials cannot be decrypted */
};

/* enum server_lease_status, or a DB status < 0. */
int server_lease_acquire(db_t *db, const char *org_id, const unsigned char key[CRYPTO_KEY_LEN],
                         struct server_lease *out);
/* Writes the window back and unlocks; safe on a lease not held. */
void server_lease_release(db_t *db, struct server_lease *sl);

/* Still ours: the connection that took the lock is the one we are using. */
bool server_lease_valid(db_t *db, const struct server_lease *sl);

/* Starts one request now if the window allows: 0, or nanoseconds to wait. */
int64_t server_lease_try_slot(struct server_lease *sl);
/* Waits for a slot at most max_wait_ms; 0 when one was taken, -1 when it would take longer. */
int server_lease_wait_slot(struct server_lease *sl, long max_wait_ms);
/* PEMS answered 429: nothing starts on this server (in any worker) for seconds. */
void server_lease_pause(db_t *db, struct server_lease *sl, long seconds);

#endif
