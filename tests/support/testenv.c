#include "tests/support/testenv.h"

#include "reconciler/base/error.h"
#include "schema/secrets.h"

static int fail(const char *what)
{
	printf("error: %s: %s\n", what, rc_error_last()->message);
	return 1;
}

int rc_testenv_open(rc_testenv *t, const char *dir, const char *name,
		    const char *run_id)
{
	static const unsigned char key[32] = {1};

	memset(t, 0, sizeof(*t));
	rc_diags_init(&t->diags);
	rc_secret_set_key(key);
	if (rc_config_load(&t->cfg, dir, &(rc_load_opts){0}, &t->diags) < 0) {
		rc_diags_print(&t->diags, stdout, false);
		return 1;
	}
	for (size_t i = 0; i < t->cfg->nenvs; i++)
		if (!strcmp(t->cfg->envs[i].name, name))
			t->env = &t->cfg->envs[i];
	if (!t->env) {
		printf("error: no environment %s\n", name);
		return 1;
	}
	t->ops = rc_driver_find(rc_driver_name(t->env->target.driver));
	if (!t->ops) {
		printf("error: no driver for %s\n", name);
		return 1;
	}
	t->ctx.project = t->cfg->project;
	t->ctx.config_dir = dir;
	t->ctx.state_dir = getenv("RECONCILE_STATE_DIR");
	t->ctx.run_id = run_id;
	if (t->ops->shared_open && t->ops->shared_open(&t->ctx.shared, &t->ctx) < 0)
		return fail("shared_open");
	if (t->ops->open(&t->d, t->env, &t->ctx) < 0)
		return fail("open");
	return 0;
}

void rc_testenv_close(rc_testenv *t)
{
	if (t->d)
		t->ops->close(t->d);
	if (t->ops && t->ops->shared_close && t->ctx.shared)
		t->ops->shared_close(t->ctx.shared);
	rc_config_free(t->cfg);
	rc_diags_release(&t->diags);
	memset(t, 0, sizeof(*t));
}
