/* reconciler/base/codec: published test vectors, then the decoders'
 * refusals. */
#include "tests/unit/helpers.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"

/* The hex of a SHA-256 or an HMAC, for comparing with the vectors. */
static void hex_of(char out[RC_SHA256_HEX_LEN + 1],
		   const unsigned char md[RC_SHA256_LEN])
{
	rc_buf b = RC_BUF_INIT;

	assert_int_equal(rc_codec_hex_encode(&b, md, RC_SHA256_LEN), 0);
	assert_int_equal(b.len, RC_SHA256_HEX_LEN);
	memcpy(out, b.ptr, RC_SHA256_HEX_LEN + 1);
	rc_buf_release(&b);
}

/* FIPS 180-2, appendix B.1 to B.3 (and the SHA-256 of the empty string,
 * from the NIST examples of FIPS 180-4). */
static void codec_sha256_vectors(void **state)
{
	static const struct {
		const char *in, *hex;
	} v[] = {
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
		     "7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff"
			"61f20015ad"},
		{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db"
		 "06c1"},
	};
	unsigned char md[RC_SHA256_LEN];
	char hex[RC_SHA256_HEX_LEN + 1], digest[RC_SHA256_DIGEST_LEN + 1];
	char *million;

	RC_UNUSED(state);
	for (size_t i = 0; i < RC_ARRAY_SIZE(v); i++) {
		rc_codec_sha256(md, v[i].in, strlen(v[i].in));
		hex_of(hex, md);
		assert_string_equal(hex, v[i].hex);
		memset(hex, 'x', sizeof(hex));
		rc_codec_sha256_hex(hex, v[i].in, strlen(v[i].in));
		assert_string_equal(hex, v[i].hex);
		rc_codec_sha256_digest(digest, v[i].in, strlen(v[i].in));
		assert_int_equal(strlen(digest), RC_SHA256_DIGEST_LEN);
		assert_memory_equal(digest, "sha256:", 7);
		assert_string_equal(digest + 7, v[i].hex);
	}
	/* B.3: one million 'a' */
	million = rc_malloc(1000000);
	memset(million, 'a', 1000000);
	rc_codec_sha256_hex(hex, million, 1000000);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a4"
				 "97200e046d39ccc7112cd0");
	free(million);
	/* the length is what counts, not a NUL */
	rc_codec_sha256_hex(hex, "abc\0def", 3);
	assert_string_equal(hex, v[1].hex);
	rc_codec_sha256_hex(hex, NULL, 0);
	assert_string_equal(hex, v[0].hex);
}

