#include "migrate.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Any fixed key: every migrator of this schema takes the same lock. */
#define MIGRATE_LOCK_KEY "7380293847201"

#define MIGRATE_LOCK_SQL "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")"

/* sql/README.md: the schema file (then, after the first release, numbered upgrade files) is
 * applied once and may never change; each file of REPEATABLE_DIR is applied again whenever
 * its checksum changes. */
#define SCHEMA_FILE "schema.sql"
#define REPEATABLE_DIR "functions"

struct migration {
    char *version;     /* the path below the sql directory: schema.sql, functions/audit.sql */
    char *body;
    char checksum[65]; /* sha256, hex */
    bool repeatable;
};

static bool is_sql_file(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 4 && strcmp(name + n - 4, ".sql") == 0;
}

/* the schema file first, then by name */
static int cmp_names(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    bool xs = strcmp(x, SCHEMA_FILE) == 0, ys = strcmp(y, SCHEMA_FILE) == 0;
    if (xs != ys)
        return xs ? -1 : 1;
    return strcmp(x, y);
}

static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 16384;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                snprintf(err, errlen, "out of memory reading %s", path);
                free(buf);
                buf = NULL;
                goto cleanup;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        free(buf);
        buf = NULL;
        goto cleanup;
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        snprintf(err, errlen, "%s contains a NUL byte", path);
        free(buf);
        buf = NULL;
    }
cleanup:
    fclose(f);
    return buf;
}

static int sha256_hex(const char *data, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, strlen(data), md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return -1;
    util_hex_encode(md, mdlen, out);
    return 0;
}

static void migrations_free(struct migration *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].version);
        free(m[i].body);
    }
    free(m);
}

struct migration_list {
    struct migration *m;
    size_t n, cap;
};

/* Appends every *.sql file of dir/sub (sub NULL: dir itself), sorted. A missing
 * REPEATABLE_DIR is no repeatable file. */
static int load_dir(struct migration_list *l, const char *dir, const char *sub, char *err,
                    size_t errlen)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s%s%s", dir, sub ? "/" : "", sub ? sub : "") >=
        sizeof path) {
        snprintf(err, errlen, "path too long: %s/%s", dir, sub);
        return -1;
    }
    DIR *d = opendir(path);
    if (!d) {
        if (sub && errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot open migrations directory %s: %s", path, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_sql_file(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn)
                goto oom;
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name)))
            goto oom;
        n++;
    }
    qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        if (l->n == l->cap) {
            size_t nc = l->cap ? l->cap * 2 : 32;
            struct migration *nm = realloc(l->m, nc * sizeof *nm);
            if (!nm)
                goto oom;
            l->m = nm;
            l->cap = nc;
        }
        struct migration *m = &l->m[l->n];
        char file[4096];
        memset(m, 0, sizeof *m);
        m->repeatable = sub != NULL;
        if (asprintf(&m->version, "%s%s%s", sub ? sub : "", sub ? "/" : "", names[i]) < 0) {
            m->version = NULL;
            goto oom;
        }
        l->n++;
        if ((size_t)snprintf(file, sizeof file, "%s/%s", path, names[i]) >= sizeof file) {
            snprintf(err, errlen, "path too long: %s/%s", path, names[i]);
            goto cleanup;
        }
        if (!(m->body = read_file(file, err, errlen)))
            goto cleanup;
        if (sha256_hex(m->body, m->checksum) < 0) {
            snprintf(err, errlen, "cannot checksum %s", file);
            goto cleanup;
        }
    }
    rc = 0;
    goto cleanup;
oom:
    snprintf(err, errlen, "out of memory listing %s", path);
cleanup:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

/* The files applied once (dir's own), then the repeatable ones. */
static int migrations_load(const char *dir, struct migration **out, size_t *nout, char *err,
                           size_t errlen)
{
    struct migration_list l = { 0 };
    if (load_dir(&l, dir, NULL, err, errlen) < 0 ||
        load_dir(&l, dir, REPEATABLE_DIR, err, errlen) < 0) {
        migrations_free(l.m, l.n);
        return -1;
    }
    if (l.n == 0) {
        snprintf(err, errlen, "no .sql files in %s", dir);
        return -1;
    }
    *out = l.m;
    *nout = l.n;
    return 0;
}

static void db_fail(db_t *db, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s", what, db_errmsg(db));
    db_rollback(db);
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    log_debug("migrate_notice", "message=\"%.200s\"", message);
}

static int ensure_table(db_t *db, char *err, size_t errlen)
{
    if (db_begin(db) != DB_OK || db_exec(db, NULL, MIGRATE_LOCK_SQL, 0, NULL) != DB_OK ||
        db_exec(db, NULL,
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now(),"
                " checksum text NOT NULL)", 0, NULL) != DB_OK ||
        db_commit(db) != DB_OK) {
        db_fail(db, "cannot create schema_migrations", err, errlen);
        return -1;
    }
    return 0;
}

