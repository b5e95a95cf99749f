#ifndef PEMS_CLI_H
#define PEMS_CLI_H

#include <stddef.h>

/* What every program's command line shares (getopt_long, GNU style; the man pages list each
 * program's options): --help prints the usage on stdout and exits 0, -V/--version prints
 * "PROG (pems-sync) VERSION" and exits 0, a usage error prints one line and a hint on stderr
 * and exits 2 (PEMS_EXIT_USAGE). */
/* the exit statuses of every program (their man pages, EXIT STATUS) */
enum pems_exit {
    PEMS_EXIT_OK = 0,
    PEMS_EXIT_FAILURE = 1,  /* the program ran and failed: database, I/O, ... */
    PEMS_EXIT_USAGE = 2,    /* the command line is wrong; nothing was done */
    /* a setting is missing or invalid (sysexits.h EX_CONFIG): pemsd does not restart a child
     * that exits with it, it stops and exits with it too (README, Configuration) */
    PEMS_EXIT_CONFIG = 78,
};

/* getopt_long's option strings for the options every program has */
/* the leading ":" makes a missing value return ":" instead of "?" */
#define CLI_COMMON_SHORTOPTS ":c:hV"
#define CLI_COMMON_LONGOPTS \
    { "config", required_argument, NULL, 'c' }, \
    { "help", no_argument, NULL, 'h' }, \
    { "version", no_argument, NULL, 'V' }

void cli_print_version(const char *prog);

/* prints "PROG: message" and "Try 'PROG --help'." on stderr; returns PEMS_EXIT_USAGE */
int cli_usage_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* the usage error getopt_long's last return ('?' or ':') stands for, from optopt/optind;
 * call with opterr = 0 so getopt prints nothing of its own */
struct option;
int cli_getopt_error(const char *prog, int ret, char **argv, const struct option *longopts);
/* the same message, in buf, for a caller that adds its own usage line */
const char *cli_getopt_message(int ret, char **argv, const struct option *longopts, char *buf,
                               size_t len);

#endif
