// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/kube/kident.c: pod cgroup paths (both cgroup drivers, container
 * and pod level) to spiffe://<td>/ns/<ns>/sa/<sa>; then the cases without an
 * identity (not a pod's path, a pod not in the table, an ID that would not
 * be valid or does not fit); a replacement drops pods that went; and lookups
 * racing replacements from another thread (run under ASan and valgrind).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "kube/kident.h"

#define UID "0f3c9a52-7d1e-4b8a-9c2f-5e6d7a8b9c0d"
#define UIDU "0f3c9a52_7d1e_4b8a_9c2f_5e6d7a8b9c0d"
#define UID2 "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6"
#define UID3 "aaaaaaaa-b5c6-4d7e-8f90-a1b2c3d4e5f6"
#define CID "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static const struct kident_pod pods[] = {
	{ .uid = UID, .ns = "shop", .sa = "checkout" },
	{ .uid = UID2, .ns = "kube-system", .sa = "default" },
	{ .uid = UID3, .ns = "shop", .sa = "bad..name/.." }, /* would not be a valid SPIFFE ID */
};

static void test_lookups(void **state)
{
	static const struct {
		const char *path, *want; /* want NULL: no identity */
	} cases[] = {
		{ "/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UIDU
		  ".slice/cri-containerd-" CID ".scope",
		  "spiffe://cluster.local/ns/shop/sa/checkout" },
		{ "kubepods.slice/kubepods-pod" UIDU ".slice", "spiffe://cluster.local/ns/shop/sa/checkout" },
		{ "/kubepods/besteffort/pod" UID2 "/" CID, "spiffe://cluster.local/ns/kube-system/sa/default" },
		{ "e2e-1/kubepods/pod" UID2, "spiffe://cluster.local/ns/kube-system/sa/default" },
		/* failures */
		{ "system.slice/app.service", NULL },                                   /* not a pod */
		{ "kubepods/burstable/pod11111111-7d1e-4b8a-9c2f-5e6d7a8b9c0d", NULL }, /* unknown pod */
		{ "kubepods/burstable/pod" UID3, NULL },                                /* invalid ID */
		{ "kubepods/burstable", NULL },                                         /* above the pods */
	};
	struct kident *k = kident_new();
	char id[256];
	size_t i;

	(void)state;
	assert_non_null(k);
	assert_false(kident_of_cgroup(k, "kubepods/pod" UID, "cluster.local", id, sizeof(id))); /* empty */
	assert_int_equal(kident_replace(k, pods, 3), 0);
	assert_int_equal(kident_count(k), 3);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool ok = kident_of_cgroup(k, cases[i].path, "cluster.local", id, sizeof(id));

		if (!cases[i].want) {
			if (ok)
				fail_msg("%s: got %s, want none", cases[i].path, id);
			continue;
		}
		if (!ok)
			fail_msg("%s: no identity, want %s", cases[i].path, cases[i].want);
		assert_string_equal(id, cases[i].want);
	}
	/* too small a buffer: no truncated identity */
	assert_false(kident_of_cgroup(k, "kubepods/pod" UID, "cluster.local", id, 20));
	/* NULL table (no kubernetes): none */
	assert_false(kident_of_cgroup(NULL, "kubepods/pod" UID, "cluster.local", id, sizeof(id)));
	/* a replacement drops the pods that went */
	assert_int_equal(kident_replace(k, pods + 1, 1), 0);
	assert_int_equal(kident_count(k), 1);
	assert_false(kident_of_cgroup(k, "kubepods/pod" UID, "cluster.local", id, sizeof(id)));
	assert_true(kident_of_cgroup(k, "kubepods/pod" UID2, "td.example", id, sizeof(id)));
	assert_string_equal(id, "spiffe://td.example/ns/kube-system/sa/default");
	assert_int_equal(kident_replace(k, NULL, 0), 0);
	assert_int_equal(kident_count(k), 0);
	kident_free(k);
	kident_free(NULL);
}

struct race {
	struct kident *k;
	atomic_bool stop;
	atomic_ulong found, missed;
};

static void *reader(void *arg)
{
	struct race *r = arg;
	char id[256];

	while (!atomic_load(&r->stop)) {
		if (kident_of_cgroup(r->k, "kubepods/pod" UID, "cluster.local", id, sizeof(id))) {
			assert_string_equal(id, "spiffe://cluster.local/ns/shop/sa/checkout");
			atomic_fetch_add(&r->found, 1);
		} else {
			atomic_fetch_add(&r->missed, 1);
		}
	}
	return NULL;
}

static void test_lookups_race_replacements(void **state)
{
	struct race r = { .k = kident_new() };
	pthread_t t;
	int i;

	(void)state;
	atomic_init(&r.stop, false);
	atomic_init(&r.found, 0);
	atomic_init(&r.missed, 0);
	assert_int_equal(pthread_create(&t, NULL, reader, &r), 0);
	/* replace until the reader has looked at least 1000 times, and 2000 times at least */
	for (i = 0; i < 2000 || atomic_load(&r.found) + atomic_load(&r.missed) < 1000; i++)
		assert_int_equal(kident_replace(r.k, i % 2 ? pods : pods + 1, i % 2 ? 2 : 1), 0);
	atomic_store(&r.stop, true);
	pthread_join(t, NULL);
	/* every answer the reader got was whole (checked there); which table it saw is the scheduler's */
	assert_true(atomic_load(&r.found) + atomic_load(&r.missed) >= 1000);
	kident_free(r.k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookups),
		cmocka_unit_test(test_lookups_race_replacements),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
