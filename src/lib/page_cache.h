#ifndef PEMS_PAGE_CACHE_H
#define PEMS_PAGE_CACHE_H

#include <stddef.h>

/* Rendered response bodies kept by key, each valid for one version of the data behind it
 * (versions come from the database and never repeat). Bounded in entries and in bytes; the
 * least recently used entry goes first. */
struct page_cache;

/* A page's tag (its entity tag, computed once when it is stored) fits in this, NUL included;
 * a longer one is cut. */
#define PAGE_CACHE_TAG_SIZE 32

struct page_cache *page_cache_new(size_t slots, size_t max_bytes);
void page_cache_free(struct page_cache *pc);

/* The version stored under key, or -1 when nothing is. */
long long page_cache_version(const struct page_cache *pc, const char *key);

/* The page stored under key when it is of this version, else NULL; *tag (unless tag is NULL)
 * the tag stored with it. Both owned by the cache, valid until the next page_cache_put. */
const char *page_cache_get(struct page_cache *pc, const char *key, long long version, size_t *len,
                           const char **tag);

/* The same for a page that is valid until a time (page_cache_put_until): NULL as well from
 * that time on (now and until on the caller's one clock). */
const char *page_cache_get_at(struct page_cache *pc, const char *key, long long version,
                              double now, size_t *len, const char **tag);

/* Stores a copy of page and of tag (NULL: "") under key, replacing what was there. -1 when
 * the page is larger than the whole budget or memory runs out (nothing stored under key then),
 * else 0. */
int page_cache_put(struct page_cache *pc, const char *key, long long version,
                   const char *page, size_t len, const char *tag);
/* The same, for a page that changes with time alone at `until` (INFINITY: never). */
int page_cache_put_until(struct page_cache *pc, const char *key, long long version,
                         const char *page, size_t len, const char *tag, double until);

#endif
