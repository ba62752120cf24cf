/*
 * AWS Signature Version 4 (drivers/aws_sigv4.h). The steps, in AWS's
 * words: canonical request -> string to sign -> signing key -> signature.
 * The test suites in ../shared/contracts/aws/sigv4/ pin every byte; the
 * comments below name the case that shows each rule.
 */
#include "drivers/aws_sigv4.h"

#include <pthread.h>

#include "reconciler/base/error.h"
#include "reconciler/base/log.h"

/* Cap on each text built here (the canonical request holds the headers,
 * never the body). */
#define SIGV4_MAX_TEXT ((size_t)1 << 20)
#define SIGV4_MAX_EXPIRES 604800L /* seven days, AWS's limit */

static void wipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}

/* Releases a buffer that held a secret, clearing it first. */
static void buf_wipe(rc_buf *b)
{
	wipe(b->ptr, b->len);
	rc_buf_release(b);
}

/* ---------------------------------------------------------- encodings */

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

/* RFC 3986 percent-encoding as SigV4 wants it: unreserved characters as
 * they are, every other byte as %XX in upper case ('/' kept when asked,
 * for paths). */
static int uri_encode(rc_buf *out, const char *s, size_t len, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;

	for (size_t i = 0; i < len && !rc; i++) {
		unsigned char c = (unsigned char)s[i];

		if (unreserved(c) || (keep_slash && c == '/')) {
			rc = rc_buf_putc(out, (char)c);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};

			rc = rc_buf_put(out, e, 3);
		}
	}
	return rc;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decoding of a query key or value; a '%' not followed by two hex
 * digits stays as it is ('+' is not a space in SigV4). */
static int uri_decode(rc_buf *out, const char *s, size_t len)
{
	int rc = 0;

	for (size_t i = 0; i < len && !rc; i++) {
		int hi, lo;

		if (s[i] == '%' && i + 2 < len &&
		    (hi = hexval(s[i + 1])) >= 0 &&
		    (lo = hexval(s[i + 2])) >= 0) {
			rc = rc_buf_putc(out, (char)(hi << 4 | lo));
			i += 2;
		} else {
			rc = rc_buf_putc(out, s[i]);
		}
	}
	return rc;
}

/* ------------------------------------------------------- canonical URI */

/*
 * Normalisation (every service but S3): dot segments removed and empty
 * segments dropped, a trailing slash kept ("/./" -> "/", "//example//" ->
 * "/example/", "/example1/example2/../.." -> "/": normalize-path/ and the
 * *-normalized cases). Double encoding: the path as sent is
 * percent-encoded once more ("/example space/" -> "/example%20space/",
 * "/%20" -> "/%2520"); S3 signs it as sent.
 */
int rc_aws_sigv4_canonical_uri(rc_buf *out, const char *raw, size_t len,
			       bool normalize, bool double_encode)
{
	rc_buf norm = RC_BUF_INIT_MAX(SIGV4_MAX_TEXT);
	const char *p = raw;
	size_t plen = len;
	int rc = 0;

	for (size_t i = 0; i < len; i++)
		if (raw[i] == '?') {
			plen = i;
			break;
		}
	if (normalize) {
		/* segment starts, as offsets into norm, for ".." */
		size_t *starts = NULL, nstarts = 0, capstarts = 0;
		size_t i = 0;

		while (i < plen && !rc) {
			size_t j = i;

			while (j < plen && p[j] != '/')
				j++;
			if (j == i || (j - i == 1 && p[i] == '.')) {
				/* empty or "." */
			} else if (j - i == 2 && p[i] == '.' &&
				   p[i + 1] == '.') {
				if (nstarts)
					rc_buf_truncate(&norm,
							starts[--nstarts]);
			} else {
				RC_GROW(starts, capstarts, nstarts + 1);
				starts[nstarts++] = norm.len;
				rc = rc_buf_putc(&norm, '/');
				if (!rc)
					rc = rc_buf_put(&norm, p + i, j - i);
			}
			i = j + 1;
		}
		free(starts);
		if (!rc && (norm.len == 0 || (plen && p[plen - 1] == '/')))
			rc = rc_buf_putc(&norm, '/');
	} else {
		rc = plen ? rc_buf_put(&norm, p, plen)
			  : rc_buf_putc(&norm, '/');
	}
	if (!rc)
		rc = double_encode ? uri_encode(out, norm.ptr, norm.len, true)
				   : rc_buf_put(out, norm.ptr, norm.len);
	rc_buf_release(&norm);
	return rc;
}

