#ifndef PEMS_METRICS_H
#define PEMS_METRICS_H

/* Service-wide counters in a shared memory-mapped file (PEMS_METRICS_FILE), so every
 * pems-fcgi process and pemsworker on the host add to the same numbers. All calls are
 * no-ops when the file could not be opened. */

int metrics_open(const char *path);   /* 0 ok, -1 (logged) */
void metrics_close(void);

/* route: the router's pattern, e.g. "/api/pems/conflicts/:conflictId/resolve" */
void metrics_http_observe(const char *route, int status, double seconds);
/* one request to a PEMS server; status 0 = transport error */
void metrics_upstream_inc(int http_status);
/* a record (or a pull) from PEMS not taken: invalid | future_updated_at | stuck_cursor */
void metrics_upstream_rejected(const char *reason);
/* result: synced | failed | conflict | merged */
void metrics_sync_item(const char *result);

#endif
