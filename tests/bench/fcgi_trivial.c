/* bench-fcgi-trivial: the API benchmark's reference (BENCHMARKS.md). A FastCGI responder that
 * does nothing but answer: accept, print a small JSON body, finish. scripts/bench runs it like
 * pemsd runs pems-fcgi (spawn-fcgi hands it the listening socket on fd 0; it preforks N
 * children that accept on it) behind a copy of the same nginx site, so the ratio of an API
 * route to it is what the route costs beyond FastCGI, nginx and TLS.
 *   bench-fcgi-trivial [CHILDREN]   (default 4) */
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static const char answer[] = "Status: 200 OK\r\nContent-Type: application/json\r\n"
                             "Cache-Control: no-store\r\nContent-Length: 11\r\n\r\n"
                             "{\"ok\":true}";

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
}

static int serve(void)
{
    FCGX_Request fr;
    if (FCGX_Init() != 0 || FCGX_InitRequest(&fr, 0, FCGI_FAIL_ACCEPT_ON_INTR) != 0)
        return 1;
    while (!stopping && FCGX_Accept_r(&fr) >= 0) {
        FCGX_PutStr(answer, (int)sizeof answer - 1, fr.out);
        FCGX_Finish_r(&fr);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 4;
    if (n < 1 || n > 256) {
        fputs("usage: bench-fcgi-trivial [CHILDREN 1..256]\n", stderr);
        return 2;
    }
    struct sigaction sa = { .sa_handler = on_stop };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    pid_t kids[256];
    for (int i = 0; i < n; i++) {
        kids[i] = fork();
        if (kids[i] == 0)
            return serve();
        if (kids[i] < 0) {
            perror("bench-fcgi-trivial: fork");
            n = i;
            stopping = 1;
            break;
        }
    }
    while (!stopping && wait(NULL) > 0)
        ;
    for (int i = 0; i < n; i++)
        kill(kids[i], SIGTERM);
    while (wait(NULL) > 0)
        ;
    return 0;
}
