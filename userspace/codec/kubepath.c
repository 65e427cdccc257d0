// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Pod identity from a kubelet cgroup path (layouts and rules in kubepath.h).
 *
 * One pass finds the last kubepods component (and any "." or ".."), then the
 * parser walks the components after it: QoS, pod, container. Every
 * component is a (pointer, length) view into the caller's string: nothing is
 * copied but the UID and the container ID, whose lengths are checked first.
 */
#include "codec/kubepath.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define SYSTEMD_ROOT "kubepods.slice"
#define CGROUPFS_ROOT "kubepods"
#define SLICE_PREFIX "kubepods-" /* every child slice of kubepods.slice */
#define SLICE_SUFFIX ".slice"
#define SCOPE_SUFFIX ".scope"

/* One path component: s[0..len), never empty, never containing '/'. */
struct comp {
	const char *s;
	size_t len;
};

/* The component at or after *pos (slashes skipped); false at the end. */
static bool next_comp(const char *path, size_t *pos, struct comp *c)
{
	size_t i = *pos, start;

	while (path[i] == '/')
		i++;
	if (!path[i])
		return false;
	start = i;
	while (path[i] && path[i] != '/')
		i++;
	c->s = path + start;
	c->len = i - start;
	*pos = i;
	return true;
}

static bool comp_eq(struct comp c, const char *lit)
{
	size_t n = strlen(lit);

	return c.len == n && memcmp(c.s, lit, n) == 0;
}

static bool has_prefix(struct comp c, const char *lit)
{
	size_t n = strlen(lit);

	return c.len >= n && memcmp(c.s, lit, n) == 0;
}

static bool has_suffix(struct comp c, const char *lit)
{
	size_t n = strlen(lit);

	return c.len >= n && memcmp(c.s + c.len - n, lit, n) == 0;
}

static inline bool lhex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

static inline bool anyhex(char ch)
{
	return lhex(ch) || (ch >= 'A' && ch <= 'F');
}

/*
 * s[0..len) as a pod UID whose groups are separated by sep ('-' or '_'):
 * writes the canonical form (with '-') to out. 0 or -EINVAL.
 */
static int parse_uid(const char *s, size_t len, char sep, char out[KUBE_UID_LEN + 1])
{
	size_t i;

	if (len != KUBE_UID_LEN)
		return -EINVAL;
	for (i = 0; i < KUBE_UID_LEN; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != sep : !lhex(s[i]))
			return -EINVAL;
		out[i] = dash ? '-' : s[i];
	}
	out[KUBE_UID_LEN] = '\0';
	return 0;
}

