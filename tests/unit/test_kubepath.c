// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/codec/kubepath.c: a table of kubelet cgroup paths for every
 * layout, QoS class and runtime (pod level, container level, below the
 * container, with prefixes); every combination of them built and read back;
 * every component boundary of a container path (-ENOENT above the pod, the
 * same pod from it down); and a table of failures, each with its errno.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/kubepath.h"

#define UID "0f3c9a52-7d1e-4b8a-9c2f-5e6d7a8b9c0d"
#define UIDU "0f3c9a52_7d1e_4b8a_9c2f_5e6d7a8b9c0d" /* as a systemd slice writes it */
#define UID2 "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6"
#define UID2U "d1e2f3a4_b5c6_4d7e_8f90_a1b2c3d4e5f6"
#define CID "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" /* 64 */
#define HEX65 CID "a"

#define SD "kubepods.slice/"
#define SD_BU SD "kubepods-burstable.slice/kubepods-burstable-pod" UIDU ".slice"
#define SD_BE SD "kubepods-besteffort.slice/kubepods-besteffort-pod" UIDU ".slice"
#define SD_GU SD "kubepods-pod" UIDU ".slice"
#define FS_BU "kubepods/burstable/pod" UID
#define FS_BE "kubepods/besteffort/pod" UID
#define FS_GU "kubepods/pod" UID

#define G KUBE_QOS_GUARANTEED
#define BU KUBE_QOS_BURSTABLE
#define BE KUBE_QOS_BESTEFFORT
#define SYS KUBE_DRIVER_SYSTEMD
#define FS KUBE_DRIVER_CGROUPFS

struct good {
	const char *path;
	const char *pod; /* path[0..pod_end) */
	const char *uid;
	enum kube_qos qos;
	enum kube_driver driver;
	const char *runtime, *container;
};

static void check_good(const struct good *t)
{
	struct kube_pod p;
	int r;

	memset(&p, 0x5a, sizeof(p));
	r = kube_pod_from_cgroup(t->path, &p);
	if (r != 0)
		fail_msg("%s: returned %d, expected 0", t->path, r);
	if (strcmp(p.uid, t->uid) != 0 || p.qos != t->qos || p.driver != t->driver ||
	    strcmp(p.runtime, t->runtime) != 0 || strcmp(p.container, t->container) != 0)
		fail_msg("%s: got uid %s qos %s driver %d runtime '%s' container '%s'; expected %s %s %d '%s' '%s'",
			 t->path, p.uid, kube_qos_name(p.qos), p.driver, p.runtime, p.container, t->uid,
			 kube_qos_name(t->qos), t->driver, t->runtime, t->container);
	if (p.pod_end != strlen(t->pod) || strncmp(t->path, t->pod, p.pod_end) != 0)
		fail_msg("%s: pod cgroup is '%.*s', expected '%s'", t->path, (int)p.pod_end, t->path, t->pod);
}

/* --- good paths ----------------------------------------------------------------- */

