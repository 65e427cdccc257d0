// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "kernel/probe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "kernel/cgroup.h"
#include "lib/log.h"

#define PROBE_ENOTSUPP 524 /* the kernel's ENOTSUPP, which it returns for some unsupported map types */

/*
 * Each entry is something bpf/intercept.bpf.c uses that a kernel may lack.
 * Versions are the mainline releases that brought each one; weft's minimum
 * is the newest of them (bpf_set_retval, 5.18). Helpers are probed in the
 * program type that calls them: a helper's availability differs per type
 * (bpf_get_netns_cookie came to cgroup/connect in 5.7, to sockops and sk_msg
 * in 5.15). Not listed, because every kernel with the ones below has them:
 * hash, LRU hash, array and per-CPU array maps, bpf_ktime_get_ns,
 * bpf_get_current_pid_tgid, bpf_get_current_cgroup_id.
 */
#define PROG(t, a) .kind = PROBE_PROG, .prog_type = (t), .attach_type = (a)
#define MAP(t) .kind = PROBE_MAP, .map_type = (t)
#define HELPER(t, h) .kind = PROBE_HELPER, .prog_type = (t), .helper = (h)
const struct probe_feature probe_features[] = {
	{ "cgroup_skb", "cgroup_skb/ingress", "strict inbound (agent.strict_inbound)", 4, 10,
	  PROG(BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_INGRESS) },
	{ "sockops", "sockops", "hands a redirected connection's destination to weftd", 4, 13,
	  PROG(BPF_PROG_TYPE_SOCK_OPS, 0) },
	{ "connect", "cgroup/connect4, connect6", "the interception itself", 4, 17,
	  PROG(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_CONNECT) },
	{ "sk_msg", "sk_msg", "the loopback fast path (agent.redirect_loopback)", 4, 17,
	  PROG(BPF_PROG_TYPE_SK_MSG, 0) },
	{ "sockhash", "sockhash maps", "weft_listeners, weft_sockhash", 4, 18, MAP(BPF_MAP_TYPE_SOCKHASH) },
	{ "sock_hash_update", "bpf_sock_hash_update in sockops", "the loopback fast path", 4, 18,
	  HELPER(BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_sock_hash_update) },
	{ "msg_redirect_hash", "bpf_msg_redirect_hash in sk_msg", "the loopback fast path", 4, 18,
	  HELPER(BPF_PROG_TYPE_SK_MSG, BPF_FUNC_msg_redirect_hash) },
	{ "sk_fullsock", "bpf_sk_fullsock in cgroup_skb", "strict inbound", 5, 1,
	  HELPER(BPF_PROG_TYPE_CGROUP_SKB, BPF_FUNC_sk_fullsock) },
	{ "sk_storage", "socket-local storage maps", "the original destination, kept on the app's socket", 5, 2,
	  MAP(BPF_MAP_TYPE_SK_STORAGE) },
	{ "link", "bpf_link for cgroups", "attachments pinned per cgroup, beside other BPF users'", 5, 7,
	  .kind = PROBE_LINK },
	{ "netns_cookie_connect", "bpf_get_netns_cookie in cgroup/connect", "is weftd listening in the app's netns", 5,
	  7, HELPER(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_netns_cookie) },
	{ "getpeername", "cgroup/getpeername4, getpeername6", "apps see the address they dialled", 5, 8,
	  PROG(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_GETPEERNAME) },
	{ "sk_storage_connect", "bpf_sk_storage_get in cgroup/connect", "the original destination", 5, 10,
	  HELPER(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_sk_storage_get) },
	{ "sk_storage_sockops", "bpf_sk_storage_get in sockops", "the original destination", 5, 10,
	  HELPER(BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_sk_storage_get) },
	{ "netns_cookie_sockops", "bpf_get_netns_cookie in sockops", "the key weftd finds a connection by", 5, 15,
	  HELPER(BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_get_netns_cookie) },
	{ "netns_cookie_sk_msg", "bpf_get_netns_cookie in sk_msg", "the loopback fast path", 5, 15,
	  HELPER(BPF_PROG_TYPE_SK_MSG, BPF_FUNC_get_netns_cookie) },
	{ "set_retval", "bpf_set_retval in cgroup/connect", "fail_mode \"closed\" refuses with ECONNREFUSED, not EPERM",
	  5, 18, HELPER(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_set_retval) },
};
#undef PROG
#undef MAP
#undef HELPER
const size_t probe_n_features = sizeof(probe_features) / sizeof(probe_features[0]);

void probe_min_kernel(unsigned *major, unsigned *minor)
{
	size_t i;

	*major = 0;
	*minor = 0;
	for (i = 0; i < probe_n_features; i++) {
		const struct probe_feature *f = &probe_features[i];

		if (f->major > *major || (f->major == *major && f->minor > *minor)) {
			*major = f->major;
			*minor = f->minor;
		}
	}
}

static int probe_errno(int e)
{
	if (e == EPERM || e == EACCES)
		return -EPERM;
	if (e == EINVAL || e == E2BIG || e == EOPNOTSUPP || e == PROBE_ENOTSUPP)
		return 0;
	return -e;
}

