#ifndef PEMS_METRICS_RENDER_H
#define PEMS_METRICS_RENDER_H

#include <stdio.h>

/* Writes the counters of the shared metrics file (see metrics.h) in Prometheus text format
 * 0.0.4: pems_http_requests_total, pems_http_request_duration_seconds, pems_sync_items_total,
 * pems_upstream_requests_total, each with HELP and TYPE lines (also when no file is open). */
void metrics_render(FILE *out);

#endif