/* RFC 4231 section 4, test cases 1 to 7 (HMAC-SHA-256 rows). */
static void codec_hmac_sha256_rfc4231(void **state)
{
	static const char long_data[] =
		"This is a test using a larger than block-size key and a "
		"larger than block-size data. The key needs to be hashed "
		"before being used by the HMAC algorithm.";
	unsigned char key[131], data[160], md[RC_SHA256_LEN];
	char hex[RC_SHA256_HEX_LEN + 1];

	RC_UNUSED(state);
	/* 4.2, test case 1 */
	memset(key, 0x0b, 20);
	rc_codec_hmac_sha256(md, key, 20, "Hi There", 8);
	hex_of(hex, md);
	assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c98"
				 "33da726e9376c2e32cff7");
	/* 4.3, test case 2: a key shorter than the output */
	rc_codec_hmac_sha256(md, "Jefe", 4, "what do ya want for nothing?", 28);
	hex_of(hex, md);
	assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d"
				 "2739839dec58b964ec3843");
	/* 4.4, test case 3: 50 bytes of 0xdd */
	memset(key, 0xaa, 20);
	memset(data, 0xdd, 50);
	rc_codec_hmac_sha256(md, key, 20, data, 50);
	hex_of(hex, md);
	assert_string_equal(hex, "773ea91e36800e46854db8ebd09181a72959098b3e"
				 "f8c122d9635514ced565fe");
	/* 4.5, test case 4: key 0x01..0x19, 50 bytes of 0xcd */
	for (unsigned i = 0; i < 25; i++)
		key[i] = (unsigned char)(i + 1);
	memset(data, 0xcd, 50);
	rc_codec_hmac_sha256(md, key, 25, data, 50);
	hex_of(hex, md);
	assert_string_equal(hex, "82558a389a443c0ea4cc819899f2083a85f0faa3e5"
				 "78f8077a2e3ff46729665b");
	/* 4.6, test case 5: the output truncated to 128 bits */
	memset(key, 0x0c, 20);
	rc_codec_hmac_sha256(md, key, 20, "Test With Truncation", 20);
	hex_of(hex, md);
	assert_memory_equal(hex, "a3b6167473100ee06e0c796c2955552b", 32);
	/* 4.7, test case 6: a 131-byte key, hashed first */
	memset(key, 0xaa, 131);
	rc_codec_hmac_sha256(md, key, 131,
			     "Test Using Larger Than Block-Size Key - Hash "
			     "Key First",
			     54);
	hex_of(hex, md);
	assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc62137"
				 "28c5140546040f0ee37f54");
	/* 4.8, test case 7: a 131-byte key and 152 bytes of data */
	rc_codec_hmac_sha256(md, key, 131, long_data, strlen(long_data));
	hex_of(hex, md);
	assert_string_equal(hex, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f"
				 "0713938a7f51535c3a35e2");
}

/* HMACs chain on raw bytes (AWS Signature Version 4 derives its signing
 * key so): the output of one is the key of the next. */
static void codec_hmac_chains(void **state)
{
	unsigned char k1[RC_SHA256_LEN], k2[RC_SHA256_LEN], k3[RC_SHA256_LEN];

	RC_UNUSED(state);
	rc_codec_hmac_sha256(k1, "AWS4secret", 10, "20150830", 8);
	rc_codec_hmac_sha256(k2, k1, sizeof(k1), "us-east-1", 9);
	rc_codec_hmac_sha256(k3, k1, sizeof(k1), "us-east-1", 9);
	assert_memory_equal(k2, k3, sizeof(k2));
	/* an empty key and empty data are allowed */
	rc_codec_hmac_sha256(k3, NULL, 0, NULL, 0);
	assert_memory_not_equal(k2, k3, sizeof(k2));
}

/* The encoding of in (len bytes) with flags is want, and want decodes
 * back to in. */
static void b64_both_ways(const char *in, size_t len, unsigned flags,
			  const char *want)
{
	rc_buf b = RC_BUF_INIT;

	assert_int_equal(rc_codec_base64_encode(&b, in, len, flags), 0);
	assert_string_equal(b.ptr, want);
	rc_buf_clear(&b);
	assert_int_equal(rc_codec_base64_decode(&b, want, strlen(want), flags),
			 0);
	assert_int_equal(b.len, len);
	assert_memory_equal(b.ptr, in, len);
	assert_int_equal(b.ptr[len], '\0');
	rc_buf_release(&b);
}

/* RFC 4648 section 10, BASE64; the same inputs in base64url (section 5),
 * with and without padding (section 3.2). */