/* ----------------------------------------------------- canonical query */

typedef struct {
	char *key, *value; /* encoded */
} qparam;

static int qparam_cmp(const void *a, const void *b)
{
	const qparam *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : strcmp(x->value, y->value);
}

/* One encoded text: decoded first, so that "%E1%88%B4" and the raw UTF-8
 * bytes give the same (get-vanilla-query-order-encoded, get-utf8). */
static int reencode(char **out, const char *s, size_t len)
{
	rc_buf d = RC_BUF_INIT_MAX(SIGV4_MAX_TEXT);
	rc_buf e = RC_BUF_INIT_MAX(SIGV4_MAX_TEXT);
	int rc = uri_decode(&d, s, len);

	if (!rc)
		rc = uri_encode(&e, d.ptr, d.len, false);
	rc_buf_release(&d);
	*out = rc ? NULL : rc_buf_detach(&e);
	rc_buf_release(&e);
	return rc;
}

/*
 * Parameters sorted by encoded key, then encoded value
 * (get-vanilla-query-order-key, -order-value); a key without '=' has an
 * empty value ("Param1" -> "Param1="); empty parameters ("a&&b") are
 * dropped.
 */
int rc_aws_sigv4_canonical_query(rc_buf *out, const char *query, size_t len)
{
	qparam *ps = NULL;
	size_t n = 0, cap = 0, i = 0;
	int rc = 0;

	while (i < len && !rc) {
		size_t j = i, eq;

		while (j < len && query[j] != '&')
			j++;
		if (j > i) {
			for (eq = i; eq < j && query[eq] != '='; eq++)
				;
			RC_GROW(ps, cap, n + 1);
			ps[n].key = ps[n].value = NULL;
			rc = reencode(&ps[n].key, query + i, eq - i);
			if (!rc)
				rc = reencode(&ps[n].value, query + eq + 1,
					      eq < j ? j - eq - 1 : 0);
			n++;
		}
		i = j + 1;
	}
	if (!rc) {
		if (n)
			qsort(ps, n, sizeof(*ps), qparam_cmp);
		for (i = 0; i < n && !rc; i++)
			rc = rc_buf_printf(out, "%s%s=%s", i ? "&" : "",
					   ps[i].key, ps[i].value);
	}
	for (i = 0; i < n; i++) {
		free(ps[i].key);
		free(ps[i].value);
	}
	free(ps);
	return rc;
}

/* --------------------------------------------------- canonical headers */

typedef struct {
	char *name;  /* lower case */
	char *value; /* trimmed, inner whitespace runs as one space */
	size_t order;
} cheader;

