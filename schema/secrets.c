#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "schema/age.h"
#include "schema/secrets.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>

#define SECRET_FILE_MAX ((size_t)1 << 20)

static const char age_binary_magic[] = "age-encryption.org/v1\n";
static const char age_armor_begin[] = "-----BEGIN AGE ENCRYPTED FILE-----";

bool rc_secret_is_age(const void *data, size_t len)
{
	const char *p = data, *end = p + len;

	if (len >= sizeof(age_binary_magic) - 1 &&
	    !memcmp(p, age_binary_magic, sizeof(age_binary_magic) - 1))
		return true;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return (size_t)(end - p) >= sizeof(age_armor_begin) - 1 &&
	       !memcmp(p, age_armor_begin, sizeof(age_armor_begin) - 1);
}

/* Reads a secret's file into b, at most SECRET_FILE_MAX bytes; with
 * only_age, stops after the first bytes when they are not an age file
 * (1: an age file, whole in b; 0: not one, nothing kept). -1 when it
 * cannot be read. What was read and not kept is wiped. */
static int read_secret_file(rc_buf *b, const char *path, bool only_age)
{
	char chunk[4096];
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), rc = -1;
	struct stat st;

	if (fd < 0)
		return -1;
	/* grown once: a reallocation would leave a copy of the value */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (size_t)st.st_size < SECRET_FILE_MAX)
		rc_buf_grow(b, (size_t)st.st_size + 1);
	while ((r = read(fd, chunk, sizeof(chunk))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || rc_buf_put(b, chunk, (size_t)r) < 0)
			goto out;
		if (only_age && b->len >= 128 &&
		    !rc_secret_is_age(b->ptr, b->len))
			break;
	}
	rc = rc_secret_is_age(b->ptr, b->len) ? 1 : 0;
out:
	close(fd);
	OPENSSL_cleanse(chunk, sizeof(chunk));
	if (rc < 0 || (rc == 0 && only_age)) {
		OPENSSL_cleanse(b->ptr, b->len);
		rc_buf_clear(b);
	}
	return rc;
}

int rc_secret_file_age(rc_buf *out, const char *path)
{
	return read_secret_file(out, path, true);
}

/* A trailing newline is not part of a value (a file's or a decrypted
 * one's). */
static void strip_newlines(rc_buf *b)
{
	while (b->len &&
	       (b->ptr[b->len - 1] == '\n' || b->ptr[b->len - 1] == '\r'))
		rc_buf_truncate(b, b->len - 1);
}

/* n characters of s from the set (ok returns true). */
static size_t span_of(const char *s, bool (*ok)(char))
{
	size_t n = 0;

	while (s[n] && ok(s[n]))
		n++;
	return n;
}

