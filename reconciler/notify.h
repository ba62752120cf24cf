/*
 * Notifications: the `notify:` targets of reconcile.yaml told what
 * reconcile did, from a background thread, so that a slow or dead endpoint
 * never holds up an apply or the controller's loop.
 *
 * rc_notifier_send() builds one request per target that wants the event
 * (its events and environments filters) and queues it; it never blocks
 * on the network. A bounded queue (RC_NOTIFY_QUEUE) drops what does not
 * fit, with a warning. One thread sends, in order: a 5xx, a 429, a
 * timeout or a connection error is retried with exponential backoff and
 * jitter (a Retry-After is respected, up to a minute), up to
 * RC_NOTIFY_ATTEMPTS attempts in all, and a notification given up is
 * logged once. Another 4xx is not retried.
 *
 * The URLs are secrets: read when the notifier is made, registered with
 * the redactor at once, never in a log line, an error or a payload.
 * Payloads carry names, counts and error texts (redacted), never a value.
 *
 * The controller keeps one notifier for its life and sends drift and
 * waiting itself: RC_NOTIFY_DRIFT with the drifted resources' keys in
 * changes, RC_NOTIFY_WAITING with the plan's id and its changes. The
 * engine sends applied, failed and rolled_back at the end of every apply
 * (rc_engine_apply) through the notifier it is given
 * (rc_engine_opts.notifier) or one of its own, flushed when it is freed.
 */
#ifndef RC_NOTIFY_H
#define RC_NOTIFY_H

#include <jansson.h>

#include "reconciler/base/common.h"
#include "schema/model.h"

#define RC_NOTIFY_QUEUE 256
#define RC_NOTIFY_ATTEMPTS 5
#define RC_NOTIFY_BACKOFF_BASE_MS 500L
#define RC_NOTIFY_BACKOFF_CAP_MS 30000L
#define RC_NOTIFY_RETRY_AFTER_CAP_MS 60000L
#define RC_NOTIFY_TIMEOUT_MS 10000L  /* per attempt */
#define RC_NOTIFY_FLUSH_MS 10000L    /* what a CLI run waits at its end */
#define RC_NOTIFY_MAX_CHANGES 20     /* listed in a payload; the rest
					counted */

/* One event. Every string is borrowed for the call and may be NULL. */
typedef struct {
	rc_notify_event_kind kind;
	const char *project;
	const char *environment;
	const char *entry;       /* the generator entry that made the
				    environment, for the filters; or NULL */
	const char *commit;
	const char *run_id;
	const char *plan_id;     /* waiting: the plan to approve */
	const char *summary;     /* a short line: "2 changes: 1 create,
				    1 update" */
	const char *const *changes; /* "update staging/service/web", ... */
	size_t nchanges;
	const char *error;       /* failed: what went wrong */
} rc_notify_event;

typedef struct rc_notifier rc_notifier;

typedef struct {
	uint64_t sent;    /* delivered (a 2xx reply) */
	uint64_t retries; /* attempts after a first one */
	uint64_t failed;  /* given up */
	uint64_t dropped; /* not queued: the queue was full */
} rc_notify_stats;

/* A notifier for cfg's notify: targets ({file:} references are read
 * under config_dir). A target whose URL cannot be read is left out with a
 * warning (the apply goes on). *out is NULL when cfg has no target.
 * Starts the sending thread. */
int rc_notifier_new(rc_notifier **out, const rc_config *cfg,
		    const char *config_dir);
/* Queues ev for every target that wants it; never blocks on the network.
 * n may be NULL (nothing to do). */
void rc_notifier_send(rc_notifier *n, const rc_notify_event *ev);
/* Waits until everything queued was delivered or given up, at most
 * timeout_ms; 0 when it was, RC_ETIMEOUT (logged with what is pending)
 * when not. */
int rc_notifier_flush(rc_notifier *n, long timeout_ms);
void rc_notifier_stats(rc_notifier *n, rc_notify_stats *out);
/* The same summed over every notifier since the process started. */
void rc_notify_totals(rc_notify_stats *out);
/* Stops the thread; what is still queued is dropped, a request in flight
 * is left to finish on its own (a detached thread that frees what it
 * holds), so this never waits on the network. */
void rc_notifier_free(rc_notifier *n);

/* ---- the parts, for tests ---- */

/* The one-line text: "[shop] staging: applied a1b2c3d (run R): 2
 * changes: ..." (new string, redacted). */
char *rc_notify_text(const rc_notify_event *ev);
/* The body posted to a target of kind k (new ref): Slack's {"text",
 * "blocks"}, or the generic object {"event", "project", "environment",
 * "commit", "run_id", "plan_id", "summary", "changes", "error", "text",
 * "time"}. */
json_t *rc_notify_payload(rc_notify_kind k, const rc_notify_event *ev);
/* Whether an attempt that ended with rc (rc_http_do) and status is worth
 * another: a connection error or timeout, a 429, a 5xx. */
bool rc_notify_retryable(int rc, long status);
/* The wait before attempt `attempt` + 1 (attempt >= 1 made so far): a
 * Retry-After value when given and readable (capped), else exponential
 * from RC_NOTIFY_BACKOFF_BASE_MS, capped, with jitter from rnd: between
 * half and all of it. */
long rc_notify_backoff_ms(int attempt, const char *retry_after, uint32_t rnd);

#endif