/*
 * "r0 = 1; exit" of prog_type, loaded with expected_attach_type: the kernel
 * checks the attach type at load (an unknown one is EINVAL), and every
 * program type we use accepts 1 (getpeername must return exactly 1).
 */
static int probe_prog(enum bpf_prog_type type, enum bpf_attach_type attach)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = attach);
	int fd;

	fd = bpf_prog_load(type, NULL, "GPL", insns, sizeof(insns) / sizeof(insns[0]), &opts);
	if (fd >= 0) {
		close(fd);
		return 1;
	}
	return probe_errno(errno);
}

/*
 * BPF_LINK_CREATE (5.7) with no program: a kernel that knows the command
 * looks the program fd up first and says EBADF; one that does not says
 * EINVAL. Nothing is created either way.
 */
static int probe_link(void)
{
	int fd = bpf_link_create(-1, -1, BPF_CGROUP_INET4_CONNECT, NULL);

	if (fd >= 0) {
		close(fd);
		return 1;
	}
	if (errno == EBADF)
		return 1;
	return probe_errno(errno);
}

int probe_feature(const struct probe_feature *f)
{
	int r;

	switch (f->kind) {
	case PROBE_PROG:
		return probe_prog(f->prog_type, f->attach_type);
	case PROBE_MAP:
		r = libbpf_probe_bpf_map_type(f->map_type, NULL);
		break;
	case PROBE_HELPER:
		r = libbpf_probe_bpf_helper(f->prog_type, f->helper, NULL);
		break;
	case PROBE_LINK:
		return probe_link();
	default:
		return -EINVAL;
	}
	if (r == 1 || r == 0)
		return r;
	return probe_errno(-r);
}

int probe_btf(void)
{
	return access(PROBE_BTF_PATH, R_OK) == 0 ? 0 : -errno;
}

/* 1 if dir is a directory with nothing in it but "." and "..", 0 if it has entries, -errno. */
static int probe_dir_empty(const char *dir)
{
	struct dirent *e;
	int ret = 1;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			ret = 0;
			break;
		}
	}
	closedir(d);
	return ret;
}

/*
 * The directory that will hold the pins must be on a bpffs: walk up to the
 * first existing one. Not bpffs: under /sys/fs/bpf, weftd mounts one there
 * when that is safe (see probe_mount_bpffs); elsewhere it is the operator's
 * choice of path, and an error that says what to do.
 */
int probe_pin(const char *pin_path, struct probe_pin *out)
{
	struct statfs sf;
	char *slash;
	int r;

	memset(out, 0, sizeof(*out));
	snprintf(out->dir, sizeof(out->dir), "%s", pin_path);
	for (;;) {
		if (statfs(out->dir, &sf) == 0)
			break;
		slash = strrchr(out->dir, '/');
		if (!slash || slash == out->dir) {
			snprintf(out->dir, sizeof(out->dir), "/");
			if (statfs(out->dir, &sf) < 0)
				return -errno;
			break;
		}
		*slash = '\0';
	}
	if ((unsigned long)sf.f_type == BPF_FS_MAGIC) {
		out->state = PROBE_PIN_BPFFS;
		return 0;
	}
	out->state = PROBE_PIN_NOT_BPFFS;
	/* under /sys/fs/bpf, and nothing (no bpffs) is mounted there */
	if ((strncmp(pin_path, PROBE_BPFFS_HOME "/", sizeof(PROBE_BPFFS_HOME)) == 0 ||
	     strcmp(pin_path, PROBE_BPFFS_HOME) == 0) &&
	    statfs(PROBE_BPFFS_HOME, &sf) == 0 && (unsigned long)sf.f_type != BPF_FS_MAGIC) {
		r = probe_dir_empty(PROBE_BPFFS_HOME);
		if (r > 0) {
			out->state = PROBE_PIN_MOUNT_HOME;
		} else if (r == 0) {
			out->state = PROBE_PIN_HOME_BUSY;
		} else {
			out->state = PROBE_PIN_HOME_ERROR;
			out->err = r;
		}
	}
	return 0;
}

void probe_pin_problem(const char *pin_path, const struct probe_pin *p, char *err, size_t errlen)
{
	switch (p->state) {
	case PROBE_PIN_HOME_BUSY:
		snprintf(err, errlen,
			 "agent.bpf_pin_path '%s' is not on a BPF filesystem: %s is not bpffs and is not "
			 "empty, so weftd does not mount bpffs over it; mount it with "
			 "'mount -t bpf bpf " PROBE_BPFFS_HOME "' or choose a path on a bpffs",
			 pin_path, PROBE_BPFFS_HOME);
		break;
	case PROBE_PIN_HOME_ERROR:
		snprintf(err, errlen,
			 "agent.bpf_pin_path '%s' is not on a BPF filesystem and %s cannot be read (%s): "
			 "mount bpffs with 'mount -t bpf bpf " PROBE_BPFFS_HOME "'",
			 pin_path, PROBE_BPFFS_HOME, strerror(-p->err));
		break;
	case PROBE_PIN_NOT_BPFFS:
		snprintf(err, errlen,
			 "agent.bpf_pin_path '%s' is not on a BPF filesystem ('%s' is not bpffs): "
			 "mount it with 'mount -t bpf bpf /sys/fs/bpf' or choose a path under /sys/fs/bpf",
			 pin_path, p->dir);
		break;
	default:
		snprintf(err, errlen, "agent.bpf_pin_path '%s' is on a BPF filesystem", pin_path);
		break;
	}
}

