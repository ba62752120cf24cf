/* Approvals through the controller: tokens, pending plans, approve and
 * reject. */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "reconciler/base/rctime.h"
#include "reconciler/controller/approval.h"
#include "reconciler/engine.h"
#include "state/internal.h"
#include "state/journal.h"

/* How long an approval waits for a worker planning the environment. */
#define TAKE_WAIT_S 120.0

/* --- tokens --- */

void rc_ctl_tokens_release(rc_ctl_tokens *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].name);
		free(t->v[i].token);
	}
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

static void tokens_add(rc_ctl_tokens *t, const char *name, size_t nl,
		       const char *token, size_t tl)
{
	t->v = rc_realloc(t->v, (t->n + 1) * sizeof(*t->v));
	t->v[t->n].name = rc_strndup(name, nl);
	t->v[t->n].token = rc_strndup(token, tl);
	t->n++;
}

static bool name_ok(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._@-", s[i]))
			return false;
	return true;
}

int rc_ctl_tokens_parse(rc_ctl_tokens *out, const char *value)
{
	const char *p = value;
	int entry = 0;

	memset(out, 0, sizeof(*out));
	if (!value || !*value)
		return 0;
	if (!strchr(value, ':')) {
		tokens_add(out, RC_CTL_TOKEN_ADMIN, strlen(RC_CTL_TOKEN_ADMIN),
			   value, strlen(value));
		return 0;
	}
	for (;;) {
		size_t len = strcspn(p, ","), nl, tl;
		const char *colon, *tok;

		entry++;
		while (len && isspace((unsigned char)*p)) {
			p++;
			len--;
		}
		while (len && isspace((unsigned char)p[len - 1]))
			len--;
		colon = memchr(p, ':', len);
		nl = colon ? (size_t)(colon - p) : len;
		tok = colon ? colon + 1 : p + len;
		tl = colon ? len - nl - 1 : 0;
		if (!colon || !name_ok(p, nl) || !tl) {
			rc_ctl_tokens_release(out);
			return rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
					    "RECONCILE_CONTROLLER_TOKEN: entry "
					    "%d is not 'name:token' (a name of "
					    "letters, digits, '.', '_', '@', "
					    "'-' and a token that is not "
					    "empty)",
					    entry);
		}
		for (size_t i = 0; i < out->n; i++) {
			bool same_name = strlen(out->v[i].name) == nl &&
					 !memcmp(out->v[i].name, p, nl);

			if (same_name || (strlen(out->v[i].token) == tl &&
					  !memcmp(out->v[i].token, tok, tl))) {
				rc_ctl_tokens_release(out);
				return rc_error_set(
					RC_EINVALID, RC_ECLASS_CONFIG,
					"RECONCILE_CONTROLLER_TOKEN: entry %d "
					"repeats the %s of entry %zu",
					entry, same_name ? "name" : "token",
					i + 1);
			}
		}
		tokens_add(out, p, nl, tok, tl);
		p += strcspn(p, ",");
		if (!*p)
			break;
		p++;
	}
	return 0;
}

const char *rc_ctl_tokens_match(const rc_ctl_tokens *t,
				const char *authorization)
{
	static const char prefix[] = "Bearer ";
	const char *given, *found = NULL;
	size_t gl;

	if (!authorization ||
	    strncasecmp(authorization, prefix, sizeof(prefix) - 1))
		return NULL;
	given = authorization + sizeof(prefix) - 1;
	gl = strlen(given);
	/* every token, so that the time does not tell which one matched */
	for (size_t i = 0; i < t->n; i++)
		if (rc_codec_equal(given, gl, t->v[i].token,
				   strlen(t->v[i].token)) &&
		    !found)
			found = t->v[i].name;
	return found;
}

/* --- pending plan files --- */

/* <state>/controller/pending/<env><ext> (new string). */
static char *pending_file(const char *state_dir, const char *env,
			  const char *ext)
{
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX);
	char *s;

	rc_buf_printf(&b, "%s/controller/pending/%s%s", state_dir, env, ext);
	s = rc_buf_detach(&b);
	rc_buf_release(&b);
	return s;
}

