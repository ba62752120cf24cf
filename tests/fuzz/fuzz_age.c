/*
 * Fuzz target for the age parsers (schema/age.c): armor, header,
 * stanzas, unwrapping and the payload. Each input is inspected, then
 * decrypted with the testkit's X25519 identity and a passphrase whose
 * work factor is capped low, so that scrypt stanzas stay cheap. A
 * testkit vector ("key: value" lines, an empty line, the file) is
 * fuzzed from its file part.
 */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "schema/age.h"

#include <openssl/crypto.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static rc_age_identity_list ids;
	rc_buf out = RC_BUF_INIT_MAX(1 << 20);
	size_t skip = 0;
	rc_age_failure why;
	rc_age_info info;

	if (ids.count == 0) {
		rc_age_identity *id;

		rc_age_identity_parse(&id, "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0");
		rc_age_identity_list_add(&ids, id);
		rc_age_identity_passphrase(&id, "password", 8, 12);
		rc_age_identity_list_add(&ids, id);
	}
	if (size > 8 && memcmp(data, "expect: ", 8) == 0) {
		while (skip + 1 < size &&
		       !(data[skip] == '\n' && data[skip + 1] == '\n'))
			skip++;
		skip = skip + 1 < size ? skip + 2 : 0;
	}
	data += skip;
	size -= skip;
	if (rc_age_inspect(&info, data, size) == 0)
		rc_age_info_release(&info);
	rc_age_decrypt(&out, data, size, &ids, 0, &why);
	OPENSSL_cleanse(out.ptr, out.len);
	rc_buf_release(&out);
	return 0;
}
