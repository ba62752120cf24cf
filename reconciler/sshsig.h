/*
 * SSH signatures (OpenSSH's PROTOCOL.sshsig), as git writes them with
 * gpg.format=ssh, and the allowed-signers file of ssh-keygen(1).
 *
 * A signature is "-----BEGIN SSH SIGNATURE-----", base64 of the blob
 *   "SSHSIG" uint32(1) string(publickey) string(namespace)
 *   string(reserved) string(hash_algorithm) string(signature)
 * and signs
 *   "SSHSIG" string(namespace) string(reserved) string(hash_algorithm)
 *   string(H(message))
 * with H sha256 or sha512. Keys: ssh-ed25519, ecdsa-sha2-nistp256 and
 * ssh-rsa (signatures rsa-sha2-256 and rsa-sha2-512; SHA-1 is refused),
 * verified with OpenSSL.
 *
 * An allowed-signers line is "principals [options] keytype base64
 * [comment]": principals comma-separated (patterns with '*' and '?'),
 * options namespaces="p1,p2" (patterns), valid-after=TIME,
 * valid-before=TIME (YYYYMMDD[HHMM[SS]], with a trailing Z in UTC, else
 * local time), cert-authority (parsed, refused as unsupported).
 *
 * Pure: no file, no git; the engine layer's verify.c uses it.
 */
#ifndef RC_SSHSIG_H
#define RC_SSHSIG_H

#include "reconciler/base/common.h"
#include "reconciler/base/error.h"

/* "SHA256:" and 43 base64 characters, as ssh-keygen -l prints. */
#define RC_SSH_FP_LEN (7 + 43)

typedef struct {
	unsigned char *key; /* the public key blob */
	size_t keylen;
	char keytype[32];   /* "ssh-ed25519", ... */
	char *namespace;
	char hash[8];       /* "sha256" or "sha512" */
	unsigned char *sig; /* the signature blob */
	size_t siglen;
	char fingerprint[RC_SSH_FP_LEN + 1];
} rc_sshsig;

/* Parses an armored signature (len bytes of text). RC_EINVALID saying
 * what is wrong. *out is released with rc_sshsig_release. */
int rc_sshsig_parse(rc_sshsig *out, const char *armored, size_t len);
void rc_sshsig_release(rc_sshsig *s);

/* Verifies s over message with the key s carries: 0, RC_EAUTH ("bad
 * signature"), RC_EUNSUPPORTED (a key or signature type not listed
 * above) or RC_EINVALID (a malformed key or signature). */
int rc_sshsig_verify(const rc_sshsig *s, const void *msg, size_t len);

/* "SHA256:<base64 of SHA-256(blob) without padding>". */
void rc_ssh_fingerprint(char out[RC_SSH_FP_LEN + 1], const void *blob,
			size_t len);

/* Whether s matches the comma-separated pattern list (ssh's
 * match_pattern_list: '*', '?', and '!' negating a pattern). */
bool rc_ssh_match_list(const char *s, const char *patterns);

typedef struct {
	char *principals;   /* as written, comma-separated */
	char *namespaces;   /* the namespaces= option, or NULL: any */
	long long valid_after, valid_before; /* Unix seconds; 0: none */
	bool cert_authority;
	unsigned char *key;
	size_t keylen;
	int line;
} rc_allowed_signer;

typedef struct {
	rc_allowed_signer *v;
	size_t n;
} rc_allowed_signers;

/* Parses an allowed-signers file's text; name is the file in messages
 * ("<name>:<line>: ..."). Blank lines and '#' comments are skipped.
 * RC_EINVALID on the first malformed line. */
int rc_allowed_signers_parse(rc_allowed_signers *out, const char *text,
			     const char *name);
void rc_allowed_signers_release(rc_allowed_signers *a);

/* Whether the key blob may sign for namespace ns at time when (Unix
 * seconds): 0 with *who the principals of the line that allows it
 * (borrowed); RC_ENOTFOUND when no line has the key; RC_EAUTH when lines
 * have it but none allows it, the message saying why (the namespace,
 * valid-after, valid-before, cert-authority). */
int rc_allowed_signers_check(const rc_allowed_signers *a, const void *key,
			     size_t keylen, const char *ns, long long when,
			     const char **who);

/* Parses an allowed-signers time: YYYYMMDD[HHMM[SS]][Z]. -1 if
 * malformed. */
long long rc_ssh_time_parse(const char *s);

#endif