static void test_good(void **state)
{
	static const struct good cases[] = {
		/* systemd driver: pod level */
		{ SD_BU, SD_BU, UID, BU, SYS, "", "" },
		{ SD_BE, SD_BE, UID, BE, SYS, "", "" },
		{ SD_GU, SD_GU, UID, G, SYS, "", "" },
		/* systemd driver: every runtime's scope, every QoS */
		{ SD_BU "/cri-containerd-" CID ".scope", SD_BU, UID, BU, SYS, "containerd", CID },
		{ SD_BE "/cri-containerd-" CID ".scope", SD_BE, UID, BE, SYS, "containerd", CID },
		{ SD_GU "/cri-containerd-" CID ".scope", SD_GU, UID, G, SYS, "containerd", CID },
		{ SD_BU "/crio-" CID ".scope", SD_BU, UID, BU, SYS, "crio", CID },
		{ SD_BE "/crio-conmon-" CID ".scope", SD_BE, UID, BE, SYS, "crio", CID },
		{ SD_GU "/crio-conmon-" CID ".scope", SD_GU, UID, G, SYS, "crio", CID },
		{ SD_GU "/docker-" CID ".scope", SD_GU, UID, G, SYS, "docker", CID },
		{ SD_BE "/docker-" CID ".scope", SD_BE, UID, BE, SYS, "docker", CID },
		{ SD_GU "/docker-abc.scope", SD_GU, UID, G, SYS, "docker", "abc" },
		{ SD_GU "/crio-0.scope", SD_GU, UID, G, SYS, "crio", "0" },
		/* cgroupfs driver */
		{ FS_BU, FS_BU, UID, BU, FS, "", "" },
		{ FS_BE, FS_BE, UID, BE, FS, "", "" },
		{ FS_GU, FS_GU, UID, G, FS, "", "" },
		{ FS_BU "/" CID, FS_BU, UID, BU, FS, "", CID },
		{ FS_BE "/" CID, FS_BE, UID, BE, FS, "", CID },
		{ FS_GU "/" CID, FS_GU, UID, G, FS, "", CID },
		{ FS_GU "/abc", FS_GU, UID, G, FS, "", "abc" },
		{ FS_BU "/crio-" CID, FS_BU, UID, BU, FS, "crio", CID },
		{ FS_BE "/crio-conmon-" CID, FS_BE, UID, BE, FS, "crio", CID },
		/* absolute, /proc/PID/cgroup's form, test prefixes, nested below the container */
		{ "/sys/fs/cgroup/" SD_BU "/cri-containerd-" CID ".scope", "/sys/fs/cgroup/" SD_BU, UID, BU, SYS,
		  "containerd", CID },
		{ "/" SD_GU "/docker-" CID ".scope", "/" SD_GU, UID, G, SYS, "docker", CID },
		{ "/" FS_BE "/" CID, "/" FS_BE, UID, BE, FS, "", CID },
		{ "weft-e2e-123-x/" FS_GU "/" CID, "weft-e2e-123-x/" FS_GU, UID, G, FS, "", CID },
		{ "/sys/fs/cgroup/weft-e2e-9-y/" SD_BE, "/sys/fs/cgroup/weft-e2e-9-y/" SD_BE, UID, BE, SYS, "", "" },
		{ SD_GU "/cri-containerd-" CID ".scope/init", SD_GU, UID, G, SYS, "containerd", CID },
		{ FS_BU "/" CID "/a/b/c", FS_BU, UID, BU, FS, "", CID },
		/* slashes: trailing, doubled, leading */
		{ SD_GU "/", SD_GU, UID, G, SYS, "", "" },
		{ FS_GU "//" CID "//", FS_GU, UID, G, FS, "", CID },
		{ "//kubepods//burstable//pod" UID "///", "//kubepods//burstable//pod" UID, UID, BU, FS, "", "" },
		{ "kubepods.slice//kubepods-pod" UIDU ".slice//crio-" CID ".scope/",
		  "kubepods.slice//kubepods-pod" UIDU ".slice", UID, G, SYS, "crio", CID },
		/* other names below the pod: inside the pod, no container */
		{ SD_GU "/kata_" CID, SD_GU, UID, G, SYS, "", "" },
		{ SD_GU "/libpod-" CID ".scope", SD_GU, UID, G, SYS, "", "" },
		{ SD_GU "/" CID, SD_GU, UID, G, SYS, "", "" }, /* a bare ID is cgroupfs' form */
		{ FS_GU "/sandbox", FS_GU, UID, G, FS, "", "" },
		{ FS_GU "/docker-" CID, FS_GU, UID, G, FS, "", "" }, /* Docker writes the bare ID there */
		{ FS_GU "/" CID "g", FS_GU, UID, G, FS, "", "" },
		/* the last kubepods component wins: a node nested in a pod */
		{ FS_BE "/" CID "/" SD "kubepods-pod" UID2U ".slice/docker-" CID ".scope",
		  FS_BE "/" CID "/" SD "kubepods-pod" UID2U ".slice", UID2, G, SYS, "docker", CID },
		{ SD_GU "/cri-containerd-" CID ".scope/kubepods/besteffort/pod" UID2,
		  SD_GU "/cri-containerd-" CID ".scope/kubepods/besteffort/pod" UID2, UID2, BE, FS, "", "" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_good(&cases[i]);
}

/* Every driver x QoS x container form x ID x prefix x tail, built and read back. */
static void test_combinations(void **state)
{
	static const char *const prefixes[] = { "", "/", "/sys/fs/cgroup/", "weft-e2e-123-x/", "//sys//fs/cgroup//" };
	static const char *const tails[] = { "", "/", "//", "/nested/deeper" };
	static const char *const ids[] = { CID, "0", "deadbeef" };
	static const struct {
		enum kube_qos qos;
		const char *sd, *fs; /* the pod's path from the root, per driver */
	} pods[] = {
		{ G, SD_GU, FS_GU },
		{ BU, SD_BU, FS_BU },
		{ BE, SD_BE, FS_BE },
	};
	static const struct {
		enum kube_driver driver;
		const char *before, *after; /* around the ID; NULL: no container part */
		const char *runtime;
	} ctrs[] = {
		{ SYS, NULL, NULL, "" },
		{ SYS, "cri-containerd-", ".scope", "containerd" },
		{ SYS, "crio-", ".scope", "crio" },
		{ SYS, "crio-conmon-", ".scope", "crio" },
		{ SYS, "docker-", ".scope", "docker" },
		{ FS, NULL, NULL, "" },
		{ FS, "", "", "" },
		{ FS, "crio-", "", "crio" },
		{ FS, "crio-conmon-", "", "crio" },
	};
#define N(a) (sizeof(a) / sizeof((a)[0]))
	size_t n, total = N(prefixes) * N(tails) * N(ids) * N(pods) * N(ctrs);

	for (n = 0; n < total; n++) {
		size_t k = n, a, b, c, d, e;
		char path[512], pod[512];
		struct good t;
		int w;

		a = k % N(prefixes), k /= N(prefixes);
		b = k % N(pods), k /= N(pods);
		c = k % N(ctrs), k /= N(ctrs);
		d = k % N(ids), k /= N(ids);
		e = k % N(tails);
		w = snprintf(pod, sizeof(pod), "%s%s", prefixes[a], ctrs[c].driver == SYS ? pods[b].sd : pods[b].fs);
		assert_true(w > 0 && (size_t)w < sizeof(pod));
		if (ctrs[c].before)
			w = snprintf(path, sizeof(path), "%s/%s%s%s%s", pod, ctrs[c].before, ids[d], ctrs[c].after,
				     tails[e]);
		else
			w = snprintf(path, sizeof(path), "%s%s", pod, tails[e]);
		assert_true(w > 0 && (size_t)w < sizeof(path));
		t = (struct good){
			.path = path,
			.pod = pod,
			.uid = UID,
			.qos = pods[b].qos,
			.driver = ctrs[c].driver,
			.runtime = ctrs[c].runtime,
			.container = ctrs[c].before ? ids[d] : "",
		};
		check_good(&t);
	}
#undef N
}

/*
 * Cut a container path at each component boundary: above the pod it is
 * -ENOENT (the kubepods cgroup, the QoS cgroup, the prefix); from the pod's
 * component down it is the same pod.
 */
static void test_boundaries(void **state)
{
	static const char *const paths[] = {
		"/sys/fs/cgroup/" SD_BU "/cri-containerd-" CID ".scope/x",
		"/sys/fs/cgroup/" SD_GU "/crio-conmon-" CID ".scope",
		"weft-e2e-1-x/" FS_BE "/" CID "/y",
		"/" FS_GU "/crio-" CID,
	};
	size_t i, k;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const char *path = paths[i];
		size_t len = strlen(path);
		struct kube_pod full, p;

		assert_int_equal(kube_pod_from_cgroup(path, &full), 0);
		assert_string_not_equal(full.container, "");
		for (k = 0; k <= len; k++) {
			char cut[512];
			int r;

			if (k < len && path[k] != '/')
				continue;
			memcpy(cut, path, k);
			cut[k] = '\0';
			r = kube_pod_from_cgroup(cut, &p);
			if (k < full.pod_end) {
				if (r != -ENOENT)
					fail_msg("'%s': returned %d, expected -ENOENT above the pod", cut, r);
				continue;
			}
			if (r != 0)
				fail_msg("'%s': returned %d, expected 0", cut, r);
			assert_string_equal(p.uid, full.uid);
			assert_int_equal(p.qos, full.qos);
			assert_int_equal(p.driver, full.driver);
			assert_int_equal(p.pod_end, full.pod_end);
			assert_string_equal(p.container, k == full.pod_end ? "" : full.container);
		}
	}
}

/* Lengths no kubelet writes, built at run time: bounded work, no overrun. */
static void test_long(void **state)
{
	static const char deep[] = SD_GU "/cri-containerd-" CID ".scope";
	size_t big = 64 * 1024, n;
	char *s = malloc(big + 256);
	struct kube_pod p;

	assert_non_null(s);

	/* a long prefix, then a real pod: found */
	memset(s, 'a', big);
	s[big] = '/';
	strcpy(s + big + 1, FS_GU "/" CID);
	assert_int_equal(kube_pod_from_cgroup(s, &p), 0);
	assert_string_equal(p.uid, UID);
	assert_int_equal(p.pod_end, big + 1 + strlen(FS_GU));

	/* a long tail of nested cgroups below the container: ignored */
	strcpy(s, deep);
	for (n = strlen(s); n + 2 < big; n += 2)
		memcpy(s + n, "/x", 2);
	s[n] = '\0';
	assert_int_equal(kube_pod_from_cgroup(s, &p), 0);
	assert_string_equal(p.container, CID);
	assert_int_equal(p.pod_end, strlen(SD_GU));

	/* one long component where the UID goes */
	strcpy(s, "kubepods/pod");
	memset(s + 12, 'a', big);
	s[12 + big] = '\0';
	assert_int_equal(kube_pod_from_cgroup(s, &p), -EINVAL);
	memcpy(s, "kubepods.slice/kubepods-pod", 27);
	memset(s + 27, '_', big);
	strcpy(s + 27 + big, ".slice");
	assert_int_equal(kube_pod_from_cgroup(s, &p), -EINVAL);

	/* a long container ID, hex all the way */
	strcpy(s, FS_GU "/");
	n = strlen(s);
	memset(s + n, 'f', big);
	s[n + big] = '\0';
	assert_int_equal(kube_pod_from_cgroup(s, &p), -EINVAL);

	/* long and unrelated */
	memset(s, 'k', big);
	for (n = 9; n < big; n += 10)
		s[n] = '/';
	s[big] = '\0';
	assert_int_equal(kube_pod_from_cgroup(s, &p), -ENOENT);
	free(s);
}

/* --- failures ----------------------------------------------------------------- */

struct bad {
	const char *name;
	const char *path;
	int err;
};

static void test_fail(void **state)
{
	static const struct bad cases[] = {
		/* not pod paths */
		{ "empty string", "", -ENOENT },
		{ "root", "/", -ENOENT },
		{ "slashes only", "///", -ENOENT },
		{ "kubepods.slice alone", "kubepods.slice", -ENOENT },
		{ "kubepods.slice, absolute", "/sys/fs/cgroup/kubepods.slice/", -ENOENT },
		{ "burstable QoS slice", SD "kubepods-burstable.slice", -ENOENT },
		{ "besteffort QoS slice", "/" SD "kubepods-besteffort.slice/", -ENOENT },
		{ "kubepods alone", "kubepods", -ENOENT },
		{ "cgroupfs QoS directory", "/kubepods/burstable", -ENOENT },
		{ "cgroupfs besteffort directory", "kubepods/besteffort/", -ENOENT },
		{ "a system service", "/system.slice/containerd.service", -ENOENT },
		{ "a login session", "user.slice/user-1000.slice/session-1.scope", -ENOENT },
		{ "pod slice without kubepods.slice", "kubepods-burstable.slice/kubepods-burstable-pod" UIDU ".slice",
		  -ENOENT },
		{ "cgroupfs pod without kubepods", "burstable/pod" UID "/" CID, -ENOENT },
		{ "root name with a suffix", "kubepods.slice.d/kubepods-pod" UIDU ".slice", -ENOENT },
		{ "root name with a prefix", "xkubepods/pod" UID, -ENOENT },
		{ "root name in upper case", "KUBEPODS/pod" UID, -ENOENT },
		{ "unrelated child of kubepods.slice", SD "system.slice", -ENOENT },
		{ "unrelated child of a QoS slice", SD "kubepods-burstable.slice/foo.scope", -ENOENT },
		{ "unrelated child of kubepods", "kubepods/kubelet", -ENOENT },
		{ "a QoS class the kubelet has no directory for", "kubepods/guaranteed/pod" UID, -ENOENT },
		{ "unrelated child of a QoS directory", "kubepods/burstable/other", -ENOENT },
		{ "the last kubepods wins, and is a bare root", SD_GU "/cri-containerd-" CID ".scope/kubepods",
		  -ENOENT },
		{ "the last kubepods wins, and is above its pod",
		  FS_GU "/" CID "/kubepods.slice/kubepods-burstable.slice", -ENOENT },

		/* malformed UIDs */
		{ "uid 35 chars (systemd)",
		  SD "kubepods-pod"
		     "0f3c9a52_7d1e_4b8a_9c2f_5e6d7a8b9c0"
		     ".slice",
		  -EINVAL },
		{ "uid 37 chars (systemd)", SD "kubepods-pod" UIDU "0.slice", -EINVAL },
		{ "uid 35 chars (cgroupfs)", "kubepods/pod0f3c9a52-7d1e-4b8a-9c2f-5e6d7a8b9c0", -EINVAL },
		{ "uid 37 chars (cgroupfs)", "kubepods/besteffort/pod" UID "0", -EINVAL },
		{ "uid non-hex", "kubepods/pod0f3c9a52-7d1e-4b8a-9c2f-5e6d7a8b9c0g", -EINVAL },
		{ "uid non-hex (systemd)", SD "kubepods-podzf3c9a52_7d1e_4b8a_9c2f_5e6d7a8b9c0d.slice", -EINVAL },
		{ "uid upper case", "kubepods/pod0F3C9A52-7D1E-4B8A-9C2F-5E6D7A8B9C0D", -EINVAL },
		{ "uid one upper-case digit", SD "kubepods-pod0f3c9a52_7d1e_4b8a_9c2f_5e6d7a8b9c0D.slice", -EINVAL },
		{ "uid with dashes in a slice", SD "kubepods-pod" UID ".slice", -EINVAL },
		{ "uid with underscores in cgroupfs", "kubepods/pod" UIDU, -EINVAL },
		{ "uid groups 9-4-4-4-11", "kubepods/pod0f3c9a527-d1e-4b8a-9c2f-5e6d7a8b9c0d", -EINVAL },
		{ "uid with a separator as a digit", "kubepods/pod0f3c9a52-7d1e-4b8a-9c2f-5e6d7a8b9c-d", -EINVAL },
		{ "uid with mixed separators", SD "kubepods-pod0f3c9a52_7d1e-4b8a_9c2f_5e6d7a8b9c0d.slice", -EINVAL },
		{ "static pod uid (32 hex, no dashes): not yet",
		  "kubepods/burstable/pod0f3c9a527d1e4b8a9c2f5e6d7a8b9c0d", -EINVAL },
		{ "uid ending in a space", "kubepods/pod0f3c9a52-7d1e-4b8a-9c2f-5e6d7a8b9c0 ", -EINVAL },

		/* missing or misplaced pieces */
		{ "pod with no uid (cgroupfs)", "kubepods/pod", -EINVAL },
		{ "pod with no uid, burstable", "kubepods/burstable/pod/" CID, -EINVAL },
		{ "pod slice with no uid", SD "kubepods-pod.slice", -EINVAL },
		{ "pod slice with no .slice", SD "kubepods-pod" UIDU, -EINVAL },
		{ "pod as a scope", SD "kubepods-pod" UIDU ".scope", -EINVAL },
		{ "pod slice name only", SD "kubepods-pod", -EINVAL },
		{ "burstable pod straight under kubepods.slice", SD "kubepods-burstable-pod" UIDU ".slice", -EINVAL },
		{ "besteffort pod in the burstable slice",
		  SD "kubepods-burstable.slice/kubepods-besteffort-pod" UIDU ".slice", -EINVAL },
		{ "guaranteed pod in the besteffort slice", SD "kubepods-besteffort.slice/kubepods-pod" UIDU ".slice",
		  -EINVAL },
		{ "a QoS slice the kubelet never makes", SD "kubepods-guaranteed.slice/kubepods-pod" UIDU ".slice",
		  -EINVAL },
		{ "a kubepods- name that is no slice", SD "kubepods-x", -EINVAL },

		/* malformed container parts */
		{ "containerd scope with no id", SD_GU "/cri-containerd-.scope", -EINVAL },
		{ "containerd scope with no .scope", SD_GU "/cri-containerd-" CID, -EINVAL },
		{ "containerd slice", SD_GU "/cri-containerd-" CID ".slice", -EINVAL },
		{ "docker id of 65 digits", SD_GU "/docker-" HEX65 ".scope", -EINVAL },
		{ "crio id in upper case", SD_BU "/crio-ABC.scope", -EINVAL },
		{ "crio id not hex", SD_BU "/crio-xyz.scope", -EINVAL },
		{ "conmon scope with no id", SD_BE "/crio-conmon-.scope", -EINVAL },
		{ "conmon, nothing after the prefix", SD_BE "/crio-conmon-", -EINVAL },
		{ "scope suffix only", SD_GU "/docker-.scope", -EINVAL },
		{ "cgroupfs id of 65 digits", FS_GU "/" HEX65, -EINVAL },
		{ "cgroupfs id in upper case", FS_BU "/9F86D081", -EINVAL },
		{ "cgroupfs crio with no id", FS_BE "/crio-", -EINVAL },
		{ "cgroupfs crio id not hex", FS_BE "/crio-zz", -EINVAL },
		{ "cgroupfs crio with .scope", FS_BE "/crio-" CID ".scope", -EINVAL },

		/* dot components */
		{ "'..' below the pod", FS_GU "/../x", -EINVAL },
		{ "'..' above kubepods", "/sys/fs/cgroup/../kubepods/pod" UID, -EINVAL },
		{ "'.' between components", "kubepods/./pod" UID, -EINVAL },
		{ "'.' first", "./" SD_GU, -EINVAL },
		{ "'..' on a root alone", "../kubepods.slice", -EINVAL },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad *t = &cases[i];
		struct kube_pod p;
		size_t k;
		int r;

		memset(&p, 0x5a, sizeof(p));
		r = kube_pod_from_cgroup(t->path, &p);
		if (r != t->err)
			fail_msg("%s ('%s'): returned %d, expected %d", t->name, t->path, r, t->err);
		/* out untouched on failure */
		for (k = 0; k < sizeof(p); k++)
			if (((const uint8_t *)&p)[k] != 0x5a)
				fail_msg("%s: *out written at byte %zu on failure", t->name, k);
	}
}

static void test_qos_name(void **state)
{
	assert_string_equal(kube_qos_name(KUBE_QOS_GUARANTEED), "guaranteed");
	assert_string_equal(kube_qos_name(KUBE_QOS_BURSTABLE), "burstable");
	assert_string_equal(kube_qos_name(KUBE_QOS_BESTEFFORT), "besteffort");
	assert_string_equal(kube_qos_name(KUBE_QOS_NONE), "none");
	assert_string_equal(kube_qos_name((enum kube_qos)7), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good), cmocka_unit_test(test_combinations), cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_long), cmocka_unit_test(test_fail),         cmocka_unit_test(test_qos_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
