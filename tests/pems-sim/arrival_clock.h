#ifndef PEMS_SIM_ARRIVAL_CLOCK_H
#define PEMS_SIM_ARRIVAL_CLOCK_H

#include <sys/types.h>

/* Receive timestamps of a connection's socket (arrival_clock.c). */
void arrival_clock_watch(int fd);    /* a new connection: ask the kernel for its stamps */
void arrival_clock_forget(int fd);   /* its connection closed */
/* CLOCK_REALTIME ns when the last bytes read from fd reached its socket; 0: not known */
long long arrival_clock_last(int fd);

#endif
