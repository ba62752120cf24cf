/*
 * Times as reconcile writes them (journals, locks, registries) and reads
 * them (those, and the platforms' timestamps): RFC 3339.
 */
#ifndef RC_TIME_H
#define RC_TIME_H

#include <stdbool.h>
#include <time.h>

/* Room for "YYYY-MM-DDTHH:MM:SS.mmmZ" and its NUL. */
#define RC_TIME_SIZE 32

/* The current time, RFC 3339 UTC with milliseconds. */
void rc_time_now(char out[RC_TIME_SIZE]);
/* secs (Unix) for people: "2026-11-22 10:00:00 UTC". */
void rc_time_utc(char out[RC_TIME_SIZE], long long secs);
/* Parses an RFC 3339 date-time ("2026-11-22T10:00:00Z", with optional
 * fraction and numeric offset); false when s is not one. */
bool rc_time_parse(const char *s, struct timespec *out);

#endif
