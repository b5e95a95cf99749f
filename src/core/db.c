#include "db.h"
#include "log.h"

#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DB_MAX_PREPARED 256

struct db {
    char *conninfo;
    PGconn *conn;
    char *prepared[DB_MAX_PREPARED];
    int nprepared;
    const char *session_sql;   /* static; run after every connect */
    bool in_flight;            /* db_send'ed, result not read from the connection yet */
    bool parked_valid;         /* the db_send result was read and waits for db_collect */
    PGresult *parked;          /* NULL when the connection failed under it */
    unsigned long session;     /* counts successful connects: which session is this */
    bool held;                 /* db_hold_begin: begin/commit/rollback work on savepoints */
    int held_depth;            /* savepoints db_begin opened inside the held transaction */
    unsigned long held_session;   /* the session the held transaction lives in */
    int last_status;
    char sqlstate[6];
    char errmsg[512];
};

db_t *db_new(const char *conninfo)
{
    db_t *db = calloc(1, sizeof *db);
    if (!db)
        return NULL;
    db->conninfo = strdup(conninfo);
    if (!db->conninfo) {
        free(db);
        return NULL;
    }
    return db;
}

static void db_forget_prepared(db_t *db)
{
    for (int i = 0; i < db->nprepared; i++)
        free(db->prepared[i]);
    db->nprepared = 0;
}

/* Reads the result of the statement in flight and parks it for db_collect. */
static void db_settle(db_t *db)
{
    if (!db->in_flight)
        return;
    PGresult *first = NULL, *r;
    while (db->conn && (r = PQgetResult(db->conn)) != NULL) {
        if (!first)
            first = r;
        else
            PQclear(r);
    }
    db->in_flight = false;
    db->parked = first;
    db->parked_valid = true;
}

static void db_disconnect(db_t *db)
{
    db_settle(db);
    if (db->conn)
        PQfinish(db->conn);
    db->conn = NULL;
    db_forget_prepared(db);
}

void db_free(db_t *db)
{
    if (!db)
        return;
    db_disconnect(db);
    PQclear(db->parked);
    free(db->conninfo);
    free(db);
}

static void db_set_error(db_t *db, int status, const char *state, const char *msg)
{
    db->last_status = status;
    snprintf(db->sqlstate, sizeof db->sqlstate, "%s", state ? state : "");
    snprintf(db->errmsg, sizeof db->errmsg, "%s", msg ? msg : "");
    size_t n = strlen(db->errmsg);
    while (n && (db->errmsg[n - 1] == '\n' || db->errmsg[n - 1] == ' '))
        db->errmsg[--n] = '\0';
}

/* An idle connection has nothing to read unless the server closed it (a restart sends a
 * FATAL message, then EOF), which libpq only notices on its next use: that use would fail
 * although the server is back. Never inside a transaction: that must fail, not go on in a
 * new session. */