char *rc_pending_path(const char *state_dir, const char *env)
{
	return pending_file(state_dir, env, ".json");
}

int rc_pending_save(const char *state_dir, const char *env, const rc_plan *p)
{
	rc_buf dir = RC_BUF_INIT_MAX(PATH_MAX), tmp = RC_BUF_INIT_MAX(PATH_MAX);
	char *path = rc_pending_path(state_dir, env);
	json_t *j = rc_plan_to_json(p);
	int rc = 0;

	rc_buf_printf(&dir, "%s/controller/pending", state_dir);
	rc_buf_printf(&tmp, "%s.tmp", path);
	if (rc_state_mkdirs(dir.ptr) < 0 ||
	    json_dump_file(j, tmp.ptr, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 ||
	    rename(tmp.ptr, path) < 0)
		rc = rc_error_set_os("cannot save the pending plan '%s'", path);
	json_decref(j);
	free(path);
	rc_buf_release(&dir);
	rc_buf_release(&tmp);
	return rc;
}

int rc_pending_load(const char *state_dir, const char *env, rc_plan *p,
		    time_t *mtime)
{
	char *path = rc_pending_path(state_dir, env);
	json_error_t jerr;
	struct stat st;
	json_t *j;
	int rc;

	memset(p, 0, sizeof(*p));
	if (stat(path, &st) < 0) {
		rc = rc_error_set(RC_ENOTFOUND, RC_ECLASS_STATE,
				  "environment '%s' has no plan waiting for "
				  "approval",
				  env);
		free(path);
		return rc;
	}
	if (mtime)
		*mtime = st.st_mtime;
	if (!(j = json_load_file(path, 0, &jerr))) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_STATE,
				  "cannot read the pending plan '%s': %s", path,
				  jerr.text);
		free(path);
		return rc;
	}
	rc = rc_plan_from_json(p, j);
	json_decref(j);
	free(path);
	return rc;
}

void rc_pending_drop(const char *state_dir, const char *env)
{
	char *path = rc_pending_path(state_dir, env);

	if (unlink(path) < 0 && errno != ENOENT)
		RC_WARN("cannot remove the pending plan '%s': %s", path,
			strerror(errno));
	free(path);
}

int rc_pending_reject_save(const char *state_dir, const char *env,
			   const char *id)
{
	rc_buf dir = RC_BUF_INIT_MAX(PATH_MAX), tmp = RC_BUF_INIT_MAX(PATH_MAX);
	char *path = pending_file(state_dir, env, ".rejected");
	FILE *f = NULL;
	int rc = 0;

	rc_buf_printf(&dir, "%s/controller/pending", state_dir);
	rc_buf_printf(&tmp, "%s.tmp", path);
	if (rc_state_mkdirs(dir.ptr) < 0 || !(f = fopen(tmp.ptr, "w")) ||
	    fprintf(f, "%s\n", id) < 0 || fclose(f) != 0 ||
	    rename(tmp.ptr, path) < 0)
		rc = rc_error_set_os("cannot record the rejected plan '%s'",
				     path);
	free(path);
	rc_buf_release(&dir);
	rc_buf_release(&tmp);
	return rc;
}

char *rc_pending_reject_load(const char *state_dir, const char *env)
{
	char *path = pending_file(state_dir, env, ".rejected"), line[256];
	FILE *f = fopen(path, "r");
	char *id = NULL;

	free(path);
	if (!f)
		return NULL;
	if (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (*line)
			id = rc_strdup(line);
	}
	fclose(f);
	return id;
}

