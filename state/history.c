#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/error.h"
#include "reconciler/base/strmap.h"
#include "state/history.h"
#include "state/internal.h"
#include "state/journal.h"
#include "state/lock.h"

#include <dirent.h>

#define SUFFIX ".journal"

/* A summary and the time it sorts by. */
typedef struct {
	rc_run_summary s;
	struct timespec when;
} entry;

const char *rc_run_status_name(rc_run_status s)
{
	switch (s) {
	case RC_RUN_SUCCEEDED:
		return "succeeded";
	case RC_RUN_FAILED:
		return "failed";
	case RC_RUN_INTERRUPTED:
		return "interrupted";
	case RC_RUN_RUNNING:
		return "running";
	case RC_RUN_REJECTED:
		return "rejected";
	}
	return "unknown";
}

static const char *str_field(json_t *rec, const char *key)
{
	return json_string_value(json_object_get(rec, key));
}

/* A key for an action id (a string or a number, usually), into b. */
static void action_key(rc_buf *b, json_t *action)
{
	char *text;

	rc_buf_clear(b);
	if (json_is_string(action)) {
		rc_buf_putc(b, 's');
		rc_buf_put(b, json_string_value(action),
			   json_string_length(action));
		return;
	}
	text = json_dumps(action, JSON_ENCODE_ANY | JSON_COMPACT |
					  JSON_SORT_KEYS);
	rc_buf_putc(b, 'j');
	if (text)
		rc_buf_puts(b, text);
	free(text);
}

/*
 * Pending intents: those whose action has no outcome. Intents and outcomes
 * without an "action" cannot be paired and are set off against each other.
 */
/* Keeps, of each record, what a summary reads: the bodies of intents
 * (snapshots, desired states) are not held for a whole journal. */
static int keep_summary_fields(void *ctx, json_t *rec)
{
	static const char *const fields[] = {"type", "action", "status", "time",
					     "commit", "environments",
					     "approved_by", "rejected_by",
					     "resolves", "settled", "unsettled"};
	rc_journal_contents *c = ctx;
	json_t *small = json_object();

	for (size_t i = 0; i < RC_ARRAY_SIZE(fields); i++) {
		json_t *v = json_object_get(rec, fields[i]);

		if (v)
			json_object_set(small, fields[i], v);
	}
	if (c->n < 8 || (c->n & (c->n - 1)) == 0)
		c->records = rc_realloc(c->records, (c->n < 8 ? 8 : 2 * c->n) *
							    sizeof(json_t *));
	c->records[c->n++] = small;
	return 0;
}

static size_t count_pending(const rc_journal_contents *c)
{
	static char pending_mark, done_mark;
	rc_strmap seen = RC_STRMAP_INIT;
	char **keys = NULL;
	size_t nkeys = 0, capkeys = 0, pending = 0, i;
	size_t loose_intents = 0, loose_outcomes = 0;
	rc_buf key = RC_BUF_INIT;

	for (i = 0; i < c->n; i++) {
		const char *type = str_field(c->records[i], "type");
		json_t *action = json_object_get(c->records[i], "action");
		bool intent = type && !strcmp(type, "intent");
		bool outcome = type && !strcmp(type, "outcome");
		void *mark;

		if (!intent && !outcome)
			continue;
		if (!action) {
			if (intent)
				loose_intents++;
			else
				loose_outcomes++;
			continue;
		}
		action_key(&key, action);
		mark = rc_strmap_get(&seen, key.ptr);
		if (!mark) {
			RC_GROW(keys, capkeys, nkeys + 1);
			keys[nkeys] = rc_strdup(key.ptr);
			rc_strmap_put(&seen, keys[nkeys++],
				      intent ? &pending_mark : &done_mark);
			if (intent)
				pending++;
		} else if (outcome && mark == &pending_mark) {
			rc_strmap_put(&seen, key.ptr, &done_mark);
			pending--;
		}
	}
	if (loose_intents > loose_outcomes)
		pending += loose_intents - loose_outcomes;
	rc_strmap_release(&seen);
	for (i = 0; i < nkeys; i++)
		free(keys[i]);
	free(keys);
	rc_buf_release(&key);
	return pending;
}

