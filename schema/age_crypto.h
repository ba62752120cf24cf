/*
 * The primitives of the age format (schema/age.c, schema/age_keys.c),
 * over OpenSSL 3: HKDF-SHA-256 (RFC 5869), ChaCha20-Poly1305 (RFC 8439),
 * X25519 (RFC 7748), scrypt (RFC 7914) and random bytes.
 *
 * Inputs are borrowed; outputs go to caller arrays. Secret inputs are
 * never copied to memory these functions do not wipe.
 */
#ifndef RC_AGE_CRYPTO_H
#define RC_AGE_CRYPTO_H

#include "reconciler/base/common.h"

#define RC_AGE_KEY_LEN 32  /* a ChaCha20-Poly1305 key, an X25519 scalar */
#define RC_AGE_TAG_LEN 16  /* a Poly1305 tag */
#define RC_AGE_NONCE_LEN 12

/* HKDF-SHA-256 of ikm with salt and info (strings; NULL salt is empty)
 * into out (outlen bytes). Aborts only when OpenSSL cannot allocate. */
void rc_age_hkdf(unsigned char *out, size_t outlen, const void *salt,
		 size_t saltlen, const void *ikm, size_t ikmlen,
		 const char *info);

/* ChaCha20-Poly1305 of in (len bytes) under key and nonce, no
 * additional data: out receives len + RC_AGE_TAG_LEN bytes. */
void rc_age_seal(unsigned char *out, const unsigned char key[RC_AGE_KEY_LEN],
		 const unsigned char nonce[RC_AGE_NONCE_LEN], const void *in,
		 size_t len);
/* The reverse: in holds len bytes, the last RC_AGE_TAG_LEN of them the
 * tag; out receives len - RC_AGE_TAG_LEN bytes. 0, or -1 when len is too
 * short or the tag is wrong (out is then wiped). */
int rc_age_open(unsigned char *out, const unsigned char key[RC_AGE_KEY_LEN],
		const unsigned char nonce[RC_AGE_NONCE_LEN], const void *in,
		size_t len);

/* X25519(scalar, point) into out; -1 when the result is all zero (a
 * low-order point), which age refuses. */
int rc_age_x25519(unsigned char out[32], const unsigned char scalar[32],
		  const unsigned char point[32]);
/* X25519(scalar, 9): the public key of a scalar. */
void rc_age_x25519_base(unsigned char out[32], const unsigned char scalar[32]);

/* scrypt with r = 8, p = 1 and N = 2^log_n into out (32 bytes); -1 when
 * OpenSSL refuses (memory). */
int rc_age_scrypt(unsigned char out[RC_AGE_KEY_LEN], const void *pass,
		  size_t passlen, const void *salt, size_t saltlen, int log_n);

/* n random bytes from OpenSSL's generator (aborts when it has none). */
void rc_age_random(void *out, size_t n);

#endif
