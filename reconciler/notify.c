/* Notifications sent from a background thread (see notify.h). */
#include "reconciler/base/common.h"
#include "reconciler/notify.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/log.h"
#include "reconciler/base/rctime.h"
#include "drivers/http.h"
#include "schema/secrets.h"

#include <pthread.h>
#include <stdatomic.h>

/* every notifier's counts since the process started (the controller's
   metrics: its notifiers come and go with commits) */
static atomic_ulong totals_sent, totals_retries, totals_failed,
	totals_dropped;

void rc_notify_totals(rc_notify_stats *out)
{
	out->sent = atomic_load(&totals_sent);
	out->retries = atomic_load(&totals_retries);
	out->failed = atomic_load(&totals_failed);
	out->dropped = atomic_load(&totals_dropped);
}

typedef struct {
	rc_http *http;
	char *url;
} target;

typedef struct {
	size_t target;
	char *body;
	char *what; /* "applied for staging", for the log */
} item;

struct rc_notifier {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	rc_notify_target *f; /* per target: name, kind, events and
				environments (no url) */
	target *t;
	size_t nt;
	item q[RC_NOTIFY_QUEUE];
	size_t head, len;
	bool busy;     /* the thread holds an item */
	bool stop;     /* rc_notifier_free was called */
	bool detached; /* ... while a request was in flight: the thread
			  frees the notifier */
	bool dropping; /* the last send found the queue full (warned) */
	uint32_t rnd;
	rc_notify_stats st;
};

/* ---- payloads ---- */

static const char *const verbs[] = {"applied", "apply failed",
				    "drift detected", "waiting for approval",
				    "rolled back"};

/* s redacted (new string), NULL for NULL. */
static char *redacted(const char *s, size_t max)
{
	rc_buf b = RC_BUF_INIT_MAX(1 << 16);

	if (!s)
		return NULL;
	rc_buf_puts(&b, s);
	rc_redact(&b);
	if (max && b.len > max) {
		rc_buf_truncate(&b, max);
		rc_buf_puts(&b, "...");
	}
	return rc_buf_detach(&b);
}

char *rc_notify_text(const rc_notify_event *ev)
{
	rc_buf b = RC_BUF_INIT_MAX(4096);
	const char *verb = (size_t)ev->kind < RC_ARRAY_SIZE(verbs)
				   ? verbs[ev->kind]
				   : "event";
	char *err = NULL;

	if (ev->project)
		rc_buf_printf(&b, "[%s] ", ev->project);
	rc_buf_printf(&b, "%s: %s", ev->environment ? ev->environment : "-",
		      verb);
	if (ev->commit)
		rc_buf_printf(&b, " at %.7s", ev->commit);
	if (ev->run_id)
		rc_buf_printf(&b, " (run %s)", ev->run_id);
	if (ev->plan_id)
		rc_buf_printf(&b, " (plan %.19s)", ev->plan_id);
	if (ev->summary)
		rc_buf_printf(&b, ": %s", ev->summary);
	if (ev->error) {
		/* the first line, short */
		size_t n = strcspn(ev->error, "\n");
		char *first = rc_strndup(ev->error, n);

		err = redacted(first, 300);
		free(first);
		rc_buf_printf(&b, ": %s", err);
	}
	free(err);
	rc_redact(&b);
	return rc_buf_detach(&b);
}

static json_t *str_or_null(const char *s)
{
	char *r = redacted(s, 0);
	json_t *j = r ? json_string(r) : json_null();

	free(r);
	return j ? j : json_null();
}

static json_t *changes_json(const rc_notify_event *ev, size_t *omitted)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < ev->nchanges && i < RC_NOTIFY_MAX_CHANGES; i++)
		json_array_append_new(a, str_or_null(ev->changes[i]));
	*omitted = ev->nchanges - i;
	return a;
}