static bool db_closed_by_server(db_t *db)
{
    if (db->in_flight || PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        return false;
    for (int i = 0; i < 4; i++) {
        struct pollfd p = { .fd = PQsocket(db->conn), .events = POLLIN };
        if (poll(&p, 1, 0) <= 0)
            return false;
        if (!PQconsumeInput(db->conn) || PQstatus(db->conn) != CONNECTION_OK)
            return true;
    }
    return false;
}

/* libpq's notices (a NOTICE from a migration, the FATAL of a server shutting down, which
 * arrives outside any query) go through the logger, never raw onto stderr. */
static void db_notice(void *arg, const PGresult *res)
{
    (void)arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (!sev)
        sev = "NOTICE";
    /* a NOTICE ("already exists, skipping") is routine; a WARNING or worse is not */
    enum pems_log_level lvl = PEMS_LOG_DEBUG;
    if (!strcmp(sev, "WARNING") || !strcmp(sev, "ERROR") || !strcmp(sev, "FATAL") ||
        !strcmp(sev, "PANIC"))
        lvl = PEMS_LOG_WARN;
    if (!msg) {   /* a notice libpq made itself: only the whole text */
        msg = PQresultErrorMessage(res);
        size_t n = strlen(msg);
        while (n && msg[n - 1] == '\n')
            n--;
        log_event(lvl, "db_notice", "severity=%s message=\"%.*s\"", sev, (int)n, msg);
        return;
    }
    log_event(lvl, "db_notice", "severity=%s sqlstate=%s message=\"%s\"", sev,
              code ? code : "", msg);
}

PGconn *db_pq_connect(const char *conninfo)
{
    /* earlier entries are overridden by what the expanded conninfo (dbname) sets */
    static const char *const keys[] = { "connect_timeout", "keepalives", "keepalives_idle",
                                        "keepalives_interval", "keepalives_count",
                                        "tcp_user_timeout", "dbname", NULL };
    const char *values[] = { "5", "1", "10", "2", "3", "5000", conninfo, NULL };
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (conn)
        PQsetNoticeReceiver(conn, db_notice, NULL);
    return conn;
}

int db_connect(db_t *db)
{
    if (db->conn && PQstatus(db->conn) == CONNECTION_OK && !db_closed_by_server(db))
        return DB_OK;
    db_disconnect(db);
    db->conn = db_pq_connect(db->conninfo);
    if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
        db_set_error(db, DB_UNAVAILABLE, "08006", db->conn ? PQerrorMessage(db->conn) : "out of memory");
        log_warn("db_connect_failed", "error=\"%s\"", db->errmsg);
        db_disconnect(db);
        return DB_UNAVAILABLE;
    }
    /* Every table this service reads is small enough to stay in memory, where a random read
     * costs about what a sequential one does. With the default price (4) the planner joins
     * a batch of 100 results to the queue by hashing the whole queue rather than looking
     * up 100 keys (measured: one full scan of pfa_write_queue and one of pfa_modification
     * per worker flush). */
    PGresult *r = PQexec(db->conn, "SET TIME ZONE 'UTC'; SET random_page_cost = 1.1");
    PQclear(r);
    if (db->session_sql)
        PQclear(PQexec(db->conn, db->session_sql));
    db->session++;
    db->last_status = DB_OK;
    return DB_OK;
}

unsigned long db_session(const db_t *db)
{
    return db->conn && PQstatus(db->conn) == CONNECTION_OK ? db->session : 0;
}

void db_set_session(db_t *db, const char *sql)
{
    db->session_sql = sql;
}

PGconn *db_pg(db_t *db)
{
    return db->conn;
}

static bool db_is_prepared(const db_t *db, const char *name)
{
    for (int i = 0; i < db->nprepared; i++)
        if (strcmp(db->prepared[i], name) == 0)
            return true;
    return false;
}

static bool db_connection_lost(const db_t *db)
{
    return !db->conn || PQstatus(db->conn) != CONNECTION_OK;
}

/* res when it succeeded; else NULL with the error recorded (and res cleared). */
static PGresult *db_check_result(db_t *db, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        db->last_status = DB_OK;
        db->sqlstate[0] = '\0';
        return res;
    }
    bool lost = db_connection_lost(db);
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    /* admin shutdown and the like arrive as errors before the socket reads as closed */
    if (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0))
        lost = true;
    db_set_error(db, lost ? DB_UNAVAILABLE : DB_ERROR, state,
                 res ? PQresultErrorMessage(res)
                     : db->conn ? PQerrorMessage(db->conn) : "connection lost");
    PQclear(res);
    if (lost)
        db_disconnect(db);
    return NULL;
}

