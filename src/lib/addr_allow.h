#ifndef PEMS_ADDR_ALLOW_H
#define PEMS_ADDR_ALLOW_H

#include <stdbool.h>
#include <stddef.h>

/* A list of address ranges (CIDR), e.g. "127.0.0.0/8, ::1, 10.1.0.0/16", and whether a
 * peer's address (REMOTE_ADDR: dotted quad or IPv6 text) is in one of them. An IPv4 address
 * mapped into IPv6 (::ffff:10.1.2.3) is matched as the IPv4 address it carries. */
struct addr_range {
    int family;                /* AF_INET or AF_INET6 */
    unsigned char bytes[16];   /* network order, 4 used for AF_INET */
    unsigned prefix;           /* bits that must match */
};

struct addr_allow {
    struct addr_range *ranges;
    size_t n;
};

/* what PEMS_METRICS_ALLOW is by default: the host itself */
#define ADDR_ALLOW_LOOPBACK "127.0.0.0/8,::1/128"

/* Ranges separated by commas and/or blanks; an address without /N is that address alone.
 * An empty list allows nobody. -1 with a message naming the bad entry (a's ranges freed). */
int addr_allow_parse(struct addr_allow *a, const char *list, char *err, size_t errlen);
bool addr_allow_match(const struct addr_allow *a, const char *addr);
void addr_allow_free(struct addr_allow *a);

#endif
