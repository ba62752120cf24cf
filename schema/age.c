/* The age v1 file format (see age.h). */
#include "schema/age.h"

#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "schema/age_crypto.h"

#include <openssl/crypto.h>

#define INTRO "age-encryption.org/v1"
#define ARMOR_BEGIN "-----BEGIN AGE ENCRYPTED FILE-----"
#define ARMOR_END "-----END AGE ENCRYPTED FILE-----"
#define COLUMNS 64          /* base64 characters per line */
#define LINE_BYTES 48       /* the bytes a full line holds */
#define MAX_WHITESPACE 1024 /* around an armored file */
#define CHUNK ((size_t)64 << 10)
#define ENC_CHUNK (CHUNK + RC_AGE_TAG_LEN)
#define PAYLOAD_NONCE_LEN 16

static const char *const failure_names[] = {
	"success",   "armor failure", "header failure",
	"no match",  "HMAC failure",  "payload failure"};

const char *rc_age_failure_name(rc_age_failure f)
{
	return failure_names[f];
}

/* -------------------------------------------------------------- armor */

void rc_age_armor_encode(rc_buf *out, const void *data, size_t len)
{
	const unsigned char *d = data;

	rc_buf_puts(out, ARMOR_BEGIN "\n");
	for (size_t off = 0; off < len; off += LINE_BYTES) {
		size_t n = len - off < LINE_BYTES ? len - off : LINE_BYTES;

		rc_codec_base64_encode(out, d + off, n, 0);
		rc_buf_putc(out, '\n');
	}
	rc_buf_puts(out, ARMOR_END "\n");
}

/* The next line of s[*pos..len) without its "\n" or "\r\n": -1 at the
 * end of the text; *eol tells whether a newline ended it. */
static int next_line(const char *s, size_t len, size_t *pos, const char **line,
		     size_t *n, bool *eol)
{
	const char *nl;

	if (*pos >= len)
		return -1;
	*line = s + *pos;
	nl = memchr(*line, '\n', len - *pos);
	*n = nl ? (size_t)(nl - *line) : len - *pos;
	*pos += *n + (nl ? 1 : 0);
	*eol = nl != NULL;
	if (nl && *n && (*line)[*n - 1] == '\r')
		(*n)--;
	return 0;
}

static bool line_is(const char *line, size_t n, const char *text)
{
	return n == strlen(text) && memcmp(line, text, n) == 0;
}

static int armor_fail(const char *what)
{
	return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
			    "malformed age armor: %s", what);
}

int rc_age_armor_decode(rc_buf *out, const void *text, size_t len)
{
	const char *s = text, *line;
	size_t pos = 0, n, start = out->len;
	bool eol, short_line = false;
	int rc;

	while (pos < len && isspace((unsigned char)s[pos]))
		pos++;
	if (pos > MAX_WHITESPACE)
		return armor_fail("too much leading whitespace");
	if (next_line(s, len, &pos, &line, &n, &eol) || !eol ||
	    !line_is(line, n, ARMOR_BEGIN))
		return armor_fail("the first line is not " ARMOR_BEGIN);
	for (;;) {
		if (next_line(s, len, &pos, &line, &n, &eol)) {
			rc = armor_fail("no " ARMOR_END " line");
			goto fail;
		}
		if (line_is(line, n, ARMOR_END))
			break;
		if (short_line) {
			rc = armor_fail("a short line is not the last one");
			goto fail;
		}
		if (n == 0 || n > COLUMNS || !eol) {
			rc = armor_fail(n > COLUMNS ? "a line is longer than 64 columns" :
					"an empty or unterminated line");
			goto fail;
		}
		size_t before = out->len;

		if (rc_codec_base64_decode(out, line, n, 0) != 0) {
			rc = armor_fail("invalid base64");
			goto fail;
		}
		short_line = out->len - before != LINE_BYTES;
	}
	for (n = pos; n < len; n++)
		if (!isspace((unsigned char)s[n])) {
			rc = armor_fail("data after the end line");
			goto fail;
		}
	if (len - pos > MAX_WHITESPACE) {
		rc = armor_fail("too much trailing whitespace");
		goto fail;
	}
	return 0;
fail:
	OPENSSL_cleanse(out->ptr + start, out->len - start);
	rc_buf_truncate(out, start);
	return rc;
}

