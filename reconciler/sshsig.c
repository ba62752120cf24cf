/* SSH signatures (PROTOCOL.sshsig) and allowed-signers files, verified
 * with OpenSSL. */
#include "reconciler/base/common.h"
#include "reconciler/sshsig.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/rctime.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#define SIG_BEGIN "-----BEGIN SSH SIGNATURE-----"
#define SIG_END "-----END SSH SIGNATURE-----"
#define MAGIC "SSHSIG"
#define MAGIC_LEN 6
#define MAX_SIG_TEXT (64 * 1024)

/* --- reading the wire format (RFC 4251 section 5) ---------------------- */

typedef struct {
	const unsigned char *p;
	size_t n;
} rd;

static bool rd_u32(rd *r, uint32_t *v)
{
	if (r->n < 4)
		return false;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 |
	     (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	r->n -= 4;
	return true;
}

static bool rd_str(rd *r, const unsigned char **s, size_t *len)
{
	uint32_t l;

	if (!rd_u32(r, &l) || l > r->n)
		return false;
	*s = r->p;
	*len = l;
	r->p += l;
	r->n -= l;
	return true;
}

/* A string that must equal want. */
static bool rd_is(rd *r, const char *want)
{
	const unsigned char *s;
	size_t l;

	return rd_str(r, &s, &l) && l == strlen(want) && !memcmp(s, want, l);
}

/* An mpint without its sign byte (positive numbers only). */
static bool rd_mpint(rd *r, const unsigned char **s, size_t *len)
{
	if (!rd_str(r, s, len) || !*len || (**s & 0x80))
		return false;
	while (*len > 1 && !**s) {
		(*s)++;
		(*len)--;
	}
	return true;
}

static void put_str(rc_buf *b, const void *s, size_t len)
{
	unsigned char l[4] = {(unsigned char)(len >> 24),
			      (unsigned char)(len >> 16),
			      (unsigned char)(len >> 8), (unsigned char)len};

	rc_buf_put(b, l, 4);
	rc_buf_put(b, s, len);
}

/* The key type a key blob starts with (len bytes into out), or false. */
static bool blob_type(const void *blob, size_t len, char *out, size_t n)
{
	rd r = {blob, len};
	const unsigned char *s;
	size_t l;

	if (!rd_str(&r, &s, &l) || !l || l >= n)
		return false;
	memcpy(out, s, l);
	out[l] = '\0';
	return true;
}

/* --- fingerprints and patterns ----------------------------------------- */

void rc_ssh_fingerprint(char out[RC_SSH_FP_LEN + 1], const void *blob,
			size_t len)
{
	unsigned char d[RC_SHA256_LEN];
	rc_buf b = RC_BUF_INIT_MAX(128);

	rc_codec_sha256(d, blob, len);
	rc_buf_puts(&b, "SHA256:");
	rc_codec_base64_encode(&b, d, sizeof(d), RC_BASE64_NOPAD);
	snprintf(out, RC_SSH_FP_LEN + 1, "%s", b.ptr);
	rc_buf_release(&b);
}

/* '*' and '?' over s[0..sn) against p[0..pn). */
static bool wild(const char *s, size_t sn, const char *p, size_t pn)
{
	while (pn) {
		if (*p == '*') {
			for (size_t k = 0; k <= sn; k++)
				if (wild(s + k, sn - k, p + 1, pn - 1))
					return true;
			return false;
		}
		if (!sn || (*p != '?' && *p != *s))
			return false;
		s++, sn--, p++, pn--;
	}
	return sn == 0;
}

bool rc_ssh_match_list(const char *s, const char *patterns)
{
	bool got = false;
	const char *p = patterns;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		bool neg = n && *p == '!';

		if (wild(s, strlen(s), p + neg, n - neg)) {
			if (neg)
				return false;
			got = true;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return got;
}

long long rc_ssh_time_parse(const char *s)
{
	struct tm t = {0};
	size_t n = strlen(s);
	bool utc = n && s[n - 1] == 'Z';
	int v[6] = {0, 1, 1, 0, 0, 0};
	static const int width[6] = {4, 2, 2, 2, 2, 2};
	const char *p = s;
	time_t r;

	if (utc)
		n--;
	if (n != 8 && n != 12 && n != 14)
		return -1;
	for (int i = 0; i < 6 && (size_t)(p - s) < n; i++) {
		v[i] = 0;
		for (int k = 0; k < width[i]; k++, p++) {
			if (*p < '0' || *p > '9')
				return -1;
			v[i] = v[i] * 10 + (*p - '0');
		}
	}
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 ||
	    v[4] > 59 || v[5] > 60)
		return -1;
	t.tm_year = v[0] - 1900;
	t.tm_mon = v[1] - 1;
	t.tm_mday = v[2];
	t.tm_hour = v[3];
	t.tm_min = v[4];
	t.tm_sec = v[5];
	t.tm_isdst = -1;
	r = utc ? timegm(&t) : mktime(&t);
	return r == (time_t)-1 ? -1 : (long long)r;
}

/* --- signatures -------------------------------------------------------- */

void rc_sshsig_release(rc_sshsig *s)
{
	free(s->key);
	free(s->namespace);
	free(s->sig);
	memset(s, 0, sizeof(*s));
}

static int bad(const char *what)
{
	return rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
			    "malformed SSH signature: %s", what);
}

