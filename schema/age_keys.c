/*
 * age's keys (see age_keys.h): bech32, X25519, scrypt, and the ssh key
 * types after FiloSottile age's agessh (ssh-ed25519: the Edwards key as
 * its Montgomery form, tweaked by an HKDF of the ssh key; ssh-rsa:
 * RSA-OAEP with SHA-256).
 */
#include "schema/age_keys.h"

#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "schema/age_crypto.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <sys/stat.h>

#define X25519_LABEL "age-encryption.org/v1/X25519"
#define SCRYPT_LABEL "age-encryption.org/v1/scrypt"
#define ED25519_LABEL "age-encryption.org/v1/ssh-ed25519"
#define RSA_LABEL "age-encryption.org/v1/ssh-rsa"
#define SSH_TAG_LEN 4
#define SCRYPT_SALT_LEN 16
#define WRAPPED_LEN (RC_AGE_FILE_KEY_LEN + RC_AGE_TAG_LEN)
#define KEY_FILE_MAX ((size_t)1 << 20)

struct rc_age_identity {
	rc_age_key_type type;
	unsigned char secret[32]; /* the X25519 scalar (ed25519: converted) */
	unsigned char pub[32];    /* its X25519 public key */
	unsigned char *blob;      /* ssh: the public key's wire blob */
	size_t blob_len;
	EVP_PKEY *rsa;
	char *pass; /* scrypt */
	size_t pass_len;
	int max_log_n;
};

struct rc_age_recipient {
	rc_age_key_type type;
	unsigned char pub[32];
	unsigned char *blob;
	size_t blob_len;
	EVP_PKEY *rsa;
	char *pass;
	size_t pass_len;
	int log_n;
};

static const char *const type_names[] = {"X25519", "ssh-ed25519", "ssh-rsa",
					 "scrypt"};

const char *rc_age_key_type_name(rc_age_key_type type)
{
	return type_names[type];
}

rc_age_key_type rc_age_identity_type(const rc_age_identity *id)
{
	return id->type;
}

rc_age_key_type rc_age_recipient_type(const rc_age_recipient *r)
{
	return r->type;
}

/* ---------------------------------------------------------------- bech32 */

static const char bech32_chars[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t bech32_polymod_step(uint32_t pre)
{
	uint8_t b = pre >> 25;

	return ((pre & 0x1ffffff) << 5) ^ (-((b >> 0) & 1) & 0x3b6a57b2UL) ^
	       (-((b >> 1) & 1) & 0x26508e6dUL) ^
	       (-((b >> 2) & 1) & 0x1ea119faUL) ^
	       (-((b >> 3) & 1) & 0x3d4233ddUL) ^
	       (-((b >> 4) & 1) & 0x2a1462b3UL);
}

static uint32_t bech32_hrp_sum(const char *hrp, size_t n)
{
	uint32_t chk = 1;

	for (size_t i = 0; i < n; i++)
		chk = bech32_polymod_step(chk) ^ ((unsigned char)hrp[i] >> 5);
	chk = bech32_polymod_step(chk);
	for (size_t i = 0; i < n; i++)
		chk = bech32_polymod_step(chk) ^ ((unsigned char)hrp[i] & 31);
	return chk;
}

int rc_age_bech32_encode(rc_buf *out, const char *hrp, const void *data,
			 size_t len, bool upper)
{
	const unsigned char *d = data;
	size_t hlen = strlen(hrp), start = out->len;
	uint32_t chk, acc = 0;
	int bits = 0, rc = 0;
	unsigned char v;

	for (size_t i = 0; i < hlen; i++)
		if (hrp[i] < 33 || hrp[i] > 126 ||
		    (hrp[i] >= 'A' && hrp[i] <= 'Z'))
			return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					    "bech32: invalid prefix");
	chk = bech32_hrp_sum(hrp, hlen);
	rc |= rc_buf_puts(out, hrp);
	rc |= rc_buf_putc(out, '1');
	for (size_t i = 0; i <= len; i++) {
		if (i < len) {
			acc = (acc << 8) | d[i];
			bits += 8;
		} else if (bits > 0) {
			acc <<= 5 - bits; /* pad the last group with zeros */
			bits = 5;
		}
		while (bits >= 5) {
			bits -= 5;
			v = (acc >> bits) & 31;
			chk = bech32_polymod_step(chk) ^ v;
			rc |= rc_buf_putc(out, bech32_chars[v]);
		}
	}
	for (int i = 0; i < 6; i++)
		chk = bech32_polymod_step(chk);
	chk ^= 1;
	for (int i = 0; i < 6; i++)
		rc |= rc_buf_putc(out, bech32_chars[(chk >> (5 * (5 - i))) & 31]);
	if (rc) {
		rc_buf_truncate(out, start);
		return RC_ETOOBIG;
	}
	if (upper)
		for (size_t i = start; i < out->len; i++)
			out->ptr[i] = (char)toupper((unsigned char)out->ptr[i]);
	return 0;
}

