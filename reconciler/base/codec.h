/*
 * Digests and encodings, once, over OpenSSL: SHA-256 (FIPS 180-4),
 * HMAC-SHA-256 (RFC 2104), base64 and base64url (RFC 4648 sections 4
 * and 5), lowercase hex (RFC 4648 section 8), percent-encoding (RFC 3986
 * section 2.1), and a constant-time comparison.
 *
 * Ownership: inputs are borrowed (pointer and length: they may hold NUL
 * bytes and need no terminator); outputs go into caller arrays of the
 * sizes below, or are appended to a caller's rc_buf.
 *
 * The digests cannot fail for a reason a caller could handle: OpenSSL
 * fails them only when it cannot allocate memory, and then, as
 * rc_malloc() does, the process aborts with a message.
 *
 * Decoding is strict and says what is wrong with rc_error_set()
 * (RC_EINVALID, class RC_ECLASS_NONE: the caller knows where the text
 * came from and adds that with rc_error_prefix()). A message gives the
 * offset of the fault, never the text itself, which may be a secret.
 * A failed encode or decode leaves the output buffer as it was: the whole
 * input is checked before anything is written. A successful one grows the
 * buffer once, to the exact size, so that an empty buffer is never
 * reallocated and leaves no copy of a decoded secret in freed memory.
 */
#ifndef RC_CODEC_H
#define RC_CODEC_H

#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"

#define RC_SHA256_LEN 32     /* bytes of a SHA-256 or an HMAC-SHA-256 */
#define RC_SHA256_HEX_LEN 64 /* its hex digits (add 1 for the NUL) */
/* "sha256:" and the hex digits: a digest as OCI registries write it */
#define RC_SHA256_DIGEST_LEN (7 + RC_SHA256_HEX_LEN)

/* SHA-256 of data. */
void rc_codec_sha256(unsigned char out[RC_SHA256_LEN], const void *data,
		     size_t len);
/* The same as 64 lowercase hex digits and a NUL. */
void rc_codec_sha256_hex(char out[RC_SHA256_HEX_LEN + 1], const void *data,
			 size_t len);
/* "sha256:<64 lowercase hex digits>" and a NUL. */
void rc_codec_sha256_digest(char out[RC_SHA256_DIGEST_LEN + 1],
			    const void *data, size_t len);
#define RC_SHA512_LEN 64 /* bytes of a SHA-512 */
/* SHA-512 of data (ssh signatures; age's ssh-ed25519 keys). */
void rc_codec_sha512(unsigned char out[RC_SHA512_LEN], const void *data,
		     size_t len);
/* SHA-256 of a stream fed in pieces (a blob too large for memory):
 * begin, update any number of times, then end, which writes
 * "sha256:<hex>" and frees the state. */
typedef struct rc_codec_sha256_stream rc_codec_sha256_stream;
rc_codec_sha256_stream *rc_codec_sha256_begin(void);
void rc_codec_sha256_update(rc_codec_sha256_stream *s, const void *data,
			    size_t len);
void rc_codec_sha256_end(rc_codec_sha256_stream *s,
			 char out[RC_SHA256_DIGEST_LEN + 1]);
/* Frees a stream without its digest (NULL is fine). */
void rc_codec_sha256_abort(rc_codec_sha256_stream *s);

/* HMAC-SHA-256 of data under key (raw bytes, so that HMACs chain, as in
 * AWS Signature Version 4). */
void rc_codec_hmac_sha256(unsigned char out[RC_SHA256_LEN], const void *key,
			  size_t keylen, const void *data, size_t len);

/*
 * Base64 flags (0 is RFC 4648 section 4: '+' and '/', padded with '='):
 *
 * RC_BASE64_URL    the URL and file name safe alphabet of section 5:
 *                  '-' and '_' instead of '+' and '/'
 * RC_BASE64_NOPAD  encoding writes no '='; decoding refuses one (JWS,
 *                  Kubernetes continue tokens)
 * RC_BASE64_LAX    decoding only, for text people paste into files
 *                  (kubeconfig *-data fields): whitespace anywhere is
 *                  skipped, the padding may be left out (when it is
 *                  there it must be right), and the unused bits of the
 *                  last character need not be zero
 *
 * Without RC_BASE64_LAX, decoding refuses whitespace, characters of the
 * other alphabet, missing or extra padding, anything after the padding, a
 * length that no encoding has (one character past a group of four), and
 * non-zero unused bits in the last character (section 3.5), so that every
 * byte string has exactly one accepted encoding.
 */
#define RC_BASE64_URL 0x1u
#define RC_BASE64_NOPAD 0x2u
#define RC_BASE64_LAX 0x4u

/* Appends the base64 of data to out; 0 or RC_ETOOBIG. */
int rc_codec_base64_encode(rc_buf *out, const void *data, size_t len,
			   unsigned flags);
/* Appends the bytes that the base64 text s (len characters) encodes to
 * out; 0, RC_EINVALID or RC_ETOOBIG. */
int rc_codec_base64_decode(rc_buf *out, const char *s, size_t len,
			   unsigned flags);

/* Appends the lowercase hex of data to out; 0 or RC_ETOOBIG. */
int rc_codec_hex_encode(rc_buf *out, const void *data, size_t len);
/* Appends the bytes of the hex text s (len digits, either case) to out;
 * 0, RC_EINVALID (an odd length, a character that is not a hex digit) or
 * RC_ETOOBIG. */
int rc_codec_hex_decode(rc_buf *out, const char *s, size_t len);

/* Appends data percent-encoded (RFC 3986 section 2.1): the unreserved
 * characters (letters, digits, '-', '.', '_', '~') as they are, every
 * other byte as '%' and two uppercase hex digits; 0 or RC_ETOOBIG. */
int rc_codec_percent_encode(rc_buf *out, const void *data, size_t len);

/* Whether a and b hold the same bytes, in a time that depends only on
 * the lengths (CRYPTO_memcmp): for MACs, signatures and tokens. Strings
 * of different lengths are unequal. */
bool rc_codec_equal(const void *a, size_t alen, const void *b, size_t blen);

#endif