int rc_sshsig_parse(rc_sshsig *out, const char *armored, size_t len)
{
	rc_buf text = RC_BUF_INIT_MAX(MAX_SIG_TEXT), raw =
		RC_BUF_INIT_MAX(MAX_SIG_TEXT);
	const char *b, *e;
	const unsigned char *s;
	size_t l;
	uint32_t version;
	rd r;
	int rc = RC_EINVALID;

	memset(out, 0, sizeof(*out));
	rc_buf_put(&text, armored, len);
	b = strstr(text.ptr, SIG_BEGIN);
	e = b ? strstr(b, SIG_END) : NULL;
	if (!b || !e) {
		rc = bad("no BEGIN/END SSH SIGNATURE lines");
		goto out;
	}
	b += strlen(SIG_BEGIN);
	if (rc_codec_base64_decode(&raw, b, (size_t)(e - b), RC_BASE64_LAX) <
	    0) {
		rc = bad("the armor is not base64");
		goto out;
	}
	r.p = (const unsigned char *)raw.ptr;
	r.n = raw.len;
	if (r.n < MAGIC_LEN || memcmp(r.p, MAGIC, MAGIC_LEN)) {
		rc = bad("no SSHSIG magic");
		goto out;
	}
	r.p += MAGIC_LEN;
	r.n -= MAGIC_LEN;
	if (!rd_u32(&r, &version) || version != 1) {
		rc = bad("not version 1");
		goto out;
	}
	if (!rd_str(&r, &s, &l) ||
	    !blob_type(s, l, out->keytype, sizeof(out->keytype))) {
		rc = bad("no public key");
		goto out;
	}
	out->key = rc_malloc(l);
	memcpy(out->key, s, l);
	out->keylen = l;
	rc_ssh_fingerprint(out->fingerprint, s, l);
	if (!rd_str(&r, &s, &l) || memchr(s, '\0', l)) {
		rc = bad("no namespace");
		goto out;
	}
	out->namespace = rc_strndup((const char *)s, l);
	if (!rd_str(&r, &s, &l) || !rd_str(&r, &s, &l)) {
		rc = bad("no hash algorithm");
		goto out;
	}
	if ((l == 6 && !memcmp(s, "sha256", 6)) ||
	    (l == 6 && !memcmp(s, "sha512", 6))) {
		memcpy(out->hash, s, 6);
	} else {
		rc = rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_NONE,
				  "SSH signature with an unsupported hash "
				  "algorithm");
		goto out;
	}
	if (!rd_str(&r, &s, &l) || r.n) {
		rc = bad("no signature, or bytes after it");
		goto out;
	}
	out->sig = rc_malloc(l ? l : 1);
	memcpy(out->sig, s, l);
	out->siglen = l;
	rc = 0;
out:
	rc_buf_release(&text);
	rc_buf_release(&raw);
	if (rc < 0)
		rc_sshsig_release(out);
	return rc;
}

/* An EVP_PKEY from a key blob and the digest its signatures use (NULL for
 * ed25519, which hashes itself); the signature's raw bytes in *sig (DER
 * for ECDSA, new). */