int rc_age_bech32_decode(rc_buf *hrp, rc_buf *out, const char *s, size_t len)
{
	bool lower = false, upperc = false;
	size_t sep = 0, start = out->len, hstart = hrp->len;
	uint32_t chk, acc = 0;
	int bits = 0, rc = 0;
	char h[128];

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 33 || c > 126)
			return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					    "bech32: invalid character at offset %zu", i);
		lower |= islower(c) != 0;
		upperc |= isupper(c) != 0;
		if (c == '1')
			sep = i;
	}
	if (lower && upperc)
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "bech32: mixed case");
	if (rc_buf_grow(out, len)) /* once: the data may be a secret key */
		return RC_ETOOBIG;
	if (sep == 0 || sep >= sizeof(h) || len - sep - 1 < 6)
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "bech32: no separator or too short");
	for (size_t i = 0; i < sep; i++)
		h[i] = (char)tolower((unsigned char)s[i]);
	chk = bech32_hrp_sum(h, sep);
	for (size_t i = sep + 1; i < len; i++) {
		const char *p = strchr(bech32_chars,
				       tolower((unsigned char)s[i]));
		uint32_t v;

		if (!p || !*p) {
			rc_buf_truncate(out, start);
			return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					    "bech32: invalid character at offset %zu", i);
		}
		v = (uint32_t)(p - bech32_chars);
		chk = bech32_polymod_step(chk) ^ v;
		if (i + 6 < len) {
			acc = ((acc << 5) | v) & 0xfff;
			bits += 5;
			if (bits >= 8) {
				bits -= 8;
				rc |= rc_buf_putc(out, (char)((acc >> bits) & 0xff));
			}
		}
	}
	if (chk != 1 || bits >= 5 || (acc & ((1u << bits) - 1)) != 0) {
		OPENSSL_cleanse(out->ptr + start, out->len - start);
		rc_buf_truncate(out, start);
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE, chk != 1 ?
				    "bech32: bad checksum" :
				    "bech32: bad padding");
	}
	rc |= rc_buf_put(hrp, h, sep);
	if (rc) {
		rc_buf_truncate(out, start);
		rc_buf_truncate(hrp, hstart);
		return RC_ETOOBIG;
	}
	return 0;
}

/* ------------------------------------------------------ ssh wire format */

typedef struct {
	const unsigned char *p;
	size_t n;
} wire;

static int wire_u32(wire *w, uint32_t *v)
{
	if (w->n < 4)
		return -1;
	*v = ((uint32_t)w->p[0] << 24) | ((uint32_t)w->p[1] << 16) |
	     ((uint32_t)w->p[2] << 8) | w->p[3];
	w->p += 4;
	w->n -= 4;
	return 0;
}

static int wire_string(wire *w, wire *s)
{
	uint32_t n;

	if (wire_u32(w, &n) || n > w->n)
		return -1;
	s->p = w->p;
	s->n = n;
	w->p += n;
	w->n -= n;
	return 0;
}

static bool wire_is(const wire *s, const char *text)
{
	return s->n == strlen(text) && memcmp(s->p, text, s->n) == 0;
}

/* An mpint as a BIGNUM (positive only: ssh keys' numbers are). */
static BIGNUM *wire_bn(wire *w)
{
	wire s;

	if (wire_string(w, &s) || (s.n && (s.p[0] & 0x80)))
		return NULL;
	return BN_bin2bn(s.p, (int)s.n, NULL);
}

/* The public key of an Ed25519 key in Montgomery form, u = (1 + y) / (1 -
 * y) mod 2^255 - 19; -1 for a y that is not canonical or has no u. */
static int ed25519_to_x25519(unsigned char out[32], const unsigned char ed[32])
{
	unsigned char y_le[32];
	BIGNUM *p = BN_new(), *y, *one = BN_new(), *num = BN_new(),
	       *den = BN_new(), *u = BN_new();
	BN_CTX *ctx = BN_CTX_new();
	int rc = -1;

	memcpy(y_le, ed, 32);
	y_le[31] &= 0x7f;
	y = BN_lebin2bn(y_le, 32, NULL);
	if (!p || !y || !one || !num || !den || !u || !ctx)
		abort();
	BN_set_bit(p, 255);
	BN_sub_word(p, 19);
	BN_one(one);
	if (BN_cmp(y, p) >= 0 || BN_is_one(y))
		goto cleanup;
	BN_mod_add(num, one, y, p, ctx);
	BN_mod_sub(den, one, y, p, ctx);
	if (!BN_mod_inverse(den, den, p, ctx) ||
	    !BN_mod_mul(u, num, den, p, ctx) || BN_bn2lebinpad(u, out, 32) != 32)
		goto cleanup;
	rc = 0;
cleanup:
	BN_free(p);
	BN_free(y);
	BN_free(one);
	BN_free(num);
	BN_free(den);
	BN_free(u);
	BN_CTX_free(ctx);
	return rc;
}

/* An RSA key from its parts (d and the primes NULL for a public key). */
static EVP_PKEY *rsa_from_parts(BIGNUM *n, BIGNUM *e, BIGNUM *d, BIGNUM *p,
				BIGNUM *q, BIGNUM *iqmp)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	BIGNUM *dp = NULL, *dq = NULL, *t = NULL;
	BN_CTX *bnctx = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY *pkey = NULL;
	int sel = EVP_PKEY_PUBLIC_KEY;

	if (!bld || !ctx)
		abort();
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
	if (d) {
		bnctx = BN_CTX_new();
		dp = BN_new();
		dq = BN_new();
		t = BN_new();
		BN_sub(t, p, BN_value_one());
		BN_mod(dp, d, t, bnctx);
		BN_sub(t, q, BN_value_one());
		BN_mod(dq, d, t, bnctx);
		OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d);
		OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR1, p);
		OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR2, q);
		OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT1, dp);
		OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT2, dq);
		OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
				       iqmp);
		sel = EVP_PKEY_KEYPAIR;
	}
	params = OSSL_PARAM_BLD_to_param(bld);
	if (!params || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, sel, params) != 1)
		pkey = NULL;
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_clear_free(dp);
	BN_clear_free(dq);
	BN_clear_free(t);
	BN_CTX_free(bnctx);
	return pkey;
}

