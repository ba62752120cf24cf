#include "tests/unit/helpers.h"
#include "reconciler/base/error.h"
#include "reconciler/controller/lease.h"
#include "reconciler/controller/shard.h"

/* The published FNV-1a 64 vectors: the formula the docs give. */
static void shard_hash_is_fnv1a64(void **state)
{
	RC_UNUSED(state);
	assert_true(rc_shard_hash("") == 0xcbf29ce484222325ULL);
	assert_true(rc_shard_hash("a") == 0xaf63dc4c8601ec8cULL);
	assert_true(rc_shard_hash("foobar") == 0x85944171f73967e8ULL);
}

/* The owner depends on the name and N only: the same every time, and
 * the same however many other environments there are. */
static void shard_owner_is_stable(void **state)
{
	RC_UNUSED(state);
	/* fixed answers: a change here moves environments between shards */
	assert_int_equal(rc_shard_of("production", 4),
			 (int)(rc_shard_hash("production") % 4));
	assert_int_equal(rc_shard_of("production", 4), 2);
	assert_int_equal(rc_shard_of("staging", 4), 2);
	assert_int_equal(rc_shard_of("pr-1234", 3), 2);
	assert_int_equal(rc_shard_of("anything", 1), 0);
	assert_int_equal(rc_shard_of("anything", 0), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(rc_shard_of("staging", 4), 2);
}

/* Exactly one shard owns each name. */
static void shard_exactly_one_owner(void **state)
{
	char name[32];

	RC_UNUSED(state);
	for (int i = 0; i < 200; i++) {
		int owners = 0;

		snprintf(name, sizeof(name), "env-%d", i);
		for (int k = 0; k < 5; k++) {
			rc_shard s = {5, k};

			owners += rc_shard_owns(&s, name);
		}
		assert_int_equal(owners, 1);
	}
	assert_true(rc_shard_owns(NULL, "x"));
	assert_true(rc_shard_owns(&(rc_shard){1, 0}, "x"));
}

/* 1,000 names of the shapes fleets use, split 2, 3, 4 and 8 ways: every
 * shard within 12% of the even share (a random split of 1,000 has a
 * standard deviation of 3 to 9%; the worst seen is printed). */
static void shard_is_balanced(void **state)
{
	static const int ns[] = {2, 3, 4, 8};
	static const char *const fmt[] = {"env-%d", "pr-%d", "customer-%04d",
					  "shop-%d-staging"};
	char name[48];

	RC_UNUSED(state);
	for (size_t f = 0; f < RC_ARRAY_SIZE(fmt); f++) {
		for (size_t j = 0; j < RC_ARRAY_SIZE(ns); j++) {
			int n = ns[j], count[8] = {0};
			double share = 1000.0 / n, worst = 0;

			for (int i = 0; i < 1000; i++) {
				snprintf(name, sizeof(name), fmt[f], i);
				count[rc_shard_of(name, n)]++;
			}
			for (int k = 0; k < n; k++) {
				double dev = (count[k] - share) / share;

				if (dev < 0)
					dev = -dev;
				if (dev > worst)
					worst = dev;
			}
			printf("# shard balance %-16s N=%d worst %.1f%%\n",
			       fmt[f], n, worst * 100);
			assert_true(worst <= 0.12);
		}
	}
}

static void shard_ordinal_from_hostname(void **state)
{
	int k = -1;

	RC_UNUSED(state);
	assert_int_equal(rc_shard_ordinal("reconcile-0", &k), 0);
	assert_int_equal(k, 0);
	assert_int_equal(rc_shard_ordinal("reconcile-controller-12", &k), 0);
	assert_int_equal(k, 12);
	assert_int_equal(rc_shard_ordinal("reconcile", &k), RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message,
			       "'reconcile': it does not end in a "
			       "StatefulSet ordinal"));
	assert_int_equal(rc_shard_ordinal("reconcile-", &k), RC_EINVALID);
	assert_int_equal(rc_shard_ordinal("reconcile-7f9c4", &k),
			 RC_EINVALID);
	assert_int_equal(rc_shard_ordinal("reconcile-01", &k), RC_EINVALID);
	assert_int_equal(rc_shard_ordinal("reconcile-1234567", &k),
			 RC_EINVALID);
}

static void shard_resolve_flags(void **state)
{
	rc_shard s;

	RC_UNUSED(state);
	assert_int_equal(rc_shard_resolve(&s, 4, 3, NULL), 0);
	assert_int_equal(s.count, 4);
	assert_int_equal(s.index, 3);
	assert_int_equal(rc_shard_resolve(&s, 4, -1, "reconcile-2"), 0);
	assert_int_equal(s.index, 2);
	assert_int_equal(rc_shard_resolve(&s, 4, 4, NULL), RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message,
			       "--shard 4: must be below --shards 4"));
	assert_int_equal(rc_shard_resolve(&s, 2, -1, "reconcile-5"),
			 RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message,
			       "ordinal 5 of 'reconcile-5' is not below "
			       "--shards 2"));
	assert_int_equal(rc_shard_resolve(&s, 0, 0, NULL), RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message, "--shards 0"));
	assert_int_equal(rc_shard_resolve(&s, 1, -1, "no-ordinal"),
			 RC_EINVALID);
}

static void lease_names(void **state)
{
	char *ns, *name;

	RC_UNUSED(state);
	assert_int_equal(rc_lease_parse_name(NULL, -1, &ns, &name), 0);
	assert_null(ns);
	assert_string_equal(name, "reconcile");
	free(name);
	assert_int_equal(rc_lease_parse_name("ops/ctl", 3, &ns, &name), 0);
	assert_string_equal(ns, "ops");
	assert_string_equal(name, "ctl-shard-3");
	free(ns);
	free(name);
	assert_int_equal(rc_lease_parse_name(NULL, 0, &ns, &name), 0);
	assert_string_equal(name, "reconcile-shard-0");
	free(name);
	assert_int_equal(rc_lease_parse_name("Ops/ctl", -1, &ns, &name),
			 RC_EINVALID);
	assert_non_null(strstr(rc_error_last()->message,
			       "'Ops' is not a namespace name"));
	assert_int_equal(rc_lease_parse_name("ops/", -1, &ns, &name),
			 RC_EINVALID);
	assert_int_equal(rc_lease_parse_name("", -1, &ns, &name),
			 RC_EINVALID);
	assert_null(ns);
	assert_null(name);
}

static void lease_identity_is_unique(void **state)
{
	char *a = rc_lease_identity(), *b = rc_lease_identity();
	char pid[32];

	RC_UNUSED(state);
	snprintf(pid, sizeof(pid), "_%ld_", (long)getpid());
	assert_non_null(strstr(a, pid));
	assert_string_not_equal(a, b);
	free(a);
	free(b);
}

int test_group_shard(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shard_hash_is_fnv1a64),
		cmocka_unit_test(shard_owner_is_stable),
		cmocka_unit_test(shard_exactly_one_owner),
		cmocka_unit_test(shard_is_balanced),
		cmocka_unit_test(shard_ordinal_from_hostname),
		cmocka_unit_test(shard_resolve_flags),
		cmocka_unit_test(lease_names),
		cmocka_unit_test(lease_identity_is_unique),
	};

	return cmocka_run_group_tests_name("shard", tests, NULL, NULL);
}
