#ifndef PEMS_STEP_H
#define PEMS_STEP_H

#include "db.h"

/* The return type of every step of the worker, one set for all of them (nginx's
 * NGX_OK/AGAIN/DONE/DECLINED): >= 0 what happened, < 0 the database failed (a db_status:
 * the lane fails when its data was refused, else the run does). A step that also counts
 * (what it planned, what it collected) says so through an out-parameter, never through its
 * return value. */
enum step {
    STEP_OK = 0,          /* did what was asked */
    STEP_AGAIN = 1,       /* more to do: another request is planned, or call again later */
    STEP_DONE = 2,        /* finished: nothing left */
    STEP_DECLINED = 3,    /* not this worker's: another holds it, or nothing is configured */
    STEP_UNAVAILABLE = DB_UNAVAILABLE,
    STEP_ERROR = DB_ERROR
};

#endif
