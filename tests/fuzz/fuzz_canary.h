/*
 * Secrets under failure: a canary secret registered with the redactor
 * (reconciler/base/log.h) before each input, and the error the input
 * produced checked after it. The canary is in the targets' dictionaries,
 * so the fuzzer puts it into bodies, messages and headers; an error
 * message (rc_error_last()) that holds it in plaintext aborts the run
 * (a finding). The canary is not a secret of anyone's: the message saying
 * where it leaked is printed without it.
 */
#ifndef RC_FUZZ_CANARY_H
#define RC_FUZZ_CANARY_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/base/error.h"
#include "reconciler/base/log.h"

#define RC_FUZZ_CANARY "fuzz-canary-7f3a9c1e5b"

static inline void rc_fuzz_canary_register(void)
{
	rc_secret_register(RC_FUZZ_CANARY);
}

/* Aborts when the current error holds the canary; what names the call. */
static inline void rc_fuzz_canary_check(const char *what)
{
	const rc_error *e = rc_error_last();

	if (e && e->message && strstr(e->message, RC_FUZZ_CANARY)) {
		fprintf(stderr, "secret leak: the error of %s holds the "
				"canary (%zu bytes)\n",
			what, strlen(e->message));
		abort();
	}
}

#endif
