#include "write_decision.h"
#include "conflict.h"
#include "text.h"
#include "validation.h"

#include <stdio.h>
#include <string.h>

/* "validation_failed: field: message; ..." within outlen, cut at a character boundary */
static void details_text(const json_t *details, char *out, size_t outlen)
{
    char text[4096];
    size_t len = (size_t)snprintf(text, sizeof text, "validation_failed");
    size_t i;
    json_t *d;
    json_array_foreach(details, i, d) {
        if (len >= sizeof text)
            break;
        const char *field = json_string_value(json_object_get(d, "field"));
        const char *msg = json_string_value(json_object_get(d, "message"));
        len += (size_t)snprintf(text + len, sizeof text - len, "%s %s: %s", i ? ";" : ":",
                                field ? field : "?", msg ? msg : "invalid");
    }
    text_utf8_clip(text, strnlen(text, sizeof text), out, outlen);
}

static void invalid(struct write_decision *out, json_t *details)
{
    out->verdict = WRITE_INVALID;
    details_text(details, out->error, sizeof out->error);
    json_decref(details);
}

static void decide_delete(const struct write_case *c, struct write_decision *out)
{
    json_t *sanitized = NULL, *details = NULL;
    if (c->mirror_deleted) {
        out->verdict = WRITE_CONVERGED;
        return;
    }
    if (c->base_version < c->mirror_version && json_array_size(c->changed_since_base) > 0) {
        out->verdict = WRITE_CONFLICT;
        out->conflict_fields = json_copy((json_t *)c->changed_since_base);
        return;
    }
    if (pfa_validate_modification(PFA_OP_DELETE, NULL, c->mirror_data, &sanitized, &details) != 0) {
        invalid(out, details);
        return;
    }
    json_decref(sanitized);
    out->verdict = WRITE_SEND;
    out->merged = c->base_version < c->mirror_version;
}

static void decide_update(const struct write_case *c, struct write_decision *out)
{
    struct conflict_result cr;
    memset(&cr, 0, sizeof cr);
    if (conflict_detect(c->base_version, c->mirror_version, c->changed_since_base, c->delta,
                        c->mirror_data, &cr) != 0) {
        conflict_result_clear(&cr);
        out->verdict = WRITE_INVALID;
        snprintf(out->error, sizeof out->error, "conflict detection failed");
        return;
    }
    if (cr.outcome == CONFLICT_OVERLAP) {
        out->verdict = WRITE_CONFLICT;
        out->conflict_fields = json_incref(cr.conflict_fields);
        conflict_result_clear(&cr);
        return;
    }
    const json_t *to_write = cr.rebased_delta ? cr.rebased_delta : c->delta;
    json_t *sanitized = NULL, *details = NULL;
    if (json_object_size(to_write) == 0) {
        out->verdict = WRITE_CONVERGED;   /* PEMS already has every value we want */
    } else if (pfa_validate_modification(PFA_OP_UPDATE, to_write, c->mirror_data, &sanitized,
                                         &details) != 0) {
        invalid(out, details);
    } else if (json_object_size(sanitized) == 0) {
        json_decref(sanitized);
        out->verdict = WRITE_CONVERGED;   /* every field already has the value we want */
    } else {
        out->verdict = WRITE_SEND;
        out->changes = sanitized;
        out->merged = cr.outcome == CONFLICT_AUTO_MERGE;
    }
    conflict_result_clear(&cr);
}

void write_decide(const struct write_case *c, struct write_decision *out)
{
    memset(out, 0, sizeof *out);
    if (c->op == PFA_OP_DELETE)
        decide_delete(c, out);
    else
        decide_update(c, out);
}

void write_decision_clear(struct write_decision *d)
{
    json_decref(d->changes);
    json_decref(d->conflict_fields);
    memset(d, 0, sizeof *d);
}
