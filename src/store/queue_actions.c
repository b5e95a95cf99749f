#include "queue_actions.h"
#include "audit.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum queue_action { ACTION_RETRY, ACTION_CANCEL };

/* Columns of the locked item and its modification, in this order. */
#define QA_SELECT \
    "SELECT q.organization_id, q.modification_id, q.status, q.attempts, q.deferrals," \
    " pems_iso(q.scheduled_at), m.status" \
    " FROM pfa_write_queue q JOIN pfa_modification m ON m.id = q.modification_id" \
    " WHERE q.id = $1 FOR UPDATE OF q, m"

static enum queue_action_result db_result(db_t *db)
{
    return db_last_status(db) == DB_UNAVAILABLE ? QUEUE_ACTION_DB_UNAVAILABLE
                                                : QUEUE_ACTION_DB_ERROR;
}

static json_t *item_state(const char *status, const char *attempts, const char *deferrals,
                          const char *scheduled_at)
{
    return json_pack("{s:s, s:i, s:i, s:s?}", "status", status, "attempts", atoi(attempts),
                     "deferrals", atoi(deferrals), "scheduledAt", scheduled_at);
}

static enum queue_action_result run_once(db_t *db, enum queue_action action,
                                         const char *item_id, const char *org_id,
                                         const char *actor_user_id, char mod_out[37])
{
    const char *actor = actor_user_id ? actor_user_id : "pemsctl";
    const char *name = action == ACTION_RETRY ? "retry" : "cancel";
    enum queue_action_result result = QUEUE_ACTION_DB_ERROR;
    PGresult *sel = NULL, *upd = NULL;
    json_t *before = NULL, *after = NULL, *mbefore = NULL, *mafter = NULL;

    if (db_begin(db) != DB_OK)
        return db_result(db);
    const char *p1[] = { item_id };
    sel = db_query(db, "queue_action_lock", QA_SELECT, 1, p1);
    if (!sel) {
        result = db_result(db);
        goto cleanup;
    }
    if (PQntuples(sel) != 1 || (org_id && strcasecmp(PQgetvalue(sel, 0, 0), org_id) != 0)) {
        result = QUEUE_ACTION_NOT_FOUND;
        goto cleanup;
    }
    const char *item_org = PQgetvalue(sel, 0, 0);
    const char *mod_id = PQgetvalue(sel, 0, 1);
    const char *status = PQgetvalue(sel, 0, 2);
    const char *mod_status = PQgetvalue(sel, 0, 6);
    if (action == ACTION_RETRY) {
        /* a modification written, discarded or in conflict since must not be re-sent */
        if (strcmp(status, "failed") != 0 || !strcmp(mod_status, "synced") ||
            !strcmp(mod_status, "discarded") || !strcmp(mod_status, "conflict")) {
            result = QUEUE_ACTION_WRONG_STATE;
            goto cleanup;
        }
        upd = db_query(db, "queue_action_retry",
                       "UPDATE pfa_write_queue SET status = 'pending', scheduled_at = now(),"
                       " attempts = 0, deferrals = 0, locked_by = NULL, locked_until = NULL,"
                       " started_at = NULL, completed_at = NULL, duration_ms = NULL,"
                       " updated_at = now()"
                       " WHERE id = $1 AND status = 'failed'"
                       " RETURNING status, attempts, deferrals, pems_iso(scheduled_at)",
                       1, p1);
    } else {
        if (strcmp(status, "pending") != 0) {
            result = QUEUE_ACTION_WRONG_STATE;
            goto cleanup;
        }
        upd = db_query(db, "queue_action_cancel",
                       "UPDATE pfa_write_queue SET status = 'cancelled', locked_by = NULL,"
                       " locked_until = NULL, updated_at = now()"
                       " WHERE id = $1 AND status = 'pending'"
                       " RETURNING status, attempts, deferrals, pems_iso(scheduled_at)",
                       1, p1);
    }
    if (!upd) {
        /* another live item of the same modification holds the one-live index */
        result = !strcmp(db_sqlstate(db), "23505") ? QUEUE_ACTION_WRONG_STATE : db_result(db);
        goto cleanup;
    }
    if (PQntuples(upd) != 1) {
        result = QUEUE_ACTION_WRONG_STATE;
        goto cleanup;
    }
    const char *new_mod_status = action == ACTION_RETRY ? "queued" : "draft";
    const char *p2[] = { mod_id, new_mod_status };
    if (db_exec(db, "queue_action_modification",
                "UPDATE pfa_modification SET status = $2, updated_at = now() WHERE id = $1", 2,
                p2) != DB_OK) {
        result = db_result(db);
        goto cleanup;
    }
    before = item_state(status, PQgetvalue(sel, 0, 3), PQgetvalue(sel, 0, 4),
                        db_value(sel, 0, 5));
    after = item_state(PQgetvalue(upd, 0, 0), PQgetvalue(upd, 0, 1), PQgetvalue(upd, 0, 2),
                       db_value(upd, 0, 3));
    mbefore = json_pack("{s:s}", "status", mod_status);
    mafter = json_pack("{s:s}", "status", new_mod_status);
    if (!before || !after || !mbefore || !mafter)
        goto cleanup;
    if (audit_write(db, item_org, actor_user_id, actor, name, "pfa_write_queue", item_id, before,
                    after) != DB_OK ||
        audit_write(db, item_org, actor_user_id, actor, name, "pfa_modification", mod_id,
                    mbefore, mafter) != DB_OK ||
        db_commit(db) != DB_OK) {
        result = db_result(db);
        goto cleanup;
    }
    snprintf(mod_out, 37, "%s", mod_id);
    log_info("queue_item_action", "action=%s item=%s modification=%s actor=%s", name, item_id,
             mod_id, actor);
    result = QUEUE_ACTION_OK;
cleanup:
    if (result != QUEUE_ACTION_OK)
        db_rollback(db);
    PQclear(sel);
    PQclear(upd);
    json_decref(before);
    json_decref(after);
    json_decref(mbefore);
    json_decref(mafter);
    return result;
}

static enum queue_action_result run(db_t *db, enum queue_action action, const char *item_id,
                                    const char *org_id, const char *actor_user_id,
                                    char mod_out[37])
{
    if (!util_is_uuid(item_id) || (org_id && !util_is_uuid(org_id)))
        return QUEUE_ACTION_NOT_FOUND;
    enum queue_action_result r;
    for (int retries = 0;; retries++) {
        r = run_once(db, action, item_id, org_id, actor_user_id, mod_out);
        if (r != QUEUE_ACTION_DB_ERROR || !db_retry_due(db, retries))
            return r;
    }
}

enum queue_action_result queue_item_retry(db_t *db, const char *item_id, const char *org_id,
                                          const char *actor_user_id,
                                          char modification_id_out[37])
{
    return run(db, ACTION_RETRY, item_id, org_id, actor_user_id, modification_id_out);
}

enum queue_action_result queue_item_cancel(db_t *db, const char *item_id, const char *org_id,
                                           const char *actor_user_id,
                                           char modification_id_out[37])
{
    return run(db, ACTION_CANCEL, item_id, org_id, actor_user_id, modification_id_out);
}
