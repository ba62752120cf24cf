/* Digests and encodings over OpenSSL: SHA-256, HMAC-SHA-256, base64 and
 * base64url, hex, a constant-time comparison (codec.h). */
#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

static const char hex_digits[] = "0123456789abcdef";
static const char base64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "abcdefghijklmnopqrstuvwxyz0123456789+/";
static const char base64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "abcdefghijklmnopqrstuvwxyz0123456789-_";

/* The value of the digit c in an alphabet of n digits, or -1. */
static int digit_value(const char *alphabet, size_t n, unsigned char c)
{
	const char *p = c ? memchr(alphabet, c, n) : NULL;

	return p ? (int)(p - alphabet) : -1;
}

/* OpenSSL fails a digest only when it runs out of memory. */
static void crypto_failed(const char *what)
{
	fprintf(stderr, "fatal: %s failed in OpenSSL (out of memory?)\n",
		what);
	abort();
}

/* 2 * n lowercase hex digits of p at dst (no NUL). */
static void hex_write(char *dst, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dst[2 * i] = hex_digits[p[i] >> 4];
		dst[2 * i + 1] = hex_digits[p[i] & 15];
	}
}

/* Counts the n bytes written by hand past out->len (after rc_buf_grow())
 * and ends the string. */
static void buf_added(rc_buf *out, size_t n)
{
	out->len += n;
	out->ptr[out->len] = '\0';
}

/* ---------------------------------------------------------------- digests */

/* One-shot digest md of data into out (want bytes). */
static void digest(const EVP_MD *md, unsigned char *out, unsigned int want,
		   const void *data, size_t len, const char *name)
{
	unsigned int n = 0;

	if (EVP_Digest(len ? data : "", len, out, &n, md, NULL) != 1 ||
	    n != want)
		crypto_failed(name);
}

void rc_codec_sha256(unsigned char out[RC_SHA256_LEN], const void *data,
		     size_t len)
{
	digest(EVP_sha256(), out, RC_SHA256_LEN, data, len, "SHA-256");
}

void rc_codec_sha512(unsigned char out[RC_SHA512_LEN], const void *data,
		     size_t len)
{
	digest(EVP_sha512(), out, RC_SHA512_LEN, data, len, "SHA-512");
}

void rc_codec_sha256_hex(char out[RC_SHA256_HEX_LEN + 1], const void *data,
			 size_t len)
{
	unsigned char md[RC_SHA256_LEN];

	rc_codec_sha256(md, data, len);
	hex_write(out, md, sizeof(md));
	out[RC_SHA256_HEX_LEN] = '\0';
}

void rc_codec_sha256_digest(char out[RC_SHA256_DIGEST_LEN + 1],
			    const void *data, size_t len)
{
	memcpy(out, "sha256:", 7);
	rc_codec_sha256_hex(out + 7, data, len);
}

struct rc_codec_sha256_stream {
	EVP_MD_CTX *md;
};

rc_codec_sha256_stream *rc_codec_sha256_begin(void)
{
	rc_codec_sha256_stream *s = rc_malloc(sizeof(*s));

	s->md = EVP_MD_CTX_new();
	if (!s->md || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1)
		crypto_failed("SHA-256");
	return s;
}

void rc_codec_sha256_update(rc_codec_sha256_stream *s, const void *data,
			    size_t len)
{
	if (len && EVP_DigestUpdate(s->md, data, len) != 1)
		crypto_failed("SHA-256");
}

void rc_codec_sha256_end(rc_codec_sha256_stream *s,
			 char out[RC_SHA256_DIGEST_LEN + 1])
{
	unsigned char md[RC_SHA256_LEN];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(s->md, md, &n) != 1 || n != RC_SHA256_LEN)
		crypto_failed("SHA-256");
	memcpy(out, "sha256:", 7);
	hex_write(out + 7, md, sizeof(md));
	out[RC_SHA256_DIGEST_LEN] = '\0';
	rc_codec_sha256_abort(s);
}

void rc_codec_sha256_abort(rc_codec_sha256_stream *s)
{
	if (!s)
		return;
	EVP_MD_CTX_free(s->md);
	free(s);
}

void rc_codec_hmac_sha256(unsigned char out[RC_SHA256_LEN], const void *key,
			  size_t keylen, const void *data, size_t len)
{
	unsigned int n = 0;

	if (keylen > INT_MAX ||
	    !HMAC(EVP_sha256(), keylen ? key : "", (int)keylen,
		  len ? data : "", len, out, &n) ||
	    n != RC_SHA256_LEN)
		crypto_failed("HMAC-SHA-256");
}

/* ----------------------------------------------------------------- base64 */

static int base64_error(const char *fmt, ...) RC_PRINTF(1, 2);
static int base64_error(const char *fmt, ...)
{
	rc_buf m = RC_BUF_INIT_MAX(256);
	va_list ap;

	va_start(ap, fmt);
	rc_buf_vprintf(&m, fmt, ap);
	va_end(ap);
	rc_error_set(RC_EINVALID, RC_ECLASS_NONE, "invalid base64: %s", m.ptr);
	rc_buf_release(&m);
	return RC_EINVALID;
}

static const char *base64_alphabet(unsigned flags)
{
	return flags & RC_BASE64_URL ? base64_url : base64_std;
}

