#include "pems_config.h"
#include "addr_allow.h"
#include "cron.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PEMS_SQL_DIR
#define PEMS_SQL_DIR "/usr/share/pems-sync/sql"
#endif

enum setting_type { SETTING_STR, SETTING_INT, SETTING_BOOL };

struct setting {
    const char *name;
    enum setting_type type;
    const char *def;
    size_t offset;
    int min, max;
};

#define S(name, field, def) { name, SETTING_STR, def, offsetof(struct pems_config, field), 0, 0 }
#define I(name, field, def, lo, hi) { name, SETTING_INT, def, offsetof(struct pems_config, field), lo, hi }
#define B(name, field, def) { name, SETTING_BOOL, def, offsetof(struct pems_config, field), 0, 0 }

static const struct setting settings[] = {
    S("DATABASE_URL", database_url, NULL),
    S("JWT_SECRET", jwt_secret, NULL),
    S("ENCRYPTION_KEY", encryption_key, NULL),
    S("PEMS_ENV", env, "production"),
    B("ENABLE_PEMS_WRITE_SYNC", write_sync_enabled, "true"),
    S("PEMS_WRITE_SYNC_SCHEDULE", write_sync_schedule, "* * * * *"),
    S("PEMS_WRITE_SYNC_TZ", write_sync_tz, "America/New_York"),
    I("PEMS_WRITE_SYNC_BATCH_SIZE", batch_size, "100", 1, 10000),
    S("PEMS_FCGI_SOCKET", fcgi_socket, "/run/pems/pems.sock"),
    I("PEMS_FCGI_CHILDREN", fcgi_children, "4", 1, 256),
    S("PEMS_LOG_LEVEL", log_level, "info"),
    I("PEMS_SHUTDOWN_TIMEOUT", shutdown_timeout, "30", 1, 3600),
    I("PEMS_HTTP_TIMEOUT_MS", pems_timeout_ms, "30000", 100, 600000),
    I("PEMS_LEASE_SECONDS", lease_seconds, "30", 2, 3600),
    I("PEMS_MAX_ATTEMPTS", max_attempts, "4", 1, 100),
    S("PEMS_METRICS_FILE", metrics_file, NULL),
    S("PEMS_METRICS_ALLOW", metrics_allow, ADDR_ALLOW_LOOPBACK),
    S("PEMS_SQL_DIR", sql_dir, PEMS_SQL_DIR),
    S("PEMS_WORKER_ID", worker_id, NULL),
    I("PEMS_WORKER_MAX_IN_FLIGHT", worker_max_in_flight, "256", 1, 10000),
    I("PEMS_PULL_MAX_SECONDS", pull_max_seconds, "300", 1, 86400),
};

#define NSETTINGS (sizeof settings / sizeof settings[0])

static const struct setting *setting_find(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

static int setting_apply(struct pems_config *cfg, const struct setting *s, const char *value,
                         char *err, size_t errlen)
{
    void *field = (char *)cfg + s->offset;
    switch (s->type) {
    case SETTING_STR: {
        char **p = field;
        char *copy = strdup(value);
        if (!copy) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        free(*p);
        *p = copy;
        return 0;
    }
    case SETTING_INT: {
        long v;
        if (!util_parse_long(value, s->min, s->max, &v)) {
            snprintf(err, errlen, "%s must be an integer between %d and %d (got '%s')", s->name,
                     s->min, s->max, value);
            return -1;
        }
        *(int *)field = (int)v;
        return 0;
    }
    case SETTING_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes")) {
            *(bool *)field = true;
        } else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no")) {
            *(bool *)field = false;
        } else {
            snprintf(err, errlen, "%s must be true or false (got '%s')", s->name, value);
            return -1;
        }
        return 0;
    }
    return -1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int config_parse_line(char *line, char **key, char **val)
{
    char *l = trim(line);
    if (!*l || *l == '#')
        return 0;
    char *eq = strchr(l, '=');
    if (!eq)
        return -1;
    *eq = '\0';
    *key = trim(l);
    *val = trim(eq + 1);
    size_t vl = strlen(*val);
    if (vl >= 2 && (*val)[0] == '"' && (*val)[vl - 1] == '"') {
        (*val)[vl - 1] = '\0';
        (*val)++;
    }
    return 1;
}

