/* The SSH signature parser and verifier (sshsig.h) and the
 * allowed-signers matcher, on signatures made by ssh-keygen -Y sign. */
#include "tests/unit/helpers.h"
#include "reconciler/sshsig.h"

/* ssh-keygen -Y sign -n git (file: -n file; SHA256: -O hashalg=sha256)
 * over MSG with the keys PUB_*. */
static const char MSG[] =
	"tree 1234\n"
	"\n"
	"hello, trust\n";

static const char SIG_ED25519[] =
	"-----BEGIN SSH SIGNATURE-----\n"
	"U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgCmRn+WznF8EJL5XPBLcBmcVnYD\n"
	"ne5jTWCBah/0Q2qcgAAAADZ2l0AAAAAAAAAAZzaGE1MTIAAABTAAAAC3NzaC1lZDI1NTE5\n"
	"AAAAQNV/JJh1yJeXxb+UMzjHEy2i/51zJqQev8tn7PGLauVN1bkXun+uIUOsfuaLmsSmS8\n"
	"nI2O4FJ1ygcdzbenzruQI=\n"
	"-----END SSH SIGNATURE-----\n";

static const char SIG_ECDSA[] =
	"-----BEGIN SSH SIGNATURE-----\n"
	"U1NIU0lHAAAAAQAAAGgAAAATZWNkc2Etc2hhMi1uaXN0cDI1NgAAAAhuaXN0cDI1NgAAAE\n"
	"EEylzOZwGelWFqTp44RMouH5483CjdxdETbTQ/Qz3kuMX15mjWRp4SLJkw6zjunjaJBXhx\n"
	"ELmK6KLdFVRoGgztJgAAAANnaXQAAAAAAAAABnNoYTUxMgAAAGQAAAATZWNkc2Etc2hhMi\n"
	"1uaXN0cDI1NgAAAEkAAAAgGTV/M9pwHREwi3uf393KK01ct0O5QmSe+NKC7GU9uBoAAAAh\n"
	"AOKeLH88667ihTcnz8bw2uyax19rTuxgVU1UY/SlnpXo\n"
	"-----END SSH SIGNATURE-----\n";

static const char SIG_RSA[] =
	"-----BEGIN SSH SIGNATURE-----\n"
	"U1NIU0lHAAAAAQAAAZcAAAAHc3NoLXJzYQAAAAMBAAEAAAGBAKSQDbtq81DLT3ptgEMzxZ\n"
	"NYTfAbfAhdv8ekczll1Or2kAdqxxOI0A8bxlZ7mBNxF2N0MhYKadjaDqv1XjIugs+tuzQy\n"
	"A9j/jna1gsKRIkPNUF2qzLZ8Ko619XwAfh+yUmy7smc6u9T3y7E3cZlya2tGqSaMQe24HE\n"
	"HtLfUTFEOSqDMuYIwAR8yAJlRJUYTJV2WZtetBXhtxSOtudkrcPM/rAi5d7Avhi197VzFH\n"
	"MdnHMahGWEr55vWyMh9Dt9fLnPlWVs4Fl7+QcoEL1quOD0V8C5MTz9FOTCTeqGI8k9Jt6E\n"
	"8ycZwhAbN0lLx7hfC+vwAJZ+lP+MJSrkAVLrjx6HWdqjB3NPmD1sVr000dItqeFaJvLlZh\n"
	"xHt5P7uevlyFxeDUtp7oRBzdoOisZcQe/dzH1JsmVqg232JsdCkbJ/+55OljVCHvojP0cJ\n"
	"RqMLJCmCL1ZyeEiNjrTiQw1jDmfPcfswnAvi29lt8hp8yyWocDtvDSopJCmFIWawy1zkKe\n"
	"bQAAAANnaXQAAAAAAAAABnNoYTUxMgAAAZQAAAAMcnNhLXNoYTItNTEyAAABgDAofbKxlU\n"
	"t/3CXlYX4yQLbj+/TA9MvJLJnCnTLxfnTbxRcpmUjBVRSAMVpp3ylbQPrf448sSWUc/Kpa\n"
	"7ciGVjSZh8h42ZvFqbcNPOCUPbejw9i1CpHCo3BcfZbHpDNBpi6wuleylhlyKzDdPPKRAx\n"
	"zIsfz1uoZUbO94B37xRm7vGs3Cox2yQmwwCJTk/1vqdic4lh5z8o+iKLL4AFJ97m+TN2l8\n"
	"u8+hKBAxLwnfUl/Sp178U6D0rBL0sG80rMtp05K4O38acps2R3M63yKJ8wesKEYdEAfrpJ\n"
	"Cunis2cbXdVMskxKobKfC8F4Lgx3HiDuSouOF5gr4MCHRKxxt6craeS4R3SxKszu9Atj4L\n"
	"v4C8cRdDvpf+GwMey/QzybBaZLyBtpbY7ZDmsqqxx0TF8oLd0lt+O2BCtFsG44TLgwHRBI\n"
	"74McQr1kMLaZCvuPgqBYHjBFAfJSFyRZtYyCm/SL3HbVG6yaHDknZe8y5rkZzW8xeq2cKP\n"
	"edtS38ky3+QjGg==\n"
	"-----END SSH SIGNATURE-----\n";

