/*
 * The Heroku driver's connection and records: the Platform API client
 * (the key, the base URL, the rate budget, errors turned into advice,
 * paged account-wide lists fetched once per run) and the records of what
 * reconcile owns under <state>/heroku/. drivers/heroku.c uses both;
 * nothing here knows a resource.
 *
 * Threads: one rc_heroku_api is shared by every environment of a run
 * (observe runs for several environments at once, apply from several
 * workers); what it holds is guarded by its mutex.
 *
 * Ownership: json_t * results are new references unless "borrowed".
 */
#ifndef RC_DRIVERS_HEROKU_API_H
#define RC_DRIVERS_HEROKU_API_H

#include <jansson.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "drivers/http.h"

/* The account's budget (RC_HEROKU_TOKENS, schema/model.h) is refilled at
 * 75 tokens a minute. */
#define RC_HEROKU_REFILL_PER_MIN 75

typedef void (*rc_heroku_note_fn)(void *arg, const char *env,
				  const char *note);

typedef struct {
	char *key;      /* the API key (a secret) */
	char *key_from; /* "HEROKU_API_KEY" or the netrc file's path */
	char *base_url;
	char *registry_url; /* HEROKU_REGISTRY_URL, or NULL */

	pthread_mutex_t mu; /* guards what follows */
	rc_http *http;      /* made at the first request (rc_heroku_http) */
	int reserve;        /* tokens kept for people and other jobs: the
			       largest target.rate_reserve of the run's
			       environments opened before the first request,
			       else RC_HEROKU_RESERVE */
	bool reserve_set;
	long long noted_ms; /* of the client's waits, already reported */
	rc_heroku_note_fn note;
	void *note_arg;
	/* account-wide lists, fetched once per run (NULL until then) */
	json_t *apps, *addons, *couplings, *pipelines;
	bool stale; /* something was applied since they were fetched */
	pthread_mutex_t lists_mu; /* one fetch at a time */
	/* the records under <state>/heroku/ (heroku_state.c), guarded by
	 * state_mu: the document as last read or written (never changed in
	 * place: an update changes a copy), the state directory it is of,
	 * and the identity then (device, inode, size, mtime) of the apps
	 * directory and of the pipelines' file, so that they are read again
	 * only when another process changed them */
	pthread_mutex_t state_mu;
	json_t *state_doc;
	char *state_file;
	struct stat state_st, state_dir_st;
	bool state_dir_there, state_pipes_there;
	void *oci; /* the registry client (drivers/oci.h), or NULL */
	/* images (heroku.c), guarded by img_mu: the repository of the
	 * Heroku registry that holds each manifest digest put in this run
	 * (held), and the digests being copied from their own registry now
	 * (copying; img_cv tells when one ends), so that apps released
	 * together copy a new image once and then mount it, in parallel */
	pthread_mutex_t img_mu;
	pthread_cond_t img_cv;
	json_t *held, *copying;
	/* apps that released in this run (names -> true) and their state
	 * directory, guarded by mu: their cached released_at is refreshed
	 * from one GET /apps when the run ends (heroku.c) */
	json_t *released;
	char *released_state_dir;
} rc_heroku_api;

/*
 * The client of a run (the driver's shared state). The key:
 * HEROKU_API_KEY, else the password of `machine api.heroku.com` (else
 * `default`) in $NETRC or ~/.netrc; RC_EAUTH naming both when there is
 * none. HEROKU_API_URL replaces https://api.heroku.com (http:// only for
 * a loopback host); HEROKU_REGISTRY_URL the registry's URL. note (may be
 * NULL) receives the plan notes.
 */
int rc_heroku_api_open(rc_heroku_api **out, rc_heroku_note_fn note,
		       void *note_arg);
void rc_heroku_api_free(rc_heroku_api *a);
/* An environment's target.rate_reserve (-1: unset), before the first
 * request. */
void rc_heroku_api_reserve(rc_heroku_api *a, int reserve);

/* The HTTP client (made at the first call); borrowed. */
int rc_heroku_http(rc_heroku_api *a, rc_http **out);

/* A reply: status, JSON body (or NULL), the Request-Id and the API's error
 * id and message (borrowed from json), attempts. */
typedef struct {
	long status;
	json_t *json;
	char *request_id;
	char *range_next; /* Next-Range, for paging */
	int attempts;
	char *retry_after;
	char *date; /* the Date header: when the server answered */
} rc_heroku_reply;

void rc_heroku_reply_release(rc_heroku_reply *r);

/*
 * Sends one request (body: a JSON value, or NULL; range: a Range header
 * value, or NULL) within the rate budget: the client (drivers/http.c)
 * reads RateLimit-Remaining from every reply and, once the estimate is at
 * the reserve, waits for the refill (75 a minute) before the next
 * attempt; the waits are reported by rc_heroku_note_wait(). 0 whenever a
 * reply came (any status); a negative code from the transport otherwise.
 * The body is never logged.
 */
