/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Kernel feature probe run before anything is loaded, so a missing feature is
 * reported by name ("kernel has no BTF (/sys/kernel/btf/vmlinux missing):
 * build the kernel with CONFIG_DEBUG_INFO_BTF=y") instead of a libbpf errno.
 * The one thing it changes: when nothing is mounted at /sys/fs/bpf and the pin
 * path is under it, it mounts bpffs there (and logs it), as the contract says.
 * It may call: kernel/cgroup, lib/log, libbpf.
 */
#ifndef WEFT_PROBE_H
#define WEFT_PROBE_H

#include <stddef.h>

/* 0 when everything weftd needs is there; else -errno and a message in err. */
int probe_kernel(const char *pin_path, char *err, size_t errlen);

#endif