static int load_key(const rc_sshsig *s, EVP_PKEY **pk, const EVP_MD **md,
		    rc_buf *sig)
{
	rd k = {s->key, s->keylen}, g = {s->sig, s->siglen};
	const unsigned char *a, *b, *x;
	size_t al, bl, xl;
	const unsigned char *sigtype;
	size_t stl;

	*pk = NULL;
	*md = NULL;
	if (!rd_str(&k, &a, &al) || !rd_str(&g, &sigtype, &stl))
		return bad("key or signature without a type");
	if (!strcmp(s->keytype, "ssh-ed25519")) {
		if (!rd_str(&k, &a, &al) || al != 32 || k.n ||
		    stl != 11 || memcmp(sigtype, "ssh-ed25519", 11) ||
		    !rd_str(&g, &b, &bl) || bl != 64 || g.n)
			return bad("an ed25519 key or signature of the wrong "
				   "size");
		*pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, a,
						  al);
		rc_buf_put(sig, b, bl);
	} else if (!strcmp(s->keytype, "ecdsa-sha2-nistp256")) {
		OSSL_PARAM p[3];
		EVP_PKEY_CTX *c;
		ECDSA_SIG *es;
		BIGNUM *r, *ss;
		unsigned char *der = NULL;
		int dl;
		rd in;

		if (!rd_is(&k, "nistp256") || !rd_str(&k, &a, &al) || k.n ||
		    stl != 19 || memcmp(sigtype, "ecdsa-sha2-nistp256", 19) ||
		    !rd_str(&g, &x, &xl) || g.n)
			return bad("an ECDSA key or signature of the wrong form");
		in.p = x;
		in.n = xl;
		if (!rd_mpint(&in, &b, &bl) ||
		    !rd_mpint(&in, &x, &xl) || in.n)
			return bad("an ECDSA signature without r and s");
		p[0] = OSSL_PARAM_construct_utf8_string(
			OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0);
		p[1] = OSSL_PARAM_construct_octet_string(
			OSSL_PKEY_PARAM_PUB_KEY, (void *)a, al);
		p[2] = OSSL_PARAM_construct_end();
		c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
		if (!c || EVP_PKEY_fromdata_init(c) != 1 ||
		    EVP_PKEY_fromdata(c, pk, EVP_PKEY_PUBLIC_KEY, p) != 1)
			*pk = NULL;
		EVP_PKEY_CTX_free(c);
		es = ECDSA_SIG_new();
		r = BN_bin2bn(b, (int)bl, NULL);
		ss = BN_bin2bn(x, (int)xl, NULL);
		if (!es || !r || !ss || ECDSA_SIG_set0(es, r, ss) != 1) {
			BN_free(r);
			BN_free(ss);
		} else if ((dl = i2d_ECDSA_SIG(es, &der)) > 0) {
			rc_buf_put(sig, der, (size_t)dl);
		}
		OPENSSL_free(der);
		ECDSA_SIG_free(es);
		*md = EVP_sha256();
	} else if (!strcmp(s->keytype, "ssh-rsa")) {
		OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
		OSSL_PARAM *p = NULL;
		EVP_PKEY_CTX *c;
		BIGNUM *e, *n;

		if (stl == 12 && !memcmp(sigtype, "rsa-sha2-256", 12))
			*md = EVP_sha256();
		else if (stl == 12 && !memcmp(sigtype, "rsa-sha2-512", 12))
			*md = EVP_sha512();
		else {
			OSSL_PARAM_BLD_free(bld);
			return rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_NONE,
					    "an RSA signature of type '%.*s' "
					    "(only rsa-sha2-256 and "
					    "rsa-sha2-512 are accepted)",
					    (int)(stl > 32 ? 32 : stl),
					    (const char *)sigtype);
		}
		if (!rd_mpint(&k, &a, &al) || !rd_mpint(&k, &b, &bl) || k.n ||
		    !rd_str(&g, &x, &xl) || g.n) {
			OSSL_PARAM_BLD_free(bld);
			return bad("an RSA key or signature of the wrong form");
		}
		e = BN_bin2bn(a, (int)al, NULL);
		n = BN_bin2bn(b, (int)bl, NULL);
		if (bld && e && n &&
		    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
		    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
			p = OSSL_PARAM_BLD_to_param(bld);
		c = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
		if (!p || !c || EVP_PKEY_fromdata_init(c) != 1 ||
		    EVP_PKEY_fromdata(c, pk, EVP_PKEY_PUBLIC_KEY, p) != 1)
			*pk = NULL;
		EVP_PKEY_CTX_free(c);
		OSSL_PARAM_free(p);
		OSSL_PARAM_BLD_free(bld);
		BN_free(e);
		BN_free(n);
		if (*pk && EVP_PKEY_get_bits(*pk) < 1024) {
			EVP_PKEY_free(*pk);
			*pk = NULL;
			return rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_NONE,
					    "an RSA key shorter than 1024 bits");
		}
		rc_buf_put(sig, x, xl);
	} else {
		return rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_NONE,
				    "SSH key type '%s' is not supported (only "
				    "ssh-ed25519, ecdsa-sha2-nistp256 and "
				    "ssh-rsa)",
				    s->keytype);
	}
	if (!*pk || !sig->len)
		return bad("a key or signature OpenSSL does not accept");
	return 0;
}

