/*
 * Fuzz target for SSH signatures and allowed-signers files
 * (reconciler/sshsig.c, as reconciler/verify.c uses them for a commit's
 * gpgsig header): the input is a signature, then optionally a line
 * "#signers" and an allowed-signers file. A signature that starts with
 * the binary blob's magic "SSHSIG" is armored by the target first, so
 * that mutations reach the blob's fields instead of breaking the base64;
 * otherwise it is parsed as text. A parsed signature is verified over the
 * message the seeds were signed over (ssh-keygen -Y sign, as in
 * tests/unit/test_sshsig.c) and its key looked up in the allowed signers
 * for the namespace "git"; the first word of the file is read as a
 * valid-after time and as a pattern list.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "reconciler/sshsig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char MSG[] = "tree 1234\n\nhello, trust\n";

static void signers(const rc_sshsig *s, const char *text)
{
	rc_allowed_signers a = {0};
	const char *who = NULL;
	char word[64];
	size_t n = strcspn(text, " \t\n");

	snprintf(word, sizeof(word), "%.*s", (int)(n < 63 ? n : 63), text);
	(void)rc_ssh_time_parse(word);
	(void)rc_ssh_match_list("git", word);
	if (rc_allowed_signers_parse(&a, text, "allowed_signers") < 0)
		return;
	if (s && rc_allowed_signers_check(&a, s->key, s->keylen, "git",
					  1700000000, &who) == 0 && !who)
		abort();
	rc_allowed_signers_release(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char sep[] = "\n#signers\n";
	const char *p = (const char *)data, *cut;
	rc_buf sig = RC_BUF_INIT_MAX(1 << 20);
	size_t siglen = size;
	char *text;
	rc_sshsig s;
	bool parsed;

	cut = NULL;
	for (size_t i = 0; !cut && i + sizeof(sep) - 1 <= size; i++)
		if (!memcmp(p + i, sep, sizeof(sep) - 1))
			cut = p + i;
	if (cut)
		siglen = (size_t)(cut - p);
	if (siglen >= 6 && !memcmp(p, "SSHSIG", 6)) {
		rc_buf_puts(&sig, "-----BEGIN SSH SIGNATURE-----\n");
		rc_codec_base64_encode(&sig, p, siglen, 0);
		rc_buf_puts(&sig, "\n-----END SSH SIGNATURE-----\n");
	} else {
		rc_buf_put(&sig, p, siglen);
	}
	parsed = rc_sshsig_parse(&s, sig.ptr, sig.len) == 0;
	if (parsed) {
		if (!s.namespace || strncmp(s.fingerprint, "SHA256:", 7))
			abort();
		(void)rc_sshsig_verify(&s, MSG, sizeof(MSG) - 1);
	}
	text = cut ? rc_strndup(cut + sizeof(sep) - 1,
				size - siglen - (sizeof(sep) - 1))
		   : rc_strndup(p, size);
	signers(parsed ? &s : NULL, text);
	free(text);
	if (parsed)
		rc_sshsig_release(&s);
	rc_buf_release(&sig);
	rc_error_clear();
	return 0;
}
