/*
 * Fuzz target for the kubeconfig parser (drivers/kube_config.c): the
 * input is written as one kubeconfig file and loaded for its current
 * context, as target.kubeconfig is. Loading never runs an exec plugin
 * (that happens at the first request), so an input naming a command is
 * safe; file fields are only checked for readability.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/log.h"
#include "drivers/kube_config.h"

#include "tests/fuzz/fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rc_kube_conn c;
	const char *path = rc_fuzz_file("config", data, size);

	if (rc_kube_conn_load_from(&c, path, NULL) == 0)
		rc_kube_conn_release(&c);
	/* the tokens and keys it registered: the registry would only grow */
	rc_secret_clear();
	return 0;
}
