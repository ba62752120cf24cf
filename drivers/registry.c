/* The static registry of drivers. */
#include "reconciler/base/common.h"
#include "drivers/driver.h"

/* Each driver exports its operations; add a line here for a new one. */
extern const rc_driver_ops rc_driver_local;
extern const rc_driver_ops rc_driver_kubernetes;
extern const rc_driver_ops rc_driver_heroku;

static const rc_driver_ops *const drivers[] = {
	&rc_driver_local,
	&rc_driver_kubernetes,
	&rc_driver_heroku,
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