static const char SIG_FILE_NS[] =
	"-----BEGIN SSH SIGNATURE-----\n"
	"U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgCmRn+WznF8EJL5XPBLcBmcVnYD\n"
	"ne5jTWCBah/0Q2qcgAAAAEZmlsZQAAAAAAAAAGc2hhNTEyAAAAUwAAAAtzc2gtZWQyNTUx\n"
	"OQAAAECYQHApefIHXZL0wI2EwWvNElFcN74UeNH/20fptbizCMYP6FXMpHuO34kG9i1PQy\n"
	"0CqN6rtdajWnvYbm5VzHIL\n"
	"-----END SSH SIGNATURE-----\n";

static const char SIG_ED25519_SHA256[] =
	"-----BEGIN SSH SIGNATURE-----\n"
	"U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgCmRn+WznF8EJL5XPBLcBmcVnYD\n"
	"ne5jTWCBah/0Q2qcgAAAADZ2l0AAAAAAAAAAZzaGEyNTYAAABTAAAAC3NzaC1lZDI1NTE5\n"
	"AAAAQC1VVPLt7r7d1euOSlxAv2vPlEgt2zvR5VoCdryYi9NzBapPUPEW9WiUZWaPYlcs17\n"
	"/YB5J5y9EZFODRge2laAo=\n"
	"-----END SSH SIGNATURE-----\n";

#define PUB_ED25519 \
	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIApkZ/ls5xfBCS+VzwS3AZnFZ2A53uY01ggWof9ENqnI"

#define PUB_ECDSA \
	"ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMpczmcBnpVhak6eOETKLh+ePNwo3cXRE200P0M95LjF9eZo1kaeEiyZMOs47p42iQV4cRC5iuii3RVUaBoM7SY="

#define PUB_RSA \
	"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCkkA27avNQy096bYBDM8WTWE3wG3wIXb/HpHM5ZdTq9pAHascTiNAPG8ZWe5gTcRdjdDIWCmnY2g6r9V4yLoLPrbs0MgPY/452tYLCkSJDzVBdqsy2fCqOtfV8AH4fslJsu7JnOrvU98uxN3GZcmtrRqkmjEHtuBxB7S31ExRDkqgzLmCMAEfMgCZUSVGEyVdlmbXrQV4bcUjrbnZK3DzP6wIuXewL4Ytfe1cxRzHZxzGoRlhK+eb1sjIfQ7fXy5z5VlbOBZe/kHKBC9arjg9FfAuTE8/RTkwk3qhiPJPSbehPMnGcIQGzdJS8e4Xwvr8ACWfpT/jCUq5AFS648eh1naowdzT5g9bFa9NNHSLanhWiby5WYcR7eT+7nr5chcXg1Lae6EQc3aDorGXEHv3cx9SbJlaoNt9ibHQpGyf/ueTpY1Qh76Iz9HCUajCyQpgi9WcnhIjY604kMNYw5nz3H7MJwL4tvZbfIafMslqHA7bw0qKSQphSFmsMtc5Cnm0="

