#include "tests/unit/helpers.h"
#include "reconciler/base/error.h"
#include "reconciler/controller/lease.h"
#include "reconciler/controller/shard.h"

/* SHA-256's first 8 bytes, big-endian: the formula the docs give
 * (`printf %s NAME | sha256sum | cut -c1-16`). */
static void shard_hash_is_sha256_prefix(void **state)
{
	RC_UNUSED(state);
	assert_true(rc_shard_hash("") == 0xe3b0c44298fc1c14ULL);
	assert_true(rc_shard_hash("abc") == 0xba7816bf8f01cfeaULL);
}

/* The owner depends on the name and N only: the same every time, and
 * the same however many other environments there are. */
static void shard_owner_is_stable(void **state)
{
	RC_UNUSED(state);
	/* fixed answers: a change here moves environments between shards */
	assert_int_equal(rc_shard_of("production", 4), 1);
	assert_int_equal(rc_shard_of("staging", 4), 0);
	assert_int_equal(rc_shard_of("pr-1234", 3), 0);
	assert_int_equal(rc_shard_of("anything", 1), 0);
	assert_int_equal(rc_shard_of("anything", 0), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(rc_shard_of("production", 4), 1);
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

/* Names that differ only in the high bits of a byte spread too (FNV-1a
 * modulo 8 puts "app-a" and "app-i" together, always). */
static void shard_uses_every_bit(void **state)
{
	bool seen[8] = {false};
	char name[8];
	int used = 0;

	RC_UNUSED(state);
	for (char c = 'a'; c <= 'z'; c++) {
		snprintf(name, sizeof(name), "app-%c", c);
		seen[rc_shard_of(name, 8)] = true;
	}
	for (int k = 0; k < 8; k++)
		used += seen[k];
	assert_true(used >= 6);
	assert_int_not_equal(rc_shard_of("app-a", 8), rc_shard_of("app-i", 8));
}

/* 1,000 names of each of four shapes fleets use, split 2, 3, 4 and 8
 * ways. Each split is within 3.5 standard deviations of an even one (a
 * random split is, but for one time in 2,000), and the 4,000 names
 * together split 2, 3 and 4 ways within 5% of the even share. The worst
 * deviations are printed. */
static void shard_is_balanced(void **state)
{
	static const int ns[] = {2, 3, 4, 8};
	static const char *const fmt[] = {"env-%d", "pr-%d", "customer-%04d",
					  "shop-%d-staging"};
	int all[RC_ARRAY_SIZE(ns)][8] = {{0}};
	char name[48];

	RC_UNUSED(state);
	for (size_t f = 0; f < RC_ARRAY_SIZE(fmt); f++) {
		for (size_t j = 0; j < RC_ARRAY_SIZE(ns); j++) {
			int n = ns[j], count[8] = {0};
			double p = 1.0 / n, var = 1000 * p * (1 - p);
			double worst = 0;

			for (int i = 0; i < 1000; i++) {
				snprintf(name, sizeof(name), fmt[f], i);
				count[rc_shard_of(name, n)]++;
			}
			for (int k = 0; k < n; k++) {
				double d = count[k] - 1000 * p;

				all[j][k] += count[k];
				if (d * d > worst * worst)
					worst = d < 0 ? -d : d;
			}
			printf("# %-16s N=%d: worst %.1f%% (deviation^2/variance %.2f)\n",
			       fmt[f], n, 100 * worst / (1000 * p),
			       worst * worst / var);
			/* 3.5 standard deviations */
			assert_true(worst * worst <= 3.5 * 3.5 * var);
		}
	}
	for (size_t j = 0; j < 3; j++) {
		double share = 4000.0 / ns[j], worst = 0;

		for (int k = 0; k < ns[j]; k++) {
			double d = (all[j][k] - share) / share;

			if (d < 0)
				d = -d;
			if (d > worst)
				worst = d;
		}
		printf("# all 4000 names N=%d: worst %.1f%%\n", ns[j],
		       100 * worst);
		assert_true(worst <= 0.05);
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
	assert_int_equal(rc_shard_resolve(&s, 1, -1, "no-ordinal"), 0);
	assert_int_equal(s.index, 0);
	assert_int_equal(rc_shard_resolve(&s, 2, -1, "no-ordinal"),
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
		cmocka_unit_test(shard_hash_is_sha256_prefix),
		cmocka_unit_test(shard_uses_every_bit),
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
