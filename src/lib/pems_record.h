#ifndef PEMS_PEMS_RECORD_H
#define PEMS_PEMS_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* What a PEMS server sends, checked like a client's input before anything is stored
 * (README, Security): records of a pull page, a write's result, a 409's current record.
 * Pure: no I/O, the caller logs, counts and stores the rejects. */

/* Versions are 64-bit integers end to end (bigint columns, int64_t here): 0..INT64_MAX is
 * taken exactly, anything else is refused, never wrapped or rounded. */
#define PEMS_VERSION_MAX INT64_MAX
/* How far PEMS's clock may run ahead of ours before an updatedAt is not trusted. */
#define PEMS_CLOCK_SKEW_MS (120 * 1000LL)
#define PEMS_PFA_ID_MAX 200

/* The most a record's data may take as compact JSON: a larger one is not stored. */
#define PEMS_RECORD_DATA_MAX (64 * 1024)

/* Why a record was not taken (the `reason` of logs, metrics and pems_rejected_records). */
enum pems_reject {
    PEMS_REJECT_NONE,
    PEMS_REJECT_INVALID,    /* not a record, pfaId, version, data or updatedAt malformed */
    PEMS_REJECT_TOO_LARGE,  /* data over PEMS_RECORD_DATA_MAX bytes as JSON */
};
const char *pems_reject_name(enum pems_reject r);   /* "invalid", "record_too_large" */

/* An integer 0..PEMS_VERSION_MAX (JSON integer, not a real or a string). 0 ok, -1 not. */
int pems_version_parse(const json_t *v, int64_t *out);

/* A PEMS response body decoded as json_loadb does, except that an integer too large for 64
 * bits (which json_loadb refuses, failing the whole body) is read as the real number it also
 * is: the record holding it is then refused alone, by pems_record_check. NULL when the body
 * is not JSON. */
json_t *pems_json_loadb(const char *buf, size_t len);

/* An ISO 8601 instant: YYYY-MM-DDTHH:MM[:SS[.fraction]] then Z or +-HH[:]MM; a real calendar
 * date, years 1970..9999. Milliseconds since the epoch (fraction truncated). 0 ok, -1 not. */
int pems_timestamp_parse(const char *s, size_t len, int64_t *ms);
/* ms since the epoch as YYYY-MM-DDTHH:MM:SS.mmmZ (out: at least 32 bytes). */
void pems_timestamp_format(int64_t ms, char *out, size_t outlen);

/* One record checked. flags: PEMS_NEED_UPDATED_AT for pull pages. trust_until_ms: an
 * updatedAt later than this is not trusted (<= 0: no limit): the record is taken (PEMS is
 * the source of truth for its data), its updatedAt is not (untrusted_updated_at_ms). */
#define PEMS_NEED_UPDATED_AT 0x1
struct pems_record {
    const char *pfa_id;        /* borrowed from the checked JSON; NULL when it had none */
    int64_t version;
    bool deleted;
    json_t *data;              /* owned: canonical data; NULL for a deleted record */
    int64_t updated_at_ms;     /* -1 when absent or not trusted */
    int64_t untrusted_updated_at_ms;   /* the updatedAt beyond trust_until_ms, else -1 */
};
/* PEMS_REJECT_NONE with *out filled (pems_record_clear it), else the reason with a short
 * text in why (out->pfa_id still set when the record named one). */
enum pems_reject pems_record_check(const json_t *rec, unsigned flags, int64_t trust_until_ms,
                                   struct pems_record *out, char *why, size_t whylen);
void pems_record_clear(struct pems_record *r);
/* The checked record as pull_apply takes it: {pfaId, version, updatedAt?, data | deleted}. */
json_t *pems_record_json(const struct pems_record *r);

/* One page of a pull: {records: [...], nextCursor: string | integer | null}. */
struct pems_page {
    json_t *records;           /* the records taken, as pems_record_json */
    json_t *rejects;           /* [{pfaId, reason, detail}] */
    json_t *untrusted;         /* [{pfaId, updatedAt}]: taken, their updatedAt not trusted */
    size_t received;           /* records on the page, taken or not */
    int64_t newest_ms;         /* newest trusted updatedAt on the page (-1: none) */
    char *next_cursor;         /* NULL on the last page */
};
/* 0 with *page filled (pems_page_clear it); -1 with why when body is not a page at all. */
int pems_page_parse(const json_t *body, int64_t trust_until_ms, struct pems_page *page,
                    char *why, size_t whylen);
void pems_page_clear(struct pems_page *page);

#endif
