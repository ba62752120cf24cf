/* Encrypted secrets at run time (schema/secrets.c): {encrypted:} values
 * and age files as {file:} decrypted with the process's identities
 * (RECONCILE_AGE_KEY here), registered with the redactor, named in
 * bodies by their reference; and the errors when no key opens them. */
#include "tests/unit/helpers.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "schema/age.h"
#include "schema/secrets.h"
#include "drivers/ecs_secrets.h"

static char *identity, *recipient;

/* The age file of value to recipient r (armored or binary), new. */
static rc_buf encrypt_to(const char *r, const char *value, bool armored)
{
	rc_age_recipient_list rs = {0};
	rc_age_recipient *rec = NULL;
	rc_buf out = RC_BUF_INIT;

	assert_int_equal(rc_age_recipient_parse(&rec, r), 0);
	rc_age_recipient_list_add(&rs, rec);
	assert_int_equal(rc_age_encrypt(&out, value, strlen(value), &rs,
					armored ? RC_AGE_ARMOR : 0),
			 0);
	rc_age_recipient_list_release(&rs);
	return out;
}

static int setup(void **state)
{
	RC_UNUSED(state);
	if (rc_age_keygen(&identity, &recipient) < 0)
		return -1;
	/* loaded once per process: set before the first decryption */
	setenv("RECONCILE_AGE_KEY", identity, 1);
	unsetenv("RECONCILE_AGE_SSH_KEY");
	return 0;
}

static int teardown(void **state)
{
	RC_UNUSED(state);
	unsetenv("RECONCILE_AGE_KEY");
	free(identity);
	free(recipient);
	return 0;
}

static void detects_age_files(void **state)
{
	rc_buf armored = encrypt_to(recipient, "v", true);
	rc_buf binary = encrypt_to(recipient, "v", false);
	rc_buf padded = RC_BUF_INIT;

	RC_UNUSED(state);
	assert_true(rc_secret_is_age(armored.ptr, armored.len));
	assert_true(rc_secret_is_age(binary.ptr, binary.len));
	rc_buf_printf(&padded, " \r\n\t%s", armored.ptr);
	assert_true(rc_secret_is_age(padded.ptr, padded.len));
	assert_false(rc_secret_is_age("hunter2\n", 8));
	assert_false(rc_secret_is_age("age-encryption.org/v1", 21));
	assert_false(rc_secret_is_age("", 0));
	rc_buf_release(&armored);
	rc_buf_release(&binary);
	rc_buf_release(&padded);
}

static void inline_value_decrypts_and_is_redacted(void **state)
{
	rc_buf ct = encrypt_to(recipient, "inline-secret-value\n", true);
	rc_secret s = {(char *)(uintptr_t)"DB", RC_SECRET_AGE,
		       (char *)(uintptr_t)"DB", {"reconcile.yaml", 7, 9},
		       ct.ptr, false};
	rc_buf line = RC_BUF_INIT;
	char *v = NULL;
	json_t *o;

	RC_UNUSED(state);
	rc_secret_clear();
	assert_int_equal(rc_secret_value(&v, &s, "."), 0);
	/* the trailing newline is not part of it, as for a file */
	assert_string_equal(v, "inline-secret-value");
	rc_buf_puts(&line, "password=inline-secret-value;");
	rc_redact(&line);
	assert_string_equal(line.ptr, "password=(sensitive);");
	o = rc_secret_json(&s, v);
	assert_string_equal(json_string_value(json_object_get(o, "ref")),
			    "encrypted:DB");
	assert_non_null(strstr(json_string_value(json_object_get(o, "$secret")),
			       RC_SECRET_HASH_PREFIX));
	explicit_bzero(v, strlen(v));
	free(v);
	json_decref(o);
	rc_buf_release(&line);
	rc_buf_release(&ct);
}

static void resolve_finds_encrypted_and_age_files(void **state)
{
	char *dir = tmpdir_new();
	rc_buf ct = encrypt_to(recipient, "inline-two", true);
	rc_buf bin = encrypt_to(recipient, "binary-file-value", false);
	rc_buf path = RC_BUF_INIT;
	rc_secret secrets[2] = {
		{(char *)(uintptr_t)"A", RC_SECRET_AGE, (char *)(uintptr_t)"A",
		 {0}, ct.ptr, false},
		{(char *)(uintptr_t)"B", RC_SECRET_FILE,
		 (char *)(uintptr_t)"b.age", {0}, NULL, true}};
	rc_env env = {0};
	json_t *ref;
	char *v = NULL;
	FILE *f;

	RC_UNUSED(state);
	rc_buf_printf(&path, "%s/b.age", dir);
	f = fopen(path.ptr, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(bin.ptr, 1, bin.len, f), bin.len);
	fclose(f);
	env.name = (char *)(uintptr_t)"dev";
	env.secrets = secrets;
	env.nsecrets = 2;

	ref = json_pack("{s:s}", "ref", "encrypted:A");
	assert_int_equal(rc_secret_resolve(&v, ref, &env, dir), 0);
	assert_string_equal(v, "inline-two");
	free(v);
	json_decref(ref);
	ref = json_pack("{s:s}", "ref", "file:b.age");
	assert_int_equal(rc_secret_resolve(&v, ref, &env, dir), 0);
	assert_string_equal(v, "binary-file-value");
	free(v);
	json_decref(ref);
	/* a name that is not an inline value's */
	ref = json_pack("{s:s}", "ref", "encrypted:B");
	assert_int_equal(rc_secret_resolve(&v, ref, &env, dir), RC_ENOTFOUND);
	rc_error_clear();
	json_decref(ref);

	rc_buf_release(&path);
	rc_buf_release(&ct);
	rc_buf_release(&bin);
	tmpdir_remove(dir);
}