static int cheader_cmp(const void *a, const void *b)
{
	const cheader *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* "  a   b\n  c " -> "a b c" (get-header-value-trim, -multiline). */
static char *trim_value(const char *v)
{
	rc_buf b = RC_BUF_INIT;
	bool space = false;

	for (; *v; v++) {
		if (is_ws(*v)) {
			space = b.len > 0;
			continue;
		}
		if (space)
			rc_buf_putc(&b, ' ');
		space = false;
		rc_buf_putc(&b, *v);
	}
	return rc_buf_detach(&b);
}

static char *lower_dup(const char *s)
{
	char *d = rc_strdup(s);

	for (char *p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

typedef struct {
	cheader *h;
	size_t n, cap;
} cheaders;

static void cheaders_add(cheaders *hs, const char *name, const char *value)
{
	RC_GROW(hs->h, hs->cap, hs->n + 1);
	hs->h[hs->n].name = lower_dup(name);
	hs->h[hs->n].value = trim_value(value);
	hs->h[hs->n].order = hs->n;
	hs->n++;
}

static void cheaders_release(cheaders *hs)
{
	for (size_t i = 0; i < hs->n; i++) {
		free(hs->h[i].name);
		wipe(hs->h[i].value, strlen(hs->h[i].value));
		free(hs->h[i].value);
	}
	free(hs->h);
}

static const char *req_header(const rc_aws_sigv4_req *req, const char *name)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (req->headers[i].name &&
		    !strcasecmp(req->headers[i].name, name))
			return req->headers[i].value ? req->headers[i].value
						     : "";
	return NULL;
}

/* Sorted by name (the request's order kept within a name), duplicates
 * joined with ',' (get-header-key-duplicate, get-header-value-order):
 * "name:v1,v2\n" per name into canon, "a;b" into names. */
static int cheaders_write(cheaders *hs, rc_buf *canon, rc_buf *names)
{
	int rc = 0;

	if (hs->n)
		qsort(hs->h, hs->n, sizeof(*hs->h), cheader_cmp);
	for (size_t i = 0; i < hs->n && !rc; i++) {
		bool same = i > 0 && !strcmp(hs->h[i].name, hs->h[i - 1].name);

		if (same) {
			rc = rc_buf_printf(canon, ",%s", hs->h[i].value);
			continue;
		}
		if (i > 0)
			rc = rc_buf_putc(canon, '\n');
		if (!rc)
			rc = rc_buf_printf(canon, "%s:%s", hs->h[i].name,
					   hs->h[i].value);
		if (!rc)
			rc = rc_buf_printf(names, "%s%s", names->len ? ";" : "",
					   hs->h[i].name);
	}
	if (!rc && hs->n)
		rc = rc_buf_putc(canon, '\n');
	return rc;
}

/* ---------------------------------------------------------- the key */

void rc_aws_sigv4_signing_key(unsigned char out[RC_SHA256_LEN],
			      const char *secret, const char *date,
			      const char *region, const char *service)
{
	rc_buf k = RC_BUF_INIT;
	unsigned char a[RC_SHA256_LEN], b[RC_SHA256_LEN];

	rc_buf_puts(&k, "AWS4");
	rc_buf_puts(&k, secret);
	rc_codec_hmac_sha256(a, k.ptr, k.len, date, strlen(date));
	rc_codec_hmac_sha256(b, a, sizeof(a), region, strlen(region));
	rc_codec_hmac_sha256(a, b, sizeof(b), service, strlen(service));
	rc_codec_hmac_sha256(out, a, sizeof(a), "aws4_request", 12);
	wipe(a, sizeof(a));
	wipe(b, sizeof(b));
	buf_wipe(&k);
}

/* ---------------------------------------------------------- signing */

void rc_aws_sigv4_opts_init(rc_aws_sigv4_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->normalize_path = true;
	o->double_encode = true;
	o->expires = 3600;
}

void rc_aws_sigv4_result_init(rc_aws_sigv4_result *r)
{
	memset(r, 0, sizeof(*r));
	rc_buf_init(&r->canonical_request, SIGV4_MAX_TEXT);
	rc_buf_init(&r->string_to_sign, SIGV4_MAX_TEXT);
	rc_buf_init(&r->signed_headers, SIGV4_MAX_TEXT);
	rc_buf_init(&r->authorization, SIGV4_MAX_TEXT);
	rc_buf_init(&r->presigned_path, SIGV4_MAX_TEXT);
}

void rc_aws_sigv4_result_release(rc_aws_sigv4_result *r)
{
	rc_buf_release(&r->canonical_request);
	rc_buf_release(&r->string_to_sign);
	rc_buf_release(&r->signed_headers);
	rc_buf_release(&r->authorization);
	rc_buf_release(&r->presigned_path);
	wipe(r->signature, sizeof(r->signature));
	r->nadded = 0;
}

static void result_clear(rc_aws_sigv4_result *r)
{
	rc_buf_clear(&r->canonical_request);
	rc_buf_clear(&r->string_to_sign);
	rc_buf_clear(&r->signed_headers);
	rc_buf_clear(&r->authorization);
	rc_buf_clear(&r->presigned_path);
	r->signature[0] = r->amz_date[0] = r->payload_hash[0] = '\0';
	r->nadded = 0;
}

/* A region or service goes into the credential scope between '/'. */
static bool scope_part_ok(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (*s == '/' || is_ws(*s) || (unsigned char)*s < 0x20)
			return false;
	return true;
}

static bool amz_date_ok(const char *d)
{
	if (strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return false;
	for (int i = 0; i < 15; i++)
		if (i != 8 && !isdigit((unsigned char)d[i]))
			return false;
	return true;
}

static bool payload_hash_ok(const char *h)
{
	if (!strcmp(h, RC_AWS_UNSIGNED_PAYLOAD))
		return true;
	if (strlen(h) != RC_SHA256_HEX_LEN)
		return false;
	for (; *h; h++)
		if (!isdigit((unsigned char)*h) && !(*h >= 'a' && *h <= 'f'))
			return false;
	return true;
}

static int check_inputs(const rc_aws_sigv4_req *req,
			const rc_aws_sigv4_opts *o)
{
	const rc_aws_credentials *c = o->creds;

	if (!req->method || !*req->method || strpbrk(req->method, " \t\r\n"))
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "sigv4: no method, or one with spaces");
	if (!req->path || (*req->path != '/' && *req->path != '?' &&
			   *req->path))
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "sigv4: the path must start with '/'");
	if (!scope_part_ok(o->region) || !scope_part_ok(o->service))
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "sigv4: a region and a service are needed,"
				    " without '/' or spaces");
	if (!c || !c->access_key_id || !*c->access_key_id ||
	    strchr(c->access_key_id, '/') || !c->secret_access_key ||
	    !*c->secret_access_key)
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "sigv4: no access key id or secret key");
	if (!req_header(req, "host"))
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "sigv4: the request has no Host header");
	if (req->payload_hash && !payload_hash_ok(req->payload_hash))
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "sigv4: the payload hash is neither a "
				    "SHA-256 in hex nor UNSIGNED-PAYLOAD");
	if (o->presign && (o->expires < 1 || o->expires > SIGV4_MAX_EXPIRES))
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "sigv4: a presigned URL expires in 1 to "
				    "604800 seconds, not %ld",
				    o->expires);
	return 0;
}

