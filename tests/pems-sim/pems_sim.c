/* pems-sim: the PEMS simulator (tests/pems-sim/README.md), an HTTP server on loopback
 * (or a test rig's own link).
 *
 * Why libmicrohttpd with a thread per connection (the default): each connection gets a
 * thread that blocks in read/write without any event plumbing, so a tenant's latencyMs
 * and a fault's delayMs simply sleep in that thread: a delayed request never holds up
 * another one, of its tenant or of any other (HTTP/1.1 answers one request at a time per
 * connection, so requests in flight at once come on as many connections). The state lives
 * in sim_store.c behind one mutex per tenant, held only for the in-memory work
 * (microseconds), never across a sleep, so tenants never wait on each other and one tenant
 * scales to several thousand requests per second. `--threads N` switches to a pool of N
 * epoll threads instead (for many idle connections, no latency): a sleeping request then
 * holds one of those threads, so latency serializes beyond N requests in flight.
 */
#include "arrival_clock.h"
#include "sim_store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY (8u * 1024 * 1024)

struct conn_ctx {
    char *body;
    size_t len, cap;
    bool too_large;
};

static bool verbose;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static int append_body(struct conn_ctx *ctx, const char *data, size_t n)
{
    if (ctx->too_large || ctx->len + n > MAX_BODY) {
        ctx->too_large = true;
        return 0;
    }
    if (ctx->len + n + 1 > ctx->cap) {
        size_t cap = ctx->cap ? ctx->cap : 1024;
        while (cap < ctx->len + n + 1)
            cap *= 2;
        char *b = realloc(ctx->body, cap);
        if (!b)
            return -1;
        ctx->body = b;
        ctx->cap = cap;
    }
    memcpy(ctx->body + ctx->len, data, n);
    ctx->len += n;
    ctx->body[ctx->len] = '\0';
    return 0;
}

static enum MHD_Result send_reply(struct MHD_Connection *c, struct sim_reply *rep)
{
    if (rep->status == 0)
        return MHD_NO;   /* drops the connection: the client sees a transport error */
    const char *body = rep->body ? rep->body : "{}";
    size_t len = rep->body && rep->body_len ? rep->body_len : strlen(body);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (rep->retry_after[0])
        MHD_add_response_header(r, "Retry-After", rep->retry_after);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned int)rep->status, r);
    MHD_destroy_response(r);
    return ret;
}

static const char *query(struct MHD_Connection *c, const char *key)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
}

static const char *header(struct MHD_Connection *c, const char *key)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, key);
}

static int connection_fd(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

/* A request is counted as arriving when its last bytes reached the socket, not when its
 * thread got to it (on a loaded machine tens of ms later): the kernel's receive stamp
 * (arrival_clock.c), else how long ago TCP_INFO says data last came (a jiffy's resolution). */
static int64_t since_last_data_ns(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return 0;
    return (int64_t)ti.tcpi_last_data_recv * 1000000LL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)socket_context;
    int fd = connection_fd(c);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        arrival_clock_watch(fd);
    else
        arrival_clock_forget(fd);
}

