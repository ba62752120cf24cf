/* Approvals without a controller: RECONCILE_CONTROLLER_TOKEN as a bare
 * token or a named list, the bearer match, pending plan files and their
 * summary, and what history makes of approvals and rejections. */
#include "tests/unit/helpers.h"
#include "reconciler/base/error.h"
#include "reconciler/controller/approval.h"
#include "state/history.h"
#include "state/journal.h"

#include <jansson.h>

static void bare_token(void **state)
{
	rc_ctl_tokens t;

	RC_UNUSED(state);
	assert_int_equal(rc_ctl_tokens_parse(&t, "s3cret-token"), 0);
	assert_int_equal(t.n, 1);
	assert_string_equal(t.v[0].name, "admin");
	assert_string_equal(t.v[0].token, "s3cret-token");
	assert_string_equal(rc_ctl_tokens_match(&t, "Bearer s3cret-token"),
			    "admin");
	assert_string_equal(rc_ctl_tokens_match(&t, "bearer s3cret-token"),
			    "admin");
	assert_null(rc_ctl_tokens_match(&t, "Bearer s3cret-toke"));
	assert_null(rc_ctl_tokens_match(&t, "Bearer s3cret-token2"));
	assert_null(rc_ctl_tokens_match(&t, "Basic s3cret-token"));
	assert_null(rc_ctl_tokens_match(&t, NULL));
	rc_ctl_tokens_release(&t);

	assert_int_equal(rc_ctl_tokens_parse(&t, ""), 0);
	assert_int_equal(t.n, 0);
	assert_null(rc_ctl_tokens_match(&t, "Bearer "));
	assert_int_equal(rc_ctl_tokens_parse(&t, NULL), 0);
	assert_int_equal(t.n, 0);
}

static void token_list(void **state)
{
	rc_ctl_tokens t;

	RC_UNUSED(state);
	assert_int_equal(rc_ctl_tokens_parse(
				 &t, "alice:tok-a, bob.smith@ops:tok:b ,ci-1:c"),
			 0);
	assert_int_equal(t.n, 3);
	assert_string_equal(t.v[0].name, "alice");
	assert_string_equal(t.v[0].token, "tok-a");
	/* the first ':' splits: a token may hold more */
	assert_string_equal(t.v[1].name, "bob.smith@ops");
	assert_string_equal(t.v[1].token, "tok:b");
	assert_string_equal(t.v[2].name, "ci-1");
	assert_string_equal(t.v[2].token, "c");
	assert_string_equal(rc_ctl_tokens_match(&t, "Bearer tok-a"), "alice");
	assert_string_equal(rc_ctl_tokens_match(&t, "Bearer tok:b"),
			    "bob.smith@ops");
	assert_string_equal(rc_ctl_tokens_match(&t, "Bearer c"), "ci-1");
	/* a name is not a token */
	assert_null(rc_ctl_tokens_match(&t, "Bearer alice"));
	assert_null(rc_ctl_tokens_match(&t, "Bearer alice:tok-a"));
	assert_null(rc_ctl_tokens_match(&t, "Bearer "));
	rc_ctl_tokens_release(&t);
}

static void token_list_errors(void **state)
{
	static const struct {
		const char *value, *says;
	} bad[] = {
		{"alice:a,bob", "entry 2 is not 'name:token'"},
		{"alice:a,:b", "entry 2 is not 'name:token'"},
		{"alice:", "entry 1 is not 'name:token'"},
		{"al ice:a", "entry 1 is not 'name:token'"},
		{"alice:a,,bob:b", "entry 2 is not 'name:token'"},
		{"alice:a,alice:b", "entry 2 repeats the name of entry 1"},
		{"alice:a,bob:b,carol:a", "entry 3 repeats the token of entry 1"},
	};
	rc_ctl_tokens t;

	RC_UNUSED(state);
	for (size_t i = 0; i < RC_ARRAY_SIZE(bad); i++) {
		assert_int_equal(rc_ctl_tokens_parse(&t, bad[i].value),
				 RC_EINVALID);
		assert_int_equal(t.n, 0);
		assert_non_null(strstr(rc_error_last()->message, bad[i].says));
		/* the message never shows a token */
		assert_null(strstr(rc_error_last()->message, ":a"));
		rc_error_clear();
	}
}

/* An action of a local service "prod/service/<name>". */
static void add_action(rc_plan *p, const char *id, rc_op op, const char *name)
{
	rc_action *a = &p->actions[p->n++];
	rc_buf key = RC_BUF_INIT_MAX(256);

	rc_buf_printf(&key, "prod/service/%s", name);
	a->id = rc_strdup(id);
	a->op = op;
	a->key = rc_buf_detach(&key);
	a->env = rc_strdup("prod");
	a->driver = rc_strdup("local");
	a->kind = rc_strdup("service");
	a->name = rc_strdup(name);
	a->desired = json_pack("{s:s}", "image", "x");
	rc_buf_release(&key);
}