/* The X-Amz-* query parameters of a presigned URL, encoded, in the order
 * the suite's query-signed-request.txt files write them. token may be
 * NULL. Signature is added by the caller. */
static int presign_params(rc_buf *q, const char *akid, const char *scope,
			  const char *date, const char *signed_headers,
			  long expires, const char *token)
{
	int rc = rc_buf_puts(q, "X-Amz-Algorithm=" RC_AWS_SIGV4_ALGORITHM
				"&X-Amz-Credential=");

	if (!rc)
		rc = uri_encode(q, akid, strlen(akid), false);
	if (!rc)
		rc = rc_buf_puts(q, "%2F");
	if (!rc)
		rc = uri_encode(q, scope, strlen(scope), false);
	if (!rc)
		rc = rc_buf_printf(q, "&X-Amz-Date=%s&X-Amz-SignedHeaders=",
				   date);
	if (!rc)
		rc = uri_encode(q, signed_headers, strlen(signed_headers),
				false);
	if (!rc)
		rc = rc_buf_printf(q, "&X-Amz-Expires=%ld", expires);
	if (!rc && token) {
		rc = rc_buf_puts(q, "&X-Amz-Security-Token=");
		if (!rc)
			rc = uri_encode(q, token, strlen(token), false);
	}
	return rc;
}