/* KEY=value lines; '#' comments; optional surrounding double quotes on the value */
static int config_read_file(struct pems_config *cfg, const struct config_file *file, char *err,
                            size_t errlen)
{
    const char *path = file->path;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (file->optional && (errno == ENOENT || errno == EACCES || errno == ENOTDIR))
            return 0;
        snprintf(err, errlen, "cannot open config file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *key, *val;
        int kind = config_parse_line(line, &key, &val);
        if (kind == 0)
            continue;
        if (kind < 0) {
            snprintf(err, errlen, "%s:%d: expected KEY=value", path, lineno);
            rc = -1;
            break;
        }
        const struct setting *s = setting_find(key);
        if (!s && file->other_keys)
            continue;
        if (!s) {
            snprintf(err, errlen, "%s:%d: unknown setting %s", path, lineno, key);
            rc = -1;
            break;
        }
        if (getenv(key))
            continue; /* environment wins */
        if (setting_apply(cfg, s, val, err, errlen) < 0) {
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

int config_load(struct pems_config *cfg, const char *path, char *err, size_t errlen)
{
    struct config_file file = { .path = path };
    return config_load_files(cfg, &file, path ? 1 : 0, err, errlen);
}

static int config_fill(struct pems_config *cfg, const struct config_file *files, size_t nfiles,
                       char *err, size_t errlen)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].def && setting_apply(cfg, &settings[i], settings[i].def, err, errlen) < 0)
            return -1;
    for (size_t i = 0; i < nfiles; i++)
        if (config_read_file(cfg, &files[i], err, errlen) < 0)
            return -1;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *v = getenv(settings[i].name);
        if (v && setting_apply(cfg, &settings[i], v, err, errlen) < 0)
            return -1;
    }
    enum pems_log_level lvl;
    if (log_level_parse(cfg->log_level, &lvl) < 0) {
        snprintf(err, errlen, "PEMS_LOG_LEVEL must be debug, info, warn or error");
        return -1;
    }
    if (strcmp(cfg->env, "production") && strcmp(cfg->env, "development")) {
        snprintf(err, errlen, "PEMS_ENV must be production or development");
        return -1;
    }
    struct addr_allow allow;
    char aerr[160];
    if (addr_allow_parse(&allow, cfg->metrics_allow, aerr, sizeof aerr) < 0) {
        snprintf(err, errlen, "PEMS_METRICS_ALLOW: %s", aerr);
        return -1;
    }
    addr_allow_free(&allow);
    return 0;
}

/* on failure nothing is left to free: a program that exits with the message leaks nothing */
int config_load_files(struct pems_config *cfg, const struct config_file *files, size_t nfiles,
                      char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    if (config_fill(cfg, files, nfiles, err, errlen) < 0) {
        config_free(cfg);
        return -1;
    }
    return 0;
}

int config_require(const struct pems_config *cfg, unsigned need, char *err, size_t errlen)
{
    if ((need & CONFIG_NEED_DB) && (!cfg->database_url || !*cfg->database_url)) {
        snprintf(err, errlen, "DATABASE_URL is required");
        return -1;
    }
    if ((need & CONFIG_NEED_JWT) && (!cfg->jwt_secret || strlen(cfg->jwt_secret) < 16)) {
        snprintf(err, errlen, "JWT_SECRET is required (at least 16 characters)");
        return -1;
    }
    if (need & CONFIG_NEED_CRYPTO) {
        const char *k = cfg->encryption_key;
        size_t n = k ? strlen(k) : 0;
        bool hex = n == 64;
        for (size_t i = 0; hex && i < n; i++)
            hex = isxdigit((unsigned char)k[i]) != 0;
        if (!hex) {
            snprintf(err, errlen, "ENCRYPTION_KEY is required: 64 hex characters (32 bytes)");
            return -1;
        }
    }
    if (need & CONFIG_NEED_SCHEDULE) {
        char cerr[128];
        struct cron_expr *ce = cron_parse(cfg->write_sync_schedule, cerr, sizeof cerr);
        if (!ce) {
            snprintf(err, errlen, "PEMS_WRITE_SYNC_SCHEDULE '%s': %s", cfg->write_sync_schedule,
                     cerr);
            return -1;
        }
        cron_free(ce);
        if (!cron_zone_valid(cfg->write_sync_tz)) {
            snprintf(err, errlen, "PEMS_WRITE_SYNC_TZ '%s' is not a zone of the tz database",
                     cfg->write_sync_tz);
            return -1;
        }
    }
    return 0;
}

void config_free(struct pems_config *cfg)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].type == SETTING_STR) {
            char **p = (char **)((char *)cfg + settings[i].offset);
            free(*p);
            *p = NULL;
        }
}

bool config_is_development(const struct pems_config *cfg)
{
    return cfg->env && strcmp(cfg->env, "development") == 0;
}

void config_init_logging(const struct pems_config *cfg, const char *prog)
{
    enum pems_log_level lvl = PEMS_LOG_INFO;
    log_level_parse(cfg->log_level, &lvl);
    log_init(prog, lvl);
}