static void pending_files(void **state)
{
	char *dir = tmpdir_new(), *path;
	rc_plan p, back;
	json_t *sum;
	time_t mtime = 0;

	RC_UNUSED(state);
	memset(&p, 0, sizeof(p));
	rc_plan_envs_alloc(&p, 1);
	p.envs[0] = rc_strdup("prod");
	p.commit = rc_strdup("0123456789abcdef0123456789abcdef01234567");
	p.observed = json_object();
	p.actions = rc_calloc(2, sizeof(rc_action));
	p.cap = 2;
	add_action(&p, "a1", RC_OP_CREATE, "web");
	add_action(&p, "a2", RC_OP_UPDATE, "api");

	assert_int_equal(rc_pending_load(dir, "prod", &back, NULL), RC_ENOTFOUND);
	rc_plan_release(&back);
	rc_error_clear();
	assert_int_equal(rc_pending_save(dir, "prod", &p), 0);
	path = rc_pending_path(dir, "prod");
	assert_non_null(strstr(path, "/controller/pending/prod.json"));
	if (rc_pending_load(dir, "prod", &back, &mtime) < 0)
		fail_msg("%s", rc_error_last()->message);
	assert_true(mtime > 0);
	assert_int_equal(back.n, 2);
	assert_string_equal(back.commit, p.commit);
	assert_string_equal(back.actions[0].key, "prod/service/web");
	sum = rc_pending_summary(&back);
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(sum, "counts"), "create")),
			 1);
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(sum, "counts"), "update")),
			 1);
	assert_null(json_object_get(json_object_get(sum, "counts"), "delete"));
	assert_string_equal(json_string_value(json_array_get(
				    json_object_get(sum, "changes"), 1)),
			    "update prod/service/api");
	json_decref(sum);
	rc_plan_release(&back);
	rc_pending_drop(dir, "prod");
	assert_int_equal(access(path, F_OK), -1);
	rc_pending_drop(dir, "prod"); /* none is fine */
	free(path);
	rc_plan_release(&p);
	tmpdir_remove(dir);
}

/* A run-start naming who approved or rejected, and its end. */
static void journal_run(const char *dir, const char *id, const char *time,
			const char *field, const char *who, const char *end)
{
	rc_journal *j;
	json_t *r;

	assert_int_equal(rc_journal_create(&j, dir, id), 0);
	r = json_pack("{s:s, s:s, s:s, s:[s], s:s}", "type", "run-start", "run",
		      id, "time", time, "environments", "prod", field, who);
	assert_int_equal(rc_journal_append(j, r), 0);
	json_decref(r);
	r = json_pack("{s:s, s:s, s:{}}", "type", "run-end", "status", end,
		      "counts");
	assert_int_equal(rc_journal_append(j, r), 0);
	json_decref(r);
	rc_journal_close(j);
}

static void history_of_approvals(void **state)
{
	char *dir = tmpdir_new();
	rc_run_summary *runs;
	size_t n;
	json_t *j;

	RC_UNUSED(state);
	journal_run(dir, "r1", "2026-12-05T10:00:00Z", "approved_by", "alice",
		    "succeeded");
	journal_run(dir, "r2", "2026-12-05T11:00:00Z", "rejected_by", "bob",
		    "rejected");
	assert_int_equal(rc_history_load(&runs, &n, dir, "prod"), 0);
	assert_int_equal(n, 2);
	assert_string_equal(runs[0].id, "r2");
	assert_int_equal(runs[0].status, RC_RUN_REJECTED);
	assert_string_equal(rc_run_status_name(runs[0].status), "rejected");
	assert_string_equal(runs[0].rejected_by, "bob");
	assert_null(runs[0].approved_by);
	assert_int_equal(runs[1].status, RC_RUN_SUCCEEDED);
	assert_string_equal(runs[1].approved_by, "alice");
	j = rc_run_summary_json(&runs[1]);
	assert_string_equal(json_string_value(json_object_get(j, "approved_by")),
			    "alice");
	assert_null(json_object_get(j, "rejected_by"));
	json_decref(j);
	rc_history_free(runs, n);
	tmpdir_remove(dir);
}

int test_group_approval(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bare_token),
		cmocka_unit_test(token_list),
		cmocka_unit_test(token_list_errors),
		cmocka_unit_test(pending_files),
		cmocka_unit_test(history_of_approvals),
	};
	return cmocka_run_group_tests_name("approval", tests, NULL, NULL);
}