int rc_sshsig_verify(const rc_sshsig *s, const void *msg, size_t len)
{
	unsigned char h[RC_SHA512_LEN];
	size_t hl = strcmp(s->hash, "sha512") ? RC_SHA256_LEN : RC_SHA512_LEN;
	rc_buf tbs = RC_BUF_INIT_MAX(1 << 16), sig = RC_BUF_INIT_MAX(1 << 16);
	EVP_PKEY *pk = NULL;
	const EVP_MD *md = NULL;
	EVP_MD_CTX *c = NULL;
	int rc;

	if ((rc = load_key(s, &pk, &md, &sig)) < 0)
		goto out;
	if (hl == RC_SHA512_LEN)
		rc_codec_sha512(h, msg, len);
	else
		rc_codec_sha256(h, msg, len);
	rc_buf_put(&tbs, MAGIC, MAGIC_LEN);
	put_str(&tbs, s->namespace, strlen(s->namespace));
	put_str(&tbs, "", 0);
	put_str(&tbs, s->hash, strlen(s->hash));
	put_str(&tbs, h, hl);
	c = EVP_MD_CTX_new();
	if (!c || EVP_DigestVerifyInit(c, NULL, md, NULL, pk) != 1 ||
	    EVP_DigestVerify(c, (const unsigned char *)sig.ptr, sig.len,
			     (const unsigned char *)tbs.ptr, tbs.len) != 1)
		rc = rc_error_set(RC_EAUTH, RC_ECLASS_NONE, "bad signature");
out:
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(pk);
	rc_buf_release(&tbs);
	rc_buf_release(&sig);
	return rc;
}

/* --- allowed signers --------------------------------------------------- */

void rc_allowed_signers_release(rc_allowed_signers *a)
{
	for (size_t i = 0; i < a->n; i++) {
		free(a->v[i].principals);
		free(a->v[i].namespaces);
		free(a->v[i].key);
	}
	free(a->v);
	a->v = NULL;
	a->n = 0;
}

/* The next whitespace-delimited word at *p, honouring double quotes
 * (kept out of the result when the whole word is quoted); NULL at the
 * end of the line. */
static char *word(const char **p)
{
	const char *s = *p, *b;
	bool q = false;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!*s || *s == '#')
		return NULL;
	b = s;
	while (*s && (q || (*s != ' ' && *s != '\t'))) {
		if (*s == '"')
			q = !q;
		s++;
	}
	*p = s;
	if (s - b >= 2 && *b == '"' && s[-1] == '"')
		return rc_strndup(b + 1, (size_t)(s - b - 2));
	return rc_strndup(b, (size_t)(s - b));
}

static bool is_keytype(const char *w)
{
	return !strncmp(w, "ssh-", 4) || !strncmp(w, "ecdsa-", 6) ||
	       !strncmp(w, "sk-", 3);
}

/* Strips one pair of double quotes around v (in place). */
static char *unquote(char *v)
{
	size_t n = strlen(v);

	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		memmove(v, v + 1, n - 2);
		v[n - 2] = '\0';
	}
	return v;
}

/* The options word (opt[,opt...], values maybe quoted) into e. */
static int parse_options(rc_allowed_signer *e, const char *opts,
			 const char *name, int line)
{
	const char *p = opts;

	while (*p) {
		const char *s = p;
		bool q = false;
		char *o, *v;

		while (*p && (q || *p != ',')) {
			if (*p == '"')
				q = !q;
			p++;
		}
		o = rc_strndup(s, (size_t)(p - s));
		if (*p == ',')
			p++;
		v = strchr(o, '=');
		if (v)
			*v++ = '\0';
		if (!strcasecmp(o, "cert-authority") && !v) {
			e->cert_authority = true;
		} else if (!strcasecmp(o, "namespaces") && v) {
			free(e->namespaces);
			e->namespaces = rc_strdup(unquote(v));
		} else if ((!strcasecmp(o, "valid-after") ||
			    !strcasecmp(o, "valid-before")) && v) {
			long long t = rc_ssh_time_parse(unquote(v));

			if (t < 0) {
				rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
					     "%s:%d: '%s' is not a time "
					     "(YYYYMMDD[HHMM[SS]][Z])",
					     name, line, v);
				free(o);
				return RC_EINVALID;
			}
			if (o[6] == 'a')
				e->valid_after = t;
			else
				e->valid_before = t;
		} else {
			rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
				     "%s:%d: unknown option '%s'", name, line, o);
			free(o);
			return RC_EINVALID;
		}
		free(o);
	}
	return 0;
}

