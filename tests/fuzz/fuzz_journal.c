/*
 * Fuzz target for the journal reader (state/journal.c): the input is a
 * journal file's bytes ("<length> <json> <checksum>" lines), read whole
 * with rc_journal_read() and scanned record by record with
 * rc_journal_scan(), which stops half-way on some inputs.
 */
#include "reconciler/base/common.h"
#include "state/journal.h"

#include <fcntl.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[80];

static int count(void *ctx, json_t *rec)
{
	size_t *n = ctx;

	RC_UNUSED(rec);
	return ++*n == 3 ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rc_journal_contents c;
	bool torn;
	long long off;
	size_t n = 0;
	int fd;

	if (!path[0]) {
		char tmpl[] = "/tmp/rc-fuzz-journal-XXXXXX";

		if (!mkdtemp(tmpl))
			abort();
		snprintf(path, sizeof(path), "%s/run.journal", tmpl);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	rc_journal_read(&c, path);
	rc_journal_contents_release(&c);
	rc_journal_scan(path, count, &n, &torn, &off);
	return 0;
}