#define FP_ED25519 "SHA256:45FXzdVoU1VvgXTzfo8WDYlfperuHkh4OlxWNlIwz8o"
#define FP_ECDSA "SHA256:VnRZlUtrMhQDQVNsvnVYqHRsmBtFSySTgYuuHsnMITA"
#define FP_RSA "SHA256:BGDyQeDpWCgg14VQqBMW8teJoN0ILVUcNLpDAFBeVi0"

/* rsa-sha2-256, which ssh-keygen -Y sign never makes (it signs RSA with
 * rsa-sha2-512): made over MSG by a script with a 2048-bit key, and
 * accepted by ssh-keygen -Y verify. */
static const char SIG_RSA256[] =
	"-----BEGIN SSH SIGNATURE-----\n"
	"U1NIU0lHAAAAAQAAARcAAAAHc3NoLXJzYQAAAAMBAAEAAAEBALeBU/oDcrW2wr4BiJRrBw\n"
	"hbKab0pUlLDbEQ5fhxyMtuKHTedFRu0jOUlqneQNg8ufAlZISRChJomCYPP4xY9GIqWzto\n"
	"WNKna8fWBc8YTTOQ0J6t0riVdeIGyKcIDu/sc7yv1LVMQMyKOE74G8UJzB0z23TKhSUwFN\n"
	"B0KZsfHvcPJAk51tKm1g8w2o8PM+vXYy+fvcfRf1lh92WAIaNwMgm9Uk3p61cmCvleaMVl\n"
	"SZJZ+ofWS+s3OvP3gUYIOZjoMI2vTL+ctbYMIolg9EyE2UrK3Oht2mW5V1vDgbQq1MGzKS\n"
	"jZqye0WK+GswLlVGuOHC0eh7rLVHkUd7MotDi0pHsAAAADZ2l0AAAAAAAAAAZzaGE1MTIA\n"
	"AAEUAAAADHJzYS1zaGEyLTI1NgAAAQC2JKLmnsQGcG02uM2Lt5Kew3xCdAOs5Emnz761Yg\n"
	"ZUJc1V6woxJKCzlKLWSHmPhRpOpUhFaOrxNO4fOhifpHMYZIK0OeTLAu5xvFDe7ytM73tZ\n"
	"rXJOlD7FruKKQZgRGqN4vnIUqRCTuXkK4o9+Jjh35n5hLELvVWOQyBF2TE0/89RKpjKqxB\n"
	"4Sy/YsmQCu9rBQQ6tphI9eZYXYJ6JB34Q4XKvmpoIChwspRUfajpMLBUFuK1cQfH47DMc2\n"
	"QR1E4v9qM+SB68JaVqYuxOLDEfQ/ASpcetwOt+525ARQOG9ypftViRGprvmp51F9Dg8qVN\n"
	"MmGAlwfpBHJNJp5GdFiROF\n"
	"-----END SSH SIGNATURE-----\n";
static const char FP_RSA256[] = "SHA256:dgLuIpPm+qlFubJ2xFp3keBJM7rV93DyQK9j4JKiwjE";

static void verify_ok(const char *armored, const char *type, const char *fp,
		      const char *hash)
{
	rc_sshsig s;

	assert_int_equal(rc_sshsig_parse(&s, armored, strlen(armored)), 0);
	assert_string_equal(s.keytype, type);
	assert_string_equal(s.fingerprint, fp);
	assert_string_equal(s.namespace, "git");
	assert_string_equal(s.hash, hash);
	assert_int_equal(rc_sshsig_verify(&s, MSG, strlen(MSG)), 0);
	rc_sshsig_release(&s);
}

