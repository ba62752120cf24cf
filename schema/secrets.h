/*
 * Secret references ({env: NAME}, {file: PATH}) resolved to values, only
 * where a value is needed: to compare (its keyed hash) and to hand to a
 * platform at apply time. Every value read is registered with the log
 * redactor before it is returned, so it cannot reach a log, an error, the
 * journal or a plan.
 */
#ifndef RC_SECRETS_H
#define RC_SECRETS_H

#include <jansson.h>

#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "schema/model.h"

/* The value of one secret of env (new string), read from the process
 * environment or from the file under config_dir, or decrypted: an
 * {encrypted:} value, or a file that is an age file (armored or binary,
 * whatever the load saw), with this process's age identities
 * (rc_age_identities_load(), once per process, wiped at exit). A
 * trailing newline of a file or of a decrypted value is not part of it.
 * RC_ENOTFOUND when the variable is unset or the file missing, RC_EAUTH
 * when no key opens an age file: the message names the secret, where it
 * is written, what it is encrypted to and where keys were looked for,
 * never a value. The caller wipes the value (explicit_bzero) and frees
 * it. */
int rc_secret_value(char **out, const rc_secret *s, const char *config_dir);
/* "env", "file", "aws_secret", "encrypted": the key of the reference,
 * and the prefix of its name in bodies ("encrypted:NAME"). */
const char *rc_secret_kind_name(rc_secret_kind kind);
/* Whether data is an age file: it starts with the binary header's first
 * line ("age-encryption.org/v1\n"), or the armor's first line after
 * whitespace. */
bool rc_secret_is_age(const void *data, size_t len);
/* A secret's file at path, read whole into out (at most 1 MiB) when it
 * is an age file: 1; 0 when it is not one (only its first bytes were
 * read, and wiped); -1 when it cannot be read. */
int rc_secret_file_age(rc_buf *out, const char *path);
/*
 * The hash that stands for a secret value: "hmac-sha256:<hex>", an
 * HMAC-SHA-256 under the installation's key (state/secret_key.h), so that
 * a short or guessable value cannot be found again by hashing guesses.
 * The engine hands the key down with rc_secret_set_key() before any
 * driver expands or observes; until then (a test, a command that has no
 * state directory) a random key of this process stands in, so a hash is
 * never a plain SHA-256, and it compares unequal to any hash made under
 * the real key: a lost or changed key shows every secret as changed once,
 * never as unchanged.
 */
#define RC_SECRET_HASH_PREFIX "hmac-sha256:"
#define RC_SECRET_HASH_LEN (12 + 64) /* the prefix and 64 hex digits */

/* Copies the key (32 bytes) for every later hash; the caller wipes its
 * copy. */
void rc_secret_set_key(const unsigned char key[32]);
/* Wipes the key (OPENSSL_cleanse); later hashes use a random key. */
void rc_secret_clear_key(void);
/* 16 hex digits that name the key without revealing it (an HMAC of a
 * fixed text under it), for saved plans to notice a changed key; NULL
 * when no key was set. */
const char *rc_secret_key_id(void);
/* The hash of value: RC_SECRET_HASH_PREFIX and 64 hex digits. */
void rc_secret_hash(char out[RC_SECRET_HASH_LEN + 1], const char *value);

/* {"$secret": "hmac-sha256:<hex>", "ref": "env:NAME"} for a value (new
 * ref). */
json_t *rc_secret_json(const rc_secret *s, const char *value);
/* The same for a value observed on a platform, whose reference is known
 * from the desired body (new ref). */
json_t *rc_secret_json_observed(const char *ref, const char *value);
/* The value behind a body's secret object: looks the reference up among
 * env's secrets (new string), for drivers at apply time. */
int rc_secret_resolve(char **out, const json_t *secret_obj, const rc_env *env,
		      const char *config_dir);

/* An {aws_secret: ARN} reference's shape: arn:<partition>:secretsmanager:
 * <region>:<12 digits>:secret:<name>, optionally followed by ECS's
 * :<json-key>:<version-stage>:<version-id>. */
bool rc_aws_secret_arn_valid(const char *arn);

#endif