json_t *rc_pending_summary(const rc_plan *p)
{
	json_t *s = json_object(), *counts = json_object(),
	       *changes = json_array();
	size_t n[5] = {0};

	rc_plan_counts(p, n);
	for (int op = 0; op < 5; op++)
		if (n[op])
			json_object_set_new(counts, rc_op_name((rc_op)op),
					    json_integer((json_int_t)n[op]));
	for (size_t i = 0; i < p->n; i++) {
		rc_buf b = RC_BUF_INIT_MAX(4096);

		rc_buf_printf(&b, "%s %s", rc_op_name(p->actions[i].op),
			      p->actions[i].key);
		json_array_append_new(changes, json_string(b.ptr));
		rc_buf_release(&b);
	}
	json_object_set_new(s, "counts", counts);
	json_object_set_new(s, "changes", changes);
	return s;
}

/* --- the API --- */

json_t *rc_approvals_list(rc_ctl *c)
{
	json_t *pending = rc_ctl_pending(c), *list = json_array(), *v;
	const char *state = rc_ctl_state_dir(c);
	size_t i;

	json_array_foreach(pending, i, v) {
		const char *env = json_string_value(json_object_get(v, "name"));
		const char *id = json_string_value(json_object_get(v, "plan"));
		char created[RC_TIME_SIZE] = "";
		time_t mtime = 0;
		json_t *o, *sum;
		struct tm tm;
		rc_plan p;

		if (!state || rc_pending_load(state, env, &p, &mtime) < 0) {
			/* a worker is replacing it: listed at the next ask */
			rc_error_clear();
			rc_plan_release(&p);
			continue;
		}
		gmtime_r(&mtime, &tm);
		strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
		sum = rc_pending_summary(&p);
		o = json_pack("{s:s, s:s, s:s?, s:s, s:O, s:O}", "environment",
			      env, "plan", id, "commit", p.commit, "created",
			      created, "counts", json_object_get(sum, "counts"),
			      "changes", json_object_get(sum, "changes"));
		json_array_append_new(list, o);
		json_decref(sum);
		rc_plan_release(&p);
	}
	json_decref(pending);
	return json_pack("{s:o}", "approvals", list);
}

static unsigned refusal(int code, json_t **body, const char *pending)
{
	const rc_error *e = rc_error_last();

	*body = json_pack("{s:s, s:s?}", "error",
			  e ? e->message : "refused", "pending", pending);
	rc_error_clear();
	return code == RC_ENOTFOUND   ? 404
	       : code == RC_ECONFLICT ? 409
	       : code == RC_ELOCKED   ? 503
				      : 500;
}

/* Takes env for an approval or a rejection: 0 and *id, or the HTTP
 * status of the refusal with *body. */
static unsigned take(rc_ctl *c, const char *env, const char *plan,
		     const char *state, json_t **body, char **id)
{
	int rc;

	if (!state) {
		rc_error_set(RC_ELOCKED, RC_ECLASS_STATE,
			     "the source was not read yet");
		return refusal(RC_ELOCKED, body, NULL);
	}
	if ((rc = rc_ctl_take(c, env, plan, TAKE_WAIT_S, id)) < 0)
		return refusal(rc, body, NULL);
	rc_log_context(env, NULL);
	return 0;
}

/* "what moved" of rc_engine_check_saved's message: its indented lines,
 * joined with "; ". */
static void what_moved(rc_buf *b, const char *msg)
{
	const char *p = strchr(msg, '\n');
	bool first = true;

	while (p) {
		const char *line = p + 1, *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);

		while (n && *line == ' ') {
			line++;
			n--;
		}
		if (n) {
			rc_buf_printf(b, "%s%.*s", first ? "" : "; ", (int)n,
				      line);
			first = false;
		}
		p = end;
	}
	if (first)
		rc_buf_puts(b, msg);
}

/* The saved plan is stale: a fresh one (if it changes anything) becomes
 * the pending plan. 409. */
