// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "kernel/probe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "kernel/cgroup.h"
#include "lib/log.h"

#define PROBE_BPFFS_HOME "/sys/fs/bpf"

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
 * The contract: "if nothing is mounted at /sys/fs/bpf, weftd mounts it (and
 * says so)". Only there, and only over an empty directory: that is the
 * kernel's own mount point (sysfs makes /sys/fs/bpf for it), or the host's
 * empty directory bind-mounted into a container (the DaemonSet's hostPath).
 * Mounting over a directory with something in it would hide that, so it is
 * left alone. Mode 0700 as systemd mounts it. The mount stays after weftd
 * exits: other BPF users (and the next weftd) expect a bpffs there, and with
 * the DaemonSet's Bidirectional propagation it is the host's mount. Two
 * agents starting at the same instant on a machine without bpffs could both
 * mount one; the second would hide the first's pins (not a case we meet:
 * systemd and the first weftd leave it mounted).
 * Returns 0 when mounted (logged at INFO), -errno with err filled otherwise.
 */
static int probe_mount_bpffs(const char *pin_path, char *err, size_t errlen)
{
	struct statfs sf;
	int r;

	r = probe_dir_empty(PROBE_BPFFS_HOME);
	if (r <= 0) {
		if (r == 0)
			snprintf(err, errlen,
				 "agent.bpf_pin_path '%s' is not on a BPF filesystem: %s is not bpffs and is not "
				 "empty, so weftd does not mount bpffs over it; mount it with "
				 "'mount -t bpf bpf " PROBE_BPFFS_HOME "' or choose a path on a bpffs",
				 pin_path, PROBE_BPFFS_HOME);
		else
			snprintf(err, errlen,
				 "agent.bpf_pin_path '%s' is not on a BPF filesystem and %s cannot be read (%s): "
				 "mount bpffs with 'mount -t bpf bpf " PROBE_BPFFS_HOME "'",
				 pin_path, PROBE_BPFFS_HOME, strerror(-r));
		return r == 0 ? -ENOTSUP : r;
	}
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

/*
 * The directory that will hold the pins must be on a bpffs: walk up to the
 * first existing one. Not bpffs: under /sys/fs/bpf weftd mounts one there
 * (probe_mount_bpffs); elsewhere it is the operator's choice of path, and an
 * error that says what to do.
 */
static int probe_bpffs(const char *pin_path, char *err, size_t errlen)
{
	char dir[4096];
	struct statfs sf;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", pin_path);
	for (;;) {
		if (statfs(dir, &sf) == 0)
			break;
		slash = strrchr(dir, '/');
		if (!slash || slash == dir) {
			snprintf(dir, sizeof(dir), "/");
			if (statfs(dir, &sf) < 0)
				return -errno;
			break;
		}
		*slash = '\0';
	}
	if ((unsigned long)sf.f_type == BPF_FS_MAGIC)
		return 0;
	/* under /sys/fs/bpf, and nothing (no bpffs) is mounted there: mount it */
	if ((strncmp(pin_path, PROBE_BPFFS_HOME "/", sizeof(PROBE_BPFFS_HOME)) == 0 ||
	     strcmp(pin_path, PROBE_BPFFS_HOME) == 0) &&
	    statfs(PROBE_BPFFS_HOME, &sf) == 0 && (unsigned long)sf.f_type != BPF_FS_MAGIC)
		return probe_mount_bpffs(pin_path, err, errlen);
	snprintf(err, errlen,
		 "agent.bpf_pin_path '%s' is not on a BPF filesystem ('%s' is not bpffs): "
		 "mount it with 'mount -t bpf bpf /sys/fs/bpf' or choose a path under /sys/fs/bpf",
		 pin_path, dir);
	return -ENOTSUP;
}

int probe_kernel(const char *pin_path, char *err, size_t errlen)
{
	static const struct {
		enum bpf_prog_type type;
		const char *name;
	} types[] = {
		{ BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
		  "cgroup/connect4, connect6, getpeername (BPF_PROG_TYPE_CGROUP_SOCK_ADDR)" },
		{ BPF_PROG_TYPE_SOCK_OPS, "sockops (BPF_PROG_TYPE_SOCK_OPS)" },
	};
	static const struct {
		enum bpf_prog_type type;
		enum bpf_func_id fn;
		const char *name;
	} helpers[] = {
		{ BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_sk_storage_get,
		  "bpf_sk_storage_get in cgroup/connect (Linux 5.10+)" },
		{ BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_set_retval,
		  "bpf_set_retval in cgroup/connect (Linux 5.18+)" },
		{ BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_get_netns_cookie, "bpf_get_netns_cookie in sockops (Linux 5.15+)" },
	};
	char mnt[CG_PATH_MAX];
	size_t i;
	int r;

	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		snprintf(err, errlen,
			 "kernel has no BTF (/sys/kernel/btf/vmlinux: %s): weft needs a kernel built with "
			 "CONFIG_DEBUG_INFO_BTF=y (Linux 5.18 or later)",
			 strerror(errno));
		return -ENOTSUP;
	}
	if (cg_mount(mnt, sizeof(mnt)) < 0) {
		snprintf(err, errlen,
			 "no cgroup v2 hierarchy is mounted (none in /proc/self/mountinfo): mount it with "
			 "'mount -t cgroup2 none /sys/fs/cgroup' or boot with systemd.unified_cgroup_hierarchy=1");
		return -ENOTSUP;
	}
	r = probe_bpffs(pin_path, err, errlen);
	if (r < 0)
		return r;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		r = libbpf_probe_bpf_prog_type(types[i].type, NULL);
		if (r == 1)
			continue;
		if (r == -EPERM || r == -EACCES) {
			snprintf(err, errlen,
				 "not allowed to load BPF programs (%s): run weftd as root or with "
				 "CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN",
				 strerror(-r));
			return -EPERM;
		}
		snprintf(err, errlen, "kernel does not support %s%s%s", types[i].name, r < 0 ? ": " : "",
			 r < 0 ? strerror(-r) : "");
		return -ENOTSUP;
	}
	for (i = 0; i < sizeof(helpers) / sizeof(helpers[0]); i++) {
		r = libbpf_probe_bpf_helper(helpers[i].type, helpers[i].fn, NULL);
		if (r == 1)
			continue;
		snprintf(err, errlen, "kernel does not support %s%s%s", helpers[i].name, r < 0 ? ": " : "",
			 r < 0 ? strerror(-r) : "");
		return r == -EPERM ? -EPERM : -ENOTSUP;
	}
	return 0;
}
