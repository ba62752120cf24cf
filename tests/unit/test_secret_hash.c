/* Keyed hashes for secrets: schema/secrets.c's hash and the key file of
 * state/secret_key.c. */
#include "tests/unit/helpers.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "schema/secrets.h"
#include "state/secret_key.h"

#include <fcntl.h>
#include <sys/wait.h>

static const unsigned char key_a[32] = {
	0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
	16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

static char *read_text(const char *path)
{
	rc_buf b = RC_BUF_INIT;
	char chunk[256];
	ssize_t r;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	while ((r = read(fd, chunk, sizeof(chunk))) > 0)
		rc_buf_put(&b, chunk, (size_t)r);
	close(fd);
	return rc_buf_detach(&b);
}

static void hash_is_keyed(void **state)
{
	char a[RC_SECRET_HASH_LEN + 1], b[RC_SECRET_HASH_LEN + 1];
	char plain[RC_SHA256_DIGEST_LEN + 1];
	unsigned char key_b[32];

	RC_UNUSED(state);
	rc_secret_set_key(key_a);
	rc_secret_hash(a, "correct horse");
	/* HMAC-SHA-256 (RFC 2104) of the value under the key, as Python's
	 * hmac module computes it */
	assert_string_equal(a, "hmac-sha256:e864df1a8a6cf2551c64c7a3484bfe6e"
			       "157345fa1856b162659a6c7f2b6f090e");
	assert_string_equal(rc_secret_key_id(), "5b74c9b08f94945a");
	/* same value, same key: same hash */
	rc_secret_hash(b, "correct horse");
	assert_string_equal(a, b);
	/* never the plain SHA-256 that a guess could be checked against */
	rc_codec_sha256_digest(plain, "correct horse", 13);
	assert_null(strstr(a, plain + 7));
	/* another value */
	rc_secret_hash(b, "correct horse.");
	assert_string_not_equal(a, b);

	/* another key: another hash of the same value, another key id */
	memcpy(key_b, key_a, sizeof(key_b));
	key_b[31] ^= 1;
	rc_secret_set_key(key_b);
	rc_secret_hash(b, "correct horse");
	assert_string_not_equal(a, b);
	assert_string_not_equal(rc_secret_key_id(), "5b74c9b08f94945a");

	/* no key: a random one of this process, unequal to the real key's */
	rc_secret_clear_key();
	assert_null(rc_secret_key_id());
	rc_secret_hash(b, "correct horse");
	assert_int_equal(strncmp(b, "hmac-sha256:", 12), 0);
	assert_string_not_equal(a, b);
	rc_secret_hash(a, "correct horse");
	assert_string_equal(a, b);
	rc_secret_clear_key();
}

static void secret_object_carries_the_keyed_hash(void **state)
{
	char want[RC_SECRET_HASH_LEN + 1];
	json_t *o;

	RC_UNUSED(state);
	rc_secret_set_key(key_a);
	o = rc_secret_json_observed("env:DB_PASSWORD", "correct horse");
	rc_secret_hash(want, "correct horse");
	assert_string_equal(json_string_value(json_object_get(o, "$secret")),
			    want);
	assert_string_equal(json_string_value(json_object_get(o, "ref")),
			    "env:DB_PASSWORD");
	assert_int_equal(json_object_size(o), 2);
	json_decref(o);
	rc_secret_clear_key();
}

static void key_file_made_private_on_first_need(void **state)
{
	char *dir = tmpdir_new();
	rc_buf sd = RC_BUF_INIT, path = RC_BUF_INIT, hex = RC_BUF_INIT;
	unsigned char k1[32], k2[32];
	struct stat st;
	bool found = true;
	char *text;

	RC_UNUSED(state);
	unsetenv(RC_SECRET_KEY_ENV);
	rc_buf_printf(&sd, "%s/state", dir);
	rc_buf_printf(&path, "%s/%s", sd.ptr, RC_SECRET_KEY_FILE);
	/* not needed: nothing is made, not even the state directory */
	assert_int_equal(rc_state_secret_key(k1, sd.ptr, false, &found), 0);
	assert_false(found);
	assert_int_equal(stat(sd.ptr, &st), -1);

	assert_int_equal(rc_state_secret_key(k1, sd.ptr, true, &found), 0);
	assert_true(found);
	assert_int_equal(stat(path.ptr, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	text = read_text(path.ptr);
	rc_codec_hex_encode(&hex, k1, sizeof(k1));
	rc_buf_putc(&hex, '\n');
	assert_string_equal(text, hex.ptr);
	free(text);
	/* read again, not made again */
	assert_int_equal(rc_state_secret_key(k2, sd.ptr, true, &found), 0);
	assert_memory_equal(k1, k2, 32);
	assert_int_equal(rc_state_secret_key(k2, sd.ptr, false, &found), 0);
	assert_true(found);
	assert_memory_equal(k1, k2, 32);
	/* nothing but the key is left in the directory */
	unlink(path.ptr);
	assert_int_equal(rmdir(sd.ptr), 0);

	rc_buf_release(&sd);
	rc_buf_release(&path);
	rc_buf_release(&hex);
	tmpdir_remove(dir);
}

/* Processes that start at once end with one key. */
static void key_file_one_key_for_racing_processes(void **state)
{
	enum { N = 8 };
	char *dir = tmpdir_new();
	unsigned char keys[N][32];
	int fds[N][2];
	pid_t pids[N];

	RC_UNUSED(state);
	unsetenv(RC_SECRET_KEY_ENV);
	for (int i = 0; i < N; i++) {
		assert_int_equal(pipe(fds[i]), 0);
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			unsigned char k[32];
			bool found;

			if (rc_state_secret_key(k, dir, true, &found) < 0 ||
			    !found || write(fds[i][1], k, 32) != 32)
				_exit(1);
			_exit(0);
		}
		close(fds[i][1]);
	}
	for (int i = 0; i < N; i++) {
		int st;

		assert_int_equal(read(fds[i][0], keys[i], 32), 32);
		close(fds[i][0]);
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_int_equal(WEXITSTATUS(st), 0);
		assert_memory_equal(keys[0], keys[i], 32);
	}
	tmpdir_remove(dir);
}

static void key_file_from_the_variable(void **state)
{
	char *dir = tmpdir_new();
	rc_buf p = RC_BUF_INIT, sd = RC_BUF_INIT;
	unsigned char k[32];
	struct stat st;
	bool found;
	int fd;

	RC_UNUSED(state);
	rc_buf_printf(&sd, "%s/state", dir);
	rc_buf_printf(&p, "%s/mounted/key", dir);
	/* 64 hex digits and a newline, as `openssl rand -hex 32` writes */
	write_file(dir, "mounted/key", "000102030405060708090a0b0c0d0e0f"
					 "101112131415161718191a1b1c1d1e1f\n");
	chmod(p.ptr, 0400);
	setenv(RC_SECRET_KEY_ENV, p.ptr, 1);
	assert_int_equal(rc_state_secret_key(k, sd.ptr, true, &found), 0);
	assert_true(found);
	assert_memory_equal(k, key_a, 32);
	/* the state directory is left alone */
	assert_int_equal(stat(sd.ptr, &st), -1);

	/* 32 raw bytes */
	unlink(p.ptr);
	fd = open(p.ptr, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, key_a, 32), 32);
	close(fd);
	memset(k, 0, sizeof(k));
	assert_int_equal(rc_state_secret_key(k, sd.ptr, false, &found), 0);
	assert_true(found);
	assert_memory_equal(k, key_a, 32);

	/* not a key: an error that names the file, not what it holds */
	unlink(p.ptr);
	write_file(dir, "mounted/key", "hunter2-not-a-key\n");
	chmod(p.ptr, 0600);
	assert_int_equal(rc_state_secret_key(k, sd.ptr, true, &found),
			 RC_EINVALID);
	assert_false(found);
	assert_non_null(strstr(rc_error_last()->message, p.ptr));
	assert_non_null(strstr(rc_error_last()->message, RC_SECRET_KEY_ENV));
	assert_null(strstr(rc_error_last()->message, "hunter2"));

	/* a variable naming a missing file is an error, never a new key */
	unlink(p.ptr);
	assert_int_equal(rc_state_secret_key(k, sd.ptr, true, &found),
			 RC_ENOTFOUND);
	assert_false(found);
	assert_int_equal(stat(sd.ptr, &st), -1);

	unsetenv(RC_SECRET_KEY_ENV);
	rc_buf_release(&p);
	rc_buf_release(&sd);
	tmpdir_remove(dir);
}

static char *key_log(const char *path, int mode)
{
	unsigned char k[32];
	char *log = NULL;
	size_t len = 0;
	bool found;
	FILE *f = open_memstream(&log, &len);

	chmod(path, (mode_t)mode);
	rc_log_set_stream(f);
	assert_int_equal(rc_state_secret_key(k, "/nonexistent", false,
					     &found),
			 0);
	rc_log_set_stream(NULL);
	fclose(f);
	assert_true(found);
	return log;
}

static void key_file_readable_by_others_warns(void **state)
{
	char *dir = tmpdir_new(), *log;
	rc_buf p = RC_BUF_INIT;

	RC_UNUSED(state);
	rc_buf_printf(&p, "%s/key", dir);
	write_file(dir, "key", "000102030405060708090a0b0c0d0e0f"
			       "101112131415161718191a1b1c1d1e1f\n");
	setenv(RC_SECRET_KEY_ENV, p.ptr, 1);
	log = key_log(p.ptr, 0644);
	assert_non_null(strstr(log, "may be read by its group or by others "
				    "(mode 0644)"));
	assert_non_null(strstr(log, p.ptr));
	assert_null(strstr(log, "0a0b0c0d"));
	free(log);
	log = key_log(p.ptr, 0640);
	assert_non_null(strstr(log, "(mode 0640)"));
	free(log);
	/* private: silent */
	log = key_log(p.ptr, 0600);
	assert_string_equal(log, "");
	free(log);
	unsetenv(RC_SECRET_KEY_ENV);
	rc_buf_release(&p);
	tmpdir_remove(dir);
}

int test_group_secret_hash(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hash_is_keyed),
		cmocka_unit_test(secret_object_carries_the_keyed_hash),
		cmocka_unit_test(key_file_made_private_on_first_need),
		cmocka_unit_test(key_file_one_key_for_racing_processes),
		cmocka_unit_test(key_file_from_the_variable),
		cmocka_unit_test(key_file_readable_by_others_warns),
	};
	return cmocka_run_group_tests_name("secret_hash", tests, NULL, NULL);
}