static void sshsig_verifies_each_key_type(void **state)
{
	RC_UNUSED(state);
	verify_ok(SIG_ED25519, "ssh-ed25519", FP_ED25519, "sha512");
	verify_ok(SIG_ED25519_SHA256, "ssh-ed25519", FP_ED25519, "sha256");
	verify_ok(SIG_ECDSA, "ecdsa-sha2-nistp256", FP_ECDSA, "sha512");
	verify_ok(SIG_RSA, "ssh-rsa", FP_RSA, "sha512");
	verify_ok(SIG_RSA256, "ssh-rsa", FP_RSA256, "sha512");
}

/* A changed message, and a message signed for another namespace checked
 * as git (what a signature made with -n file would be taken for). */
static void sshsig_refuses_a_changed_message(void **state)
{
	const char *sigs[] = {SIG_ED25519, SIG_ECDSA, SIG_RSA, SIG_RSA256};
	rc_sshsig s;

	RC_UNUSED(state);
	for (size_t i = 0; i < RC_ARRAY_SIZE(sigs); i++) {
		char *m = rc_strdup(MSG);

		m[strlen(m) - 2] ^= 1;
		assert_int_equal(rc_sshsig_parse(&s, sigs[i], strlen(sigs[i])), 0);
		assert_int_equal(rc_sshsig_verify(&s, m, strlen(m)), RC_EAUTH);
		assert_string_equal(rc_error_last()->message, "bad signature");
		rc_sshsig_release(&s);
		free(m);
	}
	assert_int_equal(rc_sshsig_parse(&s, SIG_FILE_NS, strlen(SIG_FILE_NS)), 0);
	assert_string_equal(s.namespace, "file");
	assert_int_equal(rc_sshsig_verify(&s, MSG, strlen(MSG)), 0);
	free(s.namespace);
	s.namespace = rc_strdup("git");
	assert_int_equal(rc_sshsig_verify(&s, MSG, strlen(MSG)), RC_EAUTH);
	rc_sshsig_release(&s);
}

static void sshsig_refuses_malformed_armor(void **state)
{
	rc_sshsig s;
	char *t = rc_strdup(SIG_ED25519);

	RC_UNUSED(state);
	assert_int_equal(rc_sshsig_parse(&s, "junk", 4), RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message, "BEGIN/END"));
	/* the magic's first byte: "U1NI" -> "V1NI" */
	*strstr(t, "U1NI") = 'V';
	assert_int_equal(rc_sshsig_parse(&s, t, strlen(t)), RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message, "magic"));
	free(t);
	/* cut in the middle of the signature */
	t = rc_strdup(SIG_ED25519);
	memcpy(strstr(t, "AAAAQNV"), "\n-----END SSH SIGNATURE-----\n",
	       sizeof("\n-----END SSH SIGNATURE-----\n"));
	assert_int_equal(rc_sshsig_parse(&s, t, strlen(t)), RC_EINVALID);
	free(t);
}

static void ssh_fingerprint_is_ssh_keygens(void **state)
{
	rc_allowed_signers a;
	char fp[RC_SSH_FP_LEN + 1];

	RC_UNUSED(state);
	assert_int_equal(rc_allowed_signers_parse(&a, "x " PUB_ED25519 "\n"
						     "y " PUB_ECDSA "\n"
						     "z " PUB_RSA "\n", "f"),
			 0);
	assert_int_equal(a.n, 3);
	rc_ssh_fingerprint(fp, a.v[0].key, a.v[0].keylen);
	assert_string_equal(fp, FP_ED25519);
	rc_ssh_fingerprint(fp, a.v[1].key, a.v[1].keylen);
	assert_string_equal(fp, FP_ECDSA);
	rc_ssh_fingerprint(fp, a.v[2].key, a.v[2].keylen);
	assert_string_equal(fp, FP_RSA);
	rc_allowed_signers_release(&a);
}

