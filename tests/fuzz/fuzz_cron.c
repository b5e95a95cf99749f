/* Cron expressions: parsing, and the next fire time in a few zones. */
#include "cron.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0;
    char *s = fuzz_str(data, size);
    char err[128];
    struct cron_expr *ce = cron_parse(s, err, sizeof err);
    if (ce) {
        static const char *const zones[] = { "UTC", "America/New_York", "Australia/Lord_Howe" };
        time_t after = 1700000000;
        for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
            time_t t = cron_next(ce, after, zones[i]);
            if (t != (time_t)-1 && t <= after)
                abort();
        }
        cron_free(ce);
    }
    cron_zone_valid(s);
    free(s);
    return 0;
}