static void codec_base64_rfc4648(void **state)
{
	static const struct {
		const char *in, *b64, *nopad;
	} v[] = {
		{"", "", ""},
		{"f", "Zg==", "Zg"},
		{"fo", "Zm8=", "Zm8"},
		{"foo", "Zm9v", "Zm9v"},
		{"foob", "Zm9vYg==", "Zm9vYg"},
		{"fooba", "Zm9vYmE=", "Zm9vYmE"},
		{"foobar", "Zm9vYmFy", "Zm9vYmFy"},
	};

	RC_UNUSED(state);
	for (size_t i = 0; i < RC_ARRAY_SIZE(v); i++) {
		size_t n = strlen(v[i].in);

		b64_both_ways(v[i].in, n, 0, v[i].b64);
		b64_both_ways(v[i].in, n, RC_BASE64_NOPAD, v[i].nopad);
		b64_both_ways(v[i].in, n, RC_BASE64_URL, v[i].b64);
		b64_both_ways(v[i].in, n, RC_BASE64_URL | RC_BASE64_NOPAD,
			      v[i].nopad);
	}
	/* section 9's illustrations, which use '+' (62); and bytes that
	 * encode to 62 and 63 in each alphabet */
	b64_both_ways("\x14\xfb\x9c\x03\xd9\x7e", 6, 0, "FPucA9l+");
	b64_both_ways("\x14\xfb\x9c\x03\xd9\x7e", 6, RC_BASE64_URL, "FPucA9l-");
	b64_both_ways("\x14\xfb\x9c\x03\xd9", 5, 0, "FPucA9k=");
	b64_both_ways("\x14\xfb\x9c\x03", 4, 0, "FPucAw==");
	b64_both_ways("\xfb\xff", 2, 0, "+/8=");
	b64_both_ways("\xfb\xff", 2, RC_BASE64_URL, "-_8=");
	b64_both_ways("\xfb\xff", 2, RC_BASE64_URL | RC_BASE64_NOPAD, "-_8");
	b64_both_ways("\xff\xff\xff", 3, 0, "////");
	b64_both_ways("\xff\xff\xff", 3, RC_BASE64_URL, "____");
	/* NUL bytes are data like any other */
	b64_both_ways("\0\0\0\0", 4, 0, "AAAAAA==");
}

/* Every byte value and every length up to 100, in every alphabet and
 * padding, decodes to what was encoded. */
static void codec_base64_round_trips(void **state)
{
	static const unsigned modes[] = {0, RC_BASE64_NOPAD, RC_BASE64_URL,
					 RC_BASE64_URL | RC_BASE64_NOPAD};
	unsigned char all[256];
	rc_buf e = RC_BUF_INIT, d = RC_BUF_INIT;

	RC_UNUSED(state);
	for (size_t i = 0; i < sizeof(all); i++)
		all[i] = (unsigned char)(i * 167 + 13);
	for (size_t m = 0; m < RC_ARRAY_SIZE(modes); m++) {
		for (size_t n = 0; n <= 100; n++) {
			rc_buf_clear(&e);
			rc_buf_clear(&d);
			assert_int_equal(rc_codec_base64_encode(&e, all + n, n,
								modes[m]),
					 0);
			assert_int_equal(e.len % 4 == 0,
					 !(modes[m] & RC_BASE64_NOPAD) ||
						 n % 3 == 0);
			assert_int_equal(rc_codec_base64_decode(&d, e.ptr,
								e.len,
								modes[m]),
					 0);
			assert_int_equal(d.len, n);
			assert_memory_equal(d.ptr, all + n, n);
		}
	}
	/* appends to what the buffer holds */
	rc_buf_clear(&e);
	rc_buf_puts(&e, "Basic ");
	assert_int_equal(rc_codec_base64_encode(&e, "u:p", 3, 0), 0);
	assert_string_equal(e.ptr, "Basic dTpw");
	rc_buf_release(&e);
	rc_buf_release(&d);
}

/* s does not decode with flags; the message says want and never quotes
 * the input; the buffer keeps what it held. */
static void b64_refused(const char *s, unsigned flags, const char *want)
{
	rc_buf b = RC_BUF_INIT;

	rc_error_clear();
	rc_buf_puts(&b, "kept");
	assert_int_equal(rc_codec_base64_decode(&b, s, strlen(s), flags),
			 RC_EINVALID);
	assert_non_null(rc_error_last());
	assert_string_equal(rc_error_last()->message, want);
	assert_string_equal(b.ptr, "kept");
	assert_int_equal(b.len, 4);
	rc_buf_release(&b);
}

