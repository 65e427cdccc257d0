// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "kernel/probe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "kernel/cgroup.h"

/* The directory that will hold the pins must be on a bpffs: walk up to the first existing one. */
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
	if ((unsigned long)sf.f_type != BPF_FS_MAGIC) {
		snprintf(err, errlen,
			 "agent.bpf_pin_path '%s' is not on a BPF filesystem ('%s' is not bpffs): "
			 "mount it with 'mount -t bpf bpf /sys/fs/bpf' or choose a path under /sys/fs/bpf",
			 pin_path, dir);
		return -ENOTSUP;
	}
	return 0;
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
