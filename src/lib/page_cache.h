#ifndef PEMS_PAGE_CACHE_H
#define PEMS_PAGE_CACHE_H

#include <stddef.h>

/* Rendered response bodies kept by key, each valid for one version of the data behind it
 * (versions come from the database and never repeat). Bounded in entries and in bytes; the
 * least recently used entry goes first. */
struct page_cache;

struct page_cache *page_cache_new(size_t slots, size_t max_bytes);
void page_cache_free(struct page_cache *pc);

/* The version stored under key, or -1 when nothing is. */
long long page_cache_version(const struct page_cache *pc, const char *key);

/* The page stored under key when it is of this version, else NULL. Owned by the cache, valid
 * until the next page_cache_put. */
const char *page_cache_get(struct page_cache *pc, const char *key, long long version, size_t *len);

/* Stores a copy of page under key, replacing what was there. -1 when it is larger than the
 * whole budget or memory runs out (nothing stored under key then), else 0. */
int page_cache_put(struct page_cache *pc, const char *key, long long version,
                   const char *page, size_t len);

#endif