/* Prepares a named statement on first use. false when that failed (error recorded). */
static bool db_prepare_once(db_t *db, const char *name, const char *sql, int nparams)
{
    if (!name || db->nprepared >= DB_MAX_PREPARED || db_is_prepared(db, name))
        return true;
    PGresult *res = PQprepare(db->conn, name, sql, nparams, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        bool lost = db_connection_lost(db);
        db_set_error(db, lost ? DB_UNAVAILABLE : DB_ERROR,
                     PQresultErrorField(res, PG_DIAG_SQLSTATE), PQresultErrorMessage(res));
        PQclear(res);
        return false;
    }
    PQclear(res);
    char *copy = strdup(name);
    if (copy)
        db->prepared[db->nprepared++] = copy;
    return true;
}

static PGresult *db_query_once(db_t *db, const char *name, const char *sql, int nparams,
                               const char *const *params)
{
    if (db_connect(db) != DB_OK)
        return NULL;
    PGresult *res;
    if (!db_prepare_once(db, name, sql, nparams))
        return NULL;
    if (name && db_is_prepared(db, name))
        res = PQexecPrepared(db->conn, name, nparams, params, NULL, NULL, 0);
    else
        res = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    return db_check_result(db, res);
}

/* A held transaction is gone with the connection it lived in: nothing may run on a new one
 * as if it were still inside it. */
static bool db_held_lost(db_t *db)
{
    if (!db->held || (db->conn && db->session == db->held_session))
        return false;
    db_set_error(db, DB_UNAVAILABLE, "08006", "the connection of the held transaction was lost");
    return true;
}

PGresult *db_query(db_t *db, const char *stmt_name, const char *sql, int nparams,
                   const char *const *params)
{
    db_settle(db);
    if (db_held_lost(db))
        return NULL;
    bool in_tx = db->held || (db->conn && PQtransactionStatus(db->conn) != PQTRANS_IDLE);
    PGresult *res = db_query_once(db, stmt_name, sql, nparams, params);
    if (!res && db->last_status == DB_UNAVAILABLE && !in_tx)
        res = db_query_once(db, stmt_name, sql, nparams, params);
    if (!res && db->last_status == DB_ERROR)
        log_debug("db_error", "sqlstate=%s error=\"%s\"", db->sqlstate, db->errmsg);
    return res;
}

int db_exec(db_t *db, const char *stmt_name, const char *sql, int nparams,
            const char *const *params)
{
    PGresult *res = db_query(db, stmt_name, sql, nparams, params);
    if (!res)
        return db->last_status;
    PQclear(res);
    return DB_OK;
}

int db_send(db_t *db, const char *stmt_name, const char *sql, int nparams,
            const char *const *params)
{
    if (db->in_flight || db->parked_valid) {
        db_set_error(db, DB_ERROR, "", "a sent statement was not collected");
        return DB_ERROR;
    }
    if (db_held_lost(db))
        return DB_UNAVAILABLE;
    if (db_connect(db) != DB_OK)
        return DB_UNAVAILABLE;
    if (!db_prepare_once(db, stmt_name, sql, nparams))
        return db->last_status;
    int ok = stmt_name && db_is_prepared(db, stmt_name)
        ? PQsendQueryPrepared(db->conn, stmt_name, nparams, params, NULL, NULL, 0)
        : PQsendQueryParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (!ok) {
        db_set_error(db, DB_UNAVAILABLE, "08006", PQerrorMessage(db->conn));
        db_disconnect(db);
        return DB_UNAVAILABLE;
    }
    db->in_flight = true;
    return DB_OK;
}

bool db_sent(const db_t *db)
{
    return db->in_flight || db->parked_valid;
}

bool db_send_done(db_t *db)
{
    if (!db->in_flight)
        return db->parked_valid;
    if (!PQconsumeInput(db->conn))
        return true;   /* the connection failed: db_collect reports it at once */
    return !PQisBusy(db->conn);
}

PGresult *db_collect(db_t *db)
{
    db_settle(db);
    if (!db->parked_valid) {
        db_set_error(db, DB_ERROR, "", "no statement was sent");
        return NULL;
    }
    PGresult *res = db->parked;
    db->parked = NULL;
    db->parked_valid = false;
    if (!res) {
        db_set_error(db, DB_UNAVAILABLE, "08006", "connection lost before the result arrived");
        return NULL;
    }
    return db_check_result(db, res);
}

