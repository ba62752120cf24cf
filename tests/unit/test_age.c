/* schema/age: bech32, keys, the header's strict parsing, and
 * encrypt -> decrypt round trips for every recipient type. The C2SP
 * vectors run in age.testkit, interop with Debian's age in age.interop. */
#include "tests/unit/helpers.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "schema/age.h"

#include <sys/stat.h>

/* The testkit's identity and the recipient `age-keygen -y` gives for it. */
#define TK_IDENTITY "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"
#define TK_RECIPIENT "age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef"

/* A string literal and its length. */
#define LIT(s) s, sizeof(s) - 1

/* Test keys made with ssh-keygen for this file only. */
static const char ssh_ed25519_key[] =
	"-----BEGIN OPENSSH PRIVATE KEY-----\n"
	"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
	"QyNTUxOQAAACBsyGqNLFxZul/kkxS2RO/loGFNhl2v6ql7N9Ddy19NvgAAAJCI+5FRiPuR\n"
	"UQAAAAtzc2gtZWQyNTUxOQAAACBsyGqNLFxZul/kkxS2RO/loGFNhl2v6ql7N9Ddy19Nvg\n"
	"AAAEDyuFsZ+CZAy/AjAVkFeJ2b9uDLOqkOek0gMTIazgcG+GzIao0sXFm6X+STFLZE7+Wg\n"
	"YU2GXa/qqXs30N3LX02+AAAACXVuaXRAdGVzdAECAwQ=\n"
	"-----END OPENSSH PRIVATE KEY-----\n"
	;
static const char ssh_ed25519_pub[] =
	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGzIao0sXFm6X+STFLZE7+WgYU2GXa/qqXs30N3LX02+ unit@test";
static const char ssh_rsa_key[] =
	"-----BEGIN OPENSSH PRIVATE KEY-----\n"
	"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAABFwAAAAdzc2gtcn\n"
	"NhAAAAAwEAAQAAAQEAxY7L8ynUp08fA5rccWxsZjqRKWKPVNZBUJNRMI1/tfs/ogIkhopP\n"
	"albx3TkScjddINN/vor07Hm/1Njd4TI2FThd8z8qcSN2UmFUuaztrjVOHVTsA+6b5BVI3A\n"
	"I0njd7fm9VINHZkfph9LF9v+8WreC8oQZnd7cXvt9U77wlJNWALVzO6EWV65ZACROO2DBu\n"
	"0Ji+cXbh5zflKEFbdc6GTFbgl/WyCLqsiEZsOxrUKxmVgFlGrM7nH/rekKNCTzC5fgymOv\n"
	"TO+x+gm6++pLrUm9quWzlqqcDQuSy5IDDPL7vvakr0cOSEY4lpcQ5LtUC8EO3mdsQwAo2N\n"
	"GcFQspyTUQAAA8D66AiO+ugIjgAAAAdzc2gtcnNhAAABAQDFjsvzKdSnTx8DmtxxbGxmOp\n"
	"EpYo9U1kFQk1EwjX+1+z+iAiSGik9qVvHdORJyN10g03++ivTseb/U2N3hMjYVOF3zPypx\n"
	"I3ZSYVS5rO2uNU4dVOwD7pvkFUjcAjSeN3t+b1Ug0dmR+mH0sX2/7xat4LyhBmd3txe+31\n"
	"TvvCUk1YAtXM7oRZXrlkAJE47YMG7QmL5xduHnN+UoQVt1zoZMVuCX9bIIuqyIRmw7GtQr\n"
	"GZWAWUaszucf+t6Qo0JPMLl+DKY69M77H6Cbr76kutSb2q5bOWqpwNC5LLkgMM8vu+9qSv\n"
	"Rw5IRjiWlxDku1QLwQ7eZ2xDACjY0ZwVCynJNRAAAAAwEAAQAAAQA4h0Ybc5Y6M30T2n2G\n"
	"ZPhVfh+oQF/z7gStaiHaqzpmV5ibIlLSPoQ/0NYPL3P0Q5w9ttcALiGsAqBd5poChIwOIV\n"
	"1cq2/ZBMUoCFqmcHFoHi+WXATWkTGBH4gEEAt/VC/dezzYEcPYLdVWn2z0fRS3ty0yRDNa\n"
	"AYVlY+EZYfQc6Aulxoyh5jrZj/Ax/fe+PTleMy8HWHkCYekGsLfzJXwcjTKmzczT4QKn+K\n"
	"0Lkl9oS901CcB+wAU9f8WpWrUk7zYIdMXA4m5iT0hYiguiqfPRUAmEhuXNJCV/KD9WwvA9\n"
	"VDRTJEmeWb8/LgO7Vngfr5Sg4OffQHBpUpDydBVpbPpTAAAAgBz/qBvdKoPaSKhz4/G9pm\n"
	"faB4yFw+/2rf0unYKtDer9Tv7LX0gvafLeU0O6OaFVn+dsq2dY8qI72J6hZR7w8bYMt9vG\n"
	"eJDTXH4QdqUfg3MTk3JlUQUUmGkCSd/vcZrOxV+pE7r+q8KeIOUYiBsBGUhnzY30bkLIvQ\n"
	"VYYflMnqBeAAAAgQDpbUe0rOdXYUdV4qUBClu13dLmP1BHbFfju+gweBBpjOb/RUUTca59\n"
	"dPC8c6BaKtRmauDqGZF8Cmvjav9Pv44cw4vM2D65J6k7qgShcapWrSqyfVp1H+tM4LYmtS\n"
	"gCLc8qhKeiva+1z9sTm+P8ml4JPxPqNUo8A2ob0awf15WTbwAAAIEA2KmKhTgyL/2XYxOA\n"
	"diSkMJrZfGVZzHCOOjgPRvcIpyH4LJHzogqaYKh3VJ/q3qh+f++wrjRQXCKyq7UH52YmdX\n"
	"+lwM+LodinlB6HXX0IsLndaV1WFacvfYHSDQByR3p5r01sDCTIKPir29aDlyYVdRaQ4Msp\n"
	"SnmzuL851xVF5T8AAAAJdW5pdEB0ZXN0AQI=\n"
	"-----END OPENSSH PRIVATE KEY-----\n"
	;
