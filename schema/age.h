/*
 * The age v1 file format (age-encryption.org/v1, C2SP age.md),
 * implemented with OpenSSL 3: the header of recipient stanzas and its
 * HMAC-SHA-256, the ChaCha20-Poly1305 STREAM payload in 64 KiB chunks,
 * and the ASCII armor (`-----BEGIN AGE ENCRYPTED FILE-----`).
 *
 * Recipient and identity types are in schema/age_keys.h: X25519,
 * ssh-ed25519, ssh-rsa and scrypt. Stanzas of other types (the
 * post-quantum hybrids, "grease") are kept by inspection and never
 * match an identity.
 *
 * Parsing is as strict as the specification and the C2SP testkit
 * (../shared/contracts/age/testkit): canonical unpadded base64 in the
 * header, 64-column lines ending with a short one, no trailing data, no
 * empty final chunk unless the whole payload is empty; the armor's
 * padded base64 in 64-column lines, CRLF allowed, whitespace allowed
 * only around it.
 *
 * Ownership: inputs are borrowed; output is appended to the caller's
 * rc_buf. A decrypted plaintext is the caller's to register with the
 * redactor (rc_secret_register) and to wipe (OPENSSL_cleanse) before it
 * releases the buffer; a failed decryption leaves no plaintext behind
 * (what was appended is wiped and truncated away). Errors go through
 * rc_error_set() (RC_EINVALID for a malformed or unauthentic file,
 * RC_EAUTH when no identity matches) and never contain plaintext, file
 * keys or identities.
 */
#ifndef RC_AGE_H
#define RC_AGE_H

#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "schema/age_keys.h"

/* Why a decryption failed, in the testkit's terms. */
typedef enum {
	RC_AGE_OK = 0,
	RC_AGE_FAIL_ARMOR,    /* the armor is malformed */
	RC_AGE_FAIL_HEADER,   /* not an age file, a malformed header/stanza */
	RC_AGE_FAIL_NO_MATCH, /* no identity opens any stanza */
	RC_AGE_FAIL_HMAC,     /* the header MAC is wrong */
	RC_AGE_FAIL_PAYLOAD   /* the payload is truncated, altered or extended */
} rc_age_failure;

/* "success", "armor failure", "header failure", "no match",
 * "HMAC failure", "payload failure" (the testkit's `expect:` values) */
const char *rc_age_failure_name(rc_age_failure f);

/* Decrypt flags: by default armor is detected (the first non-whitespace
 * bytes are "-----"); these force one form. */
#define RC_AGE_ARMORED 0x1u
#define RC_AGE_BINARY 0x2u

/*
 * Decrypts the age file data (len bytes) with the first identity of ids
 * that opens one of its stanzas, appending the plaintext to out.
 * 0, or a negative code with *why (when not NULL) saying which kind of
 * failure it was. No match reads "no identity matched: the file is
 * encrypted to 2 recipients (X25519, ssh-ed25519)".
 */
int rc_age_decrypt(rc_buf *out, const void *data, size_t len,
		   const rc_age_identity_list *ids, unsigned flags,
		   rc_age_failure *why);

/* Encrypt flag: the armored form (else binary). */
#define RC_AGE_ARMOR 0x1u

/* Encrypts data to every recipient of rs (at least one; a scrypt
 * recipient must be alone), appending the age file to out. */
int rc_age_encrypt(rc_buf *out, const void *data, size_t len,
		   const rc_age_recipient_list *rs, unsigned flags);

/* What a file shows without a key: its stanzas' types in order. */
typedef struct {
	char **types; /* "X25519", "ssh-ed25519", ... as written in the file */
	size_t count;
	bool armored;
} rc_age_info;

/* Parses data's armor and header (the MAC cannot be checked without a
 * key). 0, or RC_EINVALID for what decryption would call an armor or a
 * header failure. */
int rc_age_inspect(rc_age_info *out, const void *data, size_t len);
void rc_age_info_release(rc_age_info *info);
/* Appends "2 recipients (X25519, ssh-ed25519)" to out. */
void rc_age_info_describe(rc_buf *out, const rc_age_info *info);

/* The armor alone: encode appends the armored form of data; decode
 * appends the bytes an armored text holds (0 or RC_EINVALID). */
void rc_age_armor_encode(rc_buf *out, const void *data, size_t len);
int rc_age_armor_decode(rc_buf *out, const void *text, size_t len);

#endif
