#ifndef PEMS_MIGRATE_H
#define PEMS_MIGRATE_H

#include <stddef.h>
#include "db.h"

/* Applies sql_dir's own *.sql files (schema.sql first, then by name) each once, then each
 * file of sql_dir/functions (by name) whenever its checksum differs from the one recorded:
 * each in its own transaction under an advisory lock, recorded with its sha256 checksum in
 * schema_migrations (sql/README.md). Refuses to run when a file applied once has changed.
 * Calls on_applied (may be NULL) with each version it applies.
 * Returns the number of files applied, or -1 with a message in err. */
int migrate_run(db_t *db, const char *sql_dir, void (*on_applied)(const char *version),
                char *err, size_t errlen);

#endif
