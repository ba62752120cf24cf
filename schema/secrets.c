#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "schema/secrets.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>

static char *read_secret_file(const char *path)
{
	rc_buf b = RC_BUF_INIT_MAX(1 << 20);
	char chunk[4096];
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return NULL;
	while ((r = read(fd, chunk, sizeof(chunk))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || rc_buf_put(&b, chunk, (size_t)r) < 0) {
			close(fd);
			rc_buf_release(&b);
			return NULL;
		}
	}
	close(fd);
	/* a trailing newline is not part of the value */
	while (b.len && (b.ptr[b.len - 1] == '\n' || b.ptr[b.len - 1] == '\r'))
		rc_buf_truncate(&b, b.len - 1);
	return rc_buf_detach(&b);
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
	} else {
		rc_buf p = RC_BUF_INIT_MAX(PATH_MAX * 2);

		rc_buf_printf(&p, "%s/%s", config_dir, s->ref);
		*out = read_secret_file(p.ptr);
		rc_buf_release(&p);
		if (!*out)
			return rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
					    "secret '%s': cannot read the file "
					    "'%s'",
					    s->name, s->ref);
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

	rc_buf_printf(&ref, "%s:%s",
		      s->kind == RC_SECRET_ENV    ? "env"
		      : s->kind == RC_SECRET_FILE ? "file"
						  : "aws_secret",
		      s->ref);
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
		size_t plen = s->kind == RC_SECRET_ENV ? 4 : 5;

		if (s->kind == RC_SECRET_AWS)
			continue;

		if (!strncmp(ref, s->kind == RC_SECRET_ENV ? "env:" : "file:",
			     plen) &&
		    !strcmp(ref + plen, s->ref))
			return rc_secret_value(out, s, config_dir);
	}
	return rc_error_set(RC_ENOTFOUND, RC_ECLASS_CONFIG,
			    "no secret of environment '%s' is '%s'", env->name,
			    ref);
}
