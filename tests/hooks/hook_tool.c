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
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "tests/support/testenv.h"

static int usage(void)
{
	fprintf(stderr, "usage: hook_tool DIR ENV run SPEC-JSON\n"
			"       hook_tool DIR ENV status SPEC-JSON WAIT\n");
	return 2;
}

int main(int argc, char **argv)
{
	rc_testenv t;
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
	if (rc_testenv_open(&t, argv[1], argv[2],
			    json_string_value(json_object_get(spec, "run_id"))))
		return 1;
	if (status && !t.ops->hook_status) {
		printf("error: the driver of %s cannot tell a hook's status\n",
		       t.env->name);
		return 1;
	}
	rc = status ? t.ops->hook_status(t.d, spec, wait, &st, &res)
		    : t.ops->run(t.d, spec, &res);
	if (rc < 0) {
		printf("error: %s: %s\n", argv[3], rc_error_last()->message);
	} else {
		const char *tail = res.output_tail ? res.output_tail : "";
		size_t n = strlen(tail);

		if (status)
			printf("state: %s\n", rc_hook_state_name(st));
		printf("exit: %d\ntimed_out: %s\noutput:\n%s%s", res.exit_code,
		       res.timed_out ? "yes" : "no", tail,
		       n && tail[n - 1] != '\n' ? "\n" : "");
	}
	fflush(stdout);
	rc_run_result_release(&res);
	rc_testenv_close(&t);
	json_decref(spec);
	return rc < 0;
}