/* The type and key material of an ssh public key blob. Fills pub (ed25519)
 * or *rsa. */
static int ssh_blob_parse(const unsigned char *blob, size_t len,
			  rc_age_key_type *type, unsigned char pub[32],
			  EVP_PKEY **rsa)
{
	wire w = {blob, len}, t, k;
	BIGNUM *e, *n;

	if (wire_string(&w, &t))
		goto bad;
	if (wire_is(&t, "ssh-ed25519")) {
		if (wire_string(&w, &k) || k.n != 32 || w.n)
			goto bad;
		*type = RC_AGE_SSH_ED25519;
		if (ed25519_to_x25519(pub, k.p))
			return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					    "invalid ssh-ed25519 public key");
		return 0;
	}
	if (wire_is(&t, "ssh-rsa")) {
		e = wire_bn(&w);
		n = wire_bn(&w);
		if (!e || !n || w.n) {
			BN_free(e);
			BN_free(n);
			goto bad;
		}
		*type = RC_AGE_SSH_RSA;
		if (BN_num_bits(n) < 2048) {
			BN_free(e);
			BN_free(n);
			return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					    "ssh-rsa key is shorter than 2048 bits");
		}
		*rsa = rsa_from_parts(n, e, NULL, NULL, NULL, NULL);
		BN_free(e);
		BN_free(n);
		if (!*rsa)
			goto bad;
		return 0;
	}
	return rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_NONE,
			    "unsupported ssh key type (ssh-ed25519 and ssh-rsa are)");
bad:
	return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
			    "malformed ssh public key");
}

/* The stanza tag of an ssh key: base64 of SHA-256(blob)[:4]. */
static void ssh_tag(rc_buf *out, const unsigned char *blob, size_t len)
{
	unsigned char md[RC_SHA256_LEN];

	rc_codec_sha256(md, blob, len);
	rc_codec_base64_encode(out, md, SSH_TAG_LEN, RC_BASE64_NOPAD);
}

/* ------------------------------------------------------------ identities */

void rc_age_identity_free(rc_age_identity *id)
{
	if (!id)
		return;
	OPENSSL_cleanse(id->secret, sizeof(id->secret));
	if (id->pass)
		OPENSSL_cleanse(id->pass, id->pass_len);
	free(id->pass);
	free(id->blob);
	EVP_PKEY_free(id->rsa);
	free(id);
}

void rc_age_recipient_free(rc_age_recipient *r)
{
	if (!r)
		return;
	if (r->pass)
		OPENSSL_cleanse(r->pass, r->pass_len);
	free(r->pass);
	free(r->blob);
	EVP_PKEY_free(r->rsa);
	free(r);
}

/* Trims ASCII whitespace around s[0..*len). */
static const char *trim(const char *s, size_t *len)
{
	while (*len && isspace((unsigned char)*s)) {
		s++;
		(*len)--;
	}
	while (*len && isspace((unsigned char)s[*len - 1]))
		(*len)--;
	return s;
}

static int identity_parse_n(rc_age_identity **out, const char *text,
			    size_t len)
{
	rc_buf hrp = RC_BUF_INIT, key = RC_BUF_INIT;
	rc_age_identity *id;
	int rc;

	*out = NULL;
	text = trim(text, &len);
	if (len >= 18 && memcmp(text, "AGE-SECRET-KEY-PQ-", 18) == 0)
		return rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_NONE,
				    "post-quantum age identities are not supported");
	rc = rc_age_bech32_decode(&hrp, &key, text, len);
	if (rc == 0 && (strcmp(hrp.ptr, "age-secret-key-") != 0 ||
			key.len != 32))
		rc = RC_EINVALID;
	if (rc == 0 && (text[0] < 'A' || text[0] > 'Z'))
		rc = RC_EINVALID; /* age writes and reads them uppercase */
	if (rc) {
		rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
			     "malformed age identity (expected AGE-SECRET-KEY-1...)");
		goto cleanup;
	}
	id = rc_calloc(1, sizeof(*id));
	id->type = RC_AGE_X25519;
	memcpy(id->secret, key.ptr, 32);
	rc_age_x25519_base(id->pub, id->secret);
	*out = id;
cleanup:
	OPENSSL_cleanse(key.ptr, key.len);
	rc_buf_release(&key);
	rc_buf_release(&hrp);
	return rc;
}

int rc_age_identity_parse(rc_age_identity **out, const char *text)
{
	return identity_parse_n(out, text, strlen(text));
}

int rc_age_identity_passphrase(rc_age_identity **out, const char *pass,
			       size_t len, int max_log_n)
{
	rc_age_identity *id = rc_calloc(1, sizeof(*id));

	id->type = RC_AGE_SCRYPT;
	id->pass = rc_malloc(len + 1);
	memcpy(id->pass, pass, len);
	id->pass[len] = '\0';
	id->pass_len = len;
	id->max_log_n = max_log_n > 0 && max_log_n < RC_AGE_SCRYPT_MAX_LOG_N ?
				max_log_n : RC_AGE_SCRYPT_MAX_LOG_N;
	*out = id;
	return 0;
}

