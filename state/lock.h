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

#include <jansson.h>

#include "reconciler/base/common.h"
#include "reconciler/base/error.h"

typedef struct rc_lock rc_lock;

/*
 * Takes the lock of env without waiting for a holder; RC_ELOCKED (with the
 * holder in the message) when another process holds it, or another
 * rc_lock of this process (flock() locks belong to open files). A refusal
 * is retried for 50 ms, so that the momentary shared lock of an
 * rc_lock_is_held() probe is not mistaken for a holder. run_id may be
 * NULL. env must be a file name: [A-Za-z0-9._-], not starting with '.'
 * (RC_EINVALID otherwise).
 *
 * The lock is inherited by a fork()ed child that keeps the descriptor (it
 * is close-on-exec, so a child that execs lets go).
 */
int rc_lock_acquire(rc_lock **out, const char *state_dir, const char *env,
		    const char *run_id);
/* Releases and frees; NULL-safe. The file stays (it is reused). */
void rc_lock_release(rc_lock *l);
/* Whether some live process holds env's lock (probes with a shared lock
 * that it drops at once; never takes the lock). */
bool rc_lock_is_held(const char *state_dir, const char *env);
/* The holder's identity ({pid, host, started, run, command}; new ref) when
 * some live process holds env's lock, else NULL. An empty object when the
 * holder has not written it yet. */
json_t *rc_lock_holder(const char *state_dir, const char *env);

#endif
