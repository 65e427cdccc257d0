/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the host must have for weft, asked before anything is loaded, so a
 * missing feature is reported by name ("kernel has no BTF (/sys/kernel/btf/
 * vmlinux missing): build the kernel with CONFIG_DEBUG_INFO_BTF=y") instead
 * of a libbpf errno.
 *
 * One list of kernel features (probe_features: program and attach types,
 * maps, helpers per program type, links, each with the release that brought
 * it) serves both users: weftd's start (probe_kernel: the first one missing
 * stops it) and `weftctl check` (agent/nodecheck: every one, reported).
 *
 * Looking changes nothing on the host: probe_btf, probe_pin and
 * probe_feature only read (stat, statfs, opendir), and the program, map or
 * link a feature probe makes is freed before it returns. The one call that
 * changes anything is probe_kernel: when nothing is mounted at /sys/fs/bpf
 * and the pin path is under it, it mounts bpffs there (and logs it), as the
 * contract says.
 * It may call: kernel/cgroup, lib/log, libbpf.
 */
#ifndef WEFT_PROBE_H
#define WEFT_PROBE_H

#include <linux/bpf.h>
#include <stddef.h>

#define PROBE_BTF_PATH "/sys/kernel/btf/vmlinux"
#define PROBE_BPFFS_HOME "/sys/fs/bpf"
#define PROBE_PATH_MAX 4096

enum probe_kind {
	PROBE_PROG,   /* a program of prog_type (with expected_attach_type attach_type) loads */
	PROBE_MAP,    /* a map of map_type can be created */
	PROBE_HELPER, /* a program of prog_type may call helper */
	PROBE_LINK,   /* the bpf(BPF_LINK_CREATE) command exists (cgroup attach by bpf_link) */
};

struct probe_feature {
	const char *id;        /* short and stable ("getpeername"): `weftctl check` names the check bpf.<id> */
	const char *what;      /* for people: "cgroup/getpeername4, getpeername6" */
	const char *why;       /* what weft does with it */
	unsigned major, minor; /* the mainline release that brought it (distribution kernels may backport) */
	enum probe_kind kind;
	enum bpf_prog_type prog_type;
	enum bpf_attach_type attach_type;
	enum bpf_map_type map_type;
	enum bpf_func_id helper;
};

/* Everything weft's BPF side (bpf/intercept.bpf.c) needs from the kernel, oldest first. */
extern const struct probe_feature probe_features[];
extern const size_t probe_n_features;

/* The oldest release with every feature (the newest of their versions: 5.18). */
void probe_min_kernel(unsigned *major, unsigned *minor);

/*
 * Asks the kernel about one feature. 1: there; 0: this kernel does not have
 * it; -EPERM: not allowed to ask (no CAP_BPF / CAP_NET_ADMIN, or unprivileged
 * BPF disabled), so nothing is known; another -errno: the probe itself failed.
 */
int probe_feature(const struct probe_feature *f);

/* 0 when the kernel's BTF (PROBE_BTF_PATH) is readable, else -errno. */
int probe_btf(void);

/* Where the pins would go, as weftd's start would see it. */
enum probe_pin_state {
	PROBE_PIN_BPFFS,      /* dir (the pin path or its nearest existing parent) is on a bpffs */
	PROBE_PIN_MOUNT_HOME, /* under /sys/fs/bpf, nothing mounted there, empty: weftd mounts bpffs there */
	PROBE_PIN_HOME_BUSY,  /* under /sys/fs/bpf, not bpffs and not empty: weftd refuses to mount over it */
	PROBE_PIN_HOME_ERROR, /* under /sys/fs/bpf, not bpffs and unreadable (err) */
	PROBE_PIN_NOT_BPFFS,  /* elsewhere, on another filesystem (dir): weftd refuses it */
};

struct probe_pin {
	enum probe_pin_state state;
	char dir[PROBE_PATH_MAX]; /* the nearest existing directory of the pin path (the pin path when it exists) */
	int err;                  /* PROBE_PIN_HOME_ERROR: -errno reading /sys/fs/bpf */
};

/* Looks (statfs, opendir) and fills *out; 0, or -errno when not even "/" can be statfs'ed. */
int probe_pin(const char *pin_path, struct probe_pin *out);
/* What weftd says when it refuses p (not for PROBE_PIN_BPFFS or PROBE_PIN_MOUNT_HOME). */
void probe_pin_problem(const char *pin_path, const struct probe_pin *p, char *err, size_t errlen);

/*
 * weftd's start: BTF, cgroup2, bpffs at the pin path (mounting it at
 * /sys/fs/bpf when PROBE_PIN_MOUNT_HOME), then every feature in order. 0 when
 * everything weftd needs is there; else -errno and a message in err naming
 * the first thing missing and what to do.
 */
int probe_kernel(const char *pin_path, char *err, size_t errlen);

#endif