static bool arn_word(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static bool arn_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool arn_secret_name(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("/_+=.@-", c);
}

static bool arn_field(char c)
{
	return c != ':';
}

/* arn:<partition>:secretsmanager:<region>:<12 digits>:secret:<name>, and
 * the optional :<json-key>:<version-stage>:<version-id> ECS reads. */
bool rc_aws_secret_arn_valid(const char *a)
{
	size_t n;

	if (strncmp(a, "arn:", 4))
		return false;
	a += 4;
	if (!(n = span_of(a, arn_word)) || a[n] != ':')
		return false;
	a += n + 1;
	if (strncmp(a, "secretsmanager:", 15))
		return false;
	a += 15;
	if (!(n = span_of(a, arn_word)) || a[n] != ':')
		return false;
	a += n + 1;
	if (span_of(a, arn_digit) != 12 || a[12] != ':')
		return false;
	a += 13;
	if (strncmp(a, "secret:", 7))
		return false;
	a += 7;
	if (!(n = span_of(a, arn_secret_name)))
		return false;
	a += n;
	if (!*a)
		return true;
	for (int i = 0; i < 3; i++) {
		if (*a != ':')
			return false;
		a += 1 + span_of(a + 1, arn_field);
	}
	return !*a;
}

/* This process's age identities: loaded once, at the first encrypted
 * value, and wiped at exit. */
static pthread_mutex_t ids_lock = PTHREAD_MUTEX_INITIALIZER;
static rc_age_identity_list ids;
static bool ids_loaded;
static int ids_code;
static char *ids_error;

static void ids_wipe(void)
{
	pthread_mutex_lock(&ids_lock);
	rc_age_identity_list_release(&ids);
	free(ids_error);
	ids_error = NULL;
	ids_loaded = false;
	pthread_mutex_unlock(&ids_lock);
}

static int identities(const rc_age_identity_list **out)
{
	int rc;

	pthread_mutex_lock(&ids_lock);
	if (!ids_loaded) {
		ids_loaded = true;
		atexit(ids_wipe);
		if ((ids_code = rc_age_identities_load(&ids)) < 0) {
			ids_error = rc_strdup(rc_error_last()->message);
			rc_age_identity_list_release(&ids);
		}
	}
	rc = ids_code;
	if (rc < 0)
		rc_error_set(rc, RC_ECLASS_CONFIG, "%s", ids_error);
	*out = &ids;
	pthread_mutex_unlock(&ids_lock);
	return rc;
}

/* A variable that names a key file, for an error: its path or "not
 * set". */
static void key_path_var(rc_buf *b, const char *var)
{
	const char *v = getenv(var);

	if (v && *v)
		rc_buf_printf(b, "%s ('%s')", var, v);
	else
		rc_buf_printf(b, "%s (not set)", var);
}

/* Where the identities come from, for an error: each source and whether
 * it was set (paths only, never a key). */
static void key_sources(rc_buf *b)
{
	const char *key = getenv("RECONCILE_AGE_KEY");
	const char *xdg = getenv("XDG_CONFIG_HOME");

	rc_buf_printf(b, "RECONCILE_AGE_KEY (%s), ",
		      key && *key ? "set" : "not set");
	key_path_var(b, "RECONCILE_AGE_KEY_FILE");
	rc_buf_printf(b, ", %s/reconcile/age/keys.txt, ",
		      xdg && *xdg ? "$XDG_CONFIG_HOME" : "~/.config");
	key_path_var(b, "RECONCILE_AGE_SSH_KEY");
}

/* "secret 'NAME' (file:line:col)" */
static void secret_where(rc_buf *b, const rc_secret *s)
{
	rc_buf_printf(b, "secret '%s'", s->name ? s->name : "?");
	if (s->loc.file)
		rc_buf_printf(b, " (%s:%d:%d)", s->loc.file, s->loc.line,
			      s->loc.col);
}

/* Decrypts the age file data of s into *out (registered with the
 * redactor by the caller); the plaintext never goes through a buffer
 * that is not wiped. */
static int age_value(char **out, const rc_secret *s, const void *data,
		     size_t len)
{
	const rc_age_identity_list *list;
	rc_buf pt = RC_BUF_INIT_MAX(SECRET_FILE_MAX);
	rc_buf msg = RC_BUF_INIT_MAX(8192);
	rc_age_failure why = RC_AGE_OK;
	rc_age_info info = {0};
	int rc, code;

	if ((rc = identities(&list)) == 0) {
		if (!list->count)
			rc = rc_error_set(RC_EAUTH, RC_ECLASS_CONFIG,
					  "no age key was found");
		else
			rc = rc_age_decrypt(&pt, data, len, list, 0, &why);
	}
	if (rc == 0 && memchr(pt.ptr, '\0', pt.len))
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				  "the decrypted value holds a NUL byte");
	if (rc < 0) {
		code = rc_error_last()->code;
		secret_where(&msg, s);
		rc_buf_printf(&msg, ": cannot decrypt: %s",
			      rc_error_last()->message);
		if (why == RC_AGE_OK || why == RC_AGE_FAIL_NO_MATCH) {
			if (!list->count && rc_age_inspect(&info, data, len) == 0) {
				rc_buf_puts(&msg, "; it is encrypted to ");
				rc_age_info_describe(&msg, &info);
			}
			rc_buf_puts(&msg, "; reconcile looked for keys in ");
			key_sources(&msg);
		}
		rc_age_info_release(&info);
		OPENSSL_cleanse(pt.ptr, pt.len);
		rc_buf_release(&pt);
		rc_error_set(code, RC_ECLASS_CONFIG, "%s", msg.ptr);
		rc_buf_release(&msg);
		return rc;
	}
	rc_buf_release(&msg);
	strip_newlines(&pt);
	*out = rc_buf_detach(&pt);
	return 0;
}

const char *rc_secret_kind_name(rc_secret_kind kind)
{
	switch (kind) {
	case RC_SECRET_ENV:
		return "env";
	case RC_SECRET_FILE:
		return "file";
	case RC_SECRET_AWS:
		return "aws_secret";
	case RC_SECRET_AGE:
		return "encrypted";
	}
	return "?";
}

int rc_secret_value(char **out, const rc_secret *s, const char *config_dir)
{
	*out = NULL;
	if (s->kind == RC_SECRET_AWS)
		return rc_error_set(RC_EUNSUPPORTED, RC_ECLASS_INTERNAL,
				    "secret '%s' is in AWS Secrets Manager: "
				    "reconcile passes it on by its ARN and "
				    "never reads it",
				    s->name);
	if (s->kind == RC_SECRET_ENV) {
		const char *v = getenv(s->ref);

		if (!v)
			return rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
					    "secret '%s': the variable '%s' is "
					    "not set",
					    s->name, s->ref);
		*out = rc_strdup(v);
	} else if (s->kind == RC_SECRET_AGE) {
		if (age_value(out, s, s->ciphertext, strlen(s->ciphertext)) < 0)
			return rc_error_last()->code;
	} else {
		rc_buf p = RC_BUF_INIT_MAX(PATH_MAX * 2);
		rc_buf data = RC_BUF_INIT_MAX(SECRET_FILE_MAX);
		int age, rc = 0;

		rc_buf_printf(&p, "%s/%s", config_dir, s->ref);
		age = read_secret_file(&data, p.ptr, false);
		rc_buf_release(&p);
		if (age < 0)
			return rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
					    "secret '%s': cannot read the file "
					    "'%s'",
					    s->name, s->ref);
		if (age) {
			rc = age_value(out, s, data.ptr, data.len);
			OPENSSL_cleanse(data.ptr, data.len);
			rc_buf_release(&data);
			if (rc < 0)
				return rc_error_last()->code;
		} else {
			strip_newlines(&data);
			*out = rc_buf_detach(&data);
		}
	}
	rc_secret_register(*out);
	return 0;
}