static void codec_base64_refusals(void **state)
{
	RC_UNUSED(state);
	/* characters outside the alphabet (RFC 4648 section 3.3) */
	b64_refused("Zm9v!mFy", 0,
		    "invalid base64: unexpected character at offset 4");
	b64_refused("Zm9v\nYmFy", 0,
		    "invalid base64: unexpected character at offset 4");
	b64_refused("Zm9v YmFy", 0,
		    "invalid base64: unexpected character at offset 4");
	/* the other alphabet's 62 and 63 */
	b64_refused("-_8=", 0,
		    "invalid base64: unexpected character at offset 0");
	b64_refused("ab_8", 0,
		    "invalid base64: unexpected character at offset 2");
	b64_refused("+/8=", RC_BASE64_URL,
		    "invalid base64: unexpected character at offset 0");
	b64_refused("ab/8", RC_BASE64_URL | RC_BASE64_NOPAD,
		    "invalid base64: unexpected character at offset 2");
	/* padding: missing, too much, too little, in the middle */
	b64_refused("Zg", 0, "invalid base64: missing padding (2 '=' at the "
			     "end)");
	b64_refused("Zm9vYmE", RC_BASE64_URL,
		    "invalid base64: missing padding (1 '=' at the end)");
	b64_refused("Zg=", 0, "invalid base64: 1 '=' of padding where 2 "
			      "belong");
	b64_refused("Zg===", 0, "invalid base64: 3 '=' of padding where 2 "
				"belong");
	b64_refused("Zm8==", 0, "invalid base64: 2 '=' of padding where 1 "
				"belong");
	b64_refused("Zm9v=", 0, "invalid base64: padding after a whole "
				"group, at offset 4");
	b64_refused("====", 0, "invalid base64: padding after a whole group, "
			       "at offset 0");
	b64_refused("Zg==Zg==", 0,
		    "invalid base64: data after the padding, at offset 4");
	b64_refused("=Zg=", 0,
		    "invalid base64: data after the padding, at offset 1");
	b64_refused("Zg==", RC_BASE64_NOPAD,
		    "invalid base64: padding at offset 2, where none is "
		    "allowed");
	/* a length no encoding has */
	b64_refused("Z", 0, "invalid base64: truncated: a lone character at "
			    "the end");
	b64_refused("Zm9vY", RC_BASE64_NOPAD,
		    "invalid base64: truncated: a lone character at the end");
	b64_refused("Z===", 0, "invalid base64: truncated: a lone character "
			       "at the end");
	/* non-zero unused bits (section 3.5): "Zh==" and "Zm9=" are "Zg=="
	 * and "Zm8=" with a bit set that no byte holds */
	b64_refused("Zh==", 0, "invalid base64: the unused bits of the last "
			       "character are not zero");
	b64_refused("Zm9=", 0, "invalid base64: the unused bits of the last "
			       "character are not zero");
	b64_refused("Zh", RC_BASE64_URL | RC_BASE64_NOPAD,
		    "invalid base64: the unused bits of the last character "
		    "are not zero");
	/* the message never holds the text */
	b64_refused("c2VjcmV0!", 0,
		    "invalid base64: unexpected character at offset 8");
	/* a NUL is a character like any other: the length is what counts */
	{
		rc_buf b = RC_BUF_INIT;

		assert_int_equal(rc_codec_base64_decode(&b, "Zm9v\0YmFy", 9,
							0),
				 RC_EINVALID);
		assert_string_equal(rc_error_last()->message,
				    "invalid base64: unexpected character at "
				    "offset 4");
		assert_int_equal(b.len, 0);
		rc_buf_release(&b);
	}
}