json_t *rc_notify_payload(rc_notify_kind k, const rc_notify_event *ev)
{
	char *text = rc_notify_text(ev), now[RC_TIME_SIZE];
	json_t *o = json_object(), *changes;
	size_t omitted;

	json_object_set_new(o, "text", json_string(text));
	free(text);
	changes = changes_json(ev, &omitted);
	if (k == RC_NOTIFY_SLACK) {
		/* the line, then what changed as a list */
		rc_buf b = RC_BUF_INIT_MAX(1 << 16);
		size_t i;
		json_t *v;

		if (!json_array_size(changes)) {
			json_decref(changes);
			return o;
		}
		json_array_foreach(changes, i, v)
			rc_buf_printf(&b, "%s• `%s`", i ? "\n" : "",
				      json_string_value(v));
		if (omitted)
			rc_buf_printf(&b, "\n… and %zu more", omitted);
		json_object_set_new(
			o, "blocks",
			json_pack("[{s:s, s:{s:s, s:O}}, {s:s, s:{s:s, s:s}}]",
				  "type", "section", "text", "type", "mrkdwn",
				  "text", json_object_get(o, "text"), "type",
				  "section", "text", "type", "mrkdwn", "text",
				  b.ptr));
		rc_buf_release(&b);
		json_decref(changes);
		return o;
	}
	rc_time_now(now);
	json_object_set_new(o, "event",
			    json_string(rc_notify_event_name(ev->kind)));
	json_object_set_new(o, "project", str_or_null(ev->project));
	json_object_set_new(o, "environment", str_or_null(ev->environment));
	json_object_set_new(o, "commit", str_or_null(ev->commit));
	json_object_set_new(o, "run_id", str_or_null(ev->run_id));
	json_object_set_new(o, "plan_id", str_or_null(ev->plan_id));
	json_object_set_new(o, "summary", str_or_null(ev->summary));
	json_object_set_new(o, "changes", changes);
	json_object_set_new(o, "changes_omitted", json_integer((json_int_t)omitted));
	json_object_set_new(o, "error", str_or_null(ev->error));
	json_object_set_new(o, "time", json_string(now));
	return o;
}

/* ---- the retry policy ---- */

bool rc_notify_retryable(int rc, long status)
{
	if (rc < 0)
		return rc != RC_EINVALID;
	return status == 429 || status >= 500 || status == 0;
}

long rc_notify_backoff_ms(int attempt, const char *retry_after, uint32_t rnd)
{
	long ms = RC_NOTIFY_BACKOFF_BASE_MS;

	if (retry_after) {
		long ra = rc_http_retry_after_ms(retry_after, time(NULL));

		if (ra >= 0)
			return ra < RC_NOTIFY_RETRY_AFTER_CAP_MS
				       ? ra
				       : RC_NOTIFY_RETRY_AFTER_CAP_MS;
	}
	for (int i = 1; i < attempt && ms < RC_NOTIFY_BACKOFF_CAP_MS; i++)
		ms *= 2;
	if (ms > RC_NOTIFY_BACKOFF_CAP_MS)
		ms = RC_NOTIFY_BACKOFF_CAP_MS;
	return ms / 2 + (long)(rnd % (uint32_t)(ms / 2 + 1));
}

/* ---- the sending thread ---- */

static uint32_t next_rnd(rc_notifier *n)
{
	/* xorshift32: jitter only, no secrecy needed */
	uint32_t x = n->rnd;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return n->rnd = x ? x : 0x9e3779b9u;
}

/* The CLOCK_REALTIME time ms from now, for pthread_cond_timedwait. */
static struct timespec deadline(long ms)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	return until;
}

/* Waits ms unless the notifier is stopped (lock held); false if it was. */
static bool pause_ms(rc_notifier *n, long ms)
{
	struct timespec until = deadline(ms);

	while (!n->stop)
		if (pthread_cond_timedwait(&n->cv, &n->mu, &until) == ETIMEDOUT)
			break;
	return !n->stop;
}

