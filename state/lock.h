/*
 * One lock per environment: <state>/locks/<env>.lock.
 *
 * Held with flock(LOCK_EX) on an open file for as long as the rc_lock
 * lives: the kernel releases it when the holder exits, however it dies
 * (kill -9 included), so a stale lock of a dead process is taken over
 * without any guesswork and without a race between two takers. The file
 * holds the holder's identity as JSON ({pid, host, started, run, command})
 * for the message another process shows:
 *
 *   environment 'staging' is locked by pid 4242 on host ci-7 since
 *   2026-11-22T10:00:00Z (run 5f0c...)
 */
#ifndef RC_LOCK_H
#define RC_LOCK_H

#include "reconciler/common.h"
#include "reconciler/error.h"

typedef struct rc_lock rc_lock;

/* Takes the lock of env without waiting; RC_ELOCKED (with the holder in
 * the message) when another process holds it. run_id may be NULL. */
int rc_lock_acquire(rc_lock **out, const char *state_dir, const char *env,
		    const char *run_id);
/* Releases and frees; NULL-safe. The file stays (it is reused). */
void rc_lock_release(rc_lock *l);
/* Whether some live process holds env's lock (reads without taking). */
bool rc_lock_is_held(const char *state_dir, const char *env);

#endif
