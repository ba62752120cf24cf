/*
 * One error type for all of reconcile (after libgit2's git_error).
 *
 * Functions return 0 on success or a negative RC_E* code, and leave the
 * details in a per-thread error read with rc_error_last(). A lower layer's
 * error is never overwritten by the caller: use rc_error_set() only where
 * the failure starts, and rc_error_prefix() to add context on the way up.
 */
#ifndef RC_ERROR_H
#define RC_ERROR_H

#include "reconciler/base/common.h"

typedef enum {
	RC_OK = 0,
	RC_ERROR = -1,     /* generic failure */
	RC_ENOTFOUND = -3, /* a file, object or resource does not exist */
	RC_EEXISTS = -4,
	RC_ETOOBIG = -5,   /* a capped buffer or a limit was exceeded */
	RC_EINVALID = -6,  /* bad input: configuration, arguments, a reply */
	RC_ELOCKED = -7,
	RC_ECONFLICT = -8,
	RC_EAUTH = -9,
	RC_ETIMEOUT = -10,
	RC_EUNSUPPORTED = -11,
	RC_EUNREACHABLE = -12 /* a platform endpoint stopped answering:
				 the request was not sent (drivers/http.h) */
} rc_error_code;

typedef enum {
	RC_ECLASS_NONE = 0,
	RC_ECLASS_OS,      /* system calls, files */
	RC_ECLASS_NOMEMORY,
	RC_ECLASS_CONFIG,  /* the user's configuration: carries a location */
	RC_ECLASS_YAML,
	RC_ECLASS_JSON,
	RC_ECLASS_GIT,
	RC_ECLASS_HTTP,
	RC_ECLASS_PLATFORM, /* an error a platform API returned */
	RC_ECLASS_STATE,    /* journal, locks, history */
	RC_ECLASS_INTERNAL
} rc_error_class;

/* A position in a configuration file; line and col are 1-based, 0 = none. */
typedef struct {
	const char *file; /* borrowed: interned by the loader */
	int line;
	int col;
} rc_loc;

typedef struct {
	int code;
	rc_error_class klass;
	char *message;
	rc_loc loc;
} rc_error;

/* Sets the thread's error; returns code so that `return rc_error_set(...)`
 * reads naturally. */
int rc_error_set(int code, rc_error_class klass, const char *fmt, ...)
	RC_PRINTF(3, 4);
int rc_error_set_at(int code, rc_loc loc, const char *fmt, ...)
	RC_PRINTF(3, 4);
/* Sets an RC_ECLASS_OS error and appends strerror(errno). */
int rc_error_set_os(const char *fmt, ...) RC_PRINTF(1, 2);
/* Prefixes the current message with "<context>: ". */
void rc_error_prefix(const char *fmt, ...) RC_PRINTF(1, 2);
/* The last error of this thread, or NULL; borrowed. */
const rc_error *rc_error_last(void);
void rc_error_clear(void);
const char *rc_error_class_name(rc_error_class klass);

#endif