static int parse_line(rc_allowed_signer *e, const char *p, const char *name,
		      int line)
{
	char *w = NULL, *kt = NULL, *b64 = NULL, type[32];
	rc_buf blob = RC_BUF_INIT_MAX(1 << 16);
	int rc = RC_EINVALID;

	e->line = line;
	if (!(e->principals = word(&p)) || !(w = word(&p))) {
		rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
			     "%s:%d: expected principals, then a key", name,
			     line);
		goto out;
	}
	if (is_keytype(w)) {
		kt = w;
		w = NULL;
	} else {
		if (parse_options(e, w, name, line) < 0)
			goto out;
		kt = word(&p);
	}
	if (!kt || !(b64 = word(&p))) {
		rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
			     "%s:%d: expected a key type and a base64 key",
			     name, line);
		goto out;
	}
	if (rc_codec_base64_decode(&blob, b64, strlen(b64), 0) < 0 ||
	    !blob_type(blob.ptr, blob.len, type, sizeof(type)) ||
	    strcmp(type, kt)) {
		rc_error_set(RC_EINVALID, RC_ECLASS_NONE,
			     "%s:%d: the key is not a %s key in base64", name,
			     line, kt);
		goto out;
	}
	e->key = rc_malloc(blob.len);
	memcpy(e->key, blob.ptr, blob.len);
	e->keylen = blob.len;
	rc = 0;
out:
	free(w);
	free(kt);
	free(b64);
	rc_buf_release(&blob);
	return rc;
}

int rc_allowed_signers_parse(rc_allowed_signers *out, const char *text,
			     const char *name)
{
	const char *p = text;
	size_t cap = 0;
	int line = 0;

	memset(out, 0, sizeof(*out));
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		char *l = rc_strndup(p, n), *s = l;
		int rc = 0;

		line++;
		if (n && l[n - 1] == '\r')
			l[n - 1] = '\0';
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s && *s != '#') {
			RC_GROW(out->v, cap, out->n + 1);
			memset(&out->v[out->n], 0, sizeof(out->v[0]));
			rc = parse_line(&out->v[out->n], s, name, line);
			out->n++;
		}
		free(l);
		if (rc < 0) {
			rc_allowed_signers_release(out);
			return rc;
		}
		p += n;
		if (*p == '\n')
			p++;
	}
	return 0;
}

int rc_allowed_signers_check(const rc_allowed_signers *a, const void *key,
			     size_t keylen, const char *ns, long long when,
			     const char **who)
{
	int rc = RC_ENOTFOUND;
	char t[RC_TIME_SIZE];

	*who = NULL;
	for (size_t i = 0; i < a->n; i++) {
		const rc_allowed_signer *e = &a->v[i];

		if (e->keylen != keylen || memcmp(e->key, key, keylen))
			continue;
		if (e->cert_authority) {
			rc = rc_error_set(RC_EAUTH, RC_ECLASS_NONE,
					  "signer %s is listed as a "
					  "cert-authority, and certificates "
					  "are not supported",
					  e->principals);
		} else if (e->namespaces &&
			   !rc_ssh_match_list(ns, e->namespaces)) {
			rc = rc_error_set(RC_EAUTH, RC_ECLASS_NONE,
					  "signer %s is not allowed for "
					  "namespace %s",
					  e->principals, ns);
		} else if (e->valid_after && when < e->valid_after) {
			rc_time_utc(t, e->valid_after);
			rc = rc_error_set(RC_EAUTH, RC_ECLASS_NONE,
					  "signer %s is valid only after %s",
					  e->principals, t);
		} else if (e->valid_before && when > e->valid_before) {
			rc_time_utc(t, e->valid_before);
			rc = rc_error_set(RC_EAUTH, RC_ECLASS_NONE,
					  "signer %s was valid only before %s",
					  e->principals, t);
		} else {
			*who = e->principals;
			rc_error_clear();
			return 0;
		}
	}
	return rc;
}