int rc_aws_sigv4_sign(rc_aws_sigv4_result *r, const rc_aws_sigv4_req *req,
		      const rc_aws_sigv4_opts *o)
{
	const rc_aws_credentials *c = o->creds;
	const char *token, *date_hdr, *path = req->path, *qmark;
	bool has_token, token_signed;
	cheaders hs = {0};
	rc_buf canon_hdrs = RC_BUF_INIT_MAX(SIGV4_MAX_TEXT);
	rc_buf query = RC_BUF_INIT_MAX(SIGV4_MAX_TEXT);
	rc_buf presign_q = RC_BUF_INIT_MAX(SIGV4_MAX_TEXT);
	char scope[256], date8[9], creq_hash[RC_SHA256_HEX_LEN + 1];
	unsigned char key[RC_SHA256_LEN], sig[RC_SHA256_LEN];
	rc_buf sighex = RC_BUF_INIT_MAX(RC_SHA256_HEX_LEN + 1);
	int rc;

	result_clear(r);
	if ((rc = check_inputs(req, o)) < 0)
		return rc;
	token = c->session_token && *c->session_token ? c->session_token
						      : NULL;
	has_token = token != NULL;
	token_signed = has_token && !o->token_after_signing;

	/* the date: the request's X-Amz-Date, else the time given */
	date_hdr = req_header(req, "x-amz-date");
	if (date_hdr) {
		char *d = trim_value(date_hdr);
		bool ok = amz_date_ok(d);

		if (ok)
			memcpy(r->amz_date, d, RC_AWS_AMZ_DATE_SIZE);
		free(d);
		if (!ok)
			return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					    "sigv4: X-Amz-Date is not "
					    "YYYYMMDDTHHMMSSZ");
	} else {
		struct tm tm;

		if (!gmtime_r(&o->time, &tm) ||
		    !strftime(r->amz_date, sizeof(r->amz_date),
			      "%Y%m%dT%H%M%SZ", &tm))
			return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					    "sigv4: the signing time is out "
					    "of range");
	}
	memcpy(date8, r->amz_date, 8);
	date8[8] = '\0';
	if ((size_t)snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request",
			     date8, o->region, o->service) >= sizeof(scope))
		return rc_error_set(RC_ETOOBIG, RC_ECLASS_NONE,
				    "sigv4: the region or service is too long");

	/* the payload */
	if (req->payload_hash) {
		size_t n = strlen(req->payload_hash);

		memcpy(r->payload_hash, req->payload_hash, n + 1);
	} else {
		rc_codec_sha256_hex(r->payload_hash, req->body, req->body_len);
	}

	/* the headers: the request's, then what signing adds */
	for (size_t i = 0; i < req->nheaders; i++)
		if (req->headers[i].name)
			cheaders_add(&hs, req->headers[i].name,
				     req->headers[i].value
					     ? req->headers[i].value
					     : "");
	if (!o->presign) {
		if (!date_hdr)
			cheaders_add(&hs, "x-amz-date", r->amz_date);
		if (token_signed && !req_header(req, "x-amz-security-token"))
			cheaders_add(&hs, "x-amz-security-token", token);
		if (o->content_sha256_header &&
		    !req_header(req, "x-amz-content-sha256"))
			cheaders_add(&hs, "x-amz-content-sha256",
				     r->payload_hash);
	}
	rc = cheaders_write(&hs, &canon_hdrs, &r->signed_headers);

	/* the query, with the presigned parameters in it */
	qmark = strchr(path, '?');
	if (!rc && o->presign)
		rc = presign_params(&presign_q, c->access_key_id, scope,
				    r->amz_date, r->signed_headers.ptr,
				    o->expires, token_signed ? token : NULL);
	if (!rc) {
		rc_buf all = RC_BUF_INIT_MAX(SIGV4_MAX_TEXT);

		if (qmark)
			rc = rc_buf_puts(&all, qmark + 1);
		if (!rc && presign_q.len)
			rc = rc_buf_printf(&all, "%s%s", all.len ? "&" : "",
					   presign_q.ptr);
		if (!rc)
			rc = rc_aws_sigv4_canonical_query(&query, all.ptr,
							  all.len);
		buf_wipe(&all);
	}

	/* the canonical request */
	if (!rc)
		rc = rc_buf_printf(&r->canonical_request, "%s\n", req->method);
	if (!rc)
		rc = rc_aws_sigv4_canonical_uri(&r->canonical_request, path,
						strlen(path), o->normalize_path,
						o->double_encode);
	if (!rc)
		rc = rc_buf_printf(&r->canonical_request, "\n%s\n%s\n%s\n%s",
				   query.ptr, canon_hdrs.ptr,
				   r->signed_headers.ptr, r->payload_hash);

	/* the string to sign, the signature */
	if (!rc) {
		rc_codec_sha256_hex(creq_hash, r->canonical_request.ptr,
				    r->canonical_request.len);
		rc = rc_buf_printf(&r->string_to_sign,
				   RC_AWS_SIGV4_ALGORITHM "\n%s\n%s\n%s",
				   r->amz_date, scope, creq_hash);
	}
	if (!rc) {
		if (o->signing_key)
			memcpy(key, o->signing_key, sizeof(key));
		else
			rc_aws_sigv4_signing_key(key, c->secret_access_key,
						 date8, o->region, o->service);
		rc_codec_hmac_sha256(sig, key, sizeof(key),
				     r->string_to_sign.ptr,
				     r->string_to_sign.len);
		rc = rc_codec_hex_encode(&sighex, sig, sizeof(sig));
		if (!rc)
			memcpy(r->signature, sighex.ptr, sighex.len + 1);
		wipe(key, sizeof(key));
		wipe(sig, sizeof(sig));
	}

	/* what the request gets */
	if (!rc && o->presign) {
		rc = rc_buf_puts(&r->presigned_path, path);
		if (!rc)
			rc = rc_buf_printf(&r->presigned_path, "%s%s",
					   !qmark ? "?"
					   : qmark[1] ? "&" : "",
					   presign_q.ptr);
		if (!rc && has_token && !token_signed) {
			rc = rc_buf_puts(&r->presigned_path,
					 "&X-Amz-Security-Token=");
			if (!rc)
				rc = uri_encode(&r->presigned_path, token,
						strlen(token), false);
		}
		if (!rc)
			rc = rc_buf_printf(&r->presigned_path,
					   "&X-Amz-Signature=%s", r->signature);
	} else if (!rc) {
		rc = rc_buf_printf(&r->authorization,
				   RC_AWS_SIGV4_ALGORITHM " Credential=%s/%s, "
				   "SignedHeaders=%s, Signature=%s",
				   c->access_key_id, scope,
				   r->signed_headers.ptr, r->signature);
		if (has_token && !req_header(req, "x-amz-security-token"))
			r->added[r->nadded++] = (rc_aws_header){
				"X-Amz-Security-Token", token};
		if (!date_hdr)
			r->added[r->nadded++] =
				(rc_aws_header){"X-Amz-Date", r->amz_date};
		if (o->content_sha256_header &&
		    !req_header(req, "x-amz-content-sha256"))
			r->added[r->nadded++] = (rc_aws_header){
				"x-amz-content-sha256", r->payload_hash};
		r->added[r->nadded++] =
			(rc_aws_header){"Authorization", r->authorization.ptr};
	}

	cheaders_release(&hs);
	buf_wipe(&canon_hdrs);
	buf_wipe(&query);
	buf_wipe(&presign_q);
	buf_wipe(&sighex);
	if (rc < 0) {
		result_clear(r);
		return rc_error_set(rc, RC_ECLASS_NONE,
				    "sigv4: the request is too large to sign");
	}
	return 0;
}