static void deliver(rc_notifier *n, const item *it)
{
	target *t = &n->t[it->target];
	const char *name = n->f[it->target].name;
	rc_http_req req = {.method = "POST", .url = t->url, .body = it->body,
			   .body_len = strlen(it->body)};
	rc_buf cause = RC_BUF_INIT_MAX(256);
	int attempt;

	for (attempt = 1;; attempt++) {
		rc_http_resp resp;
		int rc;
		long wait;

		rc_http_resp_init(&resp);
		rc = rc_http_do(t->http, &req, &resp);
		rc_buf_clear(&cause);
		if (rc < 0)
			rc_buf_puts(&cause, rc == RC_ETIMEOUT
						    ? "no reply in time"
						    : "could not connect");
		else
			rc_buf_printf(&cause, "HTTP %ld", resp.status);
		rc_error_clear();
		if (rc == 0 && resp.status >= 200 && resp.status < 300) {
			rc_http_resp_release(&resp);
			pthread_mutex_lock(&n->mu);
			n->st.sent++;
			atomic_fetch_add(&totals_sent, 1);
			pthread_mutex_unlock(&n->mu);
			RC_DEBUG("notify '%s': %s delivered", name,
				 it->what);
			break;
		}
		if (!rc_notify_retryable(rc, resp.status) ||
		    attempt >= RC_NOTIFY_ATTEMPTS) {
			rc_http_resp_release(&resp);
			goto give_up;
		}
		pthread_mutex_lock(&n->mu);
		wait = rc_notify_backoff_ms(
			attempt, rc_http_resp_header(&resp, "Retry-After"),
			next_rnd(n));
		rc_http_resp_release(&resp);
		RC_DEBUG("notify '%s': %s: %s, again in %ld ms", name,
			 it->what, cause.ptr, wait);
		n->st.retries++;
		atomic_fetch_add(&totals_retries, 1);
		if (!pause_ms(n, wait)) {
			pthread_mutex_unlock(&n->mu);
			rc_buf_puts(&cause, ", then stopped");
			goto give_up;
		}
		pthread_mutex_unlock(&n->mu);
	}
	rc_buf_release(&cause);
	return;
give_up:
	pthread_mutex_lock(&n->mu);
	n->st.failed++;
	atomic_fetch_add(&totals_failed, 1);
	pthread_mutex_unlock(&n->mu);
	RC_WARN("notify '%s': %s not delivered after %d attempt%s (%s)",
		name, it->what, attempt, attempt == 1 ? "" : "s",
		cause.ptr);
	rc_buf_release(&cause);
}

static void destroy(rc_notifier *n)
{
	for (size_t i = 0; i < n->len; i++) {
		item *it = &n->q[(n->head + i) % RC_NOTIFY_QUEUE];

		free(it->body);
		free(it->what);
	}
	for (size_t i = 0; i < n->nt; i++) {
		rc_http_close(n->t[i].http);
		free(n->t[i].url);
	}
	rc_notify_targets_free(n->f, n->nt);
	free(n->t);
	pthread_mutex_destroy(&n->mu);
	pthread_cond_destroy(&n->cv);
	free(n);
}

static void *worker(void *arg)
{
	rc_notifier *n = arg;
	bool detached;

	pthread_mutex_lock(&n->mu);
	for (;;) {
		item it;

		while (!n->len && !n->stop)
			pthread_cond_wait(&n->cv, &n->mu);
		if (n->stop)
			break;
		it = n->q[n->head];
		n->head = (n->head + 1) % RC_NOTIFY_QUEUE;
		n->len--;
		n->busy = true;
		pthread_mutex_unlock(&n->mu);
		deliver(n, &it);
		free(it.body);
		free(it.what);
		pthread_mutex_lock(&n->mu);
		n->busy = false;
		pthread_cond_broadcast(&n->cv);
	}
	detached = n->detached;
	pthread_mutex_unlock(&n->mu);
	if (detached)
		destroy(n);
	return NULL;
}

/* ---- the API ---- */

static bool open_target(target *t, rc_notify_target *f,
			const rc_notify_target *cfg, const char *config_dir)
{
	rc_http_opts o;

	if (rc_secret_value(&t->url, &cfg->url, config_dir) < 0) {
		if (cfg->url.kind == RC_SECRET_ENV)
			RC_WARN("notify '%s' is not told anything: the "
				"variable '%s' that holds its url is not set",
				cfg->name, cfg->url.ref);
		else if (cfg->url.kind == RC_SECRET_FILE && !cfg->url.encrypted)
			RC_WARN("notify '%s' is not told anything: cannot "
				"read the file '%s' that holds its url",
				cfg->name, cfg->url.ref);
		else
			RC_WARN("notify '%s' is not told anything: %s",
				cfg->name, rc_error_last()->message);
		rc_error_clear();
		return false;
	}
	rc_secret_register(t->url);
	rc_http_opts_init(&o);
	o.base_url = t->url;
	o.max_retries = 0; /* this file retries, from its own thread */
	o.timeout_ms = RC_NOTIFY_TIMEOUT_MS;
	o.connect_timeout_ms = RC_NOTIFY_TIMEOUT_MS / 2;
	o.user_agent = "reconcile";
	if (rc_http_open(&t->http, &o) < 0) {
		RC_WARN("notify '%s': its url is not an http or https URL, so "
			"it is not told anything",
			cfg->name);
		rc_error_clear();
		free(t->url);
		t->url = NULL;
		return false;
	}
	f->name = rc_strdup(cfg->name);
	f->kind = cfg->kind;
	f->events = cfg->events;
	f->nenvironments = cfg->nenvironments;
	f->environments = rc_calloc(cfg->nenvironments + 1, sizeof(char *));
	for (size_t i = 0; i < cfg->nenvironments; i++)
		f->environments[i] = rc_strdup(cfg->environments[i]);
	return true;
}

