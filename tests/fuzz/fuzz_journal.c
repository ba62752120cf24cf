/*
 * Fuzz target for the journal reader (state/journal.c): the input is a
 * journal file's bytes ("<length> <json> <checksum>" lines), read whole
 * with rc_journal_read() and scanned record by record with
 * rc_journal_scan(), which stops half-way on some inputs. An input that
 * starts with "#frame\n" is framed first: each later line becomes a
 * record with its length and a good checksum (the last one without its
 * '\n' when the input does not end with one), so that mutations reach
 * the records' JSON instead of failing the checksum.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "state/journal.h"

#include "tests/fuzz/fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int count(void *ctx, json_t *rec)
{
	size_t *n = ctx;

	RC_UNUSED(rec);
	return ++*n == 3 ? 1 : 0;
}

/* "<checksum> <length> <json>\n" for each line of data into out. */
static void frame(rc_buf *out, const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	char sum[RC_SHA256_HEX_LEN + 1];
	rc_buf line = RC_BUF_INIT;

	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);

		rc_buf_clear(&line);
		rc_buf_printf(&line, "%zu ", n);
		rc_buf_put(&line, p, n);
		rc_codec_sha256_hex(sum, line.ptr, line.len);
		rc_buf_printf(out, "%.16s ", sum);
		rc_buf_put(out, line.ptr, line.len);
		if (nl)
			rc_buf_putc(out, '\n');
		p = nl ? nl + 1 : end;
	}
	rc_buf_release(&line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rc_buf framed = RC_BUF_INIT;
	rc_journal_contents c;
	bool torn;
	long long off;
	size_t n = 0;
	const char *path;

	if (size >= 7 && !memcmp(data, "#frame\n", 7)) {
		frame(&framed, data + 7, size - 7);
		data = (const uint8_t *)framed.ptr;
		size = framed.len;
	}
	path = rc_fuzz_file("run.journal", data, size);
	rc_buf_release(&framed);
	rc_journal_read(&c, path);
	rc_journal_contents_release(&c);
	rc_journal_scan(path, count, &n, &torn, &off);
	return 0;
}
