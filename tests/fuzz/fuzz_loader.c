/*
 * Fuzz target for the configuration loader. The input is split into files
 * at lines "#--- NAME" (the first part, or everything, is reconcile.yaml),
 * written into a private directory, and loaded offline: YAML parsing,
 * overlays, generators over list items, substitution and typing all run.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "schema/load.h"

#include <fcntl.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void clear_dir(void)
{
	static const char *names[] = {"reconcile.yaml", "a.yaml", "b.yaml",
				      "c.yaml", "k8s.yaml"};
	rc_buf p = RC_BUF_INIT;

	for (size_t i = 0; i < RC_ARRAY_SIZE(names); i++) {
		rc_buf_clear(&p);
		rc_buf_printf(&p, "%s/%s", dir, names[i]);
		unlink(p.ptr);
	}
	rc_buf_release(&p);
}

static void write_part(const char *name, const uint8_t *d, size_t n)
{
	rc_buf p = RC_BUF_INIT;
	int fd;

	/* only plain names from a fixed set, so the input cannot write
	 * elsewhere */
	if (strcmp(name, "reconcile.yaml") && strcmp(name, "a.yaml") &&
	    strcmp(name, "b.yaml") && strcmp(name, "c.yaml") &&
	    strcmp(name, "k8s.yaml"))
		return;
	rc_buf_printf(&p, "%s/%s", dir, name);
	fd = open(p.ptr, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		ssize_t w = write(fd, d, n);

		RC_UNUSED(w);
		close(fd);
	}
	rc_buf_release(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size, *start = data;
	char name[32] = "reconcile.yaml";
	rc_config *cfg = NULL;
	rc_diags d;
	rc_load_opts o = {.offline = true};
	rc_buf out = RC_BUF_INIT;

	if (!dir[0]) {
		char tmpl[] = "/tmp/rc-fuzz-XXXXXX";

		if (!mkdtemp(tmpl))
			abort();
		snprintf(dir, sizeof(dir), "%s", tmpl);
	}
	clear_dir();
	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		const uint8_t *line_end = nl ? nl : end;

		if (line_end - p > 5 && !memcmp(p, "#--- ", 5) &&
		    line_end - p - 5 < (ptrdiff_t)sizeof(name)) {
			write_part(name, start, (size_t)(p - start));
			snprintf(name, sizeof(name), "%.*s",
				 (int)(line_end - p - 5), (const char *)p + 5);
			start = nl ? nl + 1 : end;
		}
		p = nl ? nl + 1 : end;
	}
	write_part(name, start, (size_t)(end - start));

	rc_diags_init(&d);
	rc_config_load(&cfg, dir, &o, &d);
	rc_diags_format(&d, &out, false);
	rc_buf_release(&out);
	rc_diags_release(&d);
	rc_config_free(cfg);
	return 0;
}