int db_begin(db_t *db)
{
    if (db->held) {
        int rc = db_exec(db, NULL, "SAVEPOINT pems_inner", 0, NULL);
        if (rc == DB_OK)
            db->held_depth++;
        return rc;
    }
    return db_exec(db, NULL, "BEGIN", 0, NULL);
}

int db_commit(db_t *db)
{
    if (db->held) {
        if (db->held_depth == 0)
            return DB_OK;
        int rc = db_exec(db, NULL, "RELEASE SAVEPOINT pems_inner", 0, NULL);
        if (rc == DB_OK)
            db->held_depth--;
        return rc;
    }
    return db_exec(db, NULL, "COMMIT", 0, NULL);
}

void db_rollback(db_t *db)
{
    db_settle(db);
    if (!db->conn || PQstatus(db->conn) != CONNECTION_OK ||
        PQtransactionStatus(db->conn) == PQTRANS_IDLE)
        return;
    if (db->held) {
        /* back to where the inner transaction began; the held one and its locks stay */
        if (db->held_depth > 0 && db->session == db->held_session) {
            PGresult *r = PQexec(db->conn, "ROLLBACK TO SAVEPOINT pems_inner;"
                                           " RELEASE SAVEPOINT pems_inner");
            PQclear(r);
            db->held_depth--;
        }
        return;
    }
    PGresult *r = PQexec(db->conn, "ROLLBACK");
    PQclear(r);
}

int db_hold_begin(db_t *db)
{
    db_rollback(db);
    db->held = false;
    int rc = db_exec(db, NULL, "BEGIN", 0, NULL);
    if (rc != DB_OK)
        return rc;
    db->held = true;
    db->held_depth = 0;
    db->held_session = db->session;
    return DB_OK;
}

int db_hold_end(db_t *db, bool commit)
{
    if (!db->held)
        return DB_OK;
    bool lost = db_held_lost(db);
    db->held = false;
    db->held_depth = 0;
    if (lost)
        return DB_UNAVAILABLE;
    if (commit)
        return db_exec(db, NULL, "COMMIT", 0, NULL);
    db_rollback(db);
    return DB_OK;
}

bool db_is_held(const db_t *db)
{
    return db->held;
}

int db_last_status(const db_t *db)
{
    return db->last_status;
}

const char *db_sqlstate(const db_t *db)
{
    return db->sqlstate;
}

bool db_failed_transiently(const db_t *db)
{
    return db->last_status == DB_ERROR &&
           (strcmp(db->sqlstate, "40P01") == 0 || strcmp(db->sqlstate, "40001") == 0);
}

bool db_refused_data(const db_t *db)
{
    /* 22 data exception (an invalid byte sequence, a value out of range), 23 integrity
     * constraint violation, 54 program limit exceeded (a value too large), P0 raised by a
     * function on what it was given */
    static const char *const classes[] = { "22", "23", "54", "P0" };
    if (db->last_status != DB_ERROR || !db->conn || PQstatus(db->conn) != CONNECTION_OK)
        return false;
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        if (strncmp(db->sqlstate, classes[i], 2) == 0)
            return true;
    return false;
}

bool db_retry_due(const db_t *db, int retries)
{
    if (!db_failed_transiently(db) || retries >= DB_RETRY_ATTEMPTS)
        return false;
    /* apart, so the two transactions do not meet again at once: 2..(10 * (retries + 1)) ms */
    long ms = 2 + random() % (10L * (retries + 1));
    struct timespec ts = { 0, ms * 1000000L };
    nanosleep(&ts, NULL);
    log_info("db_retry", "sqlstate=%s retry=%d", db->sqlstate, retries + 1);
    return true;
}

const char *db_errmsg(const db_t *db)
{
    return db->errmsg;
}

const char *db_value(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}
