#include "db.h"
#include "log.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DB_MAX_PREPARED 256

struct db {
    char *conninfo;
    PGconn *conn;
    char *prepared[DB_MAX_PREPARED];
    int nprepared;
    const char *session_sql;   /* static; run after every connect */
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

static void db_disconnect(db_t *db)
{
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

int db_connect(db_t *db)
{
    if (db->conn && PQstatus(db->conn) == CONNECTION_OK)
        return DB_OK;
    db_disconnect(db);
    db->conn = PQconnectdb(db->conninfo);
    if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
        db_set_error(db, DB_UNAVAILABLE, "08006", db->conn ? PQerrorMessage(db->conn) : "out of memory");
        log_warn("db_connect_failed", "error=\"%s\"", db->errmsg);
        db_disconnect(db);
        return DB_UNAVAILABLE;
    }
    PGresult *r = PQexec(db->conn, "SET TIME ZONE 'UTC'");
    PQclear(r);
    if (db->session_sql)
        PQclear(PQexec(db->conn, db->session_sql));
    db->last_status = DB_OK;
    return DB_OK;
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

static PGresult *db_query_once(db_t *db, const char *name, const char *sql, int nparams,
                               const char *const *params)
{
    if (db_connect(db) != DB_OK)
        return NULL;
    PGresult *res;
    if (name && db->nprepared < DB_MAX_PREPARED && !db_is_prepared(db, name)) {
        res = PQprepare(db->conn, name, sql, nparams, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            bool lost = db_connection_lost(db);
            db_set_error(db, lost ? DB_UNAVAILABLE : DB_ERROR,
                         PQresultErrorField(res, PG_DIAG_SQLSTATE), PQresultErrorMessage(res));
            PQclear(res);
            return NULL;
        }
        PQclear(res);
        char *copy = strdup(name);
        if (copy)
            db->prepared[db->nprepared++] = copy;
    }
    if (name && db_is_prepared(db, name))
        res = PQexecPrepared(db->conn, name, nparams, params, NULL, NULL, 0);
    else
        res = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
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
                 res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
    PQclear(res);
    if (lost)
        db_disconnect(db);
    return NULL;
}

PGresult *db_query(db_t *db, const char *stmt_name, const char *sql, int nparams,
                   const char *const *params)
{
    bool in_tx = db->conn && PQtransactionStatus(db->conn) != PQTRANS_IDLE;
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

int db_begin(db_t *db)
{
    return db_exec(db, NULL, "BEGIN", 0, NULL);
}

int db_commit(db_t *db)
{
    return db_exec(db, NULL, "COMMIT", 0, NULL);
}

void db_rollback(db_t *db)
{
    if (db->conn && PQstatus(db->conn) == CONNECTION_OK &&
        PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(db->conn, "ROLLBACK");
        PQclear(r);
    }
}

int db_last_status(const db_t *db)
{
    return db->last_status;
}

const char *db_sqlstate(const db_t *db)
{
    return db->sqlstate;
}

const char *db_errmsg(const db_t *db)
{
    return db->errmsg;
}

const char *db_value(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}
