/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cgroup v2 helpers: find the cgroup2 mount, resolve intercept.cgroups entries
 * (absolute paths, paths relative to the mount, or glob patterns) to
 * directories, and map a directory to its cgroup id (the id
 * bpf_get_current_cgroup_id() returns: the kernfs inode number).
 * It may call: libc only.
 */
#ifndef WEFT_CGROUP_H
#define WEFT_CGROUP_H

#include <stddef.h>
#include <stdint.h>

#define CG_PATH_MAX 4096

/*
 * One line of /proc/self/mountinfo, parsed in place: *fstype ("cgroup2",
 * "bpf", ...) and *mnt (the mount point, \ooo escapes decoded) point into
 * line. 0, or -EINVAL for a line that is not one. Pure (no I/O).
 */
int cg_mountinfo_line(char *line, char **fstype, char **mnt);

/* Mount point of the cgroup2 hierarchy from /proc/self/mountinfo; 0 or -ENOENT. */
int cg_mount(char *buf, size_t len);

/* The cgroup v2 id of a directory (its inode number); 0 or -errno. */
int cg_id(const char *dir, uint64_t *id);

/* The cgroup id of this process ("0::/path" in /proc/self/cgroup). */
int cg_self(const char *mount, char *path, size_t len, uint64_t *id);

/*
 * Expands one intercept.cgroups entry against mount: relative entries are
 * joined to the mount; glob characters are expanded (directories only).
 * Calls fn(dir, arg) for each existing match; returns the number of matches
 * or -errno. An entry outside the mount is -EXDEV.
 */
int cg_expand(const char *mount, const char *entry, int (*fn)(const char *dir, void *arg), void *arg);

/* The path of the cgroup with this id (via open_by_handle_at); 0 or -errno. */
int cg_path_of(const char *mount, uint64_t id, char *buf, size_t len);

#endif
