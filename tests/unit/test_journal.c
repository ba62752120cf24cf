#include "tests/unit/helpers.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "state/internal.h"
#include "state/journal.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

/* The whole file (new string; its length in *len). */
static char *slurp(const char *path, size_t *len)
{
	rc_buf b = RC_BUF_INIT;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(rc_state_read_fd(&b, fd, path, (size_t)1 << 30), 0);
	close(fd);
	*len = b.len;
	return rc_buf_detach(&b);
}

static bool contains(const char *data, size_t len, const char *s)
{
	size_t n = strlen(s), i;

	for (i = 0; i + n <= len; i++)
		if (!memcmp(data + i, s, n))
			return true;
	return false;
}

static void spit(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(rc_state_write_all(fd, data, len), 0);
	close(fd);
}

/* Byte offsets of the starts of the lines of data (at most max). */
static size_t line_starts(const char *data, size_t len, size_t *starts,
			  size_t max)
{
	size_t n = 0, i;

	for (i = 0; i < len && n < max; i++)
		if (i == 0 || data[i - 1] == '\n')
			starts[n++] = i;
	return n;
}

static json_t *rec(const char *type, const char *action, const char *extra)
{
	json_t *r = json_pack("{s:s, s:s}", "type", type, "action", action);

	if (extra)
		json_object_set_new(r, "note", json_string(extra));
	return r;
}

static void append_new(rc_journal *j, json_t *r)
{
	assert_int_equal(rc_journal_append(j, r), 0);
	json_decref(r);
}

/* A journal of three records in a new directory; *path is its file. */
static char *three_records(char **path)
{
	char *dir = tmpdir_new();
	rc_journal *j;

	assert_int_equal(rc_journal_create(&j, dir, "r3"), 0);
	append_new(j, rec("intent", "a1", "first"));
	append_new(j, rec("outcome", "a1", "second, a bit longer"));
	append_new(j, rec("intent", "a2", "third"));
	*path = rc_strdup(rc_journal_path(j));
	rc_journal_close(j);
	return dir;
}

static void journal_round_trip(void **state)
{
	char *dir = tmpdir_new(), *path, *data;
	rc_journal *j;
	rc_journal_contents c;
	json_t *r;
	size_t len, i;
	struct timespec ts;

	RC_UNUSED(state);
	assert_int_equal(rc_journal_create(&j, dir, "run-1"), 0);
	assert_string_equal(rc_journal_run_id(j), "run-1");
	path = rc_strdup(rc_journal_path(j));
	assert_non_null(strstr(path, "/runs/run-1.journal"));
	assert_int_equal(rc_journal_seq(j), 0);

	r = json_pack("{s:s, s:s, s:[s, s], s:s}", "type", "run-start", "run",
		      "run-1", "environments", "staging", "prod", "text",
		      "line\nbreak \"quoted\" \xc3\xa9");
	assert_int_equal(rc_journal_append(j, r), 0);
	/* borrowed, not modified */
	assert_null(json_object_get(r, "seq"));
	assert_null(json_object_get(r, "time"));
	json_decref(r);
	append_new(j, rec("intent", "a1", NULL));
	r = json_pack("{s:s, s:s, s:s, s:s}", "type", "outcome", "action", "a1",
		      "status", "ok", "time", "2026-11-22T10:00:00Z");
	append_new(j, r);
	assert_int_equal(rc_journal_seq(j), 3);
	rc_journal_close(j);

	assert_int_equal(rc_journal_read(&c, path), 0);
	assert_false(c.torn);
	assert_int_equal(c.n, 3);
	for (i = 0; i < c.n; i++) {
		json_t *r0 = c.records[i];

		assert_int_equal(json_integer_value(json_object_get(r0, "seq")),
				 i + 1);
		assert_true(rc_time_parse(
			json_string_value(json_object_get(r0, "time")), &ts));
	}
	assert_string_equal(
		json_string_value(json_object_get(c.records[0], "text")),
		"line\nbreak \"quoted\" \xc3\xa9");
	assert_int_equal(json_array_size(json_object_get(c.records[0],
							 "environments")),
			 2);
	assert_string_equal(
		json_string_value(json_object_get(c.records[1], "action")),
		"a1");
	/* a time the record brings is kept */
	assert_string_equal(
		json_string_value(json_object_get(c.records[2], "time")),
		"2026-11-22T10:00:00Z");
	rc_journal_contents_release(&c);

	/* the framing, checked independently: one line per record,
	 * "<first 16 hex of SHA-256("<len> <json>")> <len> <json>" */
	data = slurp(path, &len);
	{
		size_t starts[8], n = line_starts(data, len, starts, 8);

		assert_int_equal(n, 3);
		assert_int_equal(data[len - 1], '\n');
		for (i = 0; i < n; i++) {
			const char *line = data + starts[i];
			size_t end = i + 1 < n ? starts[i + 1] - 1 : len - 1;
			size_t body = end - starts[i] - 17;
			char hex[RC_SHA256_HEX_LEN + 1];
			unsigned long jlen;
			char *sp;

			rc_codec_sha256_hex(hex, line + 17, body);
			assert_memory_equal(line, hex, 16);
			assert_int_equal(line[16], ' ');
			jlen = strtoul(line + 17, &sp, 10);
			assert_int_equal(*sp, ' ');
			assert_int_equal(jlen, end - (size_t)(sp + 1 - data));
			assert_int_equal(sp[1], '{');
		}
	}
	free(data);
	free(path);
	tmpdir_remove(dir);
}