static unsigned stale(rc_ctl *c, const char *env, const char *state,
		      const rc_plan *fresh, const char *id, json_t **body)
{
	rc_buf msg = RC_BUF_INIT_MAX(1 << 16), moved = RC_BUF_INIT_MAX(1 << 16);
	rc_ctl_outcome out = {"pending", NULL, NULL, NULL, NULL};
	char *fresh_id = NULL;

	what_moved(&moved, rc_error_last()->message);
	rc_error_clear();
	if (fresh->n && rc_pending_save(state, env, fresh) == 0) {
		fresh_id = rc_plan_id(fresh);
		out.pending = fresh_id;
		rc_buf_printf(&msg, "the plan is stale: %s; a new plan is "
				    "pending: %s",
			      moved.ptr, fresh_id);
	} else {
		if (fresh->n) {
			RC_ERR("%s", rc_error_last()->message);
			rc_error_clear();
		}
		rc_pending_drop(state, env);
		out.result = "unchanged";
		rc_buf_printf(&msg, "the plan is stale: %s; %s", moved.ptr,
			      fresh->n ? "no new plan could be saved"
				       : "nothing is left to change");
	}
	RC_WARN("approval of plan %s refused: %s", id, msg.ptr);
	rc_ctl_give(c, env, &out);
	*body = json_pack("{s:s, s:s, s:s?, s:s}", "error", msg.ptr, "stale",
			  moved.ptr, "pending", fresh_id, "environment", env);
	free(fresh_id);
	rc_buf_release(&msg);
	rc_buf_release(&moved);
	return 409;
}

unsigned rc_approval_approve(rc_ctl *c, const char *env, const char *plan,
			     const char *by, json_t **body)
{
	const char *const envs[] = {env};
	const char *state = rc_ctl_state_dir(c);
	rc_ctl_outcome out = {"failed", NULL, NULL, NULL, NULL};
	rc_apply_report rep = {0};
	rc_engine_opts eo;
	rc_engine *e = NULL;
	rc_plan saved, fresh;
	char *id = NULL, *done = NULL;
	unsigned status;
	int rc;

	memset(&saved, 0, sizeof(saved));
	memset(&fresh, 0, sizeof(fresh));
	if ((status = take(c, env, plan, state, body, &id)) != 0)
		return status;
	RC_INFO("plan %s approved by %s", id, by);
	status = 200;
	rc_ctl_engine_opts(c, &eo, envs, true);
	eo.approved_by = by;
	if (rc_pending_load(state, env, &saved, NULL) < 0 ||
	    rc_engine_open(&e, &eo) < 0 || rc_engine_plan(e, &fresh) < 0)
		goto failed;
	/* the file is what the id names, or the id is not what was seen */
	{
		char *file_id = rc_plan_id(&saved);
		bool same = !strcmp(file_id, id);

		free(file_id);
		if (!same) {
			rc_error_set(RC_ECONFLICT, RC_ECLASS_STATE,
				     "the pending plan of '%s' changed while "
				     "it was approved; list it again",
				     env);
			goto failed;
		}
	}
	if ((done = rc_engine_find_plan_run(e, id))) {
		rc_pending_drop(state, env);
		out.result = "unchanged";
		out.run = done;
		rc_ctl_give(c, env, &out);
		*body = json_pack("{s:s, s:s, s:s, s:s, s:s}", "environment",
				  env, "plan", id, "run", done, "result",
				  "unchanged", "message",
				  "this plan was already applied");
		goto done;
	}
	if (rc_engine_check_saved(e, &saved, &fresh) < 0) {
		status = stale(c, env, state, &fresh, id, body);
		goto done;
	}
	rc = rc_engine_apply(e, &saved, &rep);
	rc_pending_drop(state, env);
	out.result = rc == 0 ? "succeeded" : "failed";
	out.run = rep.run_id;
	out.error = rc < 0 && rc_error_last() ? rc_error_last()->message : NULL;
	RC_INFO("run %s: %zu ok, %zu failed, %zu skipped",
		rep.run_id ? rep.run_id : "-", rep.ok, rep.failed, rep.skipped);
	rc_ctl_give(c, env, &out);
	*body = json_pack("{s:s, s:s, s:s?, s:s, s:s, s:{s:I, s:I, s:I}, s:s?}",
			  "environment", env, "plan", id, "run", rep.run_id,
			  "result", out.result, "approved_by", by, "counts",
			  "ok", (json_int_t)rep.ok, "failed",
			  (json_int_t)rep.failed, "skipped",
			  (json_int_t)rep.skipped, "error", out.error);
	goto done;
failed:
	out.error = rc_error_last() ? rc_error_last()->message : "failed";
	RC_ERR("approval of plan %s: %s", id, out.error);
	/* the plan stays pending: nothing was applied */
	out.result = "failed";
	out.pending = id;
	*body = json_pack("{s:s, s:s}", "error", out.error, "pending", id);
	status = rc_error_last() && rc_error_last()->code == RC_ECONFLICT
			 ? 409
			 : 500;
	rc_ctl_give(c, env, &out);
done:
	rc_error_clear();
	rc_log_context(NULL, NULL);
	rc_apply_report_release(&rep);
	rc_plan_release(&saved);
	rc_plan_release(&fresh);
	rc_engine_free(e);
	free(done);
	free(id);
	return status;
}