static void ssh_match_list_patterns(void **state)
{
	RC_UNUSED(state);
	assert_true(rc_ssh_match_list("git", "git"));
	assert_true(rc_ssh_match_list("git", "file,git"));
	assert_true(rc_ssh_match_list("git", "g*"));
	assert_true(rc_ssh_match_list("git", "g?t"));
	assert_true(rc_ssh_match_list("alice@example.com", "*@example.com"));
	assert_false(rc_ssh_match_list("git", "file"));
	assert_false(rc_ssh_match_list("git", "gi"));
	assert_false(rc_ssh_match_list("git", "g?"));
	assert_false(rc_ssh_match_list("git", "*,!git"));
	assert_false(rc_ssh_match_list("git", ""));
}

static void ssh_time_parse_forms(void **state)
{
	RC_UNUSED(state);
	assert_int_equal(rc_ssh_time_parse("20200101Z"), 1577836800LL);
	assert_int_equal(rc_ssh_time_parse("202001010130Z"), 1577842200LL);
	assert_int_equal(rc_ssh_time_parse("20200101013005Z"), 1577842205LL);
	assert_true(rc_ssh_time_parse("20200101") > 0);
	assert_int_equal(rc_ssh_time_parse("2020010"), -1);
	assert_int_equal(rc_ssh_time_parse("20201301Z"), -1);
	assert_int_equal(rc_ssh_time_parse("2020010a"), -1);
	assert_int_equal(rc_ssh_time_parse(""), -1);
}

static rc_sshsig key_of(const char *armored)
{
	rc_sshsig s;

	assert_int_equal(rc_sshsig_parse(&s, armored, strlen(armored)), 0);
	return s;
}

static void allowed_signers_options(void **state)
{
	const char *text =
		"# team keys\n"
		"\n"
		"alice@example.com,*@ops.example.com " PUB_ED25519 " laptop\n"
		"bob@example.com namespaces=\"file,tag\" " PUB_ECDSA "\n"
		"carol@example.com valid-after=\"20200101Z\",valid-before=\"20210101Z\" " PUB_RSA "\n";
	rc_allowed_signers a;
	rc_sshsig ed = key_of(SIG_ED25519), ec = key_of(SIG_ECDSA),
		  rsa = key_of(SIG_RSA);
	const char *who;

	RC_UNUSED(state);
	assert_int_equal(rc_allowed_signers_parse(&a, text, "signers"), 0);
	assert_int_equal(a.n, 3);
	assert_int_equal(a.v[0].line, 3);
	assert_int_equal(rc_allowed_signers_check(&a, ed.key, ed.keylen, "git",
						  1600000000, &who),
			 0);
	assert_string_equal(who, "alice@example.com,*@ops.example.com");
	assert_int_equal(rc_allowed_signers_check(&a, ec.key, ec.keylen, "git",
						  1600000000, &who),
			 RC_EAUTH);
	assert_string_equal(rc_error_last()->message,
			    "signer bob@example.com is not allowed for "
			    "namespace git");
	assert_int_equal(rc_allowed_signers_check(&a, ec.key, ec.keylen, "tag",
						  1600000000, &who),
			 0);
	/* carol: 2020-01-01 .. 2021-01-01 */
	assert_int_equal(rc_allowed_signers_check(&a, rsa.key, rsa.keylen,
						  "git", 1600000000, &who),
			 0);
	assert_int_equal(rc_allowed_signers_check(&a, rsa.key, rsa.keylen,
						  "git", 1500000000, &who),
			 RC_EAUTH);
	assert_string_equal(rc_error_last()->message,
			    "signer carol@example.com is valid only after "
			    "2020-01-01 00:00:00 UTC");
	assert_int_equal(rc_allowed_signers_check(&a, rsa.key, rsa.keylen,
						  "git", 1700000000, &who),
			 RC_EAUTH);
	assert_string_equal(rc_error_last()->message,
			    "signer carol@example.com was valid only before "
			    "2021-01-01 00:00:00 UTC");
	rc_allowed_signers_release(&a);
	/* a key on no line */
	assert_int_equal(rc_allowed_signers_parse(&a, "alice " PUB_ED25519 "\n",
						  "signers"),
			 0);
	assert_int_equal(rc_allowed_signers_check(&a, ec.key, ec.keylen, "git",
						  0, &who),
			 RC_ENOTFOUND);
	rc_allowed_signers_release(&a);
	/* a second line for the same key may allow what the first refuses */
	assert_int_equal(rc_allowed_signers_parse(
				 &a,
				 "bob namespaces=\"file\" " PUB_ECDSA "\n"
				 "bob2 namespaces=\"g*\" " PUB_ECDSA "\n",
				 "signers"),
			 0);
	assert_int_equal(rc_allowed_signers_check(&a, ec.key, ec.keylen, "git",
						  0, &who),
			 0);
	assert_string_equal(who, "bob2");
	rc_allowed_signers_release(&a);
	/* cert-authority is parsed and refused */
	assert_int_equal(rc_allowed_signers_parse(
				 &a, "*@example.com cert-authority " PUB_ECDSA "\n",
				 "signers"),
			 0);
	assert_int_equal(rc_allowed_signers_check(&a, ec.key, ec.keylen, "git",
						  0, &who),
			 RC_EAUTH);
	assert_non_null(strstr(rc_error_last()->message, "cert-authority"));
	rc_allowed_signers_release(&a);
	rc_sshsig_release(&ed);
	rc_sshsig_release(&ec);
	rc_sshsig_release(&rsa);
}

