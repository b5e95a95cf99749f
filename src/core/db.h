#ifndef PEMS_DB_H
#define PEMS_DB_H

#include <libpq-fe.h>
#include <stdbool.h>

/* A libpq connection that reconnects by itself. All SQL goes through db_query with
 * parameters; a statement given a name is prepared once per connection. */
typedef struct db db_t;

enum db_status {
    DB_OK = 0,
    DB_UNAVAILABLE = -1,   /* cannot reach the server: answer 503 / retry later */
    DB_ERROR = -2          /* the server refused the statement: see db_sqlstate */
};

db_t *db_new(const char *conninfo);
void db_free(db_t *db);

/* A statement (a string that outlives db) run on every new connection, e.g. a SET. */
void db_set_session(db_t *db, const char *sql);

/* PQconnectdb with the network timeouts every connection of the service has unless
 * conninfo sets its own (README.md, "Several hosts"): a database that cannot be reached
 * fails a connect in connect_timeout seconds and a statement whose packets go unanswered in
 * tcp_user_timeout ms, instead of the kernel's minutes, so a host cut off answers 503 and
 * its worker stops. */
PGconn *db_pq_connect(const char *conninfo);

/* Connects if not connected (or the connection broke). DB_OK or DB_UNAVAILABLE. */
int db_connect(db_t *db);
PGconn *db_pg(db_t *db);

/* Which session the connection is: it changes on every reconnect, so state tied to a session
 * (an advisory lock) can tell it is gone, where a backend pid can be reused. 0: none. */
unsigned long db_session(const db_t *db);

/* Returns a result with status COMMAND_OK or TUPLES_OK (caller PQclear()s it), or NULL
 * with db_last_status() set. Outside a transaction a statement that fails because the
 * connection dropped is retried once on a fresh connection. */
PGresult *db_query(db_t *db, const char *stmt_name, const char *sql, int nparams,
                   const char *const *params);
/* Same, result discarded. Returns DB_OK or the failure status. */
int db_exec(db_t *db, const char *stmt_name, const char *sql, int nparams,
            const char *const *params);

/* One statement in flight: db_send starts it without waiting (DB_OK or the failure
 * status); db_collect returns its result as db_query would (NULL with db_last_status() on
 * failure). Any other call on db first waits for the statement in flight and keeps its
 * result for db_collect, so the order of statements on the connection is the order of calls. */
int db_send(db_t *db, const char *stmt_name, const char *sql, int nparams,
            const char *const *params);
bool db_sent(const db_t *db);          /* a db_send result is still to be collected */
bool db_send_done(db_t *db);           /* ... and it has arrived (db_collect will not wait) */
PGresult *db_collect(db_t *db);

int db_begin(db_t *db);
int db_commit(db_t *db);
void db_rollback(db_t *db);   /* safe to call when no transaction is open */

/* A transaction held around code that runs its own (an Idempotency-Key request's, so its
 * answer is kept in the same transaction as its work): while held, db_begin opens a
 * savepoint, db_commit releases it and db_rollback goes back to it, so the held transaction
 * and its locks stay; nothing runs on a new connection when its connection is lost.
 * db_hold_end commits or rolls back the whole. */
int db_hold_begin(db_t *db);
int db_hold_end(db_t *db, bool commit);
bool db_is_held(const db_t *db);

int db_last_status(const db_t *db);
const char *db_sqlstate(const db_t *db);  /* "" when none */

/* The last failure was a deadlock (40P01) or a serialization failure (40001): the same
 * transaction run again can pass. */
bool db_failed_transiently(const db_t *db);
/* The last statement was refused for the data it carried (SQLSTATE classes 22, 23, 54, P0)
 * and the connection is fine: the same statement with other data passes. The worker fails
 * only the organization that data came from, not its run. */
bool db_refused_data(const db_t *db);
/* The bound on running a transaction again after such a failure. */
#define DB_RETRY_ATTEMPTS 4
/* Asked before running a failed transaction again (retries: how many re-runs so far): true,
 * after a short random pause, while the failure was transient and the bound not reached. */
bool db_retry_due(const db_t *db, int retries);
const char *db_errmsg(const db_t *db);

/* convenience: NULL for SQL NULL */
const char *db_value(const PGresult *res, int row, int col);

#endif
