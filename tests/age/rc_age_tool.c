/*
 * rc_age_tool: schema/age over standard input and output, for
 * tests/age/interop.sh (the `reconcile secret` commands come later).
 *
 *   rc_age_tool encrypt [-a] [-r RECIPIENT]... [-R FILE]...
 *   rc_age_tool decrypt [-i FILE]...   (no -i: rc_age_identities_load)
 *   rc_age_tool inspect
 *   rc_age_tool keygen                 (identity line, then recipient)
 */
#include "reconciler/base/error.h"
#include "schema/age.h"

#include <openssl/crypto.h>

static int fail(const char *what)
{
	const rc_error *e = rc_error_last();

	fprintf(stderr, "rc_age_tool: %s: %s\n", what, e ? e->message : "?");
	return 1;
}

static int read_stream(rc_buf *b, FILE *f)
{
	char chunk[65536];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (rc_buf_put(b, chunk, n))
			return -1;
	return ferror(f) ? -1 : 0;
}

static int add_recipient(rc_age_recipient_list *rs, const char *text)
{
	rc_age_recipient *r;

	if (rc_age_recipient_parse(&r, text))
		return -1;
	rc_age_recipient_list_add(rs, r);
	return 0;
}

/* A recipients file: one recipient per line, '#' comments. */
static int add_recipients_file(rc_age_recipient_list *rs, const char *path)
{
	rc_buf b = RC_BUF_INIT;
	FILE *f = fopen(path, "rb");
	char *line, *save = NULL;
	int rc = 0;

	if (!f || read_stream(&b, f))
		return rc_error_set_os("cannot read '%s'", path);
	fclose(f);
	for (line = strtok_r(b.ptr, "\n", &save); line && !rc;
	     line = strtok_r(NULL, "\n", &save))
		if (line[0] != '#' && line[strspn(line, " \t\r")] != '\0')
			rc = add_recipient(rs, line);
	rc_buf_release(&b);
	return rc;
}

int main(int argc, char **argv)
{
	rc_buf in = RC_BUF_INIT, out = RC_BUF_INIT;
	rc_age_recipient_list rs = {0};
	rc_age_identity_list ids = {0};
	unsigned flags = 0;
	int rc = 1;

	if (argc < 2)
		goto usage;
	if (strcmp(argv[1], "keygen") == 0) {
		char *id, *r;

		rc_age_keygen(&id, &r);
		printf("%s\n%s\n", id, r);
		OPENSSL_cleanse(id, strlen(id));
		free(id);
		free(r);
		return 0;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "-a") == 0) {
			flags |= RC_AGE_ARMOR;
		} else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) {
			if (add_recipient(&rs, argv[++i]))
				return fail("recipient");
		} else if (strcmp(argv[i], "-R") == 0 && i + 1 < argc) {
			if (add_recipients_file(&rs, argv[++i]))
				return fail("recipients file");
		} else if (strcmp(argv[i], "-i") == 0 && i + 1 < argc) {
			if (rc_age_identities_read_file(&ids, argv[++i]))
				return fail("identity");
		} else {
			goto usage;
		}
	}
	if (read_stream(&in, stdin))
		return fail("standard input");
	if (strcmp(argv[1], "encrypt") == 0) {
		if (rc_age_encrypt(&out, in.ptr, in.len, &rs, flags))
			return fail("encrypt");
	} else if (strcmp(argv[1], "decrypt") == 0) {
		rc_age_failure why;

		if (ids.count == 0 && rc_age_identities_load(&ids))
			return fail("identities");
		if (rc_age_decrypt(&out, in.ptr, in.len, &ids, 0, &why)) {
			fprintf(stderr, "rc_age_tool: %s\n",
				rc_age_failure_name(why));
			return fail("decrypt");
		}
	} else if (strcmp(argv[1], "inspect") == 0) {
		rc_age_info info;

		if (rc_age_inspect(&info, in.ptr, in.len))
			return fail("inspect");
		rc_buf_printf(&out, "%s ", info.armored ? "armored" : "binary");
		rc_age_info_describe(&out, &info);
		rc_buf_putc(&out, '\n');
		rc_age_info_release(&info);
	} else {
		goto usage;
	}
	rc = fwrite(out.ptr, 1, out.len, stdout) == out.len ? 0 : 1;
	OPENSSL_cleanse(out.ptr, out.len);
	rc_buf_release(&out);
	rc_buf_release(&in);
	rc_age_identity_list_release(&ids);
	rc_age_recipient_list_release(&rs);
	return rc;
usage:
	fprintf(stderr, "usage: rc_age_tool encrypt [-a] [-r R]... [-R FILE]... | "
			"decrypt [-i FILE]... | inspect | keygen\n");
	return 2;
}
