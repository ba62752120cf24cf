/*
 * Fuzz target for the decoding of ECS replies (drivers/ecs_map.c): the
 * input is parsed as JSON; a DescribeTaskDefinition reply's
 * "taskDefinition" (or the input itself) goes through
 * rc_ecs_taskdef_from_api() and back through rc_ecs_taskdef_request(),
 * each of a DescribeServices reply's "services" (or the input) through
 * rc_ecs_service_from_api() (without and with itself as the desired body)
 * and rc_ecs_service_health(), and the normal forms through
 * rc_ecs_normalize().
 */
#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "drivers/ecs_map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void taskdef(const json_t *td)
{
	json_t *body = rc_ecs_taskdef_from_api(td), *req;

	if (!body)
		return;
	rc_ecs_normalize(RC_ECS_TASKDEF, body);
	req = rc_ecs_taskdef_request(body);
	json_decref(req);
	json_decref(body);
}

static void service(const json_t *svc)
{
	json_t *body;
	bool unhealthy = false;
	char *h;

	body = rc_ecs_service_from_api(svc, NULL);
	if (body) {
		rc_ecs_normalize(RC_ECS_SERVICE, body);
		json_decref(body);
	}
	body = rc_ecs_service_from_api(svc, svc);
	json_decref(body);
	h = rc_ecs_service_health(svc, &unhealthy);
	free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, 0, NULL);
	const json_t *td, *svcs;
	json_t *copy;

	if (!j)
		return 0;
	td = json_object_get(j, "taskDefinition");
	taskdef(td ? td : j);
	svcs = json_object_get(j, "services");
	if (json_is_array(svcs))
		for (size_t i = 0; i < json_array_size(svcs) && i < 64; i++)
			service(json_array_get(svcs, i));
	else
		service(j);
	if (json_is_object(j)) {
		copy = json_deep_copy(j);
		rc_ecs_normalize(RC_ECS_CLUSTER, copy);
		json_decref(copy);
	}
	json_decref(j);
	rc_error_clear();
	return 0;
}