static void allowed_signers_refusals(void **state)
{
	static const struct {
		const char *text, *message;
	} cases[] = {
		{"# ok\nalice\n", "signers:2: expected principals, then a key"},
		{"alice ssh-ed25519\n",
		 "signers:1: expected a key type and a base64 key"},
		{"alice ssh-ed25519 !!!!\n",
		 "signers:1: the key is not a ssh-ed25519 key in base64"},
		{"alice ssh-rsa " "AAAAC3NzaC1lZDI1NTE5AAAAIApkZ/ls5xfBCS+VzwS3AZnFZ2A53uY01ggWof9ENqnI\n",
		 "signers:1: the key is not a ssh-rsa key in base64"},
		{"alice valid-before=\"yesterday\" " PUB_ED25519 "\n",
		 "signers:1: 'yesterday' is not a time (YYYYMMDD[HHMM[SS]][Z])"},
		{"alice no-touch-required " PUB_ED25519 "\n",
		 "signers:1: unknown option 'no-touch-required'"},
	};
	rc_allowed_signers a;

	RC_UNUSED(state);
	for (size_t i = 0; i < RC_ARRAY_SIZE(cases); i++) {
		assert_int_equal(rc_allowed_signers_parse(&a, cases[i].text,
							  "signers"),
				 RC_EINVALID);
		assert_string_equal(rc_error_last()->message, cases[i].message);
		assert_int_equal(a.n, 0);
	}
}

int test_group_sshsig(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sshsig_verifies_each_key_type),
		cmocka_unit_test(sshsig_refuses_a_changed_message),
		cmocka_unit_test(sshsig_refuses_malformed_armor),
		cmocka_unit_test(ssh_fingerprint_is_ssh_keygens),
		cmocka_unit_test(ssh_match_list_patterns),
		cmocka_unit_test(ssh_time_parse_forms),
		cmocka_unit_test(allowed_signers_options),
		cmocka_unit_test(allowed_signers_refusals),
	};
	return cmocka_run_group_tests_name("sshsig", tests, NULL, NULL);
}