int rc_codec_base64_encode(rc_buf *out, const void *data, size_t len,
			   unsigned flags)
{
	const unsigned char *p = data;
	const char *a = base64_alphabet(flags);
	bool pad = !(flags & RC_BASE64_NOPAD);
	size_t tail = len % 3, size = len / 3 * 4, i;
	char *dst;
	int rc;

	if (len / 3 >= SIZE_MAX / 4) /* no buffer holds it: RC_ETOOBIG */
		return rc_buf_grow(out, SIZE_MAX);
	if (tail)
		size += pad ? 4 : tail + 1;
	if ((rc = rc_buf_grow(out, size)) < 0)
		return rc;
	dst = out->ptr + out->len;
	for (i = 0; i + 3 <= len; i += 3) {
		unsigned long v = (unsigned long)p[i] << 16 |
				  (unsigned long)p[i + 1] << 8 | p[i + 2];

		*dst++ = a[v >> 18 & 63];
		*dst++ = a[v >> 12 & 63];
		*dst++ = a[v >> 6 & 63];
		*dst++ = a[v & 63];
	}
	if (tail) {
		unsigned long v = (unsigned long)p[i] << 16;

		if (tail == 2)
			v |= (unsigned long)p[i + 1] << 8;
		*dst++ = a[v >> 18 & 63];
		*dst++ = a[v >> 12 & 63];
		if (tail == 2)
			*dst++ = a[v >> 6 & 63];
		else if (pad)
			*dst++ = '=';
		if (pad)
			*dst++ = '=';
	}
	buf_added(out, size);
	return 0;
}

/* Checks s and counts the characters that carry data into *ndata. */
static int base64_check(size_t *ndata, const char *s, size_t len,
			unsigned flags)
{
	const char *a = base64_alphabet(flags);
	bool lax = flags & RC_BASE64_LAX;
	size_t i, n = 0, pad = 0, pad_at = 0, need;
	int v, last = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (lax && isspace(c))
			continue;
		if (c == '=' && (flags & RC_BASE64_NOPAD))
			return base64_error("padding at offset %zu, where none "
					    "is allowed",
					    i);
		if (c == '=') {
			if (!pad++)
				pad_at = i;
			continue;
		}
		if ((v = digit_value(a, 64, c)) < 0)
			return base64_error("unexpected character at offset "
					    "%zu",
					    i);
		if (pad)
			return base64_error("data after the padding, at offset "
					    "%zu",
					    i);
		last = v;
		n++;
	}
	if (n % 4 == 1)
		return base64_error("truncated: a lone character at the end");
	need = n % 4 ? 4 - n % 4 : 0;
	if (pad && !need)
		return base64_error("padding after a whole group, at offset "
				    "%zu",
				    pad_at);
	if (pad && pad != need)
		return base64_error("%zu '=' of padding where %zu belong", pad,
				    need);
	if (!pad && need && !(flags & (RC_BASE64_NOPAD | RC_BASE64_LAX)))
		return base64_error("missing padding (%zu '=' at the end)",
				    need);
	/* RFC 4648 section 3.5: the bits the last character does not use
	 * are zero in the one canonical encoding */
	if (!lax && ((n % 4 == 2 && (last & 15)) || (n % 4 == 3 && (last & 3))))
		return base64_error("the unused bits of the last character "
				    "are not zero");
	*ndata = n;
	return 0;
}

int rc_codec_base64_decode(rc_buf *out, const char *s, size_t len,
			   unsigned flags)
{
	const char *a = base64_alphabet(flags);
	size_t n = 0, size, i;
	unsigned long v = 0;
	unsigned bits = 0;
	char *dst;
	int rc;

	if ((rc = base64_check(&n, s, len, flags)) < 0)
		return rc;
	size = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	if ((rc = rc_buf_grow(out, size)) < 0)
		return rc;
	dst = out->ptr + out->len;
	for (i = 0; i < len; i++) {
		int c = digit_value(a, 64, (unsigned char)s[i]);

		if (c < 0) /* whitespace or padding, checked above */
			continue;
		v = (v << 6 | (unsigned long)c) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*dst++ = (char)(v >> bits & 0xff);
		}
	}
	buf_added(out, size);
	return 0;
}

/* -------------------------------------------------------------------- hex */

int rc_codec_hex_encode(rc_buf *out, const void *data, size_t len)
{
	int rc;

	if (len > SIZE_MAX / 2) /* no buffer holds it: RC_ETOOBIG */
		return rc_buf_grow(out, SIZE_MAX);
	if ((rc = rc_buf_grow(out, 2 * len)) < 0)
		return rc;
	hex_write(out->ptr + out->len, data, len);
	buf_added(out, 2 * len);
	return 0;
}

static int hex_value(unsigned char c)
{
	return digit_value(hex_digits, 16, (unsigned char)tolower(c));
}

int rc_codec_hex_decode(rc_buf *out, const char *s, size_t len)
{
	size_t i;
	char *dst;
	int rc;

	for (i = 0; i < len; i++)
		if (hex_value((unsigned char)s[i]) < 0)
			return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					    "invalid hex: unexpected "
					    "character at offset %zu",
					    i);
	if (len % 2)
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "invalid hex: an odd number of digits "
				    "(%zu)",
				    len);
	if ((rc = rc_buf_grow(out, len / 2)) < 0)
		return rc;
	dst = out->ptr + out->len;
	for (i = 0; i < len; i += 2)
		*dst++ = (char)(hex_value((unsigned char)s[i]) << 4 |
				hex_value((unsigned char)s[i + 1]));
	buf_added(out, len / 2);
	return 0;
}

/* ------------------------------------------------------------- comparison */

bool rc_codec_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (!alen || CRYPTO_memcmp(a, b, alen) == 0);
}