/* Whether a live process holds the lock of one of the run's environments
 * for this run (or for a run it does not name). */
static bool run_is_live(const rc_run_summary *s, const char *state_dir)
{
	size_t i;

	for (i = 0; i < s->nenvs; i++) {
		json_t *h = rc_lock_holder(state_dir, s->envs[i]);
		const char *run;
		bool ours;

		if (!h)
			continue;
		run = str_field(h, "run");
		ours = !run || !strcmp(run, s->id);
		json_decref(h);
		if (ours)
			return true;
	}
	return false;
}

/* The unfinished hooks of earlier runs that this run settled: an intent
 * naming the attempt it resolves, and its outcome saying how. */
static void find_settles(rc_run_summary *s, const rc_journal_contents *c)
{
	for (size_t i = 0; i < c->n; i++) {
		json_t *in = c->records[i];
		const char *action = str_field(in, "action"), *how = NULL, *name;
		const char *type = str_field(in, "type"), *of;
		rc_buf line = RC_BUF_INIT_MAX(4096);

		if (!action || !type || strcmp(type, "intent") ||
		    !(of = str_field(json_object_get(in, "resolves"), "run")))
			continue;
		for (size_t j = i + 1; j < c->n && !how; j++)
			if (str_field(c->records[j], "action") &&
			    !strcmp(str_field(c->records[j], "action"), action) &&
			    !json_is_true(json_object_get(c->records[j],
							  "unsettled")))
				how = str_field(c->records[j], "settled");
		if (!how)
			continue;
		name = strrchr(action, '/');
		rc_buf_printf(&line, "hook %s: %s", name ? name + 1 : action,
			      how);
		s->settles = rc_realloc(s->settles,
					(s->nsettles + 1) * sizeof(char *));
		s->settles_of = rc_realloc(s->settles_of,
					   (s->nsettles + 1) * sizeof(char *));
		s->settles[s->nsettles] = rc_buf_detach(&line);
		s->settles_of[s->nsettles++] = rc_strdup(of);
	}
}

/* Tells each run which of its unfinished hooks later runs settled. */
static void link_settles(rc_run_summary *runs, size_t n)
{
	for (size_t y = 0; y < n; y++)
		for (size_t k = 0; k < runs[y].nsettles; k++)
			for (size_t x = 0; x < n; x++) {
				rc_run_summary *r = &runs[x];
				rc_buf b = RC_BUF_INIT_MAX(4096);

				if (strcmp(r->id, runs[y].settles_of[k]))
					continue;
				rc_buf_printf(&b, "%s (settled by run %s)",
					      runs[y].settles[k], runs[y].id);
				r->settled_later = rc_realloc(
					r->settled_later,
					(r->nsettled_later + 1) * sizeof(char *));
				r->settled_later[r->nsettled_later++] =
					rc_buf_detach(&b);
			}
}

static void summarise(rc_run_summary *s, const rc_journal_contents *c,
		      const char *state_dir)
{
	json_t *start = NULL, *end = NULL, *envs, *v;
	const char *status;
	size_t i;

	for (i = 0; i < c->n; i++) {
		json_t *rec = c->records[i];
		const char *type = str_field(rec, "type");

		if (!type)
			continue;
		if (!strcmp(type, "run-start") && !start) {
			start = rec;
		} else if (!strcmp(type, "run-end")) {
			end = rec;
		} else if (!strcmp(type, "outcome") &&
			   (status = str_field(rec, "status")) != NULL) {
			if (!strcmp(status, "ok"))
				s->ok++;
			else if (!strcmp(status, "failed"))
				s->failed++;
			else if (!strcmp(status, "skipped"))
				s->skipped++;
			else if (!strcmp(status, "unknown"))
				s->unknown++;
		}
	}
	if (start) {
		if (str_field(start, "time"))
			s->time = rc_strdup(str_field(start, "time"));
		if (str_field(start, "commit"))
			s->commit = rc_strdup(str_field(start, "commit"));
		if (str_field(start, "approved_by"))
			s->approved_by = rc_strdup(str_field(start, "approved_by"));
		if (str_field(start, "rejected_by"))
			s->rejected_by = rc_strdup(str_field(start, "rejected_by"));
		envs = json_object_get(start, "environments");
		s->envs = rc_calloc(json_array_size(envs) + 1, sizeof(char *));
		json_array_foreach(envs, i, v)
			if (json_is_string(v))
				s->envs[s->nenvs++] = rc_strdup(
					json_string_value(v));
	}
	find_settles(s, c);
	s->pending = count_pending(c);
	s->torn = c->torn;
	if (end) {
		status = str_field(end, "status");
		s->status = !status			 ? RC_RUN_FAILED
			    : !strcmp(status, "succeeded") ? RC_RUN_SUCCEEDED
			    : !strcmp(status, "rejected")  ? RC_RUN_REJECTED
							   : RC_RUN_FAILED;
	} else {
		s->status = run_is_live(s, state_dir) ? RC_RUN_RUNNING
						      : RC_RUN_INTERRUPTED;
		/* a live run's last line may be an append in progress */
		if (s->status == RC_RUN_RUNNING)
			s->torn = false;
	}
}

