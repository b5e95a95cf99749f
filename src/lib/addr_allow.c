#include "addr_allow.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const unsigned char v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* text to family and bytes; a mapped IPv4 address becomes AF_INET */
static bool addr_read(const char *s, int *family, unsigned char bytes[16])
{
    if (inet_pton(AF_INET, s, bytes) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, bytes) != 1)
        return false;
    if (memcmp(bytes, v4_mapped, sizeof v4_mapped) == 0) {
        memmove(bytes, bytes + 12, 4);
        *family = AF_INET;
    } else {
        *family = AF_INET6;
    }
    return true;
}

static int range_read(const char *entry, struct addr_range *r)
{
    char host[64];
    const char *slash = strchr(entry, '/');
    size_t hl = slash ? (size_t)(slash - entry) : strlen(entry);
    if (hl == 0 || hl >= sizeof host)
        return -1;
    memcpy(host, entry, hl);
    host[hl] = '\0';
    memset(r->bytes, 0, sizeof r->bytes);
    /* a mapped address in a list would be matched as IPv4 with a prefix counted in IPv6 bits */
    if (inet_pton(AF_INET, host, r->bytes) == 1)
        r->family = AF_INET;
    else if (inet_pton(AF_INET6, host, r->bytes) == 1 &&
             memcmp(r->bytes, v4_mapped, sizeof v4_mapped) != 0)
        r->family = AF_INET6;
    else
        return -1;
    unsigned max = r->family == AF_INET ? 32 : 128;
    r->prefix = max;
    if (slash) {
        const char *p = slash + 1;
        unsigned v = 0;
        if (!*p || strlen(p) > 3)
            return -1;
        for (; *p; p++) {
            if (!isdigit((unsigned char)*p))
                return -1;
            v = v * 10 + (unsigned)(*p - '0');
        }
        if (v > max)
            return -1;
        r->prefix = v;
    }
    return 0;
}

int addr_allow_parse(struct addr_allow *a, const char *list, char *err, size_t errlen)
{
    a->ranges = NULL;
    a->n = 0;
    size_t cap = 0;
    const char *p = list ? list : "";
    for (;;) {
        p += strspn(p, ", \t");
        if (!*p)
            return 0;
        size_t len = strcspn(p, ", \t");
        char entry[96];
        struct addr_range r;
        if (len >= sizeof entry) {
            snprintf(err, errlen, "'%.40s...' is not an address or a CIDR range", p);
            goto fail;
        }
        memcpy(entry, p, len);
        entry[len] = '\0';
        if (range_read(entry, &r) < 0) {
            snprintf(err, errlen, "'%s' is not an address or a CIDR range (e.g. 10.0.0.0/8, ::1)",
                     entry);
            goto fail;
        }
        if (a->n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            struct addr_range *grown = realloc(a->ranges, ncap * sizeof *grown);
            if (!grown) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            a->ranges = grown;
            cap = ncap;
        }
        a->ranges[a->n++] = r;
        p += len;
    }
fail:
    addr_allow_free(a);
    return -1;
}

static bool range_has(const struct addr_range *r, int family, const unsigned char *bytes)
{
    if (r->family != family)
        return false;
    unsigned full = r->prefix / 8, rest = r->prefix % 8;
    if (memcmp(r->bytes, bytes, full) != 0)
        return false;
    if (!rest)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (r->bytes[full] & mask) == (bytes[full] & mask);
}

bool addr_allow_match(const struct addr_allow *a, const char *addr)
{
    int family;
    unsigned char bytes[16];
    if (!a || !addr || strlen(addr) >= 64 || !addr_read(addr, &family, bytes))
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (range_has(&a->ranges[i], family, bytes))
            return true;
    return false;
}

void addr_allow_free(struct addr_allow *a)
{
    free(a->ranges);
    a->ranges = NULL;
    a->n = 0;
}
