#include "page_cache.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct page_slot {
    char *key;              /* NULL: empty slot */
    char *page;
    size_t len;
    char tag[PAGE_CACHE_TAG_SIZE];   /* the caller's tag of the page (its entity tag) */
    long long version;
    double until;           /* valid while the caller's clock is before this */
    unsigned long long used;  /* last use, for eviction */
};

struct page_cache {
    struct page_slot *slots;
    size_t n, max_bytes, bytes;
    unsigned long long clock;
};

struct page_cache *page_cache_new(size_t slots, size_t max_bytes)
{
    struct page_cache *pc = calloc(1, sizeof *pc);
    if (!pc)
        return NULL;
    pc->slots = calloc(slots ? slots : 1, sizeof *pc->slots);
    if (!pc->slots) {
        free(pc);
        return NULL;
    }
    pc->n = slots ? slots : 1;
    pc->max_bytes = max_bytes;
    return pc;
}

static void slot_clear(struct page_cache *pc, struct page_slot *s)
{
    pc->bytes -= s->len;
    free(s->key);
    free(s->page);
    memset(s, 0, sizeof *s);
}

void page_cache_free(struct page_cache *pc)
{
    if (!pc)
        return;
    for (size_t i = 0; i < pc->n; i++)
        slot_clear(pc, &pc->slots[i]);
    free(pc->slots);
    free(pc);
}

static struct page_slot *find(const struct page_cache *pc, const char *key)
{
    for (size_t i = 0; i < pc->n; i++)
        if (pc->slots[i].key && strcmp(pc->slots[i].key, key) == 0)
            return &pc->slots[i];
    return NULL;
}

long long page_cache_version(const struct page_cache *pc, const char *key)
{
    const struct page_slot *s = find(pc, key);
    return s ? s->version : -1;
}

const char *page_cache_get(struct page_cache *pc, const char *key, long long version, size_t *len,
                           const char **tag)
{
    return page_cache_get_at(pc, key, version, -INFINITY, len, tag);
}

const char *page_cache_get_at(struct page_cache *pc, const char *key, long long version,
                              double now, size_t *len, const char **tag)
{
    struct page_slot *s = find(pc, key);
    if (!s || s->version != version || !(now < s->until))
        return NULL;
    s->used = ++pc->clock;
    *len = s->len;
    if (tag)
        *tag = s->tag;
    return s->page;
}

static struct page_slot *least_recent(struct page_cache *pc)
{
    struct page_slot *lru = NULL;
    for (size_t i = 0; i < pc->n; i++) {
        struct page_slot *s = &pc->slots[i];
        if (s->key && (!lru || s->used < lru->used))
            lru = s;
    }
    return lru;
}

int page_cache_put(struct page_cache *pc, const char *key, long long version,
                   const char *page, size_t len, const char *tag)
{
    return page_cache_put_until(pc, key, version, page, len, tag, INFINITY);
}

int page_cache_put_until(struct page_cache *pc, const char *key, long long version,
                         const char *page, size_t len, const char *tag, double until)
{
    struct page_slot *s = find(pc, key);
    if (s)
        slot_clear(pc, s);
    if (len > pc->max_bytes)
        return -1;
    while (pc->bytes + len > pc->max_bytes)
        slot_clear(pc, least_recent(pc));
    s = NULL;
    for (size_t i = 0; i < pc->n && !s; i++)
        if (!pc->slots[i].key)
            s = &pc->slots[i];
    if (!s) {
        s = least_recent(pc);
        slot_clear(pc, s);
    }
    s->key = strdup(key);
    s->page = malloc(len ? len : 1);
    if (!s->key || !s->page) {
        free(s->key);
        free(s->page);
        memset(s, 0, sizeof *s);
        return -1;
    }
    memcpy(s->page, page, len);
    s->len = len;
    snprintf(s->tag, sizeof s->tag, "%s", tag ? tag : "");
    s->version = version;
    s->until = until;
    s->used = ++pc->clock;
    pc->bytes += len;
    return 0;
}
