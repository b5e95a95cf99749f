#ifndef PEMS_SIM_STORE_H
#define PEMS_SIM_STORE_H

#include <stdbool.h>
#include <stddef.h>

/* The simulator's state and the semantics of tests/pems-sim/README.md, free of any HTTP library:
 * pems_sim.c parses a request into a sim_req and writes out the sim_reply. */

struct sim;

/* One request to a tenant's PEMS API: path is what follows /t/{tenant}, e.g. "/pfa/P1". */
struct sim_req {
    const char *method;
    const char *path;
    const char *authorization;   /* Authorization header or NULL */
    const char *api_key;         /* x-api-key header or NULL */
    const char *idem_key;        /* Idempotency-Key header or NULL */
    const char *q_version, *q_updated_since, *q_cursor, *q_limit;  /* query values or NULL */
    const char *body;
    size_t body_len;
    bool body_too_large;
    long long arrived_ns;          /* CLOCK_REALTIME ns its last bytes reached the socket
                                      (the kernel's receive stamp); 0: not known, then */
    long long waited_ns;           /* how long ago they did, to a jiffy (0: now) */
};

/* A control request under /__sim/: path is what follows /__sim, e.g. "/stats". */
struct sim_ctl {
    const char *method;
    const char *path;
    const char *tenant;          /* ?tenant=, "default" when absent */
    bool all;                    /* ?all=1 */
    const char *body;
    size_t body_len;
    bool body_too_large;
};

struct sim_reply {
    int status;                  /* 0: close the connection without an answer */
    char *body;                  /* malloc'd JSON text (or any bytes), owned by the reply */
    size_t body_len;             /* its length when it may hold NUL; 0: strlen(body) */
    char retry_after[64];        /* Retry-After header value, "" for none */
    int delay_ms;                /* wait this long before answering (faults' delayMs plus the
                                    tenant's latencyMs +/- jitterMs) */
    bool deferred;               /* after delay_ms call sim_execute (a delay-only fault, or
                                    latency: the request reaches PEMS after it) */
};

struct sim *sim_new(void);
void sim_free(struct sim *s);

void sim_request(struct sim *s, const char *tenant, const struct sim_req *rq,
                 struct sim_reply *rep);
/* Once the answer to a sim_request is queued: the request is no longer in flight. */
void sim_request_done(struct sim *s, const char *tenant);
/* Second half of a request whose reply came back deferred. */
void sim_execute(struct sim *s, const char *tenant, const struct sim_req *rq,
                 struct sim_reply *rep);
void sim_control(struct sim *s, const struct sim_ctl *rq, struct sim_reply *rep);

void sim_reply_clear(struct sim_reply *rep);

#endif
