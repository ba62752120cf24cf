/*
 * Crash points, for the crash sweep (tests/crash/) only. A build with the
 * CMake option RECONCILE_CRASH_POINTS has rc_crashpoint() read two
 * variables the first time it is reached:
 *
 *   RECONCILE_CRASH_AT=KIND:N   KIND is a point's name ("journal",
 *                               "http") or "any"; the process kills
 *                               itself with SIGKILL at the Nth point of
 *                               that kind it passes (counted from 1)
 *   RECONCILE_CRASH_LOG=FILE    each point passed is appended to FILE as
 *                               "N KIND K" (N overall, K of its kind), the
 *                               one it dies at with " kill" after it
 *
 * Without the option rc_crashpoint() is an empty inline function and the
 * variables mean nothing.
 */
#ifndef RC_CRASHPOINT_H
#define RC_CRASHPOINT_H

#ifdef RECONCILE_CRASH_POINTS
/* Counts the point named where; dies there when it is the chosen one. */
void rc_crashpoint(const char *where);
#else
static inline void rc_crashpoint(const char *where)
{
	(void)where;
}
#endif

#endif