/* Whether the file looks armored: "-----" after leading whitespace. */
static bool looks_armored(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && isspace((unsigned char)s[i]))
		i++;
	return len - i >= 5 && memcmp(s + i, "-----", 5) == 0;
}

/* ------------------------------------------------------------- header */

typedef struct {
	rc_age_stanza *stanzas;
	size_t count, alloc;
	size_t mac_end; /* the bytes the MAC covers: through "---" */
	unsigned char mac[RC_SHA256_LEN];
	size_t payload; /* offset of the payload */
} header;

static void header_release(header *h)
{
	for (size_t i = 0; i < h->count; i++)
		rc_age_stanza_release(&h->stanzas[i]);
	free(h->stanzas);
	memset(h, 0, sizeof(*h));
}

static int header_fail(const char *what)
{
	return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
			    "malformed age header: %s", what);
}

/* The line at *pos up to "\n" (required), without it. */
static int header_line(const char *s, size_t len, size_t *pos,
		       const char **line, size_t *n)
{
	const char *nl;

	if (*pos >= len)
		return -1;
	*line = s + *pos;
	nl = memchr(*line, '\n', len - *pos);
	if (!nl)
		return -1;
	*n = (size_t)(nl - *line);
	*pos += *n + 1;
	return 0;
}

/* "-> type args..." into st; every argument a non-empty run of printable
 * ASCII without spaces. */
static int stanza_args(rc_age_stanza *st, const char *line, size_t n)
{
	size_t i = 3, startarg;

	while (i <= n) {
		startarg = i;
		while (i < n && line[i] != ' ') {
			if (line[i] < 33 || line[i] > 126)
				return -1;
			i++;
		}
		if (i == startarg)
			return -1;
		st->args = rc_realloc(st->args, (st->nargs + 1) * sizeof(char *));
		st->args[st->nargs] = rc_malloc(i - startarg + 1);
		memcpy(st->args[st->nargs], line + startarg, i - startarg);
		st->args[st->nargs++][i - startarg] = '\0';
		i++;
	}
	return st->nargs ? 0 : -1;
}

static int stanza_body(rc_age_stanza *st, const char *s, size_t len,
		       size_t *pos)
{
	rc_buf body = RC_BUF_INIT;
	const char *line;
	size_t n, before;

	for (;;) {
		if (header_line(s, len, pos, &line, &n) || n > COLUMNS)
			goto bad;
		before = body.len;
		if (rc_codec_base64_decode(&body, line, n, RC_BASE64_NOPAD))
			goto bad;
		if (body.len - before < LINE_BYTES)
			break;
	}
	st->body_len = body.len;
	st->body = (unsigned char *)rc_buf_detach(&body);
	return 0;
bad:
	rc_buf_release(&body);
	return -1;
}

static int header_parse(header *h, const char *s, size_t len)
{
	const char *line;
	size_t pos = 0, n;

	memset(h, 0, sizeof(*h));
	if (header_line(s, len, &pos, &line, &n) || !line_is(line, n, INTRO)) {
		if (len >= 19 && memcmp(s, "age-encryption.org/", 19) == 0)
			return header_fail("unsupported version (reconcile reads age-encryption.org/v1)");
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "not an age file (no age-encryption.org/v1 line)");
	}
	for (;;) {
		if (header_line(s, len, &pos, &line, &n))
			return header_fail("the header ends before its MAC line");
		if (n >= 3 && memcmp(line, "---", 3) == 0) {
			h->mac_end = (size_t)(line - s) + 3;
			if (n < 4 || line[3] != ' ' ||
			    memchr(line + 4, ' ', n - 4))
				return header_fail("malformed MAC line");
			rc_buf mac = RC_BUF_INIT;
			int ok = rc_codec_base64_decode(&mac, line + 4, n - 4,
							RC_BASE64_NOPAD) == 0 &&
				 mac.len == RC_SHA256_LEN;

			if (ok)
				memcpy(h->mac, mac.ptr, RC_SHA256_LEN);
			rc_buf_release(&mac);
			if (!ok)
				return header_fail("malformed MAC");
			h->payload = pos;
			return 0;
		}
		if (n < 3 || memcmp(line, "-> ", 3) != 0)
			return header_fail("a line is neither a stanza nor the MAC");
		RC_GROW(h->stanzas, h->alloc, h->count + 1);
		memset(&h->stanzas[h->count], 0, sizeof(rc_age_stanza));
		h->count++;
		if (stanza_args(&h->stanzas[h->count - 1], line, n))
			return header_fail("malformed stanza arguments");
		if (stanza_body(&h->stanzas[h->count - 1], s, len, &pos))
			return header_fail("malformed stanza body");
	}
}