int rc_age_identity_recipient(rc_age_recipient **out,
			      const rc_age_identity *id)
{
	rc_age_recipient *r;

	*out = NULL;
	if (id->type == RC_AGE_SCRYPT)
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "a passphrase has no recipient");
	r = rc_calloc(1, sizeof(*r));
	r->type = id->type;
	memcpy(r->pub, id->pub, 32);
	if (id->blob) {
		r->blob = rc_malloc(id->blob_len);
		memcpy(r->blob, id->blob, id->blob_len);
		r->blob_len = id->blob_len;
	}
	if (id->rsa) {
		rc_age_key_type t;

		ssh_blob_parse(r->blob, r->blob_len, &t, r->pub, &r->rsa);
	}
	*out = r;
	return 0;
}

#define OPENSSH_BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----"
#define OPENSSH_END "-----END OPENSSH PRIVATE KEY-----"

/* The private part of an openssh-key-v1 key for the public blob. */
static int ssh_private(rc_age_identity *id, wire *priv)
{
	wire t, k, seed;
	uint32_t c1, c2;
	unsigned char md[RC_SHA512_LEN];

	if (wire_u32(priv, &c1) || wire_u32(priv, &c2) || c1 != c2 ||
	    wire_string(priv, &t))
		return -1;
	if (id->type == RC_AGE_SSH_ED25519) {
		if (!wire_is(&t, "ssh-ed25519") || wire_string(priv, &k) ||
		    k.n != 32 || wire_string(priv, &seed) || seed.n != 64 ||
		    memcmp(seed.p + 32, k.p, 32) != 0 || id->blob_len != 51 ||
		    memcmp(id->blob + 19, k.p, 32) != 0)
			return -1; /* 19: the blob's "ssh-ed25519" string */
		/* RFC 8032 5.1.5: the scalar is the clamped first half of
		 * SHA-512(seed); X25519 clamps it again, harmlessly */
		rc_codec_sha512(md, seed.p, 32);
		md[0] &= 248;
		md[31] &= 127;
		md[31] |= 64;
		memcpy(id->secret, md, 32);
		OPENSSL_cleanse(md, sizeof(md));
		return 0;
	} else {
		BIGNUM *n, *e, *d, *iqmp, *p, *q;
		int rc = -1;

		if (!wire_is(&t, "ssh-rsa"))
			return -1;
		n = wire_bn(priv);
		e = wire_bn(priv);
		d = wire_bn(priv);
		iqmp = wire_bn(priv);
		p = wire_bn(priv);
		q = wire_bn(priv);
		if (n && e && d && iqmp && p && q) {
			EVP_PKEY_free(id->rsa);
			id->rsa = rsa_from_parts(n, e, d, p, q, iqmp);
			rc = id->rsa ? 0 : -1;
		}
		BN_free(n);
		BN_free(e);
		BN_clear_free(d);
		BN_clear_free(iqmp);
		BN_clear_free(p);
		BN_clear_free(q);
		return rc;
	}
}

int rc_age_identity_ssh_parse(rc_age_identity **out, const char *text,
			      size_t len, const char *what)
{
	rc_buf raw = RC_BUF_INIT;
	const char *begin, *end;
	rc_age_identity *id = NULL;
	wire w, cipher, kdf, opts, pubblob, priv;
	uint32_t nkeys;
	int rc = RC_EINVALID;

	*out = NULL;
	text = trim(text, &len);
	if (len < strlen(OPENSSH_BEGIN) + strlen(OPENSSH_END) ||
	    memcmp(text, OPENSSH_BEGIN, strlen(OPENSSH_BEGIN)) != 0 ||
	    memcmp(text + len - strlen(OPENSSH_END), OPENSSH_END,
		   strlen(OPENSSH_END)) != 0) {
		rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
			     "'%s' is not an OpenSSH private key (-----BEGIN OPENSSH PRIVATE KEY-----)",
			     what);
		return RC_EINVALID;
	}
	begin = text + strlen(OPENSSH_BEGIN);
	end = text + len - strlen(OPENSSH_END);
	if (rc_codec_base64_decode(&raw, begin, (size_t)(end - begin),
				   RC_BASE64_LAX) != 0)
		goto bad;
	w.p = (const unsigned char *)raw.ptr;
	w.n = raw.len;
	if (w.n < 15 || memcmp(w.p, "openssh-key-v1", 15) != 0)
		goto bad;
	w.p += 15;
	w.n -= 15;
	if (wire_string(&w, &cipher) || wire_string(&w, &kdf) ||
	    wire_string(&w, &opts) || wire_u32(&w, &nkeys))
		goto bad;
	if (!wire_is(&cipher, "none") || !wire_is(&kdf, "none")) {
		rc = rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_NONE,
				  "'%s' is a passphrase-protected ssh key: reconcile reads unencrypted keys only",
				  what);
		goto cleanup;
	}
	if (nkeys != 1 || wire_string(&w, &pubblob) || wire_string(&w, &priv))
		goto bad;
	id = rc_calloc(1, sizeof(*id));
	if (ssh_blob_parse(pubblob.p, pubblob.n, &id->type, id->pub,
			   &id->rsa) != 0) {
		rc = rc_error_last()->code;
		rc_error_prefix("'%s'", what);
		goto cleanup;
	}
	id->blob = rc_malloc(pubblob.n);
	memcpy(id->blob, pubblob.p, pubblob.n);
	id->blob_len = pubblob.n;
	if (ssh_private(id, &priv) != 0)
		goto bad;
	*out = id;
	id = NULL;
	rc = 0;
	goto cleanup;
