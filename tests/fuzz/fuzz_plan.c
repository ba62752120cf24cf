/*
 * Fuzz target for saved plans (reconciler/plan.c): the input is parsed as
 * JSON and read with rc_plan_from_json(), as `reconcile apply <file>`
 * does; a plan it accepts is rendered and written back to JSON.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, 0, NULL);
	rc_plan p;

	if (!j)
		return 0;
	memset(&p, 0, sizeof(p));
	if (rc_plan_from_json(&p, j) == 0) {
		rc_buf out = RC_BUF_INIT;
		size_t counts[5];
		json_t *back;

		rc_plan_counts(&p, counts);
		rc_plan_render_text(&p, &out, false);
		rc_buf_release(&out);
		back = rc_plan_to_json(&p);
		json_decref(back);
	}
	rc_plan_release(&p);
	json_decref(j);
	return 0;
}