/* s[0..len) as a container ID: 1..64 lowercase hex digits. 0 or -EINVAL. */
static int parse_id(const char *s, size_t len, char out[KUBE_CONTAINER_ID_MAX + 1])
{
	size_t i;

	if (len == 0 || len > KUBE_CONTAINER_ID_MAX)
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (!lhex(s[i]))
			return -EINVAL;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

/*
 * A systemd pod slice: pfx + <u_i_d> + ".slice", pfx being "kubepods-pod"
 * or "kubepods-<qos>-pod". Only called on names starting "kubepods-", all of
 * them the kubelet's: anything else is -EINVAL.
 */
static int systemd_pod(struct comp c, const char *pfx, char uid[KUBE_UID_LEN + 1])
{
	size_t n = strlen(pfx);

	if (!has_prefix(c, pfx) || !has_suffix(c, SLICE_SUFFIX) || c.len < n + strlen(SLICE_SUFFIX))
		return -EINVAL;
	return parse_uid(c.s + n, c.len - n - strlen(SLICE_SUFFIX), '_', uid);
}

static const struct runtime_prefix {
	const char *prefix;
	const char *runtime;
	bool cgroupfs; /* also used, without ".scope", under the cgroupfs driver */
} runtime_prefixes[] = {
	/* "crio-conmon-" before "crio-": the longer prefix is the conmon scope */
	{ "cri-containerd-", "containerd", false },
	{ "crio-conmon-", "crio", true },
	{ "crio-", "crio", true },
	{ "docker-", "docker", false },
};

/*
 * The component below the pod's. Fills runtime and container when the name
 * is a container's; leaves them "" for any other name (still inside the
 * pod). -EINVAL for a container's name with a bad ID.
 */
static int container_part(struct comp c, enum kube_driver drv, struct kube_pod *p)
{
	size_t i, n;

	for (i = 0; i < sizeof(runtime_prefixes) / sizeof(runtime_prefixes[0]); i++) {
		const struct runtime_prefix *rp = &runtime_prefixes[i];
		size_t id_len;

		if ((drv == KUBE_DRIVER_CGROUPFS && !rp->cgroupfs) || !has_prefix(c, rp->prefix))
			continue;
		n = strlen(rp->prefix);
		id_len = c.len - n;
		if (drv == KUBE_DRIVER_SYSTEMD) {
			if (!has_suffix(c, SCOPE_SUFFIX) || id_len < strlen(SCOPE_SUFFIX))
				return -EINVAL;
			id_len -= strlen(SCOPE_SUFFIX);
		}
		if (parse_id(c.s + n, id_len, p->container))
			return -EINVAL;
		strcpy(p->runtime, rp->runtime);
		return 0;
	}
	if (drv == KUBE_DRIVER_CGROUPFS) {
		/* containerd and Docker name the directory by the bare ID */
		for (i = 0; i < c.len && anyhex(c.s[i]); i++)
			;
		if (i == c.len)
			return parse_id(c.s, c.len, p->container);
	}
	return 0;
}

int kube_pod_from_cgroup(const char *path, struct kube_pod *out)
{
	struct kube_pod p;
	struct comp c, root = { NULL, 0 };
	size_t pos = 0, after_root = 0;
	bool dots = false;
	int err;

	memset(&p, 0, sizeof(p));
	while (next_comp(path, &pos, &c)) {
		if (comp_eq(c, ".") || comp_eq(c, "..")) {
			dots = true;
		} else if (comp_eq(c, SYSTEMD_ROOT) || comp_eq(c, CGROUPFS_ROOT)) {
			root = c;
			after_root = pos;
		}
	}
	if (!root.s)
		return -ENOENT;
	if (dots)
		return -EINVAL;
	p.driver = comp_eq(root, SYSTEMD_ROOT) ? KUBE_DRIVER_SYSTEMD : KUBE_DRIVER_CGROUPFS;

	pos = after_root;
	if (!next_comp(path, &pos, &c))
		return -ENOENT; /* the kubepods cgroup itself */
	if (p.driver == KUBE_DRIVER_SYSTEMD) {
		const char *pfx = "kubepods-pod";

		p.qos = KUBE_QOS_GUARANTEED;
		if (comp_eq(c, "kubepods-burstable.slice")) {
			p.qos = KUBE_QOS_BURSTABLE;
			pfx = "kubepods-burstable-pod";
		} else if (comp_eq(c, "kubepods-besteffort.slice")) {
			p.qos = KUBE_QOS_BESTEFFORT;
			pfx = "kubepods-besteffort-pod";
		}
		if (p.qos != KUBE_QOS_GUARANTEED && !next_comp(path, &pos, &c))
			return -ENOENT; /* the QoS slice */
		if (!has_prefix(c, SLICE_PREFIX))
			return -ENOENT;
		err = systemd_pod(c, pfx, p.uid);
	} else {
		p.qos = KUBE_QOS_GUARANTEED;
		if (comp_eq(c, "burstable"))
			p.qos = KUBE_QOS_BURSTABLE;
		else if (comp_eq(c, "besteffort"))
			p.qos = KUBE_QOS_BESTEFFORT;
		if (p.qos != KUBE_QOS_GUARANTEED && !next_comp(path, &pos, &c))
			return -ENOENT; /* the QoS directory */
		if (!has_prefix(c, "pod"))
			return -ENOENT;
		err = parse_uid(c.s + 3, c.len - 3, '-', p.uid);
	}
	if (err)
		return err;
	p.pod_end = pos;

	if (next_comp(path, &pos, &c)) {
		err = container_part(c, p.driver, &p);
		if (err)
			return err;
	}
	*out = p;
	return 0;
}

const char *kube_qos_name(enum kube_qos q)
{
	switch (q) {
	case KUBE_QOS_NONE:
		return "none";
	case KUBE_QOS_GUARANTEED:
		return "guaranteed";
	case KUBE_QOS_BURSTABLE:
		return "burstable";
	case KUBE_QOS_BESTEFFORT:
		return "besteffort";
	}
	return "unknown";
}