bad:
	rc = rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
			  "'%s' is not a well-formed OpenSSH private key", what);
cleanup:
	rc_age_identity_free(id);
	OPENSSL_cleanse(raw.ptr, raw.len);
	rc_buf_release(&raw);
	return rc;
}

/* ------------------------------------------------------------ recipients */

int rc_age_recipient_parse(rc_age_recipient **out, const char *text)
{
	size_t len = strlen(text);
	rc_buf hrp = RC_BUF_INIT, raw = RC_BUF_INIT;
	rc_age_recipient *r = NULL;
	const char *s = trim(text, &len), *sp, *sp2;
	int rc = 0;

	*out = NULL;
	if (len >= 4 && memcmp(s, "age1", 4) == 0) {
		if (len >= 6 && memcmp(s, "age1pq", 6) == 0)
			return rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_NONE,
					    "post-quantum age recipients (age1pq1...) are not supported");
		if (rc_age_bech32_decode(&hrp, &raw, s, len) != 0 ||
		    strcmp(hrp.ptr, "age") != 0 || raw.len != 32 ||
		    s[0] != 'a') {
			rc = rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					  "malformed age recipient '%.*s': not a bech32 age1... X25519 key",
					  (int)(len > 80 ? 80 : len), s);
			goto cleanup;
		}
		r = rc_calloc(1, sizeof(*r));
		r->type = RC_AGE_X25519;
		memcpy(r->pub, raw.ptr, 32);
		goto done;
	}
	if ((len > 12 && memcmp(s, "ssh-ed25519 ", 12) == 0) ||
	    (len > 8 && memcmp(s, "ssh-rsa ", 8) == 0)) {
		sp = memchr(s, ' ', len);
		sp2 = memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s));
		if (!sp2)
			sp2 = s + len;
		if (rc_codec_base64_decode(&raw, sp + 1, (size_t)(sp2 - sp - 1),
					   0) != 0) {
			rc = rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					  "malformed ssh public key: its key is not base64");
			goto cleanup;
		}
		r = rc_calloc(1, sizeof(*r));
		rc = ssh_blob_parse((unsigned char *)raw.ptr, raw.len, &r->type,
				    r->pub, &r->rsa);
		if (rc == 0 && strncmp(s, rc_age_key_type_name(r->type),
				       (size_t)(sp - s)) != 0)
			rc = rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					  "malformed ssh public key: its type and its key differ");
		if (rc)
			goto cleanup;
		r->blob_len = raw.len;
		r->blob = (unsigned char *)rc_buf_detach(&raw);
		goto done;
	}
	rc = rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
			  "unknown recipient '%.*s': expected age1..., ssh-ed25519 AAAA... or ssh-rsa AAAA...",
			  (int)(len > 40 ? 40 : len), s);
	goto cleanup;
done:
	*out = r;
	r = NULL;
cleanup:
	rc_age_recipient_free(r);
	rc_buf_release(&hrp);
	rc_buf_release(&raw);
	return rc;
}

int rc_age_recipient_passphrase(rc_age_recipient **out, const char *pass,
				size_t len, int log_n)
{
	rc_age_recipient *r;

	*out = NULL;
	if (log_n < 1 || log_n > RC_AGE_SCRYPT_MAX_LOG_N)
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "scrypt work factor %d is out of 1..%d",
				    log_n, RC_AGE_SCRYPT_MAX_LOG_N);
	r = rc_calloc(1, sizeof(*r));
	r->type = RC_AGE_SCRYPT;
	r->pass = rc_malloc(len + 1);
	memcpy(r->pass, pass, len);
	r->pass[len] = '\0';
	r->pass_len = len;
	r->log_n = log_n;
	*out = r;
	return 0;
}

/* ----------------------------------------------------------------- lists */

void rc_age_identity_list_add(rc_age_identity_list *l, rc_age_identity *id)
{
	RC_GROW(l->items, l->alloc, l->count + 1);
	l->items[l->count++] = id;
}