static const char ssh_rsa_pub[] =
	"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDFjsvzKdSnTx8DmtxxbGxm"
	"OpEpYo9U1kFQk1EwjX+1+z+iAiSGik9qVvHdORJyN10g03++ivTseb/U2N3h"
	"MjYVOF3zPypxI3ZSYVS5rO2uNU4dVOwD7pvkFUjcAjSeN3t+b1Ug0dmR+mH0"
	"sX2/7xat4LyhBmd3txe+31TvvCUk1YAtXM7oRZXrlkAJE47YMG7QmL5xduHn"
	"N+UoQVt1zoZMVuCX9bIIuqyIRmw7GtQrGZWAWUaszucf+t6Qo0JPMLl+DKY6"
	"9M77H6Cbr76kutSb2q5bOWqpwNC5LLkgMM8vu+9qSvRw5IRjiWlxDku1QLwQ"
	"7eZ2xDACjY0ZwVCynJNR unit@test"
	;

static const char *err_msg(void)
{
	const rc_error *e = rc_error_last();

	return e && e->message ? e->message : "";
}

static void age_sha512_fips(void **state)
{
	unsigned char md[RC_SHA512_LEN];
	rc_buf hex = RC_BUF_INIT;

	RC_UNUSED(state);
	rc_codec_sha512(md, "abc", 3);
	rc_codec_hex_encode(&hex, md, sizeof(md));
	assert_string_equal(hex.ptr,
			    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
			    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
	rc_buf_release(&hex);
}

static void age_bech32(void **state)
{
	unsigned char data[40];
	rc_buf s = RC_BUF_INIT, hrp = RC_BUF_INIT, out = RC_BUF_INIT;

	RC_UNUSED(state);
	/* BIP 173's valid strings */
	assert_int_equal(rc_age_bech32_decode(&hrp, &out, "A12UEL5L", 8), 0);
	assert_string_equal(hrp.ptr, "a");
	assert_int_equal(out.len, 0);
	rc_buf_clear(&hrp);
	assert_int_equal(rc_age_bech32_decode(&hrp, &out, "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", 45), 0);
	assert_string_equal(hrp.ptr, "abcdef");
	assert_int_equal(out.len, 20); /* 32 five-bit groups */
	/* round trips, both cases, every length up to 40 */
	for (size_t n = 0; n <= sizeof(data); n++) {
		for (size_t i = 0; i < n; i++)
			data[i] = (unsigned char)(i * 37 + n);
		for (int upper = 0; upper < 2; upper++) {
			rc_buf_clear(&s);
			rc_buf_clear(&hrp);
			rc_buf_clear(&out);
			assert_int_equal(rc_age_bech32_encode(&s, "age-secret-key-", data, n, upper), 0);
			assert_int_equal(rc_age_bech32_decode(&hrp, &out, s.ptr, s.len), 0);
			assert_string_equal(hrp.ptr, "age-secret-key-");
			assert_int_equal(out.len, n);
			assert_memory_equal(out.ptr, data, n);
		}
	}
	/* every single changed character breaks the checksum */
	rc_buf_clear(&s);
	rc_age_bech32_encode(&s, "age", data, 32, false);
	for (size_t i = 4; i < s.len; i++) {
		char keep = s.ptr[i];

		s.ptr[i] = keep == 'q' ? 'p' : 'q';
		rc_buf_clear(&out);
		assert_int_equal(rc_age_bech32_decode(&hrp, &out, s.ptr, s.len), RC_EINVALID);
		assert_int_equal(out.len, 0);
		s.ptr[i] = keep;
	}
	assert_string_equal(err_msg(), "bech32: bad checksum");
	/* mixed case, no separator, a character outside the set */
	s.ptr[5] = (char)toupper((unsigned char)s.ptr[5]);
	assert_int_equal(rc_age_bech32_decode(&hrp, &out, s.ptr, s.len), RC_EINVALID);
	assert_string_equal(err_msg(), "bech32: mixed case");
	assert_int_equal(rc_age_bech32_decode(&hrp, &out, "qpzry9x8", 8), RC_EINVALID);
	assert_int_equal(rc_age_bech32_decode(&hrp, &out, "a1bqpzry9x8", 11), RC_EINVALID);
	rc_buf_release(&s);
	rc_buf_release(&hrp);
	rc_buf_release(&out);
}

/* One identity and its recipient, from text. */
static void pair(rc_age_identity_list *ids, rc_age_recipient_list *rs,
		 const char *identity, const char *recipient)
{
	rc_age_identity *id;
	rc_age_recipient *r;

	if (strncmp(identity, "-----", 5) == 0)
		assert_int_equal(rc_age_identity_ssh_parse(&id, identity, strlen(identity), "test key"), 0);
	else
		assert_int_equal(rc_age_identity_parse(&id, identity), 0);
	rc_age_identity_list_add(ids, id);
	assert_int_equal(rc_age_recipient_parse(&r, recipient), 0);
	assert_int_equal(rc_age_recipient_type(r), rc_age_identity_type(id));
	rc_age_recipient_list_add(rs, r);
}

/* Encrypts msg to rs (armored or not), decrypts it with ids. */
static void round_trip(const rc_age_recipient_list *rs,
		       const rc_age_identity_list *ids, const void *msg,
		       size_t len, unsigned flags)
{
	rc_buf file = RC_BUF_INIT_MAX(4 << 20), plain = RC_BUF_INIT_MAX(4 << 20);
	rc_age_failure why = RC_AGE_FAIL_HEADER;
	rc_age_info info;

	assert_int_equal(rc_age_encrypt(&file, msg, len, rs, flags), 0);
	if (flags & RC_AGE_ARMOR)
		assert_memory_equal(file.ptr, "-----BEGIN AGE ENCRYPTED FILE-----\n", 35);
	else
		assert_memory_equal(file.ptr, "age-encryption.org/v1\n-> ", 25);
	assert_int_equal(rc_age_decrypt(&plain, file.ptr, file.len, ids, 0, &why), 0);
	assert_int_equal(why, RC_AGE_OK);
	assert_int_equal(plain.len, len);
	assert_memory_equal(plain.ptr, msg, len);
	assert_int_equal(rc_age_inspect(&info, file.ptr, file.len), 0);
	assert_int_equal(info.count, rs->count);
	assert_int_equal(info.armored, (flags & RC_AGE_ARMOR) != 0);
	for (size_t i = 0; i < rs->count; i++)
		assert_string_equal(info.types[i], rc_age_key_type_name(rc_age_recipient_type(rs->items[i])));
	rc_age_info_release(&info);
	rc_buf_release(&file);
	rc_buf_release(&plain);
}

static void age_round_trips(void **state)
{
	static const char *const types[] = {"X25519", "ssh-ed25519", "ssh-rsa"};
	size_t sizes[] = {0, 1, 47, 65535, 65536, 65537, 3 * 65536};
	rc_age_identity_list ids = {0}, one = {0};
	rc_age_recipient_list rs = {0}, single = {0};
	unsigned char *msg = rc_malloc(3 * 65536);

	RC_UNUSED(state);
	for (size_t i = 0; i < 3 * 65536; i++)
		msg[i] = (unsigned char)(i * 131 + (i >> 16));
	pair(&ids, &rs, TK_IDENTITY, TK_RECIPIENT);
	pair(&ids, &rs, ssh_ed25519_key, ssh_ed25519_pub);
	pair(&ids, &rs, ssh_rsa_key, ssh_rsa_pub);
	for (size_t t = 0; t < 3; t++) {
		assert_string_equal(rc_age_key_type_name(rc_age_recipient_type(rs.items[t])), types[t]);
		/* each type alone, with only its own identity */
		single.items = &rs.items[t];
		single.count = 1;
		one.items = &ids.items[t];
		one.count = 1;
		for (size_t s = 0; s < RC_ARRAY_SIZE(sizes); s++)
			round_trip(&single, &one, msg, sizes[s], s % 2 ? RC_AGE_ARMOR : 0);
	}
	/* all three at once: every identity alone opens the file */
	for (size_t t = 0; t < 3; t++) {
		one.items = &ids.items[t];
		one.count = 1;
		round_trip(&rs, &one, msg, 1000, RC_AGE_ARMOR);
	}
	free(msg);
	rc_age_identity_list_release(&ids);
	rc_age_recipient_list_release(&rs);
}

static void age_identity_recipient(void **state)
{
	rc_age_identity *id;
	rc_age_recipient *r;
	rc_age_identity_list ids = {0};
	rc_age_recipient_list rs = {0};
	char *kid, *krec;

	RC_UNUSED(state);
	/* keygen: an identity whose recipient is the one printed */
	assert_int_equal(rc_age_keygen(&kid, &krec), 0);
	assert_memory_equal(kid, "AGE-SECRET-KEY-1", 16);
	assert_memory_equal(krec, "age1", 4);
	assert_int_equal(strlen(krec), 62);
	pair(&ids, &rs, kid, krec);
	round_trip(&rs, &ids, "x", 1, 0);
	free(kid);
	free(krec);
	/* the recipient of an ssh identity is its public key's */
	assert_int_equal(rc_age_identity_ssh_parse(&id, ssh_rsa_key, strlen(ssh_rsa_key), "k"), 0);
	assert_int_equal(rc_age_identity_recipient(&r, id), 0);
	rc_age_recipient_list_release(&rs);
	rc_age_recipient_list_add(&rs, r);
	rc_age_identity_list_release(&ids);
	rc_age_identity_list_add(&ids, id);
	round_trip(&rs, &ids, "y", 1, 0);
	rc_age_identity_list_release(&ids);
	rc_age_recipient_list_release(&rs);
}

static void age_scrypt(void **state)
{
	rc_age_identity_list ids = {0};
	rc_age_recipient_list rs = {0};
	rc_age_recipient *r;
	rc_age_identity *id;
	rc_buf file = RC_BUF_INIT, plain = RC_BUF_INIT;
	rc_age_failure why;

	RC_UNUSED(state);
	assert_int_equal(rc_age_recipient_passphrase(&r, "correct horse", 13, 10), 0);
	rc_age_recipient_list_add(&rs, r);
	assert_int_equal(rc_age_identity_passphrase(&id, "correct horse", 13, 0), 0);
	rc_age_identity_list_add(&ids, id);
	round_trip(&rs, &ids, "secret", 6, 0);
	/* a wrong passphrase is no match; a work factor above the limit is
	 * refused before any work */
	assert_int_equal(rc_age_encrypt(&file, "s", 1, &rs, 0), 0);
	rc_age_identity_list_release(&ids);
	rc_age_identity_passphrase(&id, "wrong", 5, 0);
	rc_age_identity_list_add(&ids, id);
	assert_int_equal(rc_age_decrypt(&plain, file.ptr, file.len, &ids, 0, &why), RC_EAUTH);
	assert_int_equal(why, RC_AGE_FAIL_NO_MATCH);
	rc_age_identity_list_release(&ids);
	rc_age_identity_passphrase(&id, "correct horse", 13, 9);
	rc_age_identity_list_add(&ids, id);
	assert_int_equal(rc_age_decrypt(&plain, file.ptr, file.len, &ids, 0, &why), RC_EINVALID);
	assert_int_equal(why, RC_AGE_FAIL_HEADER);
	assert_string_equal(err_msg(), "scrypt work factor 10 is above the limit of 9");
	/* a passphrase must be alone */
	rc_age_recipient_parse(&r, TK_RECIPIENT);
	rc_age_recipient_list_add(&rs, r);
	rc_buf_clear(&file);
	assert_int_equal(rc_age_encrypt(&file, "s", 1, &rs, 0), RC_EINVALID);
	assert_int_equal(file.len, 0);
	assert_int_equal(rc_age_recipient_passphrase(&r, "p", 1, 23), RC_EINVALID);
	rc_buf_release(&file);
	rc_buf_release(&plain);
	rc_age_identity_list_release(&ids);
	rc_age_recipient_list_release(&rs);
}

static void age_no_match(void **state)
{
	rc_age_identity_list ids = {0}, other = {0};
	rc_age_recipient_list rs = {0};
	rc_buf file = RC_BUF_INIT, plain = RC_BUF_INIT;
	rc_age_failure why;
	char *kid, *krec;

	RC_UNUSED(state);
	pair(&ids, &rs, TK_IDENTITY, TK_RECIPIENT);
	pair(&ids, &rs, ssh_ed25519_key, ssh_ed25519_pub);
	assert_int_equal(rc_age_encrypt(&file, "v", 1, &rs, RC_AGE_ARMOR), 0);
	rc_age_keygen(&kid, &krec);
	rc_age_identity *id;

	rc_age_identity_parse(&id, kid);
	rc_age_identity_list_add(&other, id);
	rc_age_identity_ssh_parse(&id, ssh_rsa_key, strlen(ssh_rsa_key), "k");
	rc_age_identity_list_add(&other, id);
	assert_int_equal(rc_age_decrypt(&plain, file.ptr, file.len, &other, 0, &why), RC_EAUTH);
	assert_int_equal(why, RC_AGE_FAIL_NO_MATCH);
	assert_int_equal(plain.len, 0);
	assert_string_equal(err_msg(), "no identity matched: the file is encrypted to 2 recipients (X25519, ssh-ed25519)");
	assert_null(strstr(err_msg(), kid));
	/* no identities at all: the same message */
	assert_int_equal(rc_age_decrypt(&plain, file.ptr, file.len, NULL, 0, &why), RC_EAUTH);
	assert_string_equal(err_msg(), "no identity matched: the file is encrypted to 2 recipients (X25519, ssh-ed25519)");
	free(kid);
	free(krec);
	rc_buf_release(&file);
	rc_buf_release(&plain);
	rc_age_identity_list_release(&ids);
	rc_age_identity_list_release(&other);
	rc_age_recipient_list_release(&rs);
}

/* Alterations of a good file, each with the failure it must give. */
static void age_tampering(void **state)
{
	rc_age_identity_list ids = {0};
	rc_age_recipient_list rs = {0};
	rc_buf file = RC_BUF_INIT, plain = RC_BUF_INIT, copy = RC_BUF_INIT;
	rc_age_failure why;
	char *mac;

	RC_UNUSED(state);
	pair(&ids, &rs, TK_IDENTITY, TK_RECIPIENT);
	assert_int_equal(rc_age_encrypt(&file, "payload", 7, &rs, 0), 0);
	mac = strstr(file.ptr, "\n--- ") + 5;
	/* the MAC */
	rc_buf_put(&copy, file.ptr, file.len);
	copy.ptr[mac - file.ptr] = mac[0] == 'A' ? 'B' : 'A';
	assert_int_equal(rc_age_decrypt(&plain, copy.ptr, copy.len, &ids, 0, &why), RC_EINVALID);
	assert_true(why == RC_AGE_FAIL_HMAC || why == RC_AGE_FAIL_HEADER);
	/* the header under the MAC: the intro line's stanza is kept, a
	 * grease stanza is added */
	rc_buf_clear(&copy);
	rc_buf_put(&copy, file.ptr, (size_t)(mac - 4 - file.ptr));
	rc_buf_puts(&copy, "-> grease x\n\n");
	rc_buf_put(&copy, mac - 4, file.len - (size_t)(mac - 4 - file.ptr));
	assert_int_equal(rc_age_decrypt(&plain, copy.ptr, copy.len, &ids, 0, &why), RC_EINVALID);
	assert_int_equal(why, RC_AGE_FAIL_HMAC);
	assert_string_equal(err_msg(), "header MAC mismatch: the age file was altered");
	/* the payload's last byte; a byte added; the last byte removed */
	rc_buf_clear(&copy);
	rc_buf_put(&copy, file.ptr, file.len);
	copy.ptr[copy.len - 1] ^= 1;
	assert_int_equal(rc_age_decrypt(&plain, copy.ptr, copy.len, &ids, 0, &why), RC_EINVALID);
	assert_int_equal(why, RC_AGE_FAIL_PAYLOAD);
	copy.ptr[copy.len - 1] ^= 1;
	rc_buf_putc(&copy, 0);
	assert_int_equal(rc_age_decrypt(&plain, copy.ptr, copy.len, &ids, 0, &why), RC_EINVALID);
	assert_int_equal(why, RC_AGE_FAIL_PAYLOAD);
	assert_int_equal(rc_age_decrypt(&plain, file.ptr, file.len - 1, &ids, 0, &why), RC_EINVALID);
	assert_int_equal(why, RC_AGE_FAIL_PAYLOAD);
	assert_int_equal(plain.len, 0);
	/* not an age file */
	assert_int_equal(rc_age_decrypt(&plain, "hello\n", 6, &ids, 0, &why), RC_EINVALID);
	assert_int_equal(why, RC_AGE_FAIL_HEADER);
	assert_string_equal(err_msg(), "not an age file (no age-encryption.org/v1 line)");
	/* the good file still decrypts */
	assert_int_equal(rc_age_decrypt(&plain, file.ptr, file.len, &ids, 0, &why), 0);
	assert_string_equal(plain.ptr, "payload");
	rc_buf_release(&file);
	rc_buf_release(&plain);
	rc_buf_release(&copy);
	rc_age_identity_list_release(&ids);
	rc_age_recipient_list_release(&rs);
}

/* Headers that inspection accepts or refuses (strict stanza parsing). */
static void age_stanzas(void **state)
{
	static const char mac[] = "--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
	static const char b64line[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
	static const struct {
		const char *stanzas;
		int rc;
		size_t count;
	} cases[] = {
		{"", 0, 0},
		{"-> X25519 abc\n\n", 0, 1},
		{"-> a b c\nAAAA\n-> d\nAA\n", 0, 2},
		{"-> grease !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~\n\n", 0, 1},
		{"-> full\n@\n\n", 0, 1},             /* a 64-column line, then an empty one */
		{"-> full\n@\nAA\n", 0, 1},
		{"-> full\n@\n", RC_EINVALID, 0},     /* no final short line */
		{"-> x\n", RC_EINVALID, 0},          /* no body line at all */
		{"->\n\n", RC_EINVALID, 0},          /* no type */
		{"-> \n\n", RC_EINVALID, 0},         /* an empty type */
		{"-> a  b\n\n", RC_EINVALID, 0},     /* an empty argument */
		{"-> a b \n\n", RC_EINVALID, 0},
		{"-> a\tb\n\n", RC_EINVALID, 0},     /* not printable ASCII */
		{"-> a\nAA==\n", RC_EINVALID, 0},    /* padding */
		{"-> a\nAB\n", RC_EINVALID, 0},      /* non-canonical bits */
		{"-> a\nAA\r\n", RC_EINVALID, 0},    /* CR */
		{"-> a\nA\n", RC_EINVALID, 0},       /* impossible length */
		{"-> a\n@A\n\n", RC_EINVALID, 0},   /* 65 columns */
		{"-> a\nAA\nAA\n", RC_EINVALID, 0},  /* a second short line */
		{"-- a\n\n", RC_EINVALID, 0},
	};
	rc_buf text = RC_BUF_INIT;
	rc_age_info info;

	RC_UNUSED(state);
	for (size_t i = 0; i < RC_ARRAY_SIZE(cases); i++) {
		rc_buf_clear(&text);
		rc_buf_puts(&text, "age-encryption.org/v1\n");
		for (const char *p = cases[i].stanzas; *p; p++) {
			if (*p == '@')
				rc_buf_put(&text, b64line, 64);
			else
				rc_buf_putc(&text, *p);
		}
		rc_buf_puts(&text, mac);
		print_message("case %zu\n", i);
		assert_int_equal(rc_age_inspect(&info, text.ptr, text.len), cases[i].rc);
		if (cases[i].rc == 0) {
			assert_int_equal(info.count, cases[i].count);
			rc_age_info_release(&info);
		}
	}
	/* the MAC line */
	static const char *const macs[] = {
		"---\n", "--- \n", "---  AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA \n",
		"--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB\n",
		"---AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	for (size_t i = 0; i < RC_ARRAY_SIZE(macs); i++) {
		rc_buf_clear(&text);
		rc_buf_puts(&text, "age-encryption.org/v1\n");
		rc_buf_puts(&text, macs[i]);
		assert_int_equal(rc_age_inspect(&info, text.ptr, text.len), RC_EINVALID);
	}
	assert_int_equal(rc_age_inspect(&info, LIT("age-encryption.org/v2\n")), RC_EINVALID);
	assert_string_equal(err_msg(), "malformed age header: unsupported version (reconcile reads age-encryption.org/v1)");
	rc_buf_release(&text);
}

static void age_armor(void **state)
{
	rc_buf a = RC_BUF_INIT, b = RC_BUF_INIT;
	unsigned char data[100];

	RC_UNUSED(state);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)i;
	for (size_t n = 0; n <= sizeof(data); n++) {
		rc_buf_clear(&a);
		rc_buf_clear(&b);
		rc_age_armor_encode(&a, data, n);
		assert_int_equal(rc_age_armor_decode(&b, a.ptr, a.len), 0);
		assert_int_equal(b.len, n);
		assert_memory_equal(b.ptr, data, n);
	}
	/* 100 bytes: two full lines, a short one, the end line */
	assert_string_equal(strchr(a.ptr, '\n') + 1 + 65 + 65,
			    "YGFiYw==\n-----END AGE ENCRYPTED FILE-----\n");
	rc_buf_clear(&b);
	assert_int_equal(rc_age_armor_decode(&b, LIT("-----BEGIN AGE ENCRYPTED FILE-----\r\nYWJj\r\n-----END AGE ENCRYPTED FILE-----")), 0);
	assert_string_equal(b.ptr, "abc");
	rc_buf_clear(&b);
	assert_int_equal(rc_age_armor_decode(&b, LIT(" \n-----BEGIN AGE ENCRYPTED FILE-----\nYWJj\n-----END AGE ENCRYPTED FILE-----\n\t\n")), 0);
	assert_int_equal(rc_age_armor_decode(&b, LIT("-----BEGIN AGE ENCRYPTED FILE-----\nYWJj\n\n-----END AGE ENCRYPTED FILE-----\n")), RC_EINVALID);
	assert_int_equal(rc_age_armor_decode(&b, LIT("-----BEGIN AGE ENCRYPTED FILE-----\nYWJj\n-----END AGE ENCRYPTED FILE-----\nx\n")), RC_EINVALID);
	assert_string_equal(err_msg(), "malformed age armor: data after the end line");
	assert_int_equal(rc_age_armor_decode(&b, LIT("-----BEGIN AGE ENCRYPTED FILE-----\nYWJj\n")), RC_EINVALID);
	assert_int_equal(rc_age_armor_decode(&b, LIT("-----BEGIN AGE ENCRYPTED FILE-----\nYWJ\n-----END AGE ENCRYPTED FILE-----\n")), RC_EINVALID);
	rc_buf_release(&a);
	rc_buf_release(&b);
}

static void age_parse_errors(void **state)
{
	rc_age_recipient *r;
	rc_age_identity *id;
	rc_age_identity_list ids = {0};
	char bad[sizeof(TK_IDENTITY)];
	static const char keys[] = "# created: now\r\n# public key: age1...\r\n"
				   "\r\n" TK_IDENTITY "\r\n  \n" TK_IDENTITY "\n";

	RC_UNUSED(state);
	assert_int_equal(rc_age_recipient_parse(&r, "age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryeg"), RC_EINVALID);
	assert_null(r);
	assert_non_null(strstr(err_msg(), "malformed age recipient"));
	assert_int_equal(rc_age_recipient_parse(&r, "ssh-dss AAAAB3NzaC1kc3M="), RC_EINVALID);
	assert_non_null(strstr(err_msg(), "expected age1..., ssh-ed25519 AAAA... or ssh-rsa AAAA..."));
	assert_int_equal(rc_age_recipient_parse(&r, "age1pq1abcdef"), RC_EUNSUPPORTED);
	assert_int_equal(rc_age_recipient_parse(&r, "ssh-ed25519 AAAA!"), RC_EINVALID);
	assert_int_equal(rc_age_recipient_parse(&r, "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIGzIao0sXFm6X+STFLZE7+WgYU2GXa/qqXs30N3LX02+"), RC_EINVALID);
	assert_string_equal(err_msg(), "malformed ssh public key: its type and its key differ");
	/* " a comment" after the key is fine; surrounding space too */
	assert_int_equal(rc_age_recipient_parse(&r, "  " TK_RECIPIENT "\n"), 0);
	rc_age_recipient_free(r);
	/* an identity with one wrong character: the message never quotes it */
	memcpy(bad, TK_IDENTITY, sizeof(bad));
	bad[30] = bad[30] == 'Q' ? 'P' : 'Q';
	assert_int_equal(rc_age_identity_parse(&id, bad), RC_EINVALID);
	assert_null(strstr(err_msg(), bad + 16));
	assert_int_equal(rc_age_identity_parse(&id, "age-secret-key-1egtzvffv20835nwyv6270lxyvk2vknx2mmdkwyklmgr48uawx40q2p2lm0"), RC_EINVALID);
	assert_int_equal(rc_age_identity_parse(&id, "AGE-SECRET-KEY-PQ-1ABC"), RC_EUNSUPPORTED);
	/* key files: comments, blank lines, CRLF, several keys */
	assert_int_equal(rc_age_identities_parse_text(&ids, keys, strlen(keys), "keys.txt"), 0);
	assert_int_equal(ids.count, 2);
	assert_int_equal(rc_age_identities_parse_text(&ids, "# x\n\nAGE-SECRET-KEY-1QQQ\n", 25, "keys.txt"), RC_EINVALID);
	assert_int_equal(ids.count, 2);
	assert_string_equal(err_msg(), "keys.txt, line 3: malformed age identity (expected AGE-SECRET-KEY-1...)");
	assert_int_equal(rc_age_identities_parse_text(&ids, "# only a comment\n", 17, "keys.txt"), RC_EINVALID);
	assert_string_equal(err_msg(), "keys.txt holds no age identity");
	/* an ssh key: encrypted keys are refused by name */
	assert_int_equal(rc_age_identity_ssh_parse(&id, "not a key", 9, "/k"), RC_EINVALID);
	assert_non_null(strstr(err_msg(), "'/k' is not an OpenSSH private key"));
	rc_age_identity_list_release(&ids);
}

static void age_load(void **state)
{
	char *dir = tmpdir_new();
	rc_buf path = RC_BUF_INIT, log = RC_BUF_INIT;
	rc_age_identity_list ids = {0};
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	RC_UNUSED(state);
	unsetenv("RECONCILE_AGE_KEY");
	unsetenv("RECONCILE_AGE_KEY_FILE");
	unsetenv("RECONCILE_AGE_SSH_KEY");
	unsetenv("XDG_CONFIG_HOME");
	setenv("HOME", dir, 1);
	/* nothing configured: no identities, no error */
	assert_int_equal(rc_age_identities_load(&ids), 0);
	assert_int_equal(ids.count, 0);
	/* ~/.config/reconcile/age/keys.txt, mode 0600: no warning */
	write_file(dir, ".config/reconcile/age/keys.txt", "# key\n" TK_IDENTITY "\n");
	rc_buf_printf(&path, "%s/.config/reconcile/age/keys.txt", dir);
	chmod(path.ptr, 0600);
	f = open_memstream(&text, &len);
	rc_log_set_stream(f);
	assert_int_equal(rc_age_identities_load(&ids), 0);
	assert_int_equal(ids.count, 1);
	fflush(f);
	assert_int_equal(len, 0);
	/* readable by others: used, with a warning naming it and the fix */
	chmod(path.ptr, 0644);
	assert_int_equal(rc_age_identities_load(&ids), 0);
	assert_int_equal(ids.count, 2);
	fflush(f);
	assert_non_null(strstr(text, path.ptr));
	assert_non_null(strstr(text, "chmod 600"));
	assert_null(strstr(text, "AGE-SECRET-KEY"));
	rc_log_set_stream(NULL);
	fclose(f);
	free(text);
	/* RECONCILE_AGE_KEY_FILE before the default file, RECONCILE_AGE_KEY
	 * before both; RECONCILE_AGE_SSH_KEY adds its key */
	rc_age_identity_list_release(&ids);
	write_file(dir, "other.txt", "garbage\n");
	rc_buf_clear(&log);
	rc_buf_printf(&log, "%s/other.txt", dir);
	chmod(log.ptr, 0600);
	setenv("RECONCILE_AGE_KEY_FILE", log.ptr, 1);
	assert_int_equal(rc_age_identities_load(&ids), RC_EINVALID);
	assert_non_null(strstr(err_msg(), "other.txt, line 1"));
	setenv("RECONCILE_AGE_KEY", TK_IDENTITY, 1);
	write_file(dir, "id_ed25519", ssh_ed25519_key);
	rc_buf_clear(&log);
	rc_buf_printf(&log, "%s/id_ed25519", dir);
	chmod(log.ptr, 0600);
	setenv("RECONCILE_AGE_SSH_KEY", log.ptr, 1);
	assert_int_equal(rc_age_identities_load(&ids), 0);
	assert_int_equal(ids.count, 2);
	assert_int_equal(rc_age_identity_type(ids.items[0]), RC_AGE_X25519);
	assert_int_equal(rc_age_identity_type(ids.items[1]), RC_AGE_SSH_ED25519);
	unsetenv("RECONCILE_AGE_KEY");
	unsetenv("RECONCILE_AGE_KEY_FILE");
	unsetenv("RECONCILE_AGE_SSH_KEY");
	rc_age_identity_list_release(&ids);
	rc_buf_release(&path);
	rc_buf_release(&log);
	tmpdir_remove(dir);
}

int test_group_age(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(age_sha512_fips),
		cmocka_unit_test(age_bech32),
		cmocka_unit_test(age_round_trips),
		cmocka_unit_test(age_identity_recipient),
		cmocka_unit_test(age_scrypt),
		cmocka_unit_test(age_no_match),
		cmocka_unit_test(age_tampering),
		cmocka_unit_test(age_stanzas),
		cmocka_unit_test(age_armor),
		cmocka_unit_test(age_parse_errors),
		cmocka_unit_test(age_load),
	};

	return cmocka_run_group_tests_name("age", tests, NULL, NULL);
}
