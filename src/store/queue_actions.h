#ifndef PEMS_QUEUE_ACTIONS_H
#define PEMS_QUEUE_ACTIONS_H

#include "db.h"

/* The operator's queue actions, shared by the API (POST /queue/:id/retry|cancel) and pemsctl.
 * Each runs in one transaction with its audit row. */

enum queue_action_result {
    QUEUE_ACTION_OK,
    QUEUE_ACTION_NOT_FOUND,      /* no such item (or not in org_id when org_id is given) */
    QUEUE_ACTION_WRONG_STATE,    /* 409 */
    QUEUE_ACTION_DB_UNAVAILABLE,
    QUEUE_ACTION_DB_ERROR
};

/* failed -> pending, due now, attempts reset; its modification back to queued.
 * org_id may be NULL (operator CLI); actor_user_id may be NULL (actor "pemsctl").
 * On OK writes the modification id into modification_id_out[37]. */
enum queue_action_result queue_item_retry(db_t *db, const char *item_id, const char *org_id,
                                          const char *actor_user_id,
                                          char modification_id_out[37]);

/* pending -> cancelled; its modification becomes draft. */
enum queue_action_result queue_item_cancel(db_t *db, const char *item_id, const char *org_id,
                                           const char *actor_user_id,
                                           char modification_id_out[37]);

#endif