static bool touches(const rc_run_summary *s, const char *env)
{
	size_t i;

	/* without its run-start record, a run's environments are unknown:
	 * show it rather than hide it */
	if (!s->envs)
		return true;
	for (i = 0; i < s->nenvs; i++)
		if (!strcmp(s->envs[i], env))
			return true;
	return false;
}

static void summary_release(rc_run_summary *s)
{
	size_t i;

	free(s->id);
	free(s->time);
	free(s->commit);
	free(s->approved_by);
	free(s->rejected_by);
	for (i = 0; i < s->nenvs; i++)
		free(s->envs[i]);
	free(s->envs);
	free(s->error);
	for (i = 0; i < s->nsettles; i++) {
		free(s->settles[i]);
		free(s->settles_of[i]);
	}
	free(s->settles);
	free(s->settles_of);
	for (i = 0; i < s->nsettled_later; i++)
		free(s->settled_later[i]);
	free(s->settled_later);
}

/* Newest first; runs without a time by their file's mtime; then by id. */
static int newest_first(const void *a, const void *b)
{
	const entry *x = a, *y = b;

	if (x->when.tv_sec != y->when.tv_sec)
		return x->when.tv_sec > y->when.tv_sec ? -1 : 1;
	if (x->when.tv_nsec != y->when.tv_nsec)
		return x->when.tv_nsec > y->when.tv_nsec ? -1 : 1;
	return strcmp(y->s.id, x->s.id);
}

/* Keeps the first record (run-start) and stops. */
static int keep_first(void *ctx, json_t *rec)
{
	return keep_summary_fields(ctx, rec) == 0 ? 1 : -1;
}