/* ---------------------------------------------------------- the signer */

struct rc_aws_signer {
	pthread_mutex_t lock;
	char *region, *service;
	char *akid, *secret, *token; /* token NULL: none */
	bool content_sha256_header, token_after_signing;
	bool normalize_path, double_encode;
	time_t (*now)(void);
	/* kSigning of the current secret for key_date */
	char key_date[9];
	unsigned char key[RC_SHA256_LEN];
};

static void free_str(char **s)
{
	if (*s) {
		wipe(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

static int check_creds(const rc_aws_credentials *c)
{
	if (!c->access_key_id || !*c->access_key_id ||
	    !c->secret_access_key || !*c->secret_access_key)
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "aws signer: an access key id and a "
				    "secret access key are needed");
	return 0;
}

/* Under s->lock (or before s is shared). */
static void set_creds(rc_aws_signer *s, const rc_aws_credentials *c)
{
	rc_secret_register(c->secret_access_key);
	if (c->session_token && *c->session_token)
		rc_secret_register(c->session_token);
	free_str(&s->akid);
	free_str(&s->secret);
	free_str(&s->token);
	s->akid = rc_strdup(c->access_key_id);
	s->secret = rc_strdup(c->secret_access_key);
	s->token = c->session_token && *c->session_token
			   ? rc_strdup(c->session_token)
			   : NULL;
	s->key_date[0] = '\0';
	wipe(s->key, sizeof(s->key));
}

int rc_aws_signer_new(rc_aws_signer **out, const rc_aws_signer_opts *o)
{
	rc_aws_signer *s;
	int rc;

	*out = NULL;
	if (!scope_part_ok(o->region) || !scope_part_ok(o->service))
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "aws signer: a region and a service are "
				    "needed, without '/' or spaces");
	if ((rc = check_creds(&o->creds)) < 0)
		return rc;
	s = rc_calloc(1, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->region = rc_strdup(o->region);
	s->service = rc_strdup(o->service);
	s->content_sha256_header = o->content_sha256_header;
	s->token_after_signing = o->token_after_signing;
	s->normalize_path = !o->no_normalize_path;
	s->double_encode = !o->no_double_encode;
	s->now = o->now;
	set_creds(s, &o->creds);
	*out = s;
	return 0;
}

void rc_aws_signer_free(rc_aws_signer *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->region);
	free(s->service);
	free_str(&s->akid);
	free_str(&s->secret);
	free_str(&s->token);
	wipe(s->key, sizeof(s->key));
	free(s);
}

int rc_aws_signer_set_credentials(rc_aws_signer *s,
				  const rc_aws_credentials *creds)
{
	int rc = check_creds(creds);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&s->lock);
	set_creds(s, creds);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* The Host header curl sends for url: its authority, without user info,
 * and without the port when it is the scheme's default. *path gets the
 * rest ("/" when there is none). */
static int url_split(const char *url, rc_buf *host, const char **path)
{
	const char *p = strstr(url, "://"), *a, *end, *at, *colon;
	bool https;

	if (!p)
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "aws signer: not an absolute URL");
	https = (size_t)(p - url) == 5 && !strncasecmp(url, "https", 5);
	a = p + 3;
	end = a + strcspn(a, "/?#");
	at = memchr(a, '@', (size_t)(end - a));
	if (at)
		a = at + 1;
	colon = NULL;
	for (const char *q = a; q < end; q++)
		if (*q == ':')
			colon = q;
	if (colon && *a == '[' && memchr(colon, ']', (size_t)(end - colon)))
		colon = NULL; /* an IPv6 literal without a port */
	if (colon &&
	    ((https && colon + 4 == end && !strncmp(colon, ":443", 4)) ||
	     (!https && colon + 3 == end && !strncmp(colon, ":80", 3))))
		end = colon;
	if (end == a)
		return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				    "aws signer: the URL has no host");
	rc_buf_put(host, a, (size_t)(end - a));
	*path = a + strcspn(a, "/?#");
	return 0;
}

