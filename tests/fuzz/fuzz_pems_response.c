/* What a PEMS server answers: a pull page, one record (as a write result or a 409 carries
 * it), versions and timestamps. */
#include "fuzz.h"
#include "pems_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t until = 1772368205123LL;
    int64_t ms;
    if (pems_timestamp_parse((const char *)data, size, &ms) == 0) {
        char out[32];
        int64_t again;
        pems_timestamp_format(ms, out, sizeof out);
        /* what we store as the cursor parses back to the same instant */
        if (pems_timestamp_parse(out, strlen(out), &again) != 0 || again != ms)
            abort();
    }
    json_t *body = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (!body)
        return 0;
    struct pems_page pg;
    char why[200];
    if (pems_page_parse(body, until, &pg, why, sizeof why) == 0) {
        if (pg.newest_ms > until || json_array_size(pg.records) + json_array_size(pg.rejects) !=
                                        pg.received)
            abort();
        pems_page_clear(&pg);
    }
    struct pems_record r;
    if (pems_record_check(body, 0, until, &r, why, sizeof why) == PEMS_REJECT_NONE) {
        json_t *j = pems_record_json(&r);
        json_decref(j);
    }
    pems_record_clear(&r);
    int64_t v;
    if (pems_version_parse(body, &v) == 0 && v < 0)
        abort();
    json_decref(body);
    /* the response decoder: whatever json_loadb takes, it takes the same */
    json_t *whole = pems_json_loadb((const char *)data, size);
    json_t *plain = json_loadb((const char *)data, size, 0, NULL);
    if (plain && (!whole || !json_equal(whole, plain)))
        abort();
    json_decref(plain);
    json_decref(whole);
    return 0;
}