static void journal_create_rules(void **state)
{
	char *dir = tmpdir_new();
	rc_journal *j, *k;
	const char *id;
	size_t i;
	struct stat st;
	static const char *bad[] = {"", ".", "..", "../x", "a/b", ".hidden",
				    "a b"};

	RC_UNUSED(state);
	assert_int_equal(rc_journal_create(&j, dir, NULL), 0);
	id = rc_journal_run_id(j);
	assert_int_equal(strlen(id), 36);
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(id[i], '-');
		else
			assert_true(isxdigit((unsigned char)id[i]) &&
				    !isupper((unsigned char)id[i]));
	}
	assert_int_equal(stat(rc_journal_path(j), &st), 0);
	assert_int_equal(st.st_size, 0);
	/* two runs never share a journal */
	assert_int_equal(rc_journal_create(&k, dir, id), RC_EEXISTS);
	assert_null(k);
	rc_journal_close(j);
	for (i = 0; i < RC_ARRAY_SIZE(bad); i++)
		assert_int_equal(rc_journal_create(&k, dir, bad[i]),
				 RC_EINVALID);
	tmpdir_remove(dir);
}

static void journal_never_holds_a_secret(void **state)
{
	static const char *secrets[] = {"hunter2-S3cret", "pa\"ss\\wo/rd",
					"4242424242", "1,2"};
	/* as they would look in JSON text too */
	static const char *forms[] = {"hunter2", "pa\"ss", "pa\\\"ss",
				      "4242424242", "1,2"};
	char *dir = tmpdir_new(), *data, *path;
	rc_journal *j;
	rc_journal_contents c;
	json_t *r, *desired;
	size_t len, i;
	struct stat st;
	off_t size;

	RC_UNUSED(state);
	for (i = 0; i < RC_ARRAY_SIZE(secrets); i++)
		rc_secret_register(secrets[i]);
	assert_int_equal(rc_journal_create(&j, dir, "sec"), 0);
	path = rc_strdup(rc_journal_path(j));
	r = json_pack("{s:s, s:s, s:{s:s, s:[s, I, f]}, s:s}", "type",
		      "intent", "action", "set DB_PASSWORD=hunter2-S3cret",
		      "desired", "env", "x pa\"ss\\wo/rd y", "list",
		      "hunter2-S3cret", (json_int_t)4242424242LL, 1.5,
		      "hunter2-S3cret", "as a key");
	assert_int_equal(rc_journal_append(j, r), 0);
	json_decref(r);
	/* a secret that spans JSON syntax cannot be redacted in place: the
	 * record is refused and nothing is written */
	assert_int_equal(stat(path, &st), 0);
	size = st.st_size;
	r = json_pack("{s:s, s:[i, i]}", "type", "intent", "ports", 1, 2);
	assert_int_equal(rc_journal_append(j, r), RC_EINVALID);
	json_decref(r);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, size);
	rc_journal_close(j);

	data = slurp(path, &len);
	assert_true(len > 0);
	for (i = 0; i < RC_ARRAY_SIZE(forms); i++)
		assert_false(contains(data, len, forms[i]));
	assert_true(contains(data, len, "(sensitive)"));
	free(data);

	/* and what is written still reads back */
	assert_int_equal(rc_journal_read(&c, path), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(
		json_string_value(json_object_get(c.records[0], "action")),
		"set DB_PASSWORD=(sensitive)");
	desired = json_object_get(c.records[0], "desired");
	assert_string_equal(json_string_value(json_object_get(desired, "env")),
			    "x (sensitive) y");
	assert_string_equal(json_string_value(json_array_get(
				    json_object_get(desired, "list"), 1)),
			    "(sensitive)");
	assert_string_equal(
		json_string_value(json_object_get(c.records[0], "(sensitive)")),
		"as a key");
	rc_journal_contents_release(&c);
	rc_secret_clear();
	free(path);
	tmpdir_remove(dir);
}

