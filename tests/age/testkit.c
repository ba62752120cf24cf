/*
 * age.testkit: every vector of the C2SP age testkit
 * (../shared/contracts/age/testkit, see its SOURCES.txt) through
 * rc_age_decrypt, checking the kind of result each one expects and, on
 * success, the SHA-256 of the payload. Vectors whose identities are
 * post-quantum (unsupported) are counted as skipped.
 *
 * usage: rc_age_testkit DIR
 * prints "passed N, failed M, skipped K (post-quantum)"; exit 1 on any
 * failure.
 */
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "schema/age.h"

#include <dirent.h>
#include <zlib.h>

static int read_all(rc_buf *b, const char *path)
{
	FILE *f = fopen(path, "rb");
	char chunk[8192];
	size_t n;

	if (!f)
		return -1;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc_buf_put(b, chunk, n);
	fclose(f);
	return 0;
}

static int inflate_all(rc_buf *out, const unsigned char *in, size_t len)
{
	z_stream z;
	unsigned char chunk[16384];
	int zr;

	memset(&z, 0, sizeof(z));
	if (inflateInit(&z) != Z_OK)
		return -1;
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)len;
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		zr = inflate(&z, Z_NO_FLUSH);
		if (zr != Z_OK && zr != Z_STREAM_END) {
			inflateEnd(&z);
			return -1;
		}
		rc_buf_put(out, chunk, sizeof(chunk) - z.avail_out);
	} while (zr != Z_STREAM_END);
	inflateEnd(&z);
	return 0;
}

typedef enum { PASSED, FAILED, SKIPPED } outcome;

static outcome run_vector(const char *dir, const char *name)
{
	rc_buf path = RC_BUF_INIT, text = RC_BUF_INIT, body = RC_BUF_INIT,
	       plain = RC_BUF_INIT;
	rc_age_identity_list ids = {0};
	char expect[64] = "", payload[RC_SHA256_HEX_LEN + 1] = "", got[65];
	bool armored = false, zlib = false, skip = false;
	size_t pos = 0;
	rc_age_failure why;
	outcome o = FAILED;

	rc_buf_printf(&path, "%s/%s", dir, name);
	if (read_all(&text, path.ptr) != 0) {
		printf("FAIL %s: cannot read\n", name);
		goto done;
	}
	/* "key: value" lines up to an empty line */
	while (pos < text.len) {
		char *line = text.ptr + pos, *nl = memchr(line, '\n', text.len - pos);
		char *colon;

		if (!nl)
			break;
		*nl = '\0';
		pos = (size_t)(nl - text.ptr) + 1;
		if (*line == '\0')
			break;
		colon = strstr(line, ": ");
		if (!colon)
			continue;
		*colon = '\0';
		colon += 2;
		if (strcmp(line, "expect") == 0) {
			snprintf(expect, sizeof(expect), "%s", colon);
		} else if (strcmp(line, "payload") == 0) {
			snprintf(payload, sizeof(payload), "%s", colon);
		} else if (strcmp(line, "identity") == 0) {
			rc_age_identity *id;
			int rc = rc_age_identity_parse(&id, colon);

			if (rc == RC_EUNSUPPORTED) {
				skip = true;
			} else if (rc) {
				printf("FAIL %s: identity: %s\n", name,
				       rc_error_last()->message);
				goto done;
			} else {
				rc_age_identity_list_add(&ids, id);
			}
		} else if (strcmp(line, "passphrase") == 0) {
			rc_age_identity *id;

			rc_age_identity_passphrase(&id, colon, strlen(colon), 0);
			rc_age_identity_list_add(&ids, id);
		} else if (strcmp(line, "armored") == 0) {
			armored = strcmp(colon, "yes") == 0;
		} else if (strcmp(line, "compressed") == 0) {
			zlib = strcmp(colon, "zlib") == 0;
		}
	}
	if (skip) {
		o = SKIPPED;
		goto done;
	}
	if (zlib) {
		if (inflate_all(&body, (unsigned char *)text.ptr + pos,
				text.len - pos) != 0) {
			printf("FAIL %s: cannot inflate\n", name);
			goto done;
		}
	} else {
		rc_buf_put(&body, text.ptr + pos, text.len - pos);
	}
	rc_age_decrypt(&plain, body.ptr, body.len, &ids,
		       armored ? RC_AGE_ARMORED : RC_AGE_BINARY, &why);
	if (strcmp(rc_age_failure_name(why), expect) != 0) {
		printf("FAIL %s: expected %s, got %s%s%s\n", name, expect,
		       rc_age_failure_name(why), why ? ": " : "",
		       why ? rc_error_last()->message : "");
		goto done;
	}
	if (why == RC_AGE_OK) {
		rc_codec_sha256_hex(got, plain.ptr, plain.len);
		if (strcmp(got, payload) != 0) {
			printf("FAIL %s: payload SHA-256 %s, expected %s\n",
			       name, got, payload);
			goto done;
		}
	}
	o = PASSED;
done:
	rc_age_identity_list_release(&ids);
	rc_buf_release(&path);
	rc_buf_release(&text);
	rc_buf_release(&body);
	rc_buf_release(&plain);
	return o;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	DIR *d;
	struct dirent *e;
	char **names = NULL;
	size_t count = 0, alloc = 0;
	int n[3] = {0, 0, 0};

	if (argc != 2) {
		fprintf(stderr, "usage: rc_age_testkit DIR\n");
		return 2;
	}
	d = opendir(argv[1]);
	if (!d) {
		fprintf(stderr, "rc_age_testkit: cannot open '%s'\n", argv[1]);
		return 2;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		RC_GROW(names, alloc, count + 1);
		names[count++] = rc_strdup(e->d_name);
	}
	closedir(d);
	qsort(names, count, sizeof(*names), by_name);
	for (size_t i = 0; i < count; i++) {
		n[run_vector(argv[1], names[i])]++;
		free(names[i]);
	}
	free(names);
	printf("passed %d, failed %d, skipped %d (post-quantum)\n", n[PASSED],
	       n[FAILED], n[SKIPPED]);
	return n[FAILED] || n[PASSED] == 0 ? 1 : 0;
}
