#ifndef PEMS_SERVER_LOCK_H
#define PEMS_SERVER_LOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"
#include "db.h"
#include "pems_client.h"
#include "rate_limiter.h"
#include "step.h"

/* The server lock: exclusive use of one PEMS server by one worker among all workers on the
 * database, a session advisory lock on the server id held on the worker's main connection
 * while it pulls from or writes to that server (a queue item's lease is another thing: see
 * wq_claim). The holder may have many requests in flight to it. The sliding rate window (request start times) is
 * handed from holder to holder through api_servers.rate_window, so the limit holds across
 * the hand-over; a holder that died without handing over costs the next one a second. */
struct server_lock {
    struct pems_server srv;
    struct pems_client *client;
    struct rate_limiter *rl;
    int64_t *recent;        /* scratch for the window's starts */
    int64_t pace_ns;        /* where the next start falls when starts are spread 1/rps apart */
    unsigned long session;  /* the session that holds the lock (db_session) */
    bool held;
};

/* Why a server lock was declined. */
enum server_lock_why {
    SERVER_LOCK_BUSY = 1,       /* another worker holds it */
    SERVER_LOCK_NONE = 2,       /* no PEMS server configured for the organization */
    SERVER_LOCK_BAD_SECRET = 3  /* credentials cannot be decrypted */
};

/* STEP_OK (held), STEP_DECLINED (*why says why), or a DB status < 0. */
enum step server_lock_acquire(db_t *db, const char *org_id,
                              const unsigned char key[CRYPTO_KEY_LEN],
                              struct server_lock *out, enum server_lock_why *why);
/* Writes the window back and unlocks; safe on a lease not held. */
void server_lock_release(db_t *db, struct server_lock *sl);

/* Still ours: the connection that took the lock is the one we are using. */
bool server_lock_valid(db_t *db, const struct server_lock *sl);

/* Starts one request now if the window allows: 0 (*started_ns: the wall-clock time the
 * window recorded), or nanoseconds to wait. */
int64_t server_lock_try_slot(struct server_lock *sl, int64_t *started_ns);
/* The request the window recorded at started_ns is being sent only now (the loop was busy
 * in between, or its connection was being opened): PEMS counts it from when it arrives, so
 * the window does too. Returns the new stamp. */
int64_t server_lock_sending(struct server_lock *sl, int64_t started_ns);
/* PEMS answered 429: nothing starts on this server (in any worker) for seconds. */
void server_lock_pause(db_t *db, struct server_lock *sl, long seconds);


#endif
