// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "kernel/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * mountinfo lines: "36 25 0:30 / /sys/fs/cgroup rw,... shared:9 - cgroup2 cgroup2 rw".
 * The filesystem type is the first field after the " - " separator (the
 * optional fields before it vary in number); the mount point is field 5.
 * Octal escapes (\040) in the mount point are decoded in place.
 */
int cg_mountinfo_line(char *line, char **fstype, char **mnt)
{
	char *sep = strstr(line, " - ");
	char *p, *o, *end;
	int field;

	if (!sep)
		return -EINVAL;
	*sep = '\0';
	p = sep + 3;
	end = p + strcspn(p, " \n");
	if (end == p)
		return -EINVAL;
	*end = '\0';
	*fstype = p;
	/* field 5 (1-based) is the mount point */
	p = line;
	for (field = 1; field < 5 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p || !*p)
		return -EINVAL;
	*mnt = p;
	p = strchr(p, ' ');
	if (p)
		*p = '\0';
	/* decode \ooo escapes in place */
	for (p = *mnt, o = *mnt; *p; o++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
		    p[3] <= '7') {
			*o = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 4;
		} else {
			*o = *p++;
		}
	}
	*o = '\0';
	return 0;
}

int cg_mount(char *buf, size_t len)
{
	char line[4096], *fstype, *mnt;
	int ret = -ENOENT;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (cg_mountinfo_line(line, &fstype, &mnt) < 0 || strcmp(fstype, "cgroup2") != 0)
			continue;
		if (strlen(mnt) + 1 > len) {
			ret = -ENAMETOOLONG;
			break;
		}
		memcpy(buf, mnt, strlen(mnt) + 1);
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

int cg_id(const char *dir, uint64_t *id)
{
	struct stat st;

	if (stat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	*id = (uint64_t)st.st_ino;
	return 0;
}

int cg_self(const char *mount, char *path, size_t len, uint64_t *id)
{
	char line[CG_PATH_MAX];
	int ret = -ENOENT;
	FILE *f;

	f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		size_t n;

		if (strncmp(line, "0::", 3) != 0)
			continue;
		n = strcspn(line + 3, "\n");
		line[3 + n] = '\0';
		if ((size_t)snprintf(path, len, "%s%s", mount, line + 3) >= len) {
			ret = -ENAMETOOLONG;
			break;
		}
		ret = cg_id(path, id);
		break;
	}
	fclose(f);
	return ret;
}

static bool has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

int cg_expand(const char *mount, const char *entry, int (*fn)(const char *dir, void *arg), void *arg)
{
	char full[CG_PATH_MAX];
	size_t mlen = strlen(mount);
	struct stat st;
	glob_t g;
	int n = 0, r;
	size_t i;

	if (entry[0] == '/') {
		if (strncmp(entry, mount, mlen) != 0 || (entry[mlen] != '/' && entry[mlen] != '\0'))
			return -EXDEV;
		r = snprintf(full, sizeof(full), "%s", entry);
	} else {
		r = snprintf(full, sizeof(full), "%s/%s", mount, entry);
	}
	if (r < 0 || (size_t)r >= sizeof(full))
		return -ENAMETOOLONG;
	/* strip trailing slashes so ids and names compare equal */
	for (r = (int)strlen(full); r > 1 && full[r - 1] == '/'; r--)
		full[r - 1] = '\0';

	if (!has_glob(full)) {
		if (stat(full, &st) < 0 || !S_ISDIR(st.st_mode))
			return 0;
		r = fn(full, arg);
		return r < 0 ? r : 1;
	}
	r = glob(full, GLOB_ONLYDIR | GLOB_NOSORT, NULL, &g);
	if (r == GLOB_NOMATCH)
		return 0;
	if (r != 0)
		return -ENOMEM;
	for (i = 0; i < g.gl_pathc; i++) {
		/* GLOB_ONLYDIR is a hint; check. Skip the controller files. */
		if (stat(g.gl_pathv[i], &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		r = fn(g.gl_pathv[i], arg);
		if (r < 0) {
			n = r;
			break;
		}
		n++;
	}
	globfree(&g);
	return n;
}

/*
 * cgroupfs (kernfs) exports file handles whose payload is the 64-bit cgroup
 * id (FILEID_KERNFS), so the id the BPF side recorded can be turned back into
 * a path without walking the tree. Needs CAP_DAC_READ_SEARCH (weftd has it).
 */
int cg_path_of(const char *mount, uint64_t id, char *buf, size_t len)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h;
	char proc[64];
	int mfd, fd, ret;
	ssize_t n;

	memset(&h, 0, sizeof(h));
	h.fh.handle_bytes = sizeof(uint64_t);
	h.fh.handle_type = 0xfe; /* FILEID_KERNFS */
	memcpy(h.fh.f_handle, &id, sizeof(id));
	mfd = open(mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		return -errno;
	fd = open_by_handle_at(mfd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ret = fd < 0 ? -errno : 0;
	close(mfd);
	if (ret < 0)
		return ret;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, buf, len - 1);
	ret = n < 0 ? -errno : 0;
	if (n >= 0)
		buf[n] = '\0';
	close(fd);
	return ret;
}
