#ifndef PEMS_UTIL_H
#define PEMS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Small rules every layer needs, each written once. */

#define UTIL_NS_PER_S 1000000000LL

/* 8-4-4-4-12 hex digits (either case) and dashes, as PostgreSQL prints a uuid. NULL: false. */
bool util_is_uuid(const char *s);

/* The value of one hex digit (either case), or -1. */
int util_hex_digit(char c);
/* len bytes as 2*len lowercase hex digits and a NUL into out (2*len+1 bytes). */
void util_hex_encode(const unsigned char *buf, size_t len, char *out);
/* Exactly 2*len hex digits of hex into len bytes of out; false (out partly written) if hex
 * is shorter, longer or holds a non-digit. */
bool util_hex_decode(const char *hex, unsigned char *out, size_t len);

/* Exactly n decimal digits at s (n <= 9), their value in *out; false on anything else. */
bool util_digits(const char *s, int n, int *out);

/* A whole decimal integer in [lo, hi]: an optional sign then digits only (no blanks). */
bool util_parse_long(const char *s, long lo, long hi, long *out);

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
long util_days_from_civil(long y, int m, int d);
/* 28..31 for month m (1..12) of year y, Gregorian leap years. */
int util_days_in_month(long y, int m);

/* Nanoseconds: a monotonic clock for durations and deadlines in this process; the wall clock
 * for instants shared with other processes and hosts (rate windows, leases). */
int64_t util_mono_ns(void);
int64_t util_wall_ns(void);
/* The same in milliseconds. */
int64_t util_mono_ms(void);
int64_t util_wall_ms(void);

/* epoch_ms (>= 0) as ISO 8601 UTC with milliseconds and Z: 2026-01-31T08:05:09.042Z */
#define UTIL_ISO_SIZE 32
void util_iso_time(char out[UTIL_ISO_SIZE], int64_t epoch_ms);

/* Writes s as a Prometheus label value: backslash, double quote and newline escaped. */
void util_label_write(FILE *out, const char *s);

#endif
