/*
 * age's keys: identities (what decrypts) and recipients (what encrypts
 * to), after age v1 (age-encryption.org/v1, C2SP age.md) and FiloSottile
 * age's agessh package for the ssh key types.
 *
 * Types: X25519 (`age1...` recipients, `AGE-SECRET-KEY-1...` identities,
 * both bech32), ssh-ed25519 and ssh-rsa (an OpenSSH public key line as
 * the recipient, an unencrypted `openssh-key-v1` private key as the
 * identity), and scrypt (a passphrase; for tests, and refused beside
 * other recipients by the format). The post-quantum hybrid types are not
 * supported: their identities are refused with RC_EUNSUPPORTED, their
 * stanzas never match.
 *
 * Ownership: every `_parse`, `_load` and `_new` returns through its
 * first argument an object the caller owns and frees with the NULL-safe
 * `_free`, which wipes the secrets it holds (OPENSSL_cleanse). Strings
 * passed in are borrowed. Errors go through rc_error_set() and never
 * quote secret text (an identity, a passphrase, a private key file).
 */
#ifndef RC_AGE_KEYS_H
#define RC_AGE_KEYS_H

#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"

typedef enum {
	RC_AGE_X25519 = 0,
	RC_AGE_SSH_ED25519,
	RC_AGE_SSH_RSA,
	RC_AGE_SCRYPT
} rc_age_key_type;

/* "X25519", "ssh-ed25519", "ssh-rsa", "scrypt": the stanza type names */
const char *rc_age_key_type_name(rc_age_key_type type);

typedef struct rc_age_identity rc_age_identity;
typedef struct rc_age_recipient rc_age_recipient;

rc_age_key_type rc_age_identity_type(const rc_age_identity *id);
rc_age_key_type rc_age_recipient_type(const rc_age_recipient *r);

/* An X25519 identity, `AGE-SECRET-KEY-1...` (surrounding whitespace
 * allowed). RC_EINVALID, or RC_EUNSUPPORTED for a post-quantum one
 * (`AGE-SECRET-KEY-PQ-1...`). */
int rc_age_identity_parse(rc_age_identity **out, const char *text);
/* A passphrase identity for scrypt stanzas (len bytes, copied), with the
 * highest work factor it accepts (log2 N; RC_AGE_SCRYPT_MAX_LOG_N when 0
 * or above it). */
int rc_age_identity_passphrase(rc_age_identity **out, const char *pass,
			       size_t len, int max_log_n);
/* An unencrypted OpenSSH private key (`-----BEGIN OPENSSH PRIVATE
 * KEY-----`, openssh-key-v1; ed25519 or rsa). `what` names its source in
 * errors (a path). An encrypted key is RC_EUNSUPPORTED. */
int rc_age_identity_ssh_parse(rc_age_identity **out, const char *text,
			      size_t len, const char *what);
/* The recipient that encrypts to an identity (not for passphrases). */
int rc_age_identity_recipient(rc_age_recipient **out,
			      const rc_age_identity *id);
void rc_age_identity_free(rc_age_identity *id);

/* A recipient: `age1...`, `ssh-ed25519 AAAA... [comment]` or
 * `ssh-rsa AAAA... [comment]` (2048 bits at least). Errors say which of
 * the three was expected and what is wrong (RC_EINVALID), or that a
 * post-quantum `age1pq1...` is not supported (RC_EUNSUPPORTED). */
int rc_age_recipient_parse(rc_age_recipient **out, const char *text);
/* A passphrase recipient (tests; age's own default work factor is 18). */
int rc_age_recipient_passphrase(rc_age_recipient **out, const char *pass,
				size_t len, int log_n);
void rc_age_recipient_free(rc_age_recipient *r);

#define RC_AGE_SCRYPT_MAX_LOG_N 22 /* 4 GiB of memory at most */

/* Growable lists that own their elements. */
typedef struct {
	rc_age_identity **items;
	size_t count, alloc;
} rc_age_identity_list;
typedef struct {
	rc_age_recipient **items;
	size_t count, alloc;
} rc_age_recipient_list;
/* Appends id (the list takes it over). */
void rc_age_identity_list_add(rc_age_identity_list *l, rc_age_identity *id);
/* Frees every element; the list is empty and usable again. */
void rc_age_identity_list_release(rc_age_identity_list *l);
void rc_age_recipient_list_add(rc_age_recipient_list *l, rc_age_recipient *r);
void rc_age_recipient_list_release(rc_age_recipient_list *l);

/* The identities of a key file's text in age-keygen's format: one
 * `AGE-SECRET-KEY-1...` per line, `#` comments and blank lines skipped
 * (and CRLF). At least one key; errors name `what` and the line. */
int rc_age_identities_parse_text(rc_age_identity_list *out, const char *text,
				 size_t len, const char *what);
/* Reads a key file: age-keygen's format, or an OpenSSH private key. A
 * file that the group or others may read is used with a warning naming
 * it and the fix (chmod 600). */
int rc_age_identities_read_file(rc_age_identity_list *out, const char *path);

/*
 * The identities of this process, appended to out:
 * - `RECONCILE_AGE_KEY` (the key itself, or several lines of a key
 *   file) when it is set, else the file `RECONCILE_AGE_KEY_FILE` names
 *   when it is set, else `~/.config/reconcile/age/keys.txt` when it
 *   exists ($XDG_CONFIG_HOME instead of ~/.config when set);
 * - and the OpenSSH private key at the path `RECONCILE_AGE_SSH_KEY`
 *   names, when it is set.
 * No identity at all is not an error here (out stays empty): decryption
 * says so with what the file was encrypted to.
 */
int rc_age_identities_load(rc_age_identity_list *out);

/* A new X25519 identity: *identity gets `AGE-SECRET-KEY-1...` (the
 * caller wipes and frees it), *recipient its `age1...`. */
int rc_age_keygen(char **identity, char **recipient);

/* Bech32 (BIP 173, without its 90-character limit, as age uses it).
 * Encoding appends hrp, '1', the data and the checksum, in lowercase, or
 * uppercase when upper; decoding accepts one case only, checks the
 * checksum and the padding bits, and appends the data to out and the
 * lowercase hrp to hrp. 0 or RC_EINVALID (the message gives no text). */
int rc_age_bech32_encode(rc_buf *out, const char *hrp, const void *data,
			 size_t len, bool upper);
int rc_age_bech32_decode(rc_buf *hrp, rc_buf *out, const char *s, size_t len);

/* ------------------------------------------------------ for schema/age.c */

#define RC_AGE_FILE_KEY_LEN 16

/* A header stanza: `-> type args...` and its body. */
typedef struct {
	char **args; /* args[0] is the type; nargs >= 1 */
	size_t nargs;
	unsigned char *body;
	size_t body_len;
} rc_age_stanza;

void rc_age_stanza_release(rc_age_stanza *s);

/* Wraps the file key for r into a new stanza. */
void rc_age_wrap(rc_age_stanza *out, const rc_age_recipient *r,
		 const unsigned char key[RC_AGE_FILE_KEY_LEN]);
/* Unwraps a stanza with id: 1 and the file key in key, 0 when the stanza
 * is not for id, or a negative code when the stanza is malformed for
 * its type (a header failure). */
int rc_age_unwrap(unsigned char key[RC_AGE_FILE_KEY_LEN],
		  const rc_age_identity *id, const rc_age_stanza *s);

#endif
