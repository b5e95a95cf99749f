#ifndef PEMS_CONFIG_H
#define PEMS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* Every setting (README, Configuration), loaded from one table in pems_config.c. */
struct pems_config {
    char *database_url;
    char *jwt_secret;
    char *encryption_key;          /* 64 hex chars */
    char *env;                     /* production | development */
    bool write_sync_enabled;
    char *write_sync_schedule;
    char *write_sync_tz;
    int batch_size;
    char *fcgi_socket;
    int fcgi_children;
    char *log_level;
    int shutdown_timeout;          /* seconds */
    int pems_timeout_ms;           /* default per-server timeout when the row has none */
    int lease_seconds;             /* queue item lease */
    int max_attempts;              /* attempts before an item fails */
    char *metrics_file;            /* shared counters file for the whole service */
    char *metrics_allow;           /* CIDR list of the addresses /metrics answers */
    char *sql_dir;                 /* migrations */
    char *worker_id;               /* defaults to host:pid */
    int worker_max_in_flight;      /* PEMS requests one pemsworker keeps in flight at most */
    int pull_max_seconds;          /* the longest one server's pull runs in one run */
};

/* Loads defaults, then the file (if path non-NULL), then the environment.
 * On error returns -1 and writes a message into err. */
int config_load(struct pems_config *cfg, const char *path, char *err, size_t errlen);
/* The same with several files, read in order: a setting in a later file wins over an
 * earlier one, the environment over them all. */
struct config_file {
    const char *path;
    bool optional;     /* a file that is missing or unreadable is skipped */
    bool other_keys;   /* lines of keys that are not settings are skipped (an environment
                          file, e.g. systemd's EnvironmentFile=, may hold other variables) */
};
int config_load_files(struct pems_config *cfg, const struct config_file *files, size_t nfiles,
                      char *err, size_t errlen);
/* One line of a config file, parsed in place: 1 with *key and *val set (surrounding blanks
 * and one pair of double quotes around the value removed), 0 for a blank or # line, -1 when
 * there is no '='. */
int config_parse_line(char *line, char **key, char **val);
void config_free(struct pems_config *cfg);
bool config_is_development(const struct pems_config *cfg);

/* Checks the settings a program needs; names the first missing one in err. */
#define CONFIG_NEED_DB      0x1
#define CONFIG_NEED_JWT     0x2
#define CONFIG_NEED_CRYPTO  0x4
#define CONFIG_NEED_SCHEDULE 0x8   /* PEMS_WRITE_SYNC_SCHEDULE parses, PEMS_WRITE_SYNC_TZ exists */
/* everything pemsd's children need: pemsd checks it before it forks */
#define CONFIG_NEED_ALL (CONFIG_NEED_DB | CONFIG_NEED_JWT | CONFIG_NEED_CRYPTO | CONFIG_NEED_SCHEDULE)
int config_require(const struct pems_config *cfg, unsigned need, char *err, size_t errlen);

/* Sets up logging from cfg for program prog. */
void config_init_logging(const struct pems_config *cfg, const char *prog);

#endif