/* A rejection's run: run-start (rejected_by), rejected, run-end. */
static int journal_rejection(const char *state, const char *env,
			     const rc_plan *p, const char *id, const char *by,
			     char **run)
{
	char hostname[256] = "unknown";
	rc_journal *j = NULL;
	json_t *rec;
	int rc;

	*run = NULL;
	gethostname(hostname, sizeof(hostname) - 1);
	if ((rc = rc_journal_create(&j, state, NULL)) < 0)
		return rc;
	rec = json_pack("{s:s, s:s, s:s?, s:s?, s:[s], s:s, s:i, s:s, s:s}",
			"type", "run-start", "run", rc_journal_run_id(j),
			"commit", p->commit, "source", p->source,
			"environments", env, "host", hostname, "pid",
			(int)getpid(), "plan", id, "rejected_by", by);
	rc = rc_journal_append(j, rec);
	json_decref(rec);
	if (rc == 0) {
		rec = json_pack("{s:s, s:s, s:s}", "type", "rejected", "plan",
				id, "by", by);
		rc = rc_journal_append(j, rec);
		json_decref(rec);
	}
	if (rc == 0) {
		rec = json_pack("{s:s, s:s, s:{s:i, s:i, s:i}}", "type",
				"run-end", "status", "rejected", "counts", "ok",
				0, "failed", 0, "skipped", 0);
		rc = rc_journal_append(j, rec);
		json_decref(rec);
	}
	if (rc == 0)
		*run = rc_strdup(rc_journal_run_id(j));
	rc_journal_close(j);
	return rc;
}

unsigned rc_approval_reject(rc_ctl *c, const char *env, const char *plan,
			    const char *by, json_t **body)
{
	const char *state = rc_ctl_state_dir(c);
	rc_ctl_outcome out = {"rejected", NULL, NULL, NULL, NULL};
	char *id = NULL, *run = NULL;
	unsigned status;
	rc_plan p;

	if ((status = take(c, env, plan, state, body, &id)) != 0)
		return status;
	status = 200;
	if (rc_pending_load(state, env, &p, NULL) < 0 ||
	    journal_rejection(state, env, &p, id, by, &run) < 0) {
		out.result = "failed";
		out.pending = id;
		out.error = rc_error_last()->message;
		RC_ERR("rejection of plan %s: %s", id, out.error);
		*body = json_pack("{s:s, s:s}", "error", out.error, "pending",
				  id);
		status = 500;
	} else {
		RC_INFO("plan %s rejected by %s (run %s)", id, by, run);
		rc_pending_drop(state, env);
		if (rc_pending_reject_save(state, env, id) < 0) {
			/* the journal has it: only a restart forgets it */
			RC_WARN("%s", rc_error_last()->message);
			rc_error_clear();
		}
		out.run = run;
		out.rejected = id;
		*body = json_pack("{s:s, s:s, s:s, s:s}", "environment", env,
				  "plan", id, "run", run, "rejected_by", by);
	}
	rc_ctl_give(c, env, &out);
	rc_error_clear();
	rc_log_context(NULL, NULL);
	rc_plan_release(&p);
	free(run);
	free(id);
	return status;
}