void rc_age_identity_list_release(rc_age_identity_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		rc_age_identity_free(l->items[i]);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

void rc_age_recipient_list_add(rc_age_recipient_list *l, rc_age_recipient *r)
{
	RC_GROW(l->items, l->alloc, l->count + 1);
	l->items[l->count++] = r;
}

void rc_age_recipient_list_release(rc_age_recipient_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		rc_age_recipient_free(l->items[i]);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

/* ------------------------------------------------------------- key files */

int rc_age_identities_parse_text(rc_age_identity_list *out, const char *text,
				 size_t len, const char *what)
{
	size_t pos = 0, before = out->count;
	int line = 0;

	while (pos < len) {
		const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		rc_age_identity *id;
		const char *t;
		size_t tn = n;
		int rc;

		pos += n + (nl ? 1 : 0);
		line++;
		t = trim(s, &tn);
		if (tn == 0 || t[0] == '#')
			continue;
		rc = identity_parse_n(&id, t, tn);
		if (rc) {
			rc_error_prefix("%s, line %d", what, line);
			while (out->count > before)
				rc_age_identity_free(out->items[--out->count]);
			return rc;
		}
		rc_age_identity_list_add(out, id);
	}
	if (out->count == before)
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "%s holds no age identity", what);
	return 0;
}

/* Reads a whole key file (at most KEY_FILE_MAX) into b; warns when the
 * group or others may read it. */
static int read_key_file(rc_buf *b, const char *path)
{
	struct stat st;
	char chunk[4096];
	size_t n;
	FILE *f = fopen(path, "rb");
	int rc = 0;

	if (!f)
		return rc_error_set_os("cannot read age key file '%s'", path);
	/* grown once: a reallocation would leave a copy of the keys */
	if (fstat(fileno(f), &st) == 0 && st.st_size >= 0 &&
	    (size_t)st.st_size < KEY_FILE_MAX)
		rc_buf_grow(b, (size_t)st.st_size + 1);
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
		RC_WARN("age key file '%s' can be read by group or others "
			"(mode %03o): run chmod 600 '%s'",
			path, (unsigned)(st.st_mode & 0777), path);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (b->len + n > KEY_FILE_MAX || rc_buf_put(b, chunk, n)) {
			rc = rc_error_set(RC_ETOOBIG, RC_ECLASS_NONE,
					  "age key file '%s' is larger than 1 MiB",
					  path);
			break;
		}
	if (!rc && ferror(f))
		rc = rc_error_set_os("cannot read age key file '%s'", path);
	OPENSSL_cleanse(chunk, sizeof(chunk));
	fclose(f);
	return rc;
}

int rc_age_identities_read_file(rc_age_identity_list *out, const char *path)
{
	rc_buf b = RC_BUF_INIT_MAX(KEY_FILE_MAX);
	rc_age_identity *id;
	int rc;

	rc = read_key_file(&b, path);
	if (rc == 0 && strstr(b.ptr, OPENSSH_BEGIN)) {
		rc = rc_age_identity_ssh_parse(&id, b.ptr, b.len, path);
		if (rc == 0)
			rc_age_identity_list_add(out, id);
	} else if (rc == 0) {
		rc = rc_age_identities_parse_text(out, b.ptr, b.len, path);
	}
	OPENSSL_cleanse(b.ptr, b.len);
	rc_buf_release(&b);
	return rc;
}

int rc_age_identities_load(rc_age_identity_list *out)
{
	const char *key = getenv("RECONCILE_AGE_KEY");
	const char *file = getenv("RECONCILE_AGE_KEY_FILE");
	const char *ssh = getenv("RECONCILE_AGE_SSH_KEY");
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	rc_buf path = RC_BUF_INIT;
	int rc = 0;

	if (key && *key) {
		rc = rc_age_identities_parse_text(out, key, strlen(key),
						  "RECONCILE_AGE_KEY");
	} else if (file && *file) {
		rc = rc_age_identities_read_file(out, file);
	} else {
		if (xdg && *xdg)
			rc_buf_printf(&path, "%s/reconcile/age/keys.txt", xdg);
		else if (home && *home)
			rc_buf_printf(&path,
				      "%s/.config/reconcile/age/keys.txt", home);
		if (path.len && access(path.ptr, F_OK) == 0)
			rc = rc_age_identities_read_file(out, path.ptr);
	}
	if (rc == 0 && ssh && *ssh) {
		rc_buf b = RC_BUF_INIT_MAX(KEY_FILE_MAX);
		rc_age_identity *id;

		rc = read_key_file(&b, ssh);
		if (rc == 0)
			rc = rc_age_identity_ssh_parse(&id, b.ptr, b.len, ssh);
		if (rc == 0)
			rc_age_identity_list_add(out, id);
		OPENSSL_cleanse(b.ptr, b.len);
		rc_buf_release(&b);
	}
	rc_buf_release(&path);
	return rc;
}

int rc_age_keygen(char **identity, char **recipient)
{
	unsigned char secret[32], pub[32];
	rc_buf id = RC_BUF_INIT, r = RC_BUF_INIT;

	rc_age_random(secret, sizeof(secret));
	rc_age_x25519_base(pub, secret);
	rc_age_bech32_encode(&id, "age-secret-key-", secret, 32, true);
	rc_age_bech32_encode(&r, "age", pub, 32, false);
	OPENSSL_cleanse(secret, sizeof(secret));
	*identity = rc_buf_detach(&id);
	*recipient = rc_buf_detach(&r);
	return 0;
}

/* ---------------------------------------------------------- wrap, unwrap */

void rc_age_stanza_release(rc_age_stanza *s)
{
	for (size_t i = 0; i < s->nargs; i++)
		free(s->args[i]);
	free(s->args);
	free(s->body);
	memset(s, 0, sizeof(*s));
}

static void stanza_arg(rc_age_stanza *s, const char *arg)
{
	s->args = rc_realloc(s->args, (s->nargs + 1) * sizeof(*s->args));
	s->args[s->nargs++] = rc_strdup(arg);
}

static void stanza_arg_b64(rc_age_stanza *s, const void *data, size_t len)
{
	rc_buf b = RC_BUF_INIT;

	rc_codec_base64_encode(&b, data, len, RC_BASE64_NOPAD);
	stanza_arg(s, b.ptr);
	rc_buf_release(&b);
}

static const unsigned char zero_nonce[RC_AGE_NONCE_LEN];

/* The X25519 family (X25519 and ssh-ed25519): the wrapping key from the
 * shared secret, the share and the recipient's public key. */
static void x25519_wrap_key(unsigned char key[32], const unsigned char shared[32],
			    const unsigned char share[32],
			    const unsigned char pub[32], const char *label)
{
	unsigned char salt[64];

	memcpy(salt, share, 32);
	memcpy(salt + 32, pub, 32);
	rc_age_hkdf(key, 32, salt, sizeof(salt), shared, 32, label);
}

/* agessh: the shared secret is tweaked by X25519 with a scalar derived
 * from the ssh key blob, HKDF(ikm = empty, salt = blob), as
 * hkdf.New(sha256.New, nil, sshKey.Marshal(), label) reads. */
static int ed25519_tweak(unsigned char shared[32], const unsigned char *blob,
			 size_t len)
{
	unsigned char tweak[32], t[32];
	int rc;

	rc_age_hkdf(tweak, 32, blob, len, NULL, 0, ED25519_LABEL);
	rc = rc_age_x25519(t, tweak, shared);
	memcpy(shared, t, 32);
	OPENSSL_cleanse(t, sizeof(t));
	OPENSSL_cleanse(tweak, sizeof(tweak));
	return rc;
}

void rc_age_wrap(rc_age_stanza *out, const rc_age_recipient *r,
		 const unsigned char fkey[RC_AGE_FILE_KEY_LEN])
{
	unsigned char eph[32], share[32], shared[32], key[32], salt[64];
	rc_buf tag = RC_BUF_INIT;

	memset(out, 0, sizeof(*out));
	stanza_arg(out, rc_age_key_type_name(r->type));
	switch (r->type) {
	case RC_AGE_X25519:
	case RC_AGE_SSH_ED25519:
		do {
			rc_age_random(eph, sizeof(eph));
			rc_age_x25519_base(share, eph);
		} while (rc_age_x25519(shared, eph, r->pub) != 0 ||
			 (r->type == RC_AGE_SSH_ED25519 &&
			  ed25519_tweak(shared, r->blob, r->blob_len) != 0));
		if (r->type == RC_AGE_SSH_ED25519) {
			ssh_tag(&tag, r->blob, r->blob_len);
			stanza_arg(out, tag.ptr);
		}
		stanza_arg_b64(out, share, 32);
		x25519_wrap_key(key, shared, share, r->pub,
				r->type == RC_AGE_X25519 ? X25519_LABEL :
							   ED25519_LABEL);
		out->body = rc_malloc(WRAPPED_LEN);
		out->body_len = WRAPPED_LEN;
		rc_age_seal(out->body, key, zero_nonce, fkey, RC_AGE_FILE_KEY_LEN);
		break;
	case RC_AGE_SCRYPT: {
		char wf[8];

		rc_age_random(salt + strlen(SCRYPT_LABEL), SCRYPT_SALT_LEN);
		memcpy(salt, SCRYPT_LABEL, strlen(SCRYPT_LABEL));
		stanza_arg_b64(out, salt + strlen(SCRYPT_LABEL), SCRYPT_SALT_LEN);
		snprintf(wf, sizeof(wf), "%d", r->log_n);
		stanza_arg(out, wf);
		if (rc_age_scrypt(key, r->pass, r->pass_len, salt,
				  strlen(SCRYPT_LABEL) + SCRYPT_SALT_LEN,
				  r->log_n) != 0)
			abort(); /* the work factor was checked when made */
		out->body = rc_malloc(WRAPPED_LEN);
		out->body_len = WRAPPED_LEN;
		rc_age_seal(out->body, key, zero_nonce, fkey, RC_AGE_FILE_KEY_LEN);
		break;
	}
	case RC_AGE_SSH_RSA: {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(r->rsa, NULL);
		char *label = OPENSSL_strdup(RSA_LABEL);
		size_t n = 0;

		ssh_tag(&tag, r->blob, r->blob_len);
		stanza_arg(out, tag.ptr);
		if (!ctx || !label || EVP_PKEY_encrypt_init(ctx) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) != 1 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1 ||
		    EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label,
						     strlen(RSA_LABEL)) != 1 ||
		    EVP_PKEY_encrypt(ctx, NULL, &n, fkey, RC_AGE_FILE_KEY_LEN) != 1)
			abort();
		out->body = rc_malloc(n);
		if (EVP_PKEY_encrypt(ctx, out->body, &n, fkey,
				     RC_AGE_FILE_KEY_LEN) != 1)
			abort();
		out->body_len = n;
		EVP_PKEY_CTX_free(ctx);
		break;
	}
	}
	OPENSSL_cleanse(eph, sizeof(eph));
	OPENSSL_cleanse(shared, sizeof(shared));
	OPENSSL_cleanse(key, sizeof(key));
	rc_buf_release(&tag);
}

