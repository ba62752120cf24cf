/*
 * Fuzz target for the decoding of Kubernetes API replies
 * (drivers/kube_map.c): the input is parsed as JSON (an object, or a
 * List whose items are each decoded), then put in normal form with
 * rc_kube_to_body() (without and with itself as the desired body, so
 * that Secret data meets secret references), its health read with
 * rc_kube_health(), and its normal form and the raw object folded with
 * rc_kube_normalize() under their kind and a few fixed kinds, and what
 * holds it read as a terminating object (rc_kube_deletion_stuck()). The
 * body is also read as the reply of a failed request
 * (rc_kube_status_error()) with the status of an optional first line
 * "NNN", else one of the statuses the driver explains. A canary secret
 * is registered before each input (tests/fuzz/fuzz_canary.h): a Status
 * error holding it aborts.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "drivers/kube_map.h"

#include "tests/fuzz/fuzz_canary.h"
#include "tests/fuzz/fuzz_status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *kinds[] = {"Deployment", "Service", "ConfigMap",
			      "Secret", "Job", "StatefulSet", "Ingress"};

static void one(const json_t *obj)
{
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	json_t *body, *copy;
	bool unhealthy = false;
	char *h;

	body = rc_kube_to_body(obj, NULL);
	if (body) {
		rc_kube_normalize(kind ? kind : "", body);
		json_decref(body);
	}
	body = rc_kube_to_body(obj, obj);
	json_decref(body);
	h = rc_kube_health(obj, &unhealthy);
	free(h);
	if (json_is_object(obj)) {
		rc_buf out = RC_BUF_INIT_MAX(1 << 16);

		rc_kube_deletion_stuck(&out, "deployments.apps", obj, 42,
				       json_object_get(obj, "deps"));
		rc_buf_release(&out);
	}
	for (size_t i = 0; i < RC_ARRAY_SIZE(kinds); i++) {
		if (!json_is_object(obj))
			break;
		copy = json_deep_copy(obj);
		rc_kube_normalize(kinds[i], copy);
		json_decref(copy);
	}
	rc_error_clear();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = {401, 403, 404, 409, 410, 422, 429, 500};
	long status = statuses[size % RC_ARRAY_SIZE(statuses)];
	const json_t *items;
	json_t *j;

	rc_fuzz_canary_register();
	rc_fuzz_status(&data, &size, &status);
	rc_kube_status_error(status, (const char *)data, size);
	rc_fuzz_canary_check("a Kubernetes Status");
	rc_error_clear();
	j = json_loadb((const char *)data, size, 0, NULL);
	items = json_object_get(j, "items");
	if (!j) {
		rc_secret_clear();
		return 0;
	}
	one(j);
	for (size_t i = 0; i < json_array_size(items) && i < 64; i++)
		one(json_array_get(items, i));
	json_decref(j);
	rc_secret_clear();
	return 0;
}
