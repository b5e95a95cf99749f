#ifndef PEMS_MIGRATE_H
#define PEMS_MIGRATE_H

#include <stddef.h>
#include "db.h"

/* Applies the pending *.sql files of sql_dir in filename order, each in its own
 * transaction under an advisory lock, and records them (with a sha256 checksum) in
 * schema_migrations. Refuses to run when a file already applied has changed since.
 * Calls on_applied (may be NULL) with each version it applies.
 * Returns the number of files applied, or -1 with a message in err. */
int migrate_run(db_t *db, const char *sql_dir, void (*on_applied)(const char *version),
                char *err, size_t errlen);

#endif
