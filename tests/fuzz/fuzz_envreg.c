/*
 * Fuzz target for the registry of generated environments
 * (state/envreg.c): the input is written as <state>/environments.json and
 * loaded with rc_envreg_load().
 */
#include "reconciler/base/common.h"
#include "state/envreg.h"

#include <fcntl.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], path[96];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *reg = NULL;
	int fd;

	if (!dir[0]) {
		char tmpl[] = "/tmp/rc-fuzz-envreg-XXXXXX";

		if (!mkdtemp(tmpl))
			abort();
		snprintf(dir, sizeof(dir), "%s", tmpl);
		snprintf(path, sizeof(path), "%s/environments.json", dir);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	if (rc_envreg_load(&reg, dir) == 0)
		json_decref(reg);
	return 0;
}