/* ------------------------------------------------------------ payload */

static void chunk_nonce(unsigned char nonce[RC_AGE_NONCE_LEN], uint64_t counter,
			bool last)
{
	memset(nonce, 0, RC_AGE_NONCE_LEN);
	for (int i = 0; i < 8; i++)
		nonce[10 - i] = (unsigned char)(counter >> (8 * i));
	nonce[11] = last ? 1 : 0;
}

static int payload_fail(const char *what)
{
	return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
			    "age payload: %s", what);
}

static void payload_key(unsigned char key[32],
			const unsigned char fkey[RC_AGE_FILE_KEY_LEN],
			const unsigned char *nonce)
{
	rc_age_hkdf(key, 32, nonce, PAYLOAD_NONCE_LEN, fkey,
		    RC_AGE_FILE_KEY_LEN, "payload");
}

static int payload_decrypt(rc_buf *out, const unsigned char *p, size_t len,
			   const unsigned char fkey[RC_AGE_FILE_KEY_LEN])
{
	unsigned char key[32], nonce[RC_AGE_NONCE_LEN];
	size_t off = PAYLOAD_NONCE_LEN, size;
	uint64_t counter = 0;
	bool last;
	int rc = 0;

	if (len == PAYLOAD_NONCE_LEN)
		return payload_fail("no chunks");
	/* grown once, so that no copy of the plaintext is left behind in
	 * memory a reallocation freed */
	if (rc_buf_grow(out, len - PAYLOAD_NONCE_LEN))
		return rc_error_set(RC_ETOOBIG, RC_ECLASS_NONE,
				    "age payload: larger than the output's limit");
	payload_key(key, fkey, p);
	for (;;) {
		size = len - off < ENC_CHUNK ? len - off : ENC_CHUNK;
		if (size < RC_AGE_TAG_LEN) {
			rc = payload_fail("a chunk is truncated");
			break;
		}
		last = size < ENC_CHUNK;
		chunk_nonce(nonce, counter, last);
		if (rc_age_open((unsigned char *)out->ptr + out->len, key, nonce,
				p + off, size) != 0) {
			/* a full chunk may be the last one */
			chunk_nonce(nonce, counter, true);
			if (last || rc_age_open((unsigned char *)out->ptr + out->len,
						key, nonce, p + off, size) != 0) {
				rc = payload_fail("a chunk fails authentication");
				break;
			}
			last = true;
		}
		out->len += size - RC_AGE_TAG_LEN;
		out->ptr[out->len] = '\0';
		off += size;
		if (last && size == RC_AGE_TAG_LEN && counter > 0) {
			rc = payload_fail("the final chunk is empty");
			break;
		}
		counter++;
		if (last) {
			if (off != len)
				rc = payload_fail("data after the final chunk");
			break;
		}
		if (off == len) {
			rc = payload_fail("truncated: no final chunk");
			break;
		}
	}
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

/* ------------------------------------------------------------ decrypt */

static void header_mac(unsigned char mac[RC_SHA256_LEN],
		       const unsigned char fkey[RC_AGE_FILE_KEY_LEN],
		       const void *hdr, size_t len)
{
	unsigned char key[32];

	rc_age_hkdf(key, 32, NULL, 0, fkey, RC_AGE_FILE_KEY_LEN, "header");
	rc_codec_hmac_sha256(mac, key, sizeof(key), hdr, len);
	OPENSSL_cleanse(key, sizeof(key));
}

/* Finds the file key: 1, 0 for no match, or a negative code. */
static int find_file_key(unsigned char fkey[RC_AGE_FILE_KEY_LEN],
			 const header *h, const rc_age_identity_list *ids)
{
	for (size_t i = 0; i < h->count; i++)
		if (strcmp(h->stanzas[i].args[0], "scrypt") == 0 &&
		    h->count != 1)
			return header_fail("an scrypt stanza must be the only one");
	for (size_t i = 0; ids && i < ids->count; i++)
		for (size_t j = 0; j < h->count; j++) {
			int rc = rc_age_unwrap(fkey, ids->items[i],
					       &h->stanzas[j]);

			if (rc != 0)
				return rc;
		}
	return 0;
}

int rc_age_decrypt(rc_buf *out, const void *data, size_t len,
		   const rc_age_identity_list *ids, unsigned flags,
		   rc_age_failure *why)
{
	rc_buf unarmored = RC_BUF_INIT;
	const char *s = data;
	unsigned char fkey[RC_AGE_FILE_KEY_LEN], mac[RC_SHA256_LEN];
	size_t start = out->len;
	rc_age_failure f = RC_AGE_FAIL_HEADER;
	header h;
	int rc;

	memset(&h, 0, sizeof(h));
	if ((flags & RC_AGE_ARMORED) ||
	    (!(flags & RC_AGE_BINARY) && looks_armored(s, len))) {
		rc = rc_age_armor_decode(&unarmored, data, len);
		if (rc) {
			f = RC_AGE_FAIL_ARMOR;
			goto cleanup;
		}
		s = unarmored.ptr;
		len = unarmored.len;
	}
	rc = header_parse(&h, s, len);
	if (rc)
		goto cleanup;
	rc = find_file_key(fkey, &h, ids);
	if (rc < 0)
		goto cleanup;
	if (rc == 0) {
		rc_buf d = RC_BUF_INIT;
		rc_age_info info = {rc_calloc(h.count + 1, sizeof(char *)),
				    h.count, false};

		for (size_t i = 0; i < h.count; i++)
			info.types[i] = h.stanzas[i].args[0]; /* borrowed */
		rc_age_info_describe(&d, &info);
		free(info.types);
		rc = rc_error_set(RC_EAUTH, RC_ECLASS_NONE,
				  "no identity matched: the file is encrypted to %s",
				  d.ptr);
		rc_buf_release(&d);
		f = RC_AGE_FAIL_NO_MATCH;
		goto cleanup;
	}
	if (len - h.payload < PAYLOAD_NONCE_LEN) {
		/* the nonce ends the header, as age reads it */
		rc = header_fail("the payload nonce is truncated");
		goto cleanup;
	}
	header_mac(mac, fkey, s, h.mac_end);
	if (!rc_codec_equal(mac, sizeof(mac), h.mac, sizeof(h.mac))) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				  "header MAC mismatch: the age file was altered");
		f = RC_AGE_FAIL_HMAC;
		goto cleanup;
	}
	rc = payload_decrypt(out, (const unsigned char *)s + h.payload,
			     len - h.payload, fkey);
	f = RC_AGE_FAIL_PAYLOAD;
