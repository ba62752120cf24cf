/*
 * Fuzz target for the registry of generated environments
 * (state/envreg.c): the input is written as <state>/environments.json and
 * loaded with rc_envreg_load().
 */
#include "reconciler/base/common.h"
#include "state/envreg.h"

#include "tests/fuzz/fuzz_file.h"

#include <libgen.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *reg = NULL;
	char dir[256];

	snprintf(dir, sizeof(dir), "%s",
		 rc_fuzz_file("environments.json", data, size));
	if (rc_envreg_load(&reg, dirname(dir)) == 0)
		json_decref(reg);
	return 0;
}