static void check_first_records(const rc_journal_contents *c, size_t n)
{
	static const char *actions[] = {"a1", "a1", "a2"};
	static const char *notes[] = {"first", "second, a bit longer", "third"};
	size_t i;

	assert_int_equal(c->n, n);
	for (i = 0; i < n; i++) {
		json_t *r = c->records[i];

		assert_int_equal(json_integer_value(json_object_get(r, "seq")),
				 i + 1);
		assert_string_equal(json_string_value(json_object_get(
					    r, "action")),
				    actions[i]);
		assert_string_equal(json_string_value(json_object_get(
					    r, "note")),
				    notes[i]);
	}
}

static void journal_torn_tail_is_tolerated(void **state)
{
	char *path, *dir = three_records(&path), *data, *copy;
	rc_journal_contents c;
	size_t len, starts[4] = {0}, last, cut;

	RC_UNUSED(state);
	data = slurp(path, &len);
	assert_int_equal(line_starts(data, len, starts, 4), 3);
	last = starts[2];

	/* the process died inside the last write(): every prefix */
	for (cut = last + 1; cut < len; cut++) {
		spit(path, data, cut);
		assert_int_equal(rc_journal_read(&c, path), 0);
		assert_true(c.torn);
		assert_int_equal(c.torn_offset, last);
		check_first_records(&c, 2);
		rc_journal_contents_release(&c);
	}
	/* cut between records: nothing torn */
	spit(path, data, last);
	assert_int_equal(rc_journal_read(&c, path), 0);
	assert_false(c.torn);
	assert_int_equal(c.torn_offset, -1);
	check_first_records(&c, 2);
	rc_journal_contents_release(&c);

	/* power loss: the last line's '\n' is there, its bytes are not */
	copy = rc_malloc(len + 4096);
	memcpy(copy, data, len);
	memset(copy + last, 0, len - 1 - last);
	spit(path, copy, len);
	assert_int_equal(rc_journal_read(&c, path), 0);
	assert_true(c.torn);
	assert_int_equal(c.torn_offset, last);
	check_first_records(&c, 2);
	rc_journal_contents_release(&c);

	/* ... or one of them is wrong */
	memcpy(copy, data, len);
	copy[len - 3] ^= 0x01;
	spit(path, copy, len);
	assert_int_equal(rc_journal_read(&c, path), 0);
	assert_true(c.torn);
	check_first_records(&c, 2);
	rc_journal_contents_release(&c);

	/* ... or the file grew by zeros after the last whole record */
	memcpy(copy, data, len);
	memset(copy + len, 0, 4096);
	spit(path, copy, len + 4096);
	assert_int_equal(rc_journal_read(&c, path), 0);
	assert_true(c.torn);
	assert_int_equal(c.torn_offset, len);
	check_first_records(&c, 3);
	rc_journal_contents_release(&c);

	/* an empty journal (a run that died before its first record) */
	spit(path, data, 0);
	assert_int_equal(rc_journal_read(&c, path), 0);
	assert_false(c.torn);
	assert_int_equal(c.n, 0);
	rc_journal_contents_release(&c);

	free(copy);
	free(data);
	free(path);
	tmpdir_remove(dir);
}

