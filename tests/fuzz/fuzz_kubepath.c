// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer: the kubelet cgroup path reader (paths come from the kernel, but
 * below a container's own cgroup the container may name them). The input up
 * to its first NUL is the path. Beyond "no crash", checks on every input:
 * - the answer is 0, -ENOENT or -EINVAL, and *out is untouched on failure;
 * - on 0: the UID is 36 characters, 8-4-4-4-12 lowercase hex, and is what
 *   the pod's component ends with (with '_' for '-' under systemd, before
 *   ".slice"); QoS and driver are in range; path[0..pod_end) ends at a
 *   component boundary; the container ID is 0..64 lowercase hex digits and
 *   the runtime one of the four names, set together under systemd;
 * - path[0..pod_end) reads as the same pod, at the pod level;
 * - an extra prefix ("/sys/fs/cgroup/") and a trailing '/' change nothing
 *   but pod_end, by the prefix's length.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/kubepath.h"

#define MAX_PATH_IN 8192
#define PREFIX "/sys/fs/cgroup/"

static int lhex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void check_uid(const char *u)
{
	size_t i;

	if (strlen(u) != KUBE_UID_LEN)
		abort();
	for (i = 0; i < KUBE_UID_LEN; i++)
		if ((i == 8 || i == 13 || i == 18 || i == 23) ? u[i] != '-' : !lhex(u[i]))
			abort();
}

static void check_same(const struct kube_pod *a, const struct kube_pod *b, size_t shift)
{
	if (strcmp(a->uid, b->uid) || a->qos != b->qos || a->driver != b->driver || strcmp(a->runtime, b->runtime) ||
	    strcmp(a->container, b->container) || a->pod_end + shift != b->pod_end)
		abort();
}

static void check_ok(const char *path, const struct kube_pod *p)
{
	size_t len = strlen(path), i, n;
	const char *u;

	check_uid(p->uid);
	if (p->qos < KUBE_QOS_GUARANTEED || p->qos > KUBE_QOS_BESTEFFORT)
		abort();
	if (p->driver != KUBE_DRIVER_SYSTEMD && p->driver != KUBE_DRIVER_CGROUPFS)
		abort();
	if (p->pod_end == 0 || p->pod_end > len || (path[p->pod_end] != '/' && path[p->pod_end] != '\0'))
		abort();

	/* the UID is read from the pod's own component */
	if (p->driver == KUBE_DRIVER_SYSTEMD) {
		if (p->pod_end < KUBE_UID_LEN + 6 || memcmp(path + p->pod_end - 6, ".slice", 6))
			abort();
		u = path + p->pod_end - 6 - KUBE_UID_LEN;
	} else {
		if (p->pod_end < KUBE_UID_LEN + 3 || memcmp(path + p->pod_end - KUBE_UID_LEN - 3, "pod", 3))
			abort();
		u = path + p->pod_end - KUBE_UID_LEN;
	}
	for (i = 0; i < KUBE_UID_LEN; i++)
		if (u[i] != p->uid[i] && !(p->uid[i] == '-' && u[i] == '_' && p->driver == KUBE_DRIVER_SYSTEMD))
			abort();

	n = strnlen(p->container, sizeof(p->container));
	if (n > KUBE_CONTAINER_ID_MAX)
		abort();
	for (i = 0; i < n; i++)
		if (!lhex(p->container[i]))
			abort();
	if (n && !strstr(path + p->pod_end, p->container))
		abort();
	if (strcmp(p->runtime, "") && strcmp(p->runtime, "containerd") && strcmp(p->runtime, "crio") &&
	    strcmp(p->runtime, "docker"))
		abort();
	if (*p->runtime && !n)
		abort();
	if (p->driver == KUBE_DRIVER_SYSTEMD && !*p->runtime != !n)
		abort();
	if (p->driver == KUBE_DRIVER_CGROUPFS && *p->runtime && strcmp(p->runtime, "crio"))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[MAX_PATH_IN + 1], alt[sizeof(PREFIX) + MAX_PATH_IN + 1];
	struct kube_pod p, q, sentinel;
	size_t len;
	int r, r2;

	if (size > MAX_PATH_IN)
		size = MAX_PATH_IN;
	memcpy(path, data, size);
	path[size] = '\0';
	len = strlen(path);

	memset(&p, 0x5a, sizeof(p));
	sentinel = p;
	r = kube_pod_from_cgroup(path, &p);
	if (r != 0) {
		if ((r != -ENOENT && r != -EINVAL) || memcmp(&p, &sentinel, sizeof(p)))
			abort();
	} else {
		check_ok(path, &p);
		/* the pod's own cgroup is the same pod, with no container */
		memcpy(alt, path, p.pod_end);
		alt[p.pod_end] = '\0';
		if (kube_pod_from_cgroup(alt, &q) != 0 || strcmp(q.uid, p.uid) || q.qos != p.qos ||
		    q.driver != p.driver || q.pod_end != p.pod_end || *q.container || *q.runtime)
			abort();
	}

	/* more leading components and a trailing '/' change nothing but pod_end */
	memcpy(alt, PREFIX, sizeof(PREFIX) - 1);
	memcpy(alt + sizeof(PREFIX) - 1, path, len);
	memcpy(alt + sizeof(PREFIX) - 1 + len, "/", 2);
	r2 = kube_pod_from_cgroup(alt, &q);
	if (r2 != r)
		abort();
	if (r == 0)
		check_same(&p, &q, sizeof(PREFIX) - 1);
	return 0;
}