/* Refuses before anything is applied when a file applied once has changed. */
static int verify_applied(db_t *db, const struct migration *m, size_t n, char *err,
                          size_t errlen)
{
    PGresult *res = db_query(db, NULL, "SELECT version, checksum FROM schema_migrations", 0,
                             NULL);
    if (!res) {
        db_fail(db, "cannot read schema_migrations", err, errlen);
        return -1;
    }
    int rc = 0;
    for (int r = 0; r < PQntuples(res) && rc == 0; r++) {
        const char *version = PQgetvalue(res, r, 0), *sum = PQgetvalue(res, r, 1);
        const struct migration *file = NULL;
        for (size_t i = 0; i < n && !file; i++)
            if (strcmp(m[i].version, version) == 0)
                file = &m[i];
        if (file && !file->repeatable && strcmp(file->checksum, sum) != 0) {
            snprintf(err, errlen,
                     "migration %s was changed after it was applied (checksum %.12s, "
                     "recorded %.12s); it is applied once (sql/README.md)",
                     version, file->checksum, sum);
            rc = -1;
        } else if (!file && strncmp(version, REPEATABLE_DIR "/", strlen(REPEATABLE_DIR) + 1)) {
            /* a database made from files this tree no longer has (an earlier layout) */
            snprintf(err, errlen,
                     "the database holds migration %s, which %s does not have; it was made "
                     "from other files (sql/README.md)", version, "PEMS_SQL_DIR");
            rc = -1;
        }
    }
    PQclear(res);
    return rc;
}

/* 1 applied, 0 already there, -1 failure */
static int apply_one(db_t *db, const struct migration *m, char *err, size_t errlen)
{
    const char *params[] = { m->version, m->checksum };
    char what[512];
    if (db_begin(db) != DB_OK || db_exec(db, NULL, MIGRATE_LOCK_SQL, 0, NULL) != DB_OK) {
        db_fail(db, "cannot lock schema_migrations", err, errlen);
        return -1;
    }
    PGresult *res = db_query(db, NULL, "SELECT checksum FROM schema_migrations WHERE version = $1",
                             1, params);
    if (!res) {
        db_fail(db, "cannot read schema_migrations", err, errlen);
        return -1;
    }
    int found = PQntuples(res);
    bool same = found && strcmp(PQgetvalue(res, 0, 0), m->checksum) == 0;
    PQclear(res);
    if (same || (found && !m->repeatable)) {
        db_rollback(db);
        if (same)
            return 0;
        snprintf(err, errlen, "migration %s was changed after it was applied", m->version);
        return -1;
    }
    /* trusted migration text, possibly many statements: the one unparameterized exec */
    PGconn *pg = db_pg(db);
    PQsetNoticeProcessor(pg, ignore_notice, NULL);
    res = PQexec(pg, m->body);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        snprintf(err, errlen, "migration %s failed: %s", m->version,
                 res ? PQresultErrorMessage(res) : PQerrorMessage(pg));
        size_t l = strlen(err);
        while (l && (err[l - 1] == '\n' || err[l - 1] == ' '))
            err[--l] = '\0';
        PQclear(res);
        db_rollback(db);
        return -1;
    }
    PQclear(res);
    if (PQtransactionStatus(pg) != PQTRANS_INTRANS) {
        snprintf(err, errlen, "migration %s must not end the transaction (COMMIT/ROLLBACK)",
                 m->version);
        db_rollback(db);
        return -1;
    }
    snprintf(what, sizeof what, "cannot record migration %s", m->version);
    if (db_exec(db, NULL,
                "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)"
                " ON CONFLICT (version) DO UPDATE SET checksum = EXCLUDED.checksum,"
                " applied_at = now()", 2, params) != DB_OK ||
        db_commit(db) != DB_OK) {
        db_fail(db, what, err, errlen);
        return -1;
    }
    log_info("migration_applied", "version=%s checksum=%.12s", m->version, m->checksum);
    return 1;
}

int migrate_run(db_t *db, const char *sql_dir, void (*on_applied)(const char *version),
                char *err, size_t errlen)
{
    struct migration *m = NULL;
    size_t n = 0;
    int applied = 0;
    if (!sql_dir || !*sql_dir) {
        snprintf(err, errlen, "PEMS_SQL_DIR is empty");
        return -1;
    }
    if (migrations_load(sql_dir, &m, &n, err, errlen) < 0)
        return -1;
    if (db_connect(db) != DB_OK) {
        snprintf(err, errlen, "cannot connect to the database: %s", db_errmsg(db));
        applied = -1;
        goto cleanup;
    }
    PQsetNoticeProcessor(db_pg(db), ignore_notice, NULL);
    if (ensure_table(db, err, errlen) < 0 || verify_applied(db, m, n, err, errlen) < 0) {
        applied = -1;
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = apply_one(db, &m[i], err, errlen);
        if (rc < 0) {
            applied = -1;
            goto cleanup;
        }
        if (rc == 1) {
            applied++;
            if (on_applied)
                on_applied(m[i].version);
        }
    }
cleanup:
    migrations_free(m, n);
    return applied;
}