static void expect_corrupt_at(const char *path, size_t offset,
			      size_t records_before)
{
	rc_journal_contents c;
	rc_buf want = RC_BUF_INIT;

	rc_error_clear();
	assert_int_equal(rc_journal_read(&c, path), RC_EINVALID);
	rc_buf_printf(&want, "%s: corrupt record at byte offset %zu: ", path,
		      offset);
	assert_non_null(rc_error_last());
	if (strncmp(rc_error_last()->message, want.ptr, want.len))
		fail_msg("expected '%s...', got '%s'", want.ptr,
			 rc_error_last()->message);
	assert_false(c.torn);
	check_first_records(&c, records_before);
	rc_journal_contents_release(&c);
	rc_buf_release(&want);
}

static void journal_corruption_is_reported(void **state)
{
	char *path, *dir = three_records(&path), *data, *copy;
	size_t len, starts[4] = {0}, i;

	RC_UNUSED(state);
	data = slurp(path, &len);
	assert_int_equal(line_starts(data, len, starts, 4), 3);
	copy = rc_malloc(len);

	/* any byte of the middle record changed, its '\n' included */
	for (i = starts[1]; i < starts[2]; i++) {
		memcpy(copy, data, len);
		copy[i] ^= 0x01;
		spit(path, copy, len);
		expect_corrupt_at(path, starts[1], 1);
	}
	/* the first record */
	memcpy(copy, data, len);
	copy[starts[0] + 30] ^= 0x20;
	spit(path, copy, len);
	expect_corrupt_at(path, 0, 0);
	/* the last line longer than its length field says: not a torn
	 * write (no append writes more than it announces) */
	memcpy(copy, data, len);
	copy[len - 1] = ' ';
	spit(path, copy, len);
	expect_corrupt_at(path, starts[2], 2);

	free(copy);
	free(data);
	free(path);
	tmpdir_remove(dir);
}

static void journal_missing_and_bad_input(void **state)
{
	char *dir = tmpdir_new();
	rc_buf p = RC_BUF_INIT;
	rc_journal_contents c;
	rc_journal *j;
	json_t *a = json_array();

	RC_UNUSED(state);
	rc_buf_printf(&p, "%s/runs/nope.journal", dir);
	assert_int_equal(rc_journal_read(&c, p.ptr), RC_ENOTFOUND);
	assert_non_null(strstr(rc_error_last()->message, p.ptr));
	assert_int_equal(c.n, 0);
	rc_journal_contents_release(&c);

	assert_int_equal(rc_journal_create(&j, dir, "x"), 0);
	assert_int_equal(rc_journal_append(j, a), RC_EINVALID);
	assert_int_equal(rc_journal_seq(j), 0);
	rc_journal_close(j);
	rc_journal_close(NULL);
	json_decref(a);
	rc_buf_release(&p);
	tmpdir_remove(dir);
}

/* Record n of the crash test: its seq, and "n" and a pad that derive from
 * n. Most are small; one in four is a few hundred KB, long enough to
 * write that a kill can land inside its write(). */
static size_t pad_len(long long n)
{
	if (n % 4 == 0)
		return 200000 + (size_t)((n * 7919) % 100000);
	return (size_t)((n * 7919) % 12000);
}

static char pad_char(long long n)
{
	return (char)('a' + n % 26);
}

