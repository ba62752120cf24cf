/* The age format's primitives over OpenSSL 3 (see age_crypto.h). */
#include "schema/age_crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

static void crypto_failed(const char *what)
{
	fprintf(stderr, "reconcile: OpenSSL failed in %s (out of memory?)\n",
		what);
	abort();
}

void rc_age_hkdf(unsigned char *out, size_t outlen, const void *salt,
		 size_t saltlen, const void *ikm, size_t ikmlen,
		 const char *info)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM p[5], *q = p;
	static const unsigned char none[1];

	if (!ctx)
		crypto_failed("HKDF");
	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						(char *)"SHA256", 0);
	*q++ = OSSL_PARAM_construct_octet_string(
		OSSL_KDF_PARAM_KEY, ikmlen ? (void *)ikm : (void *)none, ikmlen);
	if (saltlen)
		*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
							 (void *)salt, saltlen);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
						 (void *)info, strlen(info));
	*q = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, outlen, p) != 1)
		crypto_failed("HKDF");
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
}

/* One ChaCha20-Poly1305 pass; enc 1 seals, 0 opens. */
static int aead(unsigned char *out, const unsigned char *key,
		const unsigned char *nonce, const unsigned char *in,
		size_t len, unsigned char *tag, int enc)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, ok;

	if (!ctx || len > INT_MAX)
		crypto_failed("ChaCha20-Poly1305");
	if (EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key, nonce,
			      enc) != 1)
		crypto_failed("ChaCha20-Poly1305");
	if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG,
					RC_AGE_TAG_LEN, tag) != 1)
		crypto_failed("ChaCha20-Poly1305");
	ok = (len == 0 || EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1) &&
	     EVP_CipherFinal_ex(ctx, out + n, &n) == 1;
	if (ok && enc &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, RC_AGE_TAG_LEN,
				tag) != 1)
		crypto_failed("ChaCha20-Poly1305");
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

void rc_age_seal(unsigned char *out, const unsigned char key[RC_AGE_KEY_LEN],
		 const unsigned char nonce[RC_AGE_NONCE_LEN], const void *in,
		 size_t len)
{
	if (aead(out, key, nonce, in, len, out + len, 1) != 0)
		crypto_failed("ChaCha20-Poly1305");
}

int rc_age_open(unsigned char *out, const unsigned char key[RC_AGE_KEY_LEN],
		const unsigned char nonce[RC_AGE_NONCE_LEN], const void *in,
		size_t len)
{
	unsigned char tag[RC_AGE_TAG_LEN];
	size_t n;

	if (len < RC_AGE_TAG_LEN)
		return -1;
	n = len - RC_AGE_TAG_LEN;
	memcpy(tag, (const unsigned char *)in + n, RC_AGE_TAG_LEN);
	if (aead(out, key, nonce, in, n, tag, 0) != 0) {
		OPENSSL_cleanse(out, n);
		return -1;
	}
	return 0;
}

int rc_age_x25519(unsigned char out[32], const unsigned char scalar[32],
		  const unsigned char point[32])
{
	static const unsigned char zero[32];
	EVP_PKEY *priv, *peer;
	EVP_PKEY_CTX *ctx;
	size_t n = 32;
	int ok;

	priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, scalar, 32);
	peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, point, 32);
	ctx = priv ? EVP_PKEY_CTX_new(priv, NULL) : NULL;
	if (!peer || !ctx || EVP_PKEY_derive_init(ctx) != 1)
		crypto_failed("X25519");
	/* OpenSSL refuses an all-zero result itself; check it anyway */
	ok = EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
	     EVP_PKEY_derive(ctx, out, &n) == 1 && n == 32 &&
	     CRYPTO_memcmp(out, zero, 32) != 0;
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	EVP_PKEY_free(priv);
	if (!ok)
		OPENSSL_cleanse(out, 32);
	return ok ? 0 : -1;
}

void rc_age_x25519_base(unsigned char out[32], const unsigned char scalar[32])
{
	EVP_PKEY *k;
	size_t n = 32;

	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, scalar, 32);
	if (!k || EVP_PKEY_get_raw_public_key(k, out, &n) != 1 || n != 32)
		crypto_failed("X25519");
	EVP_PKEY_free(k);
}

int rc_age_scrypt(unsigned char out[RC_AGE_KEY_LEN], const void *pass,
		  size_t passlen, const void *salt, size_t saltlen, int log_n)
{
	uint64_t n = (uint64_t)1 << log_n;
	/* 128 r N bytes, and room for OpenSSL's own accounting */
	uint64_t maxmem = 128 * 8 * n + ((uint64_t)1 << 20);

	if (EVP_PBE_scrypt(passlen ? pass : "", passlen, salt, saltlen, n, 8,
			   1, maxmem, out, RC_AGE_KEY_LEN) != 1)
		return -1;
	return 0;
}

void rc_age_random(void *out, size_t n)
{
	if (n > INT_MAX || RAND_bytes(out, (int)n) != 1)
		crypto_failed("RAND_bytes");
}