/* The key: set by the engine, else drawn at random once per process. */
static pthread_mutex_t key_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char hash_key[32];
static bool key_set, key_random;
static rc_buf key_id = RC_BUF_INIT_MAX(16);

static void key_locked(unsigned char out[32])
{
	if (!key_set && !key_random) {
		if (RAND_bytes(hash_key, sizeof(hash_key)) != 1) {
			fprintf(stderr, "fatal: cannot draw random bytes for "
					"a secret hash key\n");
			abort();
		}
		key_random = true;
	}
	memcpy(out, hash_key, sizeof(hash_key));
}

void rc_secret_set_key(const unsigned char key[32])
{
	unsigned char id[RC_SHA256_LEN];
	static const char what[] = "reconcile secret hash key id";

	pthread_mutex_lock(&key_lock);
	memcpy(hash_key, key, sizeof(hash_key));
	key_set = true;
	key_random = false;
	rc_codec_hmac_sha256(id, hash_key, sizeof(hash_key), what,
			     sizeof(what) - 1);
	rc_buf_clear(&key_id);
	rc_codec_hex_encode(&key_id, id, 8);
	pthread_mutex_unlock(&key_lock);
}

void rc_secret_clear_key(void)
{
	pthread_mutex_lock(&key_lock);
	OPENSSL_cleanse(hash_key, sizeof(hash_key));
	key_set = key_random = false;
	rc_buf_clear(&key_id);
	pthread_mutex_unlock(&key_lock);
}

const char *rc_secret_key_id(void)
{
	return key_set ? key_id.ptr : NULL;
}

void rc_secret_hash(char out[RC_SECRET_HASH_LEN + 1], const char *value)
{
	unsigned char key[32], mac[RC_SHA256_LEN];
	rc_buf hex = RC_BUF_INIT_MAX(RC_SECRET_HASH_LEN);

	pthread_mutex_lock(&key_lock);
	key_locked(key);
	pthread_mutex_unlock(&key_lock);
	rc_codec_hmac_sha256(mac, key, sizeof(key), value, strlen(value));
	OPENSSL_cleanse(key, sizeof(key));
	rc_buf_puts(&hex, RC_SECRET_HASH_PREFIX);
	rc_codec_hex_encode(&hex, mac, sizeof(mac));
	memcpy(out, hex.ptr, hex.len + 1);
	rc_buf_release(&hex);
}

static json_t *secret_obj(const char *ref, const char *value)
{
	char digest[RC_SECRET_HASH_LEN + 1];
	json_t *o = json_object();

	rc_secret_hash(digest, value);
	json_object_set_new(o, "$secret", json_string(digest));
	json_object_set_new(o, "ref", json_string(ref));
	return o;
}

json_t *rc_secret_json(const rc_secret *s, const char *value)
{
	rc_buf ref = RC_BUF_INIT_MAX(4096);
	json_t *o;

	rc_buf_printf(&ref, "%s:%s", rc_secret_kind_name(s->kind), s->ref);
	o = secret_obj(ref.ptr, value);
	rc_buf_release(&ref);
	return o;
}

json_t *rc_secret_json_observed(const char *ref, const char *value)
{
	return secret_obj(ref, value);
}

int rc_secret_resolve(char **out, const json_t *secret_obj_json,
		      const rc_env *env, const char *config_dir)
{
	const char *ref = json_string_value(json_object_get(secret_obj_json, "ref"));

	*out = NULL;
	if (!ref)
		return rc_error_set(RC_EINVALID, RC_ECLASS_INTERNAL,
				    "a secret without a reference");
	for (size_t i = 0; i < env->nsecrets; i++) {
		const rc_secret *s = &env->secrets[i];
		const char *kind = rc_secret_kind_name(s->kind);
		size_t plen = strlen(kind);

		if (s->kind == RC_SECRET_AWS)
			continue;
		if (!strncmp(ref, kind, plen) && ref[plen] == ':' &&
		    !strcmp(ref + plen + 1, s->ref))
			return rc_secret_value(out, s, config_dir);
	}
	return rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
			    "no secret of environment '%s' is '%s'", env->name,
			    ref);
}
