/*
 * The local driver's parts, shared by drivers/local.c (the operations),
 * drivers/local_proc.c (processes, /proc, files, health checks) and
 * drivers/local_pg.c (the PostgreSQL add-on). Not a public interface: the
 * driver is reached through rc_driver_local only.
 *
 * Ownership: functions returning char * or json_t * hand over a new
 * string or reference unless "borrowed" is said.
 */
#ifndef RC_DRIVERS_LOCAL_H
#define RC_DRIVERS_LOCAL_H

#include <jansson.h>

#include "drivers/driver.h"
#include "drivers/proc.h"
#include "reconciler/base/buf.h"

/* The ownership mark every process we start carries: what it is
 * (<project>/<env>/<service>/<replica>) and for which state directory. */
#define RC_LOCAL_OWNER_VAR "RECONCILE_OWNER"
#define RC_LOCAL_STATE_VAR "RECONCILE_STATE"
/* How long a stopped process gets between SIGTERM and SIGKILL. */
#define RC_LOCAL_STOP_GRACE_MS 10000L
/* How much of a log file an error message quotes. */
#define RC_LOCAL_TAIL_BYTES 1500
#define RC_LOCAL_TAIL_LINES 10

struct rc_driver {
	const rc_env *env; /* borrowed: valid from open to close */
	char *project;
	char *env_name;
	char *config_dir;   /* absolute */
	char *state;	    /* <state>, absolute: the scope of the mark */
	char *root;	    /* <state>/local/<env>, absolute */
	char *run_id;	    /* or NULL */
	char *owner_prefix; /* "<project>/<env>/" */
};

/* --- paths ------------------------------------------------------------ */

/* "<root>/<fmt...>" (new string). */
char *rc_local_path(const rc_driver *d, const char *fmt, ...) RC_PRINTF(2, 3);

/* Opens <root>/logs/<file> for appending (creating logs/). */
int rc_local_open_log(const rc_driver *d, const char *file, int *fd);

/* --- ports ------------------------------------------------------------ */

/* 0 when nothing else listens on port, so that the service or add-on
 * (kind and name, for the message) can; else RC_ECONFLICT with the port,
 * the program holding it and whose it is, from /proc. A process of this
 * environment (marked for this state directory) gets the stop grace to let
 * go first: it is one being stopped. */
int rc_local_port_check(const rc_driver *d, const char *kind,
			const char *name, int port);

/* --- PostgreSQL add-on (local_pg.c) ------------------------------------ */

/* The observed body of an add-on, or NULL when it is not running. */
json_t *rc_local_pg_observe(rc_driver *d, const char *name);
int rc_local_pg_apply(rc_driver *d, const rc_action *a, json_t **result);
int rc_local_pg_wait(rc_driver *d, const rc_action *a, long timeout);

#endif