/* RC_BASE64_LAX: what people paste into kubeconfig files. */
static void codec_base64_lax(void **state)
{
	rc_buf b = RC_BUF_INIT;

	RC_UNUSED(state);
	/* whitespace anywhere, as in PEM-like wrapped lines */
	assert_int_equal(rc_codec_base64_decode(&b, " Zm9v\nYmFy\r\n\t", 13,
						RC_BASE64_LAX),
			 0);
	assert_string_equal(b.ptr, "foobar");
	/* padding left out, or there and right */
	rc_buf_clear(&b);
	assert_int_equal(rc_codec_base64_decode(&b, "Zm9vYg", 6,
						RC_BASE64_LAX),
			 0);
	assert_string_equal(b.ptr, "foob");
	rc_buf_clear(&b);
	assert_int_equal(rc_codec_base64_decode(&b, "Zm9vYg==\n", 9,
						RC_BASE64_LAX),
			 0);
	assert_string_equal(b.ptr, "foob");
	/* unused bits set */
	rc_buf_clear(&b);
	assert_int_equal(rc_codec_base64_decode(&b, "Zh==", 4, RC_BASE64_LAX),
			 0);
	assert_string_equal(b.ptr, "f");
	rc_buf_release(&b);
	/* still refused: other characters, wrong padding, a lone one */
	b64_refused("Zm9v%YmFy", RC_BASE64_LAX,
		    "invalid base64: unexpected character at offset 4");
	b64_refused("Zm9vYg=", RC_BASE64_LAX,
		    "invalid base64: 1 '=' of padding where 2 belong");
	b64_refused("Zm9vY\n", RC_BASE64_LAX,
		    "invalid base64: truncated: a lone character at the end");
	b64_refused("Zg== Zg==", RC_BASE64_LAX,
		    "invalid base64: data after the padding, at offset 5");
}

/* A capped buffer: RC_ETOOBIG, and the buffer keeps what it held. */
static void codec_capped_output(void **state)
{
	rc_buf b = RC_BUF_INIT_MAX(5);

	RC_UNUSED(state);
	assert_int_equal(rc_codec_base64_encode(&b, "foo", 3, 0), 0);
	assert_int_equal(rc_codec_base64_encode(&b, "f", 1, 0), RC_ETOOBIG);
	assert_string_equal(b.ptr, "Zm9v");
	rc_buf_release(&b);
	rc_buf_init(&b, 5);
	assert_int_equal(rc_codec_base64_decode(&b, "Zm9vYmFy", 8, 0),
			 RC_ETOOBIG);
	assert_int_equal(b.len, 0);
	rc_buf_release(&b);
	rc_buf_init(&b, 5);
	assert_int_equal(rc_codec_hex_encode(&b, "abc", 3), RC_ETOOBIG);
	rc_buf_release(&b);
}

/* RFC 4648 section 10, BASE16: written in lowercase, read in either. */
static void codec_hex_rfc4648(void **state)
{
	static const struct {
		const char *in, *hex;
	} v[] = {
		{"", ""},
		{"f", "66"},
		{"fo", "666F"},
		{"foo", "666F6F"},
		{"foob", "666F6F62"},
		{"fooba", "666F6F6261"},
		{"foobar", "666F6F626172"},
	};
	rc_buf b = RC_BUF_INIT;

	RC_UNUSED(state);
	for (size_t i = 0; i < RC_ARRAY_SIZE(v); i++) {
		size_t n = strlen(v[i].hex);

		rc_buf_clear(&b);
		assert_int_equal(rc_codec_hex_encode(&b, v[i].in,
						     strlen(v[i].in)),
				 0);
		assert_int_equal(b.len, n);
		assert_int_equal(strcasecmp(b.ptr, v[i].hex), 0);
		for (size_t k = 0; k < b.len; k++)
			assert_false(isupper((unsigned char)b.ptr[k]));
		rc_buf_clear(&b);
		assert_int_equal(rc_codec_hex_decode(&b, v[i].hex, n), 0);
		assert_string_equal(b.ptr, v[i].in);
	}
	rc_buf_clear(&b);
	assert_int_equal(rc_codec_hex_decode(&b, "00fFaB7e", 8), 0);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.ptr, "\x00\xff\xab\x7e", 4);
	rc_buf_release(&b);
}