int rc_heroku_call(rc_heroku_api *a, const char *method, const char *path,
		   const json_t *body, const char *range, bool idempotent,
		   rc_heroku_reply *out);

/*
 * Sets the error of a failed reply, with advice: 401 (the key: where it
 * came from), 403 (the account's role; team names the team when there is
 * one), 404, 422 (at loc when given: the line of the configuration it
 * concerns), 429 (when tokens return), 5xx (after the retries), with the
 * API's message and the Request-Id. what names the call ("create app
 * 'joplin-staging'"). Returns the code.
 */
int rc_heroku_fail(rc_heroku_api *a, const rc_heroku_reply *r,
		   const char *what, const char *team, rc_loc loc);

/* A 2xx reply's JSON or an error (above); *out borrowed from r. */
int rc_heroku_expect(rc_heroku_api *a, const rc_heroku_reply *r,
		     const char *what, rc_loc loc, json_t **out);

/* Every element of a list (GET path, paged with Range: id ..; max=1000
 * and Next-Range) as one array (new ref). */
int rc_heroku_list(rc_heroku_api *a, const char *path, const char *what,
		   json_t **out);
/* The same, with *date the time the server answered the first page (its
 * Date header; 0 when it sent none). */
int rc_heroku_list_dated(rc_heroku_api *a, const char *path,
			 const char *what, json_t **out, time_t *date);

/* The account-wide lists (borrowed; valid until rc_heroku_api_put), each
 * fetched once per run: /apps, /addons, /pipeline-couplings; and
 * /pipelines when pipelines is asked for. */
int rc_heroku_lists(rc_heroku_api *a, bool pipelines);

/* Reports the time spent waiting for tokens since the last report, through
 * the note callback (or the log). */
void rc_heroku_note_wait(rc_heroku_api *a, const char *env);

/* Frees the registry client (drivers/oci.h) a->oci holds (heroku.c). */
void rc_heroku_oci_free(void *oci);

/* --- records (heroku_state.c) ------------------------------------------ */

/*
 * In memory, one document:
 *   {"version": 1,
 *    "apps": {NAME: {"id", "project", "env", "created_at", "pending",
 *                    "config": {KEY: {"secret": bool}},
 *                    "images": {TYPE: {"ref", "id", "digest", "repo"}},
 *                    "addons": {NAME: {"id", "name"}},
 *                    "cache": {"released_at", "updated_at",
 *                              "keys": [...], "body": {...},
 *                              "deployed": {TYPE: short id}}}},
 *    "pipelines": {NAME: {"id", "project"}}}
 * On disk, a file per app, <state>/heroku/apps/NAME.json =
 * {"version": 1, "record": {...}}, and <state>/heroku/pipelines.json =
 * {"version": 1, "pipelines": {...}}: an update writes only the records
 * it changed.
 * No value of a secret is ever in it (secret config vars are cached as
 * their hashes). A file that cannot be read or has another version is
 * set aside (the cache dropped; ownership then needs policy.adopt).
 */
#define RC_HEROKU_STATE_VERSION 1

/* The records (new ref; an empty document when there are none). */
json_t *rc_heroku_state_load(rc_heroku_api *a, const char *state_dir);

/* Changes the records: under the process's mutex and an flock on
 * <state>/heroku/apps.lock, reads them again when another process changed
 * them since this one last read or wrote them (the apps directory's or
 * the pipelines' file's inode, size or mtime differ), calls fn(doc, ctx)
 * on a copy and, when it returns > 0, writes the records it changed
 * atomically (a temporary file, fsync, rename) before returning: a record
 * written by an update is on disk before the platform call it protects.
 * fn's result otherwise (< 0: its error). rc_heroku_state_load() hands out
 * the document kept in memory (a new reference that must not be changed),
 * read again only when the files changed.
 *
 * The copy fn gets is shallow: its root and its "apps" and "pipelines"
 * maps are its own, every record in them is still shared with readers.
 * So fn adds, replaces and deletes entries of those maps freely, but
 * changes an app's record only through rc_heroku_state_app(). An update
 * costs a map of pointers, not a copy of every app's record. */
typedef int (*rc_heroku_state_fn)(json_t *doc, void *ctx);
int rc_heroku_state_update(rc_heroku_api *a, const char *state_dir,
			   rc_heroku_state_fn fn, void *ctx);
/* Inside an update: app's record in doc, made fn's own (a copy replaces
 * the shared one), or NULL when there is none. */
json_t *rc_heroku_state_app(json_t *doc, const char *app);

#endif