cleanup:
	OPENSSL_cleanse(fkey, sizeof(fkey));
	OPENSSL_cleanse(unarmored.ptr, unarmored.len);
	rc_buf_release(&unarmored);
	header_release(&h);
	if (rc) {
		OPENSSL_cleanse(out->ptr + start, out->len - start);
		rc_buf_truncate(out, start);
	}
	if (why)
		*why = rc ? f : RC_AGE_OK;
	return rc;
}

/* ------------------------------------------------------------ encrypt */

int rc_age_encrypt(rc_buf *out, const void *data, size_t len,
		   const rc_age_recipient_list *rs, unsigned flags)
{
	rc_buf file = RC_BUF_INIT_MAX(out->max);
	unsigned char fkey[RC_AGE_FILE_KEY_LEN], mac[RC_SHA256_LEN];
	unsigned char nonce[PAYLOAD_NONCE_LEN], key[32], cn[RC_AGE_NONCE_LEN];
	const unsigned char *d = data;
	size_t off = 0, n;
	uint64_t counter = 0;
	int rc = 0;

	if (!rs || rs->count == 0)
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "no recipients to encrypt to");
	for (size_t i = 0; i < rs->count; i++)
		if (rc_age_recipient_type(rs->items[i]) == RC_AGE_SCRYPT &&
		    rs->count != 1)
			return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					    "a passphrase must be the only recipient");
	rc_age_random(fkey, sizeof(fkey));
	rc_buf_puts(&file, INTRO "\n");
	for (size_t i = 0; i < rs->count; i++) {
		rc_age_stanza st;

		rc_age_wrap(&st, rs->items[i], fkey);
		rc_buf_puts(&file, "->");
		for (size_t a = 0; a < st.nargs; a++)
			rc_buf_printf(&file, " %s", st.args[a]);
		rc_buf_putc(&file, '\n');
		for (size_t o = 0;; o += LINE_BYTES) {
			n = st.body_len - o < LINE_BYTES ? st.body_len - o :
							   LINE_BYTES;
			rc_codec_base64_encode(&file, st.body + o, n,
					       RC_BASE64_NOPAD);
			rc_buf_putc(&file, '\n');
			if (n < LINE_BYTES)
				break;
		}
		rc_age_stanza_release(&st);
	}
	rc_buf_puts(&file, "---");
	header_mac(mac, fkey, file.ptr, file.len);
	rc_buf_putc(&file, ' ');
	rc_codec_base64_encode(&file, mac, sizeof(mac), RC_BASE64_NOPAD);
	rc_buf_putc(&file, '\n');
	rc_age_random(nonce, sizeof(nonce));
	rc_buf_put(&file, nonce, sizeof(nonce));
	payload_key(key, fkey, nonce);
	do {
		n = len - off < CHUNK ? len - off : CHUNK;
		if (rc_buf_grow(&file, n + RC_AGE_TAG_LEN)) {
			rc = RC_ETOOBIG;
			break;
		}
		chunk_nonce(cn, counter++, off + n == len);
		rc_age_seal((unsigned char *)file.ptr + file.len, key, cn,
			    d + off, n);
		file.len += n + RC_AGE_TAG_LEN;
		file.ptr[file.len] = '\0';
		off += n;
	} while (off < len);
	OPENSSL_cleanse(fkey, sizeof(fkey));
	OPENSSL_cleanse(key, sizeof(key));
	if (rc || file.toobig) {
		rc_buf_release(&file);
		return rc_error_set(RC_ETOOBIG, RC_ECLASS_NONE,
				    "the encrypted file is too large");
	}
	if (flags & RC_AGE_ARMOR)
		rc_age_armor_encode(out, file.ptr, file.len);
	else
		rc_buf_put(out, file.ptr, file.len);
	rc_buf_release(&file);
	if (out->toobig)
		return rc_error_set(RC_ETOOBIG, RC_ECLASS_NONE,
				    "the encrypted file is too large");
	return 0;
}