static void hex_refused(const char *s, const char *want)
{
	rc_buf b = RC_BUF_INIT;

	rc_buf_puts(&b, "kept");
	assert_int_equal(rc_codec_hex_decode(&b, s, strlen(s)), RC_EINVALID);
	assert_string_equal(rc_error_last()->message, want);
	assert_string_equal(b.ptr, "kept");
	rc_buf_release(&b);
}

static void codec_hex_refusals(void **state)
{
	RC_UNUSED(state);
	hex_refused("666", "invalid hex: an odd number of digits (3)");
	hex_refused("6g", "invalid hex: unexpected character at offset 1");
	hex_refused("0x12", "invalid hex: unexpected character at offset 1");
	hex_refused("66 6f", "invalid hex: unexpected character at offset 2");
	hex_refused("-1", "invalid hex: unexpected character at offset 0");
}

static void codec_equal_constant_time(void **state)
{
	unsigned char a[RC_SHA256_LEN], b[RC_SHA256_LEN];

	RC_UNUSED(state);
	rc_codec_hmac_sha256(a, "k", 1, "m", 1);
	memcpy(b, a, sizeof(a));
	assert_true(rc_codec_equal(a, sizeof(a), b, sizeof(b)));
	b[31] ^= 1;
	assert_false(rc_codec_equal(a, sizeof(a), b, sizeof(b)));
	b[31] ^= 1;
	b[0] ^= 0x80;
	assert_false(rc_codec_equal(a, sizeof(a), b, sizeof(b)));
	/* a prefix is not equal: the lengths differ */
	assert_false(rc_codec_equal(a, sizeof(a), a, 16));
	assert_false(rc_codec_equal("abc", 3, "abcd", 4));
	assert_false(rc_codec_equal("", 0, "a", 1));
	assert_true(rc_codec_equal("", 0, "", 0));
	assert_true(rc_codec_equal(NULL, 0, NULL, 0));
	assert_true(rc_codec_equal("a\0b", 3, "a\0b", 3));
	assert_false(rc_codec_equal("a\0b", 3, "a\0c", 3));
}

/* RFC 3986 section 2.1: unreserved characters kept, every other byte
 * (a NUL, a byte above 127 too) as %XX in uppercase. */
static void codec_percent_encode(void **state)
{
	rc_buf b = RC_BUF_INIT;

	RC_UNUSED(state);
	assert_int_equal(rc_codec_percent_encode(&b, "aZ09-._~", 8), 0);
	assert_string_equal(b.ptr, "aZ09-._~");
	rc_buf_clear(&b);
	assert_int_equal(rc_codec_percent_encode(&b, "p@ss w/rd+\0\xff", 12),
			 0);
	assert_string_equal(b.ptr, "p%40ss%20w%2Frd%2B%00%FF");
	rc_buf_release(&b);
}

int test_group_codec(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(codec_sha256_vectors),
		cmocka_unit_test(codec_hmac_sha256_rfc4231),
		cmocka_unit_test(codec_hmac_chains),
		cmocka_unit_test(codec_base64_rfc4648),
		cmocka_unit_test(codec_base64_round_trips),
		cmocka_unit_test(codec_base64_refusals),
		cmocka_unit_test(codec_base64_lax),
		cmocka_unit_test(codec_capped_output),
		cmocka_unit_test(codec_hex_rfc4648),
		cmocka_unit_test(codec_hex_refusals),
		cmocka_unit_test(codec_equal_constant_time),
		cmocka_unit_test(codec_percent_encode),
	};
	return cmocka_run_group_tests_name("codec", tests, NULL, NULL);
}