/* Appends "Name: value" to the curl list, through a buffer wiped after. */
static int add_line(struct curl_slist **headers, const char *name,
		    const char *value)
{
	rc_buf line = RC_BUF_INIT_MAX(SIGV4_MAX_TEXT);
	struct curl_slist *l;
	int rc = rc_buf_printf(&line, "%s: %s", name, value);

	l = rc ? NULL : curl_slist_append(*headers, line.ptr);
	buf_wipe(&line);
	if (!l)
		return rc_error_set(RC_ETOOBIG, RC_ECLASS_NONE,
				    "aws signer: cannot add the %s header",
				    name);
	*headers = l;
	return 0;
}

int rc_aws_signer_http_sign(void *ctx, const rc_http_req *req,
			    const char *url, struct curl_slist **headers)
{
	rc_aws_signer *s = ctx;
	rc_buf host = RC_BUF_INIT_MAX(4096);
	rc_buf path = RC_BUF_INIT_MAX(SIGV4_MAX_TEXT);
	rc_buf names = RC_BUF_INIT_MAX(SIGV4_MAX_TEXT);
	rc_aws_header *hs = NULL;
	size_t nh = 0, caph = 0, *name_at = NULL, nname = 0, capname = 0;
	rc_aws_credentials creds = {0};
	char *akid = NULL, *secret = NULL, *token = NULL;
	rc_aws_sigv4_req sreq = {0};
	rc_aws_sigv4_opts o;
	rc_aws_sigv4_result r;
	unsigned char key[RC_SHA256_LEN];
	const char *rest = NULL, *frag;
	bool has_host = false;
	struct tm tm;
	time_t now;
	char date8[9];
	int rc;

	rc_aws_sigv4_result_init(&r);
	if ((rc = url_split(url, &host, &rest)) < 0)
		goto cleanup;
	frag = strchr(rest, '#');
	if (*rest != '/')
		rc_buf_putc(&path, '/');
	rc_buf_put(&path, rest, frag ? (size_t)(frag - rest) : strlen(rest));

	/* req->headers as "Name: value": names copied into one buffer */
	for (const char *const *p = req->headers; p && *p; p++) {
		const char *colon = strchr(*p, ':');

		if (!colon || colon == *p)
			continue;
		RC_GROW(name_at, capname, nname + 1);
		name_at[nname++] = names.len;
		rc_buf_put(&names, *p, (size_t)(colon - *p));
		rc_buf_putc(&names, '\0');
	}
	if (names.toobig) {
		rc = rc_error_set(RC_ETOOBIG, RC_ECLASS_NONE,
				  "aws signer: the headers are too large");
		goto cleanup;
	}
	RC_GROW(hs, caph, nname + 2);
	nname = 0;
	for (const char *const *p = req->headers; p && *p; p++) {
		const char *colon = strchr(*p, ':');

		if (!colon || colon == *p)
			continue;
		hs[nh].name = names.ptr + name_at[nname++];
		hs[nh].value = colon + 1;
		if (!strcasecmp(hs[nh].name, "host"))
			has_host = true;
		nh++;
	}
	if (!has_host)
		hs[nh++] = (rc_aws_header){"Host", host.ptr};
	if (req->body || (req->body_size > 0 &&
			  (req->body_read || req->body_fd >= 0)))
		hs[nh++] = (rc_aws_header){
			"Content-Type", req->content_type ? req->content_type
							  : "application/json"};

	sreq.method = req->method ? req->method : "GET";
	sreq.path = path.ptr;
	sreq.headers = hs;
	sreq.nheaders = nh;
	if (req->body) {
		sreq.body = req->body;
		sreq.body_len = req->body_len;
	} else if (req->body_size > 0) {
		sreq.payload_hash = RC_AWS_UNSIGNED_PAYLOAD;
	}

	now = s->now ? s->now() : time(NULL);
	if (!gmtime_r(&now, &tm) ||
	    !strftime(date8, sizeof(date8), "%Y%m%d", &tm)) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				  "aws signer: the clock is out of range");
		goto cleanup;
	}
	/* a snapshot of the credentials and the day's key */
	pthread_mutex_lock(&s->lock);
	if (strcmp(s->key_date, date8)) {
		rc_aws_sigv4_signing_key(s->key, s->secret, date8, s->region,
					 s->service);
		memcpy(s->key_date, date8, sizeof(date8));
	}
	memcpy(key, s->key, sizeof(key));
	akid = rc_strdup(s->akid);
	secret = rc_strdup(s->secret);
	token = s->token ? rc_strdup(s->token) : NULL;
	pthread_mutex_unlock(&s->lock);
	creds.access_key_id = akid;
	creds.secret_access_key = secret;
	creds.session_token = token;

	rc_aws_sigv4_opts_init(&o);
	o.region = s->region;
	o.service = s->service;
	o.time = now;
	o.creds = &creds;
	o.normalize_path = s->normalize_path;
	o.double_encode = s->double_encode;
	o.content_sha256_header = s->content_sha256_header;
	o.token_after_signing = s->token_after_signing;
	o.signing_key = key;
	rc = rc_aws_sigv4_sign(&r, &sreq, &o);
	for (size_t i = 0; rc == 0 && i < r.nadded; i++)
		rc = add_line(headers, r.added[i].name, r.added[i].value);
	wipe(key, sizeof(key));
	free_str(&akid);
	free_str(&secret);
	free_str(&token);

cleanup:
	rc_aws_sigv4_result_release(&r);
	rc_buf_release(&host);
	rc_buf_release(&path);
	rc_buf_release(&names);
	free(hs);
	free(name_at);
	return rc;
}