int rc_notifier_new(rc_notifier **out, const rc_config *cfg,
		    const char *config_dir)
{
	rc_notifier *n;

	*out = NULL;
	if (!cfg || !cfg->nnotify)
		return 0;
	n = rc_calloc(1, sizeof(*n));
	n->t = rc_calloc(cfg->nnotify, sizeof(target));
	n->f = rc_calloc(cfg->nnotify, sizeof(rc_notify_target));
	for (size_t i = 0; i < cfg->nnotify; i++)
		if (open_target(&n->t[n->nt], &n->f[n->nt], &cfg->notify[i],
				config_dir))
			n->nt++;
	n->rnd = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16) ^
		 (uint32_t)(uintptr_t)n;
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->cv, NULL);
	if (pthread_create(&n->thread, NULL, worker, n) != 0) {
		destroy(n);
		return rc_error_set(RC_ERROR, RC_ECLASS_OS,
				    "cannot start the notification thread");
	}
	*out = n;
	return 0;
}

void rc_notifier_send(rc_notifier *n, const rc_notify_event *ev)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nt; i++) {
		const rc_notify_target *t = &n->f[i];
		json_t *p;
		item it;

		if (!(t->events & (1u << ev->kind)) ||
		    !rc_notify_target_wants(t,
					    ev->environment ? ev->environment
							    : "",
					    ev->entry))
			continue;
		p = rc_notify_payload(t->kind, ev);
		it.target = i;
		it.body = json_dumps(p, JSON_COMPACT);
		json_decref(p);
		{
			rc_buf w = RC_BUF_INIT_MAX(512);

			rc_buf_puts(&w, rc_notify_event_name(ev->kind));
			if (ev->environment)
				rc_buf_printf(&w, " for %s", ev->environment);
			it.what = rc_buf_detach(&w);
		}
		pthread_mutex_lock(&n->mu);
		if (n->len == RC_NOTIFY_QUEUE || n->stop) {
			bool warned = n->dropping;

			n->st.dropped++;
			atomic_fetch_add(&totals_dropped, 1);
			n->dropping = true;
			pthread_mutex_unlock(&n->mu);
			/* once until the queue takes one again */
			if (!warned)
				RC_WARN("notify '%s': %s dropped: %d "
					"notifications are already waiting "
					"(more are dropped until they go)",
					t->name, it.what, RC_NOTIFY_QUEUE);
			free(it.body);
			free(it.what);
			continue;
		}
		n->q[(n->head + n->len) % RC_NOTIFY_QUEUE] = it;
		n->len++;
		n->dropping = false;
		pthread_cond_broadcast(&n->cv);
		pthread_mutex_unlock(&n->mu);
	}
}

int rc_notifier_flush(rc_notifier *n, long timeout_ms)
{
	struct timespec until = deadline(timeout_ms);
	size_t pending;

	if (!n)
		return 0;
	pthread_mutex_lock(&n->mu);
	while (n->len || n->busy)
		if (pthread_cond_timedwait(&n->cv, &n->mu, &until) == ETIMEDOUT)
			break;
	pending = n->len + n->busy;
	pthread_mutex_unlock(&n->mu);
	if (!pending)
		return 0;
	RC_WARN("notify: %zu notification%s still not delivered after %ld "
		"ms; not waiting longer",
		pending, pending == 1 ? "" : "s", timeout_ms);
	return rc_error_set(RC_ETIMEOUT, RC_ECLASS_HTTP,
			    "%zu notification%s not delivered in time",
			    pending, pending == 1 ? "" : "s");
}

void rc_notifier_stats(rc_notifier *n, rc_notify_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	*out = n->st;
	pthread_mutex_unlock(&n->mu);
}

void rc_notifier_free(rc_notifier *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	n->stop = true;
	pthread_cond_broadcast(&n->cv);
	if (n->busy) {
		n->detached = true;
		pthread_mutex_unlock(&n->mu);
		pthread_detach(n->thread);
		return;
	}
	pthread_mutex_unlock(&n->mu);
	pthread_join(n->thread, NULL);
	destroy(n);
}