static enum MHD_Result tenant_request(struct sim *s, struct MHD_Connection *c,
                                      const char *url, const char *method,
                                      struct conn_ctx *ctx)
{
    const char *name = url + 3;                 /* after "/t/" */
    const char *slash = strchr(name, '/');
    size_t n = slash ? (size_t)(slash - name) : strlen(name);
    struct sim_reply rep = {0};
    if (n == 0 || n > 128) {
        rep.status = 404;
        rep.body = strdup("{\"error\":\"unknown tenant path\",\"status\":404}");
        enum MHD_Result ret = send_reply(c, &rep);
        sim_reply_clear(&rep);
        return ret;
    }
    char tenant[129];
    memcpy(tenant, name, n);
    tenant[n] = '\0';
    struct sim_req rq = {
        .method = method,
        .path = slash ? slash : "",
        .authorization = header(c, MHD_HTTP_HEADER_AUTHORIZATION),
        .api_key = header(c, "x-api-key"),
        .idem_key = header(c, "Idempotency-Key"),
        .q_version = query(c, "version"),
        .q_updated_since = query(c, "updatedSince"),
        .q_cursor = query(c, "cursor"),
        .q_limit = query(c, "limit"),
        .body = ctx->body,
        .body_len = ctx->len,
        .body_too_large = ctx->too_large,
    };
    struct timespec arrived;
    clock_gettime(CLOCK_REALTIME, &arrived);
    int fd = connection_fd(c);
    rq.arrived_ns = arrival_clock_last(fd);
    rq.waited_ns = rq.arrived_ns ? 0 : since_last_data_ns(fd);
    int64_t at_ns = rq.arrived_ns ? rq.arrived_ns
        : (int64_t)arrived.tv_sec * 1000000000LL + arrived.tv_nsec - rq.waited_ns;
    arrived.tv_sec = (time_t)(at_ns / 1000000000LL);
    arrived.tv_nsec = (long)(at_ns % 1000000000LL);
    sim_request(s, tenant, &rq, &rep);
    if (rep.delay_ms > 0)
        sleep_ms(rep.delay_ms);
    if (rep.deferred)
        sim_execute(s, tenant, &rq, &rep);
    if (verbose) {
        /* arrival time and client address: which host sent what when (scripts/cluster) */
        char from[INET_ADDRSTRLEN] = "?";
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, from,
                      sizeof from);
        fprintf(stderr, "pems-sim: %s %s tenant=%s status=%d arrived=%lld.%06ld from=%s\n",
                method, url, tenant, rep.status, (long long)arrived.tv_sec,
                arrived.tv_nsec / 1000, from);
    }
    enum MHD_Result ret = send_reply(c, &rep);
    sim_reply_clear(&rep);
    sim_request_done(s, tenant);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    struct sim *s = cls;
    struct conn_ctx *ctx = *con_cls;
    (void)version;
    if (!ctx) {
        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
            return MHD_NO;
        *con_cls = ctx;
        return MHD_YES;
    }
    if (*upload_size) {
        if (append_body(ctx, upload, *upload_size) != 0)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (strncmp(url, "/t/", 3) == 0)
        return tenant_request(s, c, url, method, ctx);

    struct sim_reply rep = {0};
    if (strncmp(url, "/__sim/", 7) == 0) {
        const char *tenant = query(c, "tenant"), *all = query(c, "all");
        struct sim_ctl rq = {
            .method = method,
            .path = url + 6,
            .tenant = tenant ? tenant : "default",
            .all = all && (strcmp(all, "1") == 0 || strcmp(all, "true") == 0),
            .body = ctx->body,
            .body_len = ctx->len,
            .body_too_large = ctx->too_large,
        };
        sim_control(s, &rq, &rep);
        if (verbose)
            fprintf(stderr, "pems-sim: %s %s status=%d\n", method, url, rep.status);
    } else if (strcmp(url, "/health") == 0) {
        rep.status = 200;
        rep.body = strdup("{\"status\":\"ok\"}");
    } else {
        rep.status = 404;
        rep.body = strdup("{\"error\":\"not found\",\"status\":404}");
    }
    enum MHD_Result ret = send_reply(c, &rep);
    sim_reply_clear(&rep);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct conn_ctx *ctx = *con_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (ctx) {
        free(ctx->body);
        free(ctx);
        *con_cls = NULL;
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: pems-sim --port N [--host 127.0.0.1] [--threads N] [--verbose]\n"
               "  --port 0 picks a free port; the port is printed on stdout as 'port=N'\n"
               "  --threads 0 (default): a thread per connection; N > 0: a pool of N\n"
               "    (latencyMs/delayMs then hold a pool thread: keep 0 to simulate latency)\n");
}

int main(int argc, char **argv)
{
    long port = -1, threads = 0;
    const char *host = "127.0.0.1";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "--port") == 0 || strcmp(a, "-p") == 0) && i + 1 < argc) {
            port = strtol(argv[++i], NULL, 10);
        } else if (strcmp(a, "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(a, "--threads") == 0 && i + 1 < argc) {
            threads = strtol(argv[++i], NULL, 10);
        } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            verbose = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (port < 0 || port > 65535 || threads < 0 || threads > 256) {
        usage(stderr);
        return 2;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    /* one address, never the wildcard: loopback, or a test rig's own link (scripts/cluster
     * runs it in a network namespace on a veth address) */
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1 || addr.sin_addr.s_addr == htonl(INADDR_ANY)) {
        fprintf(stderr, "pems-sim: --host must be one IPv4 address (loopback or a test link), not %s\n", host);
        return 2;
    }

    /* block the stop signals in every thread; main waits for them with sigwait */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    json_object_seed(0);

    struct sim *s = sim_new();
    if (!s)
        return 1;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (threads == 0)
        flags |= MHD_USE_THREAD_PER_CONNECTION;
    else
        flags |= MHD_USE_EPOLL;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)1000,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
        threads > 0 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (unsigned int)threads,
        MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "pems-sim: cannot listen on %s:%ld: %s\n", host, port, strerror(errno));
        sim_free(s);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned int bound = info ? info->port : (unsigned int)port;
    printf("port=%u\n", bound);
    fflush(stdout);
    fprintf(stderr, "pems-sim: listening on http://%s:%u (%s)\n", host, bound,
            threads ? "thread pool" : "thread per connection");

    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "pems-sim: signal %d, stopping\n", sig);
    MHD_stop_daemon(d);
    sim_free(s);
    return 0;
}