/* ------------------------------------------------------------ inspect */

int rc_age_inspect(rc_age_info *out, const void *data, size_t len)
{
	rc_buf unarmored = RC_BUF_INIT;
	const char *s = data;
	header h;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (looks_armored(s, len)) {
		out->armored = true;
		if ((rc = rc_age_armor_decode(&unarmored, data, len)) != 0)
			goto cleanup;
		s = unarmored.ptr;
		len = unarmored.len;
	}
	rc = header_parse(&h, s, len);
	if (rc == 0) {
		out->types = rc_calloc(h.count ? h.count : 1, sizeof(char *));
		for (size_t i = 0; i < h.count; i++)
			out->types[i] = rc_strdup(h.stanzas[i].args[0]);
		out->count = h.count;
	}
	header_release(&h);
cleanup:
	rc_buf_release(&unarmored);
	return rc;
}

void rc_age_info_release(rc_age_info *info)
{
	for (size_t i = 0; i < info->count; i++)
		free(info->types[i]);
	free(info->types);
	memset(info, 0, sizeof(*info));
}

void rc_age_info_describe(rc_buf *out, const rc_age_info *info)
{
	rc_buf_printf(out, "%zu recipient%s (", info->count,
		      info->count == 1 ? "" : "s");
	for (size_t i = 0; i < info->count; i++)
		rc_buf_printf(out, "%s%s", i ? ", " : "", info->types[i]);
	rc_buf_putc(out, ')');
}