static int load(rc_run_summary **out, size_t *n, const char *state_dir,
		const char *env, bool whole)
{
	rc_buf dir = RC_BUF_INIT_MAX(PATH_MAX);
	rc_buf path = RC_BUF_INIT_MAX(PATH_MAX);
	entry *list = NULL;
	size_t nlist = 0, cap = 0, i;
	char **names = NULL;
	size_t nnames = 0, capnames = 0;
	struct dirent *de;
	DIR *d = NULL;
	int error = 0;

	*out = NULL;
	*n = 0;
	if ((error = rc_buf_printf(&dir, "%s/runs", state_dir)) < 0)
		goto cleanup;
	d = opendir(dir.ptr);
	if (!d) {
		if (errno != ENOENT)
			error = rc_error_set_os("cannot list runs in '%s'",
						dir.ptr);
		goto cleanup; /* no runs yet */
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len <= strlen(SUFFIX) || de->d_name[0] == '.' ||
		    strcmp(de->d_name + len - strlen(SUFFIX), SUFFIX))
			continue;
		RC_GROW(names, capnames, nnames + 1);
		names[nnames++] = rc_strdup(de->d_name);
		errno = 0;
	}
	if (errno) {
		error = rc_error_set_os("cannot list runs in '%s'", dir.ptr);
		goto cleanup;
	}

	for (i = 0; i < nnames; i++) {
		rc_journal_contents c;
		rc_run_summary s = {0};
		struct timespec when = {0, 0};
		struct stat st;
		int r;

		rc_buf_clear(&path);
		if ((error = rc_buf_printf(&path, "%s/%s", dir.ptr,
					   names[i])) < 0)
			goto cleanup;
		memset(&c, 0, sizeof(c));
		c.torn_offset = -1;
		r = rc_journal_scan(path.ptr,
				    whole ? keep_summary_fields : keep_first,
				    &c, &c.torn, &c.torn_offset);
		if (r == RC_ENOTFOUND) { /* removed since it was listed */
			rc_journal_contents_release(&c);
			continue;
		}
		s.id = rc_strndup(names[i], strlen(names[i]) - strlen(SUFFIX));
		if (r < 0 && rc_error_last())
			s.error = rc_strdup(rc_error_last()->message);
		else if (r < 0)
			s.error = rc_strdup("cannot read the journal");
		if (whole) {
			summarise(&s, &c, state_dir);
		} else if (c.n && json_is_string(json_object_get(c.records[0],
								 "time"))) {
			s.time = rc_strdup(json_string_value(
				json_object_get(c.records[0], "time")));
		}
		rc_journal_contents_release(&c);
		if (env && !touches(&s, env)) {
			summary_release(&s);
			continue;
		}
		if (!rc_time_parse(s.time, &when) &&
		    stat(path.ptr, &st) == 0)
			when = st.st_mtim;
		RC_GROW(list, cap, nlist + 1);
		list[nlist].s = s;
		list[nlist++].when = when;
	}
	error = 0;
	if (nlist > 1)
		qsort(list, nlist, sizeof(*list), newest_first);
	*out = rc_calloc(nlist, sizeof(**out));
	for (i = 0; i < nlist; i++)
		(*out)[i] = list[i].s;
	if (whole)
		link_settles(*out, nlist);
	*n = nlist;
	nlist = 0;

cleanup:
	if (d)
		closedir(d);
	for (i = 0; i < nlist; i++)
		summary_release(&list[i].s);
	free(list);
	for (i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	rc_buf_release(&dir);
	rc_buf_release(&path);
	return error;
}

int rc_history_load(rc_run_summary **out, size_t *n, const char *state_dir,
		    const char *env)
{
	return load(out, n, state_dir, env, true);
}

int rc_history_order(rc_run_summary **out, size_t *n, const char *state_dir)
{
	return load(out, n, state_dir, NULL, false);
}

void rc_history_free(rc_run_summary *runs, size_t n)
{
	size_t i;

	if (!runs)
		return;
	for (i = 0; i < n; i++)
		summary_release(&runs[i]);
	free(runs);
}

static json_t *strings(char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

json_t *rc_run_summary_json(const rc_run_summary *r)
{
	json_t *envs = json_array(), *j;
	size_t i;

	for (i = 0; i < r->nenvs; i++)
		json_array_append_new(envs, json_string(r->envs[i]));
	j = json_pack("{s:s, s:s?, s:s?, s:o, s:s, s:{s:I, s:I, s:I, s:I, "
		      "s:I}, s:b, s:s?}",
		      "id", r->id, "time", r->time, "commit", r->commit,
		      "environments", envs, "status",
		      rc_run_status_name(r->status), "counts", "ok",
		      (json_int_t)r->ok, "failed", (json_int_t)r->failed,
		      "skipped", (json_int_t)r->skipped, "unknown",
		      (json_int_t)r->unknown, "pending",
		      (json_int_t)r->pending, "torn", (int)r->torn, "error",
		      r->error);
	if (r->approved_by)
		json_object_set_new(j, "approved_by", json_string(r->approved_by));
	if (r->rejected_by)
		json_object_set_new(j, "rejected_by", json_string(r->rejected_by));
	if (r->nsettles)
		json_object_set_new(j, "settles",
				    strings(r->settles, r->nsettles));
	if (r->nsettled_later)
		json_object_set_new(j, "settled_later",
				    strings(r->settled_later,
					    r->nsettled_later));
	return j;
}
