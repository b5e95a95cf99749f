#ifndef PEMS_LOG_H
#define PEMS_LOG_H

#include <stdbool.h>

/* One line per event on stderr: ts=... level=... prog=... event=... key=value ...
 * When stderr is the journal (JOURNAL_STREAM names it), each line starts with its syslog
 * priority, <3> error ... <7> debug, which journald takes off and records (sd-daemon(3)). */
enum pems_log_level { PEMS_LOG_DEBUG, PEMS_LOG_INFO, PEMS_LOG_WARN, PEMS_LOG_ERROR };

void log_init(const char *prog, enum pems_log_level level);
/* stderr is the stream JOURNAL_STREAM names (log_init looks once) */
bool log_stderr_is_journal(void);
int log_level_parse(const char *s, enum pems_log_level *out);
int log_enabled(enum pems_log_level level);

/* fmt continues the line with key=value pairs, e.g. "pid=%d status=%s" (may be NULL) */
void log_event(enum pems_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(ev, ...) log_event(PEMS_LOG_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...)  log_event(PEMS_LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...)  log_event(PEMS_LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_event(PEMS_LOG_ERROR, ev, __VA_ARGS__)

#endif