static void another_key_is_a_clear_error(void **state)
{
	char *other_id = NULL, *other_r = NULL;
	rc_buf ct;
	rc_secret s = {(char *)(uintptr_t)"DB", RC_SECRET_AGE,
		       (char *)(uintptr_t)"DB", {"reconcile.yaml", 7, 9},
		       NULL, false};
	const char *msg;
	char *v = NULL;

	RC_UNUSED(state);
	assert_int_equal(rc_age_keygen(&other_id, &other_r), 0);
	ct = encrypt_to(other_r, "not-for-this-key", true);
	s.ciphertext = ct.ptr;
	assert_int_equal(rc_secret_value(&v, &s, "."), RC_EAUTH);
	assert_null(v);
	msg = rc_error_last()->message;
	assert_non_null(strstr(msg, "secret 'DB' (reconcile.yaml:7:9): "
				    "cannot decrypt: no identity matched: "
				    "the file is encrypted to 1 recipient "
				    "(X25519)"));
	assert_non_null(strstr(msg, "RECONCILE_AGE_KEY (set)"));
	assert_non_null(strstr(msg, "RECONCILE_AGE_SSH_KEY (not set)"));
	assert_null(strstr(msg, "not-for-this-key"));
	assert_null(strstr(msg, identity));
	rc_error_clear();
	free(other_id);
	free(other_r);
	rc_buf_release(&ct);
}

static void a_nul_byte_is_refused(void **state)
{
	rc_age_recipient_list rs = {0};
	rc_age_recipient *rec = NULL;
	rc_buf ct = RC_BUF_INIT;
	rc_secret s = {(char *)(uintptr_t)"N", RC_SECRET_AGE,
		       (char *)(uintptr_t)"N", {0}, NULL, false};
	char *v = NULL;

	RC_UNUSED(state);
	assert_int_equal(rc_age_recipient_parse(&rec, recipient), 0);
	rc_age_recipient_list_add(&rs, rec);
	assert_int_equal(rc_age_encrypt(&ct, "a\0b", 3, &rs, RC_AGE_ARMOR), 0);
	s.ciphertext = ct.ptr;
	assert_int_equal(rc_secret_value(&v, &s, "."), RC_EINVALID);
	assert_null(v);
	assert_non_null(strstr(rc_error_last()->message, "NUL byte"));
	rc_error_clear();
	rc_age_recipient_list_release(&rs);
	rc_buf_release(&ct);
}

/* ECS stores an encrypted value in Secrets Manager like the other kinds:
 * a secret resource holding its keyed hash under its reference. */
static void ecs_stores_encrypted_values(void **state)
{
	rc_buf ct = encrypt_to(recipient, "ecs-encrypted-value", true);
	rc_secret s = {(char *)(uintptr_t)"DB", RC_SECRET_AGE,
		       (char *)(uintptr_t)"DB", {"reconcile.yaml", 3, 5},
		       ct.ptr, false};
	rc_env env = {0};
	rc_resource_set set = {0};
	rc_resource *r;
	json_t *want;

	RC_UNUSED(state);
	env.name = (char *)(uintptr_t)"dev";
	env.secrets = &s;
	env.nsecrets = 1;
	assert_int_equal(rc_ecs_secrets_expand(&env, "shop", ".", &set), 0);
	r = rc_resource_set_find(&set, "dev/secret/DB");
	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(r->body, "name")),
			    "reconcile/shop/dev/DB");
	want = rc_secret_json(&s, "ecs-encrypted-value");
	assert_true(json_equal(json_object_get(r->body, "value"), want));
	json_decref(want);
	rc_resource_set_release(&set);
	rc_buf_release(&ct);
}

int test_group_secret_age(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(detects_age_files),
		cmocka_unit_test(inline_value_decrypts_and_is_redacted),
		cmocka_unit_test(resolve_finds_encrypted_and_age_files),
		cmocka_unit_test(another_key_is_a_clear_error),
		cmocka_unit_test(a_nul_byte_is_refused),
		cmocka_unit_test(ecs_stores_encrypted_values),
	};
	return cmocka_run_group_tests_name("secret_age", tests, setup, teardown);
}
