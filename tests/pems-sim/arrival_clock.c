/* The simulator's arrival clock: when each connection's last bytes reached the socket, to the
 * nanosecond. Every accepted socket asks the kernel for receive timestamps (SO_TIMESTAMPNS,
 * socket(7); tcp(7) hands them out on recvmsg since Linux 4.13), and this file's recv() —
 * which libmicrohttpd's reads resolve to, the program's own symbol coming before libc's —
 * reads through recvmsg and keeps the stamp of the last data read, per descriptor. TCP_INFO's
 * tcpi_last_data_recv, the fallback, counts jiffies (4 ms at CONFIG_HZ=250). */
#include "arrival_clock.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#define MAX_FD 65536

static _Atomic long long last_rx_ns[MAX_FD];

void arrival_clock_watch(int fd)
{
    if (fd < 0 || fd >= MAX_FD)
        return;
    atomic_store(&last_rx_ns[fd], 0);
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
}

void arrival_clock_forget(int fd)
{
    if (fd >= 0 && fd < MAX_FD)
        atomic_store(&last_rx_ns[fd], 0);
}

long long arrival_clock_last(int fd)
{
    return fd >= 0 && fd < MAX_FD ? atomic_load(&last_rx_ns[fd]) : 0;
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } ctrl;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.buf,
                          .msg_controllen = sizeof ctrl.buf };
    ssize_t n = recvmsg(fd, &msg, flags);
    if (n <= 0 || fd < 0 || fd >= MAX_FD)
        return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            atomic_store(&last_rx_ns[fd], (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
        }
    }
    return n;
}