/*
 * The contract: "if nothing is mounted at /sys/fs/bpf, weftd mounts it (and
 * says so)". Only there, and only over an empty directory (probe_pin made
 * sure): that is the kernel's own mount point (sysfs makes /sys/fs/bpf for
 * it), or the host's empty directory bind-mounted into a container (the
 * DaemonSet's hostPath). Mounting over a directory with something in it
 * would hide that, so it is left alone. Mode 0700 as systemd mounts it. The
 * mount stays after weftd exits: other BPF users (and the next weftd) expect
 * a bpffs there, and with the DaemonSet's Bidirectional propagation it is
 * the host's mount. Two agents starting at the same instant on a machine
 * without bpffs could both mount one; the second would hide the first's pins
 * (not a case we meet: systemd and the first weftd leave it mounted).
 * Returns 0 when mounted (logged at INFO), -errno with err filled otherwise.
 */
static int probe_mount_bpffs(const char *pin_path, char *err, size_t errlen)
{
	struct statfs sf;
	int r;

	if (mount("bpf", PROBE_BPFFS_HOME, "bpf", 0, "mode=0700") < 0) {
		r = -errno;
		snprintf(err, errlen,
			 "nothing is mounted at " PROBE_BPFFS_HOME " and mounting bpffs there failed (%s): "
			 "mount it with 'mount -t bpf bpf " PROBE_BPFFS_HOME "' before starting weftd%s",
			 strerror(-r), r == -EPERM ? ", or run weftd with CAP_SYS_ADMIN" : "");
		return r;
	}
	if (statfs(PROBE_BPFFS_HOME, &sf) < 0 || (unsigned long)sf.f_type != BPF_FS_MAGIC) {
		snprintf(err, errlen,
			 "mounted bpffs at " PROBE_BPFFS_HOME " but it does not show there: "
			 "check what else mounts over it");
		return -ENOTSUP;
	}
	log_info("mounted bpffs at " PROBE_BPFFS_HOME " (nothing was mounted there; agent.bpf_pin_path is "
		 "'%s'); it stays mounted after weftd exits",
		 pin_path);
	return 0;
}

int probe_kernel(const char *pin_path, char *err, size_t errlen)
{
	char mnt[CG_PATH_MAX];
	struct probe_pin pin;
	unsigned maj, min;
	size_t i;
	int r;

	r = probe_btf();
	if (r < 0) {
		probe_min_kernel(&maj, &min);
		snprintf(err, errlen,
			 "kernel has no BTF (" PROBE_BTF_PATH ": %s): weft needs a kernel built with "
			 "CONFIG_DEBUG_INFO_BTF=y (Linux %u.%u or later)",
			 strerror(-r), maj, min);
		return -ENOTSUP;
	}
	if (cg_mount(mnt, sizeof(mnt)) < 0) {
		snprintf(err, errlen,
			 "no cgroup v2 hierarchy is mounted (none in /proc/self/mountinfo): mount it with "
			 "'mount -t cgroup2 none /sys/fs/cgroup' or boot with systemd.unified_cgroup_hierarchy=1");
		return -ENOTSUP;
	}
	r = probe_pin(pin_path, &pin);
	if (r < 0) {
		snprintf(err, errlen, "agent.bpf_pin_path '%s': cannot statfs it or any parent: %s", pin_path,
			 strerror(-r));
		return r;
	}
	if (pin.state == PROBE_PIN_MOUNT_HOME) {
		r = probe_mount_bpffs(pin_path, err, errlen);
		if (r < 0)
			return r;
	} else if (pin.state != PROBE_PIN_BPFFS) {
		probe_pin_problem(pin_path, &pin, err, errlen);
		return pin.state == PROBE_PIN_HOME_ERROR ? pin.err : -ENOTSUP;
	}
	for (i = 0; i < probe_n_features; i++) {
		const struct probe_feature *f = &probe_features[i];

		r = probe_feature(f);
		if (r == 1)
			continue;
		if (r == -EPERM) {
			snprintf(err, errlen,
				 "not allowed to load BPF programs (%s): run weftd as root or with "
				 "CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN ('weftctl check' lists what is missing)",
				 strerror(EPERM));
			return -EPERM;
		}
		snprintf(err, errlen,
			 "kernel does not support %s (Linux %u.%u+, for %s)%s%s: 'weftctl check' lists "
			 "every feature weft needs",
			 f->what, f->major, f->minor, f->why, r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
		return r < 0 ? r : -ENOTSUP;
	}
	return 0;
}
