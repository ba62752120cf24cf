/*
 * Runs a hook, or asks what became of one, through an environment's
 * driver (drivers/driver.h, run and hook_status) for tests/hooks/run.sh:
 *
 *   hook_tool DIR ENV run SPEC-JSON
 *   hook_tool DIR ENV status SPEC-JSON WAIT
 *
 * SPEC-JSON is the hook's spec as the engine gives it ({name, run: [argv],
 * where, service, env, timeout, run_id}). Prints
 *
 *   state: succeeded|failed|running|not started|unknown   (status only)
 *   exit: N
 *   timed_out: yes|no
 *   output:
 *   <the output's tail, as the driver returned it>
 *
 * or "error: <message>" and exits 1. The state directory is
 * $RECONCILE_STATE_DIR. The driver's log goes to stderr.
 */
#include "drivers/driver.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "schema/load.h"
#include "schema/secrets.h"

static int fail(const char *what)
{
	printf("error: %s%s%s\n", what, *what ? ": " : "",
	       rc_error_last()->message);
	return 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: hook_tool DIR ENV run SPEC-JSON\n"
			"       hook_tool DIR ENV status SPEC-JSON WAIT\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const unsigned char key[32] = {1};
	const rc_driver_ops *ops;
	rc_diags diags;
	rc_config *cfg = NULL;
	const rc_env *env = NULL;
	rc_driver_ctx ctx = {0};
	rc_driver *d = NULL;
	rc_run_result res = {0};
	rc_hook_state st = RC_HOOK_UNKNOWN;
	json_error_t jerr;
	json_t *spec;
	bool status;
	long wait = 0;
	char *end;
	int rc;

	if (argc < 5)
		return usage();
	status = !strcmp(argv[3], "status");
	if (status ? argc != 6 : argc != 5 || strcmp(argv[3], "run"))
		return usage();
	if (status) {
		wait = strtol(argv[5], &end, 10);
		if (*end || wait < 0)
			return usage();
	}
	if (!(spec = json_loads(argv[4], 0, &jerr)) || !json_is_object(spec)) {
		printf("error: SPEC-JSON: %s\n", spec ? "not an object" : jerr.text);
		return 1;
	}
	rc_log_threshold = RC_LOG_INFO;
	rc_diags_init(&diags);
	rc_secret_set_key(key);
	if (rc_config_load(&cfg, argv[1], &(rc_load_opts){0}, &diags) < 0) {
		rc_diags_print(&diags, stdout, false);
		return 1;
	}
	for (size_t i = 0; i < cfg->nenvs; i++)
		if (!strcmp(cfg->envs[i].name, argv[2]))
			env = &cfg->envs[i];
	if (!env) {
		printf("error: no environment %s\n", argv[2]);
		return 1;
	}
	ops = rc_driver_find(rc_driver_name(env->target.driver));
	if (!ops || (status && !ops->hook_status)) {
		printf("error: the driver of %s cannot tell a hook's status\n",
		       env->name);
		return 1;
	}
	ctx.project = cfg->project;
	ctx.config_dir = argv[1];
	ctx.state_dir = getenv("RECONCILE_STATE_DIR");
	ctx.run_id = json_string_value(json_object_get(spec, "run_id"));
	if (ops->shared_open && ops->shared_open(&ctx.shared, &ctx) < 0)
		return fail("shared_open");
	if (ops->open(&d, env, &ctx) < 0)
		return fail("open");
	rc = status ? ops->hook_status(d, spec, wait, &st, &res)
		    : ops->run(d, spec, &res);
	if (rc < 0) {
		fail(argv[3]);
	} else {
		if (status)
			printf("state: %s\n", rc_hook_state_name(st));
		printf("exit: %d\ntimed_out: %s\noutput:\n%s%s", res.exit_code,
		       res.timed_out ? "yes" : "no",
		       res.output_tail ? res.output_tail : "",
		       res.output_tail && *res.output_tail &&
				       res.output_tail[strlen(res.output_tail) - 1] !=
					       '\n'
			       ? "\n"
			       : "");
	}
	fflush(stdout);
	rc_run_result_release(&res);
	ops->close(d);
	if (ops->shared_close)
		ops->shared_close(ctx.shared);
	rc_config_free(cfg);
	rc_diags_release(&diags);
	json_decref(spec);
	return rc < 0;
}
