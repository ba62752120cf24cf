/* The static registry of drivers. */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "drivers/driver.h"

/* Each driver exports its operations; add a line here for a new one. */
extern const rc_driver_ops rc_driver_local;
extern const rc_driver_ops rc_driver_kubernetes;
extern const rc_driver_ops rc_driver_heroku;
extern const rc_driver_ops rc_driver_ecs;

static const rc_driver_ops *const drivers[] = {
	&rc_driver_local,
	&rc_driver_kubernetes,
	&rc_driver_heroku,
	&rc_driver_ecs,
	NULL /* end */
};

const rc_driver_ops *rc_driver_find(const char *name)
{
	for (size_t i = 0; drivers[i]; i++)
		if (!strcmp(drivers[i]->name, name))
			return drivers[i];
	return NULL;
}

void rc_run_result_release(rc_run_result *r)
{
	free(r->output_tail);
	memset(r, 0, sizeof(*r));
}

bool rc_hook_status_begin(const json_t *spec, rc_hook_state *state,
			  rc_run_result *res)
{
	const char *where = json_string_value(json_object_get(spec, "where"));

	memset(res, 0, sizeof(*res));
	res->exit_code = -1;
	*state = RC_HOOK_UNKNOWN;
	return where && !strcmp(where, "local");
}

const char *rc_hook_state_name(rc_hook_state s)
{
	switch (s) {
	case RC_HOOK_NOT_STARTED:
		return "not started";
	case RC_HOOK_RUNNING:
		return "running";
	case RC_HOOK_SUCCEEDED:
		return "succeeded";
	case RC_HOOK_FAILED:
		return "failed";
	case RC_HOOK_UNKNOWN:
		break;
	}
	return "unknown";
}

void rc_driver_note(const rc_driver_ctx *ctx, const char *env,
		    const char *fmt, ...)
{
	rc_buf msg = RC_BUF_INIT_MAX(4096);
	va_list ap;

	if (!ctx || !ctx->note)
		return;
	va_start(ap, fmt);
	rc_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	ctx->note(ctx->note_arg, env, msg.ptr ? msg.ptr : "");
	rc_buf_release(&msg);
}

void rc_driver_progress(const rc_driver_ctx *ctx, const char *action_id,
			const char *fmt, ...)
{
	rc_buf msg = RC_BUF_INIT_MAX(1024);
	va_list ap;

	if (!ctx || !ctx->progress || !action_id)
		return;
	va_start(ap, fmt);
	rc_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	ctx->progress(ctx->note_arg, action_id, msg.ptr ? msg.ptr : "");
	rc_buf_release(&msg);
}