/* Decodes a stanza argument that must be exactly n bytes of canonical
 * unpadded base64. */
static int arg_bytes(unsigned char *out, size_t n, const char *arg)
{
	rc_buf b = RC_BUF_INIT;
	int ok = rc_codec_base64_decode(&b, arg, strlen(arg),
					RC_BASE64_NOPAD) == 0 && b.len == n;

	if (ok)
		memcpy(out, b.ptr, n);
	rc_buf_release(&b);
	return ok ? 0 : -1;
}

static int bad_stanza(const char *type, const char *what)
{
	return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
			    "malformed %s stanza: %s", type, what);
}

/* Opens a wrapped file key with key: 1, or 0 when the tag is wrong. */
static int open_file_key(unsigned char fkey[RC_AGE_FILE_KEY_LEN],
			 const unsigned char key[32], const rc_age_stanza *s)
{
	return rc_age_open(fkey, key, zero_nonce, s->body, s->body_len) == 0;
}

/* A scrypt work factor: decimal digits without a leading zero. */
static int work_factor(const char *s, int max, int *out)
{
	int v = 0;

	if (s[0] < '1' || s[0] > '9')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 1000)
			return -1;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	if (v > max)
		return -2;
	return 0;
}

int rc_age_unwrap(unsigned char fkey[RC_AGE_FILE_KEY_LEN],
		  const rc_age_identity *id, const rc_age_stanza *s)
{
	const char *type = s->args[0];
	unsigned char share[32], shared[32], key[32], tag[SSH_TAG_LEN];
	unsigned char salt[sizeof(SCRYPT_LABEL) - 1 + SCRYPT_SALT_LEN];
	unsigned char md[RC_SHA256_LEN];
	int log_n, rc = 0;

	if (strcmp(type, rc_age_key_type_name(id->type)) != 0)
		return 0;
	switch (id->type) {
	case RC_AGE_X25519:
	case RC_AGE_SSH_ED25519: {
		size_t a = id->type == RC_AGE_X25519 ? 1 : 2;

		if (s->nargs != a + 1)
			return bad_stanza(type, "wrong number of arguments");
		if (a == 2) {
			rc_codec_sha256(md, id->blob, id->blob_len);
			if (arg_bytes(tag, SSH_TAG_LEN, s->args[1]) != 0)
				return bad_stanza(type, "bad tag");
			if (memcmp(tag, md, SSH_TAG_LEN) != 0)
				return 0;
		}
		if (arg_bytes(share, 32, s->args[a]) != 0)
			return bad_stanza(type, "bad share");
		if (s->body_len != WRAPPED_LEN)
			return bad_stanza(type, "bad body length");
		if (rc_age_x25519(shared, id->secret, share) != 0)
			return bad_stanza(type, "the share is a low-order point");
		if (id->type == RC_AGE_SSH_ED25519 &&
		    ed25519_tweak(shared, id->blob, id->blob_len) != 0) {
			rc = bad_stanza(type, "bad share");
			break;
		}
		x25519_wrap_key(key, shared, share, id->pub,
				a == 1 ? X25519_LABEL : ED25519_LABEL);
		rc = open_file_key(fkey, key, s);
		break;
	}
	case RC_AGE_SCRYPT:
		if (s->nargs != 3)
			return bad_stanza(type, "wrong number of arguments");
		memcpy(salt, SCRYPT_LABEL, strlen(SCRYPT_LABEL));
		if (arg_bytes(salt + strlen(SCRYPT_LABEL), SCRYPT_SALT_LEN,
			      s->args[1]) != 0)
			return bad_stanza(type, "bad salt");
		rc = work_factor(s->args[2], id->max_log_n, &log_n);
		if (rc == -2)
			return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					    "scrypt work factor %d is above the limit of %d",
					    log_n, id->max_log_n);
		if (rc)
			return bad_stanza(type, "bad work factor");
		if (s->body_len != WRAPPED_LEN)
			return bad_stanza(type, "bad body length");
		if (rc_age_scrypt(key, id->pass, id->pass_len, salt,
				  sizeof(salt), log_n) != 0)
			return bad_stanza(type, "scrypt failed");
		rc = open_file_key(fkey, key, s);
		break;
	case RC_AGE_SSH_RSA: {
		EVP_PKEY_CTX *ctx;
		char *label;
		unsigned char out[512];
		size_t n = sizeof(out);

		if (s->nargs != 2)
			return bad_stanza(type, "wrong number of arguments");
		rc_codec_sha256(md, id->blob, id->blob_len);
		if (arg_bytes(tag, SSH_TAG_LEN, s->args[1]) != 0)
			return bad_stanza(type, "bad tag");
		if (memcmp(tag, md, SSH_TAG_LEN) != 0)
			return 0;
		ctx = EVP_PKEY_CTX_new(id->rsa, NULL);
		label = OPENSSL_strdup(RSA_LABEL);
		if (!ctx || !label || EVP_PKEY_decrypt_init(ctx) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) != 1 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1 ||
		    EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label,
						     strlen(RSA_LABEL)) != 1)
			abort();
		rc = s->body_len <= sizeof(out) &&
		     EVP_PKEY_decrypt(ctx, out, &n, s->body, s->body_len) == 1 &&
		     n == RC_AGE_FILE_KEY_LEN;
		if (rc)
			memcpy(fkey, out, RC_AGE_FILE_KEY_LEN);
		OPENSSL_cleanse(out, sizeof(out));
		EVP_PKEY_CTX_free(ctx);
		break;
	}
	}
	OPENSSL_cleanse(shared, sizeof(shared));
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}
