#include "cli.h"
#include "build_config.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_print_version(const char *prog)
{
    printf("%s (%s) %s\n", prog, PACKAGE_NAME, PACKAGE_VERSION);
}

static int usage_vprint(const char *prog, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static int usage_vprint(const char *prog, const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry '%s --help' for more information.\n", prog);
    return PEMS_EXIT_USAGE;
}

int cli_usage_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = usage_vprint(prog, fmt, ap);
    va_end(ap);
    return rc;
}

/* how many long options start with the word's name: more than one is an ambiguous prefix */
static int prefix_matches(const struct option *longopts, const char *word)
{
    size_t len = strcspn(word, "=");
    int n = 0;
    for (; longopts && longopts->name; longopts++)
        n += strncmp(longopts->name, word, len) == 0;
    return n;
}

const char *cli_getopt_message(int ret, char **argv, const struct option *longopts, char *buf,
                               size_t len)
{
    /* optind already points past the offending word */
    const char *word = optind > 0 ? argv[optind - 1] : "?";
    if (ret == ':')
        snprintf(buf, len, "option '%s' needs a value", word);
    else if (word[0] == '-' && word[1] == '-' && optopt)  /* optopt is set for "--flag=value" */
        snprintf(buf, len, "option '%s' takes no value", word);
    else if (word[0] == '-' && word[1] == '-')
        snprintf(buf, len, prefix_matches(longopts, word + 2) > 1 ? "ambiguous option '%s'"
                                                                  : "unknown option '%s'", word);
    else
        snprintf(buf, len, "unknown option '-%c'", optopt);
    return buf;
}

int cli_getopt_error(const char *prog, int ret, char **argv, const struct option *longopts)
{
    char msg[256];
    cli_getopt_message(ret, argv, longopts, msg, sizeof msg);
    return cli_usage_error(prog, "%s", msg);
}