static _Noreturn void crash_child(const char *dir, bool sync)
{
	rc_buf pad = RC_BUF_INIT;
	rc_journal *j;
	long long n;

	alarm(60); /* never outlive a failed test */
	if (rc_journal_create(&j, dir, "crash") < 0)
		_exit(3);
	rc_journal_set_sync(j, sync);
	for (n = 1; n < 10000000; n++) {
		json_t *r;

		rc_buf_clear(&pad);
		rc_buf_putn(&pad, pad_char(n), pad_len(n));
		r = json_pack("{s:s, s:I, s:s}", "type", "intent", "n",
			      (json_int_t)n, "pad", pad.ptr);
		if (!r || rc_journal_append(j, r) < 0)
			_exit(4);
		json_decref(r);
	}
	_exit(0);
}

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void journal_survives_kill9(void **state)
{
	const char *env = getenv("RC_CRASH_SEED");
	uint64_t seed, rng;
	size_t total = 0, nonempty = 0, torn = 0;
	int t, trials = 40;

	RC_UNUSED(state);
	if (getenv("RC_CRASH_TRIALS"))
		trials = (int)strtol(getenv("RC_CRASH_TRIALS"), NULL, 10);
	seed = env ? strtoull(env, NULL, 10)
		   : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	rng = seed ? seed : 1;
	print_message("kill -9 test: seed %llu (RC_CRASH_SEED=%llu repeats "
		      "it; RC_CRASH_TRIALS sets the number of trials)\n",
		      (unsigned long long)seed, (unsigned long long)seed);
	for (t = 0; t < trials; t++) {
		char *dir = tmpdir_new();
		bool sync = t % 2 == 0;
		long delay_us = (long)(next_rand(&rng) % 40000);
		struct timespec ts = {0, delay_us * 1000L};
		rc_buf path = RC_BUF_INIT;
		rc_journal_contents c;
		pid_t pid;
		int st, r;
		size_t i;

		fflush(NULL);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			crash_child(dir, sync);
		nanosleep(&ts, NULL);
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		/* killed, not failed */
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

		rc_buf_printf(&path, "%s/runs/crash.journal", dir);
		r = rc_journal_read(&c, path.ptr);
		if (r == RC_ENOTFOUND) {
			/* killed before the journal was created */
			rc_journal_contents_release(&c);
			rc_buf_release(&path);
			tmpdir_remove(dir);
			continue;
		}
		if (r != 0)
			fail_msg("trial %d (delay %ld us, seed %llu): %s", t,
				 delay_us, (unsigned long long)seed,
				 rc_error_last()->message);
		for (i = 0; i < c.n; i++) {
			json_t *rec = c.records[i];
			long long n = (long long)i + 1;
			const char *pad =
				json_string_value(json_object_get(rec, "pad"));

			assert_int_equal(json_integer_value(json_object_get(
						 rec, "seq")),
					 n);
			assert_int_equal(json_integer_value(json_object_get(
						 rec, "n")),
					 n);
			assert_non_null(pad);
			assert_int_equal(strlen(pad), pad_len(n));
			if (pad_len(n))
				assert_int_equal(pad[0], pad_char(n));
		}
		total += c.n;
		nonempty += c.n > 0;
		torn += c.torn;
		rc_journal_contents_release(&c);
		rc_buf_release(&path);
		tmpdir_remove(dir);
	}
	print_message("kill -9 test: %d trials, %zu with records, %zu records, "
		      "%zu torn tails\n",
		      trials, nonempty, total, torn);
	assert_true(nonempty > 0);
}

int test_group_journal(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(journal_round_trip),
		cmocka_unit_test(journal_create_rules),
		cmocka_unit_test(journal_never_holds_a_secret),
		cmocka_unit_test(journal_torn_tail_is_tolerated),
		cmocka_unit_test(journal_corruption_is_reported),
		cmocka_unit_test(journal_missing_and_bad_input),
		cmocka_unit_test(journal_survives_kill9),
	};
	return cmocka_run_group_tests_name("journal", tests, NULL, NULL);
}
